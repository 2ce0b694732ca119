"""Step ``quality_check``: SQL checks on the date's partition of ``stock_prices_daily``.

| check | fails when |
|---|---|
| ``ohlc_consistent`` | a row breaks ``low <= open <= high`` or ``low <= close <= high`` (or a NULL price) |
| ``prices_positive`` | a price is <= 0 |
| ``volume_non_negative`` | volume < 0 (or NULL) |
| ``one_row_per_symbol`` | a symbol has more than one row for the date |
| ``row_count`` | rows != number of configured symbols on a trading day, or != 0 on a non-trading day |
| ``symbols_expected`` | a configured symbol is missing on a trading day, or an unconfigured one is present |

Results go to a run report (``stocks_quality``, so they show in ``dotjoin runs``) and to the step's
metadata; any failure raises :class:`StepFailed` naming every failed check, the date and its count.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dotjoin.orchestration.steps import StepContext, StepFailed
from dotjoin.pipelines.stocks.fetch import symbols
from dotjoin.pipelines.stocks.load import TABLE, ensure_table
from dotjoin.pipelines.stocks.trading_days import is_trading_day
from dotjoin.platform.runs import start_run
from dotjoin.platform.warehouse import Warehouse, open_warehouse

PIPELINE = "stocks_quality"
_FROM = f'FROM "{TABLE}" WHERE trade_date = $1'
#: check -> (SQL counting the offending rows of the date, what an offending row is)
ROW_CHECKS: dict[str, tuple[str, str]] = {
    "ohlc_consistent": (
        f"SELECT count(*) {_FROM} AND NOT coalesce("
        '"low" <= "open" AND "open" <= "high" AND "low" <= "close" AND "close" <= "high", FALSE)',
        "row(s) outside low <= open, close <= high",
    ),
    "prices_positive": (
        f"SELECT count(*) {_FROM} AND NOT coalesce("
        '"open" > 0 AND "high" > 0 AND "low" > 0 AND "close" > 0, FALSE)',
        "row(s) with a price <= 0",
    ),
    "volume_non_negative": (
        f'SELECT count(*) {_FROM} AND NOT coalesce("volume" >= 0, FALSE)',
        "row(s) with volume < 0",
    ),
    "one_row_per_symbol": (
        f"SELECT count(*) FROM (SELECT symbol {_FROM} GROUP BY symbol HAVING count(*) > 1) AS repeated",
        "symbol(s) with more than one row",
    ),
}


def run_checks(wh: Warehouse, day: date, expected_symbols: list[str]) -> dict[str, dict[str, Any]]:
    """Every check of the date: ``name -> {passed, offending, detail}``."""
    results: dict[str, dict[str, Any]] = {}
    for name, (sql, what) in ROW_CHECKS.items():
        offending = int(wh.scalar(sql, [day]) or 0)
        results[name] = {"passed": offending == 0, "offending": offending, "detail": f"{offending} {what}"}
    present = [
        str(s) for s in wh.query(f"SELECT symbol {_FROM} ORDER BY symbol", [day]).column(0).to_pylist()
    ]
    expected = sorted(expected_symbols) if is_trading_day(day) else []
    kind = "trading day" if expected else "non-trading day"
    results["row_count"] = {
        "passed": len(present) == len(expected),
        "offending": abs(len(present) - len(expected)),
        "detail": f"{len(present)} rows, want {len(expected)} ({kind})",
    }
    missing = sorted(set(expected) - set(present))
    unexpected = sorted(set(present) - set(expected))
    results["symbols_expected"] = {
        "passed": not missing and not unexpected,
        "offending": len(missing) + len(unexpected),
        "detail": f"missing {missing or 'none'}, unexpected {unexpected or 'none'}",
    }
    return results


def quality_check(ctx: StepContext) -> dict[str, Any]:
    """Check the logical date's partition; raise :class:`StepFailed` if any check fails."""
    day = ctx.logical_date
    expected = symbols(ctx.settings.ingest)
    params = {"trade_date": day.isoformat(), "flow_run_id": ctx.run_id}
    with start_run(PIPELINE, ctx.settings, params=params) as run, open_warehouse(ctx.settings) as wh:
        ensure_table(wh)  # a date checked before any load: 0 rows, judged like any other
        results = run_checks(wh, day, expected)
        rows = int(wh.scalar(f"SELECT count(*) {_FROM}", [day]) or 0)
        for name, res in results.items():
            run.check(name, passed=res["passed"], observed=res["offending"], expected=0, detail=res["detail"])
        run.output(TABLE, rows=rows, location=f"{TABLE} trade_date={day}")
    failed = [f"{name} ({res['detail']})" for name, res in results.items() if not res["passed"]]
    if failed:
        raise StepFailed(f"stocks quality {day}: {len(failed)} check(s) failed: {'; '.join(failed)}")
    return {
        "trade_date": day.isoformat(),
        "trading_day": is_trading_day(day),
        "rows": rows,
        "checks": results,
        "run_id": run.run_id,
    }
