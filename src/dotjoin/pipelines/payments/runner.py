"""The embedded streaming runner: ``payments`` → detector → alerts (warehouse, lake, ``alerts`` topic).

One loop on the bus (the embedded log, or Kafka with a consumer group): consume a batch, parse it
(contract breaks go to ``payments.dlq`` with the error), score it, route late events to
``payments.late``, write alerts. Exactly-once effect across crashes, without transactions on the bus:

1. alerts are upserted into ``payment_alerts`` by ``event_id`` (a replayed batch rewrites the same rows),
   on a writer thread with group commit (:class:`~.sinks.AlertWriter`), drained before each checkpoint;
2. every ``checkpoint_s`` the cards changed since the last checkpoint and the next offset of every
   partition are written atomically (write, fsync, rename; :class:`~.checkpoint.CheckpointStore`), and
   only then are the offsets committed to the bus. The loop encodes the state of the cards each batch
   changed (~2.5 µs a card), so a checkpoint only hands those bytes to a thread, which
   first upserts the alerts raised since the last checkpoint into the lake's table (by ``event_id``)
   — a saved checkpoint implies the lake has every alert below its offsets — then writes the file;
   the offsets are committed when the thread has succeeded. Compaction into a full base runs in a
   separate process, from the files;
3. on start the runner loads the checkpoint and skips re-delivered messages below its offsets (a crash
   between 2's rename and the commit re-delivers them).

So after ``kill -9`` the state is the checkpoint's, the messages after it are re-read, and the alerts
table and the lake end exactly as an uninterrupted run leaves them. Alert messages on the topic are
at-least-once (keyed by event id, so a consumer can deduplicate).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dotjoin.pipelines.payments.checkpoint import CheckpointStore, Offsets
from dotjoin.pipelines.payments.contract import (
    TOPIC_ALERTS,
    TOPIC_PAYMENTS,
    ContractError,
    Payment,
    parse_payment,
)
from dotjoin.pipelines.payments.detector import Alert, Detector, encode_states
from dotjoin.pipelines.payments.monitor import Monitor
from dotjoin.pipelines.payments.sinks import ALERTS_TABLE, AlertLake, AlertWriter, alert_message, alerts_ddl
from dotjoin.platform.bus.base import Bus, Consumer, Message, Producer
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

TOPIC_LATE = TOPIC_PAYMENTS + ".late"
GROUP = "payments-detector"


@dataclass
class _Checkpoint:
    """One checkpoint being written by its thread."""

    seq: int
    cards: list[bytes]  # the encoded chunks of the changed cards (detector.encode_states)
    offsets: Offsets
    counters: dict[str, Any]
    messages: list[Message]  # the last message of each partition: committed when the file is saved
    to_lake: int  # how many of the pending lake alerts it writes
    thread: threading.Thread | None = None
    error: BaseException | None = field(default=None, repr=False)


@dataclass
class RunStats:
    consumed: int = 0
    skipped_redelivered: int = 0
    dead_letters: int = 0
    late: int = 0
    duplicates: int = 0
    alerts: int = 0
    checkpoints: int = 0


class Runner:
    """Score the ``payments`` topic until ``stop()`` says so (or the topic stays idle).

    Args:
        bus: the bus (embedded log or Kafka).
        warehouse: where ``payment_alerts`` is upserted.
        detector: a fresh detector, used when there is no checkpoint.
        checkpoint: the checkpoint directory (state + offsets; :class:`CheckpointStore`).
        checkpoint_s: seconds between checkpoints (and offset commits).
        monitor: Prometheus metrics and the dashboard's status file (optional).
        topic: the payments topic (late events go to ``<topic>.late``, dead letters to ``<topic>.dlq``).
        table: the warehouse table of the alerts.
        lake: the lake's alert table (optional), written at each checkpoint by the checkpoint writer —
            before the checkpoint itself, so the lake holds every alert below the committed offsets.
        labels_topic: the ground-truth labels (optional): the monitor's precision and recall.
        batch_size: most messages per batch. A consume returns what is there, so batches are small
            while the runner keeps up and grow with a backlog, where the per-batch costs (one model
            call, one warehouse statement) are shared by more events.
    """

    def __init__(
        self,
        bus: Bus,
        warehouse: Warehouse,
        detector: Detector,
        *,
        checkpoint: Path,
        checkpoint_s: float = 2.0,
        group: str = GROUP,
        monitor: Monitor | None = None,
        topic: str = TOPIC_PAYMENTS,
        table: str = ALERTS_TABLE,
        lake: AlertLake | None = None,
        labels_topic: str | None = None,
        batch_size: int = 2000,
    ) -> None:
        self.bus, self.wh, self.checkpoint, self.checkpoint_s = bus, warehouse, checkpoint, checkpoint_s
        self.group, self.monitor, self.topic, self.table = group, monitor, topic, table
        self.lake, self.labels_topic, self.batch_size = lake, labels_topic, batch_size
        self._lake_pending: list[Alert] = []  # alerts not yet in the lake (the next checkpoint writes them)
        self.store = CheckpointStore(checkpoint)
        self.detector = detector
        restored = self.store.load(detector)
        self.offsets = restored or {}
        if restored is not None:
            logger.info("restored %d cards from %s (checkpoint %d)", len(detector.state.cards), checkpoint,
                        self.store.seq)  # fmt: skip
        warehouse.execute(alerts_ddl(table))
        self.stats = RunStats()
        self._delta: list[bytes] = []  # the state of the cards changed since the last checkpoint, encoded
        self._marks: dict[tuple[str, int], Message] = {}  # the last message of each partition since then
        self._saving: _Checkpoint | None = None  # the checkpoint its thread is writing
        self._compactor: subprocess.Popen[bytes] | None = None
        self._writer: AlertWriter  # the warehouse writer thread of a run (made by run())
        for name in (topic, TOPIC_ALERTS, topic + ".late", topic + ".dlq"):
            bus.create_topic(name)

    def run(
        self,
        *,
        idle_s: float | None = None,
        max_s: float | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> RunStats:
        """Consume until ``stop()`` is true, the topic was idle ``idle_s`` seconds, or ``max_s`` passed."""
        began = last_message = last_checkpoint = time.monotonic()
        with (
            self.bus.consumer(self.group, [self.topic]) as consumer,
            self.bus.producer() as producer,
            contextlib.ExitStack() as stack,
        ):
            self._writer = AlertWriter(self.wh, self.table)
            stack.callback(self._writer.close)
            if gc.isenabled():  # no cyclic collections while the loop runs (see _checkpoint)
                gc.disable()
                stack.callback(gc.enable)
            labels = None
            label_marks: dict[tuple[str, int], Message] = {}
            if self.labels_topic is not None and self.monitor is not None:
                labels = stack.enter_context(self.bus.consumer(self.group + "-labels", [self.labels_topic]))
            while True:
                now = time.monotonic()
                if (stop and stop()) or (max_s is not None and now - began >= max_s):
                    break
                if idle_s is not None and now - last_message >= idle_s:
                    break
                if labels is not None and self.monitor is not None:
                    got = labels.consume(2000, timeout=0)
                    self.monitor.labels([m.value for m in got])
                    label_marks.update(((m.topic, m.partition), m) for m in got)
                messages = consumer.consume(self.batch_size, timeout=0.1)
                if messages:
                    last_message = time.monotonic()
                    self._batch(messages, producer, consumer)
                    self._marks.update(((m.topic, m.partition), m) for m in messages)
                elif self.monitor is not None:
                    self._idle_monitor()
                self._reap(consumer)
                due = time.monotonic() - last_checkpoint >= self.checkpoint_s
                if self._marks and due and self._saving is None:
                    self._checkpoint(consumer, producer)
                    last_checkpoint = time.monotonic()
                    if labels is not None and label_marks:  # the monitor's input: at most once is enough
                        labels.commit(list(label_marks.values()))
                        label_marks = {}
            self._reap(consumer, wait=True)
            if self._marks:
                self._checkpoint(consumer, producer, background=False)
            if self.monitor is not None:
                self._idle_monitor()
        if self._compactor is not None:
            self._compactor.wait()
        return self.stats

    def _idle_monitor(self) -> None:
        """No batch: the monitor gets the latencies of the alerts committed since the last one."""
        assert self.monitor is not None
        latencies = self._writer.latencies()
        if latencies:
            self.monitor.batch(
                scored=0, alerts=(), latencies_s=latencies, dead_letters=0, late=0, duplicates=0
            )
        else:
            self.monitor.tick()

    def _batch(self, messages: list[Message], producer: Producer, consumer: Consumer) -> None:
        s = self.stats
        payments: list[Payment] = []
        origin: list[Message] = []
        skipped = 0
        for m in messages:
            if m.offset < self.offsets.get((m.topic, m.partition), 0):
                s.skipped_redelivered += 1
                skipped += 1
                continue
            self.offsets[(m.topic, m.partition)] = m.offset + 1
            s.consumed += 1
            try:
                payments.append(parse_payment(m.value))
                origin.append(m)
            except ContractError as exc:
                self.bus.dead_letter(producer, m, exc)
                s.dead_letters += 1
        result = self.detector.process(payments)
        changed, self.detector.dirty = self.detector.dirty, set()
        if changed:  # encoded here, batch by batch: evenly spread, and nothing left to the checkpoint
            self._delta.append(encode_states(self.detector.card_states(changed)))
        for i in result.late:
            m = origin[i]
            producer.produce(self.topic + ".late", m.value, key=m.key, headers=dict(m.headers))
        s.late += len(result.late)
        s.duplicates += result.duplicates
        if result.alerts:
            by_id = {p.event_id: m for p, m in zip(payments, origin, strict=True)}
            self._writer.put(result.alerts, [by_id[a.event_id].timestamp_ms or 0 for a in result.alerts])
            if self.lake is not None:
                self._lake_pending.extend(result.alerts)
            for alert in result.alerts:
                producer.produce(TOPIC_ALERTS, alert_message(alert), key=alert.event_id.encode())
            s.alerts += len(result.alerts)
        if self.monitor is not None:
            self.monitor.batch(  # latencies: of the alerts the writer committed since the last batch
                scored=result.scored, alerts=result.alerts, latencies_s=self._writer.latencies(),
                dead_letters=len(messages) - len(payments) - skipped, late=len(result.late),
                duplicates=result.duplicates, lag=consumer.lag(),
            )  # fmt: skip

    def _checkpoint(self, consumer: Consumer, producer: Producer, *, background: bool = True) -> None:
        self._writer.drain()  # the warehouse has every alert of the checkpointed batches,
        producer.flush()  # and the DLQ, late and alert messages are durable, before the checkpoint
        counters = asdict(self.detector.counters)
        job = _Checkpoint(self.store.advance(), self._delta, dict(self.offsets), counters,
                          list(self._marks.values()), len(self._lake_pending))  # fmt: skip
        self._delta, self._marks = [], {}
        # The cyclic collector is off while the loop runs (run()), and everything alive now (the cards'
        # state above all) leaves its view for good: its collections scanned every new card's lists and
        # dicts (half the cost of the features on a stream of new cards: 31 against 15 µs an event,
        # measured) and its full ones walked every card (pauses of hundreds of ms). The loop makes next to
        # no cycles (10 unreachable objects after 800,000 events); refcounting frees all the rest.
        gc.freeze()
        if background:
            job.thread = threading.Thread(target=self._save, args=(job,), name="checkpoint", daemon=True)
            self._saving = job
            job.thread.start()
            return
        self._save(job)
        self._saved(job, consumer)

    def _save(self, job: _Checkpoint) -> None:
        """The lake's pending alerts first, then the state: a saved checkpoint implies the lake has them."""
        try:
            if self.lake is not None:
                self.lake.write(self._lake_pending[: job.to_lake])
            self.store.write(job.seq, job.cards, job.offsets, job.counters)
        except BaseException as exc:  # the stream's thread decides (see _saved)
            job.error = exc

    def _reap(self, consumer: Consumer, *, wait: bool = False) -> None:
        """Finish a background checkpoint whose thread is done (or wait for it)."""
        job = self._saving
        if job is None or job.thread is None or (job.thread.is_alive() and not wait):
            return
        job.thread.join()
        self._saving = None
        self._saved(job, consumer)

    def _saved(self, job: _Checkpoint, consumer: Consumer) -> None:
        """Commit the offsets of a saved checkpoint; a failed one commits nothing and its cards go
        into the next (its lake alerts stay pending: an upsert, so a partial write is harmless)."""
        if job.error is not None:
            logger.error("checkpoint %d failed (%s); its cards go into the next one", job.seq, job.error)
            self._delta = job.cards + self._delta  # in order: the newer copies win
            self._marks = {(m.topic, m.partition): m for m in job.messages} | self._marks  # retried
            return
        del self._lake_pending[: job.to_lake]
        consumer.commit(job.messages)
        self.stats.checkpoints += 1
        if self.store.compaction_due() and (self._compactor is None or self._compactor.poll() is not None):
            if self._compactor is not None and self._compactor.returncode != 0:
                logger.warning("checkpoint compaction failed (exit %s); retrying", self._compactor.returncode)
            self._compactor = self.store.start_compaction(job.seq)
