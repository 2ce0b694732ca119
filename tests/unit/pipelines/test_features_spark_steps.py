"""The Spark features job's steps as plain Python (no Spark here; tests/integration/test_features_spark.py
runs them on Spark): the fan-out's routing and the per-entity step's order, state and accounting."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa

from dotjoin.pipelines.features.definitions import usd_cents
from dotjoin.pipelines.features.online import EntityHistory
from dotjoin.pipelines.features.spark_stream import QUARANTINE, EntityFunction
from dotjoin.pipelines.features.store import dump, load
from dotjoin.pipelines.payments.contract import ContractError, parse_payment
from dotjoin.platform.spark import INPUT_SCHEMA
from dotjoin.simulate.payments.stream import Defects, generate

DEFECTS = Defects(duplicate_rate=0.05, malformed_rate=0.05)
MESSAGES = list(generate(seed=3, eps=20, duration_s=60, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                         defects=DEFECTS))  # fmt: skip


def _parsed(value: bytes) -> object:
    try:
        return parse_payment(value)
    except ContractError:
        return None


def _rows(messages: list, partition: int = 0) -> list[tuple]:
    return [(m.key, m.value, partition, offset, 0) for offset, m in enumerate(messages)]


def test_fan_out_sends_a_payment_to_its_card_and_merchant_and_a_break_to_quarantine() -> None:
    rows = _rows(MESSAGES)
    batch = pa.RecordBatch.from_pylist([dict(zip(INPUT_SCHEMA.names, r, strict=True)) for r in rows],
                                       schema=INPUT_SCHEMA)  # fmt: skip
    out = pa.Table.from_batches(list(EntityFunction({}).fan_out(batch)), schema=INPUT_SCHEMA).to_pylist()
    expected = []
    for _, value, _, offset, _ in rows:
        p = _parsed(value)
        if p is None:
            expected.append((QUARANTINE, offset))
        else:
            expected += [
                (f"card:{p.card_id}".encode(), offset),
                (f"merchant:{p.merchant_id}".encode(), offset),
            ]
    assert [(r["key"], r["offset"]) for r in out] == expected
    assert any(k == QUARANTINE for k, _ in expected), "the stream must hold contract breaks"


def test_the_entity_step_records_in_topic_order_whatever_the_rows_order() -> None:
    rates = {"EUR": 0.8}
    card = MESSAGES[0].key
    mine = [m for m in MESSAGES if m.key == card and _parsed(m.value) is not None]
    mine += [mine[0]]  # a duplicate, later in the topic
    rows = _rows(mine, partition=2)
    half = len(rows) // 2
    truth, at_half = EntityHistory(), b""
    for n, m in enumerate(mine):
        at_half = dump(truth) if n == half else at_half
        p = parse_payment(m.value)
        truth.record(p.event_id, p.event_time_ms, usd_cents(p.amount, p.currency, rates))
    func = EntityFunction(rates)
    shuffled = random.Random(1).sample(rows[:half], half)  # Spark hands a group's rows in any order
    key = b"card:" + card
    first, state = func(key, shuffled, None)
    second, state = func(key, rows[half:], state)
    assert state == dump(truth) and load(state).times == truth.times
    assert first[0][1] == at_half and second[0][1] == state  # the state leaves on the group's first row
    assert [(r[2], r[3]) for r in first + second] == [(2, half), (2, len(rows))]  # partition, next offset
    assert sum(r[4] for r in first + second) == len(rows)  # messages
    repeated = len(mine) - len({parse_payment(m.value).event_id for m in mine})
    assert repeated >= 1 and sum(r[6] for r in first + second) == repeated  # duplicates
    merchant_rows, _ = func(b"merchant:m", rows, None)
    assert [r[4:8] for r in merchant_rows] == [(0, 0, 0, 0)], "a merchant's messages are counted by cards"


def test_the_quarantine_group_counts_its_messages_and_names_the_first() -> None:
    broken = [m for m in MESSAGES if _parsed(m.value) is None]
    out, state = EntityFunction({})(QUARANTINE, _rows(broken, partition=1), None)
    assert state is None
    (row,) = out
    assert row[2:8] == (1, len(broken), len(broken), 0, 0, len(broken))
    assert row[8].startswith("1:0: ")
