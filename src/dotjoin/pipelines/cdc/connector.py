"""Debezium's PostgreSQL connector on Kafka Connect: its config, registration and status.

:func:`register` puts the config with ``PUT /connectors/<name>/config`` — create or update, so running
it again changes nothing — after writing the replication role's password to a file (mode 600) in the
worker's secrets directory: the config names it (``${file:<path>:password}``, Connect's
FileConfigProvider), so the password is in no REST reply and no Kafka topic.

The choices, and why:

* ``plugin.name=pgoutput``: PostgreSQL's built-in logical decoding plugin (nothing to install);
* ``publication.autocreate.mode=disabled``: the publication is the tables' owner's (``source.setup``);
* ``snapshot.mode=initial``: the tables' rows first (``op=r``), then the stream from the slot;
* ``heartbeat.interval.ms`` + ``heartbeat.action.query``: a write into the published heartbeat table
  every interval, so the slot's confirmed position advances even when no captured table changes;
* ``provide.transaction.metadata=true``: BEGIN/END markers on ``<prefix>.transaction`` and each event's
  transaction id and order — what an applier needs to commit a source transaction whole;
* ``decimal.handling.mode=precise``: numerics exactly, with their precision and scale in the schema (the
  value is the unscaled integer's bytes): the lake gets ``decimal(p, s)``, and a widened ``numeric`` is
  a promotion it can follow (``string`` would lose the type);
* ``tombstones.on.delete=true``: a delete is followed by a null-valued message, so compacted topics
  forget the key;
* ``topic.creation.default.partitions=1``: a table's changes in one partition, in commit order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.cdc.source import captured_tables, heartbeat_query, topics
from dotjoin.platform import postgres
from dotjoin.services.base import ServiceError
from dotjoin.services.connect import POSTGRES_CONNECTOR, ConnectService, rest


def password_file(settings: Settings) -> Path:
    return ConnectService(settings).secrets_dir / f"{settings.cdc.connector}.properties"


def write_password_file(settings: Settings) -> Path:
    """The replication role's password where the worker's FileConfigProvider reads it (mode 600)."""
    secret = settings.cdc.replication_password
    if secret is None:
        raise ConfigError(
            "cdc: no password for the replication role (cdc.replication_password); "
            "`dotjoin services up postgres` generates one into .dotjoin/secrets.toml"
        )
    path = password_file(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"password={_escape(secret.get_secret_value())}\n")
    os.replace(path.with_suffix(".tmp"), path)
    return path


def _escape(value: str) -> str:
    """A value for a Java properties file (backslashes and the characters that end a key)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\:").replace("=", "\\=")


def connector_config(
    settings: Settings, password_path: Path, extra_tables: Sequence[str] = ()
) -> dict[str, str]:
    """The connector's configuration (strings, as Connect's REST API takes them); ``extra_tables`` are
    more tables of the source schema to capture (published and granted by their owner)."""
    cdc, pg = settings.cdc, settings.postgres
    return {
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": pg.host,
        "database.port": str(pg.port),
        "database.user": cdc.replication_user,
        "database.password": f"${{file:{password_path}:password}}",
        "database.dbname": pg.dbname,
        "topic.prefix": cdc.topic_prefix,
        "schema.include.list": cdc.source_schema,
        "table.include.list": ",".join(
            t.replace(".", r"\.") for t in [*captured_tables(settings), *_qualified(settings, extra_tables)]
        ),
        "publication.name": cdc.publication,
        "publication.autocreate.mode": "disabled",
        "slot.name": cdc.slot,
        "snapshot.mode": "initial",
        "heartbeat.interval.ms": str(cdc.heartbeat_ms),
        "heartbeat.action.query": heartbeat_query(settings),
        "provide.transaction.metadata": "true",
        "decimal.handling.mode": "precise",
        "tombstones.on.delete": "true",
        # one partition per table: the table's changes in commit order (the broker's default is 4, which
        # orders only per key); kept, not compacted: the history is replayable
        "topic.creation.default.partitions": "1",
        "topic.creation.default.replication.factor": "1",
    }


def _qualified(settings: Settings, tables: Sequence[str]) -> list[str]:
    return [f"{settings.cdc.source_schema}.{t}" for t in tables]


def register(settings: Settings, extra_tables: Sequence[str] = ()) -> dict[str, Any]:
    """Create or update the connector (idempotent); its config as the worker has it.

    The captured tables' topics are created first, one partition each: a consumer subscribed before a
    table's first change would otherwise not see its topic until its next metadata refresh (minutes).
    """
    from dotjoin.platform.bus import open_bus

    bus = open_bus(settings)
    for topic in topics(settings, extra_tables):
        bus.create_topic(topic, partitions=1)
    connect = ConnectService(settings)
    config = connector_config(settings, write_password_file(settings), extra_tables)
    name = settings.cdc.connector
    rest(connect.url, f"/connectors/{name}/config", method="PUT", body=config)
    return rest(connect.url, f"/connectors/{name}")


def status(settings: Settings) -> dict[str, Any] | None:
    """The connector's status (its state and its task's), None if it is not registered."""
    connect = ConnectService(settings)
    name = settings.cdc.connector
    if name not in rest(connect.url, "/connectors"):
        return None
    return rest(connect.url, f"/connectors/{name}/status")


def wait_running(settings: Settings, timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait until the connector and its task run; a failed task's trace is the error.

    Raises:
        ServiceError: the task failed (the first line of its trace), or did not start in time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state = status(settings)
        tasks = (state or {}).get("tasks", [])
        failed = [t for t in tasks if t.get("state") == "FAILED"]
        if failed:
            trace = (failed[0].get("trace") or "no trace").strip().splitlines()
            raise ServiceError(f"cdc: the connector's task failed: {trace[0] if trace else '?'}")
        if (
            state
            and state["connector"]["state"] == "RUNNING"
            and tasks
            and all(t.get("state") == "RUNNING" for t in tasks)
        ):
            return state
        if time.monotonic() > deadline:
            raise ServiceError(f"cdc: the connector was not running after {timeout_s:.0f} s: {state}")
        time.sleep(0.5)


def remove(settings: Settings, *, drop_slot: bool = False, timeout_s: float = 30.0) -> bool:
    """Delete the connector (its offsets stay in Connect's topic); with ``drop_slot``, then drop its
    replication slot as the replication role, once the task has let go of it (a slot nobody reads pins
    the server's WAL). Returns whether a connector was deleted.

    Raises:
        ServiceError: the slot was still in use after ``timeout_s``.
    """
    connect = ConnectService(settings)
    name = settings.cdc.connector
    removed = name in rest(connect.url, "/connectors")
    if removed:
        rest(connect.url, f"/connectors/{name}", method="DELETE")
    if drop_slot:
        _drop_slot(settings, timeout_s)
    return removed


def _drop_slot(settings: Settings, timeout_s: float) -> None:
    cdc = settings.cdc
    user, secret = cdc.replication_user, cdc.replication_password
    session = postgres.connect(settings.postgres, user=user, password=secret)
    query = "SELECT active FROM pg_replication_slots WHERE slot_name = %s"
    with session as conn:
        deadline = time.monotonic() + timeout_s
        while True:
            row = conn.execute(query, [cdc.slot]).fetchone()
            if row is None:
                return
            if not row[0]:
                conn.execute("SELECT pg_drop_replication_slot(%s)", [cdc.slot])
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"cdc: replication slot {cdc.slot!r} still in use after {timeout_s:.0f} s")
            time.sleep(0.5)


SLOT_LOST_MARK = "no longer available on the server"


def health(settings: Settings) -> list[str]:
    """What is wrong with the capture, one line each (empty: healthy): the connector missing or failed,
    and above all a lost replication slot — dropped, or invalidated by ``max_slot_wal_keep_size`` — after
    which the changes since the connector's last position are gone from the server (Debezium refuses to
    go on: DBZ-5739); the remedy is :func:`resnapshot`."""
    state = status(settings)
    if state is None:
        return [f"cdc: connector {settings.cdc.connector!r} is not registered (dotjoin cdc connect)"]
    problems = []
    for task in state.get("tasks", []):
        if task.get("state") != "FAILED":
            continue
        trace = (task.get("trace") or "").strip().splitlines()
        if trace and SLOT_LOST_MARK in trace[0]:
            problems.append(
                f"cdc: replication slot {settings.cdc.slot!r} no longer has the changes the connector needs "
                "(dropped or invalidated): they cannot be streamed; run `dotjoin cdc resnapshot` to re-read "
                "the tables"
            )
        else:
            problems.append(f"cdc: the connector's task failed: {trace[0] if trace else 'no trace'}")
    slot = _slot(settings)
    if slot is None and state["connector"]["state"] == "RUNNING" and not problems:
        problems.append(
            f"cdc: replication slot {settings.cdc.slot!r} does not exist while the connector runs"
        )
    elif slot is not None and slot[1] == "lost":
        problems.append(f"cdc: replication slot {settings.cdc.slot!r} was invalidated (wal_status lost); "
                        "run `dotjoin cdc resnapshot`")  # fmt: skip
    return problems


def resnapshot(settings: Settings, *, timeout_s: float = 120.0) -> dict[str, Any]:
    """Start the capture over: stop the connector, delete its source offsets (Kafka Connect's
    ``DELETE /connectors/<name>/offsets``), drop the slot if one is left, resume. Debezium then takes a
    new initial snapshot (``op=r`` for every row) and streams from the new slot; the applier turns the
    snapshot into versions only where rows changed, and deletes the keys it no longer finds."""
    connect = ConnectService(settings)
    name = settings.cdc.connector
    rest(connect.url, f"/connectors/{name}/stop", method="PUT")
    deadline = time.monotonic() + timeout_s
    while (status(settings) or {}).get("connector", {}).get("state") != "STOPPED":
        if time.monotonic() > deadline:
            raise ServiceError(f"cdc: connector {name!r} did not stop within {timeout_s:.0f} s")
        time.sleep(0.5)
    rest(connect.url, f"/connectors/{name}/offsets", method="DELETE")
    _drop_slot(settings, timeout_s)
    rest(connect.url, f"/connectors/{name}/resume", method="PUT")
    return wait_running(settings, timeout_s)


def _slot(settings: Settings) -> tuple[bool, str | None] | None:
    """(active, wal_status) of the connector's slot, None if there is none."""
    cdc = settings.cdc
    session = postgres.connect(
        settings.postgres, user=cdc.replication_user, password=cdc.replication_password
    )
    with session as conn:
        row = conn.execute("SELECT active, wal_status FROM pg_replication_slots WHERE slot_name = %s",
                           [cdc.slot]).fetchone()  # fmt: skip
    return (bool(row[0]), row[1]) if row else None
