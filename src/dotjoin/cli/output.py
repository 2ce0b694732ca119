"""The output layer: rich tables for people, JSON for scripts (``--output json``).

Commands never print results through logging; they hand rows to :func:`emit`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from dotjoin.platform.runs import RunReport

OutputFormat = Literal["table", "json", "csv"]
OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="table for people, json for scripts.", metavar="[table|json]")
]
#: ``dotjoin sql`` also writes CSV (RFC 4180, with a header line).
QueryOutputOption = Annotated[
    str,
    typer.Option(
        "--output", "-o", help="table for people, json or csv for scripts.", metavar="[table|json|csv]"
    ),
]

console = Console()
err_console = Console(stderr=True)


def lit(value: Any) -> str:
    """``value`` as text that rich prints literally inside a markup string: ``dependabot[bot]`` stays.

    Every string from data, files, config or the user goes through this (or a :class:`~rich.text.Text`)
    before it meets ``console.print``; only our own ``[bold]`` tags are markup.

    >>> lit("dependabot[bot]")
    'dependabot\\\\[bot]'
    """
    return escape(str(value))


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, default=_default, indent=2)


def check_format(output: str, choices: tuple[OutputFormat, ...] = ("table", "json")) -> OutputFormat:
    if output not in choices:
        allowed = f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise typer.BadParameter(f"--output must be {allowed}, not {output!r}")
    return output  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    typer.echo(to_json(data))


def _csv_value(value: Any) -> str:
    if value is None:
        return ""  # NULL: an empty field
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=_default)
    return str(value)


def emit_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write ``rows`` to stdout as RFC 4180 CSV: a header line, CRLF line ends, quotes where needed.

    Values are written literally (a comma, a quote, a newline or ``[bot]`` survives a round trip);
    NULL is an empty field.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(col)) for col in columns])
    sys.stdout.write(out.getvalue())
    sys.stdout.flush()


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    output: str,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    json_data: Any = None,
) -> None:
    """Print ``rows`` as a table, or as JSON (``json_data`` if given, else the rows)."""
    if check_format(output) == "json":
        emit_json(rows if json_data is None else json_data)
        return
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    # Text objects, not str: a header, title or value like "[/]" is data, never rich markup.
    table = Table(title=None if title is None else Text(title, style="table.title"), header_style="bold")
    for col in cols:
        table.add_column(Text(str(col)))
    for row in rows:
        table.add_row(*(Text(_cell(row.get(col))) for col in cols))
    console.print(table)


def emit_report(report: RunReport, output: str, summary: Callable[[RunReport], str]) -> None:
    """Print a run report as JSON, or as a table of its checks and a ``summary`` line; exit 1 unless it
    succeeded."""
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
        console.print(summary(report), markup=False, highlight=False)
    if report.status != "succeeded":
        raise typer.Exit(1)


@contextmanager
def progress_bar(enabled: bool, description: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A progress bar on the console while the block runs, moved by ``update(done, total, label)``.

    Yields ``None`` (no bar) unless ``enabled`` and the console is a terminal.
    """
    if not (enabled and console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(lit(description), total=None)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=lit(label))

        yield update


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
