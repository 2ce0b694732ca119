"""Top-level commands: ``sql``, ``serve``, ``demo``, ``keys``."""

from __future__ import annotations

from typing import Annotated

import typer

from dotjoin.cli.output import (
    OutputOption,
    QueryOutputOption,
    check_format,
    console,
    emit_csv,
    emit_json,
    emit_rows,
    lit,
)
from dotjoin.platform.runs import RunReport


def sql(
    query: Annotated[str, typer.Argument(help="SQL to run; $1, $2 (warehouse) or ? (trino) for --param.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-P", help="A query parameter (repeatable, in order).")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", "-e", help="warehouse (the profile's) or trino (the stack's lake).")
    ] = "warehouse",
    limit: Annotated[int, typer.Option("--limit", help="Rows shown in table output.")] = 100,
    output: QueryOutputOption = "table",
) -> None:
    """Run a query on the profile's warehouse (DuckDB locally, PostgreSQL in the stack), or on Trino over
    the lake's Iceberg tables (--engine trino: catalog dotjoin, schemas raw, staging, curated).

    --output csv writes RFC 4180 CSV with a header line (every row; NULL is an empty field).

    Example: dotjoin sql "SELECT pipeline, status FROM dotjoin_runs WHERE pipeline = $1" -P selfcheck -o json

    Example: dotjoin sql -e trino "SELECT count(*) FROM raw.cdc_source_users_changes"
    """
    from dotjoin.cli.main import STATE

    fmt = check_format(output, ("table", "json", "csv"))
    if engine not in ("warehouse", "trino"):
        raise typer.BadParameter(f"--engine must be warehouse or trino, not {engine!r}")
    if engine == "trino":
        from dotjoin.platform import trino

        result = trino.query(STATE.settings, query, list(param or []))
    else:
        from dotjoin.platform.warehouse import open_warehouse

        with open_warehouse(STATE.settings) as wh:
            result = wh.query(query, list(param or []))
    rows = result.to_pylist()
    if fmt == "json":
        emit_json(rows)
        return
    if fmt == "csv":
        emit_csv(rows, result.column_names)
        return
    emit_rows(rows[:limit], output="table", columns=result.column_names)
    if len(rows) > limit:
        console.print(f"[dim]{len(rows) - limit} more rows not shown (--limit, or --output json)[/]")
    console.print(f"[dim]{len(rows)} row(s)[/]")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default from [web] host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from [web] port).")] = None,
) -> None:
    """Serve the web app: run history, row accounting, /metrics for Prometheus, and POST /score (an API
    key from `dotjoin keys add`; the OpenAPI schema at /api/openapi.json).

    Example: dotjoin serve --port 8000   (then open http://127.0.0.1:8000)
    """
    from dotjoin.cli.main import STATE
    from dotjoin.web.app import serve as serve_app

    settings = STATE.settings
    serve_app(settings, host=host or settings.web.host, port=port or settings.web.port)


def demo(output: OutputOption = "table") -> None:
    """Run every pipeline that exists so far on the active profile (local by default) and summarise.

    Example: dotjoin demo && dotjoin serve
    """
    import logging
    import tempfile
    from pathlib import Path

    from dotjoin.cli.main import STATE
    from dotjoin.cli.registry import DEMO_STEPS

    fmt = check_format(output)
    settings = STATE.settings
    if not STATE.debug:
        # The demo injects faults on purpose; its retries are in each run's report, not on the screen.
        logging.getLogger("dotjoin").setLevel(logging.WARNING)
    reports = []
    with tempfile.TemporaryDirectory(prefix="dotjoin-demo-") as scratch:
        for step in DEMO_STEPS:
            with console.status(f"[bold]{lit(step.name)}[/]: {lit(step.description)}", spinner="dots"):
                reports.append(step.run(settings, Path(scratch)))
    url = f"http://{settings.web.host}:{settings.web.port}"
    if fmt == "json":
        emit_json({"runs": [r.model_dump(mode="json") for r in reports], "web": url})
    else:
        emit_rows(
            [
                {
                    "pipeline": r.pipeline,
                    "status": r.status,
                    "input": r.counts.get("input"),
                    "output": r.counts.get("output"),
                    "quarantined": r.counts.get("quarantined"),
                    "duplicates": r.counts.get("duplicates"),
                    "checks": _checks_cell(r),
                    "seconds": round(r.duration_s or 0.0, 1),
                }
                for r in reports
            ],
            output="table",
            title=f"dotjoin demo ({settings.profile} profile)",
        )
        console.print(f"See the runs: [bold]dotjoin serve[/] then open {lit(url)}  (or: dotjoin runs list)")
    if any(r.status != "succeeded" for r in reports):
        raise typer.Exit(1)


keys_app = typer.Typer(
    help="API keys of the HTTP APIs (stored hashed; a key is shown once).\n\n"
    "Example: dotjoin keys add fraud-service --scope score",
    no_args_is_help=True,
)


@keys_app.command("add")
def add_key(
    name: Annotated[str, typer.Argument(help="Who the key is for (adding a name again replaces its key).")],
    scope: Annotated[list[str], typer.Option("--scope", help="What it may do (repeatable): score.")],
) -> None:
    """Make an API key and print it once (only its SHA-256 is kept, in <state_dir>/api_keys.json).

    Example: dotjoin keys add fraud-service --scope score
    """
    from dotjoin.cli.main import STATE
    from dotjoin.platform.api_keys import KeyRing

    known = {"score"}
    if unknown := sorted(set(scope) - known):
        raise typer.BadParameter(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                                 param_hint="--scope")  # fmt: skip
    typer.echo(KeyRing(STATE.settings.state_dir).add(name, tuple(sorted(set(scope)))))


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command()(sql)
    app.command()(serve)
    app.command()(demo)


def _checks_cell(report: RunReport) -> str:
    """``passed/total`` checks; for an orchestrated run, its steps (``6/6 steps``)."""
    if report.steps:
        done = sum(s.status == "succeeded" for s in report.steps)
        return f"{done}/{len(report.steps)} steps"
    return f"{len(report.checks) - report.checks_failed}/{len(report.checks)}"
