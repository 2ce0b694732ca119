"""The Kafka bus on the real broker: ordering, partitions, groups, DLQ, delivery failures, admin."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import NotFoundError, ServiceUnavailableError, TerminalError
from dotjoin.platform.bus import DLQ_SUFFIX, Message, open_bus
from dotjoin.platform.bus.kafka_backend import KafkaBus
from dotjoin.platform.bus.partitioner import partition_for

JOIN_TIMEOUT = 20.0  # a group's first assignment takes a few seconds


@pytest.fixture
def bus(kafka: Settings) -> KafkaBus:
    opened = open_bus(kafka)
    assert isinstance(opened, KafkaBus)
    return opened


@pytest.fixture
def topic(bus: KafkaBus, unique_name: str) -> Iterator[str]:
    bus.create_topic(unique_name, partitions=4)
    yield unique_name
    bus.delete_topic(unique_name)
    bus.delete_topic(unique_name + DLQ_SUFFIX)


def _read(bus: KafkaBus, group: str, topic: str, expect: int, *, commit: bool = True) -> list[Message]:
    """Consume until ``expect`` messages arrived (or the join timeout passed), then close."""
    out: list[Message] = []
    deadline = time.monotonic() + JOIN_TIMEOUT
    with bus.consumer(group, [topic]) as consumer:
        while len(out) < expect and time.monotonic() < deadline:
            batch = consumer.consume(min(1000, expect - len(out)), timeout=0.5)
            out.extend(batch)
            if commit:
                consumer.commit(batch)
    return out


def test_unreachable_broker_is_a_quick_service_unavailable_error(tmp_path: Path) -> None:
    settings = load_settings(
        profile="stack", env={"DOTJOIN__BUS__BOOTSTRAP_SERVERS": "127.0.0.1:1"}, cwd=tmp_path
    )
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match=r"Kafka is not reachable at 127\.0\.0\.1:1"):
        open_bus(settings)
    assert time.monotonic() - started < 10


@pytest.mark.kafka
def test_roundtrip_keeps_key_value_headers_and_timestamp(bus: KafkaBus, topic: str, unique_name: str) -> None:
    before = time.time() * 1000
    with bus.producer() as producer:
        producer.produce(topic, b"v1", key=b"k1", headers={"trace": b"abc", "empty": b""})
        producer.produce(topic, b"v2", key=None)
    got = sorted(_read(bus, unique_name, topic, 2), key=lambda m: m.value)
    assert [(m.key, m.value) for m in got] == [(b"k1", b"v1"), (None, b"v2")]
    assert dict(got[0].headers) == {"trace": b"abc", "empty": b""}
    assert dict(got[1].headers) == {}
    assert all(before - 1 <= m.timestamp_ms <= time.time() * 1000 + 1 for m in got)


@pytest.mark.kafka
def test_the_consumer_reports_its_lag_from_the_brokers_watermarks(
    bus: KafkaBus, topic: str, unique_name: str
) -> None:
    with bus.producer() as producer:
        for i in range(200):
            producer.produce(topic, b"v", key=str(i).encode())
    with bus.consumer(unique_name, [topic]) as consumer:
        got: list[Message] = []
        deadline = time.monotonic() + JOIN_TIMEOUT
        while not got and time.monotonic() < deadline:
            got = consumer.consume(50, timeout=0.5)
        time.sleep(1.0)  # every assigned partition fetched once: its high watermark known
        assert got and consumer.lag() == 200 - len(got)
        while len(got) < 200 and time.monotonic() < deadline:
            got += consumer.consume(1000, timeout=0.5)
        assert len(got) == 200 and consumer.lag() == 0


@pytest.mark.kafka
def test_messages_of_one_key_stay_in_order_in_one_stable_partition(
    bus: KafkaBus, topic: str, unique_name: str
) -> None:
    keys = [f"user-{i}".encode() for i in range(20)]
    for _ in range(2):  # two producers: the key → partition mapping does not depend on the producer
        with bus.producer() as producer:
            for seq in range(2000):
                producer.produce(topic, str(seq).encode(), key=keys[seq % len(keys)])
    got = _read(bus, unique_name, topic, 4000)
    assert len(got) == 4000
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    partitions: dict[bytes | None, set[int]] = defaultdict(set)
    for m in sorted(got, key=lambda m: (m.partition, m.offset)):
        by_key[m.key].append(int(m.value))
        partitions[m.key].add(m.partition)
    for key, seqs in by_key.items():  # in log order: each producer's sequence for the key, in order
        assert key is not None
        assert seqs == list(range(int(key.split(b"-")[1]), 2000, 20)) * 2
    assert all(len(p) == 1 for p in partitions.values())
    assert len({next(iter(p)) for p in partitions.values()}) > 1
    assert bus.topic_partitions(topic) == 4


@pytest.mark.kafka
@pytest.mark.parametrize("partitions", [3, 8])
def test_a_key_lands_on_the_same_partition_in_kafka_and_in_the_embedded_log(
    bus: KafkaBus, unique_name: str, tmp_path: Path, partitions: int
) -> None:
    # Lengths 0..40 (every murmur2 tail), binary keys, and the librdkafka/Kafka test-vector keys.
    keys = [b"", b"21", b"foobar", b"kafka", b"\x00\xff\x80", *(f"user-{i}".encode() for i in range(400))]
    keys += [bytes(range(n)) for n in range(1, 41)]
    bus.create_topic(unique_name, partitions=partitions)
    try:
        with bus.producer() as producer:
            for i, key in enumerate(keys):
                producer.produce(unique_name, str(i).encode(), key=key)
        in_kafka = {int(m.value): m.partition for m in _read(bus, unique_name, unique_name, len(keys))}
    finally:
        bus.delete_topic(unique_name)
    embedded = open_bus(load_settings(profile="local", cwd=tmp_path, env={}))
    embedded.create_topic(unique_name, partitions=partitions)
    with embedded.producer() as producer:
        for i, key in enumerate(keys):
            producer.produce(unique_name, str(i).encode(), key=key)
    in_embedded: dict[int, int] = {}
    with embedded.consumer("g", [unique_name]) as consumer:
        while batch := consumer.consume(1000, timeout=0.2):
            in_embedded.update((int(m.value), m.partition) for m in batch)
    assert len(in_kafka) == len(in_embedded) == len(keys)
    assert in_kafka == in_embedded == {i: partition_for(key, partitions) for i, key in enumerate(keys)}
    assert len(set(in_kafka.values())) == partitions


@pytest.mark.kafka
def test_group_resumes_from_committed_offsets_and_groups_are_independent(
    bus: KafkaBus, topic: str, unique_name: str
) -> None:
    with bus.producer() as producer:
        for i in range(1000):
            producer.produce(topic, str(i).encode(), key=str(i % 7).encode())
    first = _read(bus, unique_name, topic, 300)
    uncommitted = _read(bus, unique_name, topic, 200, commit=False)
    rest = _read(bus, unique_name, topic, 700)
    assert len(first) == 300 and len(uncommitted) == 200 and len(rest) == 700
    assert {m.value for m in first} | {m.value for m in rest} == {str(i).encode() for i in range(1000)}
    assert {m.value for m in uncommitted} <= {m.value for m in rest}  # not committed: delivered again
    other = _read(bus, unique_name + "-other", topic, 1000)
    assert len(other) == 1000  # another group starts from the beginning


@pytest.mark.kafka
def test_dead_letter_keeps_the_message_and_records_the_error(
    bus: KafkaBus, topic: str, unique_name: str
) -> None:
    with bus.producer() as producer:
        producer.produce(topic, b'{"amount": "x"}', key=b"p-1", headers={"source": b"api"})
    [bad] = _read(bus, unique_name, topic, 1)
    with bus.producer() as producer:
        bus.dead_letter(producer, bad, ValueError("amount is not a number"))
    [dead] = _read(bus, unique_name, topic + DLQ_SUFFIX, 1)
    assert (dead.key, dead.value) == (b"p-1", b'{"amount": "x"}')
    assert dict(dead.headers) == {
        "source": b"api",
        "dlq.error": b"amount is not a number",
        "dlq.error_type": b"ValueError",
        "dlq.topic": topic.encode(),
        "dlq.partition": str(bad.partition).encode(),
        "dlq.offset": str(bad.offset).encode(),
    }


@pytest.mark.kafka
def test_a_delivery_the_broker_rejects_raises_on_flush(
    bus: KafkaBus, kafka: Settings, unique_name: str
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka.bus.bootstrap_servers})
    spec = NewTopic(
        unique_name, num_partitions=1, replication_factor=-1, config={"max.message.bytes": "1024"}
    )
    admin.create_topics([spec])[unique_name].result(timeout=30)
    try:
        producer = bus.producer()
        producer.produce(unique_name, os.urandom(8192), key=b"k")
        with pytest.raises(TerminalError, match="MSG_SIZE_TOO_LARGE"):
            producer.flush(30)
        producer.flush(5)  # the failure is reported once; nothing else is pending
    finally:
        bus.delete_topic(unique_name)


@pytest.mark.kafka
def test_create_is_idempotent_delete_forgets_and_unknown_topics_are_empty(
    bus: KafkaBus, unique_name: str
) -> None:
    bus.create_topic(unique_name, partitions=2)
    bus.create_topic(unique_name, partitions=8)
    assert bus.topic_partitions(unique_name) == 2
    bus.delete_topic(unique_name)
    bus.delete_topic(unique_name)
    with pytest.raises(NotFoundError):
        bus.topic_partitions(unique_name)
    with bus.consumer(unique_name, [unique_name + "-never"]) as consumer:
        assert consumer.consume(10, timeout=1) == []
        assert consumer.poll(0.2) is None
