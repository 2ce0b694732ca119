"""`dotjoin features` as a user meets it: the definitions, a backfill and the parity check of a stream."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.unit.cli.test_cli import dotjoin


def test_list_backfill_and_parity_of_a_simulated_stream(tmp_path: Path) -> None:
    listed = json.loads(dotjoin("features", "list", "-o", "json", cwd=tmp_path).stdout)
    assert len(listed) == 36 and {"card_sum_1h", "merchant_mean_hl24h"} <= {f["feature"] for f in listed}

    sim = dotjoin("payments", "simulate", "--out", "pay", "--eps", "50", "--duration", "120", "--seed", "2",
                  "--start", "2026-01-01T00:00:00", cwd=tmp_path)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    out = tmp_path / "features.parquet"
    done = dotjoin("features", "backfill", "pay/events.jsonl", "--out", str(out), "-o", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    counts = report["counts"]
    assert counts["input"] == counts["output"] + counts["duplicates"] + counts["quarantined"]
    table = pq.read_table(out)
    assert table.num_rows == counts["output"] and table.column_names[0] == "event_id"
    assert len(set(table.column("event_id").to_pylist())) == table.num_rows

    checked = dotjoin("features", "parity", "pay/events.jsonl", "-o", "json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    parity = json.loads(checked.stdout)
    assert parity["status"] == "succeeded" and parity["metrics"]["mismatched"] == 0
    assert parity["metrics"]["agreeing"] > 0

    missing = dotjoin("features", "parity", "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 1 and "nope.jsonl" in missing.stderr and "Traceback" not in missing.stderr


def test_get_reads_the_online_store_and_names_a_bad_time(tmp_path: Path) -> None:
    got = dotjoin("features", "get", "--card", "c1", "--merchant", "m1", "--at", "2026-01-01T00:00:00",
                  "-o", "json", cwd=tmp_path)  # fmt: skip
    assert got.returncode == 0, got.stderr
    values = json.loads(got.stdout)
    assert values["card_count_7d"] == 0 and values["merchant_mean_hl1h"] is None  # nothing streamed yet
    bad = dotjoin("features", "get", "--card", "c1", "--merchant", "m1", "--at", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "--at" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_train_registers_a_version_and_promotion_is_gated(tmp_path: Path) -> None:
    # A labelled simulated stream → features as known → walk-forward backtest → MLflow (SQLite) version 1;
    # the same stream with labels on random payments trains version 2, whose backtest fails the gate: refused.
    sim = dotjoin("payments", "simulate", "--out", "pay", "--eps", "100", "--duration", "300", "--seed", "3",
                  "--fraud-rate", "0.02", "--start", "2026-01-01T00:00:00", cwd=tmp_path)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    trained = dotjoin("features", "train", "pay/events.jsonl", "--labels", "pay/labels.jsonl", "--folds", "3",
                      "-o", "json", cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert report["params"]["version"] == "1" and len(report["params"]["dataset_sha256"]) == 64
    assert report["metrics"]["backtest_auc_min"] > 0.7
    beats = next(c for c in report["checks"] if c["name"].startswith("beats the streaming detector"))
    assert beats["passed"], beats["detail"]  # merchants.csv beside the stream: the forest on the same folds

    from dotjoin.pipelines.payments.history import read_recorded

    payments = read_recorded(tmp_path / "pay/events.jsonl").payments
    noise = "".join(json.dumps({"event_id": p.event_id, "typology": "stealthy", "scenario_id": "x"}) + "\n"
                    for p in payments[::50])  # fmt: skip
    (tmp_path / "noise.jsonl").write_text(noise)
    bad = dotjoin("features", "train", "pay/events.jsonl", "--labels", "noise.jsonl", "--folds", "1",
                  "-o", "json", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 0, bad.stderr
    assert json.loads(bad.stdout)["metrics"]["backtest_auc_min"] < 0.7
    refused = dotjoin("features", "promote", "2", cwd=tmp_path)
    assert refused.returncode == 1 and "not promoted" in refused.stderr and "Traceback" not in refused.stderr
    promoted = dotjoin("features", "promote", "1", "-o", "json", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    champion = json.loads(promoted.stdout)
    assert (champion["alias"], champion["version"]) == ("champion", "1")
    assert champion["backtest_auc_min"] == report["metrics"]["backtest_auc_min"]
