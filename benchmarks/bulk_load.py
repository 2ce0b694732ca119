r"""Bulk load: Arrow → PostgreSQL through the warehouse adapter, against DuckDB's postgres extension and ADBC.

The same rows (bigint id, text, double, timestamp, bool, ~1% NULLs) are loaded in one invocation by:

* ``dotjoin``: ``Warehouse.load_arrow`` (binary COPY encoded from Arrow), table creation included;
* **DuckDB's postgres extension** (``duckdb-extension-postgres-scanner``, the strongest tool a user would
  pick instead — the headline ratio): the Arrow table registered in DuckDB, then
  ``INSERT INTO pg.public.t SELECT * FROM arrow_table`` into a pre-created table (connect, ``LOAD`` and
  ``ATTACH`` timed too);
* **ADBC** (``adbc-driver-postgresql``): ``cursor.adbc_ingest(t, table, mode="append")`` + commit into a
  pre-created table (connect timed too);
* ``psql \copy``: the same data written as CSV first (untimed), loaded by psql into a pre-created table
  (``PGPASSWORD`` in its environment, never on the command line);
* references, **extrapolated, not measured** on all rows (too slow): ``pandas.DataFrame.to_sql(method=
  "multi")`` through SQLAlchemy + psycopg2 and ``psycopg write_row``, on ``--to-sql-rows`` rows, once;
* DuckDB ``load_arrow`` into a file, for reference.

Targets: dotjoin ≥ 1.0x DuckDB's postgres extension's rows/s, ≥ 0.8x psql's. Every measured contender
runs ``--repeat`` times, round-robin, into a fresh table; the best run counts (the machine is shared).
The extension and ADBC come from the ``bench`` extra (see ``_baselines.py``); missing, they are skipped.

Usage: .venv/bin/python benchmarks/bulk_load.py [--rows N] [--repeat R] [--to-sql-rows M]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from _baselines import (
    adbc_connect,
    duckdb_attached,
    headline,
    machine,
    pg_password_env,
    psql,
    rounds,
    runs_text,
    timed,
    verdict,
)

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


def fresh(wh: Warehouse, table: str, *, create: bool) -> None:
    wh.execute(f'DROP TABLE IF EXISTS "{table}"')
    if create:
        wh.execute(f'CREATE TABLE "{table}" {DDL}')


def time_adapter(wh: Warehouse, table: str, data: pa.Table) -> float:
    fresh(wh, table, create=False)  # load_arrow creates it from the Arrow schema: that is timed
    started = time.perf_counter()
    assert wh.load_arrow(table, data) == data.num_rows
    return time.perf_counter() - started


def time_duckdb_pg(wh: Warehouse, settings: Settings, table: str, data: pa.Table) -> float:
    fresh(wh, table, create=True)
    with pg_password_env(settings.postgres):
        started = time.perf_counter()
        con = duckdb_attached(settings.postgres)
        try:
            con.register("arrow_table", data)
            con.execute(f'INSERT INTO pg.public."{table}" SELECT * FROM arrow_table')
        finally:
            con.close()
        elapsed = time.perf_counter() - started
    assert wh.scalar(f'SELECT count(*) FROM "{table}"') == data.num_rows
    return elapsed


def time_adbc(wh: Warehouse, settings: Settings, table: str, data: pa.Table) -> float:
    fresh(wh, table, create=True)
    with pg_password_env(settings.postgres):
        started = time.perf_counter()
        conn = adbc_connect(settings.postgres)
        try:
            with conn.cursor() as cur:
                cur.adbc_ingest(table, data, mode="append")
            conn.commit()
        finally:
            conn.close()
        elapsed = time.perf_counter() - started
    assert wh.scalar(f'SELECT count(*) FROM "{table}"') == data.num_rows
    return elapsed


def time_psql(wh: Warehouse, settings: Settings, table: str, csv_path: Path, rows: int) -> float:
    fresh(wh, table, create=True)
    command = f"\\copy \"{table}\" FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"
    elapsed = timed(lambda: psql(settings.postgres, command))
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
    fresh(wh, table, create=True)
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


def time_duckdb_file(wh: DuckDBWarehouse, data: pa.Table) -> float:
    wh.execute("DROP TABLE IF EXISTS bench")
    return timed(lambda: wh.load_arrow("bench", data))


ADAPTER = "dotjoin load_arrow (binary COPY)"
DUCKDB_PG = "DuckDB postgres ext INSERT  [baseline]"
ADBC_NAME = "ADBC adbc_ingest (append)"
PSQL = "psql \\copy CSV"
DUCKDB_FILE = "DuckDB load_arrow (file)  [reference]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--to-sql-rows", type=int, default=100_000, help="rows for to_sql (extrapolated)")
    parser.add_argument("--chunksize", type=int, default=1_000, help="to_sql chunksize")
    args = parser.parse_args(argv)

    settings = load_settings(profile="stack", cwd=REPO)
    data = make_rows(args.rows)
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    suffixes = ("adapter", "duckdb", "adbc", "psql", "to_sql", "write_row")
    try:
        wh = open_warehouse(settings)
    except DotjoinError as exc:
        print(f"bulk_load: skipped, {exc}")
        return 1
    extrapolated: list[tuple[str, int, float]] = []
    with wh, tempfile.TemporaryDirectory() as tmp, DuckDBWarehouse(Path(tmp) / "bench.duckdb") as duck:
        version = str(wh.scalar("SHOW server_version"))
        try:
            csv_path = Path(tmp) / "rows.csv"
            pa_csv.write_csv(data, csv_path)  # untimed: psql's input
            contenders = {
                ADAPTER: lambda: time_adapter(wh, f"{prefix}_adapter", data),
                DUCKDB_PG: lambda: time_duckdb_pg(wh, settings, f"{prefix}_duckdb", data),
                ADBC_NAME: lambda: time_adbc(wh, settings, f"{prefix}_adbc", data),
                PSQL: lambda: time_psql(wh, settings, f"{prefix}_psql", csv_path, args.rows),
                DUCKDB_FILE: lambda: time_duckdb_file(duck, data),
            }
            times = rounds(args.repeat, contenders)
            small = data.slice(0, min(args.to_sql_rows, args.rows))
            to_sql = time_to_sql(settings, f"{prefix}_to_sql", small, args.chunksize)
            extrapolated.append((f"pandas to_sql multi, chunksize {args.chunksize}", small.num_rows, to_sql))
            write_row = time_write_row(wh, settings, f"{prefix}_write_row", small)
            extrapolated.append(("psycopg copy.write_row (per row)", small.num_rows, write_row))
        finally:
            for suffix in suffixes:
                wh.execute(f'DROP TABLE IF EXISTS "{prefix}_{suffix}"')

    print(
        f"\nbulk_load: {args.rows:,} rows (bigint, text, double, timestamp, bool; ~1% NULLs) into PostgreSQL "
        f"{version} at {settings.postgres.address}\n{machine()}\n"
        f"measured: best of {args.repeat}, round-robin; references: one run on {args.to_sql_rows:,} rows\n"
    )
    print(f"{'method':<42} {'best s':>8} {'rows/s':>12}   all runs (s)")
    best = {name: min(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:<42} {best[name]:>8.3f} {args.rows / best[name]:>12,.0f}   {runs_text(ts)}")
    for name, rows, seconds in extrapolated:
        print(
            f"{name:<42} {seconds:>8.3f} {rows / seconds:>12,.0f}   one run on {rows:,} rows "
            f"(extrapolated, not measured: {seconds * args.rows / rows:.1f} s for {args.rows:,})"
        )
    ours = best[ADAPTER]
    print()
    for name, target in ((DUCKDB_PG, 1.0), (ADBC_NAME, None), (PSQL, 0.8)):
        if name not in best:
            continue
        ratio = best[name] / ours  # speed ratio: their seconds over ours
        goal = f"target >= {target}   {verdict(ratio >= target)}" if target else "(reference)"
        print(f"speed dotjoin / {name.split('  ')[0]:<34} = {ratio:5.2f}x   {goal}")
    for name, rows, seconds in extrapolated:
        ratio = seconds * args.rows / rows / ours
        print(f"speed dotjoin / {name:<34} = {ratio:5.1f}x   (vs an extrapolation, reference only)")
    if DUCKDB_PG in best:
        ratio = best[DUCKDB_PG] / ours
        headline(
            "bulk_load",
            f"Arrow→PostgreSQL {args.rows:,} rows: dotjoin {ours:.3f}s vs DuckDB postgres ext "
            f"{best[DUCKDB_PG]:.3f}s (best of {args.repeat} each) = {ratio:.2f}x DuckDB's speed, "
            f"target >= 1.0 {verdict(ratio >= 1.0)}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
