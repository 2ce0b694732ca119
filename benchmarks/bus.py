"""Bus throughput: the dotjoin Kafka adapter against raw confluent-kafka, same configs, same run.

Usage::

    .venv/bin/python benchmarks/bus.py [--messages 1000000] [--size 100] [--batch 10000]

Each side produces ``--messages`` keyed messages of ``--size`` random bytes (10,000 distinct keys) to its
own fresh topic and flushes, then consumes them all in one new group, ``consume(batch)`` at a time,
checking every message's error and reading key and value, and committing synchronously after every
batch. The raw side uses ``confluent_kafka`` directly with the adapter's ``PRODUCER_CONFIG`` and
``CONSUMER_CONFIG``; the adapter side goes through ``open_bus(settings)`` only. Consume time starts at the
first message (the group join is not counted). The ratio adapter/raw is the number to watch (target
>= 0.67, i.e. at most 1.5x overhead). The embedded log's numbers are printed for reference.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import DotjoinError
from dotjoin.platform.bus import Bus, open_bus

logger = logging.getLogger(__name__)
KEYS = [b"key-%05d" % i for i in range(10_000)]


@dataclass
class Result:
    name: str
    messages: int
    produce_s: float
    consume_s: float

    @property
    def produce_rate(self) -> float:
        return self.messages / self.produce_s

    @property
    def consume_rate(self) -> float:
        return self.messages / self.consume_s

    @property
    def total_rate(self) -> float:
        return self.messages / (self.produce_s + self.consume_s)


def payloads(size: int) -> list[bytes]:
    """1,000 distinct incompressible values (lz4 must not make the test trivially cheap)."""
    return [os.urandom(size) for _ in range(1000)]


def run_adapter(name: str, bus: Bus, n: int, values: list[bytes], batch: int) -> Result:
    topic = f"bench_{uuid.uuid4().hex[:8]}"
    bus.create_topic(topic, partitions=4)
    try:
        started = time.perf_counter()
        with bus.producer() as producer:
            produce = producer.produce
            for i in range(n):
                produce(topic, values[i % 1000], key=KEYS[i % 10_000])
        produce_s = time.perf_counter() - started
        seen = 0
        first: float | None = None
        with bus.consumer(f"{topic}_g", [topic]) as consumer:
            while seen < n:
                messages = consumer.consume(batch, timeout=1.0)
                if not messages:
                    continue
                if first is None:
                    first = time.perf_counter()
                for m in messages:
                    if m.value is None or m.key is None:
                        raise SystemExit("message without key or value")
                seen += len(messages)
                consumer.commit(messages)
        consume_s = time.perf_counter() - (first or 0.0)
    finally:
        bus.delete_topic(topic)
    return Result(name, n, produce_s, consume_s)


def run_raw(settings: Settings, n: int, values: list[bytes], batch: int) -> Result:
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka import Producer as RawProducer

    from dotjoin.platform.bus.kafka_backend import CONSUMER_CONFIG, PRODUCER_CONFIG

    bootstrap = {"bootstrap.servers": settings.bus.bootstrap_servers}
    bus = open_bus(settings)  # topic admin only
    topic = f"bench_raw_{uuid.uuid4().hex[:8]}"
    bus.create_topic(topic, partitions=4)
    failures: list[Any] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    try:
        producer = RawProducer({**bootstrap, **PRODUCER_CONFIG, "on_delivery": on_delivery})
        started = time.perf_counter()
        produce = producer.produce
        for i in range(n):
            while True:
                try:
                    produce(topic, values[i % 1000], KEYS[i % 10_000])
                    break
                except BufferError:
                    producer.poll(0.05)
        if producer.flush(60) or failures:
            raise SystemExit(f"raw producer lost messages: {failures[:1]}")
        produce_s = time.perf_counter() - started

        consumer = Consumer({**bootstrap, **CONSUMER_CONFIG, "group.id": f"{topic}_g"})
        consumer.subscribe([topic])
        seen = 0
        first: float | None = None
        while seen < n:
            messages = consumer.consume(batch, timeout=1.0)
            if not messages:
                continue
            if first is None:
                first = time.perf_counter()
            offsets: dict[tuple[Any, Any], int] = {}
            for m in messages:
                if m.error() is not None:
                    raise KafkaException(m.error())
                if m.value() is None or m.key() is None:
                    raise SystemExit("message without key or value")
                offsets[(m.topic(), m.partition())] = int(m.offset() or 0) + 1
            seen += len(messages)
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
        consume_s = time.perf_counter() - (first or 0.0)
        consumer.close()
    finally:
        bus.delete_topic(topic)
    return Result("raw confluent-kafka", n, produce_s, consume_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    n, values = args.messages, payloads(args.size)

    stack = load_settings(profile="stack")
    print(
        f"bus benchmark: {n:,} messages x {args.size} B, 4 partitions, batch {args.batch:,}, "
        f"Kafka at {stack.bus.bootstrap_servers}"
    )
    results: list[Result] = []
    raw: Result | None = None
    adapter: Result | None = None
    try:
        raw = run_raw(stack, n, values, args.batch)
        adapter = run_adapter("dotjoin Kafka adapter", open_bus(stack), n, values, args.batch)
        results += [raw, adapter]
    except DotjoinError as exc:
        print(f"Kafka skipped: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        local = load_settings(profile="local", cwd=Path(tmp), env={})
        results.append(run_adapter("dotjoin embedded log", open_bus(local), n, values, args.batch))

    print(f"{'':24} {'produce msg/s':>14} {'consume msg/s':>14} {'end-to-end msg/s':>17}")
    for r in results:
        print(f"{r.name:24} {r.produce_rate:14,.0f} {r.consume_rate:14,.0f} {r.total_rate:17,.0f}")
    if raw is not None and adapter is not None:
        ratios = (
            adapter.produce_rate / raw.produce_rate,
            adapter.consume_rate / raw.consume_rate,
            adapter.total_rate / raw.total_rate,
        )
        cells = f"{ratios[0]:14.2f} {ratios[1]:14.2f} {ratios[2]:17.2f}"
        print(f"{'ratio adapter/raw':24} {cells}   (target >= 0.67)")
        return 0 if ratios[2] >= 0.67 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
