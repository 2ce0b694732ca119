"""The streaming features job on Spark Structured Streaming, on the real broker and Redis: one simulated
payments stream (duplicates, late and malformed messages included) on a 4-partition topic; the embedded
job and the Spark job each fill their own namespace of the online store. Against independent truths:
the backfill of the recorded file (every entity's features after the stream), and the embedded job
(each card's state byte for byte: same payments, same order, same encoding). A Spark batch re-run after
a crash (its commit lost) leaves the store as a clean run does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dotjoin.config import FeaturesSettings, Settings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.spark_stream import run_spark_stream
from dotjoin.pipelines.features.store import OnlineStore, load, state_key
from dotjoin.pipelines.features.stream import run_stream
from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
from dotjoin.platform.bus import open_bus
from dotjoin.platform.kv import open_kv
from dotjoin.platform.spark import SparkEngine
from dotjoin.simulate.payments.output import write_fx_rates, write_log
from dotjoin.simulate.payments.stream import Emitted, generate
from tests.unit.pipelines.test_features import agree, points

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.postgres, pytest.mark.spark, pytest.mark.slow]
PARTITIONS = 4


@dataclass
class Recorded:
    messages: list[Emitted]
    rates: dict[str, float]
    ids: list[str]
    rows: list[tuple[str, str, int, int]]  # the distinct payments: card, merchant, time_ms, cents


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("features_spark")
    sim = generate(seed=8, eps=60, duration_s=90, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    write_log(sim, root)
    rates = read_usd_rates(write_fx_rates(root / "fx.csv"))
    ids, rows, _ = distinct_rows(read_recorded(root / "events.jsonl").payments, rates)
    return Recorded(list(sim), rates, ids, rows)


@pytest.fixture
def stack(kafka: Settings, redis_service: Settings, postgres: Settings) -> Settings:
    return redis_service.model_copy(update={"features": FeaturesSettings(online="redis")})


@pytest.fixture
def topic(stack: Settings, unique_name: str) -> Iterator[str]:
    bus = open_bus(stack)
    bus.create_topic(unique_name, partitions=PARTITIONS)
    yield unique_name
    bus.delete_topic(unique_name)


def _send(settings: Settings, topic: str, messages: list[Emitted]) -> None:
    with open_bus(settings).producer() as producer:
        for m in messages:
            producer.produce(topic, m.value, key=m.key)


def _entities(recorded: Recorded) -> list[str]:
    cards = sorted({r[0] for r in recorded.rows})
    merchants = sorted({r[1] for r in recorded.rows})
    return [state_key("card", c) for c in cards] + [state_key("merchant", m) for m in merchants]


def _stored(settings: Settings, namespace: str, keys: list[str]) -> dict[str, bytes | None]:
    with open_kv(settings, namespace) as kv:
        return dict(zip(keys, kv.get_many(keys), strict=True))


def _assert_matches_backfill(settings: Settings, namespace: str, recorded: Recorded) -> None:
    """Every (card, merchant) pair's features after the stream equal the backfill of the recorded file."""
    end = max(r[2] for r in recorded.rows) + 1
    at = [(card, merchant, end) for card, merchant in sorted({(r[0], r[1]) for r in recorded.rows})]
    truth = backfill(as_tables(recorded.ids, recorded.rows)[0], points(at)).to_pylist()
    with open_kv(settings, namespace) as kv:
        store = OnlineStore(kv)
        for (card, merchant, t), expected in zip(at, truth, strict=True):
            served = store.features_at(card_id=card, merchant_id=merchant, t=t)
            assert agree(served, {k: v for k, v in expected.items() if k != "point_id"}) == [], (
                card,
                merchant,
            )


def test_spark_writes_the_embedded_jobs_states_and_matches_the_backfill(
    stack: Settings, topic: str, recorded: Recorded, spark_engine: SparkEngine, tmp_path: Path
) -> None:
    _send(stack, topic, recorded.messages)
    embedded = run_stream(stack, usd_rates=recorded.rates, topic=topic, group=topic, idle_exit=3.0,
                          namespace=f"{topic}-embedded")  # fmt: skip
    spark = run_spark_stream(stack, usd_rates=recorded.rates, topic=topic, namespace=f"{topic}-spark",
                             checkpoint=tmp_path / "spark", max_offsets_per_trigger=2_000,
                             engine=spark_engine)  # fmt: skip
    assert spark.status == "succeeded", [c for c in spark.checks if not c.passed]
    assert spark.metrics["batches"] >= 2, "several micro-batches: states carried across them"
    n = len(recorded.messages)
    assert spark.counts["input"] == embedded.counts["input"] == n
    assert spark.counts["output"] == embedded.counts["output"] == len(recorded.rows)
    assert spark.counts["quarantined"] == embedded.counts["quarantined"] > 0
    assert (
        spark.counts["duplicates"]
        == embedded.counts["duplicates"]
        == n - len(recorded.rows) - (spark.counts["quarantined"])
    )
    keys = _entities(recorded)
    mine, theirs = _stored(stack, f"{topic}-spark", keys), _stored(stack, f"{topic}-embedded", keys)
    cards = [k for k in keys if k.startswith("card:")]
    assert all(mine[k] is not None for k in keys)
    assert [k for k in cards if mine[k] != theirs[k]] == [], "a card's state is the same bytes in both"
    for k in keys:  # a merchant's payments come from several partitions: the same lists, any order
        a, b = load(mine[k] or b""), load(theirs[k] or b"")
        assert (a.times, sorted(a.cents), a.recent_ids.keys()) == (
            b.times,
            sorted(b.cents),
            b.recent_ids.keys(),
        ), k
    with open_kv(stack, f"{topic}-spark") as kv, open_kv(stack, f"{topic}-embedded") as other:
        offsets = OnlineStore(kv).offsets()
        assert offsets == OnlineStore(other).offsets()
    assert sorted(offsets) == [f"{topic}:{p}" for p in range(PARTITIONS)] and sum(offsets.values()) == n
    _assert_matches_backfill(stack, f"{topic}-spark", recorded)


def test_a_spark_batch_rerun_after_a_crash_leaves_a_clean_runs_store(
    stack: Settings, topic: str, recorded: Recorded, spark_engine: SparkEngine, tmp_path: Path
) -> None:
    half = len(recorded.messages) // 2
    namespace, checkpoint = f"{topic}-spark", tmp_path / "spark"
    _send(stack, topic, recorded.messages[:half])
    first = run_spark_stream(stack, usd_rates=recorded.rates, topic=topic, namespace=namespace,
                             checkpoint=checkpoint, max_offsets_per_trigger=1_500,
                             engine=spark_engine)  # fmt: skip
    assert first.metrics["batches"] >= 2 and first.counts["input"] == half
    # A crash after the last batch's store write, before Spark committed it: the batch runs again.
    commits = sorted((checkpoint / "commits").glob("[0-9]*"), key=lambda p: int(p.name))
    for stale in (commits[-1], commits[-1].with_name(f".{commits[-1].name}.crc")):
        stale.unlink(missing_ok=True)
    _send(stack, topic, recorded.messages[half:])
    second = run_spark_stream(stack, usd_rates=recorded.rates, topic=topic, namespace=namespace,
                              checkpoint=checkpoint, engine=spark_engine)  # fmt: skip
    assert second.counts["input"] > len(recorded.messages) - half  # the re-run batch, then the rest
    _assert_matches_backfill(stack, namespace, recorded)
    # The store emptied under the checkpoint (another namespace, same checkpoint): refused, not half-built.
    with pytest.raises(ConfigError, match="delete the checkpoint"):
        run_spark_stream(stack, usd_rates=recorded.rates, topic=topic, namespace=f"{topic}-empty",
                         checkpoint=checkpoint, engine=spark_engine)  # fmt: skip
