"""``dotjoin runs list|show``: the run history (reports under ``<state_dir>/runs/``)."""

from __future__ import annotations

from typing import Annotated

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_rows, lit

app = typer.Typer(help="Run history: every pipeline run and its row accounting.", no_args_is_help=True)


@app.command("list")
def list_runs(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    output: OutputOption = "table",
) -> None:
    """List recent runs, newest first.

    Example: dotjoin runs list --pipeline selfcheck -n 5 --output json
    """
    from dotjoin.cli.main import STATE
    from dotjoin.platform.runs import RunStore

    reports = RunStore(STATE.settings.runs_dir).list(pipeline=pipeline, limit=limit)
    rows = [
        {
            "run_id": r.run_id,
            "pipeline": r.pipeline,
            "status": r.status,
            "started_at": r.started_at,
            "duration_s": r.duration_s,
            "input": r.counts.get("input"),
            "output": r.counts.get("output"),
            "quarantined": r.counts.get("quarantined"),
            "duplicates": r.counts.get("duplicates"),
            "checks_failed": r.checks_failed,
        }
        for r in reports
    ]
    if check_format(output) == "table" and not rows:
        console.print("No runs yet: try [bold]dotjoin demo[/].")
        return
    emit_rows(rows, output=output, title="Runs", json_data=[r.model_dump(mode="json") for r in reports])


@app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    output: OutputOption = "table",
) -> None:
    """Show one run: counts, outputs, checks and metrics.

    Example: dotjoin runs show selfcheck-20261125T203000-ab12cd --output json
    """
    from dotjoin.cli.main import STATE
    from dotjoin.platform.runs import RunStore

    report = RunStore(STATE.settings.runs_dir).get(run_id)
    if check_format(output) == "json":
        emit_json(report.model_dump(mode="json"))
        return
    status_style = {"succeeded": "green", "failed": "red"}.get(report.status, "yellow")
    console.print(
        f"[bold]{lit(report.pipeline)}[/] {lit(report.run_id)} [{status_style}]{lit(report.status)}[/]"
    )
    console.print(
        f"profile {report.profile}, started {report.started_at:%Y-%m-%d %H:%M:%S}, "
        f"took {report.duration_s or 0:.2f}s",
        markup=False,
    )
    if report.error:
        console.print(f"[red]error:[/] {lit(report.error)}", highlight=False)
    emit_rows([{"count": k, "rows": v} for k, v in report.counts.items()], output="table", title="Counts")
    if report.outputs:
        emit_rows([o.model_dump() for o in report.outputs], output="table", title="Outputs")
    if report.checks:
        emit_rows(
            [{**c.model_dump(), "passed": "yes" if c.passed else "NO"} for c in report.checks],
            output="table",
            title="Checks",
            columns=["name", "passed", "observed", "expected", "detail"],
        )
    if report.metrics:
        emit_rows(
            [{"metric": k, "value": v} for k, v in report.metrics.items()], output="table", title="Metrics"
        )
