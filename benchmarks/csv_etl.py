"""CSV ETL: end to end into PostgreSQL vs ``pandas.read_csv`` + ``to_sql``, and a ≥ 2 GiB file's RSS.

1. **Speed.** One generated messy commits file (``dotjoin sample commits``, default 1,000,000 rows, dirty
   rate 0.05) is loaded end to end by ``dotjoin`` — read, detect, clean, deduplicate, quarantine, bulk-load
   into PostgreSQL in one transaction, then the SQL checks — and, in the same invocation, by the
   baseline: ``pandas.read_csv`` of the same file (``dtype=str``, ``encoding_errors="replace"``,
   ``on_bad_lines="skip"``: without them pandas stops at the first cp1252 byte or ragged row) followed by
   ``DataFrame.to_sql(method="multi", chunksize=10_000)`` through SQLAlchemy + psycopg2. ``read_csv`` is
   timed on the whole file; ``to_sql`` on a ``--to-sql-rows`` prefix, extrapolated linearly to all rows
   (it is too slow to run on a million). The baseline does no cleaning, no dedup, no checks.
   dotjoin runs ``--repeat`` times (the best counts: the machine is shared); the baseline runs once.
   Target: dotjoin ≥ 25x faster. Printed twice: for the issue's scope (read, clean, dedup, load) and
   for the whole run including the SQL checks on the committed table.
2. **Memory.** A ≥ ``--big-gib`` GiB commits file (``--no-record-truth``) is loaded by a child process;
   its peak RSS (``VmHWM`` of the child's ``/proc/self/status``) must stay ≤ 1 GiB.

Both runs drop and re-create the pipeline's tables (commits, csv_etl_*) in the stack's PostgreSQL.
Generated inputs are cached under ``--data-dir`` (same arguments, same bytes).

Usage: .venv/bin/python benchmarks/csv_etl.py [--rows N] [--to-sql-rows M] [--big-gib G | --big-gib 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import DotjoinError
from dotjoin.pipelines.csv_etl.pipeline import run
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.csv_etl.generator import generate
from dotjoin.simulate.csv_etl.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]
TABLES = ("commits", "csv_etl_duplicates", "csv_etl_loads")
TARGET_RATIO = 25.0
RSS_LIMIT_MB = 1024.0


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


def time_dotjoin(settings: Settings, path: Path) -> tuple[float, dict[str, float], dict[str, int]]:
    reset(settings)
    started = time.perf_counter()
    report = run(settings, dataset="commits", input_path=path)
    elapsed = time.perf_counter() - started
    if report.status != "succeeded":
        raise SystemExit(f"dotjoin run failed: {[c for c in report.checks if not c.passed]}")
    return elapsed, report.metrics, report.counts


def time_pandas(settings: Settings, path: Path, to_sql_rows: int) -> tuple[float, float, int, int]:
    """(read_csv seconds, to_sql seconds on the prefix, rows read, prefix rows)."""
    import pandas as pd
    import sqlalchemy

    started = time.perf_counter()
    frame = pd.read_csv(
        path, dtype=str, keep_default_na=False, encoding_errors="replace", on_bad_lines="skip"
    )
    read_s = time.perf_counter() - started
    prefix = frame.iloc[: min(to_sql_rows, len(frame))]
    engine = sqlalchemy.create_engine(settings.postgres.sqlalchemy_url())
    try:
        started = time.perf_counter()
        prefix.to_sql(
            "bench_csv_etl_pandas", engine, if_exists="replace", index=False, method="multi", chunksize=10_000
        )
        to_sql_s = time.perf_counter() - started
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_csv_etl_pandas")
        engine.dispose()
    return read_s, to_sql_s, len(frame), len(prefix)


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from dotjoin.config import load_settings
    from dotjoin.pipelines.csv_etl.pipeline import run
    settings = load_settings(profile="stack").model_copy(update={"state_dir": Path(sys.argv[1])})
    started = time.perf_counter()
    report = run(settings, dataset="commits", input_path=Path(sys.argv[2]))
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    hwm_kib = int(status["VmHWM"].split()[0])  # this process's own peak RSS (resets at exec)
    print(json.dumps({"seconds": time.perf_counter() - started, "status": report.status,
                      "counts": report.counts, "peak_rss_kib": hwm_kib}))
    """
)


def big_file_rss(settings: Settings, path: Path) -> tuple[float, dict[str, object]]:
    """Load ``path`` in a child process; (its peak RSS in MiB, its summary).

    The child reports ``VmHWM`` of ``/proc/self/status``: its own peak RSS. (``getrusage`` of a child
    also counts the parent's image it had before ``exec``: after the pandas baseline, the parent is big.)
    """
    reset(settings)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(settings.state_dir), str(path)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    if child.returncode != 0:
        raise SystemExit(f"big-file run failed: {child.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(child.stdout.strip().splitlines()[-1])
    return int(summary["peak_rss_kib"]) / 1024, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dirty-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--to-sql-rows", type=int, default=100_000, help="rows timed for to_sql (extrapolated)"
    )
    parser.add_argument("--big-gib", type=float, default=2.0, help="size of the RSS test file; 0 skips it")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".dotjoin" / "bench" / "csv_etl")
    parser.add_argument("--only", choices=("speed", "memory"), help="run one of the two parts")
    parser.add_argument(
        "--repeat", type=int, default=3, help="dotjoin runs; the best counts (shared machine)"
    )
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

    print(f"csv_etl benchmark: PostgreSQL {version} at {settings.postgres.address}, {os.cpu_count()} CPUs")
    path = sample(args.data_dir / f"commits-{args.rows}", args.rows, args.dirty_rate, args.seed, truth=False)
    if args.only != "memory":
        speed(settings, path, args)
    if args.big_gib > 0 and args.only != "speed":
        memory(settings, path, args)
    return 0


def speed(settings: Settings, path: Path, args: argparse.Namespace) -> None:
    size_mib = path.stat().st_size / 2**20
    runs = [time_dotjoin(settings, path) for _ in range(args.repeat)]
    ours, metrics, counts = min(runs, key=lambda r: r[0])
    read_s, to_sql_s, pandas_rows, prefix_rows = time_pandas(settings, path, args.to_sql_rows)
    reset(settings)
    baseline = read_s + to_sql_s * pandas_rows / prefix_rows
    checks_s = metrics.get("checks_s", 0.0)
    load_s = ours - checks_s
    print(
        f"\n1) {args.rows:,} messy commit rows ({size_mib:,.0f} MiB, dirty rate {args.dirty_rate})"
        f" into PostgreSQL; dotjoin best of {args.repeat}"
        f" ({', '.join(f'{r[0]:.2f}s' for r in runs)}), pandas one run\n"
        f"   dotjoin counts: {counts}\n"
    )
    print(f"{'method':<62} {'seconds':>9} {'rows/s':>12}")
    table = [
        ("dotjoin etl csv: read+detect+clean+dedup+quarantine+load+commit", load_s, args.rows),
        ("  + the SQL checks on the committed table (whole run)", ours, args.rows),
        ("pandas read_csv (whole file)", read_s, pandas_rows),
        (f"pandas to_sql multi, chunksize 10000 ({prefix_rows:,} rows)", to_sql_s, prefix_rows),
        (f"  baseline total, to_sql extrapolated to {pandas_rows:,} rows", baseline, pandas_rows),
    ]
    for name, seconds, n in table:
        print(f"{name:<62} {seconds:>9.2f} {n / seconds:>12,.0f}")
    for label, seconds in (
        ("read, clean, dedup, load (the issue's scope)", load_s),
        ("whole run incl. SQL checks", ours),
    ):
        ratio = baseline / seconds
        verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(
            f"ratio dotjoin ({label}) / pandas read_csv + to_sql (linear extrapolation from "
            f"{prefix_rows:,} rows) = {ratio:.1f}x   target >= {TARGET_RATIO:.0f}   {verdict}"
        )


def memory(settings: Settings, path: Path, args: argparse.Namespace) -> None:
    rows_big = int(args.big_gib * 2**30 / (path.stat().st_size / args.rows) * 1.01)  # 1% over the size
    big = sample(args.data_dir / f"commits-{rows_big}", rows_big, args.dirty_rate, args.seed, truth=False)
    gib = big.stat().st_size / 2**30
    rss_mib, summary = big_file_rss(settings, big)
    reset(settings)
    seconds = float(summary["seconds"])  # type: ignore[arg-type]
    verdict = "PASS" if rss_mib <= RSS_LIMIT_MB and gib >= args.big_gib else "BELOW TARGET"
    print(
        f"\n2) {gib:.2f} GiB file ({rows_big:,} rows) in a child process: {seconds:.0f}s "
        f"({rows_big / seconds:,.0f} rows/s), status {summary['status']}\n"
        f"peak RSS of the child = {rss_mib:,.0f} MiB   target <= {RSS_LIMIT_MB:,.0f} MiB   {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
