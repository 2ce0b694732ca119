"""Does an Iceberg commit of the CDC applier cost the same at its 2,000th commit as at its 10th?

Each commit is one small batch (5 updates of one table), as the applier makes at a steady trickle. The
applier with its log upkeep (tail compaction + snapshot expiry every COMPACT_EVERY commits) against the same
appends without upkeep (PyIceberg's plain fast appends: every snapshot and manifest kept), in one
invocation, on a local lake (no services needed). Printed per window of 200 commits: mean, p50 and max;
the ratio is the baselines' last-window mean over ours.

Usage: .venv/bin/python benchmarks/cdc_commits.py [--commits 1000]   (2,000 take ~28 min)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from dotjoin.pipelines.cdc import applier as applier_module
from dotjoin.pipelines.cdc.applier import Applier, Origin
from dotjoin.pipelines.cdc.events import Change
from dotjoin.platform.lake.iceberg import IcebergLake

TYPES = {"id": pa.int64(), "name": pa.string(), "n": pa.int64()}
WINDOW = 200


def commit_times(directory: Path, commits: int, *, upkeep: bool) -> list[float]:
    """Seconds per applier commit, in order."""
    every = applier_module.COMPACT_EVERY
    applier_module.COMPACT_EVERY = every if upkeep else 10**12
    try:
        lake = IcebergLake(root=str(directory / "lake"), catalog_uri=f"sqlite:///{directory / 'catalog.db'}")
        applier, times, lsn = Applier(lake), [], 1_000
        for i in range(commits):
            batch = []
            for j in range(5):
                lsn += 10
                key = (i * 5 + j) % 300
                row = {"id": key, "name": f"name-{lsn}", "n": lsn}
                change = Change("src.users", "u", (key,), ("id",), row, TYPES, lsn, (lsn, lsn, 0), 1,
                                1_767_225_600_000_000 + lsn * 1_000)  # fmt: skip
                batch.append((change, Origin("cdc.src.users:0", i * 5 + j)))
            started = time.perf_counter()
            applier.apply(batch)
            times.append(time.perf_counter() - started)
        lake.close()
        return times
    finally:
        applier_module.COMPACT_EVERY = every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=1_000)
    args = parser.parse_args()
    results = {}
    for label, upkeep in (("dotjoin applier (upkeep)", True), ("plain appends (baseline)", False)):
        with tempfile.TemporaryDirectory(prefix="dotjoin-cdc-commits-") as tmp:
            started = time.perf_counter()
            results[label] = commit_times(Path(tmp), args.commits, upkeep=upkeep)
            print(f"{label}: {args.commits} commits in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"\n{'commits':>12} | " + " | ".join(f"{label:>34}" for label in results))
    for start in range(0, args.commits, WINDOW):
        cells = []
        for times in results.values():
            window = times[start : start + WINDOW]
            mean, p50, top = (f(window) * 1e3 for f in (statistics.mean, statistics.median, max))
            cells.append(f"mean {mean:5.0f} p50 {p50:4.0f} max {top:6.0f} ms")
        print(
            f"{start + 1:>5}-{min(start + WINDOW, args.commits):<6} | "
            + " | ".join(f"{c:>34}" for c in cells)
        )
    ours, base = (statistics.mean(t[-WINDOW:]) for t in results.values())
    print(f"HEADLINE cdc_commits: last {WINDOW} of {args.commits} commits, mean {ours * 1e3:.0f} ms "
          f"with upkeep vs {base * 1e3:.0f} ms plain: {base / ours:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
