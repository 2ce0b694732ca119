"""Benchmark: a contract's checks on a 10M-row table, dotjoin's compiled SQL on DuckDB vs Great Expectations.

The same six expectations on the same ``orders`` table (``--rows``, default 10,000,000), with defects
placed by construction so every check has a known failing count:

* ``order_id`` not null and unique (the primary key), ``amount`` between 0 and 10,000, ``status`` in a
  set of six, ``customer_id`` in the ids of a 10,000-row ``customers`` table, the row count between
  0.9x and 1.1x ``--rows``;
* **dotjoin** — an ODCS contract (``required`` + ``primaryKey``, ``logicalTypeOptions`` minimum/maximum,
  an ``invalidValues`` rule with ``validValues``, a ``relationships`` entry, a table ``rowCount`` rule)
  run by :func:`dotjoin.platform.quality.checks.run_checks` on a DuckDB warehouse file holding the table
  (one scan for the row-level checks, one statement each for duplicates and the relationship, a sample
  of failing keys per failing check);
* **GX** (the baseline) — Great Expectations Core 1.24.1, its pandas engine: an ephemeral context, a
  pandas datasource, ``add_dataframe_asset``, a whole-dataframe batch definition, an ExpectationSuite of
  ``ExpectColumnValuesToNotBeNull``, ``ExpectColumnValuesToBeUnique``, ``ExpectColumnValuesToBeBetween``,
  ``ExpectColumnValuesToBeInSet`` (status), ``ExpectColumnValuesToBeInSet`` (customer_id, with the
  customers' id list: GX's pandas engine has no cross-table referential expectation) and
  ``ExpectTableRowCountToBeBetween``, run by a ValidationDefinition (``result_format="BASIC"``: counts and
  a partial list of failing values, as dotjoin's counts and samples). It runs in its own virtualenv
  (``benchmarks/_gx_checks.py`` under ``.venv-gx/bin/python``, no dotjoin in it); skipped with a message
  when that venv is missing.

The table is generated once (numpy/pyarrow, seeded) into a Parquet file in a temp dir, not timed. Each
side runs in its own subprocess: dotjoin loads the Parquet file into DuckDB (``load``: the platform's
``load_arrow``, streaming the file's batches) and repeats ``run_checks`` ``--repeat`` times on the same
open warehouse; GX reads the file into pandas once (``read``) and repeats the validation ``--repeat``
times in one process. Best and median of each; the ratio GX / dotjoin on the validation alone and end to
end (read/load + best run). Both sides must report the failing counts placed by construction (asserted;
the one difference is by definition: GX's ``unexpected_count`` of the uniqueness check counts every row
of a duplicated value, dotjoin's ``duplicateValues`` the extra copies). Peak memory is each subprocess's
peak RSS, in MiB: ``VmHWM`` of ``/proc/self/status`` (reset at exec); ``getrusage(RUSAGE_SELF).ru_maxrss``
is shown beside it (Linux carries the parent's peak over the exec into it, so the parent stays lean).

The GX virtualenv (not a Makefile target; same pattern as ``make quix``), from the repository root::

    .venv/bin/uv pip compile -q requirements/gx.txt --python-version 3.11 -o requirements/gx.lock
    .venv/bin/uv venv --python 3.11 .venv-gx && \\
        .venv/bin/uv pip sync -q --python .venv-gx/bin/python requirements/gx.lock

(the first only to re-resolve the committed lock).

DuckDB runs on its default threads (all cores); GX's pandas engine computes its metrics on one. Each side
prints its progress with timings to stderr as it goes (so a GX run that fails, or is killed after
``--gx-timeout``, still shows what it did); the count table, figures and headline go to stdout.

Usage: .venv/bin/python benchmarks/quality_checks.py [--rows 10000000] [--repeat 3] [--seed 7]
       [--gx-timeout 3600]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _baselines import headline, machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GX_PYTHON = ROOT / ".venv-gx" / "bin" / "python"
GX_SCRIPT = HERE / "_gx_checks.py"
GX_VENV_HINT = (
    ".venv/bin/uv venv --python 3.11 .venv-gx && "
    ".venv/bin/uv pip sync -q --python .venv-gx/bin/python requirements/gx.lock"
)

STATUSES = ["placed", "paid", "shipped", "delivered", "refunded", "cancelled"]
BAD_STATUSES = ["lost", "PAID", "unknown"]
AMOUNT_MIN, AMOUNT_MAX = 0.0, 10_000.0
CUSTOMERS = 10_000
#: defect → rows placed (disjoint rows; each duplicate copies the key of another, distinct, clean row).
DEFECTS = {
    "null_keys": 1_000,
    "duplicate_keys": 2_000,
    "out_of_range_amounts": 1_500,
    "invalid_statuses": 2_500,
    "orphan_customers": 3_000,
    "null_customers": 500,  # neither side counts a NULL as an orphan: a check that both skip NULLs
}
TARGET = 10.0

#: check → (dotjoin check name, GX expectation type, column)
CHECKS = {
    "order_id not null": ("nullValues:order_id", "expect_column_values_to_not_be_null", "order_id"),
    "order_id unique": ("duplicateValues:order_id", "expect_column_values_to_be_unique", "order_id"),
    "amount in range": ("invalidValues:amount", "expect_column_values_to_be_between", "amount"),
    "status in set": ("invalidValues:status", "expect_column_values_to_be_in_set", "status"),
    "customer_id in customers": (
        "relationship:customer_id",
        "expect_column_values_to_be_in_set",
        "customer_id",
    ),
    "row count in bounds": ("rowCount", "expect_table_row_count_to_be_between", ""),
}


def spec_of(rows: int, seed: int) -> dict[str, Any]:
    """Everything both sides need to know, and each check's failing count by construction."""
    d = DEFECTS
    return {
        "rows": rows,
        "seed": seed,
        "statuses": STATUSES,
        "amount": [AMOUNT_MIN, AMOUNT_MAX],
        "row_count": [rows * 9 // 10, rows * 11 // 10],
        "expected": {  # check → (dotjoin's count, GX's unexpected_count)
            "order_id not null": [d["null_keys"], d["null_keys"]],
            "order_id unique": [d["duplicate_keys"], 2 * d["duplicate_keys"]],
            "amount in range": [d["out_of_range_amounts"], d["out_of_range_amounts"]],
            "status in set": [d["invalid_statuses"], d["invalid_statuses"]],
            "customer_id in customers": [d["orphan_customers"], d["orphan_customers"]],
            "row count in bounds": [rows, rows],
        },
    }


def contract_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The ODCS contract whose compiled checks are exactly :data:`CHECKS` (dotjoin's names)."""
    low, high = spec["amount"]
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "name": "orders",
        "schema": [
            {
                "name": "orders",
                "quality": [{"metric": "rowCount", "mustBeBetween": spec["row_count"]}],
                "properties": [
                    {"name": "order_id", "required": True, "primaryKey": True},
                    {"name": "customer_id", "relationships": [{"to": "customers.id"}]},
                    {
                        "name": "status",
                        "quality": [
                            {"metric": "invalidValues", "arguments": {"validValues": spec["statuses"]}}
                        ],
                    },
                    {
                        "name": "amount",
                        "logicalType": "number",
                        "logicalTypeOptions": {"minimum": low, "maximum": high},
                    },
                    {"name": "ordered_at", "logicalType": "timestamp"},
                ],
            }
        ],
    }


# -- the sides (each its own subprocess) ----------------------------------------------------------------


def _peak() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {
        "peak_rss_mib": int(status["VmHWM"].split()[0]) / 1024,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _keys(prefix: str, index: Any, width: int, valid: Any) -> Any:
    """``prefix`` + ``index`` zero-padded to ``width`` digits, as an Arrow string array (fast for 10M)."""
    import numpy as np
    import pyarrow as pa

    n = len(index)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = np.empty((n, 1 + width), dtype=np.uint8)
    chars[:, 0] = ord(prefix)
    chars[:, 1:] = (index[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    offsets = np.arange(0, (n + 1) * (1 + width), 1 + width, dtype=np.int32)
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = 0 if valid is None else int(n - valid.sum())
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars), bitmap, nulls)


def generate(where: Path, spec: dict[str, Any]) -> None:
    """``orders.parquet`` and ``customers.parquet`` with :data:`DEFECTS` placed on disjoint rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = spec["rows"]
    rng = np.random.default_rng(spec["seed"])
    perm = rng.permutation(n)
    cut = 0

    def rows(count: int) -> Any:
        nonlocal cut
        cut += count
        return perm[cut - count : cut]

    null_keys, dup_rows, dup_of = (
        rows(DEFECTS["null_keys"]),
        rows(DEFECTS["duplicate_keys"]),
        rows(DEFECTS["duplicate_keys"]),
    )
    bad_amount, bad_status = rows(DEFECTS["out_of_range_amounts"]), rows(DEFECTS["invalid_statuses"])
    orphans, null_customers = rows(DEFECTS["orphan_customers"]), rows(DEFECTS["null_customers"])

    key = np.arange(n, dtype=np.int64)
    key[dup_rows] = dup_of  # each of these clean rows' keys now twice
    key_valid = np.ones(n, dtype=bool)
    key_valid[null_keys] = False

    customer = rng.integers(0, CUSTOMERS, n)
    customer[orphans] = CUSTOMERS + rng.integers(0, 1_000, len(orphans))  # ids no customer has
    customer_valid = np.ones(n, dtype=bool)
    customer_valid[null_customers] = False

    status = rng.choice(len(STATUSES), n, p=[0.1, 0.3, 0.25, 0.25, 0.05, 0.05])
    status[bad_status] = len(STATUSES) + rng.integers(0, len(BAD_STATUSES), len(bad_status))

    amount = np.round(np.clip(rng.lognormal(3.5, 1.0, n), 0.5, AMOUNT_MAX), 2)
    low = bad_amount[: len(bad_amount) // 2]
    amount[low] = -np.round(rng.uniform(0.01, 100, len(low)), 2)
    high = bad_amount[len(bad_amount) // 2 :]
    amount[high] = AMOUNT_MAX + np.round(rng.uniform(0.01, 100_000, len(high)), 2)

    start_us = 1_767_225_600_000_000  # 2026-01-01 UTC
    ordered_at = start_us + rng.integers(0, 180 * 86_400 * 10**6, n)

    orders = pa.table(
        {
            "order_id": _keys("o", key, 10, key_valid),
            "customer_id": _keys("c", customer, 6, customer_valid),
            "status": pa.array(STATUSES + BAD_STATUSES).take(pa.array(status)),
            "amount": pa.array(amount, pa.float64()),
            "ordered_at": pa.array(ordered_at, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(orders, where / "orders.parquet")
    ids = _keys("c", np.arange(CUSTOMERS, dtype=np.int64), 6, None)
    pq.write_table(pa.table({"id": ids}), where / "customers.parquet")


def side_gen(where: Path) -> dict[str, Any]:
    began = time.perf_counter()
    generate(where, json.loads((where / "spec.json").read_text()))
    return {"gen_s": time.perf_counter() - began, **_peak()}


def side_dotjoin(where: Path, repeat: int) -> dict[str, Any]:
    """Load the Parquet file into a DuckDB warehouse file, then ``run_checks`` ``repeat`` times."""
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dotjoin.platform.files.schema import Schema
    from dotjoin.platform.quality.checks import CheckEngine, run_checks
    from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse

    spec = json.loads((where / "spec.json").read_text())
    contract = Schema.model_validate(contract_of(spec))
    wh = DuckDBWarehouse(where / "wh.duckdb")
    began = time.perf_counter()
    source = pq.ParquetFile(where / "orders.parquet")
    reader = pa.RecordBatchReader.from_batches(source.schema_arrow, source.iter_batches(batch_size=1 << 17))
    loaded = wh.load_arrow("orders", reader)
    wh.load_arrow("customers", pq.read_table(where / "customers.parquet"))
    load_s = time.perf_counter() - began
    print(f"  dotjoin: loaded {loaded:,} rows into DuckDB in {load_s:.2f} s", file=sys.stderr, flush=True)
    engine = CheckEngine.of(wh)
    now = datetime(2026, 7, 1, tzinfo=UTC)
    runs: list[float] = []
    checks: list[Any] = []
    for i in range(repeat):
        began = time.perf_counter()
        checks = run_checks(contract, engine, now=now)
        runs.append(time.perf_counter() - began)
        print(f"  dotjoin: run {i + 1}/{repeat} {runs[-1]:.2f} s", file=sys.stderr, flush=True)
    wh.close()
    results = {c.name: {"observed": c.observed, "failed_rows": c.failed_rows, "passed": c.passed,
                        "sample": c.sample[:3]} for c in checks}  # fmt: skip
    return {"load_s": load_s, "runs": runs, "results": results, **_peak()}


def _child(args: list[str], python: str = sys.executable, timeout: float | None = None) -> dict[str, Any]:
    """Run a side; its progress goes to our stderr, its last stdout line is its JSON result.

    Raises:
        SideFailedError: it exited non-zero or ran past ``timeout`` (killed), with what it did.
    """
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    began = time.perf_counter()
    try:
        child = subprocess.run(
            [python, *args], stdout=subprocess.PIPE, text=True, env=env, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise SideFailedError(f"{Path(args[0]).name}: killed after {timeout:.0f} s (--gx-timeout)") from exc
    if child.returncode != 0:
        elapsed = time.perf_counter() - began
        raise SideFailedError(f"{Path(args[0]).name}: exited {child.returncode} after {elapsed:.0f} s")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


class SideFailedError(RuntimeError):
    """A side's subprocess failed or timed out."""


# -- the comparison ---------------------------------------------------------------------------------------


def _stats(runs: list[float]) -> tuple[float, float]:
    return min(runs), statistics.median(runs)


def _counts(spec: dict[str, Any], dj: dict[str, Any], gx: dict[str, Any] | None) -> list[str]:
    """Print each check's count by construction, dotjoin's and GX's; return the disagreements."""
    wrong: list[str] = []
    compiled = sorted(dj["results"])
    if compiled != sorted(name for name, _, _ in CHECKS.values()):
        wrong.append(f"the contract compiled to {compiled}, not the checks of CHECKS")
    if gx is not None and len(gx["results"]) != len(CHECKS):
        wrong.append(f"GX returned {len(gx['results'])} results, not {len(CHECKS)}")
    rows = []
    for check, (dj_name, gx_type, column) in CHECKS.items():
        want_dj, want_gx = spec["expected"][check]
        got = dj["results"][dj_name]
        dj_count = got["observed"] if dj_name == "rowCount" else got["failed_rows"]
        dj_ok = dj_count == want_dj and got["passed"] is (dj_name == "rowCount")
        gx_text, gx_ok = "skipped", True
        if gx is not None:
            res = gx["results"][f"{gx_type}:{column}"]
            gx_count = res["observed_value"] if column == "" else res["unexpected_count"]
            gx_ok = gx_count == want_gx and res["success"] is (column == "")
            gx_text = f"{gx_count:,}"
        placed = f"{want_dj:,}" if want_dj == want_gx else f"{want_dj:,} extra copies ({want_gx:,} rows)"
        agree = "yes" if dj_ok and gx_ok else "NO"
        rows.append((check, placed, f"{dj_count:,}", gx_text, agree))
        if not dj_ok:
            wrong.append(f"dotjoin {check}: {dj_count} (passed={got['passed']}), placed {want_dj}")
        if not gx_ok:
            wrong.append(f"GX {check}: {gx_text}, placed {want_gx}")
    head = ("check", "placed (by construction)", "dotjoin", "GX unexpected", "agree")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        cells = [r[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True))]
        print("  " + "  ".join(cells))
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gx-timeout", type=float, default=3600, help="kill the GX side after this (s)")
    parser.add_argument("--side", choices=["gen", "dotjoin"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "gen":
        print(json.dumps(side_gen(args.dir)))
        return 0
    if args.side == "dotjoin":
        print(json.dumps(side_dotjoin(args.dir, args.repeat)))
        return 0
    placed = sum(DEFECTS.values()) + DEFECTS["duplicate_keys"]
    if args.rows < 2 * placed:
        parser.error(f"--rows must be at least {2 * placed:,} (the defects take {placed:,} rows)")

    print(machine())
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    spec = spec_of(args.rows, args.seed)
    print(f"quality checks: {args.rows:,} orders, {CUSTOMERS:,} customers, repeat {args.repeat}, "
          f"defects {', '.join(f'{k}={v:,}' for k, v in DEFECTS.items())}", flush=True)  # fmt: skip
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="dj-quality-") as tmp:
        where = Path(tmp)
        (where / "spec.json").write_text(json.dumps(spec))
        gen = _child([me, "--side", "gen", "--dir", tmp])
        size = (where / "orders.parquet").stat().st_size / 2**20
        print(f"  generated orders.parquet ({size:.0f} MiB) in {gen['gen_s']:.1f} s (not timed)", flush=True)

        dj = _child([me, "--side", "dotjoin", "--dir", tmp, "--repeat", str(args.repeat)])
        gx: dict[str, Any] | None = None
        if GX_PYTHON.exists():
            gx_args = [str(GX_SCRIPT), "--dir", tmp, "--repeat", str(args.repeat)]
            try:
                gx = _child(gx_args, python=str(GX_PYTHON), timeout=args.gx_timeout)
            except SideFailedError as exc:  # what it did is in its progress lines above
                print(f"  GX: failed, {exc}", flush=True)
        else:
            print(f"  GX: skipped, no .venv-gx (build it with: {GX_VENV_HINT})", flush=True)

    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    wrong = _report(args, spec, gen, dj, gx)
    assert not wrong, wrong
    return 0


def _runs(runs: list[float]) -> str:
    best, median = _stats(runs)
    return f"best {best:7.2f}  median {median:7.2f}  runs {', '.join(f'{t:.2f}' for t in runs)}"


def _report(
    args: argparse.Namespace,
    spec: dict[str, Any],
    gen: dict[str, Any],
    dj: dict[str, Any],
    gx: dict[str, Any] | None,
) -> list[str]:
    """Print the counts, times, memory and ratios, and the headline; return the disagreements."""
    print("\nper-check failing counts (dotjoin: Check.failed_rows, rowCount: observed; GX: unexpected_count)")
    wrong = _counts(spec, dj, gx)
    print("\ntimes (s)")
    print(f"  dotjoin  load (Parquet -> DuckDB file) {dj['load_s']:7.2f}   run_checks  {_runs(dj['runs'])}")
    if gx is not None:
        print(
            f"  GX       read (Parquet -> pandas)      {gx['read_s']:7.2f}   validation  {_runs(gx['runs'])}"
        )
        print(f"  GX       import {gx['import_s']:.2f}, context + suite {gx['setup_s']:.2f} (in no ratio)")
    print("\npeak RSS (MiB: VmHWM; getrusage ru_maxrss in parentheses)")
    n = args.repeat
    print(f"  dotjoin  {dj['peak_rss_mib']:7.0f}  ({dj['ru_maxrss_mib']:.0f})  load + {n} x run_checks")
    if gx is not None:
        print(f"  GX       {gx['peak_rss_mib']:7.0f}  ({gx['ru_maxrss_mib']:.0f})  read + {n} x validation")
    print(f"  (the generator's {gen['peak_rss_mib']:.0f}, in no ratio)")
    if wrong:
        print("\nDISAGREEMENTS:\n  " + "\n  ".join(wrong))
    dj_best, dj_median = _stats(dj["runs"])
    if gx is None:
        headline(
            "quality_checks", f"dotjoin run_checks {dj_best:.2f} s on {args.rows:,} rows; GX did not run"
        )
        return wrong
    gx_best, gx_median = _stats(gx["runs"])
    ratio = gx_best / dj_best
    e2e_dj, e2e_gx = dj["load_s"] + dj_best, gx["read_s"] + gx_best
    memory = gx["peak_rss_mib"] / dj["peak_rss_mib"]
    print("\nratios GX / dotjoin")
    median = gx_median / dj_median
    print(f"  validation only  best {ratio:6.1f}x   median {median:6.1f}x   (target >= {TARGET:.0f}x)")
    print(f"  end to end       {e2e_gx / e2e_dj:6.1f}x   (GX read + best {e2e_gx:.2f} s, "
          f"dotjoin load + best {e2e_dj:.2f} s)")  # fmt: skip
    print(f"  peak RSS         {memory:6.1f}x   ({gx['peak_rss_mib']:.0f} vs {dj['peak_rss_mib']:.0f} MiB)")
    verdict = "PASS" if ratio >= TARGET else "BELOW TARGET"
    headline(
        "quality_checks",
        f"{ratio:.1f}x faster than Great Expectations 1.24 (pandas) on {args.rows:,} rows, 6 checks "
        f"({dj_best:.2f} s vs {gx_best:.2f} s, best of {args.repeat}; end to end {e2e_gx / e2e_dj:.1f}x; "
        f"peak RSS {dj['peak_rss_mib']:.0f} vs {gx['peak_rss_mib']:.0f} MiB) "
        f"(target >= {TARGET:.0f}x: {verdict}){'; COUNTS DISAGREE' if wrong else ''}",
    )
    return wrong


if __name__ == "__main__":
    sys.exit(main())
