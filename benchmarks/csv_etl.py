"""CSV → PostgreSQL: one messy file by dotjoin (2 ways), DuckDB, ``psql \\copy``, pandas; a big file's RSS.

1. **Speed.** One generated messy commits file (``dotjoin sample commits``, default 1,000,000 rows, dirty
   rate 0.05) is loaded into the stack's PostgreSQL, in the same invocation, each contender
   ``--repeat`` times (round-robin, into fresh tables; the best run counts, every run is printed):

   a. ``dotjoin etl csv --dataset commits``: read, detect, clean, deduplicate, quarantine, bulk-load in
      one transaction, then the SQL checks on the committed table — the **whole run** is timed;
   b. ``dotjoin load`` with the inferred schema (no cleaning rules): typed or quarantined per row, its
      reconciliation queries included;
   c. **DuckDB** (the strongest tool a user would pick instead): ``read_csv(..., store_rejects=true)``
      → ``CREATE TABLE pg.public.t AS ...`` through DuckDB's postgres extension (connect, ``LOAD``,
      ``ATTACH`` timed). It rejects ragged and non-UTF-8 rows (printed: loaded vs rejected) and keeps
      columns its sniffer cannot type as VARCHAR; it cleans and deduplicates nothing;
   d. ``psql \\copy`` — **the floor**: the clean rows dotjoin loaded, written once as CSV (untimed),
      copied into a table defined like ``commits`` (``LIKE commits INCLUDING ALL``: same primary key);
   e. ``pandas.read_csv`` (``dtype=str``, ``encoding_errors="replace"``, ``on_bad_lines="skip"``: without
      them pandas stops at the first cp1252 byte or ragged row) + ``DataFrame.to_sql(method="multi",
      chunksize=10_000)`` through SQLAlchemy + psycopg2, timed whole on all rows. If one run takes
      longer than ``--pandas-budget`` seconds it is not repeated (its repeat count is printed).

   Targets: dotjoin's whole run ≤ 2x DuckDB's time, ≤ 1.5x the ``\\copy`` floor's.
2. **Memory.** A ≥ ``--big-gib`` GiB commits file (``--no-record-truth``) is loaded by a child process;
   its peak RSS (``VmHWM`` of the child's ``/proc/self/status``) must stay ≤ 1 GiB.

The runs drop and re-create the pipelines' tables (commits, csv_etl_*, bench_csv_*) in the stack's
PostgreSQL. Generated inputs are cached under ``--data-dir`` (same arguments, same bytes). DuckDB's
postgres extension comes from the ``bench`` extra (see ``_baselines.py``); missing, it is skipped.

Usage: .venv/bin/python benchmarks/csv_etl.py [--rows N] [--repeat R] [--big-gib G | --big-gib 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from _baselines import (
    EnoughRunsError,
    duckdb_attached,
    headline,
    machine,
    peak_rss_child,
    pg_password_env,
    psql,
    rounds,
    runs_text,
    verdict,
)

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import DotjoinError
from dotjoin.pipelines.csv_etl.pipeline import run as etl_run
from dotjoin.pipelines.load.pipeline import run as load_run
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.csv_etl.generator import generate
from dotjoin.simulate.csv_etl.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]
TABLES = ("commits", "csv_etl_duplicates", "csv_etl_loads")
LOAD_TABLE = "bench_csv_load"
DUCK_TABLE = "bench_csv_duckdb"
FLOOR_TABLE = "bench_csv_copy"
PANDAS_TABLE = "bench_csv_pandas"
TARGET_VS_DUCKDB = 2.0  # dotjoin's seconds / DuckDB's
TARGET_VS_FLOOR = 1.5  # dotjoin's seconds / psql \copy's
RSS_LIMIT_MB = 1024.0

ETL = "a. dotjoin etl csv (whole run, checks incl.)"
LOAD = "b. dotjoin load (inferred schema)"
DUCK = "c. DuckDB read_csv → postgres ext"
FLOOR = "d. psql \\copy of the clean rows (floor)"
PANDAS = "e. pandas read_csv + to_sql multi 10k"


def sample(directory: Path, rows: int, dirty_rate: float, seed: int, *, truth: bool) -> Path:
    """The generated commits file for these arguments (reused when already there)."""
    path = directory / "commits.csv"
    try:
        head = Manifest.read_head(directory)
        if (head.rows, head.dirty_rate, head.seed) == (rows, dirty_rate, seed) and path.is_file():
            return path
    except (FileNotFoundError, ValueError):
        pass  # no usable earlier sample: generate it below
    started = time.perf_counter()
    generate("commits", rows=rows, dirty_rate=dirty_rate, seed=seed, out=directory, record_truth=truth)
    print(
        f"  generated {rows:,} rows ({path.stat().st_size / 2**20:,.0f} MiB)"
        f" in {time.perf_counter() - started:.0f}s"
    )
    return path


def reset(settings: Settings) -> None:
    with open_warehouse(settings) as wh:
        for table in TABLES:
            wh.execute(f"DROP TABLE IF EXISTS {table}")
        if wh.table_exists("quarantine"):
            wh.execute("DELETE FROM quarantine WHERE pipeline = 'csv_etl'")


@dataclass
class Observed:
    """What the contenders did besides taking time (for the honesty lines)."""

    etl_checks_s: list[float] = field(default_factory=list)
    etl_counts: dict[str, int] = field(default_factory=dict)
    load_counts: dict[str, int] = field(default_factory=dict)
    duck_loaded: int = 0
    duck_rejected_lines: int = 0
    duck_types: str = ""
    floor_rows: int = 0
    pandas_rows: int = 0
    pandas_read_s: list[float] = field(default_factory=list)


def time_etl(settings: Settings, path: Path, seen: Observed) -> float:
    reset(settings)
    started = time.perf_counter()
    report = etl_run(settings, dataset="commits", input_path=path)
    elapsed = time.perf_counter() - started
    if report.status != "succeeded":
        raise SystemExit(f"dotjoin etl csv failed: {[c for c in report.checks if not c.passed]}")
    seen.etl_checks_s.append(report.metrics.get("checks_s", 0.0))
    seen.etl_counts = report.counts
    return elapsed


def time_load(settings: Settings, path: Path, seen: Observed) -> float:
    with open_warehouse(settings) as wh:
        wh.execute(f"DROP TABLE IF EXISTS {LOAD_TABLE}")
        if wh.table_exists("quarantine"):
            wh.execute("DELETE FROM quarantine WHERE pipeline = $1", [f"load:{LOAD_TABLE}"])
    started = time.perf_counter()
    report = load_run(settings, target=str(path), table=LOAD_TABLE)
    elapsed = time.perf_counter() - started
    if report.status != "succeeded":
        raise SystemExit(f"dotjoin load failed: {[c for c in report.checks if not c.passed]}")
    seen.load_counts = report.counts
    return elapsed


def time_duckdb(settings: Settings, path: Path, seen: Observed) -> float:
    with open_warehouse(settings) as wh:
        wh.execute(f"DROP TABLE IF EXISTS {DUCK_TABLE}")
    with pg_password_env(settings.postgres):
        started = time.perf_counter()
        con = duckdb_attached(settings.postgres)
        try:
            con.execute(
                f"CREATE TABLE pg.public.{DUCK_TABLE} AS SELECT * FROM read_csv(?, store_rejects = true)",
                [str(path)],
            )
            elapsed = time.perf_counter() - started
            rejected = con.execute("SELECT count(DISTINCT (file_id, line)) FROM reject_errors").fetchone()
            types = con.execute(f"DESCRIBE pg.public.{DUCK_TABLE}").fetchall()
        finally:
            con.close()
    with open_warehouse(settings) as wh:
        seen.duck_loaded = int(wh.scalar(f"SELECT count(*) FROM {DUCK_TABLE}") or 0)
    seen.duck_rejected_lines = int(rejected[0]) if rejected else 0
    kinds: dict[str, int] = {}
    for row in types:
        kinds[str(row[1])] = kinds.get(str(row[1]), 0) + 1
    seen.duck_types = ", ".join(f"{n} {t}" for t, n in sorted(kinds.items()))
    return elapsed


def floor_input(settings: Settings, path: Path, directory: Path) -> Path:
    """dotjoin's clean rows as CSV (one untimed etl run), for the \\copy floor."""
    out = directory / "clean_rows.csv"
    if out.is_file() and out.stat().st_mtime > path.stat().st_mtime:
        return out
    reset(settings)
    etl_run(settings, dataset="commits", input_path=path)
    psql(settings.postgres, f"\\copy commits TO '{out}' WITH (FORMAT csv, HEADER true)")
    return out


def time_floor(settings: Settings, clean: Path, seen: Observed) -> float:
    with open_warehouse(settings) as wh:
        wh.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        if not wh.table_exists("commits"):
            from dotjoin.pipelines.csv_etl.load import sql_text

            wh.execute(sql_text("ddl_commits"))
        wh.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE commits INCLUDING ALL)")
    started = time.perf_counter()
    psql(settings.postgres, f"\\copy {FLOOR_TABLE} FROM '{clean}' WITH (FORMAT csv, HEADER true)")
    elapsed = time.perf_counter() - started
    with open_warehouse(settings) as wh:
        seen.floor_rows = int(wh.scalar(f"SELECT count(*) FROM {FLOOR_TABLE}") or 0)
    return elapsed


def time_pandas(settings: Settings, path: Path, seen: Observed) -> float:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(settings.postgres.sqlalchemy_url())
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {PANDAS_TABLE}")
        started = time.perf_counter()
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding_errors="replace", on_bad_lines="skip"
        )
        seen.pandas_read_s.append(time.perf_counter() - started)
        frame.to_sql(PANDAS_TABLE, engine, if_exists="replace", index=False, method="multi", chunksize=10_000)
        elapsed = time.perf_counter() - started
        seen.pandas_rows = len(frame)
    finally:
        engine.dispose()
    return elapsed


def speed(settings: Settings, path: Path, args: argparse.Namespace) -> None:
    size_mib = path.stat().st_size / 2**20
    seen = Observed()
    clean = floor_input(settings, path, path.parent)
    pandas_runs: list[float] = []

    def pandas() -> float:
        if pandas_runs and pandas_runs[0] > args.pandas_budget:
            raise EnoughRunsError
        pandas_runs.append(time_pandas(settings, path, seen))
        return pandas_runs[-1]

    contenders = {
        ETL: lambda: time_etl(settings, path, seen),
        LOAD: lambda: time_load(settings, path, seen),
        DUCK: lambda: time_duckdb(settings, path, seen),
        FLOOR: lambda: time_floor(settings, clean, seen),
        PANDAS: pandas,
    }
    if args.skip_pandas:
        del contenders[PANDAS]
    try:
        times = rounds(args.repeat, contenders)
    finally:
        reset(settings)
        with open_warehouse(settings) as wh:
            for table in (LOAD_TABLE, DUCK_TABLE, FLOOR_TABLE, PANDAS_TABLE):
                wh.execute(f"DROP TABLE IF EXISTS {table}")
    best = {name: min(ts) for name, ts in times.items()}
    print(
        f"\n1) {args.rows:,} messy commit rows ({size_mib:,.0f} MiB, dirty rate {args.dirty_rate})"
        f" into PostgreSQL; {args.repeat} rounds, round-robin, best run counts\n"
    )
    print(f"{'method':<46} {'runs':>4} {'best s':>8} {'rows/s':>10}   all runs (s)")
    for name, ts in times.items():
        print(
            f"{name:<46} {len(ts):>4} {best[name]:>8.2f} {args.rows / best[name]:>10,.0f}   {runs_text(ts)}"
        )
    print(
        f"\n   a. counts {seen.etl_counts}; its SQL checks: {runs_text(seen.etl_checks_s)} s of those runs"
        f"\n   b. counts {seen.load_counts}"
    )
    if DUCK in times:
        print(
            f"   c. DuckDB loaded {seen.duck_loaded:,} rows, rejected {seen.duck_rejected_lines:,} lines "
            f"(ragged, non-UTF-8); columns {seen.duck_types}; no cleaning, no dedup, no checks"
        )
    print(f"   d. {seen.floor_rows:,} clean rows (dotjoin's output) into LIKE commits INCLUDING ALL")
    if PANDAS in times:
        print(
            f"   e. pandas kept {seen.pandas_rows:,} rows (bad lines skipped, cp1252 garbled), all text; "
            f"read_csv {runs_text(seen.pandas_read_s)} s of those runs; {len(times[PANDAS])} run(s)"
        )
    print()
    ours = best[ETL]
    summary = [f"dotjoin etl csv whole run {ours:.2f}s"]
    for name, baseline, target in (
        (DUCK, "DuckDB", TARGET_VS_DUCKDB),
        (FLOOR, "\\copy floor", TARGET_VS_FLOOR),
    ):
        if name not in best:
            continue
        for who, mine in ((ETL, ours), (LOAD, best[LOAD])):
            ratio = mine / best[name]
            print(
                f"time {who.split(' (')[0][3:]:<18} / {baseline:<12} = {ratio:5.2f}x "
                f"({1 / ratio:.2f}x its speed)   target <= {target}   {verdict(ratio <= target)}"
            )
        summary.append(
            f"{ours / best[name]:.2f}x {baseline}'s {best[name]:.2f}s (target <= {target}, "
            f"{verdict(ours / best[name] <= target)})"
        )
    if PANDAS in best:
        print(
            f"speed dotjoin etl csv / pandas = {best[PANDAS] / ours:5.1f}x "
            f"(pandas: {len(times[PANDAS])} run(s))"
        )
        summary.append(f"{best[PANDAS] / ours:.1f}x faster than pandas")
    summary.append(f"dotjoin load {best[LOAD]:.2f}s")
    headline(
        "csv_etl", f"{args.rows:,} messy rows → PostgreSQL, best of {args.repeat}: " + "; ".join(summary)
    )


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dotjoin.config import load_settings
    from dotjoin.pipelines.csv_etl.pipeline import run
    settings = load_settings(profile="stack").model_copy(update={"state_dir": Path(sys.argv[1])})
    started = time.perf_counter()
    report = run(settings, dataset="commits", input_path=Path(sys.argv[2]))
    RESULT = {"seconds": time.perf_counter() - started, "status": report.status, "counts": report.counts}
    """
)


def memory(settings: Settings, path: Path, args: argparse.Namespace) -> None:
    rows_big = int(args.big_gib * 2**30 / (path.stat().st_size / args.rows) * 1.01)  # 1% over the size
    big = sample(args.data_dir / f"commits-{rows_big}", rows_big, args.dirty_rate, args.seed, truth=False)
    gib = big.stat().st_size / 2**30
    reset(settings)
    summary = peak_rss_child(CHILD, str(settings.state_dir), str(big), cwd=REPO)
    reset(settings)
    rss_mib, seconds = float(summary["peak_rss_mib"]), float(summary["seconds"])
    ok = rss_mib <= RSS_LIMIT_MB and gib >= args.big_gib and summary["status"] == "succeeded"
    print(
        f"\n2) {gib:.2f} GiB file ({rows_big:,} rows) in a child process, one run: {seconds:.0f}s "
        f"({rows_big / seconds:,.0f} rows/s), status {summary['status']}\n"
        f"peak RSS of the child = {rss_mib:,.0f} MiB   target <= {RSS_LIMIT_MB:,.0f} MiB   {verdict(ok)}"
    )
    headline("csv_etl", f"{gib:.2f} GiB etl csv: peak RSS {rss_mib:,.0f} MiB (target <= 1024, {verdict(ok)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dirty-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the best counts")
    parser.add_argument(
        "--pandas-budget", type=float, default=600.0, help="seconds: a slower pandas run is not repeated"
    )
    parser.add_argument("--skip-pandas", action="store_true", help="leave contender e out")
    parser.add_argument("--big-gib", type=float, default=2.0, help="size of the RSS test file; 0 skips it")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".dotjoin" / "bench" / "csv_etl")
    parser.add_argument("--only", choices=("speed", "memory"), help="run one of the two parts")
    args = parser.parse_args(argv)

    env = {k: v for k, v in os.environ.items() if k.startswith("DOTJOIN__")}
    settings = load_settings(profile="stack", cwd=REPO, env=env)
    settings = settings.model_copy(update={"state_dir": args.data_dir / "state"})
    try:
        with open_warehouse(settings) as wh:
            version = str(wh.scalar("SHOW server_version"))
    except DotjoinError as exc:
        print(f"csv_etl: skipped, {exc}")
        return 1

    print(f"csv_etl benchmark: PostgreSQL {version} at {settings.postgres.address}\n{machine()}")
    path = sample(args.data_dir / f"commits-{args.rows}", args.rows, args.dirty_rate, args.seed, truth=False)
    if args.only != "memory":
        speed(settings, path, args)
    if args.big_gib > 0 and args.only != "speed":
        memory(settings, path, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
