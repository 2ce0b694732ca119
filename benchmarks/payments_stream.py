"""The payments detector on the bus: sustained events/s against event→alert latency, per runtime and rate.

Issue 11. In one invocation, for each runtime of ``--runtimes`` and each offered rate of ``--rates``:

* **same events**: each rate has its own simulated world of ``60 x rate`` customers (the simulator's
  default size: a customer pays about once a minute, so a card's velocity does not grow with the rate)
  and its stream (``generate(seed=7, eps=rate, duration_s=seconds)``), generated once, before anything
  is timed, into a file of pre-built (key, value) messages; every runtime gets exactly those messages,
  once each;
* **same broker**: with ``--bus kafka`` (the default when Kafka answers at 127.0.0.1:9092) everything
  goes through the real broker, a fresh topic per runtime and rate
  (``bench_payments_<runtime>_<rate>_<token>``, 4 partitions, with its ``.late`` / ``.dlq`` siblings),
  deleted afterwards; ``--bus embedded`` is the embedded log (the embedded runner only);
* **same producer**: a subprocess that only sends the pre-built messages through the platform's Kafka
  producer (which stamps each message's timestamp, CreateTime, when it is sent), paced uniformly at
  the offered rate in 2 ms ticks (the simulator's order, not its sub-second rhythm; ~5% of a core at
  20,000 messages/s) and flushed every 0.1 s. It starts when the runtime is ready (its consumer group
  assigned, or the Spark query waiting for data) and reports the rate it achieved;
* **same measure**: *sustained* = messages the runtime had processed when the producer stopped, divided
  by the producer's duration; *drain* = time from the producer's stop until the runtime had processed
  every message (a rate is *kept up* when that is within 1 s; 2 s for Spark, whose micro-batches run
  every 0.5 s); latency = the source message's timestamp → the alert leaving the runtime. Nothing is
  extrapolated: a runtime that falls behind is reported with what it measured.

The runtimes (each processes every message once; one repeat per rate for all):

* ``embedded``: dotjoin's :class:`~dotjoin.pipelines.payments.runner.Runner` with the rules and the
  models (trained on a labelled history of the same world, as long as the stream and at the same rate):
  contract checks, event time, duplicates, 23 features, 4 rules, a classifier and an isolation forest,
  alerts upserted into a local DuckDB warehouse (the benchmark keeps the warehouse local; the bus is
  what is measured) and sent to the ``alerts`` topic, state checkpointed every 2 s. Latency: message
  timestamp → alert written (the runner's own measure, as the dashboard shows it);
* ``embedded-rules``: the same runner without models (``Detector(models=None)``, with the category
  typicals of the training so that ``amount_spike`` can fire): the like-for-like peer of Quix;
* ``spark``: :func:`~dotjoin.pipelines.payments.spark_job.run_spark` (rules + the same models) on
  Spark Structured Streaming, ``processingTime`` every 0.5 s, one session for all rates started and
  warmed up (one available-now run on a small warm-up topic) before timing. Latency: its
  ``SparkRunStats.latency_ms``, message timestamp → alert written; throughput from Spark's progress
  reports (a batch counts when it has ended);
* ``quix``: ``_quix_payments.py`` on Quix Streams in its own virtualenv (``make quix``), as a
  subprocess: the same two rules a Python user would write with Quix (``card_testing_velocity`` with a
  sliding window, ``amount_spike`` with ``State`` and Welford's running statistics), the same contract
  checks for the simulator's malformed messages, the same per-card lateness and duplicate rules, its
  own state store (RocksDB + changelog topics, committed every 2 s as our checkpoints). Latency:
  message timestamp → the alert handed to Quix's producer (measured in the app; read back from its
  alerts topic). It computes less than ``embedded-rules`` (2 rules and the features they need, not
  4 rules and 23 features) and writes no warehouse: the comparison favours Quix. Its alerts are checked
  against ``embedded-rules``' alerts of the same two rules on the same messages.

Differences that show in the figures: Quix polls one message at a time; the runner takes what the
consumer has fetched, up to 2,000 messages a batch (one model call and one warehouse statement each),
so its batches grow with a backlog.
The runner and ``run_spark`` also send their alert messages to the shared ``alerts`` topic (neither
takes another name); only the payments topics are the benchmark's own.

Targets (issue 11): embedded ≥ 20,000 events/s at p99 ≤ 250 ms; Spark ≥ 20,000 events/s at p99 ≤ 2 s;
embedded-rules ≥ 1.5x Quix's sustained events/s, both at their best kept-up rate with p99 ≤ 250 ms.

Usage: .venv/bin/python benchmarks/payments_stream.py [--runtimes embedded,embedded-rules,spark,quix]
       [--rates 5000,10000,20000] [--seconds 60] [--bus kafka|embedded]   (Quix: make quix; Spark: make spark)
"""

from __future__ import annotations

import argparse
import json
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _baselines import headline, machine, verdict

from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.payments.detector import Detector
from dotjoin.pipelines.payments.features import SMALL_AMOUNT
from dotjoin.pipelines.payments.history import Reference, read_labels, read_recorded
from dotjoin.pipelines.payments.models import FraudModels
from dotjoin.pipelines.payments.monitor import Monitor
from dotjoin.pipelines.payments.offline import train_models
from dotjoin.pipelines.payments.rules import Rule, load_rules
from dotjoin.pipelines.payments.runner import Runner
from dotjoin.platform.bus import DLQ_SUFFIX, Bus, open_bus
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.payments.output import write_log
from dotjoin.simulate.payments.stream import generate

ROOT = Path(__file__).resolve().parents[1]
QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"
QUIX_APP = Path(__file__).with_name("_quix_payments.py")
KAFKA = "127.0.0.1:9092"
RUNTIMES = ("embedded", "embedded-rules", "spark", "quix")
PARTITIONS = 4
HISTORY_START = datetime(2026, 11, 2, tzinfo=UTC)
STREAM_START = datetime(2026, 11, 3, tzinfo=UTC)
TWO_RULES = frozenset({"card_testing_velocity", "amount_spike"})  # what the Quix app computes
KEPT_UP_S = {"spark": 2.0}  # drain allowance; 1 s for the others
P99_TARGET_MS = {"embedded": 250.0, "embedded-rules": 250.0, "quix": 250.0, "spark": 2000.0}
SPARK_TRIGGER_S = 0.5
READY_TIMEOUT_S = 120.0
CUSTOMER_EVERY_S = 60  # default world: rate x 60 customers (the simulator's: each pays about once a minute)
# librdkafka without its info lines (queue purges) on the admin clients
ADMIN: dict[str, str | int | float | bool] = {"bootstrap.servers": KAFKA, "log_level": 4}

PRODUCER = textwrap.dedent("""
    import json, pickle, sys, time
    from pathlib import Path
    from dotjoin.config import load_settings
    from dotjoin.platform.bus import open_bus
    stream, topic, rate = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    cwd, env = Path(sys.argv[4]), json.loads(sys.argv[5])
    keys, values = pickle.loads(stream.read_bytes())
    producer = open_bus(load_settings(profile="local", cwd=cwd, env=env)).producer()
    produce, n, sent = producer.produce, len(values), 0
    print("ready", flush=True)
    sys.stdin.readline()  # "go": the runtime is ready
    began = time.time()
    next_flush = began + 0.1
    while sent < n:
        now = time.time()
        due = min(n, int((now - began) * rate) + 1)
        for i in range(sent, due):
            produce(topic, values[i], key=keys[i])
        sent = due
        if now >= next_flush:
            producer.flush()
            next_flush = now + 0.1
        time.sleep(0.002)  # a 2 ms tick: sleeping until the next message would spin at these rates
    producer.flush()
    print(json.dumps({"sent": n, "began": began, "ended": time.time()}), flush=True)
""")


# -- what one run measured ----------------------------------------------------------------------------


@dataclass
class Measured:
    """One runtime at one offered rate."""

    runtime: str
    rate: float
    sent: int
    began: float  # the producer's first and last send (epoch s)
    ended: float
    timeline: list[tuple[float, int]]  # (epoch s, messages processed so far)
    latencies_ms: list[float]
    alerts: int
    two_rule_ids: set[str] = field(default_factory=set)  # alerted event ids of the Quix app's two rules

    @property
    def offered(self) -> float:
        return self.sent / (self.ended - self.began)

    def processed_by(self, t: float) -> int:
        return max((n for at, n in self.timeline if at <= t), default=0)

    @property
    def sustained(self) -> float:
        return self.processed_by(self.ended) / (self.ended - self.began)

    @property
    def drain_s(self) -> float | None:
        """Seconds after the producer stopped until every message was processed (None: never)."""
        done = [at for at, n in self.timeline if n >= self.sent]
        return max(0.0, min(done) - self.ended) if done else None

    @property
    def kept_up(self) -> bool:
        drain = self.drain_s
        return drain is not None and drain <= KEPT_UP_S.get(self.runtime, 1.0)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def row(self) -> str:
        drain = self.drain_s
        backlog = self.sent - self.processed_by(float("inf"))
        drain_text = f"{drain:8.1f}" if drain is not None else f"{'>' + str(backlog):>8}"
        return (
            f"{self.rate:10,.0f} {self.offered:11,.0f} {self.sustained:12,.0f} {drain_text} "
            f"{self.alerts:7,} {self.p(50):8.1f} {self.p(95):8.1f} {self.p(99):8.1f}"
            f"{'' if self.kept_up else '  fell behind'}"
        )


HEADER = (
    f"{'offered/s':>10} {'producer/s':>11} {'sustained/s':>12} {'drain s':>8} {'alerts':>7} "
    f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
)


# -- the shared set-up: reference data, models, streams, the bus --------------------------------------


@dataclass
class World:
    """One rate's simulated world: its reference data, the models trained on its history, its stream."""

    customers: int
    reference: Reference
    models: FraudModels
    models_path: Path
    stream: Path  # the pre-built (keys, values) messages
    count: int  # messages in the stream


@dataclass
class Bench:
    root: Path
    bus_type: str  # "kafka" or "embedded"
    seconds: float
    drain_wait_s: float
    worlds: dict[float, World]  # by offered rate
    spark: Any = None  # the SparkEngine, started on first use

    def settings_env(self) -> dict[str, str]:
        if self.bus_type == "embedded":
            return {}
        return {"DOTJOIN__BUS__TYPE": "kafka", "DOTJOIN__BUS__BOOTSTRAP_SERVERS": KAFKA,
                "DOTJOIN__BUS__PARTITIONS": str(PARTITIONS)}  # fmt: skip

    def settings(self, where: Path) -> Settings:
        """A run's settings: its own local state (DuckDB warehouse, checkpoints) and the bus."""
        where.mkdir(parents=True, exist_ok=True)
        return load_settings(profile="local", cwd=where, env=self.settings_env())


def kafka_answers() -> bool:
    host, _, port = KAFKA.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def world(root: Path, rate: float, seconds: float, customers: int | None) -> World:
    """One rate's world, built before anything is timed: the models trained on a labelled history of it
    (as long as the stream, at the same rate: the cards pay as often as in the stream), then the stream
    as pre-built (key, value) messages in the simulator's emission order."""
    size = customers or int(rate * CUSTOMER_EVERY_S)
    where = root / f"world-{int(rate)}"
    history = where / "history"
    write_log(generate(seed=7, eps=rate, duration_s=seconds, start=HISTORY_START, customers=size), history)
    h = read_recorded(history / "events.jsonl")
    labels = read_labels(history / "labels.jsonl")
    h.fraud = [p.event_id in labels for p in h.payments]
    reference = Reference.read(history / "merchants.csv", history / "fx_rates.csv")
    models = train_models(h, reference, seed=1)
    models.save(where / "models.pickle")
    sim = generate(seed=7, eps=rate, duration_s=seconds, start=STREAM_START, customers=size)
    keys, values = [], []
    for m in sim:
        keys.append(m.key)
        values.append(m.value)
    stream = where / "stream.pickle"
    stream.write_bytes(pickle.dumps((keys, values), protocol=5))
    return World(size, reference, models, where / "models.pickle", stream, len(values))


def new_topic(bus: Bus, runtime: str, rate: float) -> str:
    name = f"bench_payments_{runtime.replace('-', '_')}_{int(rate)}_{uuid.uuid4().hex[:8]}"
    for suffix in ("", ".late", DLQ_SUFFIX):
        bus.create_topic(name + suffix, partitions=PARTITIONS)
    return name


def drop_topics(bench: Bench, token: str) -> None:
    """Delete every topic of a run (its own, the siblings, Quix's changelogs): all contain ``token``."""
    if bench.bus_type != "kafka":
        return
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(ADMIN)
    names = [t for t in admin.list_topics(timeout=10).topics if token in t]
    if names:
        for future in admin.delete_topics(names, request_timeout=30).values():
            try:
                future.result(timeout=30)
            except Exception as exc:  # cleanup is best effort
                print(f"  (could not delete a topic: {exc})", flush=True)


def group_ready(group: str) -> Callable[[], bool]:
    """True once ``group`` is stable with all the topic's partitions assigned (Kafka only)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(ADMIN)

    def ready() -> bool:
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=5)
        except Exception:  # not there yet
            return False
        assigned = sum(len(m.assignment.topic_partitions) for m in description.members)
        return str(description.state).endswith("STABLE") and assigned >= PARTITIONS

    return ready


# -- the producer -------------------------------------------------------------------------------------


class Producer:
    """The paced producer subprocess: loads its messages, sends them when :meth:`go` is called."""

    def __init__(self, bench: Bench, rate: float, topic: str, where: Path) -> None:
        path, self.count = bench.worlds[rate].stream, bench.worlds[rate].count
        env = json.dumps(bench.settings_env())
        self.child = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, str(path), topic, str(rate), str(where), env],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.child.stdout is not None
        if self.child.stdout.readline().strip() != "ready":
            raise SystemExit("the producer did not start")
        self.result: dict[str, Any] | None = None

    def go(self) -> None:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write("go\n")
        self.child.stdin.flush()
        self.result = json.loads(self.child.stdout.readline())
        self.child.wait()

    def go_when(self, ready: Callable[[], bool]) -> threading.Thread:
        """In a thread: wait until ``ready()``, then send (``self.result`` is set when it is done)."""

        def run() -> None:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not ready():
                if time.monotonic() > deadline:
                    self.child.kill()
                    raise SystemExit("the runtime did not get ready")
                time.sleep(0.1)
            time.sleep(0.5)  # the consumer's first fetch is in flight
            self.go()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


# -- embedded runner ----------------------------------------------------------------------------------


class _Recorder(Monitor):
    """The runner's monitor, keeping every latency, the processed count over time and the alert ids."""

    def __init__(self) -> None:
        super().__init__(None)
        self.latencies_ms: list[float] = []
        self.timeline: list[tuple[float, int]] = []
        self.processed = 0
        self.two_rule_ids: set[str] = set()

    def batch(self, **kwargs: Any) -> None:
        super().batch(**kwargs)
        self.latencies_ms.extend(s * 1000 for s in kwargs["latencies_s"])
        self.processed += kwargs["scored"] + kwargs["dead_letters"] + kwargs["late"] + kwargs["duplicates"]
        self.timeline.append((time.time(), self.processed))
        self.two_rule_ids.update(a.event_id for a in kwargs["alerts"] if TWO_RULES.intersection(a.rules))


def run_embedded(bench: Bench, rate: float, *, rules_only: bool) -> Measured:
    runtime = "embedded-rules" if rules_only else "embedded"
    where = bench.root / f"{runtime}-{int(rate)}"
    settings = bench.settings(where)
    bus = open_bus(settings)
    topic = new_topic(bus, runtime, rate)
    w = bench.worlds[rate]
    detector = Detector(w.reference.merchants, load_rules(), None if rules_only else w.models,
                        usd_rates=w.reference.usd_rates)  # fmt: skip
    if rules_only:  # the category typicals are reference data learned at training, not a model
        detector.state.category_usd = dict(w.models.category_usd)
    recorder = _Recorder()
    group = f"{topic}-detector"
    producer = Producer(bench, rate, topic, where)
    try:
        with open_warehouse(settings) as wh:
            runner = Runner(bus, wh, detector, checkpoint=where / "checkpoint", group=group,
                            monitor=recorder, topic=topic, table="bench_alerts")  # fmt: skip
            ready = group_ready(group) if bench.bus_type == "kafka" else (lambda: True)
            producer.go_when(ready)

            def done() -> bool:
                r = producer.result
                return r is not None and (
                    recorder.processed >= r["sent"] or time.time() > r["ended"] + bench.drain_wait_s
                )

            stats = runner.run(stop=done, max_s=READY_TIMEOUT_S + bench.seconds + bench.drain_wait_s + 30)
    finally:
        producer.child.kill()
        drop_topics(bench, topic)
    r = producer.result or {"sent": producer.count, "began": 0.0, "ended": 1.0}
    return Measured(runtime, rate, r["sent"], r["began"], r["ended"], recorder.timeline,
                    recorder.latencies_ms, stats.alerts, recorder.two_rule_ids)  # fmt: skip


# -- Spark --------------------------------------------------------------------------------------------


def spark_engine(bench: Bench) -> Any:
    """One Spark session for every rate, started and warmed up (its Python workers) before timing."""
    if bench.spark is None:
        from dotjoin.pipelines.payments.spark_job import run_spark, spark_options
        from dotjoin.platform.spark import SparkEngine

        settings = bench.settings(bench.root / "spark-warmup")
        conf = {"spark.sql.streaming.numRecentProgressUpdates": "100000"}  # keep every batch's report
        t = time.perf_counter()
        options = spark_options(settings, log_file=bench.root / "spark.log", conf=conf)
        bench.spark = SparkEngine("dotjoin-bench-payments", options)
        bus = open_bus(settings)
        topic = new_topic(bus, "spark_warmup", 0)
        w = next(iter(bench.worlds.values()))
        keys, values = pickle.loads(w.stream.read_bytes())
        with bus.producer() as producer:
            for k, v in zip(keys[:2000], values[:2000], strict=True):
                producer.produce(topic, v, key=k)
        run_spark(settings, reference=w.reference, models_path=w.models_path, topic=topic,
                  table="bench_alerts", checkpoint=settings.state_dir / "spark", engine=bench.spark,
                  lake_table=None)  # fmt: skip
        drop_topics(bench, topic)
        print(f"  Spark session started and warmed up in {time.perf_counter() - t:.0f} s", flush=True)
    return bench.spark


def _spark_query(engine: Any, topic: str) -> Any:
    return next((q for q in engine.session.streams.active if q.name == f"payments_{topic}"), None)


def _spark_processed(query: Any) -> int:
    return sum(int(p.get("numInputRows", 0)) for p in (json.loads(x.json) for x in query.recentProgress))


def run_spark_rate(bench: Bench, rate: float) -> Measured:
    from dotjoin.pipelines.payments.spark_job import run_spark

    engine = spark_engine(bench)
    where = bench.root / f"spark-{int(rate)}"
    settings = bench.settings(where)
    topic = new_topic(open_bus(settings), "spark", rate)
    producer = Producer(bench, rate, topic, where)

    def ready() -> bool:
        query = _spark_query(engine, topic)
        return query is not None and not query.status["isTriggerActive"] and query.lastProgress is not None

    def stop_when_drained() -> None:
        """After the producer: stop the query once it has read everything (or the drain wait passed)."""
        while producer.result is None:
            time.sleep(0.1)
        r = producer.result
        while time.time() < r["ended"] + bench.drain_wait_s:
            query = _spark_query(engine, topic)
            if query is None:
                return
            if _spark_processed(query) >= r["sent"]:
                break
            time.sleep(0.1)
        query = _spark_query(engine, topic)
        if query is not None:
            query.stop()

    sender = producer.go_when(ready)
    stopper = threading.Thread(target=stop_when_drained, daemon=True)
    stopper.start()
    try:
        w = bench.worlds[rate]
        stats = run_spark(settings, reference=w.reference, models_path=w.models_path, topic=topic,
                          table="bench_alerts", checkpoint=where / "spark-checkpoint",
                          trigger=SPARK_TRIGGER_S, engine=engine, lake_table=None,
                          max_s=READY_TIMEOUT_S + bench.seconds + bench.drain_wait_s + 30)  # fmt: skip
        sender.join(timeout=5)
    finally:
        producer.child.kill()
        drop_topics(bench, topic)
    timeline, processed = [], 0
    for p in stats.progress:
        processed += int(p.get("numInputRows", 0))
        started = datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp()
        timeline.append((started + p.get("batchDuration", 0) / 1000, processed))
    r = producer.result or {"sent": producer.count, "began": 0.0, "ended": 1.0}
    return Measured("spark", rate, r["sent"], r["began"], r["ended"], timeline, list(stats.latency_ms),
                    stats.alerts)  # fmt: skip


# -- Quix Streams -------------------------------------------------------------------------------------


def quix_rules(rules: tuple[Rule, ...]) -> dict[str, float]:
    """The thresholds of the two rules the Quix app computes, read from the rules file."""
    by_name = {r.name: {c.feature: c for c in r.conditions} for r in rules}
    try:
        velocity, spike = by_name["card_testing_velocity"], by_name["amount_spike"]
        ops = {f: c.op for f, c in velocity.items()}, {f: c.op for f, c in spike.items()}
        shape = ops == ({"small_count_10m": ">=", "amount": "<=", "ecom": ">="},
                        {"category_ratio": ">=", "amount_ratio": ">="})  # fmt: skip
    except KeyError:
        shape = False
    if not shape:
        raise SystemExit("rules.yaml's card_testing_velocity or amount_spike changed: see _quix_payments.py")
    return {
        "small_usd": SMALL_AMOUNT,
        "velocity_small_count_10m": velocity["small_count_10m"].value,
        "velocity_amount": velocity["amount"].value,
        "spike_category_ratio": spike["category_ratio"].value,
        "spike_amount_ratio": spike["amount_ratio"].value,
    }


def quix_reference(bench: Bench, rate: float) -> Path:
    w = bench.worlds[rate]
    path = w.stream.with_name("quix-reference.json")
    if not path.exists():
        data = {
            "usd_rates": w.reference.usd_rates,
            "merchant_category": {m: info.category for m, info in w.reference.merchants.items()},
            "category_usd": w.models.category_usd,
            "rules": quix_rules(load_rules()),
        }
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _read_quix_alerts(topic: str) -> dict[str, float]:
    """Quix's alerts topic, read after the run to its end: latency per alerted event id (first alert)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    config = {"bootstrap.servers": KAFKA, "group.id": f"{topic}-reader", "enable.auto.commit": False}
    consumer = Consumer(config)
    partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
    consumer.assign(partitions)
    latency: dict[str, float] = {}
    left = {p: end for p, end in ends.items() if end > 0}
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        for m in consumer.consume(5000, timeout=0.5):
            value, partition, offset = m.value(), m.partition(), m.offset()
            if m.error() or value is None or partition is None or offset is None:
                continue
            a = json.loads(value)
            latency.setdefault(a["event_id"], a["alerted_ms"] - a["sent_ms"])
            if offset + 1 >= left.get(partition, 0):
                left.pop(partition, None)
    consumer.close()
    return latency


def run_quix(bench: Bench, rate: float) -> Measured:
    where = bench.root / f"quix-{int(rate)}"
    bus = open_bus(bench.settings(where))
    topic = new_topic(bus, "quix", rate)
    alerts_topic = f"{topic}.alerts"
    bus.create_topic(alerts_topic, partitions=PARTITIONS)
    group = f"{topic}-quix"
    producer = Producer(bench, rate, topic, where)
    args = [str(QUIX_PYTHON), str(QUIX_APP), "--broker", KAFKA, "--topic", topic, "--alerts", alerts_topic,
            "--group", group, "--state-dir", str(where / "quix-state"),
            "--reference", str(quix_reference(bench, rate)), "--expect", str(producer.count)]  # fmt: skip
    log = where / "quix.log"  # its warnings and errors
    with log.open("w") as err:
        app = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    timeline: list[tuple[float, int]] = []
    reader = threading.Thread(target=_read_progress, args=(app, timeline), daemon=True)
    reader.start()
    try:
        sender = producer.go_when(group_ready(group))
        while producer.result is None and app.poll() is None and sender.is_alive():
            time.sleep(0.1)
        r = producer.result
        if r is None:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-10:])
            raise SystemExit(f"the Quix app (exit {app.poll()}) or the producer failed:\n{tail}")
        _stop_quix(app, deadline=r["ended"] + bench.drain_wait_s)
        reader.join(timeout=5)
        latency = _read_quix_alerts(alerts_topic)
    finally:
        if app.poll() is None:
            app.kill()
        producer.child.kill()
        drop_topics(bench, topic)
    return Measured("quix", rate, r["sent"], r["began"], r["ended"], timeline, list(latency.values()),
                    len(latency), set(latency))  # fmt: skip


def _stop_quix(app: subprocess.Popen[str], deadline: float) -> None:
    """The app stops itself after the expected messages; past ``deadline``, SIGTERM (Quix commits)."""
    while app.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    if app.poll() is None:
        app.send_signal(signal.SIGTERM)
    app.wait(timeout=60)


def _read_progress(app: subprocess.Popen[str], timeline: list[tuple[float, int]]) -> None:
    assert app.stdout is not None
    for line in app.stdout:
        if line.startswith("{"):
            p = json.loads(line)
            timeline.append((p["t"], p["processed"]))


# -- the report ---------------------------------------------------------------------------------------


def best(results: list[Measured], p99_ms: float) -> Measured | None:
    """The kept-up run with the highest sustained rate whose p99 is within ``p99_ms``."""
    kept = [r for r in results if r.kept_up and r.p(99) <= p99_ms]
    return max(kept, key=lambda r: r.sustained, default=None)


def agreement(results: dict[str, list[Measured]]) -> None:
    """Quix's alerts against embedded-rules' alerts of the same two rules, rate by rate."""
    ours = {r.rate: r for r in results.get("embedded-rules", [])}
    for q in results.get("quix", []):
        e = ours.get(q.rate)
        if e is None or q.drain_s is None or e.drain_s is None:
            continue  # one of them did not process every message
        both = len(q.two_rule_ids & e.two_rule_ids)
        print(f"  {q.rate:,.0f}/s: alerts of {', '.join(sorted(TWO_RULES))}: {both:,} in both, "
              f"{len(e.two_rule_ids - q.two_rule_ids):,} only embedded-rules, "
              f"{len(q.two_rule_ids - e.two_rule_ids):,} only quix")  # fmt: skip


def _none_text(runtime: str, runs: list[Measured], limit: float) -> str:
    """What a runtime did when no rate met the condition: its best kept-up rate, if any (measured)."""
    kept = best(runs, float("inf"))
    also = f"; highest kept up: {kept.sustained:,.0f} events/s at p99 {kept.p(99):,.0f} ms" if kept else ""
    return f"{runtime}: no rate kept up at p99 <= {limit:,.0f} ms{also}"


def headlines(results: dict[str, list[Measured]]) -> None:
    for runtime, floor in (("embedded", 20_000), ("spark", 20_000)):
        if runtime not in results:
            continue
        limit = P99_TARGET_MS[runtime]
        b = best(results[runtime], limit)
        if b is None:
            headline("payments_stream", _none_text(runtime, results[runtime], limit))
            continue
        target = f"target >= {floor:,} at <= {limit:,.0f} ms: {verdict(b.sustained >= floor)}"
        measured = f"{runtime} sustained {b.sustained:,.0f} events/s at p99 {b.p(99):,.0f} ms"
        headline("payments_stream", f"{measured} ({target})")
    if "embedded-rules" in results and "quix" in results:
        ours, theirs = results["embedded-rules"], results["quix"]
        limit = P99_TARGET_MS["quix"]
        e, q = best(ours, limit), best(theirs, limit)
        if e is None or q is None:
            who, runs = ("embedded-rules", ours) if e is None else ("quix", theirs)
            headline("payments_stream", "embedded-rules vs quix: " + _none_text(who, runs, limit))
            return
        ratio = e.sustained / q.sustained
        top = max(r.rate for r in ours)
        capped = " (both kept up at the top rate: offer more)" if e.rate == q.rate == top else ""
        headline("payments_stream",
                 f"embedded-rules {e.sustained:,.0f} events/s (p99 {e.p(99):,.0f} ms) vs quix "
                 f"{q.sustained:,.0f} events/s (p99 {q.p(99):,.0f} ms), both at p99 <= 250 ms: {ratio:.2f}x "
                 f"(target >= 1.5x: {verdict(ratio >= 1.5)}){capped}")  # fmt: skip


# -- main ---------------------------------------------------------------------------------------------


def runnable(runtimes: list[str], bus_type: str) -> list[str]:
    out = []
    for runtime in runtimes:
        if runtime in ("spark", "quix") and bus_type != "kafka":
            print(f"  {runtime}: skipped, it needs Kafka (--bus kafka)")
        elif runtime == "quix" and not QUIX_PYTHON.exists():
            print("  quix: skipped, no .venv-quix (build it with: make quix)")
        else:
            out.append(runtime)
    return out


def run_one(bench: Bench, runtime: str, rate: float) -> Measured:
    if runtime in ("embedded", "embedded-rules"):
        return run_embedded(bench, rate, rules_only=runtime == "embedded-rules")
    if runtime == "spark":
        return run_spark_rate(bench, rate)
    return run_quix(bench, rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"any of {', '.join(RUNTIMES)}")
    parser.add_argument("--rates", default="5000,10000,20000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bus", choices=("kafka", "embedded"), help="default: kafka if it answers")
    parser.add_argument(
        "--customers",
        type=int,
        help=f"the world's size (default: {CUSTOMER_EVERY_S} x the rate, "
        "the simulator's own: a customer pays about once a minute)",
    )
    parser.add_argument("--drain-wait", type=float, default=10.0, help="seconds to wait for a backlog")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if unknown := set(wanted) - set(RUNTIMES):
        parser.error(f"unknown runtime(s) {', '.join(sorted(unknown))}; known: {', '.join(RUNTIMES)}")
    bus_type = args.bus or ("kafka" if kafka_answers() else "embedded")
    print(f"payments stream benchmark: {', '.join(wanted)} on the {bus_type} bus, "
          f"{args.seconds:.0f} s per rate\n{machine()}")  # fmt: skip
    runtimes = runnable(wanted, bus_type)
    with tempfile.TemporaryDirectory(prefix="dj-bench-pay-") as tmp:
        root = Path(tmp)
        worlds = {}
        for rate in rates:
            t = time.perf_counter()
            worlds[rate] = w = world(root, rate, args.seconds, args.customers)
            print(f"{rate:,.0f}/s: {w.customers:,} customers; models trained on a history as long as the "
                  f"stream ({w.models.report.rows:,} events); {w.count:,} messages pre-built; in "
                  f"{time.perf_counter() - t:.0f} s", flush=True)  # fmt: skip
        bench = Bench(root, bus_type, args.seconds, args.drain_wait, worlds)
        results: dict[str, list[Measured]] = {}
        try:
            for runtime in runtimes:
                if runtime == "spark":
                    spark_engine(bench)  # started and warmed up before its header: not timed
                print(f"\n{runtime}\n{HEADER}", flush=True)
                for rate in rates:
                    measured = run_one(bench, runtime, rate)
                    results.setdefault(runtime, []).append(measured)
                    print(measured.row(), flush=True)
        finally:
            if bench.spark is not None:
                bench.spark.stop()
        print("\ncurves (offered/s: sustained/s @ p99 ms)")
        for runtime, runs in results.items():
            curve = "  ".join(f"{m.rate:,.0f}: {m.sustained:,.0f} @ {m.p(99):,.0f}" for m in runs)
            print(f"  {runtime:15} {curve}")
        agreement(results)
        headlines(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
