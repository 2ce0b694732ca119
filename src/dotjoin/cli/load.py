"""``dotjoin load``: any delimited file, directory or glob into a warehouse table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from dotjoin.cli.output import OutputOption, emit_report, progress_bar

if TYPE_CHECKING:
    from dotjoin.platform.runs import RunReport

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def load(
    target: Annotated[
        str, typer.Argument(help="A file, a directory of files, or a glob ('exports/*.csv.gz').")
    ],
    table: Annotated[
        str, typer.Option("--table", "-t", help="The warehouse table to load (created if missing).")
    ],
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", "-s", help="A schema file (YAML); default: inferred and written next to the report."
        ),
    ] = None,
    engine: Annotated[
        Literal["duckdb", "postgres"] | None,
        typer.Option(
            "--engine", help="Warehouse engine; default: the profile's (local: duckdb, stack: postgres)."
        ),
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="Field separator; skips detection.")
    ] = None,
    header: Annotated[
        bool | None, typer.Option("--header/--no-header", help="Whether the first record names the columns.")
    ] = None,
    skip_lines: Annotated[
        int | None, typer.Option("--skip-lines", help="Lines before the table (preamble); skips detection.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="File encoding; skips detection.")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the run report here.")] = None,
    output: OutputOption = "table",
) -> None:
    """Load delimited files into a table: dialect and types detected, bad rows quarantined, nothing lost.

    Every record is loaded or kept in the quarantine table with its file, line and reason; the report
    proves input == output + quarantined + duplicates. Re-running replaces each file's rows: the result
    is the same. Without --schema the inferred schema (types with confidences) is written as YAML next
    to the run report: edit it (types, formats, required, primaryKey) and pass it back with --schema.

    Example: dotjoin load ../exports/billing.csv --table billing --engine postgres
    """
    from dotjoin.cli.main import STATE
    from dotjoin.exceptions import ConfigError
    from dotjoin.pipelines.load.pipeline import run

    if not _TABLE.match(table):
        raise ConfigError(f"--table {table!r}: use letters, digits and underscores (optionally schema.table)")
    settings = STATE.settings
    if engine is not None and engine != settings.warehouse.type:
        settings = settings.model_copy(
            update={"warehouse": settings.warehouse.model_copy(update={"type": engine})}
        )
    with progress_bar(output == "table" and not STATE.quiet, target) as progress:
        result = run(
            settings,
            target=target,
            table=table,
            schema_path=schema,
            source={"delimiter": delimiter, "header": header, "skipLines": skip_lines, "encoding": encoding},
            report_path=report,
            progress=progress,
        )
    emit_report(result, output, _summary)


def _summary(report: RunReport) -> str:
    c = report.counts
    line = (
        f"{c.get('input', 0):,} records: {c.get('output', 0):,} loaded, "
        f"{c.get('quarantined', 0):,} quarantined, {c.get('duplicates', 0):,} duplicates"
    )
    inferred = report.params.get("inferred_schema")
    return line + (f"\ninferred schema: {inferred} (edit and pass with --schema)" if inferred else "")
