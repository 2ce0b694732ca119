"""``dotjoin lake …`` (inspect and maintain the lake) and ``dotjoin lakehouse run`` (the pipeline)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from dotjoin.config import Settings
    from dotjoin.platform.runs import RunReport

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_report, emit_rows
from dotjoin.exceptions import ConfigError

app = typer.Typer(
    help="Inspect and maintain the lake's Iceberg tables: pruning, compaction, snapshots, cost.\n\n"
    'Example: dotjoin lake scan-stats "SELECT * FROM staging.iot_readings '
    "WHERE reading_ts >= '2026-01-02T00:00:00' and reading_ts < '2026-01-03T00:00:00'\"",
    no_args_is_help=True,
)
pipeline_app = typer.Typer(
    help="Lakehouse zones: raw files -> staging Iceberg tables -> curated dbt marts.\n\n"
    "Example: dotjoin lakehouse run --days 3 --seed 7",
    no_args_is_help=True,
)

TableArg = Annotated[str, typer.Argument(help="A lake table, <zone>.<table>, e.g. staging.orders.")]


def _settings() -> Settings:
    from dotjoin.cli.main import STATE

    return STATE.settings


@app.command("scan-stats")
def scan_stats(
    query: Annotated[
        str, typer.Argument(help="SELECT … FROM <zone>.<table> [WHERE <filter>], or table [WHERE …].")
    ],
    output: OutputOption = "table",
) -> None:
    """Files and bytes a query scans after Iceberg pruning, against the table's totals.

    Example: dotjoin lake scan-stats "staging.orders WHERE updated_at >= '2026-01-02T00:00:00'"
    """
    from dotjoin.pipelines.lakehouse.ops import scan_stats as stats
    from dotjoin.platform.lake import open_lake

    with open_lake(_settings()) as lake:
        row = stats(lake, query)
    emit_rows([row], output=output, json_data=row)


@app.command()
def compact(table: TableArg, output: OutputOption = "table") -> None:
    """Rewrite a table's small files into one file per partition (a new snapshot; rows unchanged).

    Example: dotjoin lake compact staging.iot_readings
    """
    from dotjoin.pipelines.lakehouse.ops import compact as run_compact
    from dotjoin.platform.lake import open_lake

    with open_lake(_settings()) as lake:
        row = run_compact(lake, table)
    emit_rows([row], output=output, json_data=row)


@app.command()
def expire(
    table: TableArg,
    older_than_days: Annotated[
        float,
        typer.Option(
            "--older-than-days", min=0, help="Expire snapshots committed before this many days ago."
        ),
    ] = 7.0,
    retain_last: Annotated[
        int, typer.Option("--retain-last", min=1, help="Always keep this many newest snapshots.")
    ] = 1,
    output: OutputOption = "table",
) -> None:
    """Expire old snapshots and delete the files only they referenced (rows unchanged; no time travel
    to expired snapshots afterwards). Run it after compaction to reclaim the replaced files.

    Example: dotjoin lake expire staging.iot_readings --older-than-days 0 --retain-last 1
    """
    from dotjoin.pipelines.lakehouse.ops import expire as run_expire
    from dotjoin.platform.lake import open_lake

    with open_lake(_settings()) as lake:
        row = run_expire(lake, table, older_than_days=older_than_days, retain_last=retain_last)
    emit_rows([row], output=output, json_data=row)


@app.command()
def snapshots(table: TableArg, output: OutputOption = "table") -> None:
    """Every snapshot of a table, oldest first (ids for --as-of).

    Example: dotjoin lake snapshots staging.orders --output json
    """
    from dotjoin.platform.lake import open_lake

    with open_lake(_settings()) as lake:
        snaps = lake.snapshots(table)
    rows = [
        {
            "snapshot_id": s.snapshot_id,
            "committed_at": s.committed_at,
            "operation": s.operation,
            "added_files": s.summary.get("added-data-files", ""),
            "deleted_files": s.summary.get("deleted-data-files", ""),
            "total_records": s.summary.get("total-records", ""),
        }
        for s in snaps
    ]
    emit_rows(rows, output=output, title=f"snapshots of {table}")


@app.command()
def read(
    table: TableArg,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Snapshot id or ISO timestamp (time travel).")
    ] = None,
    where: Annotated[str | None, typer.Option("--where", help="PyIceberg row filter.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to print.")] = 10,
    output: OutputOption = "table",
) -> None:
    """Read a table now or as of a past snapshot.

    Example: dotjoin lake read staging.orders --as-of 2026-11-25T10:00:00 --limit 5
    """
    from dotjoin.pipelines.lakehouse.ops import read_as_of
    from dotjoin.platform.lake import open_lake

    with open_lake(_settings()) as lake:
        if as_of is None:
            snap_id = lake.snapshots(table)[-1].snapshot_id if lake.snapshots(table) else None
            data = lake.scan(table, row_filter=where)
        else:
            snap, data = read_as_of(lake, table, as_of, row_filter=where)
            snap_id = snap.snapshot_id
    rows = data.slice(0, limit).to_pylist()
    if check_format(output) == "json":
        emit_json({"table": table, "snapshot_id": snap_id, "rows": data.num_rows, "sample": rows})
        return
    emit_rows(rows, output="table", title=f"{table} @ snapshot {snap_id}: {data.num_rows} rows")


@app.command()
def cost(
    builds_per_month: Annotated[
        int, typer.Option("--builds-per-month", help="Full mart builds a month.")
    ] = 30,
    output: OutputOption = "table",
) -> None:
    """Bytes stored per zone and scanned per mart build, priced at published cloud list prices.

    Example: dotjoin lake cost --builds-per-month 30
    """
    from dotjoin.pipelines.lakehouse.cost import PRICES, PRICES_CHECKED, estimate
    from dotjoin.pipelines.lakehouse.pipeline import PIPELINE
    from dotjoin.platform.lake import open_lake
    from dotjoin.platform.runs import RunStore

    settings = _settings()
    with open_lake(settings) as lake:
        if lake.root != lake.files:
            raise ConfigError(f"lake cost measures a local lake's files; [lake] root is {lake.root}")
        root = Path(lake.root)
    builds = [r for r in RunStore(settings.runs_dir).list(pipeline=PIPELINE) if "dbt_build_s" in r.metrics]
    rows = estimate(root, builds[0] if builds else None, builds_per_month=builds_per_month)
    emit_rows(
        rows,
        output=output,
        title="lake cost estimate, USD (storage per month; scans per month)",
        json_data={"rows": rows, "prices": [p.__dict__ for p in PRICES], "prices_checked": PRICES_CHECKED},
    )
    if check_format(output) == "table":
        console.print(
            f"list prices checked {PRICES_CHECKED}: "
            + "; ".join(f"{p.item} ${p.usd} per {p.unit} ({p.source})" for p in PRICES),
            markup=False,
        )
        if not builds:
            console.print("no lakehouse build recorded yet: run `dotjoin lakehouse run` for scan figures")


@pipeline_app.command("run")
def run_pipeline(
    days: Annotated[int, typer.Option("--days", min=1, help="Days of generated sources.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (same seed, same files).")] = 7,
    start: Annotated[
        str | None, typer.Option("--start", help="First day, YYYY-MM-DD (default: days ago).")
    ] = None,
    input_dir: Annotated[
        Path | None, typer.Option("--input", help="Land these files instead of generating sources.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="dbt target: local (DuckDB) or stack.")
    ] = None,
    schema: Annotated[
        str | None, typer.Option("--schema", help="PostgreSQL schema of the marts (stack).")
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Generate sources, land raw, stage to Iceberg, build the dbt marts, reconcile with ground truth.

    Example: dotjoin lakehouse run --days 3 --seed 7
    """
    from dotjoin.pipelines.lakehouse.curated import Target
    from dotjoin.pipelines.lakehouse.pipeline import run
    from dotjoin.simulate.lakehouse.shop import GeneratedShop

    if target not in (None, "local", "stack"):
        raise typer.BadParameter("--target must be local or stack")
    try:
        first = date.fromisoformat(start) if start else None
    except ValueError as exc:
        raise typer.BadParameter(f"--start is YYYY-MM-DD: {exc}") from exc
    report = run(
        _settings(),
        source=None if input_dir is not None else GeneratedShop(days=days, seed=seed, start=first),
        input_dir=input_dir,
        target=cast("Target | None", target),
        dbt_schema=schema,
    )
    emit_report(report, output, _summary)


def _summary(report: RunReport) -> str:
    c = report.counts
    return (
        f"input {c.get('input', 0)}, output {c.get('output', 0)}, duplicates {c.get('duplicates', 0)}, "
        f"quarantined {c.get('quarantined', 0)}; raw files landed {c.get('raw_files_landed', 0)}, "
        f"unchanged {c.get('raw_files_unchanged', 0)}; "
        f"dbt build {report.metrics.get('dbt_build_s', 0):.1f}s"
    )
