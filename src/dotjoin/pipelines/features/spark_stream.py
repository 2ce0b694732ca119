"""``dotjoin features stream --engine spark``: the online store written by Spark Structured Streaming.

The second runtime of the streaming features job (the first, embedded, is :mod:`.stream`): the same
per-entity computation (:meth:`~.online.EntityHistory.record`, each entity's payments in the topic's
order), the same MessagePack states (:func:`~.store.dump`) under the same keys, the same ``offsets`` key,
written to the same online store (Redis in the stack) in one atomic ``put_many`` per micro-batch. Through
:mod:`dotjoin.platform.spark`:

* **fan out** (``mapInArrow``, :meth:`EntityFunction.fan_out`): each message is parsed and goes to two
  groups, its card's and its merchant's (keyed by :func:`~.store.state_key`); a contract break goes to
  the one :data:`QUARANTINE` group instead, so every message is in exactly one card or quarantine group;
* **per entity** (``groupBy(key).transformWithState``, :meth:`EntityFunction.__call__`): the entity's
  messages of the micro-batch sorted by (partition, offset), recorded into its history restored from
  Spark's state store (RocksDB), the history's bytes back to the state store and out as one row, with
  the next offset of every partition the group read;
* **sink** (``foreachBatch`` on the driver, :class:`StoreSink`): the batch's states and the offsets
  (the stored ones, advanced) into the store at once.

Exactly once: a micro-batch that a crash re-runs starts from the state store's previous version with
the same messages, so it writes the same bytes again. The Spark checkpoint (offsets and the entity
states) is the truth the store follows: one writer per namespace, and a store emptied under a live
checkpoint is refused (:func:`run_spark_stream`) rather than half rebuilt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.features.definitions import usd_cents
from dotjoin.pipelines.features.online import EntityHistory
from dotjoin.pipelines.features.store import OnlineStore, dump, load, state_key
from dotjoin.pipelines.features.stream import NAMESPACE
from dotjoin.pipelines.payments.contract import TOPIC_PAYMENTS, ContractError, parse_payment
from dotjoin.platform.bus import open_bus
from dotjoin.platform.kv import open_kv
from dotjoin.platform.runs import RunReport, start_run
from dotjoin.platform.spark import SparkEngine, SparkOptions, StreamHandle, Trigger

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "features/spark-checkpoint"  # under the state directory, one per namespace
SPARK_LOG = "features/spark.log"
QUARANTINE = b"!quarantine"  # the group of contract breaks: no entity key starts with "!"
#: One row per group and partition it read: the state (first row only), the partition's next offset,
#: and — card and quarantine groups, which between them hold every message once — the accounting.
OUTPUT_SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # the store key; null: the quarantine group
        ("state", pa.binary()),  # the entity's history, as the store keeps it
        ("partition", pa.int32()),
        ("next_offset", pa.int64()),  # one past the group's newest offset in the partition
        ("messages", pa.int64()),
        ("kept", pa.int64()),
        ("duplicates", pa.int64()),
        ("quarantined", pa.int64()),
        ("error", pa.string()),  # quarantine: the first break, with its partition:offset
    ]
)


@dataclass
class EntityFunction:
    """The fan-out and per-entity steps; pickled into Spark's Python workers with the exchange rates."""

    usd_rates: dict[str, float]

    def fan_out(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """Each message to its card's and its merchant's group, or to :data:`QUARANTINE`."""
        keys: list[bytes] = []
        rows: list[int] = []
        for n, value in enumerate(batch.column("value").to_pylist()):
            try:
                p = parse_payment(value)
            except ContractError:
                keys.append(QUARANTINE)
                rows.append(n)
                continue
            keys += [state_key("card", p.card_id).encode(), state_key("merchant", p.merchant_id).encode()]
            rows += [n, n]
        taken = batch.take(pa.array(rows, pa.int64()))
        yield taken.set_column(0, "key", pa.array(keys, pa.binary()))

    def __call__(
        self, key: bytes | None, rows: list[tuple[Any, ...]], state: bytes | None
    ) -> tuple[list[tuple[Any, ...]], bytes | None]:
        """One group's messages of a micro-batch (``INPUT_COLUMNS`` tuples) → its rows, its new state."""
        rows = sorted(rows, key=lambda r: (r[2], r[3]))  # (partition, offset): the topic's order
        if key == QUARANTINE:
            return self._quarantine(rows), None
        name = (key or b"").decode()
        history = load(state) if state is not None else EntityHistory()
        accounted = name.startswith("card:")  # a merchant's messages are its cards' too: counted once
        out: list[tuple[Any, ...]] = []
        for partition, group in groupby(rows, key=lambda r: r[2]):
            kept = messages = 0
            last = 0
            for _, value, _, offset, _ in group:
                p = parse_payment(value)  # parsed by fan_out already: no contract break reaches here
                kept += history.record(p.event_id, p.event_time_ms, usd_cents(p.amount, p.currency,
                                                                             self.usd_rates))  # fmt: skip
                messages, last = messages + 1, offset
            counts = (messages, kept, messages - kept) if accounted else (0, 0, 0)
            out.append((name, None, partition, last + 1, *counts, 0, None))
        blob = dump(history)
        out[0] = (name, blob, *out[0][2:])
        return out, blob

    @staticmethod
    def _quarantine(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        out = []
        for partition, group in groupby(rows, key=lambda r: r[2]):
            broken = list(group)
            try:
                parse_payment(broken[0][1])
                error = None
            except ContractError as exc:
                error = f"{partition}:{broken[0][3]}: {exc}"
            out.append((None, None, partition, broken[-1][3] + 1, len(broken), 0, 0, len(broken), error))
        return out


@dataclass
class StreamStats:
    """What the job did (the sink's view: every micro-batch it received, a re-run one again)."""

    batches: int = 0
    messages: int = 0
    kept: int = 0
    duplicates: int = 0
    quarantined: int = 0
    entities_written: int = 0
    errors: list[str] = field(default_factory=list)  # the first few contract breaks, with their place
    progress: list[dict[str, Any]] = field(default_factory=list)


class StoreSink:
    """The ``foreachBatch`` sink on the driver: a micro-batch's states and offsets in one write."""

    def __init__(self, store: OnlineStore, topic: str) -> None:
        self.store, self.topic = store, topic
        self.stats = StreamStats()

    def __call__(self, rows: pa.Table, batch_id: int) -> None:
        s = self.stats
        s.batches += 1
        states = rows.filter(pc.is_valid(rows["state"]))
        offsets = self.store.offsets()
        for partition, next_offset in zip(rows["partition"].to_pylist(), rows["next_offset"].to_pylist(),
                                          strict=True):  # fmt: skip
            stream = f"{self.topic}:{partition}"
            offsets[stream] = max(offsets.get(stream, 0), next_offset)
        self.store.put_states(dict(zip(states["key"].to_pylist(), states["state"].to_pylist(), strict=True)),
                              offsets)  # fmt: skip
        for name in ("messages", "kept", "duplicates", "quarantined"):
            setattr(s, name, getattr(s, name) + (pc.sum(rows[name]).as_py() or 0))
        s.entities_written += states.num_rows
        s.errors += [e for e in rows["error"].to_pylist() if e][: max(0, 3 - len(s.errors))]
        logger.info("batch %d: %d entities written", batch_id, states.num_rows)


def run_spark_stream(
    settings: Settings,
    *,
    usd_rates: dict[str, float],
    topic: str = TOPIC_PAYMENTS,
    namespace: str = NAMESPACE,
    checkpoint: Path | None = None,
    trigger: Trigger = "available_now",
    max_s: float | None = None,
    max_offsets_per_trigger: int | None = None,
    engine: SparkEngine | None = None,
) -> RunReport:
    """Consume ``topic`` into the online store (keys under ``namespace``) with Spark; a run
    (``features_stream``, ``engine: spark``) whose report reconciles every message the sink saw.

    Args:
        trigger: ``"available_now"`` (what the topic holds, then stop) or seconds between micro-batches.
        max_s: stop a ``processingTime`` query after this long (None: until it fails or is stopped).
        checkpoint: Spark's checkpoint (offsets, entity states); default: under the state directory.
        engine: a running Spark engine to reuse; default: start one (local[2], 1 GiB driver heap).

    Raises:
        ConfigError: the bus is not Kafka, or the store lost what the checkpoint says it holds.
        SparkJobError: Spark did not start or the query failed (Spark's first line).
    """
    if settings.bus.type != "kafka":
        raise ConfigError(
            f"the Spark job reads Kafka; the profile's bus is {settings.bus.type!r} (use --profile stack)"
        )
    checkpoint = checkpoint or settings.resolve(f"{CHECKPOINT_DIR}/{namespace}")
    params = {"engine": "spark", "topic": topic, "namespace": namespace, "trigger": str(trigger)}
    func = EntityFunction(dict(usd_rates))
    with start_run("features_stream", settings, params=params) as run, open_kv(settings, namespace) as kv:
        store = OnlineStore(kv)
        if any((checkpoint / "commits").glob("[0-9]*")) and not store.offsets():
            raise ConfigError(
                f"the online store's namespace {namespace!r} is empty but the Spark checkpoint {checkpoint} "
                "has committed batches; delete the checkpoint to rebuild the store from the topic"
            )
        open_bus(settings).create_topic(topic)
        own = engine is None
        spark = engine or SparkEngine("dotjoin-features", _options(settings))
        try:
            sink = StoreSink(store, topic)
            began = time.monotonic()
            handle: StreamHandle = spark.keyed_kafka_stream(
                bootstrap_servers=settings.bus.bootstrap_servers, topic=topic, func=func,
                rekey=func.fan_out, output_schema=OUTPUT_SCHEMA, sink=sink, trigger=trigger,
                checkpoint=checkpoint, max_offsets_per_trigger=max_offsets_per_trigger,
                name=f"features_{namespace}",
            )  # fmt: skip
            handle.finish(max_s if trigger != "available_now" else None)
            s = sink.stats
            s.progress = handle.progress
        finally:
            if own:
                spark.stop()
        for error in s.errors:
            logger.warning("features: %s:%s", topic, error)
        run.count(input=s.messages, output=s.kept, duplicates=s.duplicates, quarantined=s.quarantined)
        run.check_accounting()
        run.metric("seconds", time.monotonic() - began)
        run.metric("batches", s.batches)
        run.metric("entities_written", s.entities_written)
        run.input(f"topic:{topic}")
        run.output("online store", rows=s.kept, dataset=f"kv:{namespace}")
        if own:
            run.metric("spark_start_s", round(spark.start_s, 1))
    return run.report


def _options(settings: Settings) -> SparkOptions:
    """Local Spark with the Kafka connector jars (fetched with Maven on first use)."""
    from dotjoin.services.spark import ensure_jars

    return SparkOptions(jars=ensure_jars(), log_file=settings.resolve(SPARK_LOG))
