"""Contract checks compiled for DuckDB, on a hand-made table whose every defect is counted by hand
(``quality_case``); the PostgreSQL and Trino runs of the same case are integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotjoin.exceptions import ConfigError
from dotjoin.platform.files.schema import Schema
from dotjoin.platform.quality.checks import CheckEngine, run_checks
from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse
from tests.unit.platform import quality_case as case


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    warehouse.load_arrow("orders", case.ORDERS)
    warehouse.load_arrow("customers", case.CUSTOMERS)
    return warehouse


def test_every_check_of_the_contract_on_duckdb_equals_the_hand_count(wh: DuckDBWarehouse) -> None:
    case.compare(run_checks(case.contract(), CheckEngine.of(wh), now=case.NOW))


def test_a_partition_is_checked_alone_and_named(wh: DuckDBWarehouse) -> None:
    checks = run_checks(case.contract(), CheckEngine.of(wh), partition=("status", "paid"), now=case.NOW)
    by_name = {c.name: c for c in checks}
    assert (
        by_name["invalidValues:amount"].observed == 2
        and by_name["invalidValues:amount"].partition == "status=paid"
    )
    assert by_name["rowCount"].observed == 9  # the paid rows
    assert by_name["invalidValues:status"].passed  # 'lost' and 'LOST' are other partitions


def test_the_same_table_repaired_passes_everything(wh: DuckDBWarehouse) -> None:
    wh.execute("DELETE FROM orders WHERE order_id IS NULL OR customer_id IS NULL")
    wh.execute("UPDATE orders SET order_id = 'o08', status = 'paid' WHERE status = 'lost'")
    wh.execute("UPDATE orders SET status = 'paid', customer_id = 'c1' WHERE order_id IN ('o05', 'o10')")
    wh.execute("UPDATE orders SET amount = 1, ordered_at = $1", [case.NOW])
    checks = run_checks(case.contract(), CheckEngine.of(wh), now=case.NOW)
    assert [c.detail for c in checks if not c.passed] == []
    assert {c.name: c.observed for c in checks}["rowCount"] == 10


def test_a_rule_that_cannot_compile_names_itself() -> None:
    bad = Schema.model_validate({"name": "t", "schema": [{"name": "t", "properties": [
        {"name": "a", "quality": [{"metric": "invalidValues"}]}]}]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"invalidValues on a: give arguments\.validValues"):
        run_checks(bad, CheckEngine("duckdb", lambda sql, params: None))  # type: ignore[arg-type, return-value]


def test_a_key_column_also_marked_unique_is_checked_once(wh: DuckDBWarehouse) -> None:
    contract = Schema.model_validate({"name": "customers", "schema": [{"name": "customers", "properties": [
        {"name": "id", "primaryKey": True, "unique": True}]}]})  # fmt: skip
    names = [c.name for c in run_checks(contract, CheckEngine.of(wh))]
    assert names == ["duplicateValues:id"]


def _daily(wh: DuckDBWarehouse, counts: list[int]) -> None:
    """``events``: ``counts[d]`` rows on day d of a series ending on 2026-05-31."""
    import datetime as dt

    import pyarrow as pa

    end = dt.datetime(2026, 5, 31, 12, tzinfo=dt.UTC)
    times = [end - dt.timedelta(days=len(counts) - 1 - d) for d, n in enumerate(counts) for _ in range(n)]
    wh.execute("DROP TABLE IF EXISTS events")
    wh.load_arrow("events", pa.table({"at": pa.array(times, pa.timestamp("us", tz="UTC"))}))


VOLUME = Schema.model_validate({"name": "events", "schema": [{"name": "events",
    "properties": [{"name": "at"}],
    "quality": [{"type": "custom", "engine": "dotjoin", "implementation": "volumeAnomaly",
                 "arguments": {"column": "at"}}]}]})  # fmt: skip


def test_a_volume_anomaly_on_the_newest_day_fails_with_its_band(wh: DuckDBWarehouse) -> None:
    weekly = [100, 104, 98, 101, 99, 60, 55]  # weekday, weekday, ..., a weekend dip
    history = [n + (d % 3) for d, n in enumerate(weekly * 8)]  # eight weeks of it
    _daily(wh, [*history, 30])  # the newest day, a Tuesday-like day, at under a third of its usual
    (check,) = run_checks(VOLUME, CheckEngine.of(wh))
    assert (check.name, check.passed, check.observed, check.dataset) == (
        "anomaly:volume",
        False,
        30,
        "events",
    )
    assert check.partition == "day=2026-05-31" and "drop" in (check.detail or "")
    _daily(wh, [*history, history[-7]])  # the same day a week earlier: normal
    (check,) = run_checks(VOLUME, CheckEngine.of(wh))
    assert check.passed and check.severity == "error"
    _daily(wh, [*history[:-14], 0, *history[-13:]])  # a day with no rows is a count of 0, not a gap
    counts = wh.query('SELECT COUNT(DISTINCT CAST("at" AS DATE)) FROM events').column(0)[0].as_py()
    assert counts == len(history) - 1 and run_checks(VOLUME, CheckEngine.of(wh))[0].passed


def test_too_short_a_history_is_no_decision(wh: DuckDBWarehouse) -> None:
    _daily(wh, [100, 101, 99, 100, 102, 60, 58])
    (check,) = run_checks(VOLUME, CheckEngine.of(wh))
    assert check.passed and check.severity == "warning" and "insufficient history" in (check.detail or "")
