"""CDC to the lake on the real engines: the initial snapshot, and commit-to-visible lag at steady rates.

Issue 12. Needs `make services` (PostgreSQL, the object store, Kafka, Kafka Connect, Trino). Each part
captures a fresh schema (its own slot, topics and connector, removed afterwards) and writes the stack's
lake (Iceberg, JDBC catalog on PostgreSQL, tables on the object store).

* **snapshot**: ``--rows`` users bulk-loaded with COPY (untimed), then timed from registering the
  connector to the last Iceberg commit of the applier (Debezium's snapshot → Kafka → the applier, the
  two overlapping as they do in production), then `cdc verify` (source rows against the lake's current
  state, timed apart). Baselines, same rows, same lake, one run each: Trino's
  ``CREATE TABLE dotjoin.raw.… AS SELECT … FROM postgresql.<schema>.users`` (the issue's baseline: Trino
  reads PostgreSQL over JDBC and writes the Iceberg table on the object store; ``country`` is cast from
  ``char(2)`` to varchar, a type Iceberg lacks), and DuckDB's postgres extension reading the table
  (``SELECT *`` to Arrow) plus one PyIceberg append — the fastest way this machine has to copy a table
  into Iceberg once. Each baseline's row count is checked against the source.
* **lag**: the workload at each rate of ``--rates`` (changes per second; stock transactions carry
  ``burst`` movements so that one connection can offer 5,000/s) for ``--seconds``, the applier
  consuming as ``cdc apply`` does (a batch per 0.5 s or 20,000 events). Per change: source commit time →
  the end of the Iceberg commit that made it visible; split into Debezium (commit → the Kafka record's
  timestamp), Kafka and batching (→ the applier has the batch) and the applier (decode, schema, Arrow,
  Iceberg commit; the commit alone shown too). Target: p95 ≤ 5 s at 1,000 changes/s.

Usage: .venv/bin/python benchmarks/cdc.py [--rows 1000000] [--rates 1000,5000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _baselines import MissingToolError, duckdb_attached, headline, machine, pg_password_env, verdict  # noqa: E402

from dotjoin.config import Settings, load_settings  # noqa: E402
from dotjoin.pipelines.cdc import connector, source  # noqa: E402
from dotjoin.pipelines.cdc.applier import Applier, Origin  # noqa: E402
from dotjoin.pipelines.cdc.events import decode_record  # noqa: E402
from dotjoin.pipelines.cdc.verify import verify_table  # noqa: E402
from dotjoin.platform.bus import open_bus  # noqa: E402
from dotjoin.platform.lake import open_lake  # noqa: E402
from dotjoin.simulate.cdc_workload import populate  # noqa: E402


@contextmanager
def capture(base: Settings, label: str) -> Any:
    token = uuid.uuid4().hex[:6]
    names = {"source_schema": f"bench_{label}_{token}", "publication": f"pub_{label}_{token}",
             "slot": f"slot_{label}_{token}", "topic_prefix": f"bench{label}{token}",
             "connector": f"bench-{label}-{token}"}  # fmt: skip
    settings = base.model_copy(update={"cdc": base.cdc.model_copy(update=names)})
    source.setup(settings)
    try:
        yield settings
    finally:
        connector.remove(settings, drop_slot=True, timeout_s=60)
        with source.connect(settings) as conn:
            conn.execute(f"DROP PUBLICATION IF EXISTS {names['publication']}")
            conn.execute(f"DROP SCHEMA IF EXISTS {names['source_schema']} CASCADE")
        with open_lake(settings) as lake:
            for table in lake.list_tables("raw"):
                if table.startswith(
                    (f"raw.{names['source_schema']}_", "raw.bench_copy_", "raw.bench_trino_")
                ):
                    lake.drop_table(table)
        bus = open_bus(settings)
        for topic in source.topics(settings):
            bus.delete_topic(topic)


class TimedLake:
    """The lake, with the time of each Iceberg append recorded (the applier's commit)."""

    def __init__(self, lake: Any) -> None:
        self._lake, self.appends = lake, []

    def append(self, name: str, data: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        self._lake.append(name, data, **kwargs)
        self.appends.append(time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lake, name)


def consume(settings: Settings, lake: TimedLake, stop: Any, samples: list[dict[str, float]] | None) -> int:
    """The applier's loop (as ``cdc apply``), instrumented; the number of changes applied."""
    applier, applied = Applier(lake), 0  # type: ignore[arg-type]
    with open_bus(settings).consumer(f"bench-{uuid.uuid4().hex[:6]}", source.topics(settings)) as consumer:
        while not stop(applied):
            messages = consumer.consume(20_000, timeout=0.5)
            if not messages:
                continue
            received = time.time()
            events = [
                (decode_record(m.key, m.value), Origin(f"{m.topic}:{m.partition}", m.offset))
                for m in messages
            ]
            report = applier.apply(events)
            visible = time.time()
            consumer.commit(messages)
            applied += report.applied
            if samples is not None:
                for m, (event, _) in zip(messages, events, strict=True):
                    commit_us = getattr(event, "commit_us", None)
                    if commit_us is None or getattr(event, "op", "r") == "r":
                        continue
                    commit = commit_us / 1e6
                    sent = m.timestamp_ms / 1000
                    samples.append({"total": visible - commit, "debezium": sent - commit,
                                    "kafka": received - sent, "applier": visible - received})  # fmt: skip
    return applied


def snapshot(base: Settings, rows: int) -> None:
    with capture(base, "snap") as settings:
        t0 = time.perf_counter()
        populate(settings, users=rows, seed=1)
        print(f"  loaded {rows:,} users with COPY in {time.perf_counter() - t0:.1f} s (untimed)", flush=True)
        with open_lake(settings) as raw:
            lake = TimedLake(raw)
            started = time.perf_counter()
            connector.register(settings)
            applied = consume(settings, lake, lambda n: n >= rows, None)
            elapsed = time.perf_counter() - started
            t1 = time.perf_counter()
            found = verify_table(settings, raw, f"{settings.cdc.source_schema}.users")
            verify_s = time.perf_counter() - t1
            commits = len(lake.appends)
            print(f"  dotjoin: {applied:,} rows snapshotted to Iceberg in {elapsed:.1f} s "
                  f"({applied / elapsed:,.0f} rows/s; {commits} commits, {sum(lake.appends):.1f} s in "
                  f"Iceberg appends); verify {verify_s:.1f} s: "
                  f"{found.mismatches} mismatches, {found.lake_rows:,} rows", flush=True)  # fmt: skip
            baseline = copy_baseline(settings, raw)
            on_trino = trino_baseline(settings, raw, rows)
        if on_trino is not None:
            print(f"  Trino CTAS from its postgresql catalog: {rows:,} rows in {on_trino:.1f} s "
                  f"({rows / on_trino:,.0f} rows/s)", flush=True)  # fmt: skip
            headline("cdc snapshot vs Trino", f"{applied / elapsed:,.0f} rows/s vs Trino's "
                     f"{rows / on_trino:,.0f} ({on_trino / elapsed:.2f}x its speed)")  # fmt: skip
        if baseline is None:
            headline("cdc snapshot", f"{applied / elapsed:,.0f} rows/s ({rows:,} rows, verified: "
                     f"{found.mismatches} mismatches); baseline skipped")  # fmt: skip
            return
        print(f"  DuckDB postgres scan + one PyIceberg append: {rows:,} rows in {baseline:.1f} s "
              f"({rows / baseline:,.0f} rows/s)", flush=True)  # fmt: skip
        headline("cdc snapshot", f"{applied / elapsed:,.0f} rows/s vs a one-off copy's "
                 f"{rows / baseline:,.0f} "
                 f"({baseline / elapsed:.2f}x its speed), {found.mismatches} mismatches")  # fmt: skip


def copy_baseline(settings: Settings, lake: Any) -> float | None:
    try:
        with pg_password_env(settings.postgres):
            con = duckdb_attached(settings.postgres)
            started = time.perf_counter()
            table = con.execute(f"SELECT * FROM pg.{settings.cdc.source_schema}.users").to_arrow_table()
            name = f"raw.bench_copy_{uuid.uuid4().hex[:6]}"
            lake.create_table(name, table.schema)
            lake.append(name, table)
            return time.perf_counter() - started
    except MissingToolError as exc:
        print(f"  baseline skipped: {exc}", flush=True)
        return None


def trino_baseline(settings: Settings, lake: Any, rows: int) -> float | None:
    """Seconds of Trino's copy of the source table into a new Iceberg table; None when Trino is down."""
    from dotjoin.exceptions import ServiceUnavailableError
    from dotjoin.platform import trino

    table = f"bench_trino_{uuid.uuid4().hex[:6]}"
    columns = (
        "user_id, email, full_name, CAST(country AS varchar) AS country, tier, bio, created_at, updated_at"
    )
    sql = f"CREATE TABLE raw.{table} AS SELECT {columns} FROM postgresql.{settings.cdc.source_schema}.users"
    try:
        started = time.perf_counter()
        written = trino.query(settings, sql).column(0)[0].as_py()
        seconds = time.perf_counter() - started
    except ServiceUnavailableError as exc:
        print(f"  Trino baseline skipped: {exc}", flush=True)
        return None
    counted = trino.query(settings, f"SELECT count(*) FROM raw.{table}").column(0)[0].as_py()
    lake.drop_table(f"raw.{table}")
    if written != rows or counted != rows:
        raise SystemExit(f"Trino copied {written:,} rows ({counted:,} readable), the source has {rows:,}")
    return seconds


def run_workload(settings: Settings, rate: int, seconds: float, burst: int) -> dict[str, Any]:
    """The workload in its own process (not sharing this one's interpreter with the applier)."""
    env = {**os.environ, "DOTJOIN__CDC__SOURCE_SCHEMA": settings.cdc.source_schema}
    per_tx = 1.4 + 0.34 * (burst - 1)  # changes per transaction of the mix; the achieved rate is measured
    command = [sys.executable, "-m", "dotjoin", "--profile", "stack", "-q", "cdc", "workload", "--tps",
               f"{rate / per_tx:.1f}", "--duration", str(seconds), "--seed", str(rate), "--burst", str(burst),
               "-o", "json"]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=REPO)
    return json.loads(done.stdout)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def lag(base: Settings, rate: int, seconds: float) -> None:
    burst = 8 if rate <= 2000 else 40
    with capture(base, f"lag{rate}") as settings:
        populate(settings, users=2000, skus=200, seed=2)
        connector.register(settings)
        connector.wait_running(settings, timeout_s=90)
        with open_lake(settings) as raw:
            lake = TimedLake(raw)
            samples: list[dict[str, float]] = []
            done = threading.Event()
            applier = threading.Thread(
                target=consume, args=(settings, lake, lambda _: done.is_set(), samples)
            )
            applier.start()
            time.sleep(5)  # the snapshot (2,200 rows) out of the way
            report = run_workload(settings, rate, seconds, burst)
            time.sleep(8)  # drain
            done.set()
            applier.join()
        offered = report["changes"] / report["seconds"]
        lat = sorted(s["total"] for s in samples)
        parts = {k: statistics.median(s[k] for s in samples) for k in ("debezium", "kafka", "applier")}
        commit = statistics.median(lake.appends) if lake.appends else float("nan")
        p50, p95 = pct(lat, 0.50), pct(lat, 0.95)
        print(f"  {offered:,.0f} changes/s offered ({report['transactions']:,} transactions, "
              f"{report['changes']:,} "
              f"changes, burst {burst}); applied {len(samples):,}; lag p50 {p50:.2f} s, p95 {p95:.2f} s, max "
              f"{lat[-1]:.2f} s; median split: Debezium {parts['debezium']:.2f} s, Kafka + batching "
              f"{parts['kafka']:.2f} s, applier {parts['applier']:.2f} s (Iceberg commit {commit:.2f} s)",
              flush=True)  # fmt: skip
        target = " (target p95 <= 5 s: " + verdict(p95 <= 5.0) + ")" if rate == 1000 else ""
        headline(f"cdc lag at {rate:,}/s", f"p50 {p50:.2f} s, p95 {p95:.2f} s at {offered:,.0f} changes/s "
                 "offered"
                 f"{target}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rates", default="1000,5000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--skip-snapshot", action="store_true")
    args = parser.parse_args()
    print(machine(), flush=True)
    base = load_settings(profile="stack")
    if not args.skip_snapshot:
        print(f"snapshot of {args.rows:,} rows", flush=True)
        snapshot(base, args.rows)
    for rate in (int(r) for r in args.rates.split(",") if r):
        print(f"lag at {rate:,} changes/s for {args.seconds:.0f} s", flush=True)
        lag(base, rate, args.seconds)


if __name__ == "__main__":
    main()
