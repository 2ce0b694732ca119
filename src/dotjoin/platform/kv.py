"""A key-value store for online serving: SQLite locally, Redis in the stack (``[features] online``).

Keys are strings, values bytes; reads and writes are batched (``MGET`` / a pipelined ``MSET`` on Redis,
one transaction on SQLite), because a scoring call reads a few keys and a streaming job writes many.
Each store has a ``namespace`` that prefixes its keys, so several can share one Redis.

Example::

    with open_kv(settings, "features") as kv:
        kv.put_many({"card:c1": b"..."})
        kv.get_many(["card:c1", "card:nope"])  # [b"...", None]
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from dotjoin.config import Settings
from dotjoin.exceptions import MissingDependencyError, ServiceUnavailableError


class KeyValueStore(ABC):
    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order; None where a key has none."""

    @abstractmethod
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Set every key (one batch: all or nothing on SQLite, pipelined on Redis)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SqliteStore(KeyValueStore):
    """One table ``kv(key PRIMARY KEY, value)`` in a SQLite file (WAL: readers do not block the writer)."""

    def __init__(self, path: Path, namespace: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.prefix = namespace + ":"
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()  # one connection, shared by a web server's threads: one at a time
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        names = [self.prefix + k for k in keys]
        marks = ",".join("?" * len(names))
        with self._lock:
            found = dict(
                self._db.execute(f"SELECT key, value FROM kv WHERE key IN ({marks})", names).fetchall()
            )
        return [found.get(n) for n in names]

    def put_many(self, items: Mapping[str, bytes]) -> None:
        rows = [(self.prefix + k, v) for k, v in items.items()]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()


class RedisStore(KeyValueStore):
    """Redis through redis-py: ``MGET`` for reads, one pipelined transaction of ``SET`` s for writes."""

    def __init__(self, *, host: str, port: int, password: str | None, namespace: str) -> None:
        try:
            import redis
        except ImportError:
            raise MissingDependencyError("redis", "redis") from None
        self.prefix = namespace + ":"
        self._client: Any = redis.Redis(host=host, port=port, password=password, socket_timeout=5)
        try:
            self._client.ping()
        except redis.exceptions.AuthenticationError as exc:
            hint = (
                "" if password else "; no [redis] password in the settings: was it started by `services up`?"
            )
            raise ServiceUnavailableError("Redis", f"{host}:{port}", f"{exc}{hint}") from None
        except redis.exceptions.ConnectionError as exc:
            raise ServiceUnavailableError("Redis", f"{host}:{port}", str(exc)) from None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(self._client.mget([self.prefix + k for k in keys])) if keys else []

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if items:
            self._client.mset({self.prefix + k: v for k, v in items.items()})  # atomic on one server

    def close(self) -> None:
        self._client.close()


def open_kv(settings: Settings, namespace: str) -> KeyValueStore:
    """The online store of ``settings.features.online``: SQLite at ``online_path`` or the stack's Redis."""
    if settings.features.online == "redis":
        secret = settings.redis.password  # generated into .dotjoin/secrets.toml by `services up redis`
        password = secret.get_secret_value() if secret else None
        return RedisStore(
            host=settings.redis.host, port=settings.redis.port, password=password, namespace=namespace
        )
    return SqliteStore(settings.resolve(settings.features.online_path), namespace)
