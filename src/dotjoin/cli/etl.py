"""``dotjoin etl csv`` and ``dotjoin etl csv-report``: the CSV ETL pipeline and its SQL analyses."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_rows, err_console, lit
from dotjoin.pipelines.csv_etl.reasons import Dataset

if TYPE_CHECKING:
    from dotjoin.platform.runs import RunReport

app = typer.Typer(
    help="Batch ETL pipelines.\n\n"
    "Example: dotjoin etl csv --dataset commits --input data/commits/commits.csv",
    no_args_is_help=True,
)

DatasetOption = Annotated[Dataset, typer.Option("--dataset", "-d", help="commits or retail.")]


@app.command("csv")
def csv(
    dataset: DatasetOption,
    input_path: Annotated[
        Path,
        typer.Option("--input", "-i", help="The CSV file (retail: sales.csv, or the directory holding it)."),
    ],
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="Field separator; skips delimiter detection.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="File encoding (e.g. cp1252); skips encoding detection.")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the run report here.")] = None,
    reference_time: Annotated[
        datetime | None,
        typer.Option(
            "--reference-time",
            help="'Now' for the future-timestamp rule (ISO 8601, UTC if no offset); default: the clock.",
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Clean, deduplicate, quarantine, load and validate one messy CSV export.

    Every record ends up loaded, quarantined (table quarantine, with line, reason and raw text) or
    counted as a duplicate of an earlier line (table csv_etl_duplicates); the run report proves
    input == output + quarantined + duplicates. Re-running a file writes no rows.

    Example: dotjoin etl csv --dataset retail --input data/retail --report retail-run.json
    """
    from datetime import UTC

    from dotjoin.cli.main import STATE
    from dotjoin.pipelines.csv_etl.pipeline import run

    fmt = check_format(output)
    if reference_time is not None and reference_time.tzinfo is None:
        reference_time = reference_time.replace(tzinfo=UTC)
    show = fmt == "table" and not STATE.quiet
    with _progress(show, input_path) as progress:
        result = run(
            STATE.settings,
            dataset=dataset,
            input_path=input_path,
            delimiter=delimiter,
            encoding=encoding,
            report_path=report,
            reference_time=reference_time,
            progress=progress,
        )
    if fmt == "json":
        emit_json(result.model_dump(mode="json"))
    else:
        _print_report(result)
    if result.status != "succeeded":
        raise typer.Exit(1)


def _progress(show: bool, path: Path) -> Any:
    """A rich progress bar over the file's bytes (a no-op context when hidden)."""
    if not show:
        return nullcontext(None)
    from contextlib import contextmanager

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    @contextmanager
    def bar() -> Any:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        )
        task = progress.add_task(lit(path.name), total=None)
        started = False

        def update(done: int, total: int) -> None:
            nonlocal started
            if not started:  # shown once data flows: an input error is never preceded by a bar
                progress.start()
                started = True
            progress.update(task, completed=done, total=total)

        try:
            yield update
        finally:
            if started:
                progress.stop()

    return bar()


def _print_report(report: RunReport) -> None:
    style = "green" if report.status == "succeeded" else "red"
    console.print(
        f"[bold]csv_etl[/] {lit(report.run_id)} [{style}]{report.status}[/]  ({report.duration_s or 0:.2f}s)"
    )
    counts = report.counts
    emit_rows(
        [{k: counts.get(k) for k in ("input", "output", "quarantined", "duplicates")}
         | {k: int(report.metrics.get(f"rows_{k}", 0)) for k in ("inserted", "updated", "unchanged")}],
        output="table",
        title="Rows",
    )  # fmt: skip
    reasons = {k.split(".", 1)[1]: int(v) for k, v in report.metrics.items() if k.startswith("quarantined.")}
    if reasons:
        emit_rows(
            [{"reason": k, "records": v} for k, v in reasons.items()], output="table", title="Quarantined"
        )
    emit_rows(
        [
            {"check": c.name, "passed": "yes" if c.passed else "NO", "observed": c.observed,
             "expected": c.expected}
            for c in report.checks
        ],
        output="table",
        title="Checks",
    )  # fmt: skip
    console.print(f"[dim]run report: dotjoin runs show {lit(report.run_id)}[/]")


@app.command("csv-report")
def csv_report(
    dataset: DatasetOption,
    analysis: Annotated[
        str | None,
        typer.Option("--analysis", "-a", help="One analysis by name; default: all of the dataset's."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows of top-N analyses (top repos).")] = 10,
    rows: Annotated[int, typer.Option("--rows", help="Rows shown per table in table output.")] = 30,
    output: OutputOption = "table",
) -> None:
    """Run the SQL analyses of a loaded dataset (commits/day, top repos, merge ratio; revenue in USD by
    day, store and category). The SQL lives in src/dotjoin/pipelines/csv_etl/sql/analysis_*.sql.

    Example: dotjoin etl csv-report --dataset commits --analysis top_repos --limit 5
    """
    from dotjoin.cli.main import STATE
    from dotjoin.exceptions import NotFoundError
    from dotjoin.pipelines.csv_etl.config import TARGET_TABLES
    from dotjoin.pipelines.csv_etl.validations import run_analysis, sql_files
    from dotjoin.platform.warehouse import open_warehouse

    fmt = check_format(output)
    names = [f.name for f in sql_files("analysis_", dataset)]
    chosen = [analysis] if analysis else names
    results: dict[str, list[dict[str, Any]]] = {}
    with open_warehouse(STATE.settings) as wh:
        if not wh.table_exists(TARGET_TABLES[dataset]):
            raise NotFoundError(
                f"no {TARGET_TABLES[dataset]} table in the {STATE.settings.profile} warehouse yet; "
                f"load one first: dotjoin etl csv --dataset {dataset} --input PATH"
            )
        for name in chosen:
            results[name] = run_analysis(wh, dataset, name, {"limit": limit}).to_pylist()
    if fmt == "json":
        emit_json(results)
        return
    for name, table in results.items():
        emit_rows(table[:rows], output="table", title=name)
        if len(table) > rows:
            console.print(f"[dim]{len(table) - rows} more rows (--rows, or --output json)[/]")
