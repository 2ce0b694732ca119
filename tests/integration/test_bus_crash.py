"""Acceptance: kill -9 a real consumer process mid-stream; after a restart the sink holds every id once.

100,000 keyed messages are produced; ``bus_sink_worker.py`` consumes them in batches, upserts each batch
into a warehouse table keyed by the message id and commits the offsets only after that write. The test
SIGKILLs the worker right after a sink write, *before* its commit (the worker sleeps there, so the kill
lands in that window), restarts it, and checks: exactly 100,000 rows, 100,000 distinct ids, none
missing — and the restarted worker really was re-sent rows that had already landed (at-least-once
delivery made exactly-once by the idempotent sink), and the group's offsets end at the log's end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.platform.bus import Bus, open_bus
from dotjoin.platform.warehouse import open_warehouse
from tests.conftest import REPO_ROOT

WORKER = Path(__file__).with_name("bus_sink_worker.py")
N = 100_000
KILL_AFTER_ROWS = 30_000


def _env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return {**env, **overrides}


def _spawn(
    profile: str, cwd: Path, env: dict[str, str], names: dict[str, str], *extra: str
) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), "--profile", profile, "--cwd", str(cwd), "--expect", str(N)]
    for flag in ("topic", "group", "table"):
        args += [f"--{flag}", names[flag]]
    return subprocess.Popen([*args, *extra], stdout=subprocess.PIPE, text=True, env=env)


def _events(proc: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    assert proc.stdout is not None
    for line in proc.stdout:
        yield json.loads(line)


def _produce(bus: Bus, topic: str) -> set[str]:
    bus.create_topic(topic, partitions=4)
    ids = {f"evt-{i:06d}" for i in range(N)}
    with bus.producer() as producer:
        for seq, event_id in enumerate(sorted(ids)):
            value = json.dumps({"id": event_id, "seq": seq, "amount": seq % 997}).encode()
            producer.produce(topic, value, key=event_id.encode())
    return ids


def _unconsumed(settings: Settings, bus: Bus, group: str, topic: str) -> int:
    """How many messages the group has not committed (0 when its offsets sit at the end of the log)."""
    if settings.bus.type == "embedded":
        with bus.consumer(group, [topic]) as consumer:
            return len(consumer.consume(N, timeout=0.5))
    from confluent_kafka import Consumer as RawConsumer
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.bus.bootstrap_servers})
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(4)])]
    committed = admin.list_consumer_group_offsets(request)[group].result(timeout=30).topic_partitions
    probe = RawConsumer({"bootstrap.servers": settings.bus.bootstrap_servers, "group.id": group + "-probe"})
    try:
        ends = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(4)}
    finally:
        probe.close()
    return sum(ends[tp.partition] - max(tp.offset, 0) for tp in committed)


def _scenario(profile: str, cwd: Path, overrides: dict[str, str], names: dict[str, str]) -> None:
    settings = load_settings(profile=profile, cwd=cwd, env=overrides)
    env = _env(overrides)
    bus = open_bus(settings)
    started = time.monotonic()
    try:
        ids = _produce(bus, names["topic"])

        first = _spawn(profile, cwd, env, names, "--commit-delay", "0.3")
        killed_at = 0
        for event in _events(first):
            if event["event"] == "sunk" and event["rows"] >= KILL_AFTER_ROWS:
                first.send_signal(signal.SIGKILL)  # the batch is in the sink, its offsets are not committed
                killed_at = event["rows"]
                break
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        assert KILL_AFTER_ROWS <= killed_at < N

        second = _spawn(profile, cwd, env, names)
        events = list(_events(second))
        assert second.wait(timeout=90) == 0, events[-3:]
        sunk = [e for e in events if e["event"] == "sunk"]
        redelivered = sum(e["received"] - e["inserted"] - e["updated"] for e in sunk)
        assert sum(e["inserted"] for e in sunk) == N - killed_at
        assert redelivered > 0  # the killed worker's last batch came again and changed nothing

        with open_warehouse(settings) as warehouse:
            table = names["table"]
            assert warehouse.scalar(f"SELECT count(*) FROM {table}") == N
            assert warehouse.scalar(f"SELECT count(DISTINCT id) FROM {table}") == N
            landed = set(warehouse.query(f"SELECT id FROM {table}").column("id").to_pylist())
            assert ids - landed == set() and landed - ids == set()
        assert _unconsumed(settings, bus, names["group"], names["topic"]) == 0
        assert time.monotonic() - started < 90
    finally:
        bus.delete_topic(names["topic"])
        if settings.warehouse.type == "postgres":
            with open_warehouse(settings) as warehouse:
                warehouse.execute(f"DROP TABLE IF EXISTS {names['table']}")


def _names(unique_name: str) -> dict[str, str]:
    return {"topic": f"{unique_name}_events", "group": f"{unique_name}_sink", "table": f"{unique_name}_sink"}


@pytest.mark.slow
def test_embedded_log_sink_survives_sigkill(tmp_path: Path, unique_name: str) -> None:
    _scenario("local", tmp_path, {}, _names(unique_name))


@pytest.mark.slow
@pytest.mark.kafka
def test_kafka_sink_survives_sigkill_duckdb(kafka: Settings, tmp_path: Path, unique_name: str) -> None:
    overrides = {k: v for k, v in os.environ.items() if k.startswith("DOTJOIN__")}
    overrides |= {
        "DOTJOIN__WAREHOUSE__TYPE": "duckdb",
        "DOTJOIN__WAREHOUSE__PATH": str(tmp_path / "wh.duckdb"),
    }
    _scenario("stack", REPO_ROOT, overrides, _names(unique_name))


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
def test_kafka_sink_survives_sigkill_postgres(kafka: Settings, postgres: Settings, unique_name: str) -> None:
    overrides = {k: v for k, v in os.environ.items() if k.startswith("DOTJOIN__")}
    _scenario("stack", REPO_ROOT, overrides, _names(unique_name))
