"""``dotjoin ingest weather|transit``: idempotent, resumable API ingestion into the warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_rows
from dotjoin.platform.runs import RunReport

app = typer.Typer(
    help="Fetch public APIs into the warehouse, idempotently (re-runs write nothing new).\n\n"
    "Example: dotjoin ingest weather --since 2024-01-01 --until 2024-01-31 --base-url http://127.0.0.1:8765",
    no_args_is_help=True,
)

DateOption = Annotated[
    str | None, typer.Option("--date", help="One day, YYYY-MM-DD (always re-fetched).", show_default=False)
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="First day of a backfill, YYYY-MM-DD.", show_default=False)
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Last day of a backfill (default: --since).", show_default=False)
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="Serve every source from here (e.g. `dotjoin sources serve`); default: [ingest] URLs.",
        show_default=False,
    ),
]
RefetchOption = Annotated[
    bool,
    typer.Option(
        "--refetch",
        help="Fetch days the cursor marks complete again (cheap: unchanged rows are not written).",
    ),
]
ReportOption = Annotated[Path | None, typer.Option("--report", help="Also write the run report here.")]


def _dates(day: str | None, since: str | None, until: str | None) -> tuple[date | None, date | None]:
    if day and (since or until):
        raise typer.BadParameter("give --date, or --since/--until, not both")
    try:
        if day:
            one = date.fromisoformat(day)
            return one, one
        first = date.fromisoformat(since) if since else None
        last = date.fromisoformat(until) if until else first
    except ValueError as exc:
        raise typer.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
    if last is not None and first is None:
        raise typer.BadParameter("--until needs --since")
    return first, last


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int, str], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("fetching", total=None)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        yield update


def _emit(report: RunReport, output: str) -> None:
    if check_format(output) == "json":
        emit_json(report.model_dump(mode="json"))
    else:
        emit_rows(
            [
                {"check": c.name, "passed": c.passed, "observed": c.observed, "expected": c.expected}
                for c in report.checks
            ],
            output="table",
            title=f"{report.pipeline} {report.run_id}: {report.status}",
        )
        m, c = report.metrics, report.counts
        console.print(
            f"input {c.get('input', 0)}, output {c.get('output', 0)}, "
            f"duplicates {c.get('duplicates', 0)}, quarantined {c.get('quarantined', 0)}; "
            f"written: {int(m.get('rows_inserted', 0))} inserted, {int(m.get('rows_updated', 0))} updated; "
            f"failed requests (retried or not): {int(m.get('failed_requests', 0))}"
        )
    if report.status != "succeeded":
        raise typer.Exit(1)


@app.command()
def weather(
    day: DateOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    base_url: BaseUrlOption = None,
    cities: Annotated[
        Path | None,
        typer.Option("--cities", help="CSV name,latitude,longitude (default: [ingest] cities_file)."),
    ] = None,
    refetch: RefetchOption = False,
    report: ReportOption = None,
    output: OutputOption = "table",
) -> None:
    """Hourly weather per city (Open-Meteo format) into cities + weather_hourly.

    Without dates: every day after each city's cursor up to yesterday (the daily cron run).

    Example: dotjoin ingest weather --date 2024-03-01 --base-url http://127.0.0.1:8765
    """
    from dotjoin.cli.main import STATE
    from dotjoin.pipelines.api_ingest import weather as pipeline

    first, last = _dates(day, since, until)
    fmt = check_format(output)
    with _progress(fmt == "table" and not STATE.quiet) as progress:
        result = pipeline.run(
            STATE.settings,
            since=first,
            until=last,
            base_url=base_url,
            cities_file=cities,
            refetch=refetch,
            report_path=report,
            progress=progress,
        )
    _emit(result, output)


@app.command()
def transit(
    day: DateOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    base_url: BaseUrlOption = None,
    refetch: RefetchOption = False,
    report: ReportOption = None,
    output: OutputOption = "table",
) -> None:
    """GTFS static feed + GTFS-realtime TripUpdates into stops, routes, trips, stop_times, arrivals.

    Example: dotjoin ingest transit --since 2024-03-01 --until 2024-03-07 --base-url http://127.0.0.1:8765
    """
    from dotjoin.cli.main import STATE
    from dotjoin.pipelines.api_ingest import transit as pipeline

    first, last = _dates(day, since, until)
    fmt = check_format(output)
    with _progress(fmt == "table" and not STATE.quiet) as progress:
        result = pipeline.run(
            STATE.settings,
            since=first,
            until=last,
            base_url=base_url,
            refetch=refetch,
            report_path=report,
            progress=progress,
        )
    _emit(result, output)
