"""The self-check pipeline end to end: on the embedded engines, and on the real stack."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.selfcheck.pipeline import LAKE_TABLE, WAREHOUSE_TABLE, run
from dotjoin.platform.lake import open_lake
from dotjoin.platform.warehouse import open_warehouse


def _assert_round_trip(settings: Settings, events: int, topic: str) -> None:
    first = run(settings, events=events, topic=topic)
    assert first.status == "succeeded", first.checks
    counts = first.counts
    assert counts["input"] == events
    assert counts["quarantined"] == events // 200
    assert counts["input"] == counts["output"] + counts["quarantined"] + counts["duplicates"]
    assert {c.name: c.passed for c in first.checks} == {
        "row_accounting": True,
        "warehouse_matches_producer": True,
        "lake_matches_producer": True,
        "quarantine_matches_producer": True,
        "duplicates_match_producer": True,
    }
    with open_warehouse(settings) as wh:
        rows = wh.scalar(f"SELECT count(*) FROM {WAREHOUSE_TABLE}")
        quarantined = wh.scalar("SELECT count(*) FROM quarantine WHERE source = $1", [topic])
    assert rows == counts["output"]
    assert quarantined == counts["quarantined"]

    second = run(settings, events=events, topic=topic)  # idempotent: same events, same final state
    assert second.status == "succeeded"
    assert second.metrics["lake_rows_inserted"] == 0 and second.metrics["lake_rows_updated"] == 0
    with open_warehouse(settings) as wh:
        assert wh.scalar(f"SELECT count(*) FROM {WAREHOUSE_TABLE}") == rows
        # The rerun produced new messages (new offsets): its corrupt ones are new quarantine records.
        total = wh.scalar("SELECT count(*) FROM quarantine WHERE source = $1", [topic])
        assert total == quarantined + second.counts["quarantined"]
    assert next(o.rows for o in second.outputs if o.name == LAKE_TABLE) == rows


def test_selfcheck_local_profile(local_settings: Settings) -> None:
    _assert_round_trip(local_settings, 2_000, "selfcheck.events")


@pytest.mark.postgres
@pytest.mark.kafka
def test_selfcheck_stack_profile(postgres: Settings, kafka: Settings, tmp_path, unique_name: str) -> None:
    # Real services, a fresh state dir (reports, lake files) and a topic of its own. The pipeline's tables
    # are shared, so start them empty: the lake table's catalog entry may point at an old temp dir.
    settings = postgres.model_copy(update={"state_dir": tmp_path})
    with open_warehouse(settings) as wh:
        wh.execute(f"DROP TABLE IF EXISTS {WAREHOUSE_TABLE}")
    lake = open_lake(settings)
    if LAKE_TABLE in lake.list_tables("curated"):
        lake.drop_table(LAKE_TABLE)
    _assert_round_trip(settings, 2_000, f"selfcheck.{unique_name}")


def test_the_producer_checks_fail_when_a_store_loses_or_changes_a_row(local_settings: Settings) -> None:
    from dotjoin.pipelines.selfcheck.pipeline import _check_rows
    from dotjoin.pipelines.selfcheck.transforms import EVENT_SCHEMA, Ledger, generate_events, parse_event
    from dotjoin.platform.runs.report import Run, RunReport

    ledger = Ledger()
    rows = []
    for message in generate_events(400):
        ledger.record(message)
        if message.event is not None and not message.resent:
            rows.append(parse_event(message.value))
    table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    run = Run(RunReport(pipeline="selfcheck", run_id="t", profile="local", started_at=datetime.now(UTC)))
    _check_rows(run, "intact", table, ledger)
    _check_rows(run, "lost_row", table.slice(1), ledger)
    changed = table.set_column(2, "amount_cents", pa.array([r["amount_cents"] + 1 for r in rows], pa.int64()))
    _check_rows(run, "changed_value", changed, ledger)
    assert {c.name: c.passed for c in run.report.checks} == {
        "intact": True,
        "lost_row": False,
        "changed_value": False,
    }
