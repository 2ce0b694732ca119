"""The CDC lakehouse end to end on the real engines: the workload on PostgreSQL → Debezium on Kafka Connect
→ Kafka → the applier → Iceberg (PostgreSQL JDBC catalog), reconciled by `cdc verify` against the source
tables (read from PostgreSQL) and against the workload's journal (what it committed, in commit order).

Each test captures its own schema, slot, topics and change logs (the ``cdc`` fixture drops them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.cdc import connector, history_queries, source
from dotjoin.pipelines.cdc.applier import SchemaContractError
from dotjoin.pipelines.cdc.pipeline import follow
from dotjoin.pipelines.cdc.tables import cdc_tables, history
from dotjoin.pipelines.cdc.verify import verify
from dotjoin.platform.lake import open_lake
from dotjoin.services import process
from dotjoin.services.connect import ConnectService, rest
from dotjoin.simulate.cdc_workload import Workload, populate
from tests.conftest import require_service, require_shared_data

pytestmark = [pytest.mark.connect, pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _start(cdc: Settings, *, users: int = 150, skus: int = 40) -> None:
    source.setup(cdc)
    populate(cdc, users=users, skus=skus, seed=3)  # rows the initial snapshot reads (op=r)
    connector.register(cdc)
    connector.wait_running(cdc, timeout_s=90)


def _workload(cdc: Settings, journal: Path, *, tps: float, seconds: float, seed: int) -> Future[Any]:
    def run() -> Any:
        with journal.open("a", encoding="utf-8") as handle:
            load = Workload(cdc, seed=seed, journal=handle)
            try:
                return load.run(tps=tps, duration=seconds)
            finally:
                load.close()

    return ThreadPoolExecutor(1).submit(run)


def _sql(cdc: Settings, *statements: str) -> None:
    with source.connect(cdc) as conn:
        for statement in statements:
            conn.execute(statement.format(s=cdc.cdc.source_schema))


def _verified(cdc: Settings, journal: Path) -> list[dict[str, Any]]:
    with open_lake(cdc) as lake:
        tables = sorted(
            t.source for t in cdc_tables(lake) if t.source.startswith(cdc.cdc.source_schema + ".")
        )
        return [v.as_dict() for v in verify(cdc, lake, tables, journal)]


def test_workload_and_live_schema_evolution_reconcile(cdc: Settings, tmp_path: Path) -> None:
    _start(cdc)
    journal = tmp_path / "journal.jsonl"
    topics = source.topics(cdc)
    applier = ThreadPoolExecutor(1).submit(follow, cdc, topics=topics, group=f"t-{uuid.uuid4().hex[:6]}",
                                           batch_seconds=0.5, idle_exit=8)  # fmt: skip
    load = _workload(cdc, journal, tps=40, seconds=24, seed=5)
    time.sleep(6)  # while both run: add a column, widen two types, drop a column
    _sql(cdc, "ALTER TABLE {s}.inventory ADD COLUMN aisle text")
    time.sleep(4)
    _sql(cdc, "ALTER TABLE {s}.inventory ALTER COLUMN quantity TYPE bigint",
         "ALTER TABLE {s}.inventory ALTER COLUMN price TYPE numeric(14, 2)")  # fmt: skip
    time.sleep(4)
    _sql(cdc, "ALTER TABLE {s}.inventory DROP COLUMN warehouse")  # fmt: skip
    done = load.result(timeout=120)
    report = applier.result(timeout=180)  # the same applier throughout: no restart

    assert done.transactions == 960
    assert report.status == "succeeded", report.checks
    changes = report.params["schema_changes"]
    schema = cdc.cdc.source_schema
    for expected in (f"{schema}.inventory.aisle: added (string)",
                     f"{schema}.inventory.quantity: int32 → int64",
                     f"{schema}.inventory.price: decimal128(12, 2) → decimal128(14, 2)",
                     f"{schema}.inventory.warehouse: dropped in the source"):  # fmt: skip
        assert expected in changes
    verdicts = _verified(cdc, journal)
    assert [v["table"] for v in verdicts] == [
        f"{schema}.{t}" for t in ("inventory", "inventory_movements", "users")
    ]
    for verdict in verdicts:
        assert (verdict["mismatches"], verdict["history_mismatches"]) == (0, []), verdict
        assert verdict["source_rows"] == verdict["lake_rows"] > 0
        assert verdict["source_digest"] == verdict["lake_digest"]
    assert sum(v["history_checked"] for v in verdicts) == sum(1 for _ in journal.open())
    _engines_agree(cdc, journal)

    # A narrowing the lake cannot follow stops the applier with the contract named, before any write.
    _sql(cdc, "ALTER TABLE {s}.inventory ALTER COLUMN quantity TYPE integer")
    Workload(cdc, seed=9).transaction("stock_movement")
    with pytest.raises(SchemaContractError, match=r"inventory\.quantity is now int32 .* int64"):
        follow(cdc, topics=topics, group=f"t-{uuid.uuid4().hex[:6]}", batch_seconds=0.5, idle_exit=6)


def _engines_agree(cdc: Settings, journal: Path) -> None:
    """The history queries answer the same on DuckDB and on Trino (the same SQL over the same logs)."""
    require_service("Trino", "127.0.0.1", cdc.services.trino_port)
    changes = [json.loads(line) for line in journal.open()]
    last_op = {c["key"][0]: c["op"] for c in changes if c["table"].endswith(".users")}
    updated = {c["key"][0] for c in changes if c["table"].endswith(".users") and c["op"] == "u"}
    user_id = next(k for k, op in last_op.items() if op != "d" and k in updated)  # a user there now
    now = dt.datetime.now(dt.UTC).isoformat()
    asked = {
        "changes_per_day": {},
        "current_inventory": {},
        "user_as_of": {"user_id": str(user_id), "as_of": now},
    }
    with open_lake(cdc) as lake:
        for name, values in asked.items():
            on_duckdb = history_queries.run(lake, cdc, name, values, engine="duckdb").to_pylist()
            on_trino = history_queries.run(lake, cdc, name, values, engine="trino").to_pylist()
            assert on_duckdb == on_trino and on_duckdb, name


def _apply_process(cdc: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in cdc.cdc.model_dump(include={"source_schema", "topic_prefix"}).items():
        env[f"DOTJOIN__CDC__{key.upper()}"] = value
    command = [sys.executable, "-m", "dotjoin", "--profile", "stack", "-q", "cdc", "apply", "--batch-seconds",
               "0.5", "--group", f"crash-{cdc.cdc.source_schema}"]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)


def test_sigkilled_applier_and_killed_connect_worker_lose_and_duplicate_nothing(
    cdc: Settings, tmp_path: Path
) -> None:
    _start(cdc)
    journal = tmp_path / "journal.jsonl"
    load = _workload(cdc, journal, tps=40, seconds=30, seed=11)
    applier = _apply_process(cdc)
    time.sleep(8)
    applier.send_signal(signal.SIGKILL)  # mid-stream, wherever it is (maybe between commits)
    applier.wait(10)
    applier = _apply_process(cdc)
    time.sleep(4)
    worker = ConnectService(cdc)
    pid = worker.our_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # Debezium re-sends what it had not flushed as its offset
    worker.pid_file.unlink(missing_ok=True)
    process.wait_for(lambda: not process.port_open(worker.host, worker.port), timeout=30, interval=0.2)
    worker.ensure_up()
    connector.wait_running(cdc, timeout_s=120)
    load.result(timeout=180)
    stopper = threading.Timer(15, applier.send_signal, [signal.SIGINT])  # let it drain, then Ctrl-C
    stopper.start()
    assert applier.wait(90) == 0
    for verdict in _verified(cdc, journal):
        assert verdict["mismatches"] == 0, verdict  # nothing lost, and no version twice
        assert verdict["source_rows"] == verdict["lake_rows"]


def test_a_lost_slot_fails_loudly_and_a_resnapshot_reconciles(cdc: Settings) -> None:
    _start(cdc, users=60, skus=10)
    topics, group = source.topics(cdc), f"t-{uuid.uuid4().hex[:6]}"
    assert follow(cdc, topics=topics, group=group, batch_seconds=0.5, idle_exit=6).counts["output"] == 70
    connect = ConnectService(cdc)
    rest(connect.url, f"/connectors/{cdc.cdc.connector}/stop", method="PUT")
    process.wait_for(lambda: (connector.status(cdc) or {})["connector"]["state"] == "STOPPED", timeout=30)
    connector.remove(cdc, drop_slot=True)  # the slot is gone (as a DBA's drop or max_slot_wal_keep_size does)
    connector.register(cdc)
    # the gap: changes nobody can stream any more
    _sql(cdc, "DELETE FROM {s}.users WHERE user_id IN (1, 2, 3)",
         "UPDATE {s}.users SET tier = 'platinum' WHERE user_id IN (4, 5)",
         "INSERT INTO {s}.users (user_id, email, full_name, country) "
         "VALUES (1000, 'n@x.org', 'N', 'DE')")  # fmt: skip
    assert process.wait_for(lambda: bool(connector.health(cdc)), timeout=60)
    (problem,) = connector.health(cdc)
    assert "no longer has the changes" in problem and "dotjoin cdc resnapshot" in problem

    connector.resnapshot(cdc)
    report = follow(cdc, topics=topics, group=group, batch_seconds=0.5, idle_exit=8)
    assert report.metrics["snapshot_deletes"] == 3
    assert connector.health(cdc) == []
    with open_lake(cdc) as lake:
        users = f"{cdc.cdc.source_schema}.users"
        (verdict,) = verify(cdc, lake, [users])
        versions = history(lake, users).to_pylist()
    assert verdict.mismatches == 0 and verdict.source_rows == verdict.lake_rows == 58
    changed = [
        (v["user_id"], v["op"], v["tier"]) for v in versions if v["user_id"] in (1, 4, 6) and v["version"] > 1
    ]
    assert changed == [(1, "d", None), (4, "r", "platinum")]  # 6 did not change: no new version


DEBEZIUM_TABLES = ("products", "products_on_hand", "customers", "orders")


def test_debeziums_tutorial_inventory_database_is_captured_exactly(cdc: Settings) -> None:
    # A second source nobody here wrote: Debezium's tutorial database (REPLICA IDENTITY FULL, SERIAL keys,
    # float weights, dates, foreign keys), loaded from its own SQL into the test's schema — without its
    # PostGIS table, which needs an extension this server does not have.
    script = require_shared_data("debezium/inventory_postgres_3.7.sql").read_text()
    schema = cdc.cdc.source_schema
    script = script.split("-- Create table with Spatial/Geometry type")[0]
    script = script.replace("CREATE SCHEMA inventory;", "").replace("SET search_path TO inventory;", "")
    script = script.replace("CREATE EXTENSION postgis;", "")
    source.setup(cdc)
    with source.connect(cdc) as conn:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(script)
        listed = ", ".join(f"{schema}.{t}" for t in DEBEZIUM_TABLES)
        conn.execute(f"ALTER PUBLICATION {cdc.cdc.publication} ADD TABLE {listed}")
        conn.execute(f"GRANT SELECT ON {listed} TO {cdc.cdc.replication_user}")
    connector.register(cdc, extra_tables=DEBEZIUM_TABLES)
    connector.wait_running(cdc, timeout_s=90)
    topics, group = source.topics(cdc, DEBEZIUM_TABLES), f"t-{uuid.uuid4().hex[:6]}"
    assert follow(cdc, topics=topics, group=group, batch_seconds=0.5, idle_exit=6).counts["output"] == 26
    _sql(cdc, "UPDATE {s}.customers SET email = 'anne@example.org' WHERE id = 1004",
         "UPDATE {s}.products SET weight = 3.5, description = NULL WHERE id = 101",
         "DELETE FROM {s}.orders WHERE id = 10004",
         "INSERT INTO {s}.orders (order_date, purchaser, quantity, product_id) "
         "VALUES ('2026-12-02', 1001, 3, 109)",
         "UPDATE {s}.products_on_hand SET quantity = quantity - 1 WHERE product_id = 109")  # fmt: skip
    report = follow(cdc, topics=topics, group=group, batch_seconds=0.5, idle_exit=6, verify_source=True)
    assert report.counts["output"] == 5 and report.status == "succeeded", report.checks
    assert [c.name for c in report.checks if c.name.startswith("cdc verify")] == [
        f"cdc verify {schema}.{t}" for t in sorted(("customers", "orders", "products", "products_on_hand"))
    ]
    with open_lake(cdc) as lake:
        for table in DEBEZIUM_TABLES:
            (verdict,) = verify(cdc, lake, [f"{schema}.{table}"])
            assert verdict.mismatches == 0 and verdict.source_rows == verdict.lake_rows, verdict.as_dict()
        orders = history(lake, f"{schema}.orders").to_pylist()
    deleted = [(o["op"], o["quantity"]) for o in orders if o["id"] == 10004]
    assert deleted == [("r", 1), ("d", 1)]  # REPLICA IDENTITY FULL: the delete carries the whole row
