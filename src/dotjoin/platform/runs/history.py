"""The ``dotjoin_runs`` table: run history in the profile's warehouse, one row per run (upserted), and
the run's checks in ``dq_results`` (:mod:`dotjoin.platform.quality.results`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyarrow as pa

from dotjoin.platform.runs.report import RunReport

if TYPE_CHECKING:
    from dotjoin.config import Settings

logger = logging.getLogger(__name__)
HISTORY_TABLE = "dotjoin_runs"

HISTORY_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("pipeline", pa.string()),
        pa.field("profile", pa.string()),
        pa.field("status", pa.string()),
        pa.field("started_at", pa.timestamp("us", tz="UTC")),
        pa.field("finished_at", pa.timestamp("us", tz="UTC")),
        pa.field("input_rows", pa.int64()),
        pa.field("output_rows", pa.int64()),
        pa.field("quarantined_rows", pa.int64()),
        pa.field("duplicate_rows", pa.int64()),
        pa.field("checks_failed", pa.int64()),
        pa.field("report", pa.string()),
    ]
)


def history_row(report: RunReport) -> pa.Table:
    counts = report.counts
    return pa.Table.from_pylist(
        [
            {
                "run_id": report.run_id,
                "pipeline": report.pipeline,
                "profile": report.profile,
                "status": report.status,
                "started_at": report.started_at,
                "finished_at": report.finished_at,
                "input_rows": counts.get("input"),
                "output_rows": counts.get("output"),
                "quarantined_rows": counts.get("quarantined"),
                "duplicate_rows": counts.get("duplicates"),
                "checks_failed": report.checks_failed,
                "report": report.model_dump_json(),
            }
        ],
        schema=HISTORY_SCHEMA,
    )


def record(settings: Settings, report: RunReport) -> None:
    """The run's row in ``dotjoin_runs``, its checks' rows in ``dq_results`` and its lineage events in
    ``lineage_events`` (:mod:`dotjoin.platform.lineage`), in one transaction."""
    from dotjoin.platform.lineage import LINEAGE_KEY, LINEAGE_SCHEMA, LINEAGE_TABLE, event_rows
    from dotjoin.platform.quality.results import DQ_RESULTS_KEY, DQ_RESULTS_TABLE, result_rows
    from dotjoin.platform.warehouse import open_warehouse

    try:
        events = event_rows(report, settings)
    except Exception:  # lineage is best effort: it must never cost the run its history
        logger.warning("run %s: no lineage events (could not build them)", report.run_id, exc_info=True)
        events = LINEAGE_SCHEMA.empty_table()
    with open_warehouse(settings) as wh, wh.transaction():
        wh.upsert(HISTORY_TABLE, history_row(report), key=["run_id"])
        if report.checks:
            wh.upsert(DQ_RESULTS_TABLE, result_rows(report), key=DQ_RESULTS_KEY)
        if events.num_rows:
            wh.upsert(LINEAGE_TABLE, events, key=LINEAGE_KEY)
