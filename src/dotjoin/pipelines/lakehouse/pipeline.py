"""The lakehouse pipeline: sources -> raw (immutable) -> staging (Iceberg) -> curated (dbt), with proof.

``run`` lands every input file in the raw zone (a re-delivered file is a no-op), re-stages each file's day
(idempotent day replacement), steps the customers snapshot through the loaded days (SCD2 history), runs
``dbt build`` and ``dbt source freshness`` in-process, records per-mart scan statistics, and — when its
:class:`Source` says what the marts must show (a generator's ground truth) — reconciles the marts with it.

The input is a directory of exports, or a :class:`Source` that writes them (the entry layer passes
:class:`dotjoin.simulate.lakehouse.shop.GeneratedShop`); this module never generates data itself.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from dotjoin.config import Settings
from dotjoin.exceptions import DataError
from dotjoin.pipelines.lakehouse import curated, raw, staging
from dotjoin.pipelines.lakehouse.curated import DbtContext, Target
from dotjoin.pipelines.lakehouse.raw import FutureFileError, ManifestEntry
from dotjoin.platform.lake import Lake, ScanPlan, open_lake
from dotjoin.platform.quality.quarantine import Quarantine
from dotjoin.platform.runs import Run, RunReport, start_run
from dotjoin.platform.warehouse import open_warehouse

logger = logging.getLogger(__name__)

PIPELINE = "lakehouse"


class UnknownFileError(DataError):
    """An input file that is neither a known CSV export nor an IoT JSON-lines file."""


@dataclass(frozen=True)
class Expected:
    """What the marts must show after loading a source's files; each is checked as ``reconcile_<field>``."""

    fact_orders_count: int
    fact_orders_revenue_cents: int
    fact_orders_cancelled: int
    iot_device_hours: int  # (device, hour, sensor) groups
    iot_readings: int
    dim_customers_versions: int  # SCD2 rows
    dim_customers_customers: int


class Source(Protocol):
    """An upstream drop: writes one run's export files into a directory.

    ``params`` go into the run report; ``write`` returns what the marts must then show, or ``None`` when
    the source does not know (nothing is reconciled then).
    """

    @property
    def params(self) -> Mapping[str, Any]: ...

    def write(self, out_dir: Path) -> Expected | None: ...


def source_of(file: Path) -> str:
    """The source system of an input file.

    >>> source_of(Path("iot_2026-01-01.jsonl")), source_of(Path("orders_2026-01-01.csv"))
    ('iot', 'ecommerce')
    """
    return "iot" if file.name.startswith("iot_") else "ecommerce"


def land_all(
    raw_zone: Path, files: list[Path], *, today: date, quarantine: Quarantine, run: Run
) -> list[ManifestEntry]:
    """Land ``files``; a refused file (future date, immutability clash) is quarantined whole, not fatal."""
    landed: list[ManifestEntry] = []
    for file in files:
        try:
            if file.suffix not in (".csv", ".jsonl") or staging.entity_of(file.name) not in staging.KEYS:
                raise UnknownFileError(
                    f"{file.name} is not an export this pipeline knows (see docs/pipelines)"
                )
            entry, new = raw.land(raw_zone, source_of(file), file, today=today)
        except DataError as exc:
            rows = raw.count_rows(file.read_bytes(), header=file.suffix == ".csv")
            reason = (
                "future_date" if isinstance(exc, FutureFileError)
                else "unknown_file" if isinstance(exc, UnknownFileError)
                else "raw_refused"
            )  # fmt: skip
            quarantine.reject(source=str(file), position="file", reason=reason, detail=str(exc))
            run.count(input=rows, quarantined=rows)
            logger.warning("refused %s: %s", file.name, exc)
            continue
        run.count(raw_files_landed=int(new), raw_files_unchanged=int(not new))
        landed.append(entry)
    return landed


def _sorted_inputs(input_dir: Path) -> list[Path]:
    if not input_dir.is_dir():
        raise DataError(f"input directory {input_dir} does not exist")
    files = [p for p in input_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.name.rsplit("_", 1)[-1], p.name))


def run(
    settings: Settings,
    *,
    source: Source | None = None,
    input_dir: Path | None = None,
    today: date | None = None,
    target: Target | None = None,
    dbt_schema: str | None = None,
    build: bool = True,
) -> RunReport:
    """Run the lakehouse end to end on ``input_dir``'s files, or on the files ``source`` writes.

    Args:
        settings: the profile's settings (lake, warehouse for quarantine/history, postgres for ``stack``).
        source: writes the input into ``<state>/lakehouse/incoming`` (emptied first); when it returns an
            :class:`Expected`, the marts are reconciled with it.
        input_dir: land these files (no reconciliation). Exactly one of ``source`` and ``input_dir``.
        today: the run's day; files dated later are quarantined (default: today, UTC).
        target: dbt target; default ``stack`` when the warehouse is PostgreSQL, else ``local``.
        dbt_schema: PostgreSQL schema of the marts (stack target), default ``lakehouse``.
        build: run dbt (False: stop after staging).
    """
    if (source is None) == (input_dir is None):
        raise TypeError("lakehouse run() takes an input_dir or a source, exactly one of them")
    today = today or datetime.now(UTC).date()
    target = target or ("stack" if settings.warehouse.type == "postgres" else "local")
    params: dict[str, Any] = {**(source.params if source else {}), "target": target}
    if input_dir is not None:
        params["input_dir"] = str(input_dir)
    with start_run(PIPELINE, settings, params=params) as run, open_lake(settings) as lake:
        incoming, expected = input_dir or settings.resolve("lakehouse") / "incoming", None
        if source is not None:
            if incoming.exists():
                shutil.rmtree(incoming)
            expected = source.write(incoming)
        quarantine = Quarantine(PIPELINE, run.run_id)
        raw_zone = Path(lake.zone_path("raw"))
        entries = land_all(raw_zone, _sorted_inputs(incoming), today=today, quarantine=quarantine, run=run)
        loaded_days: dict[str, list[date]] = {}
        for entry in entries:
            try:
                loaded = staging.load_file(lake, raw_zone, entry, quarantine)
            except DataError as exc:  # e.g. a drifted field whose type clashes with the table's column
                quarantine.reject(
                    source=f"raw/{entry.file}", position="file", reason="load_failed", detail=str(exc)
                )
                run.count(input=entry.rows, quarantined=entry.rows)
                logger.warning("could not stage %s: %s", entry.file, exc)
                continue
            p = loaded.parsed
            run.count(
                input=p.input, output=p.table.num_rows, duplicates=p.duplicates, quarantined=len(p.rejects)
            )
            if loaded.added_columns:
                run.metric(f"schema_evolved.{loaded.table}", len(loaded.added_columns))
            loaded_days.setdefault(loaded.table, []).append(loaded.day)
        with open_warehouse(settings) as wh:
            quarantine.flush(wh)
        run.check_accounting()
        tables = [name.split(".", 1)[1] for name in lake.list_tables("staging")]
        for name in tables:  # their lineage: the stage job's
            run.output(f"staging.{name}", rows=lake.scan(f"staging.{name}").num_rows)
        _lineage(run, incoming, raw_zone, sorted({e.source for e in entries}), tables)
        if build and tables:
            _build(
                settings,
                lake,
                run,
                tables,
                target=target,
                schema=dbt_schema,
                loaded_days=loaded_days,
                expected=expected,
            )
    return run.report


def _lineage(run: Run, incoming: Path, raw_zone: Path, sources: list[str], tables: list[str]) -> None:
    """Incoming files → the raw zone, per source (``land``) → the staging tables (``stage``)."""
    raw = [f"file:{raw_zone / source}" for source in sources]
    run.job("land", inputs=[f"file:{incoming}"], outputs=raw)
    run.job("stage", inputs=raw, outputs=[f"lake:staging.{name}" for name in tables])


def build(
    settings: Settings,
    *,
    days: list[date],
    target: Target | None = None,
    dbt_schema: str | None = None,
) -> RunReport:
    """Run dbt over the staging tables as they stand, ``days`` being the days staging just (re)loaded.

    The orchestrated ``nightly`` flow stages one day with ``run(..., build=False)`` and transforms here,
    so that a failed ``dbt build`` is retried without re-staging.
    """
    target = target or ("stack" if settings.warehouse.type == "postgres" else "local")
    params = {"days": [d.isoformat() for d in days], "target": target}
    with start_run(f"{PIPELINE}_build", settings, params=params) as run, open_lake(settings) as lake:
        tables = [name.split(".", 1)[1] for name in lake.list_tables("staging")]
        if not tables:
            raise DataError("the lake has no staging tables yet: stage a day first (dotjoin lakehouse run)")
        loaded = {f"staging.{t}": list(days) for t in tables}
        _build(
            settings, lake, run, tables, target=target, schema=dbt_schema, loaded_days=loaded, expected=None
        )
    return run.report


def _build(
    settings: Settings,
    lake: Lake,
    run: Run,
    tables: list[str],
    *,
    target: Target,
    schema: str | None,
    loaded_days: dict[str, list[date]],
    expected: Expected | None,
) -> None:
    ctx = curated.publish_sources(settings, lake, tables, target=target, schema=schema)
    for day in sorted(set(loaded_days.get("staging.customers", []))):  # SCD2: one step per loaded day
        ctx.vars["customers_as_of"] = f"{day.isoformat()} 23:59:59.999999"
        step = ctx.invoke("snapshot")
        run.check(
            f"dbt_snapshot_{day.isoformat()}", passed=step.success, detail="; ".join(step.failures) or None
        )
    ctx.vars.pop("customers_as_of", None)
    # iot_hourly_metrics is incremental: recompute only the reading days this run (re)loaded
    incremental = curated.mart_exists(settings, lake, ctx, "iot_hourly_metrics")
    iot_days = sorted(set(loaded_days.get("staging.iot_readings", [])))
    first, end = (iot_days[0], iot_days[-1] + timedelta(days=1)) if iot_days else (date(1970, 1, 1),) * 2
    ctx.vars.update(iot_from=f"{first} 00:00:00", iot_to=f"{end} 00:00:00")
    overrides: dict[str, dict[str, ScanPlan]] = {}
    if incremental and "iot_readings" in tables and target == "local":  # stack: the COPY read it all
        window = f"reading_ts >= '{first}T00:00:00' and reading_ts < '{end}T00:00:00'"
        overrides["iot_hourly_metrics"] = {
            "iot_readings": lake.plan("staging.iot_readings", row_filter=window)
        }
    run.metric("iot_hourly_metrics_incremental", float(incremental))
    outcome = ctx.invoke("build")
    run.metric("dbt_build_s", outcome.elapsed_s)
    run.check(
        "dbt_build",
        passed=outcome.success,
        observed=outcome.statuses,
        detail="; ".join(outcome.failures)[:2000] or None,
    )
    curated.test_checks(run, outcome)
    curated.model_lineage(run, ctx.manifest())
    freshness = ctx.invoke("source freshness")
    run.check("dbt_source_freshness", passed=freshness.success, observed=freshness.statuses)
    plans: dict[str, ScanPlan] = {t: lake.plan(f"staging.{t}") for t in tables}
    for mart, stats in curated.scan_per_mart(ctx.manifest(), plans, overrides=overrides).items():
        for key, value in stats.items():
            run.metric(f"scan.{mart}.{key}", value)
    if outcome.success:
        for mart in curated.MARTS:
            rows = curated.query_marts(settings, lake, ctx, f"SELECT count(*) AS n FROM {{schema}}.{mart}")
            run.output(mart, rows=int(rows[0]["n"]))
        if expected is not None:
            reconcile(settings, lake, ctx, run, expected)


def reconcile(settings: Settings, lake: Lake, ctx: DbtContext, run: Run, expected: Expected) -> None:
    """Checks: the marts' totals equal what the source said they must be."""
    q = curated.query_marts
    orders = q(
        settings,
        lake,
        ctx,
        "SELECT count(*) AS n, sum(revenue_cents) AS r, "
        "sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS c FROM {schema}.fact_orders",
    )[0]
    hourly = q(
        settings, lake, ctx, "SELECT count(*) AS n, sum(reading_count) AS r FROM {schema}.iot_hourly_metrics"
    )[0]
    customers = q(
        settings,
        lake,
        ctx,
        "SELECT count(*) AS n, count(DISTINCT customer_id) AS d FROM {schema}.dim_customers",
    )[0]
    observed = {
        "fact_orders_count": orders["n"],
        "fact_orders_revenue_cents": orders["r"],
        "fact_orders_cancelled": orders["c"],
        "iot_device_hours": hourly["n"],
        "iot_readings": hourly["r"],
        "dim_customers_versions": customers["n"],
        "dim_customers_customers": customers["d"],
    }
    for name, want in asdict(expected).items():
        got = int(observed[name] or 0)
        run.check(f"reconcile_{name}", passed=got == want, observed=got, expected=want)
