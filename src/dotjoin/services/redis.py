"""Redis from the Debian ``redis-server`` package, on 127.0.0.1, data in ``<services dir>/redis/data``.

Password-protected (``requirepass``; the password is generated into ``.dotjoin/secrets.toml`` like the
other services' credentials, the config file is private to its owner). Probed with a raw RESP ``AUTH`` /
``PING`` / ``INFO server`` over a socket, so status needs no Python client.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import ClassVar

from dotjoin.services import process
from dotjoin.services.base import Service
from dotjoin.services.secretfile import ensure_secret

logger = logging.getLogger(__name__)

APT_HINT = "apt-get install redis-server"


def render_conf(*, host: str, port: int, data_dir: Path, password: str) -> str:
    """``redis.conf``; rewritten on every ``up``. Logs go to stdout, which we append to redis.log."""
    return f"""# Written by `dotjoin services up`; edits are overwritten.
bind {host}
port {port}
requirepass {password}
protected-mode yes
daemonize no
supervised no
logfile ""
dir {data_dir}
dbfilename dump.rdb
save 3600 1 300 100 60 10000
appendonly no
maxmemory 256mb
maxmemory-policy noeviction
"""


def _reply(sock: socket.socket) -> str:
    """One RESP reply (simple string, error or bulk string) as text; an error raises."""
    reply = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
        if reply.startswith((b"+", b"-")) and reply.endswith(b"\r\n"):
            break
        if reply.startswith(b"$"):
            header, _, body = reply.partition(b"\r\n")
            if len(body) >= int(header[1:]) + 2:
                break
    text = reply.decode(errors="replace")
    if text.startswith("-"):
        raise ConnectionError(f"redis replied {text.strip()}")
    if text.startswith("$"):
        return text.partition("\r\n")[2].rstrip("\r\n")
    return text[1:].strip()


def redis_command(host: str, port: int, *args: str, password: str | None = None, timeout: float = 2.0) -> str:
    """Send one command (after ``AUTH`` with ``password``) and return the reply's text."""

    def encode(words: tuple[str, ...]) -> bytes:
        return (f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)).encode()

    with socket.create_connection((host, port), timeout=timeout) as sock:
        if password:
            sock.sendall(encode(("AUTH", password)))
            _reply(sock)
        sock.sendall(encode(args))
        return _reply(sock)


class RedisService(Service):
    name: ClassVar[str] = "redis"
    start_timeout: ClassVar[float] = 20.0

    @property
    def host(self) -> str:
        return self.settings.redis.host

    @property
    def port(self) -> int:
        return self.settings.redis.port

    @property
    def conf_file(self) -> Path:
        return self.home / "redis.conf"

    @property
    def password(self) -> str:
        current = self.settings.redis.password
        value = current.get_secret_value() if current else None
        return ensure_secret(self.settings.state_dir, "redis", "password", value)

    def check_prerequisites(self) -> None:
        process.require_binary("redis-server", APT_HINT)

    def install(self) -> None:
        data_dir = self.home / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = render_conf(host=self.host, port=self.port, data_dir=data_dir, password=self.password)
        self.conf_file.touch(mode=0o600)
        self.conf_file.chmod(0o600)  # it holds the password
        self.conf_file.write_text(conf)

    def command(self) -> list[str]:
        return [process.require_binary("redis-server", APT_HINT), str(self.conf_file)]

    def probe(self) -> str:
        if redis_command(self.host, self.port, "PING", password=self.password) != "PONG":
            raise ConnectionError("no PONG")
        info = redis_command(self.host, self.port, "INFO", "server", password=self.password)
        for line in info.splitlines():
            if line.startswith("redis_version:"):
                return line.partition(":")[2].strip()
        return "?"
