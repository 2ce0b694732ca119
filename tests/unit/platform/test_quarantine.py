from __future__ import annotations

from dotjoin.config import Settings
from dotjoin.platform.quality.quarantine import Quarantine
from dotjoin.platform.warehouse import open_warehouse


def test_quarantine_is_keyed_by_position_and_keeps_raw_text(local_settings: Settings) -> None:
    q = Quarantine("p", "run-1")
    q.reject(source="in.csv", position=3, reason="bad_date", detail="day 32", raw="a,\x00,32/01")
    q.reject(source="in.csv", position=7, reason="bad_date", raw="x")
    assert q.by_reason() == {"bad_date": 2}
    with open_warehouse(local_settings) as wh:
        assert q.flush(wh) == 2
        Quarantine("p", "run-2", list(q.records)).flush(wh)  # the same rejects again: no new rows
        rows = wh.query("SELECT position, reason, raw, run_id FROM quarantine ORDER BY position").to_pylist()
    assert [(r["position"], r["run_id"]) for r in rows] == [("3", "run-2"), ("7", "run-2")]
    assert rows[0]["raw"] == "a,\\x00,32/01"
