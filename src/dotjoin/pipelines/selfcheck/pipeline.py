"""Self-check pipeline: events through the bus, into the warehouse, out to the lake, compared.

It exercises every platform adapter of the active profile with real data and proves the round trip:
every message consumed is loaded, quarantined (malformed) or counted as a duplicate; the warehouse and
the lake end with the same rows (same checksum). Re-running it is idempotent.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pyarrow as pa

from dotjoin.config import Settings
from dotjoin.exceptions import TransientError
from dotjoin.pipelines.selfcheck.transforms import (
    EVENT_SCHEMA,
    Ledger,
    MalformedEventError,
    checksum,
    dedupe,
    generate_events,
    parse_event,
)
from dotjoin.platform.bus import open_bus
from dotjoin.platform.bus.base import DLQ_SUFFIX
from dotjoin.platform.lake import open_lake
from dotjoin.platform.lake.base import PartitionField
from dotjoin.platform.quality.quarantine import QUARANTINE_TABLE, Quarantine
from dotjoin.platform.runs import Run, RunReport, start_run
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

PIPELINE = "selfcheck"
TOPIC = "selfcheck.events"
WAREHOUSE_TABLE = "selfcheck_events"
LAKE_TABLE = "curated.selfcheck_events"
BATCH = 5_000
DRAIN_TIMEOUT_S = 120


def run(
    settings: Settings,
    *,
    events: int = 10_000,
    seed: int = 7,
    topic: str = TOPIC,
    report_path: Path | None = None,
) -> RunReport:
    """Produce ``events`` messages to ``topic``, load them bus -> warehouse -> lake, check the round trip."""
    params = {"events": events, "seed": seed, "topic": topic}
    with start_run(PIPELINE, settings, params=params, report_path=report_path) as run:
        bus = open_bus(settings)
        bus.create_topic(topic)
        bus.create_topic(topic + DLQ_SUFFIX)
        ledger = Ledger()
        with bus.producer() as producer:
            for event in generate_events(events, seed=seed):
                ledger.record(event)
                producer.produce(topic, event.value, key=event.key)
        quarantine = Quarantine(PIPELINE, run.run_id)
        t0 = time.perf_counter()
        with open_warehouse(settings) as wh:
            loaded = _bus_to_warehouse(settings, topic, events, wh, quarantine, run)
            quarantine.flush(wh)
            stored_rejects = int(
                wh.scalar(
                    f"SELECT count(*) FROM {QUARANTINE_TABLE} WHERE pipeline = $1 AND run_id = $2",
                    [PIPELINE, run.run_id],
                )
                or 0
            )
            in_warehouse = wh.query(
                f"SELECT event_id, account, amount_cents, event_time FROM {WAREHOUSE_TABLE}"
            )
        run.metric("bus_to_warehouse_rows_per_s", loaded / max(time.perf_counter() - t0, 1e-9))
        run.output(WAREHOUSE_TABLE, rows=in_warehouse.num_rows)

        lake = open_lake(settings)
        lake.create_table(
            LAKE_TABLE,
            EVENT_SCHEMA,
            partition_by=[PartitionField("event_time", "day")],
            identifier_fields=["event_id"],
        )
        updated, inserted = lake.upsert(LAKE_TABLE, in_warehouse.cast(EVENT_SCHEMA), key=["event_id"])
        in_lake = lake.scan(LAKE_TABLE)
        run.output(LAKE_TABLE, rows=in_lake.num_rows, location=lake.zone_path("curated"))
        run.metric("lake_rows_inserted", inserted)
        run.metric("lake_rows_updated", updated)

        run.check_accounting()
        # Checked against what the producer sent (recorded before sending), not against the tables
        # this run wrote: its rows, its corrupt messages, its re-sent copies.
        _check_rows(run, "warehouse_matches_producer", in_warehouse, ledger)
        _check_rows(run, "lake_matches_producer", in_lake, ledger)
        run.check(
            "quarantine_matches_producer",
            passed=stored_rejects == ledger.malformed,
            observed=stored_rejects,
            expected=ledger.malformed,
            detail="quarantine rows stored by this run vs corrupt messages sent",
        )
        duplicates = run.report.counts.get("duplicates", 0)
        run.check(
            "duplicates_match_producer",
            passed=duplicates == ledger.resent,
            observed=duplicates,
            expected=ledger.resent,
        )
    return run.report


def _bus_to_warehouse(
    settings: Settings, topic: str, expected: int, wh: Warehouse, quarantine: Quarantine, run: Run
) -> int:
    """Consume at least the ``expected`` messages just produced, then until the topic is idle; sink each
    batch, then commit its offsets (exactly-once effect).

    Waiting for ``expected`` matters on a fresh Kafka: joining the group can take seconds while the
    group coordinator loads, and an empty poll then does not mean the topic is drained.
    """
    bus = open_bus(settings)
    seen: set[str] = set()
    loaded = consumed = idle = 0
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    with bus.consumer(f"{topic}.loader", [topic]) as consumer, bus.producer() as dlq:
        while consumed < expected or idle < 2:
            if time.monotonic() > deadline:
                raise TransientError(
                    f"selfcheck: consumed {consumed} of {expected} messages of {topic!r} "
                    f"within {DRAIN_TIMEOUT_S}s; is the bus healthy? (dotjoin services status)"
                )
            messages = consumer.consume(BATCH, timeout=1.0)
            if not messages:
                idle += 1
                continue
            idle = 0
            consumed += len(messages)
            rows = []
            for msg in messages:
                try:
                    rows.append(parse_event(msg.value))
                except MalformedEventError as exc:
                    quarantine.reject(
                        source=msg.topic,
                        position=f"{msg.partition}:{msg.offset}",
                        reason="malformed_event",
                        detail=str(exc),
                        raw=msg.value.decode("utf-8", "replace")[:1000],
                    )
                    bus.dead_letter(dlq, msg, exc)
            kept, duplicates = dedupe(rows, seen)
            if kept:
                result = wh.upsert(
                    WAREHOUSE_TABLE, pa.Table.from_pylist(kept, schema=EVENT_SCHEMA), key=["event_id"]
                )
                logger.debug("batch: %d inserted, %d updated", result.inserted, result.updated)
            dlq.flush()
            consumer.commit(messages)
            loaded += len(kept)
            run.count(
                input=len(messages),
                output=len(kept),
                duplicates=duplicates,
                quarantined=len(messages) - len(rows),
            )
    return loaded


def _check_rows(run: Run, name: str, table: pa.Table, ledger: Ledger) -> None:
    """The rows of the events the producer sent, in ``table``, equal those events (count and checksum)."""
    mine = table.filter(pa.compute.is_in(table.column("event_id"), value_set=pa.array(list(ledger.events))))
    run.check(
        name,
        passed=mine.num_rows == len(ledger.events) and checksum(mine) == ledger.checksum(),
        observed=mine.num_rows,
        expected=len(ledger.events),
        detail="count and SHA-256 of the sent events' rows",
    )
