"""``dotjoin quality check|results``: run a contract's checks on a table; the latest result of every check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_report, emit_rows

app = typer.Typer(
    help="Data quality: a dataset's contract checks, compiled to SQL; every check's latest result.",
    no_args_is_help=True,
)


@app.command()
def check(
    contract: Annotated[
        Path, typer.Argument(help="The dataset's ODCS contract (YAML).", exists=True, dir_okay=False)
    ],
    table: Annotated[
        str | None,
        typer.Option("--table", "-t", help="The table; default: the contract's physicalName or name."),
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", "-e", help="warehouse (the profile's) or trino (the stack's lake).")
    ] = "warehouse",
    partition: Annotated[
        str | None, typer.Option("--partition", "-p", help="Check one partition only: COLUMN=VALUE.")
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Run the checks of a contract (its quality rules, relationships, latency SLAs and what its schema
    implies) on a table, as a run (quality_check): the results go to dq_results, Prometheus and the
    lineage store like any run's. Exit 1 when an error-severity check fails.

    Example: dotjoin quality check src/dotjoin/pipelines/api_ingest/contracts/weather_hourly.yaml

    Example: dotjoin --profile stack quality check orders.yaml -e trino -t staging.orders -p day=2024-03-01
    """
    from dotjoin.cli.main import STATE
    from dotjoin.platform.files.schema import load_schema
    from dotjoin.platform.quality.checks import CheckEngine, run_checks
    from dotjoin.platform.runs import start_run

    if engine not in ("warehouse", "trino"):
        raise typer.BadParameter(f"must be warehouse or trino, not {engine!r}", param_hint="--engine")
    where = None
    if partition is not None:
        column, sep, value = partition.partition("=")
        if not sep or not column:
            raise typer.BadParameter(f"expected COLUMN=VALUE, not {partition!r}", param_hint="--partition")
        where = (column, value)
    spec = load_schema(contract)
    settings = STATE.settings
    params: dict[str, Any] = {
        "contract": str(contract),
        "table": table,
        "engine": engine,
        "partition": partition,
    }
    with start_run("quality_check", settings, params=params) as run:
        if engine == "trino":
            from dotjoin.platform import trino

            results = run_checks(spec, CheckEngine("trino", lambda sql, p: trino.query(settings, sql, p)),
                                 table=table, partition=where)  # fmt: skip
        else:
            from dotjoin.platform.warehouse import open_warehouse

            with open_warehouse(settings) as wh:
                results = run_checks(spec, CheckEngine.of(wh), table=table, partition=where)
        for result in results:
            run.record(result)
    emit_report(run.report, output, _summary)


def _summary(report: Any) -> str:
    failed = [c for c in report.checks if not c.passed]
    if not failed:
        return f"{len(report.checks)} checks passed"
    lines = [f"{len(failed)} of {len(report.checks)} checks failed:"]
    lines += [f"  {c.detail or c.name}" for c in failed]
    return "\n".join(lines)


@app.command()
def results(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Only this dataset.")] = None,
    failing: Annotated[
        bool, typer.Option("--failing", help="Only checks whose latest result failed.")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """The latest result of every check of every dataset, from the run reports (what /quality shows).
    Exit 1 with --failing when any is failing.

    Example: dotjoin quality results --failing
    """
    from dotjoin.cli.main import STATE
    from dotjoin.platform.runs.store import RunStore
    from dotjoin.web.quality import datasets

    found = [q for q in datasets(RunStore(STATE.settings.runs_dir).list()) if dataset in (None, q.name)]
    rows = [
        {"dataset": q.name, "check": r.check.name, "partition": r.check.partition,
         "severity": r.check.severity, "passed": r.check.passed, "observed": r.check.observed,
         "threshold": r.check.expected, "failed_rows": r.check.failed_rows,
         "sample": "; ".join(r.check.sample), "run_id": r.run.run_id}
        for q in found for r in q.latest if not (failing and r.check.passed)
    ]  # fmt: skip
    if check_format(output) == "json":
        emit_json(rows)
    elif rows:
        hidden = {"run_id", *(["dataset"] if dataset else [])}  # and the columns with nothing in them
        columns = [c for c in rows[0] if c not in hidden and any(r[c] not in (None, "") for r in rows)]
        emit_rows(rows, output="table", columns=columns)
    else:
        console.print(
            "no check results" + (" failing" if failing else "") + (f" for {dataset}" if dataset else "")
        )
    if failing and rows:
        raise typer.Exit(1)
