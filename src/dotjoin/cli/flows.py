"""``dotjoin run``, ``dotjoin backfill`` and ``dotjoin flows list|show``: the local runner's commands."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_rows, lit, progress_bar

if TYPE_CHECKING:
    from dotjoin.orchestration.runner import BackfillResult
    from dotjoin.orchestration.steps import Flow
    from dotjoin.platform.runs import RunReport

app = typer.Typer(
    help="Orchestrated pipelines: their steps, retries, timeouts and schedules.\n\n"
    "Example: dotjoin flows show stocks",
    no_args_is_help=True,
)

PipelineArg = Annotated[str, typer.Argument(help="An orchestrated pipeline (see `dotjoin flows list`).")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run dates that already succeeded, and every step again.")
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="Serve every source from here (e.g. `dotjoin sources serve`); passed to the steps.",
        show_default=False,
    ),
]


def _flow(name: str) -> Flow:
    from dotjoin.cli.registry import get_flow
    from dotjoin.exceptions import DotjoinError

    try:
        return get_flow(name)
    except ImportError as exc:  # a registered flow whose pipeline is missing or broken
        raise DotjoinError(f"pipeline {name} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _day(value: str, option: str) -> date:
    """A logical date; one after today (UTC) is refused: its data does not exist yet."""
    from datetime import UTC, datetime

    from dotjoin.exceptions import TerminalError

    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} takes a date as YYYY-MM-DD, not {value!r}") from exc
    today = datetime.now(UTC).date()
    if day > today:
        raise TerminalError(f"{option} {day} is in the future (today is {today} UTC): it has no data yet")
    return day


def _params(base_url: str | None) -> dict[str, Any]:
    """The steps' parameters; a --base-url that can never work is refused before any step runs."""
    if not base_url:
        return {}
    from dotjoin.exceptions import ConfigError
    from dotjoin.platform.http import url_problem

    problem = url_problem(base_url)
    if problem is not None:
        raise ConfigError(f"--base-url {base_url!r}: {problem}")
    return {"base_url": base_url}


def _metadata(metadata: dict[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in metadata.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_rows(report: RunReport) -> list[dict[str, Any]]:
    return [
        {
            "step": s.name,
            "status": s.status + (" (reused)" if s.reused else ""),
            "attempts": s.attempts,
            "seconds": s.duration_s,
            "metadata": _metadata(s.metadata),
        }
        for s in report.steps
    ]


def _print_failures(report: RunReport) -> None:
    for s in report.steps:
        if s.status == "failed":
            console.print(
                f"[red]{lit(s.name)} failed after {s.attempts} attempt(s):[/] {lit(s.error)}", highlight=False
            )


@app.command("list")
def list_flows(output: OutputOption = "table") -> None:
    """Every orchestrated pipeline: schedule, start date, steps.

    Example: dotjoin flows list --output json
    """
    from dotjoin.cli.registry import FLOWS
    from dotjoin.exceptions import DotjoinError

    rows: list[dict[str, Any]] = []
    for name in sorted(FLOWS):
        try:
            flow = _flow(name)
        except DotjoinError as exc:
            rows.append({"name": name, "description": f"unavailable: {exc}"})
            continue
        rows.append(
            {
                "name": name,
                "schedule": flow.schedule,
                "start_date": flow.start_date,
                "steps": len(flow.steps),
                "description": flow.description,
            }
        )
    columns = ["name", "schedule", "start_date", "steps", "description"]
    emit_rows(rows, output=output, title="Flows", columns=columns)


def _flow_json(flow: Flow) -> dict[str, Any]:
    return {
        "name": flow.name,
        "description": flow.description,
        "schedule": flow.schedule,
        "start_date": flow.start_date.isoformat(),
        "owner": flow.owner,
        "catchup": flow.catchup,
        "max_active_runs": flow.max_active_runs,
        "tags": list(flow.tags),
        "steps": [
            {
                "name": s.name,
                "upstream": list(s.upstream),
                "retries": s.retries,
                "retry_delays_s": [s.retry_delay(n) for n in range(1, s.retries + 1)],
                "timeout_s": s.timeout_s,
                "trigger_rule": s.trigger_rule,
                "branch": s.branch,
                "doc": s.summary,
            }
            for s in flow.order()
        ],
    }


@app.command("show")
def show_flow(name: PipelineArg, output: OutputOption = "table") -> None:
    """One flow's steps in run order: upstream steps, retries and their delays, timeout, trigger rule.

    Example: dotjoin flows show nightly --output json
    """
    data = _flow_json(_flow(name))
    if check_format(output) == "json":
        emit_json(data)
        return
    console.print(f"[bold]{lit(data['name'])}[/]: {lit(data['description'])}", highlight=False)
    console.print(
        f"schedule {data['schedule']}, from {data['start_date']}, owner {data['owner']}, "
        f"catchup {'on' if data['catchup'] else 'off'}",
        highlight=False,
        markup=False,
    )
    rows = [
        {
            "step": s["name"] + (" (branch)" if s["branch"] else ""),
            "upstream": ", ".join(s["upstream"]) or "—",
            "retries": s["retries"],
            "retry delays (s)": ", ".join(f"{d:g}" for d in s["retry_delays_s"]) or "—",
            "timeout (s)": "none" if s["timeout_s"] is None else f"{s['timeout_s']:g}",
            "trigger rule": s["trigger_rule"],
            "doc": s["doc"],
        }
        for s in data["steps"]
    ]
    emit_rows(rows, output="table", title="Steps, in run order")


def run(
    pipeline: PipelineArg,
    day: Annotated[str, typer.Option("--date", help="The logical date to run, YYYY-MM-DD.")],
    force: ForceOption = False,
    base_url: BaseUrlOption = None,
    output: OutputOption = "table",
) -> None:
    """Run one orchestrated pipeline for one date with the local runner (retries, timeouts, alerts).

    A date that already succeeded is not run again (--force runs it); a failed one resumes: steps that
    succeeded before are reused. Exits 1 if a step failed.

    Example: dotjoin run stocks --date 2024-03-07 --base-url http://127.0.0.1:8765
    """
    from dotjoin.cli.main import STATE
    from dotjoin.orchestration.runner import run_date, was_skipped

    fmt = check_format(output)
    flow = _flow(pipeline)
    report = run_date(flow, STATE.settings, _day(day, "--date"), params=_params(base_url), force=force)
    if fmt == "json":
        emit_json(report.model_dump(mode="json"))
    elif was_skipped(report):
        console.print(
            f"{flow.name} {day} already succeeded (run {report.run_id}); --force runs it again",
            highlight=False,
            markup=False,
        )
    else:
        title = f"{flow.name} {day} {report.run_id}: {report.status}"
        emit_rows(_step_rows(report), output="table", title=title)
        _print_failures(report)
    if report.status != "succeeded":
        raise typer.Exit(1)


def _backfill_rows(result: BackfillResult) -> list[dict[str, Any]]:
    rows = []
    for o in result.outcomes:
        report = o.report
        failed = [s for s in report.steps if s.status == "failed"] if report else []
        reused = sum(s.reused for s in report.steps) if report else 0
        rows.append(
            {
                "date": o.logical_date.isoformat(),
                "status": o.status,
                "run_id": report.run_id if report else "",
                "seconds": report.duration_s if report else None,
                "reused steps": reused if report else None,
                "detail": o.reason or "; ".join(f"{s.name}: {s.error}" for s in failed),
            }
        )
    return rows


def backfill(
    pipeline: PipelineArg,
    start: Annotated[str, typer.Option("--start", help="First logical date, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last logical date (inclusive), YYYY-MM-DD.")],
    only_failed: Annotated[
        bool, typer.Option("--only-failed", help="Only dates whose run failed (or whose runner died).")
    ] = False,
    force: ForceOption = False,
    base_url: BaseUrlOption = None,
    output: OutputOption = "table",
) -> None:
    """Run a pipeline for every date from --start to --end, oldest first, resuming what failed.

    Dates that already succeeded are skipped; failed or interrupted dates re-run only their failed or
    missing steps. A failed date does not stop the backfill; the command exits 1 if any date failed.

    Example: dotjoin backfill stocks --start 2024-03-01 --end 2024-03-07 --base-url http://127.0.0.1:8765
    """
    from dotjoin.cli.main import STATE
    from dotjoin.orchestration.runner import backfill as run_backfill

    fmt = check_format(output)
    flow = _flow(pipeline)
    first, last = _day(start, "--start"), _day(end, "--end")
    with progress_bar(fmt == "table" and not STATE.quiet, "backfill") as bar:
        result = run_backfill(
            flow, STATE.settings, first, last, only_failed=only_failed, force=force, params=_params(base_url),
            progress=bar and (lambda done, total, day: bar(done, total, f"backfill: {day.isoformat()} done")),
        )  # fmt: skip
    rows = _backfill_rows(result)
    if fmt == "json":
        emit_json(
            {
                "flow": result.flow,
                "start": first,
                "end": last,
                "ran": result.ran,
                "skipped": result.skipped,
                "succeeded": result.succeeded,
                "failed": result.failed,
                "dates": rows,
                "reports": [r.model_dump(mode="json") for r in result.reports.values()],
            }
        )
    else:
        emit_rows(rows, output="table", title=f"backfill {flow.name} {first} .. {last}")
        console.print(
            f"{len(result.ran)} run ({len(result.succeeded)} succeeded, {len(result.failed)} failed), "
            f"{len(result.skipped)} skipped",
            highlight=False,
            markup=False,
        )
    if result.failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="flows")
    root.command("run")(run)
    root.command("backfill")(backfill)
