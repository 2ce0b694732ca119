"""``dotjoin sample commits|retail``: write a messy CSV export and its ground-truth manifest."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_rows, err_console, lit
from dotjoin.pipelines.csv_etl.reasons import Dataset

_PROGRESS_FROM = 200_000  # rows from which table output shows a progress bar


@contextmanager
def _progress(show: bool, dataset: Dataset, rows: int) -> Iterator[Callable[[int], None] | None]:
    """A transient bar on stderr over the records written (``None`` when hidden)."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(lit(f"sample {dataset}"), total=rows)
        yield lambda done: bar.update(task, completed=done)


def sample(
    dataset: Annotated[Dataset, typer.Argument(help="Which export: commits or retail.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the CSV file(s) and manifest.json.")],
    rows: Annotated[int, typer.Option("--rows", "-n", min=0, help="Data records to write.")] = 10_000,
    dirty_rate: Annotated[
        float, typer.Option("--dirty-rate", min=0.0, max=1.0, help="0 = pristine, 1 = as dirty as it gets.")
    ] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Same seed and arguments, same bytes.")] = 1,
    overlap_from: Annotated[
        Path | None,
        typer.Option(
            "--overlap-from",
            help="An earlier export's directory: repeat a share of its loaded records, then add new ones.",
        ),
    ] = None,
    overlap_share: Annotated[
        float,
        typer.Option("--overlap-share", min=0.0, max=1.0, help="Share of the earlier records to repeat."),
    ] = 0.25,
    record_truth: Annotated[
        bool,
        typer.Option(
            "--record-truth/--no-record-truth",
            help="Per-record truth in the manifest; --no-record-truth keeps only counts (huge files).",
        ),
    ] = True,
    output: OutputOption = "table",
) -> None:
    """Write a realistic messy CSV export and manifest.json: every record's fate, counts and totals.

    Example: dotjoin sample commits --rows 100000 --dirty-rate 0.05 --seed 7 --out data/commits
    """
    from dotjoin.simulate.csv_etl.generator import generate

    fmt = check_format(output)
    started = time.perf_counter()
    from dotjoin.cli.main import STATE

    with _progress(fmt == "table" and rows >= _PROGRESS_FROM and not STATE.quiet, dataset, rows) as progress:
        manifest = generate(
            dataset, rows=rows, dirty_rate=dirty_rate, seed=seed, out=out, overlap_from=overlap_from,
            overlap_share=overlap_share, record_truth=record_truth, progress=progress,
        )  # fmt: skip
    seconds = round(time.perf_counter() - started, 3)
    exp = manifest.expected
    if fmt == "json":
        emit_json(
            {
                "out": str(out),
                "seconds": seconds,
                "manifest": manifest.model_dump(mode="json", exclude={"records"}),
            }
        )
        return
    emit_rows(
        [
            {
                "dataset": dataset,
                "input": exp.input,
                "output": exp.output,
                "quarantined": exp.quarantined,
                "duplicates": exp.duplicates,
                "already_loaded": exp.already_loaded,
                "seconds": seconds,
            }
        ],
        output="table",
        title=f"dotjoin sample {dataset} -> {out}",
    )
    if exp.quarantined_by_reason:
        emit_rows(
            [{"reason": k, "records": v} for k, v in exp.quarantined_by_reason.items()],
            output="table",
            title="Quarantined by reason",
        )
    files = ", ".join([*manifest.files, *manifest.reference_files, "manifest.json"])
    console.print(
        f"[dim]wrote {lit(files)}; rules in src/dotjoin/pipelines/csv_etl/FORMATS.md[/]", highlight=False
    )
