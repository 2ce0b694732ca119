"""Fixtures for the runner tests: settings in a temporary project, a fake sleep, a real alert receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings, load_settings


@dataclass
class FakeSleep:
    """Records the retry delays instead of waiting them."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@dataclass
class Receiver:
    """A local webhook: every POSTed JSON body, in arrival order."""

    url: str
    posts: list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    posts: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", posts)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def alerting_settings(tmp_path: Path, receiver: Receiver) -> Settings:
    """Local settings in a fresh project whose alerts go to ``receiver``."""
    env = {"DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL": receiver.url}
    return load_settings(profile="local", cwd=tmp_path, env=env)
