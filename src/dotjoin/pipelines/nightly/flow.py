"""The ``nightly`` flow for one logical date ``D``::

    ingest_weather ─┐
    ingest_transit ─┼─> quality_checks ─> notify
    lakehouse_staging ─> dbt_build ─┘

- ``ingest_weather`` / ``ingest_transit``: the API sources for ``D`` (Open-Meteo, GTFS + GTFS-rt);
- ``lakehouse_staging``: ``D``'s ecommerce and IoT exports land in the raw zone and replace ``D`` in the
  staging Iceberg tables (the exports come from the :data:`Exports` the flow is built with — the entry
  layer passes the simulated shop, :func:`dotjoin.simulate.lakehouse.shop.nightly_exports`);
- ``dbt_build``: ``dbt build`` over staging (models, snapshot for ``D``, tests, freshness);
- ``quality_checks``: ``D`` is complete in every output (see :func:`quality_checks`);
- ``notify``: a summary to the log and the webhook.

Each step is idempotent per date, so a retry or a backfill rerun replaces ``D``'s outputs.
:func:`build_flow` declares the flow; the registry (``dotjoin.cli.registry``) holds the one built.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError
from dotjoin.orchestration.steps import Flow, Step, StepContext, StepFailed
from dotjoin.pipelines.api_ingest.common import load_cities
from dotjoin.pipelines.flow_steps import ingest_transit, ingest_weather, notify_step, summary
from dotjoin.platform.warehouse import open_warehouse

START = date(2024, 3, 1)  # the flow's first date, and day 0 of the shop's history

#: ``(day, out_dir)``: write every export the upstream has produced up to ``day`` into ``out_dir`` — the
#: shop's files of every day since :data:`START`, the IoT file of ``day``.
Exports = Callable[[date, Path], None]


def nightly_settings(settings: Settings) -> Settings:
    """The settings with the nightly's own lakehouse: root and files ``<…>-nightly``, catalog ``nightly``.

    The nightly shop is one long history from ``START``; the sample lakehouse (``dotjoin lakehouse run``,
    reconciled against its generator's ground truth) is another. Separate namespaces keep their ids and
    marts from mixing; the warehouse (ingestion, quarantine, run history) is shared.
    """
    from dotjoin.platform.lake.catalog import lake_files

    lake = settings.lake.model_copy(
        update={"root": f"{settings.lake.root.rstrip('/')}-nightly",
                "files": f"{lake_files(settings)}-nightly", "catalog_name": "nightly"}
    )  # fmt: skip
    return settings.model_copy(update={"lake": lake})


def exports_for(day: date, out_dir: Path, landed: Collection[str], *, exports: Exports) -> Path:
    """The exports to land for ``day``, in ``out_dir/<day>/`` (rewritten each time).

    ``exports`` writes the upstream's history up to ``day``; ``day``'s files are always included, an
    earlier day's shop files only if the raw zone lacks them (``landed``: raw file names) — customers and
    products referenced on ``day`` were created then. IoT readings stand alone per day.
    """
    if day < START:
        raise ConfigError(f"nightly starts on {START}; {day} is before its first date")
    scratch, incoming = out_dir / "_generating", out_dir / day.isoformat()
    for path in (scratch, incoming):
        shutil.rmtree(path, ignore_errors=True)
    scratch.mkdir(parents=True)
    exports(day, scratch)
    incoming.mkdir(parents=True)
    for file in scratch.iterdir():
        if file.stem.endswith(day.isoformat()) or file.name not in landed:
            file.rename(incoming / file.name)
    shutil.rmtree(scratch)
    return incoming


def staging_step(exports: Exports) -> Callable[[StepContext], dict[str, Any]]:
    """The ``lakehouse_staging`` step, landing what ``exports`` writes."""

    def lakehouse_staging(ctx: StepContext) -> dict[str, Any]:
        """Land the date's shop and IoT exports in the raw zone; replace the date in the staging tables."""
        from dotjoin.pipelines.lakehouse import raw
        from dotjoin.pipelines.lakehouse.pipeline import run
        from dotjoin.platform.lake import open_lake

        day, settings = ctx.logical_date, nightly_settings(ctx.settings)
        with open_lake(settings) as lake:
            raw_zone = Path(lake.zone_path("raw"))
        landed = {Path(name).name for name in raw.read_manifest(raw_zone, "ecommerce")}
        incoming = exports_for(day, settings.resolve("nightly"), landed, exports=exports)
        report = run(settings, input_dir=incoming, today=day + timedelta(days=1), build=False)
        meta = summary(report)
        meta["staging_tables"] = sorted(o.name for o in report.outputs)
        meta["files"] = len(list(incoming.iterdir()))
        return meta

    return lakehouse_staging


def dbt_build(ctx: StepContext) -> dict[str, Any]:
    """dbt build over staging: models, the customers snapshot for the date, tests, source freshness."""
    from dotjoin.pipelines.lakehouse.pipeline import build

    report = build(nightly_settings(ctx.settings), days=[ctx.logical_date], dbt_schema="nightly")
    meta = summary(report)
    meta["marts"] = {o.name: o.rows for o in report.outputs}
    meta["dbt_build_s"] = round(report.metrics.get("dbt_build_s", 0.0), 2)
    meta["staging_rows"] = ctx.get("lakehouse_staging", "rows_out", 0)  # passed on for quality_checks
    return meta


def quality_checks(ctx: StepContext) -> dict[str, Any]:
    """The date is complete: 24 hours of weather per city, arrivals, rows in staging and in every mart."""
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


def build_flow(exports: Exports) -> Flow:
    """The nightly flow, its lakehouse fed by ``exports``."""
    return Flow(
        name="nightly",
        description=(
            "weather + transit ingestion -> lakehouse staging -> dbt build -> quality checks -> notify"
        ),
        start_date=START,
        schedule="0 2 * * *",  # 02:00 UTC: yesterday's data is complete upstream
        tags=("ingest", "lakehouse", "dbt"),
        steps=(
            Step("ingest_weather", ingest_weather, retries=3, retry_delay_s=30, timeout_s=900),
            Step("ingest_transit", ingest_transit, retries=3, retry_delay_s=30, timeout_s=900),
            Step("lakehouse_staging", staging_step(exports), retries=2, timeout_s=1800),
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
