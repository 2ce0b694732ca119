"""The stocks flow step by step against the real local source server, on DuckDB.

tests/integration/test_stocks_postgres.py runs the same criteria on PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

from dotjoin.cli.registry import get_flow
from dotjoin.config import Settings
from dotjoin.exceptions import DataError, TransientError
from dotjoin.orchestration.steps import StepFailed
from dotjoin.pipelines.stocks.flow import FLOW
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

DAY = date(2024, 1, 2)  # a Tuesday
#: 5xx, 429 (a tiny server-side rate limit), every row sent twice and shuffled, bodies cut short.
FAULTS = FaultConfig(fail_rate=0.3, rate_limit=4, dup_rate=1.0, shuffle=True, truncate_rate=0.2, seed=5)


@pytest.fixture
def settings(local_settings: Settings) -> Settings:
    return stock_settings(local_settings)


def test_a_trading_day_loads_one_row_per_symbol_equal_to_the_source(settings: Settings) -> None:
    state = SourceState()
    with running(state) as url:
        meta = run_steps(settings, DAY, url)
    fetched = meta["fetch_prices"]
    raw = Path(fetched["raw_dir"])
    assert raw == Path(settings.state_dir, "lake", "raw", "stocks", "trade_date=2024-01-02")
    assert (fetched["files"], fetched["symbols"], fetched["data_lines"]) == (3, list(SYMBOLS), 3)
    assert sorted(p.name for p in raw.iterdir()) == [f"{s}.csv" for s in sorted(SYMBOLS)]  # no temp files
    for s in SYMBOLS:  # byte-for-byte what the server sent
        assert (raw / f"{s}.csv").read_bytes() == state.stocks.csv(s, DAY, DAY)
    assert fetched["bytes"] == sum((raw / f"{s}.csv").stat().st_size for s in SYMBOLS)
    assert partition(settings, DAY) == expected(state.stocks, SYMBOLS, DAY)
    loaded = meta["load_prices"]
    assert (loaded["rows"], loaded["quarantined"], loaded["duplicates"]) == (3, 0, 0)
    report = RunStore(settings.runs_dir).get(loaded["run_id"])
    assert report.status == "succeeded"
    assert report.counts == {"input": 3, "output": 3, "duplicates": 0, "quarantined": 0}
    assert meta["quality_check"]["rows"] == 3
    assert all(c["passed"] for c in meta["quality_check"]["checks"].values())
    assert meta["notify"]["summary"] == "3 symbols loaded, checks passed"


@pytest.mark.parametrize("day", [date(2024, 1, 6), date(2024, 3, 29)], ids=["saturday", "good-friday"])
def test_a_non_trading_day_loads_nothing_and_passes(settings: Settings, day: date) -> None:
    with running(SourceState()) as url:
        meta = run_steps(settings, day, url)
    raw = Path(meta["fetch_prices"]["raw_dir"])
    assert {p.read_bytes() for p in raw.iterdir()} == {b"No data"}
    assert meta["load_prices"]["rows"] == 0 and partition(settings, day) == []
    assert meta["quality_check"]["trading_day"] is False
    assert meta["notify"]["summary"] == "0 symbols loaded (market closed), checks passed"


def test_a_trading_day_with_no_data_fails_the_row_count(settings: Settings) -> None:
    state = SourceState()
    state.stocks.last_day = date(2024, 1, 1)  # the source has not published Jan 2 yet
    with running(state) as url, pytest.raises(StepFailed) as failed:
        run_steps(settings, DAY, url)
    assert "stocks quality 2024-01-02" in str(failed.value)
    assert "row_count (0 rows, want 3 (trading day))" in str(failed.value)


def test_rerunning_a_date_is_byte_identical(settings: Settings) -> None:
    with running(SourceState()) as url:
        first = run_steps(settings, DAY, url)
        before = checksum(settings, DAY)
        raw = Path(first["fetch_prices"]["raw_dir"])
        files = {p.name: p.read_bytes() for p in raw.iterdir()}
        second = run_steps(settings, DAY, url)
    assert checksum(settings, DAY) == before == first["load_prices"]["checksum"]
    assert second["load_prices"]["checksum"] == before
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == files
    for key in ("rows", "quarantined", "duplicates", "files"):
        assert first["load_prices"][key] == second["load_prices"][key]
    assert first["load_prices"]["run_id"] != second["load_prices"]["run_id"]
    with open_warehouse(settings) as wh:
        assert wh.scalar("SELECT count(*) FROM stock_prices_daily") == 3


def test_a_corrected_upstream_bar_replaces_only_that_row(settings: Settings) -> None:
    state = SourceState()
    with running(state) as url:
        run_steps(settings, DAY, url)
        with open_warehouse(settings) as wh:
            rows = wh.query("SELECT symbol, loaded_at FROM stock_prices_daily").to_pylist()
        before = {r["symbol"]: r["loaded_at"] for r in rows}
        bar = state.stocks.bars("msft.us", DAY, DAY)[0]
        state.stocks.overrides[("msft.us", DAY)] = bar.csv().replace(f",{bar.volume}", f",{bar.volume + 1}")
        run_steps(settings, DAY, url)
    with open_warehouse(settings) as wh:
        after = {r["symbol"]: r for r in wh.query("SELECT * FROM stock_prices_daily").to_pylist()}
    assert after["msft.us"]["volume"] == bar.volume + 1
    assert after["msft.us"]["loaded_at"] > before["msft.us"]
    assert {s: after[s]["loaded_at"] for s in ("aapl.us", "spy.us")} == {
        s: before[s] for s in ("aapl.us", "spy.us")
    }


def test_a_garbled_upstream_row_is_quarantined_and_fails_the_date(settings: Settings) -> None:
    state = SourceState()
    state.stocks.overrides[("aapl.us", DAY)] = "2024-01-02,185.1,1x8.2,183.0,184.9,1000"
    with running(state) as url:
        meta = run_steps(settings, DAY, url, until="load_prices")
        loaded = meta["load_prices"]
        assert (loaded["rows"], loaded["quarantined"]) == (2, 1)
        report = RunStore(settings.runs_dir).get(loaded["run_id"])
        assert report.counts == {"input": 3, "output": 2, "duplicates": 0, "quarantined": 1}
        assert [c.passed for c in report.checks] == [True]  # row_accounting reconciles
        (rejected,) = quarantined(settings, DAY)
        assert rejected["source"] == "stocks/trade_date=2024-01-02/aapl.us.csv"
        assert (rejected["position"], rejected["reason"]) == ("2", "bad_number")
        assert (
            rejected["detail"]
            == "stocks/trade_date=2024-01-02/aapl.us.csv line 2: High '1x8.2' is not a number"
        )
        assert rejected["raw"] == "2024-01-02,185.1,1x8.2,183.0,184.9,1000"
        with pytest.raises(StepFailed, match=r"symbols_expected \(missing \['aapl.us'\]"):
            run_step("quality_check", settings, DAY, url, meta)
        # upstream fixed, date rerun: complete, and the stale quarantine record is gone with the old rows
        del state.stocks.overrides[("aapl.us", DAY)]
        again = run_steps(settings, DAY, url)
    assert again["quality_check"]["rows"] == 3
    assert quarantined(settings, DAY) == []


def test_a_corrupted_raw_file_line_is_quarantined_with_line_and_reason(settings: Settings) -> None:
    with running(SourceState()) as url:
        meta = run_steps(settings, DAY, url, until="fetch_prices")
        path = Path(meta["fetch_prices"]["raw_dir"]) / "msft.us.csv"
        path.write_bytes(path.read_bytes() + b"2024-01-02,1.00,2.00,\x81\n2024-01-02,1,2,x,1,5\n")
        run_step("load_prices", settings, DAY, url, meta)
    assert meta["load_prices"]["rows"] == 3
    rejects = [(r["position"], r["reason"]) for r in quarantined(settings, DAY)]
    assert rejects == [("3", "bad_encoding"), ("4", "bad_number")]
    report = RunStore(settings.runs_dir).get(meta["load_prices"]["run_id"])
    assert report.counts == {"input": 5, "output": 3, "duplicates": 0, "quarantined": 2}
    assert report.status == "succeeded"


@pytest.mark.parametrize(
    ("tamper", "check", "what"),
    [
        ('"high" = "low" - 1', "ohlc_consistent", "1 row(s) outside low <= open, close <= high"),
        ('"open" = 0, "low" = 0', "prices_positive", "1 row(s) with a price <= 0"),
        ('"volume" = -5', "volume_non_negative", "1 row(s) with volume < 0"),
    ],
)
def test_a_bad_row_in_the_table_fails_the_named_check(
    settings: Settings, tamper: str, check: str, what: str
) -> None:
    with running(SourceState()) as url:
        meta = run_steps(settings, DAY, url, until="load_prices")
        with open_warehouse(settings) as wh:
            wh.execute(f"UPDATE stock_prices_daily SET {tamper} WHERE symbol = 'spy.us'")
        with pytest.raises(StepFailed) as failed:
            run_step("quality_check", settings, DAY, url, meta)
    assert str(failed.value) == f"stocks quality 2024-01-02: 1 check(s) failed: {check} ({what})"
    runs = RunStore(settings.runs_dir).list(pipeline="stocks_quality")
    assert [c.name for c in runs[0].checks if not c.passed] == [check]


def test_faults_give_the_fault_free_result(settings: Settings) -> None:
    days = [date(2024, 1, d) for d in range(2, 8)]  # Tuesday to Sunday
    with running(SourceState()) as url:
        for day in days:
            run_steps(settings, day, url)
    clean = {day: checksum(settings, day) for day in days}
    state = SourceState(faults=FAULTS)
    with running(state) as url:
        metas = {day: run_steps(settings, day, url) for day in days}
    # same rows, and unchanged rows keep their loaded_at: the partitions are byte-identical
    assert {day: checksum(settings, day) for day in days} == clean
    assert [metas[d]["load_prices"]["duplicates"] for d in days] == [3, 3, 3, 3, 0, 0]  # every row twice
    assert sum(m["fetch_prices"]["failed_attempts"] for m in metas.values()) > 0
    # Every fault family was injected. 500 and 503 are one draw apart (a coin flip per failure), and the
    # 429s come from a clock-based limit, so which of the two server errors shows up is left to chance.
    injected = state.injected
    assert injected.get("429", 0) and injected.get("truncated", 0), injected
    assert injected.get("500", 0) + injected.get("503", 0) > 0, injected


def test_fail_first_is_absorbed_by_the_client(settings: Settings) -> None:
    state = SourceState(faults=FaultConfig(fail_first=4))
    with running(state) as url:
        meta = run_steps(settings, DAY, url)
    assert state.injected == {"fail_first": 4}
    assert meta["fetch_prices"]["failed_attempts"] == 4
    assert partition(settings, DAY) == expected(state.stocks, SYMBOLS, DAY)


def test_an_outage_longer_than_the_client_retries_fails_the_step_and_a_step_retry_recovers(
    local_settings: Settings,
) -> None:
    settings = stock_settings(local_settings, symbols=("aapl.us",), max_attempts=2)
    state = SourceState(faults=FaultConfig(fail_first=2))
    with running(state) as url:
        done: dict[str, dict[str, object]] = {}
        with pytest.raises(TransientError, match="failed 2 times, last: HTTP 503"):
            run_step("fetch_prices", settings, DAY, url, done)
        assert not (settings.state_dir / "lake" / "raw" / "stocks" / "trade_date=2024-01-02").exists()
        meta = run_step("fetch_prices", settings, DAY, url, done)  # the runtime's retry
    assert meta["files"] == 1


def test_a_symbol_dropped_from_the_config_leaves_the_date(settings: Settings) -> None:
    fewer = stock_settings(settings, symbols=("aapl.us", "spy.us"))
    with running(SourceState()) as url:
        run_steps(settings, DAY, url)
        meta = run_steps(fewer, DAY, url)
    assert sorted(p.name for p in Path(meta["fetch_prices"]["raw_dir"]).iterdir()) == [
        "aapl.us.csv",
        "spy.us.csv",
    ]
    assert [r["symbol"] for r in partition(settings, DAY)] == ["aapl.us", "spy.us"]


def test_load_without_fetch_metadata_is_one_clear_error(settings: Settings) -> None:
    with pytest.raises(DataError, match="load_prices for 2024-01-02: fetch_prices passed no raw_dir"):
        run_step("load_prices", settings, DAY, "http://unused", {"fetch_prices": {}})


def test_notify_respects_notify_success(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    quiet = settings.model_copy(
        update={"orchestration": settings.orchestration.model_copy(update={"notify_success": False})}
    )
    done = {"quality_check": {"rows": 3, "trading_day": True}}
    assert run_step("notify", quiet, DAY, "http://unused", dict(done)) == {"notified": False}
    with caplog.at_level(logging.INFO, logger="dotjoin.alerts"):
        meta = run_step("notify", settings, DAY, "http://unused", dict(done))
    assert meta == {"notified": False, "summary": "3 symbols loaded, checks passed"}  # no webhook set
    assert "dotjoin stocks 2024-01-02: 3 symbols loaded, checks passed" in caplog.text


def test_the_flow_is_registered_and_declared_as_documented() -> None:
    assert get_flow("stocks") is FLOW
    assert [s.name for s in FLOW.order()] == ["fetch_prices", "load_prices", "quality_check", "notify"]
    fetch = FLOW.step("fetch_prices")
    assert (fetch.retries, [fetch.retry_delay(n) for n in (1, 2, 3)]) == (3, [10.0, 20.0, 40.0])
    assert FLOW.start_date == date(2024, 1, 1) and FLOW.tags == ("stocks",)
