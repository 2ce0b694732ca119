"""Shared fixtures: settings per profile, and real-service gates.

A service test skips with a one-line reason when its service is down, unless
``DOTJOIN_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dotjoin.config import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
REQUIRE_SERVICES = os.environ.get("DOTJOIN_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under DOTJOIN_REQUIRE_SERVICES=1, fail) when ``name`` is not listening."""
    if _reachable(host, port):
        return
    reason = f"{name} is not running at {host}:{port} (start it with `make services`)"
    if REQUIRE_SERVICES:
        pytest.fail(reason + " and DOTJOIN_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def require_shared_data(relative: str) -> Path:
    """A file under ../shared/data, or a skip: a user's clone has no ../shared (CI does)."""
    path = SHARED_DATA / relative
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI", pytrace=False)
        pytest.skip(f"{path} not present (only in the team's checkout and CI)")
    return path


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """Local-profile settings whose state lives in a fresh temporary directory."""
    return load_settings(profile="local", cwd=tmp_path, env={})


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """Stack-profile settings as `make services` left them (password from .dotjoin/secrets.toml)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("DOTJOIN__")}
    return load_settings(profile="stack", cwd=REPO_ROOT, env=env)


@pytest.fixture
def postgres(stack_settings: Settings) -> Settings:
    pg = stack_settings.postgres
    require_service("PostgreSQL", pg.host, pg.port)
    return stack_settings


@pytest.fixture
def kafka(stack_settings: Settings) -> Settings:
    host, _, port = stack_settings.bus.bootstrap_servers.split(",")[0].rpartition(":")
    require_service("Kafka", host, int(port))
    return stack_settings


@pytest.fixture
def connect_worker(postgres: Settings, kafka: Settings) -> Settings:
    """Kafka Connect (with Debezium), PostgreSQL and Kafka all up."""
    require_service("Kafka Connect", "127.0.0.1", postgres.services.connect_port)
    return postgres


@pytest.fixture
def objectstore(postgres: Settings) -> Settings:
    """The object store (S3Proxy, its lake bucket made by `services up`) and PostgreSQL (the catalog)."""
    endpoint = urlsplit(postgres.objectstore.endpoint)
    require_service("the object store", endpoint.hostname or "127.0.0.1", endpoint.port or 9000)
    return postgres


@pytest.fixture
def trino_service(objectstore: Settings) -> Settings:
    """Trino (its Iceberg catalog on the lake's PostgreSQL catalog and object store), with both up."""
    require_service("Trino", "127.0.0.1", objectstore.services.trino_port)
    return objectstore


@pytest.fixture
def prometheus_service(stack_settings: Settings) -> Settings:
    """Prometheus and the Pushgateway of the stack, both up."""
    require_service("Pushgateway", "127.0.0.1", stack_settings.services.pushgateway_port)
    require_service("Prometheus", "127.0.0.1", stack_settings.services.prometheus_port)
    return stack_settings


@pytest.fixture
def redis_service(stack_settings: Settings) -> Settings:
    require_service("Redis", stack_settings.redis.host, stack_settings.redis.port)
    return stack_settings


@pytest.fixture
def mlflow_service(postgres: Settings) -> Settings:
    """The MLflow tracking server and registry (PostgreSQL-backed, basic auth) and PostgreSQL."""
    require_service("MLflow", "127.0.0.1", postgres.services.mlflow_port)
    return postgres


@pytest.fixture
def unique_name() -> str:
    """A name no other test (or parallel run) uses: tables, topics, groups."""
    return f"t_{uuid.uuid4().hex[:10]}"


@dataclass
class Receiver:
    """A local webhook standing in for Slack: every POSTed JSON body, in arrival order."""

    url: str
    posts: list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free loopback port that records what alerts post to it."""
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
            """Keep the test output free of access-log lines."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", posts)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def java() -> None:
    """Spark needs a JVM: a skip with the reason without one (a failure under DOTJOIN_REQUIRE_SERVICES)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "Java is not installed (Spark needs Java 17+: apt-get install openjdk-17-jre-headless)"
        if REQUIRE_SERVICES:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def spark_engine(
    tmp_path_factory: pytest.TempPathFactory, stack_settings: Settings, java: None
) -> Iterator[Any]:
    """One Spark session for every Spark test (its start is ~15 s): the stack's lake catalog and the
    Kafka connector (local[2], two shuffle partitions, 1 GiB driver heap)."""
    from dotjoin.pipelines.payments.spark_job import spark_options
    from dotjoin.platform.spark import SparkEngine

    log = tmp_path_factory.mktemp("spark") / "spark.log"
    with SparkEngine("dotjoin-tests", spark_options(stack_settings, log_file=log)) as spark:
        yield spark
