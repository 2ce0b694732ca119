"""Fixtures of the integration tests that capture a source with Debezium."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.cdc import connector, source
from dotjoin.platform.lake import open_lake


@pytest.fixture
def cdc(connect_worker: Settings) -> Iterator[Settings]:
    token = uuid.uuid4().hex[:8]
    names = {"source_schema": f"cdc_t{token}", "publication": f"pub_t{token}", "slot": f"slot_t{token}",
             "topic_prefix": f"cdct{token}", "connector": f"cdc-test-{token}"}  # fmt: skip
    settings = connect_worker.model_copy(update={"cdc": connect_worker.cdc.model_copy(update=names)})
    try:
        yield settings
    finally:
        connector.remove(settings)
        with source.connect(settings) as conn:
            deadline = time.monotonic() + 30
            while (
                conn.execute(  # the task lets go of the slot shortly after the connector is deleted
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active", [names["slot"]]
                ).fetchone()
                and time.monotonic() < deadline
            ):
                time.sleep(0.5)
            conn.execute("DROP PUBLICATION IF EXISTS " + names["publication"])
            conn.execute("DROP SCHEMA IF EXISTS " + names["source_schema"] + " CASCADE")
        as_replicator(settings, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                 "WHERE slot_name = %s", [names["slot"]])  # fmt: skip
        connector.password_file(settings).unlink(missing_ok=True)
        with open_lake(settings) as lake:  # the applier's change logs of this schema
            for name in lake.list_tables("raw"):
                if name.startswith(f"raw.{names['source_schema']}_"):
                    lake.drop_table(name)


def as_replicator(settings: Settings, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    import psycopg

    pg, cdc = settings.postgres, settings.cdc
    assert cdc.replication_password is not None
    secret = cdc.replication_password.get_secret_value()
    with psycopg.connect(host=pg.host, port=pg.port, dbname=pg.dbname, user=cdc.replication_user,
                         password=secret, autocommit=True) as conn:  # fmt: skip
        cur = conn.execute(query, params or [])
        return cur.fetchall() if cur.description else []
