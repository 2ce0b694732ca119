"""The real services `make services` starts: reachable, configured as promised, and `up` idempotent.

Skipped with a reason when a service is down (failed under DOTJOIN_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.services import SERVICES, process, select_services
from dotjoin.services.postgres import PostgresService
from dotjoin.services.redis import RedisService

REPO_ROOT = Path(__file__).resolve().parents[2]


def _connect(settings: Settings, user: str | None = None):  # type: ignore[no-untyped-def]
    psycopg = pytest.importorskip("psycopg")
    pg = settings.postgres
    password = pg.password.get_secret_value() if pg.password else None
    conninfo = pg.conninfo() if user is None else f"host={pg.host} port={pg.port} dbname=postgres user={user}"
    return psycopg.connect(conninfo, password=password, connect_timeout=5)


@pytest.mark.postgres
def test_postgres_is_logical_and_the_app_role_is_least_privilege(postgres: Settings) -> None:
    status = PostgresService(postgres).status()
    assert status.state == "up" and status.version and status.version.startswith("15")
    with _connect(postgres) as conn:
        superuser, owner = conn.execute(
            "SELECT r.rolsuper, pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
            "WHERE r.rolname = current_user AND d.datname = current_database()"
        ).fetchone()
        assert superuser is False
        assert owner == postgres.warehouse.user
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)


@pytest.mark.postgres
def test_the_superuser_cannot_log_in_over_tcp(postgres: Settings) -> None:
    psycopg = pytest.importorskip("psycopg")
    with pytest.raises(psycopg.OperationalError):
        _connect(postgres, user="postgres").close()


@pytest.mark.redis
def test_redis_answers_ping(redis_service: Settings) -> None:
    redis = pytest.importorskip("redis")
    host, port = redis_service.redis.host, redis_service.redis.port
    anonymous = redis.Redis(host=host, port=port, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()  # password-protected
    anonymous.close()
    client = redis.Redis(
        host=host, port=port, password=RedisService(redis_service).password, socket_timeout=5
    )
    try:
        assert client.ping() is True
    finally:
        client.close()
    assert RedisService(redis_service).status().version


@pytest.mark.kafka
def test_kafka_creates_and_lists_a_topic(kafka: Settings, unique_name: str) -> None:
    admin_module = pytest.importorskip("confluent_kafka.admin")
    admin = admin_module.AdminClient({"bootstrap.servers": kafka.bus.bootstrap_servers})
    futures = admin.create_topics(
        [admin_module.NewTopic(unique_name, num_partitions=2, replication_factor=1)]
    )
    futures[unique_name].result(timeout=30)
    try:
        topics = admin.list_topics(timeout=10).topics
        assert unique_name in topics
        assert len(topics[unique_name].partitions) == 2
    finally:
        admin.delete_topics([unique_name])[unique_name].result(timeout=30)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.kafka
def test_up_again_leaves_running_services_alone(
    postgres: Settings, redis_service: Settings, kafka: Settings
) -> None:
    services = [s for s in select_services(postgres) if s.our_pid() is not None]
    if not services:
        pytest.skip("the running services were not started by `dotjoin services up` (external)")
    before = {s.name: s.our_pid() for s in services}
    assert [s.ensure_up() for s in services] == [False] * len(services)
    assert {s.name: s.our_pid() for s in services} == before


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.kafka
@pytest.mark.connect
@pytest.mark.objectstore
@pytest.mark.trino
@pytest.mark.mlflow
@pytest.mark.prometheus
def test_cli_status_reports_every_service_up(
    postgres: Settings,
    redis_service: Settings,
    kafka: Settings,
    connect_worker: Settings,
    trino_service: Settings,
    mlflow_service: Settings,
    prometheus_service: Settings,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOTJOIN_PROFILE"}
    result = subprocess.run(
        [sys.executable, "-m", "dotjoin.cli.main", "services", "status", "--output", "json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["service"]: row for row in json.loads(result.stdout)}
    assert {name: row["state"] for name, row in rows.items()} == dict.fromkeys(SERVICES, "up")  # every one
    assert all(row["version"] for row in rows.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.redis
def test_a_private_redis_survives_kill_9_and_up_is_idempotent(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    settings = load_settings(profile="stack", cwd=tmp_path, env={"DOTJOIN__REDIS__PORT": str(_free_port())})
    service = RedisService(settings)
    try:
        assert service.ensure_up() is True
        first = service.our_pid()
        assert service.ensure_up() is False and service.our_pid() == first
        assert first is not None
        os.kill(first, signal.SIGKILL)
        process.wait_for(lambda: process.process_start_time(first) is None, timeout=10)
        # the kernel may take a moment to close the dead server's listening socket under load
        assert process.wait_for(lambda: service.status().state == "down", timeout=10)
        assert service.ensure_up() is True  # the stale pid file is cleaned and Redis restarts
        assert service.our_pid() not in (None, first)
        assert service.is_up()
    finally:
        service.stop()
    assert not service.is_up() and not service.pid_file.exists()
