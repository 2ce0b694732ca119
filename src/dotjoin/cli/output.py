"""The output layer: rich tables for people, JSON for scripts (``--output json``).

Commands never print results through logging; they hand rows to :func:`emit`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

OutputFormat = Literal["table", "json"]
OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="table for people, json for scripts.", metavar="[table|json]")
]

console = Console()
err_console = Console(stderr=True)


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


def check_format(output: str) -> OutputFormat:
    if output not in ("table", "json"):
        raise typer.BadParameter(f"--output must be table or json, not {output!r}")
    return output  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    typer.echo(to_json(data))


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
    table = Table(title=title, header_style="bold")
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in cols))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
