"""Where alerts land, for both runtimes: the warehouse table, the ``alerts`` topic and the lake.

* ``payment_alerts`` in the warehouse (DuckDB locally, PostgreSQL in the stack), upserted by
  ``event_id`` in parameterised multi-row statements: what the dashboard and consumers query within
  milliseconds of the event. The embedded runner writes through :class:`AlertWriter`, a thread of
  its own with group commit (a DuckDB upsert costs ~8 ms however few its rows: on the stream's loop
  it took a third of the time at 10,000 events/s);
* the ``alerts`` topic, one JSON message per alert keyed by event id (at least once);
* ``curated.payment_alerts`` in the lake (Iceberg, partitioned by the event's day), upserted by
  ``event_id``: the history the feature store, the data mesh and the capstone read. Written less
  often (the runner's checkpoints; Spark's micro-batches, through Spark's own Iceberg catalog on the
  same catalog rows), so a commit carries many alerts, not one.

Every write is keyed by ``event_id``: a batch replayed after a crash rewrites the same rows.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from dotjoin.config import Settings
from dotjoin.pipelines.payments.contract import TOPIC_ALERTS, TOPIC_PAYMENTS
from dotjoin.pipelines.payments.detector import Alert
from dotjoin.platform.lake import Lake, PartitionField, open_lake
from dotjoin.platform.warehouse.base import Warehouse

ALERTS_TABLE = "payment_alerts"
LAKE_ALERTS_TABLE = "curated.payment_alerts"
#: The alerts' columns, in the warehouse table's order (the lake table has the same).
ALERTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("card_id", pa.string(), nullable=False),
        pa.field("merchant_id", pa.string(), nullable=False),
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("anomaly", pa.float64(), nullable=False),
        pa.field("rules", pa.string(), nullable=False),
        pa.field("models", pa.string(), nullable=False),
        pa.field("explanation", pa.string(), nullable=False),
    ]
)


def alerts_ddl(table: str = ALERTS_TABLE) -> str:
    """The alerts table (``CREATE TABLE IF NOT EXISTS``): one row per alerted event id."""
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    event_id VARCHAR PRIMARY KEY,
    card_id VARCHAR NOT NULL,
    merchant_id VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    anomaly DOUBLE PRECISION NOT NULL,
    rules VARCHAR NOT NULL,
    models VARCHAR NOT NULL,
    explanation VARCHAR NOT NULL
)"""


_UPSERT = (
    "INSERT INTO {table} VALUES {rows}"
    " ON CONFLICT (event_id) DO UPDATE"
    " SET card_id = excluded.card_id, merchant_id = excluded.merchant_id, event_time = excluded.event_time,"
    " amount = excluded.amount, score = excluded.score, anomaly = excluded.anomaly, rules = excluded.rules,"
    " models = excluded.models, explanation = excluded.explanation"
)
_UPSERT_ROWS = 500  # rows per statement (5,000 parameters)


def _row(a: Alert) -> tuple[object, ...]:
    return (a.event_id, a.card_id, a.merchant_id, datetime.fromtimestamp(a.event_time_ms / 1000, UTC),
            a.amount, a.score, a.anomaly, ",".join(a.rules), ",".join(a.models), a.explanation)  # fmt: skip


def write_alerts(wh: Warehouse, alerts: Sequence[Alert], table: str = ALERTS_TABLE) -> None:
    """Upsert alerts by event id: one parameterised multi-row statement per 500 alerts (one statement
    per alert cost DuckDB ~5 ms each — a quarter of the runner's time at 5,000 events/s)."""
    rows = [_row(a) for a in {a.event_id: a for a in alerts}.values()]  # one row per key per statement
    width = len(ALERTS_SCHEMA)
    with wh.transaction():
        for i in range(0, len(rows), _UPSERT_ROWS):
            chunk = rows[i : i + _UPSERT_ROWS]
            values = ", ".join(
                "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
                for r in range(len(chunk))
            )
            wh.execute(_UPSERT.format(table=table, rows=values), [v for row in chunk for v in row])


class AlertWriter:
    """:func:`write_alerts` on a thread of its own, with group commit: what arrives while a write
    runs goes into the next one, so writes are as frequent as the warehouse allows and carry more
    alerts as the stream speeds up, and the stream's loop never waits for the warehouse (DuckDB and
    psycopg release the GIL while a statement runs).

    The warehouse connection is the thread's alone while it runs. :meth:`drain` waits until every
    alert handed over is committed — the runner drains before each checkpoint, so a saved checkpoint
    still implies the warehouse has every alert below its offsets. A failed write is raised by the
    next :meth:`put`, :meth:`drain` or :meth:`latencies` call (the runner then stops and restarts from
    its checkpoint; the upserts are idempotent).
    """

    def __init__(self, wh: Warehouse, table: str = ALERTS_TABLE) -> None:
        self.wh, self.table = wh, table
        self._cond = threading.Condition()
        self._pending: list[tuple[Alert, int]] = []  # (alert, its source message's timestamp ms)
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self._latencies: list[float] = []  # seconds, source message -> committed, since the last call
        self._thread = threading.Thread(target=self._loop, name="alert-writer", daemon=True)
        self._thread.start()

    def put(self, alerts: Sequence[Alert], sent_ms: Sequence[int]) -> None:
        """Hand over alerts with their source messages' timestamps (0: unknown; no latency then)."""
        with self._cond:
            self._raise()
            self._pending.extend(zip(alerts, sent_ms, strict=True))
            self._cond.notify()

    def drain(self) -> None:
        """Wait until every alert handed over is in the warehouse."""
        with self._cond:
            while (self._pending or self._busy) and self._error is None:
                self._cond.wait()
            self._raise()

    def latencies(self) -> list[float]:
        """Source message → committed row, in seconds, of the alerts committed since the last call."""
        with self._cond:
            self._raise()
            out, self._latencies = self._latencies, []
        return out

    def close(self) -> None:
        """Stop the thread (after the write in progress); what is still pending is not written."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch, self._pending, self._busy = self._pending, [], True
            try:
                write_alerts(self.wh, [a for a, _ in batch], self.table)
                error = None
            except BaseException as exc:  # handed to the stream's thread, which stops
                error = exc
            written_ms = time.time() * 1000
            with self._cond:
                self._busy = False
                if error is not None:
                    self._error = error
                else:
                    self._latencies.extend((written_ms - sent) / 1000 for _, sent in batch if sent)
                self._cond.notify_all()
            if error is not None:
                return


def alert_message(alert: Alert) -> bytes:
    """The ``alerts`` topic's message value (the same bytes from both runtimes)."""
    return json.dumps(alert.as_dict(), separators=(",", ":")).encode()


def alerts_arrow(alerts: Sequence[Alert]) -> pa.Table:
    """The alerts as an Arrow table of :data:`ALERTS_SCHEMA`, one row per event id (the last wins)."""
    rows = [_row(a) for a in {a.event_id: a for a in alerts}.values()]
    columns: list[Sequence[object]] = [[r[i] for r in rows] for i in range(len(ALERTS_SCHEMA))]
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, ALERTS_SCHEMA, strict=True)],
                                schema=ALERTS_SCHEMA)  # fmt: skip


class AlertLake:
    """Alerts to the lake's Iceberg table (created on first use), upserted by event id.

    The runner writes it from its checkpoint thread, one write at a time. Safe across ``fork``: a
    child process opens its own catalog connection instead of sharing the parent's.
    """

    def __init__(self, settings: Settings, table: str = LAKE_ALERTS_TABLE) -> None:
        self.settings, self.table = settings, table
        self._lake: Lake | None = None
        self._pid = 0

    def open(self) -> Lake:
        if self._lake is None or self._pid != os.getpid():
            lake = self._lake = open_lake(self.settings)
            self._pid = os.getpid()
            day = PartitionField("event_time", "day")
            lake.create_table(self.table, ALERTS_SCHEMA, partition_by=[day], identifier_fields=["event_id"])
        return self._lake

    def write(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            self.open().upsert(self.table, alerts_arrow(alerts), key=["event_id"])

    def close(self) -> None:
        if self._lake is not None and self._pid == os.getpid():
            self._lake.close()
        self._lake = None


ALERTS_CONTRACT = Path(__file__).with_name("contracts") / "payment_alerts.yaml"


def alerts_lineage(run: Any, alerts: int, *, topic: str = TOPIC_PAYMENTS) -> None:
    """What a detector run read and wrote, for the lineage graph: the payments topic → the alerts table,
    the lake's alerts table and the ``alerts`` topic (both runtimes write all three)."""
    run.input(f"topic:{topic}")
    run.output(ALERTS_TABLE, rows=alerts, dataset=f"table:{ALERTS_TABLE}")
    run.output(LAKE_ALERTS_TABLE, rows=alerts, dataset=f"lake:{LAKE_ALERTS_TABLE}")
    run.output(TOPIC_ALERTS, rows=alerts, dataset=f"topic:{TOPIC_ALERTS}")
