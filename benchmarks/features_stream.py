"""The streaming features job on a backlog: payments/s into the online store, embedded against Spark.

Issue 13. One simulated payments stream (``generate(seed=7, eps=--eps, duration_s=--seconds)``:
duplicates, late and malformed messages included) is sent once to a fresh 4-partition Kafka topic
before anything is timed. Then, ``--repeat`` times each, alternating, every run into its own Redis
namespace (the stack's Redis, as served):

* ``embedded`` — :func:`~dotjoin.pipelines.features.stream.run_stream`, a new consumer group each run,
  batches of 5,000 messages; its time includes the 0.5 s it waits idle before it stops;
* ``spark`` — :func:`~dotjoin.pipelines.features.spark_stream.run_spark_stream` on Spark Structured
  Streaming (local[2], 2 shuffle partitions, RocksDB state), ``availableNow``, a new checkpoint each
  run, one session started and warmed up (one run on a small topic) before timing; its time is the
  query's, start to end.

Both write the same states (checked: every card's state bytes equal between the last runs of both, the
counts equal); payments/s = the topic's messages / the run's seconds. Nothing else computes these
features (36 windowed and decayed aggregates per card and merchant) from a stream: Feast's streaming
path pushes rows a user's own Spark job computed, which is what the ``spark`` contender is.

Usage: .venv/bin/python benchmarks/features_stream.py [--eps 500] [--seconds 60] [--repeat 2]
       (needs make spark, make services: Kafka, Redis, PostgreSQL)
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from _baselines import headline, machine

from dotjoin.config import FeaturesSettings, Settings, load_settings
from dotjoin.pipelines.features.spark_stream import run_spark_stream
from dotjoin.pipelines.features.store import state_key
from dotjoin.pipelines.features.stream import run_stream
from dotjoin.pipelines.payments.history import read_usd_rates
from dotjoin.platform.bus import open_bus
from dotjoin.platform.kv import open_kv
from dotjoin.platform.spark import SparkEngine, SparkOptions
from dotjoin.services.spark import ensure_jars
from dotjoin.simulate.payments.output import write_fx_rates
from dotjoin.simulate.payments.stream import generate


def _send(settings: Settings, topic: str, messages: list) -> None:
    bus = open_bus(settings)
    bus.create_topic(topic, partitions=4)
    with bus.producer() as producer:
        for m in messages:
            producer.produce(topic, m.value, key=m.key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eps", type=int, default=500, help="simulated payments per second of event time")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of event time")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender")
    args = parser.parse_args()
    print(machine())
    base = load_settings(profile="stack")
    settings = base.model_copy(update={"features": FeaturesSettings(online="redis")})
    token = uuid.uuid4().hex[:8]
    scratch = Path(tempfile.mkdtemp(prefix="bench-features-"))
    rates = read_usd_rates(write_fx_rates(scratch / "fx.csv"))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    messages = list(generate(seed=7, eps=args.eps, duration_s=args.seconds, start=start))
    warmup = list(generate(seed=8, eps=50, duration_s=20, start=start))
    topic, warm_topic = f"bench_features_{token}", f"bench_features_warmup_{token}"
    _send(settings, topic, messages)
    _send(settings, warm_topic, warmup)
    print(f"{len(messages):,} messages on {topic} (4 partitions)", flush=True)

    began = time.perf_counter()
    spark = SparkEngine(
        "dotjoin-bench-features", SparkOptions(jars=ensure_jars(), log_file=scratch / "spark.log")
    )
    run_spark_stream(settings, usd_rates=rates, topic=warm_topic, namespace=f"{warm_topic}-ns",
                     checkpoint=scratch / "warmup", engine=spark)  # fmt: skip
    print(f"Spark session started and warmed up in {time.perf_counter() - began:.0f} s", flush=True)

    seconds: dict[str, list[float]] = {"embedded": [], "spark": []}
    counts: dict[str, dict[str, int]] = {}
    namespaces: dict[str, str] = {}
    try:
        for n in range(args.repeat):
            for contender in seconds:
                namespace = f"{topic}-{contender}-{n}"
                if contender == "embedded":
                    report = run_stream(settings, usd_rates=rates, topic=topic, group=namespace,
                                        idle_exit=0.5, namespace=namespace)  # fmt: skip
                else:
                    report = run_spark_stream(settings, usd_rates=rates, topic=topic, namespace=namespace,
                                              checkpoint=scratch / namespace, engine=spark)  # fmt: skip
                assert report.counts["input"] == len(messages), (contender, report.counts)
                seconds[contender].append(report.metrics["seconds"])
                counts[contender], namespaces[contender] = dict(report.counts), namespace
                rate = len(messages) / report.metrics["seconds"]
                took = report.metrics["seconds"]
                print(f"  {contender:9s} run {n + 1}: {took:6.1f} s  {rate:8,.0f} payments/s", flush=True)
    finally:
        spark.stop()
        bus = open_bus(settings)
        for name in (topic, warm_topic):
            bus.delete_topic(name)

    assert counts["embedded"] == counts["spark"], counts
    cards = sorted({m.key.decode() for m in messages})  # the topic's key: the card id
    keys = [state_key("card", c) for c in cards]
    with open_kv(settings, namespaces["embedded"]) as a, open_kv(settings, namespaces["spark"]) as b:
        differ = sum(x != y for x, y in zip(a.get_many(keys), b.get_many(keys), strict=True))
    assert differ == 0, f"{differ} of {len(keys)} card states differ"
    print(f"same states: {len(keys):,} cards byte for byte, counts {counts['spark']}")
    best = {c: len(messages) / min(s) for c, s in seconds.items()}
    med = {c: len(messages) / statistics.median(s) for c, s in seconds.items()}
    for c in seconds:
        print(f"{c:9s} best {best[c]:8,.0f} payments/s, median {med[c]:8,.0f}")
    headline(
        "features_stream",
        f"embedded {best['embedded']:,.0f} payments/s vs Spark {best['spark']:,.0f} "
        f"({best['embedded'] / best['spark']:.1f}x) on a {len(messages):,}-message backlog, "
        f"best of {args.repeat}",
    )


if __name__ == "__main__":
    main()
