"""The feature store's online store on the stack's Redis: what the stream job writes, scoring reads."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from dotjoin.config import FeaturesSettings, Settings
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import MINUTE_MS
from dotjoin.pipelines.features.online import OnlineFeatures
from dotjoin.pipelines.features.store import OnlineStore
from dotjoin.pipelines.features.stream import run_stream
from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
from dotjoin.platform.bus import open_bus
from dotjoin.platform.kv import open_kv
from dotjoin.simulate.payments.output import write_fx_rates, write_log
from dotjoin.simulate.payments.stream import generate
from tests.unit.pipelines.test_features import T0, agree, points

pytestmark = pytest.mark.redis


def test_entity_states_round_trip_through_redis(redis_service: Settings, unique_name: str) -> None:
    # The same payments into an in-memory state and, through Redis, into the store in batches: the store's
    # features equal the in-memory ones, and the offsets written with the states come back.
    assert redis_service.features.online == "redis"
    rng = random.Random(5)
    rows = [(f"c{rng.randrange(20)}", f"m{rng.randrange(4)}", T0 + n * MINUTE_MS, rng.randrange(1, 9_999))
            for n in range(2_000)]  # fmt: skip
    memory = OnlineFeatures()
    memory.add_all(rows)
    with open_kv(redis_service, unique_name) as kv:
        store = OnlineStore(kv)
        for start in range(0, len(rows), 250):
            batch = rows[start : start + 250]
            states = store.histories([k for c, m, _, _ in batch for k in (("card", c), ("merchant", m))])
            for card, merchant, t, cents in batch:
                states[("card", card)].add(t, cents)
                states[("merchant", merchant)].add(t, cents)
            store.save(states, {"payments:0": start + len(batch)})
        assert store.offsets() == {"payments:0": len(rows)}
        end = rows[-1][2] + 1
        for card, merchant in sorted({(c, m) for c, m, _, _ in rows}):
            served = store.features_at(card_id=card, merchant_id=merchant, t=end)
            assert agree(served, memory.features_at(card_id=card, merchant_id=merchant, t=end)) == []


@pytest.mark.kafka
@pytest.mark.postgres
def test_the_stream_job_from_kafka_into_redis_matches_the_backfill(
    postgres: Settings, kafka: Settings, redis_service: Settings, unique_name: str, tmp_path: Path
) -> None:
    # The simulator's stream on a Kafka topic → `features stream` (stack profile: Redis online store, run
    # report in PostgreSQL) → every sampled card's and merchant's features after the stream equal the
    # backfill of the recorded messages; re-reading the topic under a new group applies nothing.
    sim = generate(seed=6, eps=40, duration_s=60, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    write_log(sim, tmp_path)
    rates = read_usd_rates(write_fx_rates(tmp_path / "fx.csv"))
    settings = redis_service.model_copy(update={"features": FeaturesSettings(online="redis")})
    bus = open_bus(settings)
    bus.create_topic(unique_name, partitions=2)
    with bus.producer() as producer:
        for message in sim:
            producer.produce(unique_name, message.value, key=message.key)
    try:
        first = run_stream(settings, usd_rates=rates, topic=unique_name, group=unique_name, idle_exit=5.0,
                           namespace=unique_name)  # fmt: skip
        assert first.status == "succeeded", [c for c in first.checks if not c.passed]
        ids, rows, _ = distinct_rows(read_recorded(tmp_path / "events.jsonl").payments, rates)
        assert first.counts["output"] == len(rows) and first.counts["quarantined"] > 0
        end = max(r[2] for r in rows) + 1
        at = [(card, merchant, end) for card, merchant in sorted({(r[0], r[1]) for r in rows})[:200]]
        truth = backfill(as_tables(ids, rows)[0], points(at)).to_pylist()
        with open_kv(settings, unique_name) as kv:
            store = OnlineStore(kv)
            for (card, merchant, t), expected in zip(at, truth, strict=True):
                served = store.features_at(card_id=card, merchant_id=merchant, t=t)
                assert agree(served, {k: v for k, v in expected.items() if k != "point_id"}) == []
        again = run_stream(settings, usd_rates=rates, topic=unique_name, group=f"{unique_name}-2",
                           idle_exit=5.0, namespace=unique_name)  # fmt: skip
        assert again.counts["output"] == 0 and again.counts["duplicates"] == again.counts["input"] > 0
    finally:
        bus.delete_topic(unique_name)
