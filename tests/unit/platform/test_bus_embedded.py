"""The embedded durable log, on real files: ordering, groups, DLQ, torn writes, crashes, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError, MissingDependencyError, NotFoundError, TerminalError
from dotjoin.platform.bus import DLQ_SUFFIX, Message, open_bus
from dotjoin.platform.bus.embedded import EmbeddedBus
from dotjoin.platform.bus.embedded_log import INDEX_ENTRY, INDEX_INTERVAL
from dotjoin.platform.bus.partitioner import partition_for


@pytest.fixture
def bus(local_settings: Settings) -> EmbeddedBus:
    opened = open_bus(local_settings)
    assert isinstance(opened, EmbeddedBus)
    return opened


def _drain(bus: EmbeddedBus, group: str, topic: str, *, commit: bool = True) -> list[Message]:
    out: list[Message] = []
    with bus.consumer(group, [topic]) as consumer:
        while batch := consumer.consume(1000, timeout=0.2):
            out.extend(batch)
            if commit:
                consumer.commit(batch)
    return out


def _segment(bus: EmbeddedBus, topic: str, partition: int) -> Path:
    return bus.topic_dir(topic) / f"{partition}.log"


def test_open_bus_reads_the_settings(local_settings: Settings) -> None:
    bus = open_bus(local_settings)
    assert isinstance(bus, EmbeddedBus)
    assert bus.root == local_settings.state_dir / "bus"
    bus.create_topic("t")
    assert bus.topic_partitions("t") == local_settings.bus.partitions == 4


def test_open_bus_without_confluent_kafka_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # what `import` sees when it is not installed
    settings = load_settings(profile="stack", cwd=tmp_path, env={})
    with pytest.raises(MissingDependencyError, match=r"pip install 'dotjoin\[kafka\]'"):
        open_bus(settings)


def test_roundtrip_keeps_key_value_headers_and_timestamp(bus: EmbeddedBus, unique_name: str) -> None:
    before = time.time() * 1000
    with bus.producer() as producer:
        producer.produce(unique_name, b"v1", key=b"k1", headers={"trace": b"abc", "empty": b""})
        producer.produce(unique_name, b"", key=None)
    got = sorted(_drain(bus, "g", unique_name), key=lambda m: m.value, reverse=True)
    assert [(m.key, m.value) for m in got] == [(b"k1", b"v1"), (None, b"")]
    assert dict(got[0].headers) == {"trace": b"abc", "empty": b""}
    assert dict(got[1].headers) == {}
    assert all(before - 1 <= m.timestamp_ms <= time.time() * 1000 + 1 for m in got)
    assert got[0] == Message(
        unique_name, got[0].partition, 0, b"k1", b"v1", {"trace": b"abc", "empty": b""}, got[0].timestamp_ms
    )


def test_messages_of_one_key_stay_in_order_in_one_partition(bus: EmbeddedBus, unique_name: str) -> None:
    keys = [f"user-{i}".encode() for i in range(20)]
    with bus.producer() as producer:
        for seq in range(5000):
            producer.produce(unique_name, str(seq).encode(), key=keys[seq % len(keys)])
    got = _drain(bus, "g", unique_name)
    assert len(got) == 5000
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    partitions: dict[bytes | None, set[int]] = defaultdict(set)
    for m in got:
        by_key[m.key].append(int(m.value))
        partitions[m.key].add(m.partition)
    assert all(seqs == sorted(seqs) and len(seqs) == 250 for seqs in by_key.values())
    assert all(len(p) == 1 for p in partitions.values())


def test_partition_of_a_key_is_stable_across_producers_and_restarts(
    local_settings: Settings, unique_name: str
) -> None:
    keys = [f"k{i}".encode() for i in range(200)]
    placements: list[dict[bytes | None, int]] = []
    for attempt in range(2):  # a fresh bus and producer each time, as after a process restart
        bus = EmbeddedBus.from_settings(local_settings)
        with bus.producer() as producer:
            for key in keys:
                producer.produce(unique_name, str(attempt).encode(), key=key)
        ours = [m for m in _drain(bus, f"g{attempt}", unique_name) if m.value == str(attempt).encode()]
        placements.append({m.key: m.partition for m in ours})
    assert placements[0] == placements[1] == {k: partition_for(k, 4) for k in keys}  # Kafka's murmur2
    assert len(set(placements[0].values())) == 4


def test_a_topic_from_before_murmur2_keeps_its_crc32_placement(bus: EmbeddedBus, unique_name: str) -> None:
    bus.create_topic(unique_name, partitions=4)
    meta = bus.topic_dir(unique_name) / "meta.json"
    assert json.loads(meta.read_text())["partitioner"] == "murmur2"
    meta.write_text(json.dumps({"name": unique_name, "partitions": 4}))  # as written before the switch
    keys = [f"k{i}".encode() for i in range(200)]
    with bus.producer() as producer:
        for key in keys:
            producer.produce(unique_name, b"v", key=key)
    placed = {m.key: m.partition for m in _drain(bus, "g", unique_name)}
    assert placed == {k: zlib.crc32(k) % 4 for k in keys} != {k: partition_for(k, 4) for k in keys}


def test_keyless_messages_are_spread_round_robin(bus: EmbeddedBus, unique_name: str) -> None:
    with bus.producer() as producer:
        for i in range(400):
            producer.produce(unique_name, str(i).encode())
    counts: dict[int, int] = defaultdict(int)
    for m in _drain(bus, "g", unique_name):
        counts[m.partition] += 1
    assert counts == {0: 100, 1: 100, 2: 100, 3: 100}


def test_group_resumes_from_committed_offsets_after_reopen(bus: EmbeddedBus, unique_name: str) -> None:
    with bus.producer() as producer:
        for i in range(1000):
            producer.produce(unique_name, str(i).encode(), key=str(i % 7).encode())
    with bus.consumer("g", [unique_name]) as consumer:
        first = consumer.consume(300, timeout=1)
        consumer.commit(first)
        uncommitted = consumer.consume(200, timeout=1)
    assert len(first) == 300 and len(uncommitted) == 200
    rest = _drain(bus, "g", unique_name)
    seen = {m.value for m in first} | {m.value for m in rest}
    assert len(seen) == 1000 and len(first) + len(rest) == 1000  # uncommitted ones came again, once
    assert {m.value for m in uncommitted} <= {m.value for m in rest}
    assert _drain(bus, "g", unique_name) == []


def test_commit_in_the_middle_of_a_batch_resumes_exactly(bus: EmbeddedBus, unique_name: str) -> None:
    bus.create_topic(unique_name, partitions=1)
    with bus.producer() as producer:  # one batch of 1000 records
        for i in range(1000):
            producer.produce(unique_name, str(i).encode(), key=b"k")
    with bus.consumer("g", [unique_name]) as consumer:
        batch = consumer.consume(337, timeout=1)
        consumer.commit(batch)
    rest = _drain(bus, "g", unique_name)
    assert [m.offset for m in rest] == list(range(337, 1000))


def test_two_groups_are_independent(bus: EmbeddedBus, unique_name: str) -> None:
    with bus.producer() as producer:
        for i in range(100):
            producer.produce(unique_name, str(i).encode(), key=b"k")
    assert len(_drain(bus, "a", unique_name)) == 100
    assert len(_drain(bus, "b", unique_name)) == 100
    assert _drain(bus, "a", unique_name) == []


def test_second_consumer_of_a_group_takes_over_when_the_owner_closes(
    bus: EmbeddedBus, unique_name: str
) -> None:
    with bus.producer() as producer:
        for i in range(100):
            producer.produce(unique_name, str(i).encode(), key=str(i).encode())
    owner = bus.consumer("g", [unique_name])
    standby = bus.consumer("g", [unique_name])
    taken = owner.consume(60, timeout=1)
    owner.commit(taken)
    assert len(taken) == 60
    assert standby.consume(100, timeout=0.3) == []  # the owner holds every partition
    assert owner.assignment and not standby.assignment
    owner.close()
    rest = standby.consume(100, timeout=2)
    standby.close()
    assert sorted(int(m.value) for m in taken + rest) == list(range(100))


def test_consumer_picks_up_a_topic_created_later(bus: EmbeddedBus, unique_name: str) -> None:
    with bus.consumer("g", [unique_name]) as consumer:
        assert consumer.consume(10, timeout=0.1) == []
        with bus.producer() as producer:
            producer.produce(unique_name, b"late", key=b"k")
        assert [m.value for m in consumer.consume(10, timeout=2)] == [b"late"]


def test_dead_letter_keeps_the_message_and_records_the_error(bus: EmbeddedBus, unique_name: str) -> None:
    with bus.producer() as producer:
        producer.produce(unique_name, b'{"amount": "x"}', key=b"p-1", headers={"source": b"api"})
    with bus.consumer("g", [unique_name]) as consumer:
        [bad] = consumer.consume(10, timeout=1)
        with bus.producer() as producer:
            bus.dead_letter(producer, bad, ValueError("amount is not a number"))
        consumer.commit([bad])
    [dead] = _drain(bus, "dlq-reader", unique_name + DLQ_SUFFIX)
    assert (dead.key, dead.value) == (b"p-1", b'{"amount": "x"}')
    assert dict(dead.headers) == {
        "source": b"api",
        "dlq.error": b"amount is not a number",
        "dlq.error_type": b"ValueError",
        "dlq.topic": unique_name.encode(),
        "dlq.partition": str(bad.partition).encode(),
        "dlq.offset": b"0",
    }


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_torn_tail_is_ignored_by_readers_and_truncated_by_the_next_writer(
    bus: EmbeddedBus, unique_name: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus.create_topic(unique_name, partitions=1)
    with bus.producer() as producer:
        for i in range(100):
            producer.produce(unique_name, str(i).encode(), key=b"k")
        producer.flush()
        for i in range(100, 150):
            producer.produce(unique_name, str(i).encode(), key=b"k")
    segment = _segment(bus, unique_name, 0)
    intact = segment.stat().st_size
    if damage == "garbage":
        with segment.open("ab") as fh:
            fh.write(b"\x13\x00\x00\x00garbage-after-a-crash")
    else:  # the second batch lost its last 10 bytes
        os.truncate(segment, intact - 10)
    kept = 150 if damage == "garbage" else 100
    assert [int(m.value) for m in _drain(bus, "g", unique_name)] == list(range(kept))
    with bus.producer() as producer:
        producer.produce(unique_name, b"after", key=b"k")
    assert "truncating" in caplog.text
    assert [m.value for m in _drain(bus, "g", unique_name)] == [b"after"]
    assert [m.offset for m in _drain(bus, "fresh", unique_name)] == list(range(kept + 1))


def test_large_messages_and_the_sparse_index(bus: EmbeddedBus, unique_name: str) -> None:
    bus.create_topic(unique_name, partitions=1)
    big = os.urandom(3 * 1024 * 1024)
    with bus.producer() as producer:
        for i in range(6):
            producer.produce(unique_name, big + bytes([i]), key=b"k")
            producer.flush()
    index = bus.topic_dir(unique_name) / "0.index"
    assert index.stat().st_size >= INDEX_ENTRY.size  # 18 MiB written: at least one entry per 4 MiB
    assert INDEX_INTERVAL == 4 * 1024 * 1024
    with bus.consumer("g", [unique_name]) as consumer:
        first = consumer.consume(4, timeout=1)
        consumer.commit(first)
    assert [m.value[-1] for m in first] == [0, 1, 2, 3]
    offsets = bus.root / "groups" / "g" / f"{unique_name}.offsets"
    stored = json.loads(offsets.read_text())
    assert stored["0"][0] == 4 and stored["0"][1] > 0  # the byte position is kept with the offset
    offsets.write_text(json.dumps({"0": [5, None]}))  # position lost: found again through the index
    assert [m.value[-1] for m in _drain(bus, "g", unique_name)] == [5]


def test_create_is_idempotent_and_delete_forgets_everything(bus: EmbeddedBus, unique_name: str) -> None:
    bus.create_topic(unique_name, partitions=2)
    bus.create_topic(unique_name, partitions=8)
    assert bus.topic_partitions(unique_name) == 2
    with bus.producer() as producer:
        producer.produce(unique_name, b"old", key=b"k")
    assert len(_drain(bus, "g", unique_name)) == 1
    bus.delete_topic(unique_name)
    bus.delete_topic(unique_name)
    with pytest.raises(NotFoundError):
        bus.topic_partitions(unique_name)
    bus.create_topic(unique_name, partitions=3)
    with bus.producer() as producer:
        producer.produce(unique_name, b"new", key=b"k")
    assert [(m.offset, m.value) for m in _drain(bus, "g", unique_name)] == [(0, b"new")]


def test_names_are_checked_and_foreign_commits_refused(bus: EmbeddedBus, unique_name: str) -> None:
    with pytest.raises(ConfigError, match="invalid topic name"):
        bus.create_topic("../escape")
    with pytest.raises(ConfigError, match="invalid group name"):
        bus.consumer("a/b", [unique_name])
    with bus.consumer("g", [unique_name]) as consumer, pytest.raises(TerminalError, match="does not own"):
        consumer.commit([Message(unique_name + "x", 0, 0, None, b"")])


_PRODUCER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from dotjoin.platform.bus.embedded import EmbeddedBus
    root, topic, name = sys.argv[1:4]
    count, every = int(sys.argv[4]), int(sys.argv[5])
    producer = EmbeddedBus(Path(root)).producer()
    for seq in range(count):
        producer.produce(topic, f"{name}:{seq}".encode(), key=name.encode())
        if (seq + 1) % every == 0:
            producer.flush()
            print(seq + 1, flush=True)
    producer.flush()
    print("done", flush=True)
    """
)


def _spawn_producer(bus: EmbeddedBus, topic: str, name: str, count: int, every: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PRODUCER_SCRIPT, str(bus.root), topic, name, str(count), str(every)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_flushed_messages_survive_sigkill_of_the_producer(bus: EmbeddedBus, unique_name: str) -> None:
    bus.create_topic(unique_name, partitions=2)
    proc = _spawn_producer(bus, unique_name, "p", 10_000_000, 5000)
    assert proc.stdout is not None
    flushed = 0
    while flushed < 50_000:
        flushed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reopened = EmbeddedBus(bus.root)
    seqs = [int(m.value.split(b":")[1]) for m in _drain(reopened, "g", unique_name)]
    assert len(seqs) >= flushed  # everything flushed, and perhaps a few written batches after it
    assert seqs == list(range(len(seqs)))  # one key: one partition, in order, no gap, no duplicate
    with reopened.producer() as producer:  # the next writer repairs any torn tail and appends after it
        producer.produce(unique_name, b"p:next", key=b"p")
    tail = _drain(reopened, "g", unique_name)
    assert [m.value for m in tail] == [b"p:next"] and tail[0].offset == len(seqs)


def test_producers_in_several_processes_interleave_safely(bus: EmbeddedBus, unique_name: str) -> None:
    bus.create_topic(unique_name, partitions=1)
    procs = [_spawn_producer(bus, unique_name, f"w{i}", 20_000, 20) for i in range(3)]
    for proc in procs:
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    got = _drain(bus, "g", unique_name)
    assert [m.offset for m in got] == list(range(60_000))
    per_writer: dict[str, list[int]] = defaultdict(list)
    for m in got:
        name, seq = m.value.decode().split(":")
        per_writer[name].append(int(seq))
    assert per_writer == {f"w{i}": list(range(20_000)) for i in range(3)}
