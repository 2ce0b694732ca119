"""API keys for the HTTP APIs that reveal or change data: stored hashed, checked in constant time.

``<state_dir>/api_keys.json`` holds, per key, its name, its scopes and the SHA-256 of the key — never the
key, which is shown once when it is made (``dotjoin keys add NAME``). A request presents it in the
``X-API-Key`` header. A key is 32 random bytes (URL-safe text), so an unsalted fast hash is enough: there
is no dictionary to try against it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dotjoin.exceptions import ConfigError

FILE_NAME = "api_keys.json"
PREFIX = "dj_"


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: tuple[str, ...]
    sha256: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The keys of ``<state_dir>/api_keys.json`` (re-read when the file changes)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self._stamp: float | None = None
        self._keys: list[ApiKey] = []

    def keys(self) -> list[ApiKey]:
        stamp = self.path.stat().st_mtime if self.path.is_file() else None
        if stamp != self._stamp:
            self._keys = self._read() if stamp is not None else []
            self._stamp = stamp
        return self._keys

    def _read(self) -> list[ApiKey]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))["keys"]
            return [ApiKey(r["name"], tuple(r["scopes"]), r["sha256"]) for r in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{self.path}: not an API key file ({exc}); remake it with `dotjoin keys add`"
            ) from None

    def find(self, presented: str) -> ApiKey | None:
        """The key ``presented`` is, if any (every stored digest compared, in constant time each)."""
        digest = _digest(presented)
        found = None
        for key in self.keys():
            if hmac.compare_digest(key.sha256, digest):
                found = key
        return found

    def add(self, name: str, scopes: tuple[str, ...]) -> str:
        """Make a key called ``name`` (replacing one of that name); the key itself, shown only now."""
        key = PREFIX + secrets.token_urlsafe(32)
        kept = [k for k in self.keys() if k.name != name] + [ApiKey(name, scopes, _digest(key))]
        rows = [{"name": k.name, "scopes": list(k.scopes), "sha256": k.sha256} for k in kept]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"keys": rows}, indent=2) + "\n", encoding="utf-8")
        os.chmod(partial, 0o600)
        partial.replace(self.path)
        return key
