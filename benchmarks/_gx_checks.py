"""The Great Expectations side of benchmarks/quality_checks.py: the contract's checks on GX's pandas engine.

Runs under ``.venv-gx/bin/python`` (Great Expectations Core 1.24.1, requirements/gx.lock); it never imports
dotjoin. Reads ``orders.parquet`` and ``customers.parquet`` from ``--dir`` into pandas once (``read``,
timed), builds an ephemeral context (analytics and progress bars off) with a pandas datasource, a dataframe
asset, a whole-dataframe batch definition and an ExpectationSuite of the same six expectations as the
contract, then runs its ValidationDefinition ``--repeat`` times in this process (``result_format="BASIC"``).
``customer_id`` in the customers' ids is ``ExpectColumnValuesToBeInSet`` with their id list: GX's pandas
engine has no cross-table referential expectation.

Prints progress to stderr and, last on stdout, one JSON line: the read, import and setup times, each run's
seconds, each expectation's result (``unexpected_count`` / ``observed_value``, ``success``) and its peak RSS.

Usage (by quality_checks.py): .venv-gx/bin/python benchmarks/_gx_checks.py --dir DIR [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
_began = time.perf_counter()
import great_expectations as gx  # noqa: E402 (after the analytics switch)
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

IMPORT_S = time.perf_counter() - _began


def _log(text: str) -> None:
    print(f"  GX: {text}", file=sys.stderr, flush=True)


def _peak() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {
        "peak_rss_mib": int(status["VmHWM"].split()[0]) / 1024,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _suite(spec: dict[str, Any], customer_ids: list[str]) -> gx.ExpectationSuite:
    low, high = spec["amount"]
    rows_low, rows_high = spec["row_count"]
    suite = gx.ExpectationSuite(name="orders")
    for expectation in (
        gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
        gxe.ExpectColumnValuesToBeUnique(column="order_id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=low, max_value=high),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=spec["statuses"]),
        gxe.ExpectColumnValuesToBeInSet(column="customer_id", value_set=customer_ids),
        gxe.ExpectTableRowCountToBeBetween(min_value=rows_low, max_value=rows_high),
    ):
        suite.add_expectation(expectation)
    return suite


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = json.loads((args.dir / "spec.json").read_text())
    _log(f"great_expectations {gx.__version__}, pandas {pd.__version__}; import {IMPORT_S:.2f} s")

    began = time.perf_counter()
    df = pd.read_parquet(args.dir / "orders.parquet")
    customer_ids = pd.read_parquet(args.dir / "customers.parquet")["id"].tolist()
    read_s = time.perf_counter() - began
    deep = df.memory_usage(deep=True).sum() / 2**20
    _log(f"read {len(df):,} rows into pandas in {read_s:.2f} s ({deep:.0f} MiB, deep)")

    began = time.perf_counter()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = (
        context.data_sources.add_pandas("orders")
        .add_dataframe_asset("orders")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(_suite(spec, customer_ids))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders", data=batch, suite=suite)
    )
    setup_s = time.perf_counter() - began

    runs: list[float] = []
    result: Any = None
    for i in range(args.repeat):
        began = time.perf_counter()
        result = validation.run(batch_parameters={"dataframe": df}, result_format="BASIC")
        runs.append(time.perf_counter() - began)
        _log(f"validation {i + 1}/{args.repeat} {runs[-1]:.2f} s")

    results = {}
    for r in result.results:
        column = r.expectation_config.kwargs.get("column", "")
        got = r.result
        results[f"{r.expectation_config.type}:{column}"] = {
            "success": bool(r.success),
            "unexpected_count": got.get("unexpected_count"),
            "observed_value": got.get("observed_value"),
            "sample": [str(v) for v in (got.get("partial_unexpected_list") or [])[:3]],
        }
    print(json.dumps({"import_s": IMPORT_S, "read_s": read_s, "setup_s": setup_s, "runs": runs,
                      "results": results, **_peak()}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
