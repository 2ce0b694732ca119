"""Bulk load: Arrow → PostgreSQL through the warehouse adapter, against ``psql \\copy`` and pandas ``to_sql``.

The same rows (bigint id, text, double, timestamp, bool, ~1% NULLs) are loaded in one invocation by:

* ``dotjoin``: ``Warehouse.load_arrow`` (binary COPY encoded from Arrow), table creation included;
* ``psql \\copy``: the baseline — the same data written as CSV first (untimed), loaded by psql into a
  pre-created table (``PGPASSWORD`` in its environment, never on the command line);
* ``pandas.DataFrame.to_sql(method="multi")`` through SQLAlchemy + psycopg2 — on ``--to-sql-rows``
  rows and extrapolated linearly to the full size (it is too slow to run on a million);
* ``psycopg write_row`` (binary COPY one Python row at a time), for reference, also extrapolated;
* DuckDB ``load_arrow`` into a file, for reference.

Targets: dotjoin ≥ 0.8x psql's rows/s, and ≥ 20x pandas ``to_sql``'s. Each timed load runs
``--repeat`` times into a fresh table; the best run counts (the machine is shared).

Usage: .venv/bin/python benchmarks/bulk_load.py [--rows N] [--repeat R] [--to-sql-rows M]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import DotjoinError
from dotjoin.platform.warehouse import Warehouse, open_warehouse
from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
DDL = "(id bigint, name text, amount double precision, ts timestamp, flag boolean)"


def make_rows(n: int, seed: int = 7) -> pa.Table:
    """``n`` rows of a realistic mix, about 1% NULLs in the nullable columns."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    cities = pa.array(["Lisbon", "Osaka", "Zürich", "São Paulo", "Nairobi", "Oslo", 'Quote "Town"', "Lyon"])
    city = pc.take(cities, pa.array(rng.integers(0, len(cities), n)))
    name = pc.binary_join_element_wise("customer ", pc.cast(pa.array(ids), pa.string()), city, " — ")
    nulls = rng.random(n) < 0.01
    ts = 1_700_000_000_000_000 + rng.integers(0, 86_400_000_000 * 365, n)
    return pa.table(
        {
            "id": ids,
            "name": name,
            "amount": pa.array(np.round(rng.gamma(2.0, 40.0, n), 2), mask=nulls),
            "ts": pa.array(ts, pa.timestamp("us"), mask=np.roll(nulls, 1)),
            "flag": pa.array(rng.random(n) < 0.3, mask=np.roll(nulls, 2)),
        }
    )


def best_of(repeat: int, prepare: Callable[[], None], run: Callable[[], None]) -> float:
    """The fastest of ``repeat`` timed runs, each after an untimed ``prepare``."""
    times = []
    for _ in range(repeat):
        prepare()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def time_adapter(wh: Warehouse, table: str, data: pa.Table, repeat: int) -> float:
    def run() -> None:
        assert wh.load_arrow(table, data) == data.num_rows

    return best_of(repeat, lambda: wh.execute(f'DROP TABLE IF EXISTS "{table}"'), run)


def time_psql(wh: Warehouse, settings: Settings, table: str, csv_path: Path, rows: int, repeat: int) -> float:
    pg = settings.postgres
    env = dict(os.environ)
    if pg.password is not None:
        env["PGPASSWORD"] = pg.password.get_secret_value()
    command = [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", pg.dbname,
        "-c", f"\\copy \"{table}\" FROM '{csv_path}' WITH (FORMAT csv, HEADER true)",
    ]  # fmt: skip

    def prepare() -> None:
        wh.execute(f'DROP TABLE IF EXISTS "{table}"')
        wh.execute(f'CREATE TABLE "{table}" {DDL}')

    def run() -> None:
        subprocess.run(command, env=env, check=True)

    elapsed = best_of(repeat, prepare, run)
    assert wh.scalar(f'SELECT count(*) FROM "{table}"') == rows
    return elapsed


def time_to_sql(settings: Settings, table: str, data: pa.Table, chunksize: int) -> float:
    import sqlalchemy

    frame = data.to_pandas()
    engine = sqlalchemy.create_engine(settings.postgres.sqlalchemy_url())
    try:
        started = time.perf_counter()
        frame.to_sql(table, engine, if_exists="replace", index=False, method="multi", chunksize=chunksize)
        return time.perf_counter() - started
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
        engine.dispose()


def time_write_row(wh: Warehouse, settings: Settings, table: str, data: pa.Table) -> float:
    import psycopg

    pg = settings.postgres
    wh.execute(f'DROP TABLE IF EXISTS "{table}"')
    wh.execute(f'CREATE TABLE "{table}" {DDL}')
    password = pg.password.get_secret_value() if pg.password else None
    params = {"host": pg.host, "port": pg.port, "dbname": pg.dbname, "user": pg.user, "password": password}
    with psycopg.connect(**params) as conn:  # type: ignore[arg-type]
        started = time.perf_counter()  # Arrow → Python rows is part of this method's cost
        rows = zip(*(col.to_pylist() for col in data.columns), strict=True)
        with conn.cursor() as cur, cur.copy(f'COPY "{table}" FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types(["int8", "text", "float8", "timestamp", "bool"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def time_duckdb(data: pa.Table, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, DuckDBWarehouse(Path(tmp) / "bench.duckdb") as wh:

        def run() -> None:
            wh.load_arrow("bench", data)

        return best_of(repeat, lambda: wh.execute("DROP TABLE IF EXISTS bench"), run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--to-sql-rows", type=int, default=100_000, help="rows for to_sql (extrapolated)")
    parser.add_argument("--chunksize", type=int, default=1_000, help="to_sql chunksize")
    args = parser.parse_args(argv)

    settings = load_settings(profile="stack", cwd=REPO)
    data = make_rows(args.rows)
    results: list[tuple[str, int, float, bool]] = []  # (name, rows timed, seconds, extrapolated)
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        wh = open_warehouse(settings)
    except DotjoinError as exc:
        print(f"bulk_load: skipped, {exc}")
        return 1
    with wh, tempfile.TemporaryDirectory() as tmp:
        version = str(wh.scalar("SHOW server_version"))
        try:
            csv_path = Path(tmp) / "rows.csv"
            pa_csv.write_csv(data, csv_path)  # untimed: psql's input
            adapter = time_adapter(wh, f"{prefix}_adapter", data, args.repeat)
            results.append(("dotjoin load_arrow (binary COPY)", args.rows, adapter, False))
            if shutil.which("psql"):
                psql = time_psql(wh, settings, f"{prefix}_psql", csv_path, args.rows, args.repeat)
                results.append(("psql \\copy CSV  [baseline]", args.rows, psql, False))
            else:
                print("psql not found on PATH: the psql baseline is skipped")
            small = data.slice(0, min(args.to_sql_rows, args.rows))
            to_sql = time_to_sql(settings, f"{prefix}_to_sql", small, args.chunksize)
            results.append((f"pandas to_sql multi, chunksize {args.chunksize}", small.num_rows, to_sql, True))
            write_row = time_write_row(wh, settings, f"{prefix}_write_row", small)
            results.append(("psycopg copy.write_row (per row)", small.num_rows, write_row, True))
        finally:
            for suffix in ("adapter", "psql", "to_sql", "write_row"):
                wh.execute(f'DROP TABLE IF EXISTS "{prefix}_{suffix}"')
    duck = time_duckdb(data, args.repeat)
    results.append(("DuckDB load_arrow (file)  [reference]", args.rows, duck, False))

    rate = {name: rows / seconds for name, rows, seconds, _ in results}
    print(
        f"\nbulk_load: {args.rows:,} rows (bigint, text, double, timestamp, bool; ~1% NULLs) into PostgreSQL "
        f"{version} at {settings.postgres.address}; best of {args.repeat} (to_sql / write_row: one run)\n"
    )
    print(f"{'method':<44} {'rows timed':>11} {'seconds':>9} {'rows/s':>12}")
    for name, rows, seconds, extrapolated in results:
        note = f"  (extrapolated to {args.rows:,}: {seconds * args.rows / rows:.1f} s)" * extrapolated
        print(f"{name:<44} {rows:>11,} {seconds:>9.3f} {rows / seconds:>12,.0f}{note}")
    ours = rate["dotjoin load_arrow (binary COPY)"]
    print()
    baseline = next((name for name in rate if name.startswith("psql")), None)
    if baseline:
        ratio = ours / rate[baseline]
        verdict = "PASS" if ratio >= 0.8 else "BELOW TARGET"
        print(f"ratio dotjoin / psql \\copy (baseline)      = {ratio:6.2f}x   target >= 0.8   {verdict}")
    to_sql_name = next(name for name in rate if name.startswith("pandas"))
    ratio = ours / rate[to_sql_name]
    verdict = "PASS" if ratio >= 20 else "BELOW TARGET"
    print(
        f"ratio dotjoin / pandas to_sql (linear extrapolation from {args.to_sql_rows:,} rows) = {ratio:6.1f}x"
        f"   target >= 20   {verdict}"
    )
    write_row_name = next(name for name in rate if name.startswith("psycopg"))
    print(f"ratio dotjoin / psycopg write_row (reference) = {ours / rate[write_row_name]:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
