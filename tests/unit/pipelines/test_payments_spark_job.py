"""The Spark job's per-card step without Spark: fed one card's messages at a time, in shuffled order
and cut into arbitrary micro-batches, with its state passed back as bytes between calls (as the
state store does), it raises exactly the alerts of an offline replay and dead-letters what the
replay rejects. The integration test runs the same function inside Spark on Kafka."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dotjoin.pipelines.payments.history import Reference, read_recorded
from dotjoin.pipelines.payments.offline import replay
from dotjoin.pipelines.payments.rules import load_rules
from dotjoin.pipelines.payments.spark_job import OUTPUT_SCHEMA, alert_of, card_function
from dotjoin.platform.bus.partitioner import partition_for
from dotjoin.simulate.payments.output import write_log
from dotjoin.simulate.payments.stream import generate


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark_job")
    write_log(generate(seed=11, eps=100, duration_s=180, start=datetime(2026, 11, 2, tzinfo=UTC)), out)
    return out


def test_cut_into_any_micro_batches_per_card_it_raises_the_replays_alerts(log: Path) -> None:
    ref = Reference.read(log / "merchants.csv", log / "fx_rates.csv")
    expected = replay(read_recorded(log / "events.jsonl"), ref, load_rules(), None)
    # The topic as Kafka holds it: each card's messages in one partition, offsets in send order.
    offsets: dict[int, int] = defaultdict(int)
    by_card: dict[bytes, list[tuple[Any, ...]]] = defaultdict(list)
    for value in (log / "events.jsonl").read_bytes().splitlines():
        key = value.split(b'"card_id":"')[1].split(b'"')[0] if b'"card_id":"' in value else b"?"
        partition = partition_for(key, 4)
        by_card[key].append((key, value, partition, offsets[partition], 0))
        offsets[partition] += 1
    rng = random.Random(7)
    func = card_function(ref, load_rules(), None)
    rows: list[tuple[Any, ...]] = []
    calls = 0
    for key, messages in by_card.items():
        state = None
        cuts = (
            sorted(rng.sample(range(1, len(messages)), min(2, len(messages) - 1)))
            if len(messages) > 1
            else []
        )
        for start, end in zip([0, *cuts], [*cuts, len(messages)], strict=True):
            batch = messages[start:end]
            rng.shuffle(batch)  # a micro-batch's rows arrive in no particular order
            out, state = func(key, batch, state)
            calls += 1
            rows.extend(out)
    stateful = pa.Table.from_pylist(
        [dict(zip(OUTPUT_SCHEMA.names, r, strict=True)) for r in rows], OUTPUT_SCHEMA
    )
    # The scoring step, on batches of any size and mix of cards.
    table = pa.Table.from_batches(
        [out for batch in stateful.to_batches(max_chunksize=997) for out in func.score(batch)], OUTPUT_SCHEMA
    )
    got = [alert_of(r) for r in table.filter(pc.equal(table["kind"], "alert")).to_pylist()]
    assert sorted(got, key=lambda a: a.event_id) == sorted(expected.alerts, key=lambda a: a.event_id)
    kinds = table.column("kind").to_pylist()
    assert kinds.count("dead") == len(expected.dead_letters) > 0
    assert kinds.count("late") == len(expected.late) > 0
    assert kinds.count("scored") == 0 and kinds.count("stats") == calls
    assert sum(r[-3] for r in rows if r[0] == "stats") == expected.counters.scored
    assert all(": " in r[16] for r in rows if r[0] == "dead")  # "<field>: <what is wrong>"
