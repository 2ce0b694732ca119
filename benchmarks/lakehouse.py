"""Lakehouse benchmarks (issue 5), one process, baselines run in the same invocation.

1. DuckDB over our Iceberg tables (``iceberg_scan(metadata.json)``, extension wheels loaded offline) vs
   ``read_parquet([...])`` over exactly the same data files. Target: at most 1.2x slower.
2. ``dbt build`` of the whole project on DuckDB, cold (fresh process state, no partial-parse cache),
   timed, with a breakdown of what dominates it.

Usage: .venv/bin/python benchmarks/lakehouse.py [--rows 2000000 8000000] [--days 60] [--dbt-days 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from dotjoin.config import load_settings
from dotjoin.platform.lake import PartitionField, open_lake
from dotjoin.platform.lake.duckdb_views import connect, time_query

REPEAT = 11


def synth_readings(rows: int, days: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64(datetime(2026, 1, 1), "us")
    offsets = np.sort(rng.integers(0, days * 86_400_000_000, rows))
    return pa.table(
        {
            "device_id": pa.array([f"dev-{i:03d}" for i in rng.integers(0, 200, rows)]),
            "reading_ts": pa.array(start + offsets.astype("timedelta64[us]")),
            "sensor": pa.array(np.array(["temperature", "humidity", "pressure"])[rng.integers(0, 3, rows)]),
            "value": pa.array(rng.normal(20, 5, rows)),
        }
    )


def bench_scan(rows: int, days: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(profile="local", cwd=Path(tmp), env={})
        data = synth_readings(rows, days)
        with open_lake(settings) as lake:
            lake.create_table(
                "staging.bench", data.schema, partition_by=[PartitionField("reading_ts", "day")]
            )
            t0 = time.perf_counter()
            lake.append("staging.bench", data)
            write_s = time.perf_counter() - t0
            plan = lake.plan("staging.bench")
            metadata = lake.metadata_location("staging.bench")
        files = ", ".join(f"'{f}'" for f in plan.files)
        print(
            f"table: {rows:,} rows, {days} day partitions, {plan.total_files} files, "
            f"{plan.total_bytes / 1e6:.1f} MB (PyIceberg append {write_s:.2f}s)"
        )
        day = date(2026, 1, 1) + timedelta(days=days // 2)
        queries = {
            "full aggregate": (
                "SELECT sensor, count(*), round(avg(value), 6), max(value) "
                "FROM {src} GROUP BY sensor ORDER BY sensor"
            ),
            "one-day filter": (
                "SELECT count(*), round(avg(value), 6) FROM {src} "
                f"WHERE reading_ts >= TIMESTAMP '{day}' "
                f"AND reading_ts < TIMESTAMP '{day + timedelta(days=1)}'"
            ),
        }
        con = connect()
        con.execute("SET threads = 2")
        print(f"{'query':<16} {'read_parquet (baseline)':>24} {'iceberg_scan':>14} {'ratio':>7}")
        for name, sql in queries.items():
            base_s = ice_s = float("inf")
            for _ in range(REPEAT):  # interleaved, so load from other processes hits both sides alike
                t, base_row = time_query(con, sql.format(src=f"read_parquet([{files}])"), repeat=1)
                base_s = min(base_s, t)
                t, ice_row = time_query(con, sql.format(src=f"iceberg_scan('{metadata}')"), repeat=1)
                ice_s = min(ice_s, t)
            assert base_row == ice_row, (base_row, ice_row)
            verdict = "ok" if ice_s <= 1.2 * base_s else "OVER 1.2x"
            ratio = ice_s / base_s
            print(f"{name:<16} {base_s * 1000:>21.1f} ms {ice_s * 1000:>11.1f} ms {ratio:>6.2f}x  {verdict}")
        con.close()


def bench_dbt(days: int) -> None:
    t0 = time.perf_counter()
    from dbt.cli.main import dbtRunner  # noqa: F401 - the import is part of a cold start

    import_s = time.perf_counter() - t0
    from dotjoin.pipelines.lakehouse import curated
    from dotjoin.pipelines.lakehouse.pipeline import run
    from dotjoin.simulate.lakehouse.shop import GeneratedShop

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(profile="local", cwd=Path(tmp), env={})
        shop = GeneratedShop(days=days, seed=7, start=date(2026, 1, 1))
        run(settings, source=shop, today=date(2026, 2, 1), build=False)
        with open_lake(settings) as lake:
            tables = [t.split(".", 1)[1] for t in lake.list_tables("staging")]
            ctx = curated.publish_sources(settings, lake, tables, target="local")
        build = ctx.invoke("build")  # cold: first dbt invocation of the process, no partial-parse cache
        assert build.success, build.failures
        warm = ctx.invoke("build")  # partial parsing, adapter loaded
        fresh = curated.DbtContext(ctx.target, ctx.env, ctx.vars, ctx.work_dir.with_name("parse-only"))
        parse = fresh.invoke("parse")  # a full parse without a cache (process warm)
    nodes = sorted(build.timings.items(), key=lambda kv: -kv[1])
    node_sum = sum(t for _, t in nodes)
    print(
        f"dbt build, cold, DuckDB, {days} days of both sources: {build.elapsed_s:.2f}s "
        f"({build.statuses}); warm rerun {warm.elapsed_s:.2f}s"
    )
    print(
        f"  import dbt {import_s:.2f}s (before the build); "
        f"a full `dbt parse` (no cache) {parse.elapsed_s:.2f}s; "
        f"sum of node execution times {node_sum:.2f}s (2 threads)"
    )
    print("  slowest nodes: " + ", ".join(f"{uid.split('.', 1)[1]} {t:.2f}s" for uid, t in nodes[:5]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--dbt-days", type=int, default=3)
    args = parser.parse_args()
    print("== DuckDB: iceberg_scan vs read_parquet over the same files (best of 11, interleaved) ==")
    for rows in args.rows:  # small and larger: iceberg_scan's fixed cost is reading metadata + manifests
        bench_scan(rows, args.days)
    print("== dbt build, whole project, DuckDB, cold ==")
    bench_dbt(args.dbt_days)


if __name__ == "__main__":
    main()
