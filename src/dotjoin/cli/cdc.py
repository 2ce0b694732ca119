"""``dotjoin cdc setup|connect|status|disconnect``: PostgreSQL → Debezium → Kafka change data capture."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from dotjoin.cli.output import OutputOption, emit_rows

if TYPE_CHECKING:
    from dotjoin.config import Settings

app = typer.Typer(
    help="Change data capture: the source tables in PostgreSQL, Debezium's connector on Kafka Connect.\n\n"
    "Example: dotjoin services up postgres kafka connect && dotjoin --profile stack cdc setup && "
    "dotjoin --profile stack cdc connect",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from dotjoin.cli.main import STATE

    return STATE.settings


@app.command()
def setup(output: OutputOption = "table") -> None:
    """Create the source schema, tables, publication and the connector role's grants (idempotent).

    Example: dotjoin --profile stack cdc setup
    """
    from dotjoin.pipelines.cdc.source import setup as setup_source

    done = setup_source(_settings())
    rows = [{"table": t, "publication": done["publication"], "replication role": done["replication_user"]}
            for t in done["tables"]]  # fmt: skip
    emit_rows(rows, output=output, title="captured tables", json_data=done)


@app.command()
def connect(
    wait: float = typer.Option(60.0, "--wait", help="Seconds to wait for the connector to run (0: don't)."),
    output: OutputOption = "table",
) -> None:
    """Register (or update) Debezium's PostgreSQL connector on Kafka Connect, then wait until it runs.

    Example: dotjoin --profile stack cdc connect
    """
    from dotjoin.pipelines.cdc.connector import register, wait_running

    settings = _settings()
    info = register(settings)
    state = wait_running(settings, wait) if wait > 0 else None
    _emit_status(info["name"], state, output)


@app.command()
def status(output: OutputOption = "table") -> None:
    """The connector's state and its task's (Kafka Connect's view).

    Example: dotjoin --profile stack cdc status -o json
    """
    from dotjoin.pipelines.cdc.connector import status as connector_status

    settings = _settings()
    _emit_status(settings.cdc.connector, connector_status(settings), output)


@app.command()
def disconnect(
    drop_slot: bool = typer.Option(
        False, "--drop-slot", help="Also drop the replication slot (frees its WAL; next connect snapshots)."
    ),
    output: OutputOption = "table",
) -> None:
    """Delete the connector from Kafka Connect; its replication slot stays (and keeps WAL) unless --drop-slot.

    Example: dotjoin --profile stack cdc disconnect --drop-slot
    """
    from dotjoin.pipelines.cdc.connector import remove

    settings = _settings()
    removed = remove(settings, drop_slot=drop_slot)
    rows = [{"connector": settings.cdc.connector, "removed": removed, "slot dropped": drop_slot}]
    emit_rows(rows, output=output)


def _emit_status(name: str, state: dict[str, Any] | None, output: str) -> None:
    if state is None:
        rows = [{"connector": name, "state": "not registered", "task": "", "worker": ""}]
    else:
        tasks = state.get("tasks") or [{}]
        rows = [{"connector": name, "state": state["connector"]["state"], "task": t.get("state", ""),
                 "worker": t.get("worker_id", "")} for t in tasks]  # fmt: skip
    emit_rows(rows, output=output, json_data=state)
