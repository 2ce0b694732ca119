"""The ``dq_results`` table: every check of every run, one row per result, in the profile's warehouse.

Written with the run's history row (:func:`dotjoin.platform.runs.history.record`), upserted by
``(run_id, ordinal)`` — the check's place in its report — so re-recording a run changes nothing.
``observed_value`` is the observed value when it is a number (what trends and Prometheus read);
``observed`` is its JSON, whatever it is.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from dotjoin.platform.runs.report import RunReport

DQ_RESULTS_TABLE = "dq_results"
DQ_RESULTS_KEY = ["run_id", "ordinal"]
DQ_RESULTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("ordinal", pa.int32(), nullable=False),
        pa.field("pipeline", pa.string()),
        pa.field("dataset", pa.string()),  # "" for a check on the run itself (row accounting...)
        pa.field("partition_key", pa.string()),  # "" for the whole dataset
        pa.field("check_name", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("passed", pa.bool_()),
        pa.field("observed_value", pa.float64()),
        pa.field("observed", pa.string()),
        pa.field("threshold", pa.string()),
        pa.field("failed_rows", pa.int64()),
        pa.field("sample", pa.string()),  # JSON list of failing keys
        pa.field("detail", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("checked_at", pa.timestamp("us", tz="UTC")),
    ]
)


def numeric(value: Any) -> float | None:
    """A check's observed value as a number, when it is one (booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def result_rows(report: RunReport) -> pa.Table:
    """The report's checks as ``dq_results`` rows."""
    at = report.finished_at or report.started_at
    return pa.Table.from_pylist(
        [
            {
                "run_id": report.run_id,
                "ordinal": n,
                "pipeline": report.pipeline,
                "dataset": c.dataset or "",
                "partition_key": c.partition or "",
                "check_name": c.name,
                "severity": c.severity,
                "passed": c.passed,
                "observed_value": numeric(c.observed),
                "observed": json.dumps(c.observed, default=str),
                "threshold": None if c.expected is None else str(c.expected),
                "failed_rows": c.failed_rows,
                "sample": json.dumps(c.sample),
                "detail": c.detail,
                "duration_s": c.duration_s,
                "checked_at": at,
            }
            for n, c in enumerate(report.checks)
        ],
        schema=DQ_RESULTS_SCHEMA,
    )
