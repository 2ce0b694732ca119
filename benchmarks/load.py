"""``dotjoin load`` of a ≥ 2 GiB generic CSV into DuckDB (inferred schema) vs DuckDB's own ``read_csv``.

One generated CSV (``--gib`` GiB, default 2: an id, names with quotes and commas, amounts, UTC
timestamps, booleans, dates, a country code, scores and a sometimes-empty note; written once under
``--data-dir`` and reused) is loaded into a fresh DuckDB file, in the same invocation, ``--repeat``
times each, round-robin, each run in its own child process:

* ``dotjoin load FILE --table events --engine duckdb``: ``dotjoin.pipelines.load.pipeline.run`` —
  dialect and encoding detected, schema inferred (written as YAML), every row typed or quarantined with
  its line, the reconciliation queries; the whole run is timed;
* **DuckDB** (the strongest tool a user would pick instead): ``CREATE TABLE events AS SELECT * FROM
  read_csv(FILE)`` — its sniffer types the columns; connect and checkpoint timed too.

``--memory-limit 256MB`` caps DuckDB's buffer pool on both sides (dotjoin through
``DOTJOIN__WAREHOUSE__MEMORY_LIMIT``). Targets: dotjoin ≥ 0.5x DuckDB's speed (its time ≤ 2x), and
dotjoin's peak RSS ≤ 1 GiB (``VmHWM`` of the child, whose own memory includes DuckDB's buffer pool: the
warehouse runs in process). The best run counts for time, the highest peak RSS for memory.

Usage: .venv/bin/python benchmarks/load.py [--gib 2] [--repeat 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from _baselines import headline, machine, peak_rss_child, rounds, runs_text, verdict

REPO = Path(__file__).resolve().parents[1]
BATCH_ROWS = 1_000_000
RSS_LIMIT_MIB = 1024.0
TARGET_SPEED = 0.5  # dotjoin's speed / DuckDB's


def make_batch(n: int, start: int, seed: int) -> pa.Table:
    """``n`` generic rows with ids from ``start``; the same arguments give the same rows."""
    rng = np.random.default_rng(seed)
    first = pa.array(["Ana", "Bjørn", "Chloé", "Dmitri", "Eve", "Fatima", "Günter", "Hiro", "Ines", "José"])
    last = pa.array(["Silva", "O'Brien", "Müller", 'de "la" Cruz', "Smith, Jr.", "Tanaka", "Nowak", "Ngata"])
    name = pc.binary_join_element_wise(
        pc.take(first, pa.array(rng.integers(0, len(first), n))),
        pc.take(last, pa.array(rng.integers(0, len(last), n))),
        " ",
    )
    countries = pa.array(["PT", "DE", "FR", "JP", "US", "BR", "KE", "NO", "NZ", "IN"])
    notes = pa.array(["", "", "", "first order", "gift, wrapped", "call before delivery", 'said "asap"'])
    seconds = 1_600_000_000 + rng.integers(0, 5 * 365 * 86_400, n)
    return pa.table(
        {
            "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "customer": name,
            "amount": pa.array(np.round(rng.gamma(2.0, 40.0, n), 2)),
            "created_at": pa.array(seconds, pa.timestamp("s", tz="UTC")),
            "active": pa.array(rng.random(n) < 0.7),
            "signup": pa.array((seconds // 86_400 - rng.integers(0, 900, n)).astype(np.int32), pa.date32()),
            "country": pc.take(countries, pa.array(rng.integers(0, len(countries), n))),
            "score": pa.array(rng.integers(-50, 1000, n)),
            "note": pc.take(notes, pa.array(rng.integers(0, len(notes), n))),
        }
    )


def sample(directory: Path, gib: float, seed: int) -> tuple[Path, int]:
    """The generated file of at least ``gib`` GiB and its row count (reused when already there)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"events-{gib:g}gib-seed{seed}.csv"
    done = path.with_suffix(".rows")
    if path.is_file() and done.is_file():
        return path, int(done.read_text())
    started = time.perf_counter()
    rows = 0
    partial = path.with_suffix(".partial")
    with pa_csv.CSVWriter(partial, make_batch(1, 0, seed).schema) as writer:
        while partial.stat().st_size < gib * 2**30:
            writer.write_table(make_batch(BATCH_ROWS, rows, seed + rows))
            rows += BATCH_ROWS
    partial.rename(path)
    done.write_text(str(rows))
    print(
        f"  generated {rows:,} rows ({path.stat().st_size / 2**30:.2f} GiB) in "
        f"{time.perf_counter() - started:.0f}s"
    )
    return path, rows


DOTJOIN_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dotjoin.config import load_settings
    from dotjoin.pipelines.load.pipeline import run
    state, limit = Path(sys.argv[1]), sys.argv[3]
    env = {"DOTJOIN__WAREHOUSE__MEMORY_LIMIT": limit} if limit else {}
    settings = load_settings(profile="local", env=env).model_copy(update={"state_dir": state})
    started = time.perf_counter()
    report = run(settings, target=sys.argv[2], table="events")
    RESULT = {"seconds": time.perf_counter() - started, "status": report.status, "counts": report.counts,
              "columns": report.params.get("columns", {})}
    """
)

DUCKDB_CHILD = textwrap.dedent(
    """
    import sys, time
    import duckdb
    started = time.perf_counter()
    con = duckdb.connect(sys.argv[1] + "/warehouse.duckdb")
    if sys.argv[3]:
        con.execute(f"SET memory_limit = '{sys.argv[3]}'")
    con.execute("CREATE TABLE events AS SELECT * FROM read_csv(?)", [sys.argv[2]])
    con.execute("CHECKPOINT")
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    types = [f"{r[0]} {r[1]}" for r in con.execute("DESCRIBE events").fetchall()]
    con.close()
    RESULT = {"seconds": time.perf_counter() - started, "rows": rows, "types": types}
    """
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gib", type=float, default=2.0, help="size of the generated CSV")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the best counts")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".dotjoin" / "bench" / "load")
    parser.add_argument(
        "--memory-limit",
        default="",
        help="DuckDB memory_limit on both sides (dotjoin: DOTJOIN__WAREHOUSE__MEMORY_LIMIT)",
    )
    args = parser.parse_args(argv)

    limit = args.memory_limit or "DuckDB's default (80% of RAM)"
    print(f"load benchmark (dotjoin load vs DuckDB read_csv, into DuckDB), memory_limit {limit}\n{machine()}")
    path, rows = sample(args.data_dir, args.gib, args.seed)
    results: dict[str, list[dict[str, Any]]] = {"dotjoin": [], "duckdb": []}

    def contender(name: str, code: str) -> float:
        state = args.data_dir / f"state-{name}"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        try:
            result = peak_rss_child(code, str(state), str(path), args.memory_limit, cwd=REPO)
        finally:
            shutil.rmtree(state, ignore_errors=True)
        results[name].append(result)
        return float(result["seconds"])

    times = rounds(
        args.repeat,
        {
            "dotjoin": lambda: contender("dotjoin", DOTJOIN_CHILD),
            "duckdb": lambda: contender("duckdb", DUCKDB_CHILD),
        },
    )
    report(args, path, rows, times, results)
    return 0


def report(
    args: argparse.Namespace,
    path: Path,
    rows: int,
    times: dict[str, list[float]],
    results: dict[str, list[dict[str, Any]]],
) -> None:
    size_gib = path.stat().st_size / 2**30
    ours, theirs = min(times["dotjoin"]), min(times["duckdb"])
    rss = {name: max(float(r["peak_rss_mib"]) for r in rs) for name, rs in results.items()}
    print(
        f"\n{rows:,} rows, {size_gib:.2f} GiB ({path});"
        f" {args.repeat} rounds, round-robin, each run in a child process\n"
        f"\n{'method':<38} {'best s':>8} {'rows/s':>11} {'MiB/s':>7} {'peak RSS':>9}   all runs (s)"
    )
    labels = {"dotjoin": "dotjoin load (inferred schema)", "duckdb": "DuckDB read_csv CTAS [baseline]"}
    for name, label in labels.items():
        best = min(times[name])
        print(
            f"{label:<38} {best:>8.1f} {rows / best:>11,.0f} {size_gib * 1024 / best:>7.0f} "
            f"{rss[name]:>6,.0f} MiB   {runs_text(times[name])}"
        )
    last = results["dotjoin"][-1]
    ours_types = ", ".join(f"{k} {v['type']}" for k, v in last["columns"].items())
    print(
        f"\n   dotjoin: status {last['status']}, counts {last['counts']}\n"
        f"   dotjoin types: {ours_types}\n"
        f"   DuckDB types:  {', '.join(results['duckdb'][-1]['types'])}"
    )
    speed, rss_ok = theirs / ours, rss["dotjoin"] <= RSS_LIMIT_MIB
    print(
        f"\nspeed dotjoin / DuckDB = {speed:.2f}x (time {ours / theirs:.2f}x)   target >= {TARGET_SPEED}   "
        f"{verdict(speed >= TARGET_SPEED)}\n"
        f"peak RSS of dotjoin   = {rss['dotjoin']:,.0f} MiB   target <= {RSS_LIMIT_MIB:,.0f} MiB   "
        f"{verdict(rss_ok)}"
    )
    headline(
        "load",
        f"{size_gib:.2f} GiB CSV → DuckDB{f' (memory_limit {args.memory_limit})' * bool(args.memory_limit)},"
        f" best of {args.repeat}: dotjoin load {ours:.1f}s vs DuckDB"
        f" read_csv {theirs:.1f}s = {speed:.2f}x its speed (target >= {TARGET_SPEED},"
        f" {verdict(speed >= TARGET_SPEED)}); peak RSS {rss['dotjoin']:,.0f} MiB (target <= 1024,"
        f" {verdict(rss_ok)})",
    )


if __name__ == "__main__":
    sys.exit(main())
