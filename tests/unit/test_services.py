"""The services mechanism without real engines: registry, pid files, lifecycle, rendered configs, CLI.

Processes here are real (``sleep``, ``sh``, a tiny Python TCP listener); only the engines are absent.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError
from dotjoin.services import SERVICES, process, select_services
from dotjoin.services.base import PortInUseError, Service, ServiceError, ServiceStartError
from dotjoin.services.kafka import new_cluster_id, pom_version, render_server_properties
from dotjoin.services.postgres import render_conf, render_hba
from dotjoin.services.redis import render_conf as render_redis_conf
from dotjoin.services.secretfile import store_secret

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeService(Service):
    """A stand-in engine: a Python process listening on a port (or any command a test sets)."""

    name: ClassVar[str] = "fake"
    start_timeout: ClassVar[float] = 10.0
    stop_timeout: ClassVar[float] = 5.0
    script = (
        "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])));"
        "s.listen(); time.sleep(60)"
    )

    def __init__(self, settings: Settings, port: int, command: list[str] | None = None) -> None:
        super().__init__(settings)
        self._port, self._command = port, command

    host = "127.0.0.1"  # type: ignore[assignment]

    @property
    def port(self) -> int:
        return self._port

    def check_prerequisites(self) -> None:
        pass

    def install(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return self._command or [sys.executable, "-c", self.script, str(self._port)]

    def probe(self) -> str:
        if not process.port_open(self.host, self.port):
            raise ConnectionError("closed")
        return "1.0"


ALL = (
    "postgres",
    "objectstore",
    "redis",
    "kafka",
    "connect",
    "trino",
    "mlflow",
    "airflow",
    "pushgateway",
    "prometheus",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(profile="stack", cwd=tmp_path, env={})


def test_registry_names_match_classes_and_default_order(settings: Settings) -> None:
    assert {name: cls.name for name, cls in SERVICES.items()} == {n: n for n in ALL}
    assert [s.name for s in select_services(settings)] == list(ALL)
    assert [s.name for s in select_services(settings, ["kafka", "redis"])] == ["redis", "kafka"]
    known = "known: " + ", ".join(ALL)
    with pytest.raises(ServiceError, match=rf"unknown service 'nope'.*{known}"):
        select_services(settings, ["nope"])


def test_unknown_enabled_service_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dotjoin.toml").write_text('[services]\nenabled = ["postgres", "mongo"]\n')
    settings = load_settings(cwd=tmp_path, env={})
    with pytest.raises(ConfigError, match=r"'mongo'.*services\.enabled"):
        select_services(settings)


def test_service_files_live_under_the_state_dir(settings: Settings) -> None:
    pg = select_services(settings, ["postgres"])[0]
    assert pg.pid_file == settings.state_dir / "services" / "postgres" / "postgres.pid"
    assert pg.log_file.name == "postgres.log" and pg.address == "127.0.0.1:5432"


def test_pid_file_tracks_a_live_process_and_stop_removes_it(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "s.pid", tmp_path / "s.log"
    pid = process.spawn(["sleep", "30"], log_file=log_file, pid_file=pid_file)
    assert process.read_live_pid(pid_file) == pid
    assert process.stop_process(pid, timeout=5) is True
    assert process.process_start_time(pid) is None
    assert process.read_live_pid(pid_file) is None and not pid_file.exists()  # stale file cleaned
    assert "=== dotjoin: starting" in log_file.read_text()


def test_a_pid_file_naming_someone_elses_process_is_stale(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()}\n1\n")  # our test process, but not the recorded start time
    assert process.read_live_pid(pid_file) is None
    assert not pid_file.exists()


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    pid = process.spawn(
        ["sh", "-c", "trap '' TERM; sleep 30"], log_file=tmp_path / "l", pid_file=tmp_path / "p"
    )
    time.sleep(0.2)  # let the shell install its trap
    assert process.stop_process(pid, timeout=0.5) is False
    assert process.process_start_time(pid) is None


def test_up_twice_starts_one_process_and_down_stops_it(settings: Settings) -> None:
    service = FakeService(settings, free_port())
    assert service.ensure_up() is True
    pid = service.our_pid()
    assert pid is not None and service.is_up()
    assert service.ensure_up() is False  # idempotent: left alone
    assert service.our_pid() == pid
    status = service.status()
    assert (status.state, status.pid, status.version) == ("up", str(pid), "1.0")
    assert service.stop() is True
    assert not service.is_up() and service.status().state == "down"
    assert service.stop() is False  # nothing of ours left


def test_concurrent_ups_start_a_single_process(settings: Settings) -> None:
    port = free_port()
    services = [FakeService(settings, port) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        started = list(pool.map(lambda service: service.ensure_up(), services))
    try:
        assert sorted(started) == [False, False, True]
        assert len({service.our_pid() for service in services}) == 1
    finally:
        services[0].stop()


def test_changing_the_port_of_a_running_service_asks_for_a_restart(tmp_path: Path) -> None:
    settings = load_settings(profile="stack", cwd=tmp_path, env={})
    service = FakeService(settings, free_port())
    service.ensure_up()
    try:
        moved = FakeService(settings, free_port())
        with pytest.raises(ServiceError, match=r"runs on 127\.0\.0\.1:\d+ .*dotjoin services down fake"):
            moved.ensure_up()
    finally:
        service.stop()


def test_up_after_kill_9_cleans_the_stale_pid_and_restarts(settings: Settings) -> None:
    service = FakeService(settings, free_port())
    service.ensure_up()
    old = service.our_pid()
    assert old is not None
    os.kill(old, 9)
    process.wait_for(lambda: process.process_start_time(old) is None, timeout=5)
    assert service.ensure_up() is True
    assert service.our_pid() not in (None, old)
    service.stop()


def test_a_process_that_dies_during_startup_is_reported_with_its_log(settings: Settings) -> None:
    service = FakeService(settings, free_port(), ["sh", "-c", "echo 'FATAL: boom' >&2; exit 3"])
    with pytest.raises(ServiceStartError, match=r"(?s)fake exited during startup.*FATAL: boom"):
        service.ensure_up()
    assert not service.pid_file.exists()


def test_a_port_taken_by_a_foreign_process_is_refused(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        service = FakeService(settings, sock.getsockname()[1])
        with pytest.raises(PortInUseError, match=r"already taken by .*did not start"):
            service.ensure_up()
        assert service.status().pid == "external"
    assert service.stop() is False


def test_non_loopback_hosts_are_refused(tmp_path: Path) -> None:
    settings = load_settings(profile="stack", cwd=tmp_path, env={"DOTJOIN__REDIS__HOST": "0.0.0.0"})
    with pytest.raises(ServiceError, match="loopback only"):
        select_services(settings, ["redis"])[0].ensure_up()


def test_postgres_config_is_logical_loopback_and_scram() -> None:
    conf = render_conf(host="127.0.0.1", port=5432, socket_dir=Path("/x/run"))
    for line in ("wal_level = logical", "listen_addresses = '127.0.0.1'", "max_replication_slots = 10",
                 "max_wal_senders = 10", "unix_socket_directories = '/x/run'"):  # fmt: skip
        assert line in conf
    hba = [line.split() for line in render_hba().splitlines() if line and not line.startswith("#")]
    assert all(row[-1] != "trust" for row in hba)
    host_rows = [row for row in hba if row[0] == "host"]
    assert host_rows[0][2] == "postgres" and host_rows[0][-1] == "reject"  # superuser never over TCP
    assert {row[-1] for row in host_rows[2:]} == {"scram-sha-256"}


def test_kafka_and_redis_configs_follow_the_settings(tmp_path: Path) -> None:
    props = render_server_properties(
        host="127.0.0.1", port=9092, controller_port=9193, log_dir=tmp_path, partitions=4
    )
    assert "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9193" in props
    assert "controller.quorum.voters=1@127.0.0.1:9193" in props
    for line in ("offsets.topic.replication.factor=1", "transaction.state.log.min.isr=1", "num.partitions=4",
                 "group.initial.rebalance.delay.ms=0", f"log.dirs={tmp_path}"):  # fmt: skip
        assert line in props.splitlines()
    redis = render_redis_conf(host="127.0.0.1", port=6380, data_dir=tmp_path, password="s3cret")
    assert "bind 127.0.0.1" in redis and "port 6380" in redis and "daemonize no" in redis
    assert "requirepass s3cret" in redis


def test_kafka_cluster_ids_are_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cid) for cid in ids)


def test_compose_and_pom_pin_the_same_kafka_version() -> None:
    version = pom_version()
    compose = (REPO_ROOT / "compose.yaml").read_text()
    assert f"apache/kafka:{version}" in compose


def test_generated_secrets_are_private_and_read_back_by_settings(tmp_path: Path) -> None:
    state = tmp_path / ".dotjoin"
    state.mkdir()
    (state / "secrets.toml").write_text("[redis]\nport = 6390\n")
    path = store_secret(state, "warehouse", "password", 'p"w\\x')
    assert path.stat().st_mode & 0o777 == 0o600
    settings = load_settings(cwd=tmp_path, env={})
    assert settings.warehouse.password is not None
    assert settings.warehouse.password.get_secret_value() == 'p"w\\x'
    assert settings.redis.port == 6390  # other sections kept


def test_cli_status_json_reports_down_services(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    env.update({"DOTJOIN__WAREHOUSE__PORT": str(free_port()), "DOTJOIN__REDIS__PORT": str(free_port()),
                "DOTJOIN__BUS__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "DOTJOIN__SERVICES__AIRFLOW_PORT": str(free_port()),
                "DOTJOIN__SERVICES__CONNECT_PORT": str(free_port()),
                "DOTJOIN__OBJECTSTORE__ENDPOINT": f"http://127.0.0.1:{free_port()}",
                "DOTJOIN__SERVICES__TRINO_PORT": str(free_port()),
                "DOTJOIN__SERVICES__MLFLOW_PORT": str(free_port()),
                "DOTJOIN__SERVICES__PUSHGATEWAY_PORT": str(free_port()),
                "DOTJOIN__SERVICES__PROMETHEUS_PORT": str(free_port())})  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "dotjoin.cli.main", "services", "status", "--output", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["service"], r["state"], r["pid"]) for r in rows] == [(name, "down", None) for name in ALL]
    bad = subprocess.run(
        [sys.executable, "-m", "dotjoin.cli.main", "services", "up", "mongo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "unknown service 'mongo'" in bad.stderr


def test_trino_and_objectstore_files_hold_no_secret(settings: Settings) -> None:
    from dotjoin.services.objectstore import render_properties
    from dotjoin.services.trino import TrinoService

    trino = TrinoService(settings)
    assert trino.server_config()["node.bind-ip"] == "127.0.0.1"
    catalogs = trino.catalogs()
    iceberg = catalogs["dotjoin"]
    assert (
        iceberg["iceberg.catalog.type"] == "jdbc"
        and iceberg["iceberg.jdbc-catalog.catalog-name"] == "dotjoin"
    )
    assert iceberg["iceberg.jdbc-catalog.default-warehouse-dir"] == "s3://dotjoin/lake"
    assert iceberg["iceberg.jdbc-catalog.connection-password"] == "${ENV:DOTJOIN_WAREHOUSE_PASSWORD}"
    assert iceberg["s3.aws-secret-key"] == "${ENV:DOTJOIN_OBJECTSTORE_SECRET_KEY}"
    assert catalogs["postgresql"]["connection-password"] == "${ENV:DOTJOIN_WAREHOUSE_PASSWORD}"
    local = load_settings(profile="local", cwd=settings.state_dir.parent, env={})
    assert TrinoService(local).catalogs()["dotjoin"]["iceberg.jdbc-catalog.default-warehouse-dir"] == (
        "s3://dotjoin/lake"  # services serve the stack's lake whatever profile starts them
    )
    text = render_properties(endpoint="http://127.0.0.1:9000", access_key="k", secret_key="s3cr3t",
                             data_dir=Path("/d"))  # fmt: skip
    assert "s3proxy.credential=s3cr3t" in text and "s3proxy.ignore-unknown-headers=true" in text
