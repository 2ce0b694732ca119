"""The ``monthly_aggregates`` flow: daily aggregates every day; on a month's last day, the month's.

::

    ingest_weather -> daily_aggregates -> is_month_end --(last day)--> monthly_aggregates
                                   \\__________________________________________\\__> notify

``notify`` joins both paths (trigger rule ``none_failed``): it runs whether the branch built the month
or skipped it. The monthly step first makes sure the whole month is ingested (the cursor skips the days
already complete), so a backfill that starts mid-month still builds a complete, correct month.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dotjoin.orchestration.steps import Flow, Step, StepContext, StepFailed
from dotjoin.pipelines.api_ingest.common import load_cities
from dotjoin.pipelines.flow_steps import ingest_weather, notify_step, summary
from dotjoin.pipelines.monthly_aggregates import aggregates
from dotjoin.platform.warehouse import open_warehouse


def _cities(ctx: StepContext) -> list[str]:
    return [c.name for c in load_cities(ctx.settings)]


def daily_aggregates(ctx: StepContext) -> dict[str, Any]:
    """weather_daily for the date: min/max/mean temperature, precipitation, wind per city."""
    cities = _cities(ctx)
    with open_warehouse(ctx.settings) as wh:
        rows = aggregates.build_daily(wh, ctx.logical_date, cities)
    if rows != len(cities):
        raise StepFailed(f"weather_daily {ctx.logical_date}: {rows} of {len(cities)} cities have hourly data")
    return {"table": aggregates.DAILY, "day": ctx.logical_date.isoformat(), "rows": rows}


def month_end_branch(ctx: StepContext) -> list[str]:
    """On a month's last day, follow monthly_aggregates; otherwise skip it."""
    return ["monthly_aggregates"] if aggregates.is_month_end(ctx.logical_date) else []


def monthly_aggregates(ctx: StepContext) -> dict[str, Any]:
    """weather_monthly for the date's month, after ingesting any day of the month still missing."""
    from dotjoin.pipelines.api_ingest import weather

    first, last = aggregates.month_bounds(ctx.logical_date)
    ensured = summary(weather.run(ctx.settings, since=first, until=last, base_url=ctx.params.get("base_url")))
    names = _cities(ctx)
    with open_warehouse(ctx.settings) as wh:
        built, min_hours = aggregates.build_monthly(wh, ctx.logical_date, names)
    expected = ((last - first).days + 1) * 24
    if built != len(names) or min_hours != expected:
        raise StepFailed(
            f"month {first:%Y-%m} incomplete: {min_hours} of {expected} hours for the worst city "
            f"({built} of {len(names)} cities)"
        )
    month = f"{first:%Y-%m}"
    return {"table": aggregates.MONTHLY, "month": month, "rows": built, "ingest_run": ensured["run_id"]}


def _describe(ctx: StepContext) -> str:
    month = ctx.get("monthly_aggregates", "month")
    built = f"; month {month} built" if month else ""
    return f"{ctx.get('daily_aggregates', 'rows')} cities aggregated{built}"


FLOW = Flow(
    name="monthly_aggregates",
    description="weather: daily aggregates every day, the month's on its last day (branch)",
    start_date=date(2024, 1, 1),
    schedule="@daily",
    tags=("weather", "aggregates"),
    steps=(
        Step("ingest_weather", ingest_weather, retries=3, retry_delay_s=10, timeout_s=900),
        Step("daily_aggregates", daily_aggregates, upstream=("ingest_weather",), retries=1, timeout_s=600),
        Step("is_month_end", month_end_branch, upstream=("daily_aggregates",), branch=True, retries=1),
        Step("monthly_aggregates", monthly_aggregates, upstream=("is_month_end",), retries=2, timeout_s=1800),
        Step(
            "notify",
            notify_step(_describe),
            upstream=("daily_aggregates", "monthly_aggregates"),
            trigger_rule="none_failed",
            retries=1,
        ),
    ),
)
