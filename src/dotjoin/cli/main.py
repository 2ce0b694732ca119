"""Entry point of the ``dotjoin`` command and its one error boundary.

User errors (:class:`~dotjoin.exceptions.DotjoinError`) print one red line and exit 1; usage errors exit 2
(Click); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated

import typer

from dotjoin import __version__
from dotjoin.cli.output import OutputOption, emit_rows, err_console, lit
from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import DotjoinError

app = typer.Typer(
    name="dotjoin",
    help="dotjoin: the data-engineering roadmap as one platform.\n\n"
    "Example: dotjoin demo && dotjoin runs list",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class CliState:
    profile: str | None = None
    debug: bool = False
    quiet: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(profile=self.profile)
        return self._settings


STATE = CliState()


@app.callback()
def _root(
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="local (embedded engines) or stack (real services).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    from dotjoin.logging import configure

    STATE.profile, STATE.debug, STATE.quiet = profile, debug, quiet
    configure(debug=debug, quiet=quiet)


@app.command()
def version(output: OutputOption = "table") -> None:
    """Print the dotjoin version and the versions of its engines.

    Example: dotjoin version --output json
    """
    from importlib import metadata

    rows = [{"component": "dotjoin", "version": __version__}]
    for dist in ("duckdb", "pyarrow", "pyiceberg", "psycopg", "confluent-kafka", "fastapi"):
        try:
            rows.append({"component": dist, "version": metadata.version(dist)})
        except metadata.PackageNotFoundError:
            rows.append({"component": dist, "version": "not installed"})
    emit_rows(rows, output=output, json_data={r["component"]: r["version"] for r in rows})


def _register() -> None:
    from dotjoin.cli import (
        cdc,
        commands,
        etl,
        features,
        flows,
        ingest,
        lake,
        lineage,
        load,
        payments,
        quality,
        runs,
        sample,
        services,
        sources,
    )

    app.add_typer(services.app, name="services")
    app.add_typer(runs.app, name="runs")
    app.add_typer(etl.app, name="etl")
    app.add_typer(ingest.app, name="ingest")
    app.add_typer(sources.app, name="sources")
    app.add_typer(lake.app, name="lake")
    app.add_typer(lake.pipeline_app, name="lakehouse")
    app.add_typer(payments.app, name="payments")
    app.add_typer(cdc.app, name="cdc")
    app.add_typer(features.app, name="features")
    app.add_typer(quality.app, name="quality")
    app.add_typer(lineage.app, name="lineage")
    commands.register(app)
    flows.register(app)
    app.command()(sample.sample)
    app.command()(load.load)


_register()


def main() -> None:
    """Run the CLI inside the one error boundary."""
    try:
        app()
    except DotjoinError as exc:
        if STATE.debug:
            raise
        err_console.print(f"[bold red]error:[/] {lit(exc)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if STATE.debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {lit(exc)} "
            "(rerun with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
