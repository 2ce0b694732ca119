"""The Apache Kafka bus (stack profile), over confluent-kafka (librdkafka).

Producer: idempotent, ``acks=all``, lz4, batched (``linger.ms``/``batch.size``). Only *failed* deliveries
are reported by librdkafka (``delivery.report.only.error``), so a successful message costs no Python
callback; every failure is collected and raised by :meth:`KafkaProducer.flush`, which also raises when
messages are still undelivered at its timeout. Nothing is lost silently.

Consumer: ``enable.auto.commit=false``, ``auto.offset.reset=earliest``; :meth:`KafkaConsumer.commit`
commits ``max(offset) + 1`` per partition synchronously. A short session timeout (10 s) lets a
restarted consumer take over a killed one's partitions quickly.

Errors: broker unreachable at construction → :class:`ServiceUnavailableError` within ``connect_timeout``;
librdkafka errors become :class:`TransientError` (retriable, coordinator moves, rebalances) or
:class:`TerminalError` (fatal, authorisation, invalid requests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer as _RawConsumer
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka import Producer as _RawProducer
from confluent_kafka.admin import AdminClient, NewTopic

from dotjoin.config import Settings
from dotjoin.exceptions import (
    DotjoinError,
    NotFoundError,
    ServiceUnavailableError,
    TerminalError,
    TransientError,
)
from dotjoin.platform.bus.base import DLQ_SUFFIX, Bus, Consumer, Message, Producer
from dotjoin.platform.bus.embedded_log import EMPTY_HEADERS, make_message

logger = logging.getLogger(__name__)

#: Producer settings of the adapter (the benchmark's raw baseline uses the very same).
PRODUCER_CONFIG: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "delivery.report.only.error": True,
    "partitioner": "murmur2_random",  # Java clients' (Connect, Debezium, Spark) and the embedded log's
}
#: Consumer settings of the adapter (``group.id`` is added per consumer).
CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "enable.partition.eof": False,
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 2_000,
}
ADMIN_TIMEOUT_S = 30.0
POLL_EVERY = 10_000  # produce() serves librdkafka callbacks every this many messages

_TRANSIENT_CODES = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._QUEUE_FULL,
    KafkaError._WAIT_COORD,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._MAX_POLL_EXCEEDED,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.FENCED_MEMBER_EPOCH,
    KafkaError.STALE_MEMBER_EPOCH,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.NOT_COORDINATOR,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
}


def translate(error: KafkaError, context: str) -> DotjoinError:
    """A librdkafka error as a dotjoin error: transient when a retry can help, else terminal."""
    message = f"{context}: {error.name()}: {error.str()}"
    if error.fatal():
        return TerminalError(message + " (fatal: the client must be recreated)")
    if error.retriable() or error.code() in _TRANSIENT_CODES:
        return TransientError(message)
    return TerminalError(message)


def _error_of(exc: KafkaException) -> KafkaError:
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else KafkaError(KafkaError._FAIL, str(exc))


class KafkaBus(Bus):
    """Kafka topics through an AdminClient; producers and consumers share the bootstrap servers."""

    def __init__(self, bootstrap_servers: str, *, partitions: int = 4, connect_timeout: float = 5.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.default_partitions = partitions
        self._base: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "logger": logger}
        self._admin = AdminClient(self._base)
        self._dlq_ready: set[str] = set()
        try:
            self._admin.list_topics(timeout=connect_timeout)
        except KafkaException as exc:
            raise ServiceUnavailableError("Kafka", bootstrap_servers, _error_of(exc).str()) from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaBus:
        return cls(settings.bus.bootstrap_servers, partitions=settings.bus.partitions)

    def _topics(self) -> dict[str, Any]:
        try:
            return dict(self._admin.list_topics(timeout=10).topics)
        except KafkaException as exc:
            raise translate(_error_of(exc), "listing Kafka topics") from exc

    def _await_metadata(self, name: str, *, present: bool) -> None:
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while time.monotonic() < deadline:
            topic = self._topics().get(name)
            ready = topic is not None and topic.error is None and len(topic.partitions) > 0
            if ready == present:
                return
            time.sleep(0.1)
        logger.warning(
            "topic %s: metadata did not show it %s in time", name, "created" if present else "gone"
        )

    def create_topic(self, name: str, *, partitions: int | None = None) -> None:
        """Create ``name`` (replication: the broker default) and wait until its metadata is visible."""
        spec = NewTopic(name, num_partitions=partitions or self.default_partitions, replication_factor=-1)
        futures = self._admin.create_topics([spec], request_timeout=ADMIN_TIMEOUT_S)
        try:
            futures[name].result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            error = _error_of(exc)
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise translate(error, f"creating topic {name}") from exc
        else:
            logger.info("created Kafka topic %s", name)
        self._await_metadata(name, present=True)

    def delete_topic(self, name: str) -> None:
        """Delete ``name`` and wait until the metadata no longer shows it; a no-op when it is absent."""
        futures = self._admin.delete_topics([name], request_timeout=ADMIN_TIMEOUT_S)
        try:
            futures[name].result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            error = _error_of(exc)
            if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise translate(error, f"deleting topic {name}") from exc
            return
        self._dlq_ready.discard(name)
        self._await_metadata(name, present=False)

    def topic_partitions(self, name: str) -> int:
        topic = self._topics().get(name)
        if topic is None or topic.error is not None:
            raise NotFoundError(f"Kafka topic {name!r} does not exist at {self.bootstrap_servers}")
        return len(topic.partitions)

    def producer(self) -> KafkaProducer:
        return KafkaProducer({**self._base, **PRODUCER_CONFIG})

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        return KafkaConsumer({**self._base, **CONSUMER_CONFIG, "group.id": group}, topics)

    def dead_letter(self, producer: Producer, message: Message, error: BaseException | str) -> None:
        """As :meth:`Bus.dead_letter`, creating ``<topic>.dlq`` first (brokers may not auto-create)."""
        dlq = message.topic + DLQ_SUFFIX
        if dlq not in self._dlq_ready:
            self.create_topic(dlq)
            self._dlq_ready.add(dlq)
        super().dead_letter(producer, message, error)


class KafkaProducer(Producer):
    """A librdkafka producer whose delivery failures surface as exceptions on :meth:`flush`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._failures: list[tuple[KafkaError, str, int]] = []
        self._fatal: KafkaError | None = None
        self._producer = _RawProducer(
            {**config, "on_delivery": self._on_delivery, "error_cb": self._on_error}
        )
        self._produce = self._producer.produce
        self._count = 0

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failures.append((error, message.topic(), message.partition()))

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        logger.warning("Kafka producer: %s: %s", error.name(), error.str())

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        try:
            if headers:
                self._produce(topic, value, key, headers=list(headers.items()))
            else:
                self._produce(topic, value, key)
        except BufferError:
            self._produce_when_room(topic, value, key, headers)
        except KafkaException as exc:
            raise translate(_error_of(exc), f"producing to {topic}") from exc
        self._count += 1
        if self._count >= POLL_EVERY:
            self._count = 0
            self._producer.poll(0)
            self._raise_failures()

    def _produce_when_room(
        self, topic: str, value: bytes, key: bytes | None, headers: Mapping[str, bytes] | None
    ) -> None:
        """The local queue is full: serve delivery reports until librdkafka takes the message."""
        while True:
            self._producer.poll(0.05)
            self._raise_failures()
            try:
                self._produce(topic, value, key, headers=list(headers.items()) if headers else None)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                raise translate(_error_of(exc), f"producing to {topic}") from exc

    def _raise_failures(self) -> None:
        if self._fatal is not None:
            raise translate(self._fatal, "Kafka producer")
        if self._failures:
            failures, self._failures = self._failures, []
            error, topic, partition = failures[0]
            raise translate(
                error, f"{len(failures)} message(s) not delivered (first: {topic} partition {partition})"
            )

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued message to be acked by all in-sync replicas; raise if any was not."""
        remaining = self._producer.flush(timeout)
        self._raise_failures()
        if remaining:
            raise TransientError(f"{remaining} message(s) still undelivered after {timeout:g} s")

    def close(self) -> None:
        self.flush()


class KafkaConsumer(Consumer):
    """A librdkafka group consumer with explicit, synchronous commits."""

    def __init__(self, config: dict[str, Any], topics: Sequence[str]) -> None:
        self._group = str(config["group.id"])
        self._starts: dict[tuple[str, int], int] = {}  # committed offsets of partitions not read yet
        self._consumer = _RawConsumer(config)
        self._consumer.subscribe(list(topics))
        self._closed = False

    def _convert(self, raw: list[Any]) -> list[Message]:
        out: list[Message] = []
        append, new, empty = out.append, make_message, EMPTY_HEADERS
        for m in raw:
            error = m.error()
            if error is not None:
                self._on_message_error(error)
                continue
            headers = m.headers()
            append(
                new(
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    m.key(),
                    m.value(),
                    {k: b"" if v is None else v for k, v in headers} if headers else empty,
                    m.timestamp()[1],
                )
            )
        return out

    def _on_message_error(self, error: KafkaError) -> None:
        code = error.code()
        if code == KafkaError._PARTITION_EOF:
            return
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            logger.warning("group %s: %s (not created yet?)", self._group, error.str())
            return
        raise translate(error, f"consuming for group {self._group}")

    def consume(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        """What is fetched already (up to ``max_messages``) at once; else the first message to arrive
        within ``timeout`` and what came with it. (librdkafka's own ``consume`` waits for all
        ``max_messages`` or the whole timeout: a latency floor of ``timeout`` on a live stream.)"""
        try:
            raw = self._consumer.consume(num_messages=max_messages, timeout=0)
            if not raw:
                raw = self._consumer.consume(num_messages=1, timeout=timeout)
                if raw and max_messages > 1:
                    raw += self._consumer.consume(num_messages=max_messages - 1, timeout=0)
        except KafkaException as exc:
            raise translate(_error_of(exc), f"consuming for group {self._group}") from exc
        return self._convert(raw) if raw else []

    def poll(self, timeout: float = 1.0) -> Message | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self._consumer.poll(max(0.0, deadline - time.monotonic()))
            except KafkaException as exc:
                raise translate(_error_of(exc), f"consuming for group {self._group}") from exc
            if raw is None:
                return None
            messages = self._convert([raw])
            if messages:
                return messages[0]
            if time.monotonic() >= deadline:
                return None

    def commit(self, messages: Sequence[Message]) -> None:
        """Synchronously commit ``max(offset) + 1`` per partition of ``messages``."""
        offsets: dict[tuple[str, int], int] = {}
        for m in messages:
            key = (m.topic, m.partition)
            if m.offset + 1 > offsets.get(key, -1):
                offsets[key] = m.offset + 1
        if not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            result = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            raise translate(_error_of(exc), f"committing offsets for group {self._group}") from exc
        for tp in result or []:
            if tp.error is not None:
                raise translate(tp.error, f"committing {tp.topic}[{tp.partition}] for group {self._group}")

    def lag(self) -> int | None:
        """High watermark minus position, summed over the assigned partitions, from the watermarks
        librdkafka keeps from its fetch responses (asking the broker waits behind the fetch long-poll:
        ~0.5 s a partition when caught up). A partition nothing was read from yet counts from the
        group's committed offset (asked once), else from its low watermark; one not fetched yet, 0."""
        try:
            positions = self._consumer.position(self._consumer.assignment())
            unread = [
                tp for tp in positions if tp.offset < 0 and (tp.topic, tp.partition) not in self._starts
            ]
            if unread:
                for tp in self._consumer.committed(unread, timeout=5):
                    self._starts[(tp.topic, tp.partition)] = tp.offset
            total = 0
            for tp in positions:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    continue
                at = tp.offset if tp.offset >= 0 else self._starts.get((tp.topic, tp.partition), -1)
                total += max(0, high - (at if at >= 0 else max(low, 0)))
        except KafkaException:
            return None
        return total

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()
