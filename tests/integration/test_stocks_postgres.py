"""The stocks flow on the stack's PostgreSQL: the criteria of tests/unit/pipelines/stocks/test_flow_duckdb.py.

The database is shared with other runs, and a load replaces a whole date: each test takes its own random
date before 2024 (the flow starts in 2024, so no real schedule writes there) and deletes it afterwards.
Raw files and run reports go to the test's temporary state directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from dotjoin.config import Settings
from dotjoin.orchestration.steps import StepFailed
from dotjoin.pipelines.stocks.trading_days import is_trading_day
from dotjoin.platform.runs import RunStore
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.sources.app import FaultConfig, SourceState, running
from tests.unit.pipelines.stocks.support import (
    SYMBOLS,
    checksum,
    expected,
    partition,
    quarantined,
    run_step,
    run_steps,
    stock_settings,
)

pytestmark = pytest.mark.postgres

FAULTS = FaultConfig(fail_rate=0.3, rate_limit=4, dup_rate=1.0, shuffle=True, truncate_rate=0.2, seed=5)


def _day(trading: bool) -> date:
    """A random date of 2001-2023 that is (or is not) a trading day."""
    day = date(2001, 1, 1) + timedelta(days=uuid.uuid4().int % 8000)
    while is_trading_day(day) != trading:
        day += timedelta(days=1)
    return day


def _cleanup(settings: Settings, day: date) -> None:
    with open_warehouse(settings) as wh, wh.transaction():
        if wh.table_exists("stock_prices_daily"):
            wh.execute("DELETE FROM stock_prices_daily WHERE trade_date = $1", [day])
        if wh.table_exists("quarantine"):
            wh.execute(
                "DELETE FROM quarantine WHERE pipeline = 'stocks' AND starts_with(source, $1)",
                [f"stocks/trade_date={day}/"],
            )


@pytest.fixture
def settings(postgres: Settings, tmp_path: Path) -> Settings:
    return stock_settings(postgres, state_dir=tmp_path / ".dotjoin")


@pytest.fixture
def trading_day(settings: Settings) -> Iterator[date]:
    day = _day(True)
    yield day
    _cleanup(settings, day)


def test_a_trading_day_is_exact_idempotent_and_fault_tolerant_on_postgres(
    settings: Settings, trading_day: date
) -> None:
    state = SourceState()
    with running(state) as url:
        first = run_steps(settings, trading_day, url)
        assert partition(settings, trading_day) == expected(state.stocks, SYMBOLS, trading_day)
        assert first["quality_check"]["rows"] == len(SYMBOLS)
        before = checksum(settings, trading_day)
        second = run_steps(settings, trading_day, url)
    assert checksum(settings, trading_day) == before == second["load_prices"]["checksum"]
    assert (second["load_prices"]["rows"], second["load_prices"]["quarantined"]) == (3, 0)
    faulty = SourceState(faults=FAULTS)
    with running(faulty) as url:
        third = run_steps(settings, trading_day, url)
    assert checksum(settings, trading_day) == before
    assert third["load_prices"]["duplicates"] == 3
    report = RunStore(settings.runs_dir).get(third["load_prices"]["run_id"])
    assert report.counts == {"input": 6, "output": 3, "duplicates": 3, "quarantined": 0}


def test_a_non_trading_day_loads_nothing_and_passes_on_postgres(settings: Settings) -> None:
    day = _day(False)
    try:
        with running(SourceState()) as url:
            meta = run_steps(settings, day, url)
        assert (meta["load_prices"]["rows"], meta["quality_check"]["trading_day"]) == (0, False)
        assert partition(settings, day) == []
    finally:
        _cleanup(settings, day)


def test_rejects_are_quarantined_and_bad_rows_fail_the_checks_on_postgres(
    settings: Settings, trading_day: date
) -> None:
    state = SourceState()
    state.stocks.overrides[("msft.us", trading_day)] = f"{trading_day},1,2,0.5,1.5"
    with running(state) as url:
        meta = run_steps(settings, trading_day, url, until="load_prices")
        assert (meta["load_prices"]["rows"], meta["load_prices"]["quarantined"]) == (2, 1)
        (rejected,) = quarantined(settings, trading_day)
        assert rejected["source"] == f"stocks/trade_date={trading_day}/msft.us.csv"
        assert (rejected["position"], rejected["reason"]) == ("2", "ragged_row")
        report = RunStore(settings.runs_dir).get(meta["load_prices"]["run_id"])
        assert report.status == "succeeded"  # row_accounting: 3 = 2 + 1
        with pytest.raises(
            StepFailed, match=rf"stocks quality {trading_day}: 2 check\(s\) failed: row_count"
        ):
            run_step("quality_check", settings, trading_day, url, meta)
        del state.stocks.overrides[("msft.us", trading_day)]
        meta = run_steps(settings, trading_day, url, until="load_prices")
        assert quarantined(settings, trading_day) == []
        with open_warehouse(settings) as wh:
            wh.execute(
                'UPDATE stock_prices_daily SET "high" = "low" - 1 WHERE trade_date = $1 AND symbol = $2',
                [trading_day, "aapl.us"],
            )
        with pytest.raises(StepFailed) as failed:
            run_step("quality_check", settings, trading_day, url, meta)
    assert str(failed.value) == (
        f"stocks quality {trading_day}: 1 check(s) failed: "
        "ohlc_consistent (1 row(s) outside low <= open, close <= high)"
    )
