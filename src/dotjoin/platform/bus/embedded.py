"""The embedded durable log: the local profile's bus, a directory of append-only segment files.

Layout under ``settings.resolve(settings.bus.path)``::

    topics/<topic>/meta.json           {"name": ..., "partitions": N, "partitioner": "murmur2"}
    topics/<topic>/<p>.log, <p>.index  one segment and its sparse index per partition (embedded_log.py)
    groups/<group>/<topic>.offsets     committed offsets {partition: [offset, byte position]}
    groups/<group>/<topic>.lock        held (flock) by the consumer that owns the topic for the group

Partitioning: Kafka's default, ``toPositive(murmur2(key)) % partitions`` (:mod:`.partitioner`; the Kafka
backend's ``murmur2_random`` is the same), so a key lands on the same partition number in the embedded
log and in a Kafka topic of as many partitions; keyless messages round-robin. Topics created before the
switch (no ``partitioner`` in ``meta.json``) keep ``crc32(key) % partitions``, so their keys stay put.

Producers buffer records per partition and append one batch per write (every :data:`BATCH_BYTES` and on
:meth:`EmbeddedProducer.flush`, which also fsyncs); writers in any number of processes serialise on
``flock``. Records become visible to consumers when their batch is written, durable when ``flush``
returns.

Consumer groups: one consumer of a group owns *all* partitions of a topic, by holding an exclusive
``flock`` on ``groups/<group>/<topic>.lock``. Other consumers of the group (in this process or another)
receive nothing from that topic and take over, from the committed offsets, as soon as the owner closes
or dies — the kernel drops the lock of a killed process. This keeps delivery exactly as in Kafka
(at-least-once, committed offsets survive restarts) without a group coordinator; it does not spread
one topic's partitions over several consumers.

Not thread-safe: one producer or consumer per thread.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError, NotFoundError, TerminalError
from dotjoin.platform.bus.base import Bus, Consumer, Message, Producer
from dotjoin.platform.bus.embedded_log import (
    RECORD,
    PartitionReader,
    PartitionWriter,
    encode_record,
)
from dotjoin.platform.bus.partitioner import Hash, KeyPartitioner

logger = logging.getLogger(__name__)

BATCH_BYTES = 1024 * 1024
CLAIM_RETRY_S = 0.2
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name) or name in {".", ".."}:
        raise ConfigError(f"invalid {kind} name {name!r}: use 1-249 characters of [A-Za-z0-9._-]")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (temp file, fsync, rename, fsync dir)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class EmbeddedBus(Bus):
    """The bus over a local directory. Cheap to construct; holds no open files itself."""

    def __init__(self, root: Path, *, partitions: int = 4) -> None:
        self.root = Path(root)
        self.default_partitions = partitions
        for sub in ("topics", "groups", "staging"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedBus:
        return cls(settings.resolve(settings.bus.path), partitions=settings.bus.partitions)

    def topic_dir(self, name: str) -> Path:
        return self.root / "topics" / _check_name("topic", name)

    def create_topic(self, name: str, *, partitions: int | None = None) -> None:
        """Create ``name`` atomically (staged directory + rename); a no-op when it exists."""
        target = self.topic_dir(name)
        if (target / "meta.json").exists():
            return
        count = partitions or self.default_partitions
        if count < 1:
            raise ConfigError(f"a topic needs at least one partition, not {count}")
        staged = self.root / "staging" / uuid.uuid4().hex
        staged.mkdir()
        for p in range(count):
            for suffix in (".log", ".index"):
                (staged / f"{p}{suffix}").touch()
        meta = {"name": name, "partitions": count, "partitioner": "murmur2"}
        (staged / "meta.json").write_text(json.dumps(meta))
        _fsync_dir(staged)
        try:
            os.rename(staged, target)
        except OSError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            return
        _fsync_dir(target.parent)
        logger.info("created topic %s with %d partitions in %s", name, count, self.root)

    def delete_topic(self, name: str) -> None:
        """Delete ``name`` and every group's committed offsets for it; a no-op when it does not exist."""
        target = self.topic_dir(name)
        trash = self.root / "staging" / f"deleted-{uuid.uuid4().hex}"
        try:
            os.rename(target, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)
        for offsets in (self.root / "groups").glob(f"*/{name}.offsets"):
            offsets.unlink(missing_ok=True)
        logger.info("deleted topic %s", name)

    def topic_partitions(self, name: str) -> int:
        return int(self._meta(name)["partitions"])

    def topic_partitioner(self, name: str) -> Hash:
        """How ``name`` places keys: ``murmur2``, or ``crc32`` for a topic created before the switch."""
        return "murmur2" if self._meta(name).get("partitioner") == "murmur2" else "crc32"

    def _meta(self, name: str) -> dict[str, Any]:
        try:
            meta: dict[str, Any] = json.loads((self.topic_dir(name) / "meta.json").read_text())
        except FileNotFoundError:
            raise NotFoundError(f"topic {name!r} does not exist in {self.root}") from None
        return meta

    def producer(self) -> EmbeddedProducer:
        return EmbeddedProducer(self)

    def consumer(self, group: str, topics: Sequence[str]) -> EmbeddedConsumer:
        return EmbeddedConsumer(self, group, topics)


class _TopicOut:
    """A producer's state for one topic: writers and pending batches per partition."""

    __slots__ = ("bufs", "counts", "n", "placer", "rr", "writers")

    def __init__(self, directory: Path, partitions: int, hash: Hash) -> None:
        self.n = partitions
        self.placer = KeyPartitioner(partitions, hash=hash)
        self.rr = 0
        self.bufs = [bytearray() for _ in range(partitions)]
        self.counts = [0] * partitions
        self.writers = [
            PartitionWriter(str(directory / f"{p}.log"), str(directory / f"{p}.index"))
            for p in range(partitions)
        ]


class EmbeddedProducer(Producer):
    """Buffers records per partition; appends a batch every 1 MiB; ``flush`` writes and fsyncs."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._topics: dict[str, _TopicOut] = {}

    def _topic(self, topic: str) -> _TopicOut:
        directory = self._bus.topic_dir(topic)
        if not (directory / "meta.json").exists():
            logger.info("topic %s does not exist; creating it (like Kafka's auto-create)", topic)
            self._bus.create_topic(topic)
        bus = self._bus
        out = self._topics[topic] = _TopicOut(
            directory, bus.topic_partitions(topic), bus.topic_partitioner(topic)
        )
        return out

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        t = self._topics.get(topic) or self._topic(topic)
        if key is None:
            p = t.rr
            t.rr = (p + 1) % t.n
        else:
            known = t.placer.known.get(key)
            p = t.placer.place(key) if known is None else known
        buf = t.bufs[p]
        ts = time.time_ns() // 1_000_000
        if headers:
            encode_record(buf, ts, key, value, dict(headers))
        elif key is None:
            buf += RECORD.pack(ts, -1, len(value), 0)
            buf += value
        else:
            buf += RECORD.pack(ts, len(key), len(value), 0)
            buf += key
            buf += value
        t.counts[p] += 1
        if len(buf) >= BATCH_BYTES:
            self._write(t, p)

    def _write(self, t: _TopicOut, p: int) -> None:
        t.writers[p].append(t.bufs[p], t.counts[p])
        t.bufs[p] = bytearray()
        t.counts[p] = 0

    def flush(self, timeout: float = 30.0) -> None:
        """Write every pending batch and fsync the partitions written since the last flush."""
        for t in self._topics.values():
            for p in range(t.n):
                if t.counts[p]:
                    self._write(t, p)
            for writer in t.writers:
                writer.sync()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for t in self._topics.values():
                for writer in t.writers:
                    writer.close()
            self._topics.clear()


class _Claim:
    """A consumer's ownership of one topic for its group: the lock, the readers, the committed offsets."""

    def __init__(self, bus: EmbeddedBus, group: str, topic: str, lock_fd: int) -> None:
        self.lock_fd = lock_fd
        self.path = bus.root / "groups" / group / f"{topic}.offsets"
        directory = bus.topic_dir(topic)
        partitions = bus.topic_partitions(topic)
        self.committed: dict[int, tuple[int, int | None]] = {}
        if self.path.exists():
            raw = json.loads(self.path.read_text())
            self.committed = {
                int(p): (int(o), None if pos is None else int(pos)) for p, (o, pos) in raw.items()
            }
        self.readers = [
            PartitionReader(topic, p, str(directory / f"{p}.log"), str(directory / f"{p}.index"))
            for p in range(partitions)
        ]
        for reader in self.readers:
            offset, pos = self.committed.get(reader.partition, (0, 0))
            reader.seek(offset, pos)

    def commit(self, offsets: Mapping[int, int]) -> None:
        for partition, offset in offsets.items():
            if not 0 <= partition < len(self.readers):
                raise TerminalError(f"cannot commit partition {partition}: the topic has no such partition")
            pos = self.readers[partition].position_for(offset)
            previous = self.committed.get(partition)
            if pos is None and previous is not None and previous[0] <= offset:
                pos = previous[1]
            self.committed[partition] = (offset, pos)
        data = {str(p): [o, pos] for p, (o, pos) in sorted(self.committed.items())}
        _atomic_write(self.path, json.dumps(data).encode())

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        os.close(self.lock_fd)  # releases the flock


class EmbeddedConsumer(Consumer):
    """A group member that owns every partition of each topic it could claim (see the module doc)."""

    def __init__(self, bus: EmbeddedBus, group: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._group = _check_name("group", group)
        self._topics = [_check_name("topic", t) for t in topics]
        self._claims: dict[str, _Claim] = {}
        self._next_claim = 0.0
        self._rotation = 0
        self._closed = False
        (bus.root / "groups" / group).mkdir(parents=True, exist_ok=True)
        self._try_claims()

    def _try_claims(self) -> None:
        self._next_claim = time.monotonic() + CLAIM_RETRY_S
        for topic in self._topics:
            if topic in self._claims or not (self._bus.topic_dir(topic) / "meta.json").exists():
                continue
            lock = self._bus.root / "groups" / self._group / f"{topic}.lock"
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                self._claims[topic] = _Claim(self._bus, self._group, topic, fd)
            except BaseException:
                os.close(fd)
                raise
            logger.info("group %s: this consumer owns all partitions of %s", self._group, topic)

    @property
    def assignment(self) -> list[tuple[str, int]]:
        """The ``(topic, partition)`` pairs this consumer owns now."""
        return [(t, r.partition) for t, c in self._claims.items() for r in c.readers]

    def _read(self, limit: int) -> list[Message]:
        out: list[Message] = []
        readers = [r for c in self._claims.values() for r in c.readers]
        if not readers:
            return out
        self._rotation = (self._rotation + 1) % len(readers)
        for reader in readers[self._rotation :] + readers[: self._rotation]:
            reader.read(out, limit)
            if len(out) >= limit:
                break
        return out

    def consume(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages; returns as soon as any are available, else after ``timeout``."""
        if self._closed:
            raise TerminalError("consume() on a closed consumer")
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if len(self._claims) < len(self._topics) and time.monotonic() >= self._next_claim:
                self._try_claims()
            out = self._read(max_messages)
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    def poll(self, timeout: float = 1.0) -> Message | None:
        messages = self.consume(1, timeout)
        return messages[0] if messages else None

    def commit(self, messages: Sequence[Message]) -> None:
        """Durably commit, per partition, the offset after the highest offset in ``messages``."""
        per_topic: dict[str, dict[int, int]] = {}
        for m in messages:
            offsets = per_topic.setdefault(m.topic, {})
            if m.offset + 1 > offsets.get(m.partition, -1):
                offsets[m.partition] = m.offset + 1
        for topic, offsets in per_topic.items():
            claim = self._claims.get(topic)
            if claim is None:
                raise TerminalError(
                    f"group {self._group} cannot commit {topic}: this consumer does not own the topic"
                )
            claim.commit(offsets)

    def lag(self) -> int | None:
        return sum(r.lag() for c in self._claims.values() for r in c.readers)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for claim in self._claims.values():
            claim.close()
        self._claims.clear()
