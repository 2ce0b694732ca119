"""The detector on Spark Structured Streaming: the Kafka topic → state per card → the same alerts.

The second runtime of the one detector (:class:`~.detector.Detector`; the first is :mod:`.runner`).
Every piece of its state is per card (event time, duplicate memory, features) and the ``payments``
topic is keyed by ``card_id``, so a card's messages sit in one partition, in offset order. Two steps,
through :mod:`dotjoin.platform.spark`:

* **per card** (``groupBy(key).transformWithState``, :meth:`CardFunction.__call__`): sort the card's
  messages of the micro-batch by (partition, offset) — the order the embedded runner reads them in —,
  restore the card's state (:meth:`~.detector.Detector.card_states`, encoded by
  :func:`~.detector.encode_states`: its :class:`~.features.CardState` and event-time clock) into a
  fresh detector, parse (a contract break becomes a ``dead`` row with its error: nothing is
  dropped), and run :meth:`~.detector.Detector.features`: one
  ``scored`` row per kept message (with its feature row), ``late`` rows, one ``stats`` row; the state
  goes back to the state store;
* **per batch** (``mapInArrow``, :meth:`CardFunction.score`): :meth:`~.detector.Detector.score` — rules
  and models, which read no state — on all the scored rows of an Arrow batch at once (one model call,
  not one per card): ``alert`` rows out.

On the driver, each micro-batch's rows go to :class:`AlertSink` (``foreachBatch``): alerts are
upserted into ``payment_alerts`` by ``event_id`` — a batch replayed after a crash rewrites the same
rows, so a restart from the Spark checkpoint ends with a clean run's table; the same alerts are merged
into the lake's Iceberg table (``MERGE INTO dotjoin.curated.payment_alerts`` through Spark's Iceberg
catalog on the catalog rows PyIceberg writes, :func:`dotjoin.platform.lake.catalog.spark_catalog_conf`)
— and late / dead rows are
sent to ``<topic>.late`` / ``<topic>.dlq`` exactly as the runner sends them (at least once), alerts to
the ``alerts`` topic. Same messages, same alerts as the runner and as :func:`.offline.replay`,
whatever the micro-batch boundaries (``tests/integration/test_payments_spark.py``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.payments.contract import TOPIC_ALERTS, TOPIC_PAYMENTS, ContractError, parse_payment
from dotjoin.pipelines.payments.detector import (
    DEFAULT_LATENESS_MS,
    DEFAULT_RULE_FLOOR,
    Alert,
    Detector,
    decode_states,
    encode_states,
)
from dotjoin.pipelines.payments.features import FEATURES, MerchantInfo
from dotjoin.pipelines.payments.history import Reference
from dotjoin.pipelines.payments.models import FraudModels
from dotjoin.pipelines.payments.rules import Rule, load_rules
from dotjoin.pipelines.payments.sinks import (
    ALERTS_CONTRACT,
    ALERTS_TABLE,
    LAKE_ALERTS_TABLE,
    AlertLake,
    alert_message,
    alerts_arrow,
    alerts_ddl,
    alerts_lineage,
    write_alerts,
)
from dotjoin.platform.bus import Bus, Message, Producer, open_bus
from dotjoin.platform.quality.checks import check_table
from dotjoin.platform.runs import RunReport, start_run
from dotjoin.platform.spark import SparkEngine, SparkOptions, StreamHandle, Trigger
from dotjoin.platform.warehouse import Warehouse, open_warehouse

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "payments/spark-checkpoint"  # under the state directory
SPARK_LOG = "payments/spark.log"  # the JVM's output
#: The rows of both steps (``kind``: scored, late, dead or stats from the per-card step; the scoring step
#: turns scored rows into alert rows, or drops them).
OUTPUT_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("event_id", pa.string()),
        ("card_id", pa.string()),
        ("merchant_id", pa.string()),
        ("event_time_ms", pa.int64()),
        ("amount", pa.float64()),
        ("score", pa.float64()),
        ("anomaly", pa.float64()),
        ("rules", pa.string()),
        ("models", pa.string()),
        ("explanation", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp_ms", pa.int64()),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("error", pa.string()),
        ("messages", pa.int64()),  # stats rows: the card's messages in the batch
        ("scored", pa.int64()),
        ("duplicates", pa.int64()),
        ("features", pa.binary()),  # scored rows: the feature row, float64 bytes (FEATURES' order)
    ]
)

#: The models of this Python worker, by job token: the models file is read once per worker, not per card.
_WORKER_MODELS: dict[str, FraudModels | None] = {}


@dataclass
class CardFunction:
    """The per-card step of the job (see the module docstring); runs in Spark's Python workers.

    Pickled into every task: it carries the reference data and the rules, and the models' *path*.
    """

    merchants: dict[str, MerchantInfo]
    usd_rates: dict[str, float]
    rules: tuple[Rule, ...]
    models_path: str | None
    allowed_lateness_ms: int = DEFAULT_LATENESS_MS
    rule_floor: float = DEFAULT_RULE_FLOOR
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def detector(self) -> Detector:
        """A detector with no card in it (cheap: the models are loaded once per worker and shared)."""
        if self.token not in _WORKER_MODELS:
            _WORKER_MODELS.clear()  # one job per worker at a time
            _WORKER_MODELS[self.token] = (
                FraudModels.load(Path(self.models_path)) if self.models_path else None
            )
        return Detector(
            self.merchants,
            self.rules,
            _WORKER_MODELS[self.token],
            usd_rates=self.usd_rates,
            allowed_lateness_ms=self.allowed_lateness_ms,
            rule_floor=self.rule_floor,
        )

    def __call__(
        self, key: bytes | None, rows: list[tuple[Any, ...]], state: bytes | None
    ) -> tuple[list[tuple[Any, ...]], bytes]:
        """One card's messages of a micro-batch (``INPUT_COLUMNS`` tuples) → output rows, new state."""
        rows = sorted(rows, key=lambda r: (r[2], r[3]))  # (partition, offset): the topic's order
        detector = self.detector()
        if state is not None:  # this card's state only
            detector.restore_cards(decode_states(state))
        out: list[tuple[Any, ...]] = []
        payments, origin = [], []
        for _, value, partition, offset, stamp in rows:
            message = (int(partition), int(offset), int(stamp or 0), bytes(value))
            try:
                payments.append(parse_payment(message[3]))
                origin.append(message)
            except ContractError as exc:
                out.append(_row("dead", key, message, error=str(exc)))
        matrix, kept, result = detector.features(payments)
        out.extend(_row("late", key, origin[i]) for i in result.late)
        out.extend(_row("scored", key, origin[i], features=matrix[j].tobytes()) for j, i in enumerate(kept))
        out.append(_row("stats", key, (0, 0, 0, b""), messages=len(rows), scored=result.scored,
                        duplicates=result.duplicates))  # fmt: skip
        return out, encode_states(detector.card_states())

    def score(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """The scoring step (``mapInArrow``, after the per-card step): the ``scored`` rows of a batch —
        any cards, any number — through the rules and models at once; they leave as ``alert`` rows (or
        not at all), every other row passes through."""
        is_scored = pc.equal(batch.column("kind"), "scored")
        yield batch.filter(pc.invert(is_scored))
        scored = batch.filter(is_scored)
        if not scored.num_rows:
            return
        rows = scored.select(["key", "value", "partition", "offset", "timestamp_ms"]).to_pylist()
        payments = [parse_payment(r["value"]) for r in rows]
        features = b"".join(scored.column("features").to_pylist())
        matrix = np.frombuffer(features, dtype=np.float64).reshape(len(rows), len(FEATURES))
        result = self.detector().score(payments, matrix)
        where = {p.event_id: r for p, r in zip(payments, rows, strict=True)}
        alerts = []
        for alert in result.alerts:
            r = where[alert.event_id]
            origin = (r["partition"], r["offset"], r["timestamp_ms"], b"")
            alerts.append(_row("alert", r["key"], origin, alert=alert))
        yield pa.RecordBatch.from_pylist([dict(zip(OUTPUT_SCHEMA.names, a, strict=True)) for a in alerts],
                                         schema=OUTPUT_SCHEMA)  # fmt: skip


def _row(
    kind: str,
    key: bytes | None,
    message: tuple[int, int, int, bytes],
    *,
    alert: Alert | None = None,
    error: str | None = None,
    features: bytes | None = None,
    messages: int = 0,
    scored: int = 0,
    duplicates: int = 0,
) -> tuple[Any, ...]:
    """One output row, in OUTPUT_SCHEMA's column order."""
    partition, offset, stamp, value = message
    a = alert
    return (
        kind,
        a.event_id if a else None, a.card_id if a else None, a.merchant_id if a else None,
        a.event_time_ms if a else 0, a.amount if a else 0.0, a.score if a else 0.0, a.anomaly if a else 0.0,
        ",".join(a.rules) if a else None, ",".join(a.models) if a else None, a.explanation if a else None,
        partition, offset, stamp, None if key is None else bytes(key),
        value if kind in ("late", "dead", "scored") else None, error, messages, scored, duplicates,
        features,
    )  # fmt: skip


def alert_of(row: dict[str, Any]) -> Alert:
    """The :class:`~.detector.Alert` of an ``alert`` output row."""
    return Alert(
        event_id=row["event_id"], card_id=row["card_id"], merchant_id=row["merchant_id"],
        event_time_ms=row["event_time_ms"], amount=row["amount"], score=row["score"],
        anomaly=row["anomaly"], rules=tuple(filter(None, row["rules"].split(","))),
        models=tuple(filter(None, row["models"].split(","))), explanation=row["explanation"],
    )  # fmt: skip


@dataclass
class SparkRunStats:
    """What the job did (the sink's view: every micro-batch it received)."""

    batches: int = 0
    consumed: int = 0
    scored: int = 0
    duplicates: int = 0
    late: int = 0
    dead_letters: int = 0
    alerts: int = 0
    latency_ms: list[float] = field(default_factory=list)  # message timestamp → alert written
    start_s: float = 0.0  # the Spark session's start
    run_s: float = 0.0  # the query, start to end
    progress: list[dict[str, Any]] = field(default_factory=list)  # Spark's progress reports, recent ones


class AlertSink:
    """The ``foreachBatch`` sink on the driver: idempotent alert upserts, side outputs to the bus."""

    def __init__(
        self,
        warehouse: Warehouse,
        bus: Bus,
        producer: Producer,
        *,
        topic: str = TOPIC_PAYMENTS,
        table: str = ALERTS_TABLE,
        alerts_topic: str = TOPIC_ALERTS,
        lake_write: Callable[[pa.Table], None] | None = None,
    ) -> None:
        self.wh, self.bus, self.producer = warehouse, bus, producer
        self.topic, self.table, self.alerts_topic = topic, table, alerts_topic
        self.lake_write = lake_write
        self.stats = SparkRunStats()
        warehouse.execute(alerts_ddl(table))

    def __call__(self, rows: pa.Table, batch_id: int) -> None:
        s = self.stats
        s.batches += 1
        stats = rows.filter(pc.equal(rows["kind"], "stats"))
        s.consumed += pc.sum(stats["messages"]).as_py() or 0
        s.scored += pc.sum(stats["scored"]).as_py() or 0
        s.duplicates += pc.sum(stats["duplicates"]).as_py() or 0
        alerts: list[Alert] = []
        sent: list[int] = []
        for r in rows.filter(pc.not_equal(rows["kind"], "stats")).to_pylist():
            if r["kind"] == "late":
                self.producer.produce(self.topic + ".late", r["value"], key=r["key"])
                s.late += 1
            elif r["kind"] == "dead":
                field_name, _, detail = (r["error"] or "").partition(": ")
                message = Message(self.topic, r["partition"], r["offset"], r["key"], r["value"],
                                  timestamp_ms=r["timestamp_ms"])  # fmt: skip
                self.bus.dead_letter(self.producer, message, ContractError(field_name, detail))
                s.dead_letters += 1
            else:
                alerts.append(alert_of(r))
                sent.append(r["timestamp_ms"])
        if alerts:
            write_alerts(self.wh, alerts, self.table)
            written_ms = time.time() * 1000
            s.latency_ms.extend(written_ms - t for t in sent if t)
            if self.lake_write is not None:
                self.lake_write(alerts_arrow(alerts))
            for alert in alerts:  # the runner's alert messages, byte for byte
                self.producer.produce(self.alerts_topic, alert_message(alert), key=alert.event_id.encode())
            s.alerts += len(alerts)
        self.producer.flush()  # side outputs are durable before Spark commits the batch
        logger.info("batch %d: %d rows, %d alerts", batch_id, rows.num_rows, len(alerts))


def card_function(
    reference: Reference,
    rules: Sequence[Rule],
    models_path: Path | None,
    *,
    allowed_lateness_ms: int = DEFAULT_LATENESS_MS,
    rule_floor: float = DEFAULT_RULE_FLOOR,
) -> CardFunction:
    """The per-card step; the models file is checked here, on the driver, so a bad path fails early."""
    if models_path is not None:
        FraudModels.load(models_path)
    return CardFunction(
        merchants=dict(reference.merchants),
        usd_rates=dict(reference.usd_rates),
        rules=tuple(rules),
        models_path=str(models_path) if models_path is not None else None,
        allowed_lateness_ms=allowed_lateness_ms,
        rule_floor=rule_floor,
    )


def spark_options(settings: Settings, **overrides: Any) -> SparkOptions:
    """Local Spark with the connector jars (fetched with Maven on first use: services/spark/pom.xml) and
    the lake's Iceberg catalog of ``settings`` (the one PyIceberg writes) as catalog ``<catalog_name>``."""
    from dotjoin.platform.lake.catalog import spark_catalog_conf
    from dotjoin.services.spark import ensure_jars

    conf = {**spark_catalog_conf(settings), **overrides.pop("conf", {})}
    return SparkOptions(jars=ensure_jars(), conf=conf, **overrides)


def run_spark(
    settings: Settings,
    *,
    reference: Reference,
    models_path: Path | None = None,
    rules_path: Path | None = None,
    topic: str = TOPIC_PAYMENTS,
    table: str = ALERTS_TABLE,
    lake_table: str | None = LAKE_ALERTS_TABLE,
    checkpoint: Path | None = None,
    trigger: Trigger = "available_now",
    max_s: float | None = None,
    max_offsets_per_trigger: int | None = None,
    engine: SparkEngine | None = None,
) -> SparkRunStats:
    """Run the detector as a Spark streaming query on the profile's Kafka topic.

    Args:
        settings: the profile (the bus must be Kafka; the warehouse receives ``table``).
        reference: merchants and exchange rates, joined to every event.
        models_path: the trained models; None: rules only.
        rules_path: the rules file; None: the shipped rules.
        topic: the payments topic (keyed by card id).
        table: the alerts table (upserted by ``event_id``).
        lake_table: the lake's alerts table (created by PyIceberg, merged into by Spark through the same
            catalog, ``MERGE INTO`` by ``event_id``); None: no lake sink.
        checkpoint: Spark's checkpoint directory (offsets and per-card state); default under the state dir.
        trigger: ``"available_now"`` (read what is there, then stop) or seconds between micro-batches.
        max_s: stop a ``processingTime`` query after this long (None: until it fails or is stopped).
        engine: a running Spark engine to reuse (tests: one session per module); default: start one.

    Raises:
        ConfigError: the profile's bus is not Kafka, or bad rules / models.
        SparkJobError: Spark did not start or the query failed (Spark's first line).
    """
    if settings.bus.type != "kafka":
        raise ConfigError(
            f"the Spark job reads Kafka; the profile's bus is {settings.bus.type!r} (use --profile stack)"
        )
    func = card_function(reference, load_rules(rules_path), models_path)
    bus = open_bus(settings)
    for name in (topic, TOPIC_ALERTS, topic + ".late", topic + ".dlq"):
        bus.create_topic(name)
    own = engine is None
    spark = engine or SparkEngine(
        "dotjoin-payments", spark_options(settings, log_file=settings.resolve(SPARK_LOG))
    )
    try:
        lake_write = None
        if lake_table is not None:
            catalog = settings.lake.catalog_name
            if not spark.has_catalog(catalog):
                raise ConfigError(
                    f"the Spark session has no catalog {catalog!r} (start it with spark_options)"
                )
            lake = AlertLake(settings, lake_table)
            lake.open()  # creates the table: Spark merges into it through the same catalog rows
            lake.close()
            target = f"{catalog}.{lake_table}"

            def lake_write(alerts: pa.Table) -> None:
                spark.merge(target, alerts, key=["event_id"])

        with open_warehouse(settings) as wh, bus.producer() as producer:
            sink = AlertSink(wh, bus, producer, topic=topic, table=table, lake_write=lake_write)
            sink.stats.start_s = spark.start_s if own else 0.0
            began = time.monotonic()
            handle: StreamHandle = spark.keyed_kafka_stream(
                bootstrap_servers=settings.bus.bootstrap_servers, topic=topic, func=func, then=func.score,
                output_schema=OUTPUT_SCHEMA, sink=sink, trigger=trigger,
                checkpoint=checkpoint or settings.resolve(CHECKPOINT_DIR),
                max_offsets_per_trigger=max_offsets_per_trigger, name=f"payments_{topic}",
            )  # fmt: skip
            handle.finish(max_s if trigger != "available_now" else None)
            sink.stats.run_s = time.monotonic() - began
            sink.stats.progress = handle.progress
            return sink.stats
    finally:
        if own:
            spark.stop()


def detect_spark(
    settings: Settings,
    *,
    reference: Reference,
    models_path: Path | None = None,
    rules_path: Path | None = None,
    rules_only: bool = False,
    trigger: Trigger = "available_now",
    max_s: float | None = None,
) -> RunReport:
    """:func:`run_spark` as a run (``payments_spark_detect``), with the runner's row accounting."""
    from dotjoin.pipelines.payments.pipeline import default_models

    models = None if rules_only else (models_path or default_models(settings))
    params = {"rules_only": rules_only, "trigger": trigger}
    with start_run("payments_spark_detect", settings, params=params) as run:
        stats = run_spark(settings, reference=reference, models_path=models, rules_path=rules_path,
                          trigger=trigger, max_s=max_s)  # fmt: skip
        run.count(input=stats.consumed, output=stats.consumed - stats.dead_letters - stats.duplicates,
                  quarantined=stats.dead_letters, duplicates=stats.duplicates)  # fmt: skip
        run.check_accounting()
        run.metric("alerts", stats.alerts)
        run.metric("late", stats.late)
        run.metric("batches", stats.batches)
        run.metric("spark_start_s", round(stats.start_s, 1))
        run.metric("query_s", round(stats.run_s, 1))
        alerts_lineage(run, stats.alerts)
        with open_warehouse(settings) as wh:
            check_table(run, wh, ALERTS_CONTRACT)
    return run.report
