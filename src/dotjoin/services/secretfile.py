"""``<state_dir>/secrets.toml``: generated service credentials, mode 0600, read by ``load_settings``.

Only simple values (strings, numbers, booleans) in ``[section]`` tables are written; other sections
already in the file are kept.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FILE_NAME = "secrets.toml"


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def render(data: dict[str, dict[str, Any]]) -> str:
    """TOML text for ``{section: {key: value}}``.

    >>> print(render({"warehouse": {"password": 'a"b'}}), end="")
    [warehouse]
    password = "a\\"b"
    """
    blocks = []
    for section, values in data.items():
        lines = [f"[{section}]"] + [f"{key} = {_render_value(value)}" for key, value in values.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def store_secret(state_dir: Path, section: str, key: str, value: str) -> Path:
    """Set ``[section] key = value`` in the secrets file, atomically, readable only by its owner."""
    path = state_dir / FILE_NAME
    data: dict[str, dict[str, Any]] = {}
    if path.is_file():
        with path.open("rb") as fh:
            data = {k: dict(v) for k, v in tomllib.load(fh).items() if isinstance(v, dict)}
    data.setdefault(section, {})[key] = value
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(render(data))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    logger.info("stored %s.%s in %s (mode 600)", section, key, path)
    return path


def ensure_secret(state_dir: Path, section: str, key: str, current: str | None) -> str:
    """``current`` if the settings have a value, else the one in the secrets file, else a new one stored
    there — so services started in one ``up`` (and the ones after) agree on a generated credential."""
    if current:
        return current
    path = state_dir / FILE_NAME
    if path.is_file():
        with path.open("rb") as fh:
            stored = tomllib.load(fh).get(section, {}).get(key)
        if stored:
            return str(stored)
    value = secrets.token_urlsafe(24)
    store_secret(state_dir, section, key, value)
    return value
