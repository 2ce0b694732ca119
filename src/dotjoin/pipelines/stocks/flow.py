"""The ``stocks`` flow: fetch_prices -> load_prices -> quality_check -> notify, one trade date per run.

Schedule ``@daily`` rather than a weekday cron (``0 22 * * 1-5``): cron cannot express exchange
holidays anyway, so the trading calendar lives in code (:mod:`.trading_days`) and every calendar date gets
a run — a weekend or holiday loads 0 rows and *passes*, so each date's partition has a verified state and
a backfill is just a date range. A daily run for date D starts after D ends (00:00 UTC), three hours or
more after the US close; a bar published later is picked up by rerunning the date.

Retries: the fetch absorbs outages (the HTTP client's own retries per request, then 3 step retries at 10,
20, 40 s); load and checks are retried once or twice for warehouse blips — a failed quality check fails
again on the same data, so a second try of ``quality_check`` is cheap insurance, not a fix.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dotjoin.orchestration import alerts
from dotjoin.orchestration.steps import Flow, Step, StepContext
from dotjoin.pipelines.stocks.checks import quality_check
from dotjoin.pipelines.stocks.fetch import fetch_prices
from dotjoin.pipelines.stocks.load import load_prices

NAME = "stocks"


def notify(ctx: StepContext) -> dict[str, Any]:
    """Post "<n> symbols loaded, checks passed" when ``[orchestration] notify_success`` is on."""
    if not ctx.settings.orchestration.notify_success:
        return {"notified": False}
    rows = ctx.get("quality_check", "rows", 0)
    closed = "" if ctx.get("quality_check", "trading_day", True) else " (market closed)"
    summary = f"{rows} symbols loaded{closed}, checks passed"
    return {"notified": alerts.notify(ctx.settings, NAME, ctx.logical_date, summary), "summary": summary}


FLOW = Flow(
    name=NAME,
    description="daily stock prices: Stooq CSV -> raw zone -> stock_prices_daily -> quality checks -> notify",
    start_date=date(2024, 1, 1),
    schedule="@daily",
    tags=("stocks",),
    steps=(
        Step(
            "fetch_prices",
            fetch_prices,
            retries=3,
            retry_delay_s=10,
            backoff=2,
            timeout_s=900,
            doc="GET each symbol's bar of the date; land raw/stocks/trade_date=D/<symbol>.csv atomically",
        ),
        Step(
            "load_prices",
            load_prices,
            upstream=("fetch_prices",),
            retries=2,
            retry_delay_s=10,
            timeout_s=600,
            doc="replace the date's rows of stock_prices_daily in one transaction; rejects to quarantine",
        ),
        Step(
            "quality_check",
            quality_check,
            upstream=("load_prices",),
            retries=1,
            retry_delay_s=30,
            timeout_s=300,
            doc="OHLC consistency, positive prices, volume, one row per symbol, row count vs calendar",
        ),
        Step("notify", notify, upstream=("quality_check",), retries=2, retry_delay_s=5, timeout_s=60),
    ),
)
