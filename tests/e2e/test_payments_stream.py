"""The payments detector on the embedded bus: the runner raises exactly the alerts an offline replay of
the same messages raises, routes malformed messages to the dead-letter topic with their error, and a
``kill -9`` mid-stream followed by a restart leaves the alerts table equal to an uninterrupted run.

The reference for both is the replay of the recorded log (``events.jsonl`` written by the simulator),
computed independently of the bus and the warehouse.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.payments.contract import TOPIC_DLQ, TOPIC_LABELS
from dotjoin.pipelines.payments.detector import Detector
from dotjoin.pipelines.payments.history import Reference, read_labels, read_recorded
from dotjoin.pipelines.payments.monitor import Monitor
from dotjoin.pipelines.payments.offline import replay
from dotjoin.pipelines.payments.pipeline import CHECKPOINT_DIR
from dotjoin.pipelines.payments.rules import load_rules
from dotjoin.pipelines.payments.runner import Runner
from dotjoin.pipelines.payments.sinks import ALERTS_TABLE, LAKE_ALERTS_TABLE, AlertLake
from dotjoin.platform.bus import open_bus
from dotjoin.platform.lake import open_lake
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.payments.output import produce, write_log
from dotjoin.simulate.payments.stream import generate

START = datetime(2026, 11, 2, tzinfo=UTC)


def _simulate(directory: Path, eps: float = 200) -> Reference:
    write_log(generate(seed=11, eps=eps, duration_s=240, start=START), directory)
    return Reference.read(directory / "merchants.csv", directory / "fx_rates.csv")


def _expected_alerts(directory: Path, reference: Reference) -> set[str]:
    out = replay(read_recorded(directory / "events.jsonl"), reference, load_rules(), None)
    return {a.event_id for a in out.alerts}


def _stored_alerts(settings: Settings) -> list[str]:
    with open_warehouse(settings) as wh:
        return (
            wh.query(f"SELECT event_id FROM {ALERTS_TABLE} ORDER BY event_id").column("event_id").to_pylist()
        )


def _in_lake(settings: Settings) -> list[str]:
    """Event ids of the lake's alert table, duplicates kept (an Iceberg table has no primary key)."""
    with open_lake(settings) as lake:
        return sorted(lake.scan(LAKE_ALERTS_TABLE).column("event_id").to_pylist())


def _send(settings: Settings, eps: float = 200, pace: float = 0) -> None:
    """Send the simulated stream, as fast as possible (``pace`` 0) or at ``pace`` messages a second."""
    sim = generate(seed=11, eps=eps, duration_s=240, start=START)
    with open_bus(settings).producer() as producer:
        produce(sim, producer, eps=pace)


def test_the_embedded_runner_raises_the_replays_alerts_and_dead_letters_malformed_messages(
    local_settings: Settings, tmp_path: Path
) -> None:
    reference = _simulate(tmp_path / "log")
    expected = _expected_alerts(tmp_path / "log", reference)
    assert expected
    _send(local_settings)
    bus = open_bus(local_settings)
    detector = Detector(reference.merchants, load_rules(), usd_rates=reference.usd_rates)
    monitor = Monitor(None)
    with open_warehouse(local_settings) as wh:
        lake = AlertLake(local_settings)
        runner = Runner(bus, wh, detector, checkpoint=tmp_path / "checkpoint", checkpoint_s=0.5,
                        monitor=monitor, lake=lake, labels_topic=TOPIC_LABELS)  # fmt: skip
        stats = runner.run(idle_s=1.5)
    assert set(_stored_alerts(local_settings)) == expected
    assert _in_lake(local_settings) == sorted(expected)
    # The dashboard's precision and recall: the labels topic against the alerts, as the files say.
    labels = read_labels(tmp_path / "log" / "labels.jsonl")
    caught = len(expected & labels.keys())
    quality = monitor.quality()
    assert quality is not None and quality["labelled"] == len(labels)
    assert quality["precision"] == pytest.approx(caught / len(expected))
    assert quality["recall"] == pytest.approx(caught / len(labels))
    lines = sum(1 for line in (tmp_path / "log" / "events.jsonl").read_bytes().splitlines() if line.strip())
    assert stats.consumed == lines
    with bus.consumer("test-dlq-reader", [TOPIC_DLQ]) as dlq:
        dead = dlq.consume(10_000, timeout=1.0)
    assert len(dead) == stats.dead_letters > 0
    assert all(b": " in m.headers["dlq.error"] for m in dead)  # "<field>: <what is wrong>"


def test_kill_9_mid_stream_and_restart_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = load_settings(profile="local", cwd=run_dir, env={})
    reference = _simulate(tmp_path / "log", eps=1000)  # 240,000 messages
    expected = _expected_alerts(tmp_path / "log", reference)
    # Sent at 10,000 a second while the runner runs (it keeps up): the kill, after the first
    # checkpoint, lands mid-stream however fast the runner is.
    sender = threading.Thread(target=_send, args=(settings, 1000, 10_000))
    sender.start()
    env = {k: v for k, v in os.environ.items() if k != "DOTJOIN_PROFILE"}
    cmd = [
        sys.executable, "-m", "dotjoin", "-q", "payments", "detect", "--rules-only",
        "--merchants", str(tmp_path / "log" / "merchants.csv"), "--idle", "2", "-o", "json",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = settings.resolve(CHECKPOINT_DIR)
    deadline = time.monotonic() + 60
    while not list(checkpoints.glob("*.pickle")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # past the first checkpoint, in the middle of the stream
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert sender.is_alive(), "the kill came after the whole stream was sent: nothing was tested"
    sender.join()
    partial = _stored_alerts(settings) if settings.resolve("warehouse.duckdb").exists() else []
    assert len(partial) < len(expected), "the kill came after the whole stream: nothing was tested"
    rerun = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert set(_stored_alerts(settings)) == expected
    assert _in_lake(settings) == sorted(expected)  # each alert once: upserts, not appends, on replay


@pytest.fixture(autouse=True)
def _no_profile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOTJOIN_PROFILE", raising=False)


def test_a_failed_checkpoint_loses_nothing(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second checkpoint's write fails (a full disk): its offsets are not committed, its cards go
    into the next checkpoint and its lake alerts stay pending, so the files restore the live state and
    the lake still gets every alert."""
    from dotjoin.pipelines.payments.checkpoint import CheckpointStore

    reference = _simulate(tmp_path / "log")
    expected = _expected_alerts(tmp_path / "log", reference)
    _send(local_settings)
    write = CheckpointStore.write
    failed: list[int] = []

    def flaky(self: CheckpointStore, seq: int, *args: object) -> None:
        if seq == 2:
            failed.append(seq)
            raise OSError(28, "No space left on device")
        write(self, seq, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(CheckpointStore, "write", flaky)
    detector = Detector(reference.merchants, load_rules(), usd_rates=reference.usd_rates)
    with open_warehouse(local_settings) as wh:
        runner = Runner(open_bus(local_settings), wh, detector, checkpoint=tmp_path / "checkpoint",
                        checkpoint_s=0.2, lake=AlertLake(local_settings), batch_size=500)  # fmt: skip
        runner.run(idle_s=1.5)
    monkeypatch.setattr(CheckpointStore, "write", write)
    assert failed == [2] and runner.stats.checkpoints >= 2  # the first, and one after the failure
    restored = Detector(reference.merchants, load_rules(), usd_rates=reference.usd_rates)
    CheckpointStore(tmp_path / "checkpoint").load(restored)
    assert restored.card_states() == detector.card_states()
    assert set(_stored_alerts(local_settings)) == expected
    assert _in_lake(local_settings) == sorted(expected)
