"""The feature store's online store on the stack's Redis: what the stream job writes, scoring reads."""

from __future__ import annotations

import random

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.features.definitions import MINUTE_MS
from dotjoin.pipelines.features.online import OnlineFeatures
from dotjoin.pipelines.features.store import OnlineStore
from dotjoin.platform.kv import open_kv
from tests.unit.pipelines.test_features import T0, agree

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
        assert store.offsets(["payments:0", "payments:1"]) == {"payments:0": len(rows)}
        end = rows[-1][2] + 1
        for card, merchant in sorted({(c, m) for c, m, _, _ in rows}):
            served = store.features_at(card_id=card, merchant_id=merchant, t=end)
            assert agree(served, memory.features_at(card_id=card, merchant_id=merchant, t=end)) == []
