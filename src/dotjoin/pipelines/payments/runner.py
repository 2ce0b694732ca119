"""The embedded streaming runner: ``payments`` → detector → alerts (warehouse, lake, ``alerts`` topic).

One loop on the bus (the embedded log, or Kafka with a consumer group): consume a batch, parse it
(contract breaks go to ``payments.dlq`` with the error), score it, route late events to
``payments.late``, write alerts. Exactly-once effect across crashes, without transactions on the bus:

1. alerts are upserted into ``payment_alerts`` by ``event_id`` (a replayed batch rewrites the same rows),
   on a writer thread with group commit (:class:`~.sinks.AlertWriter`), drained before each checkpoint;
2. every ``checkpoint_s`` the cards changed since the last checkpoint and the next offset of every
   partition are written atomically (write, fsync, rename; :class:`CheckpointStore`), and only then are
   the offsets committed to the bus. The write happens in a forked child (as Redis's BGSAVE does): the
   fork is a copy-on-write snapshot taken in milliseconds, while pickling the state takes long enough
   to stop the stream; the offsets are committed when the child has exited cleanly. The same child
   first upserts the alerts raised since the last checkpoint into the lake's table (by ``event_id``),
   so a saved checkpoint implies the lake has every alert below its offsets;
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
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dotjoin.exceptions import TerminalError
from dotjoin.pipelines.payments.contract import (
    TOPIC_ALERTS,
    TOPIC_PAYMENTS,
    ContractError,
    Payment,
    parse_payment,
)
from dotjoin.pipelines.payments.detector import Alert, Counters, Detector
from dotjoin.pipelines.payments.monitor import Monitor
from dotjoin.pipelines.payments.sinks import ALERTS_TABLE, AlertLake, AlertWriter, alert_message, alerts_ddl
from dotjoin.platform.bus.base import Bus, Consumer, Message, Producer
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

TOPIC_LATE = TOPIC_PAYMENTS + ".late"
GROUP = "payments-detector"
CHECKPOINT_FORMAT = 1


@dataclass
class RunStats:
    consumed: int = 0
    skipped_redelivered: int = 0
    dead_letters: int = 0
    late: int = 0
    duplicates: int = 0
    alerts: int = 0
    checkpoints: int = 0


class CheckpointStore:
    """The detector's state on disk: a full ``base-<seq>.pickle`` and the ``delta-<seq>.pickle`` files
    written after it, each holding the cards changed since the previous checkpoint and the offsets.

    Only changed cards are written (a few thousand a second, not the whole state: pickling 50,000
    cards took 3 s); every ``compact_every`` checkpoints a new base replaces them. Files are written
    to a temporary name, fsynced and renamed, so a reader sees whole files only.
    """

    def __init__(self, directory: Path, *, compact_every: int = 120) -> None:
        self.directory = directory
        self.compact_every = compact_every
        self.seq = 0
        self._since_base = 0

    def _write(self, name: str, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        with tmp.open("wb") as fh:
            pickle.dump({"format": CHECKPOINT_FORMAT, **data}, fh, protocol=5)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.directory / name)

    def advance(self) -> bool:
        """Number the next checkpoint; True when it must be a base (the first, or compaction is due)."""
        self.seq += 1
        base = self.seq == 1 or self._since_base >= self.compact_every
        self._since_base = 0 if base else self._since_base + 1
        return base

    def full_next(self) -> None:
        """A delta was lost (its writer failed): the next checkpoint writes every card."""
        self._since_base = self.compact_every

    def save(
        self, detector: Detector, offsets: dict[tuple[str, int], int], cards: set[str], *, base: bool
    ) -> None:
        """Write checkpoint ``seq`` (see :meth:`advance`): every card, or only ``cards``."""
        data = {
            "cards": detector.card_states(None if base else cards),
            "offsets": offsets,
            "counters": asdict(detector.counters),
        }
        self._write(f"{'base' if base else 'delta'}-{self.seq:012d}.pickle", data)
        if base:  # everything older is in it
            for old in self.directory.glob("*.pickle"):
                if _seq(old) < self.seq:
                    old.unlink(missing_ok=True)

    def load(self, detector: Detector) -> dict[tuple[str, int], int] | None:
        """Restore the newest base and the deltas after it into ``detector``; the offsets, or None."""
        files = sorted(self.directory.glob("*.pickle"), key=_seq)
        bases = [f for f in files if f.name.startswith("base-")]
        if not bases:
            return None
        base_seq = _seq(bases[-1])
        deltas = [f for f in files if f.name.startswith("delta-") and _seq(f) > base_seq]
        offsets: dict[tuple[str, int], int] = {}
        for f in [bases[-1], *deltas]:
            data = pickle.loads(f.read_bytes())  # noqa: S301 - the runner's own checkpoint files
            if data.get("format") != CHECKPOINT_FORMAT:
                raise TerminalError(f"{f}: a checkpoint of another format; move {self.directory} away")
            detector.restore_cards(data["cards"])
            offsets = data["offsets"]
            detector.counters = Counters(**data["counters"])
            self.seq = _seq(f)
        self._since_base = self.seq - base_seq
        return offsets


def _seq(path: Path) -> int:
    return int(path.stem.split("-")[1])


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
            logger.info("restored %d cards from %s (checkpoint %d)", len(detector.card_states()), checkpoint,
                        self.store.seq)  # fmt: skip
        warehouse.execute(alerts_ddl(table))
        self.stats = RunStats()
        # a checkpoint being written: its pid, the messages it commits, how many pending lake alerts it writes
        self._child: tuple[int, list[Message], int] | None = None
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
        pending: dict[
            tuple[str, int], Message
        ] = {}  # the last message of each partition since the checkpoint
        with (
            self.bus.consumer(self.group, [self.topic]) as consumer,
            self.bus.producer() as producer,
            contextlib.ExitStack() as stack,
        ):
            self._writer = AlertWriter(self.wh, self.table)
            stack.callback(self._writer.close)
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
                    pending.update(((m.topic, m.partition), m) for m in messages)
                elif self.monitor is not None:
                    self._idle_monitor()
                self._reap(consumer)
                due = time.monotonic() - last_checkpoint >= self.checkpoint_s
                if pending and due and self._child is None:
                    self._checkpoint(consumer, producer, list(pending.values()))
                    pending, last_checkpoint = {}, time.monotonic()
                    if labels is not None and label_marks:  # the monitor's input: at most once is enough
                        labels.commit(list(label_marks.values()))
                        label_marks = {}
            self._reap(consumer, wait=True)
            if pending:
                self._checkpoint(consumer, producer, list(pending.values()), background=False)
            if self.monitor is not None:
                self._idle_monitor()
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

    def _checkpoint(
        self, consumer: Consumer, producer: Producer, messages: list[Message], *, background: bool = True
    ) -> None:
        self._writer.drain()  # the warehouse has every alert of the checkpointed batches,
        producer.flush()  # and the DLQ, late and alert messages are durable, before the checkpoint
        dirty, self.detector.dirty = self.detector.dirty, set()
        base = self.store.advance()
        to_lake = len(self._lake_pending)
        if background and hasattr(os, "fork"):
            # Everything alive now (the cards' state above all) leaves the cyclic collector's view: its
            # full collections walked every card's deque and dict — pauses of hundreds of ms in the
            # loop — and touching them in the child would copy the pages the fork shares. The state
            # holds no reference cycles; refcounting still frees what is dropped. (Python's gc docs.)
            gc.freeze()
            pid = os.fork()
            if pid == 0:  # the child: write the snapshot and leave without running any cleanup
                code = 1
                try:
                    self._save(dirty, base)
                    code = 0
                except BaseException:
                    logger.exception("the checkpoint writer failed")
                finally:
                    os._exit(code)
            self._child = (pid, messages, to_lake)
            return
        self._save(dirty, base)
        del self._lake_pending[:to_lake]
        consumer.commit(messages)
        self.stats.checkpoints += 1

    def _save(self, dirty: set[str], base: bool) -> None:
        """The lake's pending alerts first, then the state: a saved checkpoint implies the lake has them."""
        if self.lake is not None:
            self.lake.write(self._lake_pending)
        self.store.save(self.detector, self.offsets, dirty, base=base)

    def _reap(self, consumer: Consumer, *, wait: bool = False) -> None:
        """Commit the offsets of a finished background checkpoint (a failed one commits nothing)."""
        if self._child is None:
            return
        pid, messages, to_lake = self._child
        done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        if done == 0:
            return
        self._child = None
        if os.waitstatus_to_exitcode(status) != 0:
            # The cards of that delta are lost from the files: the next checkpoint must be a full base
            # (and writes the pending lake alerts again: an upsert, so a partial write is harmless).
            logger.error("the checkpoint writer (pid %d) failed; writing a full checkpoint next", pid)
            self.store.full_next()
            return
        del self._lake_pending[:to_lake]
        consumer.commit(messages)
        self.stats.checkpoints += 1
