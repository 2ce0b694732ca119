"""Debezium for real: PostgreSQL (pgoutput) → Kafka Connect + Debezium → Kafka, checked against what the
test did to the source tables — the snapshot, inserts, updates, deletes (with tombstones), a primary-key
update, a multi-table transaction — and the connector's least privilege.

Each test run captures its own schema, publication, slot and topics, and drops them afterwards (a
forgotten slot would pin the server's WAL).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.cdc import connector, source
from dotjoin.services.connect import ConnectService, rest
from tests.integration.conftest import as_replicator

pytestmark = [pytest.mark.connect, pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]


def fields_of(value: dict[str, Any], image: str) -> list[dict[str, Any]]:
    """The row schema's fields of a JSON-converter value's ``before``/``after``."""
    return next(f["fields"] for f in value["schema"]["fields"] if f["field"] == image)


def _read(
    settings: Settings, topic: str, until: int, timeout_s: float = 90.0, stop: Any = None
) -> list[tuple[Any, Any]]:
    """(key, value) of a topic from its start, decoded (None: a tombstone), until ``until`` messages —
    or, with ``stop``, until ``stop(value)`` is true of one."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.bus.bootstrap_servers, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    out: list[tuple[Any, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < until and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None or m.error():
                continue
            key, value = m.key(), m.value()
            out.append((json.loads(key) if key else None, json.loads(value) if value is not None else None))
            if stop is not None and stop(out[-1][1]):
                break
    finally:
        consumer.close()
    return out


def test_debezium_streams_every_change_of_the_source_tables(cdc: Settings) -> None:
    schema = cdc.cdc.source_schema
    done = source.setup(cdc)
    assert done["tables"] == sorted(source.captured_tables(cdc))
    with source.connect(cdc) as conn:
        for uid, email in ((1, "ada@example.org"), (2, "bob@example.org"), (3, "cy@example.org")):
            conn.execute(f"INSERT INTO {schema}.users (user_id, email, full_name, country) "
                         "VALUES (%s, %s, %s, 'DE')", [uid, email, email.split("@")[0]])  # fmt: skip

    info = connector.register(cdc)
    assert connector.register(cdc)["config"] == info["config"]  # registering again changes nothing
    assert "${file:" in info["config"]["database.password"]  # the password is in no REST reply
    assert cdc.cdc.replication_password is not None
    assert cdc.cdc.replication_password.get_secret_value() not in json.dumps(info)
    connector.wait_running(cdc, timeout_s=90)

    users_topic = f"{cdc.cdc.topic_prefix}.{schema}.users"
    snapshot = _read(cdc, users_topic, until=3)
    assert sorted((v["payload"]["op"], v["payload"]["after"]["user_id"]) for _, v in snapshot) == [
        ("r", 1), ("r", 2), ("r", 3)
    ]  # fmt: skip

    with source.connect(cdc) as conn:
        conn.execute(f"UPDATE {schema}.users SET tier = 'gold' WHERE user_id = 1")
        conn.execute(f"DELETE FROM {schema}.users WHERE user_id = 2")
        conn.execute(f"UPDATE {schema}.users SET user_id = 5 WHERE user_id = 3")
        with conn.transaction():  # one source transaction over two tables
            conn.execute(f"INSERT INTO {schema}.inventory (sku, name, warehouse, quantity, price) "
                         "VALUES ('sku-1', 'widget', 'ber', 10, 12.50)")  # fmt: skip
            conn.execute(f"INSERT INTO {schema}.inventory_movements (sku, delta, reason) "
                         "VALUES ('sku-1', 10, 'initial')")  # fmt: skip

    # 3 snapshot rows; u(1); d(2) + tombstone; the key update: d(3) + tombstone + c(5)
    events = _read(cdc, users_topic, until=3 + 1 + 2 + 3)
    changes = [(v["payload"]["op"] if v else "tombstone", (k or {}).get("payload", {}).get("user_id"))
               for k, v in events[3:]]  # fmt: skip
    assert changes == [("u", 1), ("d", 2), ("tombstone", 2), ("d", 3), ("tombstone", 3), ("c", 5)]
    update = events[3][1]["payload"]
    assert update["after"]["tier"] == "gold" and update["source"]["table"] == "users"
    assert update["source"]["lsn"] > max(v["payload"]["source"]["lsn"] or 0 for _, v in snapshot)
    after = {f["field"] for f in fields_of(events[3][1], "after")}
    assert after >= {"user_id", "email", "tier", "created_at"}

    inventory = _read(cdc, f"{cdc.cdc.topic_prefix}.{schema}.inventory", until=1)
    movement = _read(cdc, f"{cdc.cdc.topic_prefix}.{schema}.inventory_movements", until=1)
    row = inventory[0][1]["payload"]
    price = {f["field"]: f for f in fields_of(inventory[0][1], "after")}["price"]
    assert price["parameters"] == {"scale": "2", "connect.decimal.precision": "12"}  # precise: typed
    assert int.from_bytes(base64.b64decode(row["after"]["price"]), "big", signed=True) == 1250  # 12.50
    second = movement[0][1]["payload"]
    xids = {row["source"]["txId"], second["source"]["txId"]}
    assert len(xids) == 1  # both changes carry the one source transaction (its PostgreSQL xid)
    # Debezium's transaction id is "<xid>:<lsn>"; its END marker counts the transaction's events
    assert {row["transaction"]["id"].split(":")[0], second["transaction"]["id"].split(":")[0]} == {str(*xids)}
    assert sorted([row["transaction"]["total_order"], second["transaction"]["total_order"]]) == [1, 2]
    xid = str(*xids)

    def ours(v: Any) -> bool:
        return v["payload"]["status"] == "END" and v["payload"]["id"].split(":")[0] == xid

    markers = _read(cdc, f"{cdc.cdc.topic_prefix}.transaction", until=10_000, stop=ours)
    assert [v["payload"]["event_count"] for _, v in markers if ours(v)] == [2]
    begun = [v["payload"]["id"].split(":")[0] for _, v in markers if v["payload"]["status"] == "BEGIN"]
    assert xid in begun


def test_the_connector_role_is_least_privilege(cdc: Settings) -> None:
    source.setup(cdc)
    schema = cdc.cdc.source_schema
    role = as_replicator(cdc, "SELECT rolsuper, rolreplication, rolcreatedb, rolcreaterole FROM pg_roles "
                               "WHERE rolname = current_user")  # fmt: skip
    assert role == [(False, True, False, False)]
    import psycopg

    with source.connect(cdc) as conn:  # a table of the schema outside the publication: no grant
        conn.execute(f"CREATE TABLE {schema}.secrets (v text)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_replicator(cdc, f"SELECT * FROM {schema}.secrets")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_replicator(cdc, f"DELETE FROM {schema}.users")
    as_replicator(cdc, source.heartbeat_query(cdc))  # the heartbeat it needs


def test_the_worker_is_distributed_with_debezium_loaded(connect_worker: Settings) -> None:
    service = ConnectService(connect_worker)
    assert service.status().state == "up" and (service.version() or "").startswith("4.3.")  # see the pom
    plugins = {p["class"]: p["version"] for p in rest(service.url, "/connector-plugins")}
    assert plugins["io.debezium.connector.postgresql.PostgresConnector"] == "3.6.1.Final"
    props = service.properties_file.read_text()
    assert "group.id=dotjoin-connect" in props and "plugin.discovery=service_load" in props
