"""``dotjoin ingest weather|transit``: idempotent, resumable API ingestion into the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from dotjoin.cli.output import OutputOption, check_format, emit_report, progress_bar
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
    from dotjoin.pipelines.api_ingest.common import check_not_future

    if day and (since or until):
        raise typer.BadParameter("give --date, or --since/--until, not both")
    try:
        if day:
            one = date.fromisoformat(day)
            check_not_future(one, None, options=("--date", "--date"))
            return one, one
        first = date.fromisoformat(since) if since else None
        last = date.fromisoformat(until) if until else first
    except ValueError as exc:
        raise typer.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
    if last is not None and first is None:
        raise typer.BadParameter("--until needs --since")
    check_not_future(first, last)
    return first, last


def _ingest(
    run: Callable[..., RunReport],
    output: str,
    day: str | None,
    since: str | None,
    until: str | None,
    base_url: str | None,
    refetch: bool,
    report: Path | None,
    **options: Any,
) -> None:
    from dotjoin.cli.main import STATE

    first, last = _dates(day, since, until)
    with progress_bar(check_format(output) == "table" and not STATE.quiet, "fetching") as progress:
        result = run(
            STATE.settings, since=first, until=last, base_url=base_url, refetch=refetch, report_path=report,
            progress=progress, **options,
        )  # fmt: skip
    emit_report(result, output, _summary)


def _summary(report: RunReport) -> str:
    m, c = report.metrics, report.counts
    return (
        f"input {c.get('input', 0)}, output {c.get('output', 0)}, "
        f"duplicates {c.get('duplicates', 0)}, quarantined {c.get('quarantined', 0)}; "
        f"written: {int(m.get('rows_inserted', 0))} inserted, {int(m.get('rows_updated', 0))} updated; "
        f"failed requests (retried or not): {int(m.get('failed_requests', 0))}"
    )


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
    from dotjoin.pipelines.api_ingest.weather import run

    _ingest(run, output, day, since, until, base_url, refetch, report, cities_file=cities)


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
    from dotjoin.pipelines.api_ingest.transit import run

    _ingest(run, output, day, since, until, base_url, refetch, report)
