"""The bus ABC: keyed event streams with consumer groups and explicit commits.

Backends: an embedded durable log (local profile) and Apache Kafka (stack). The contract both keep:
messages with the same key land in the same partition, in order; a consumer group's committed offset
survives a process restart; offsets are committed only when the caller says so (after its sink write),
so a crash re-delivers (at-least-once) and idempotent sinks make the effect exactly-once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0


class Producer(ABC):
    @abstractmethod
    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        """Queue one message; delivery is guaranteed once :meth:`flush` returns."""

    @abstractmethod
    def flush(self, timeout: float = 30.0) -> None:
        """Block until every queued message is durably written (Kafka: acked by all in-sync replicas)."""

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Consumer(ABC):
    @abstractmethod
    def poll(self, timeout: float = 1.0) -> Message | None:
        """The next message, or None when nothing arrived within ``timeout`` seconds."""

    @abstractmethod
    def consume(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages; an empty list when nothing arrived within ``timeout``."""

    @abstractmethod
    def commit(self, messages: Sequence[Message]) -> None:
        """Commit the group's offsets past ``messages`` (call after the sink write)."""

    def lag(self) -> int | None:
        """Messages in this consumer's partitions not yet delivered to it (None: not known)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    @abstractmethod
    def create_topic(self, name: str, *, partitions: int | None = None) -> None:
        """Create ``name`` if it does not exist (idempotent)."""

    @abstractmethod
    def delete_topic(self, name: str) -> None:
        """Delete ``name`` if it exists (idempotent)."""

    @abstractmethod
    def topic_partitions(self, name: str) -> int:
        """The number of partitions of ``name``; :class:`~dotjoin.exceptions.NotFoundError` if none."""

    @abstractmethod
    def producer(self) -> Producer: ...

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A consumer in ``group``; with no committed offset it starts from the earliest message."""

    def dead_letter(self, producer: Producer, message: Message, error: BaseException | str) -> None:
        """Send ``message`` to ``<topic>.dlq`` with the error and its origin in the headers."""
        headers = dict(message.headers)
        headers.update(
            {
                "dlq.error": str(error).encode(),
                "dlq.error_type": (
                    type(error).__name__ if isinstance(error, BaseException) else "str"
                ).encode(),
                "dlq.topic": message.topic.encode(),
                "dlq.partition": str(message.partition).encode(),
                "dlq.offset": str(message.offset).encode(),
            }
        )
        producer.produce(message.topic + DLQ_SUFFIX, message.value, key=message.key, headers=headers)
