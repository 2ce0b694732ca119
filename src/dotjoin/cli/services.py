"""``dotjoin services up|down|status``: the stack's engines, started natively on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Annotated

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_rows, lit

if TYPE_CHECKING:
    from dotjoin.config import Settings
    from dotjoin.services import ServiceStatus

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="Start, stop and inspect the stack's services (PostgreSQL, the object store, Kafka, Connect, Trino,"
    " Redis, MLflow, Airflow) on 127.0.0.1.\n\n"
    "Example: dotjoin services up && dotjoin services status --output json",
    no_args_is_help=True,
)

NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Services to act on (default: [services] enabled, every one of them).",
        show_default=False,
    ),
]
COLUMNS = ("service", "address", "state", "version", "pid")


def _settings() -> Settings:
    from dotjoin.cli.main import STATE

    return STATE.settings


@app.command()
def up(names: NamesArgument = None) -> None:
    """Start services that are not running (idempotent: running ones are left alone).

    The first run initialises PostgreSQL, fetches the Kafka jars with Maven and formats Kafka's storage;
    data, logs and pid files live in .dotjoin/services/<name>/.

    Example: dotjoin services up postgres kafka
    """
    from dotjoin.services import select_services

    services = select_services(_settings(), names or ())
    for service in services:
        began = time.monotonic()
        with console.status(lit(f"starting {service.name} on {service.address} ...")):
            started = service.ensure_up()
        verb = f"started in {time.monotonic() - began:.1f}s" if started else "already up"
        console.print(f"[green]✓[/] {lit(service.name)} {verb} ({lit(service.address)})", highlight=False)
    _show([s.status() for s in services], output="table")


@app.command()
def down(names: NamesArgument = None) -> None:
    """Stop the services this tool started (never a process it did not start), in reverse order.

    Example: dotjoin services down kafka
    """
    from dotjoin.services import select_services

    for service in reversed(select_services(_settings(), names or ())):
        with console.status(lit(f"stopping {service.name} ...")):
            stopped = service.stop()
        note = "stopped" if stopped else "was not running (or not started by dotjoin)"
        console.print(f"[green]✓[/] {lit(service.name)} {note}", highlight=False)


@app.command()
def status(names: NamesArgument = None, output: OutputOption = "table") -> None:
    """Show each service: address, up/down, version and pid ("external" if we did not start it).

    Example: dotjoin services status --output json
    """
    from dotjoin.services import select_services

    check_format(output)
    _show([s.status() for s in select_services(_settings(), names or ())], output=output)


def _show(statuses: list[ServiceStatus], *, output: str) -> None:
    rows = [s.as_dict() for s in statuses]
    emit_rows(rows, output=output, columns=COLUMNS, title="dotjoin services")
