"""The ``nightly`` flow for one logical date ``D``::

    ingest_weather ─┐
    ingest_transit ─┼─> quality_checks ─> notify
    lakehouse_staging ─> dbt_build ─┘

- ``ingest_weather`` / ``ingest_transit``: the API sources for ``D`` (Open-Meteo, GTFS + GTFS-rt);
- ``lakehouse_staging``: ``D``'s ecommerce and IoT exports land in the raw zone and replace ``D`` in the
  staging Iceberg tables (the exports are generated deterministically for ``D``);
- ``dbt_build``: ``dbt build`` over staging (models, snapshot for ``D``, tests, freshness);
- ``quality_checks``: ``D`` is complete in every output (see :func:`quality_checks`);
- ``notify``: a summary to the log and the webhook.

Each step is idempotent per date, so a retry or a backfill rerun replaces ``D``'s outputs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dotjoin.orchestration.steps import Flow, Step, StepContext, StepFailed
from dotjoin.pipelines.api_ingest.common import load_cities
from dotjoin.pipelines.flow_steps import ingest_transit, ingest_weather, notify_step, summary
from dotjoin.platform.warehouse import open_warehouse

SEED = 7  # the generated exports of a day depend on (SEED, day) only


def lakehouse_staging(ctx: StepContext) -> dict[str, Any]:
    from dotjoin.pipelines.lakehouse.pipeline import run

    day = ctx.logical_date
    report = run(ctx.settings, days=1, seed=SEED, start=day, today=day + timedelta(days=1), build=False)
    meta = summary(report)
    meta["staging_tables"] = sorted(o.name for o in report.outputs)
    return meta


def dbt_build(ctx: StepContext) -> dict[str, Any]:
    from dotjoin.pipelines.lakehouse.pipeline import build

    report = build(ctx.settings, days=[ctx.logical_date])
    meta = summary(report)
    meta["marts"] = {o.name: o.rows for o in report.outputs}
    meta["dbt_build_s"] = round(report.metrics.get("dbt_build_s", 0.0), 2)
    meta["staging_rows"] = ctx.get("lakehouse_staging", "rows_out", 0)  # passed on for quality_checks
    return meta


def quality_checks(ctx: StepContext) -> dict[str, Any]:
    """``D`` is complete: 24 hours of weather per city, arrivals for ``D``, rows in staging and every mart."""
    day, settings = ctx.logical_date, ctx.settings
    cities = [c.name for c in load_cities(settings)]
    start = datetime.combine(day, time(), tzinfo=UTC)
    with open_warehouse(settings) as wh:
        hours = wh.scalar(
            "SELECT count(*) FROM weather_hourly WHERE hour >= $1 AND hour < $2 AND city = ANY($3)",
            [start, start + timedelta(days=1), cities],
        )
        arrivals = wh.scalar(
            "SELECT count(*) FROM arrivals WHERE service_date = $1 AND feed = $2", [day, settings.ingest.feed]
        )
    marts: dict[str, int] = ctx.get("dbt_build", "marts", {})
    checks = {
        "weather_hours": (int(hours or 0), 24 * len(cities)),
        "arrivals_present": (int(arrivals or 0) > 0, True),
        "staging_rows_present": (int(ctx.get("dbt_build", "staging_rows", 0)) > 0, True),
        "marts_populated": (sorted(m for m, rows in marts.items() if rows == 0), []),
    }
    failed = {name: got for name, (got, want) in checks.items() if got != want}
    if failed:
        detail = ", ".join(f"{name}={got!r} (expected {checks[name][1]!r})" for name, got in failed.items())
        raise StepFailed(f"nightly {day}: quality checks failed: {detail}")
    return {
        "checks": {name: got for name, (got, _) in checks.items()},
        "passed": len(checks),
        "arrivals": int(arrivals or 0),
        "marts": len(marts),
    }


def _describe(ctx: StepContext) -> str:
    q = ctx.upstream.get("quality_checks", {})
    hours = q.get("checks", {}).get("weather_hours")
    arrivals, marts = q.get("arrivals"), q.get("marts")
    return f"{hours} city-hours of weather, {arrivals} arrivals, {marts} marts: all checks passed"


FLOW = Flow(
    name="nightly",
    description="weather + transit ingestion -> lakehouse staging -> dbt build -> quality checks -> notify",
    start_date=date(2024, 1, 1),
    schedule="0 2 * * *",  # 02:00 UTC: yesterday's data is complete upstream
    tags=("ingest", "lakehouse", "dbt"),
    steps=(
        Step("ingest_weather", ingest_weather, retries=3, retry_delay_s=30, timeout_s=900),
        Step("ingest_transit", ingest_transit, retries=3, retry_delay_s=30, timeout_s=900),
        Step("lakehouse_staging", lakehouse_staging, retries=2, timeout_s=1800),
        Step("dbt_build", dbt_build, upstream=("lakehouse_staging",), retries=1, timeout_s=1800),
        Step(
            "quality_checks",
            quality_checks,
            upstream=("ingest_weather", "ingest_transit", "dbt_build"),
            retries=1,
            timeout_s=300,
        ),
        Step("notify", notify_step(_describe), upstream=("quality_checks",), retries=1, timeout_s=60),
    ),
)
