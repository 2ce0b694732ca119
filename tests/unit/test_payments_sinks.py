"""The alert sinks both runtimes share: the warehouse upsert (multi-row statements) and the lake table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dotjoin.config import load_settings
from dotjoin.pipelines.payments.detector import Alert
from dotjoin.pipelines.payments.sinks import (
    ALERTS_TABLE,
    LAKE_ALERTS_TABLE,
    AlertLake,
    alerts_arrow,
    alerts_ddl,
    write_alerts,
)
from dotjoin.platform.lake import open_lake
from dotjoin.platform.warehouse import open_warehouse


def _alert(i: int, score: float = 0.5) -> Alert:
    return Alert(f"e{i:05d}", f"c{i % 7}", "m1", 1_796_000_000_000 + i, 10.0 + i, score, 0.1,
                 ("amount_spike",), ("classifier",), f"amount_ratio {i}")  # fmt: skip


def test_the_warehouse_upsert_spans_statements_and_rewrites_by_event_id(tmp_path: Path) -> None:
    settings = load_settings(profile="local", cwd=tmp_path, env={})
    first = [_alert(i) for i in range(1234)]  # three statements of at most 500 rows
    again = [_alert(i, score=0.9) for i in range(1000, 1500)]  # 234 rewritten, 266 new
    with open_warehouse(settings) as wh:
        wh.execute(alerts_ddl())
        write_alerts(wh, first)
        write_alerts(wh, first)  # a replayed batch: nothing changes
        write_alerts(wh, [*again, again[0]])  # a key twice in one batch: one row per key per statement
        rows = wh.query(
            f"SELECT event_id, score, event_time FROM {ALERTS_TABLE} ORDER BY event_id"
        ).to_pylist()
    assert len(rows) == 1500
    assert [r["score"] for r in rows] == [0.5] * 1000 + [0.9] * 500
    assert int(rows[7]["event_time"].timestamp() * 1000) == first[7].event_time_ms


def test_the_lake_table_is_upserted_by_event_id(tmp_path: Path) -> None:
    settings = load_settings(profile="local", cwd=tmp_path, env={})
    lake = AlertLake(settings)
    lake.write([_alert(i) for i in range(10)])
    lake.write([_alert(i, score=0.9) for i in range(5, 15)])  # a replay overlapping the first write
    lake.close()
    with open_lake(settings) as opened:
        table = opened.scan(LAKE_ALERTS_TABLE).sort_by("event_id")
    assert table.column("event_id").to_pylist() == [f"e{i:05d}" for i in range(15)]
    assert table.column("score").to_pylist() == [0.5] * 5 + [0.9] * 10
    assert alerts_arrow([]).num_rows == 0
    assert alerts_arrow([_alert(1), dataclasses.replace(_alert(1), score=0.7)]).column(
        "score"
    ).to_pylist() == [0.7]
