"""`dotjoin features` as a user meets it: the definitions, a backfill and the parity check of a stream."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

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
