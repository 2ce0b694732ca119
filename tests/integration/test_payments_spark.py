"""Two runtimes, one logic, on the real broker: one recorded payments log is sent to Kafka, then the
embedded runner (a consumer group) and the Spark Structured Streaming job read it, and both write
exactly the alerts — row for row: scores, rules, explanations — that an offline replay of the
recorded file raises. A restart of the Spark job from its checkpoint (with the last micro-batch's
commit lost, as after a crash between the sink's write and Spark's commit) continues every card's
state and leaves the same table.

One Spark session for the test session (``spark_engine``: local[2], two shuffle partitions, 1 GiB
driver heap).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.payments.detector import Alert, Detector
from dotjoin.pipelines.payments.history import Reference, read_labels, read_recorded
from dotjoin.pipelines.payments.models import FraudModels
from dotjoin.pipelines.payments.offline import Replay, replay, train_models
from dotjoin.pipelines.payments.rules import load_rules
from dotjoin.pipelines.payments.runner import Runner
from dotjoin.pipelines.payments.sinks import AlertLake
from dotjoin.pipelines.payments.spark_job import run_spark
from dotjoin.platform.bus import DLQ_SUFFIX, open_bus
from dotjoin.platform.lake import open_lake
from dotjoin.platform.spark import SparkEngine
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.payments.output import write_log
from dotjoin.simulate.payments.stream import Emitted, generate
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.spark, pytest.mark.slow]

START = datetime(2026, 11, 2, tzinfo=UTC)
SEED = 11
PARTITIONS = 4
COLUMNS = ("event_id", "card_id", "merchant_id", "event_time", "amount", "score", "anomaly", "rules",
           "models", "explanation")  # fmt: skip


@dataclass
class Recorded:
    """The recorded log, its messages as sent, and what an offline replay of the file says."""

    directory: Path
    messages: list[Emitted]
    reference: Reference
    models_path: Path
    expected: dict[str, Replay]  # "rules" / "models" -> the replay


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("payments_spark")
    sim = generate(seed=SEED, eps=100, duration_s=180, start=START)
    write_log(sim, root / "log")
    # The day before, same world: the labelled history the models are trained on.
    write_log(generate(seed=SEED, eps=100, duration_s=300, start=START - timedelta(days=1)), root / "history")
    reference = Reference.read(root / "log" / "merchants.csv", root / "log" / "fx_rates.csv")
    history = read_recorded(root / "history" / "events.jsonl")
    labels = read_labels(root / "history" / "labels.jsonl")
    history.fraud = [p.event_id in labels for p in history.payments]
    models_path = root / "models.pickle"
    train_models(history, reference, seed=1).save(models_path)
    log = read_recorded(root / "log" / "events.jsonl")
    expected = {
        "rules": replay(log, reference, load_rules(), None),
        "models": replay(log, reference, load_rules(), FraudModels.load(models_path)),
    }
    return Recorded(root, list(sim), reference, models_path, expected)


@pytest.fixture
def stack(kafka: Settings, postgres: Settings) -> Settings:
    return kafka


@pytest.fixture
def topic(stack: Settings, unique_name: str) -> Iterator[str]:
    bus = open_bus(stack)
    bus.create_topic(unique_name, partitions=PARTITIONS)
    yield unique_name
    for suffix in ("", ".late", DLQ_SUFFIX):
        bus.delete_topic(unique_name + suffix)
    with open_warehouse(stack) as wh:
        for table in (f"{unique_name}_embedded", f"{unique_name}_spark"):
            wh.execute(f"DROP TABLE IF EXISTS {table}")
    with open_lake(stack) as lake:
        for table in (f"curated.{unique_name}_embedded", f"curated.{unique_name}_spark"):
            if lake.table_exists(table):
                lake.drop_table(table)


def _send(settings: Settings, topic: str, messages: list[Emitted]) -> None:
    """The simulator's messages as ``output.produce`` sends them (value, card_id key), to ``topic``."""
    with open_bus(settings).producer() as producer:
        for m in messages:
            producer.produce(topic, m.value, key=m.key)


def _stored(settings: Settings, table: str) -> list[tuple[Any, ...]]:
    with open_warehouse(settings) as wh:
        rows = wh.query(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY event_id").to_pylist()
    for r in rows:
        r["event_time"] = int(r["event_time"].timestamp() * 1000)
    return [tuple(r[c] for c in COLUMNS) for r in rows]


def _in_lake(settings: Settings, table: str) -> list[tuple[Any, ...]]:
    """The lake table's alerts, read back through PyIceberg (Spark wrote them through its catalog)."""
    with open_lake(settings) as lake:
        rows = lake.scan(f"curated.{table}").sort_by("event_id").to_pylist()
    for r in rows:
        r["event_time"] = int(r["event_time"].timestamp() * 1000)
    return [tuple(r[c] for c in COLUMNS) for r in rows]


def _rows(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    return sorted(
        (a.event_id, a.card_id, a.merchant_id, a.event_time_ms, a.amount, a.score, a.anomaly,
         ",".join(a.rules), ",".join(a.models), a.explanation)
        for a in alerts
    )  # fmt: skip


def _run_embedded(
    settings: Settings, topic: str, table: str, detector: Detector, checkpoint: Path, n: int
) -> Any:
    with open_warehouse(settings) as wh:
        runner = Runner(open_bus(settings), wh, detector, checkpoint=checkpoint, checkpoint_s=1.0,
                        group=f"{topic}-detector", topic=topic, table=table,
                        lake=AlertLake(settings, f"curated.{table}"))  # fmt: skip
        return runner.run(stop=lambda: runner.stats.consumed >= n, max_s=120)


@pytest.mark.parametrize("variant", ["rules", "models"])
def test_spark_and_the_embedded_runner_on_kafka_raise_the_replays_alerts(
    stack: Settings, topic: str, recorded: Recorded, spark_engine: SparkEngine, tmp_path: Path, variant: str
) -> None:
    expected = recorded.expected[variant]
    assert expected.alerts and expected.dead_letters and expected.late, "the log must exercise every path"
    models_path = recorded.models_path if variant == "models" else None
    _send(stack, topic, recorded.messages)
    n = len(recorded.messages)

    models = FraudModels.load(models_path) if models_path else None
    ref = recorded.reference
    detector = Detector(ref.merchants, load_rules(), models, usd_rates=ref.usd_rates)
    began = time.monotonic()
    embedded = _run_embedded(stack, topic, f"{topic}_embedded", detector, tmp_path / "runner.pickle", n)
    runner_s = time.monotonic() - began

    began = time.monotonic()
    spark = run_spark(stack, reference=ref, models_path=models_path, topic=topic, table=f"{topic}_spark",
                      lake_table=f"curated.{topic}_spark", checkpoint=tmp_path / "spark",
                      engine=spark_engine)  # fmt: skip
    print(f"{variant}: {len(expected.alerts)} alerts, {n} messages; embedded runner {runner_s:.1f} s, "
          f"spark job {time.monotonic() - began:.1f} s ({spark.batches} batch(es))")  # fmt: skip

    want = _rows(expected.alerts)
    assert _stored(stack, f"{topic}_embedded") == want
    assert _stored(stack, f"{topic}_spark") == want
    # ... and the lake: Spark's MERGE INTO and the runner's PyIceberg upserts, one catalog
    assert _in_lake(stack, f"{topic}_embedded") == want
    assert _in_lake(stack, f"{topic}_spark") == want
    # Every message accounted for, and the side outputs the same in both runtimes.
    for stats in (embedded, spark):
        assert stats.consumed == n
        assert stats.dead_letters == len(expected.dead_letters)
        assert stats.late == len(expected.late)
        assert stats.duplicates == expected.counters.duplicates
        assert stats.alerts == len(expected.alerts)
    with open_bus(stack).consumer(f"{topic}-dlq-reader", [topic + DLQ_SUFFIX]) as consumer:
        dead: list[Any] = []
        deadline = time.monotonic() + 30
        while len(dead) < 2 * spark.dead_letters and time.monotonic() < deadline:
            dead.extend(consumer.consume(1000, timeout=0.5))
    origins = sorted(
        (m.headers["dlq.partition"], m.headers["dlq.offset"], m.headers["dlq.error"]) for m in dead
    )
    assert len(origins) == 2 * spark.dead_letters
    assert origins[::2] == origins[1::2], "each malformed message dead-lettered once by each runtime, alike"


def test_a_restart_from_the_spark_checkpoint_continues_each_cards_state(
    stack: Settings, topic: str, recorded: Recorded, spark_engine: SparkEngine, tmp_path: Path
) -> None:
    half = len(recorded.messages) // 2
    table, checkpoint = f"{topic}_spark", tmp_path / "spark"
    _send(stack, topic, recorded.messages[:half])
    lake_table = f"curated.{table}"
    first = run_spark(stack, reference=recorded.reference, topic=topic, table=table, lake_table=lake_table,
                      checkpoint=checkpoint, max_offsets_per_trigger=3000, engine=spark_engine)  # fmt: skip
    assert first.batches >= 2 and first.consumed == half
    # A crash after the last batch's sink write, before Spark committed it: the batch runs again.
    commits = sorted((checkpoint / "commits").glob("[0-9]*"), key=lambda p: int(p.name))
    for stale in (commits[-1], commits[-1].with_name(f".{commits[-1].name}.crc")):
        stale.unlink(missing_ok=True)
    _send(stack, topic, recorded.messages[half:])
    second = run_spark(stack, reference=recorded.reference, topic=topic, table=table, lake_table=lake_table,
                       checkpoint=checkpoint, engine=spark_engine)  # fmt: skip
    assert second.consumed > len(recorded.messages) - half  # the replayed batch, then the rest
    want = _rows(recorded.expected["rules"].alerts)
    assert _stored(stack, table) == want
    assert _in_lake(stack, table) == want  # the replayed batch merged, not appended twice


def test_sigkill_of_the_spark_process_mid_stream_and_a_restart_equal_a_clean_run(
    stack: Settings, topic: str, recorded: Recorded, tmp_path: Path, java: None
) -> None:
    """The Spark driver (and its JVM) killed with SIGKILL between micro-batches — or inside one —, then
    started again on the same checkpoint: the warehouse and the lake hold exactly the replay's alerts."""
    table = f"{topic}_spark"
    log = recorded.directory / "log"
    cmd = [
        sys.executable, str(Path(__file__).with_name("payments_spark_worker.py")), "--cwd", str(REPO_ROOT),
        "--topic", topic, "--table", table, "--lake-table", f"curated.{table}",
        "--checkpoint", str(tmp_path / "spark"), "--merchants", str(log / "merchants.csv"),
        "--fx", str(log / "fx_rates.csv"),
    ]  # fmt: skip
    _send(stack, topic, recorded.messages)
    live = subprocess.Popen([*cmd, "--every", "0.5", "--max-offsets", "1500"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while live.poll() is None and time.monotonic() < deadline:
            with open_warehouse(stack) as wh:
                if wh.table_exists(table) and wh.scalar(f"SELECT count(*) FROM {table}") > 0:
                    break
            time.sleep(0.5)
        assert live.poll() is None, live.stderr.read().decode()[-2000:] if live.stderr else ""
        time.sleep(1.0)  # a batch or two further: the kill lands wherever it lands
    finally:
        os.killpg(live.pid, signal.SIGKILL)  # the driver and its JVM
        live.wait(timeout=30)
    partial = _stored(stack, table)
    want = _rows(recorded.expected["rules"].alerts)
    assert 0 < len(partial) < len(want), "the kill must land mid-stream"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _stored(stack, table) == want
    assert _in_lake(stack, table) == want
