"""The lakehouse end to end on the local profile: one pipeline run (dbt on DuckDB) shared by the module.

Covers: marts reconcile with the generators' ground truth, schema drift, idempotent day reloads with
identical checksums, bad input quarantined (never a failed run), partition pruning on 90 days, compaction,
time travel, and the CLI on the same state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.lakehouse import ops, pipeline
from dotjoin.pipelines.lakehouse.parse import checksum, parse_iot
from dotjoin.pipelines.lakehouse.staging import day_filter
from dotjoin.platform.lake import Lake, PartitionField, open_lake
from dotjoin.platform.lake.duckdb_views import connect
from dotjoin.platform.runs import RunReport
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.lakehouse import iot
from dotjoin.simulate.lakehouse.shop import GeneratedShop

START = date(2026, 1, 1)
DAYS = 4
TODAY = date(2026, 1, 10)
LOADED = datetime(2026, 4, 1)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, RunReport]]:
    home = tmp_path_factory.mktemp("lakehouse")
    settings = load_settings(profile="local", cwd=home, env={})
    report = pipeline.run(
        settings, source=GeneratedShop(days=DAYS, seed=11, start=START, devices=4), today=TODAY
    )
    yield settings, report


@pytest.fixture
def lake(state: tuple[Settings, RunReport]) -> Iterator[Lake]:
    with open_lake(state[0]) as opened:
        yield opened


def _check(report: RunReport, name: str) -> bool:
    return next(c for c in report.checks if c.name == name).passed


def test_dbt_build_passes_and_marts_reconcile_with_ground_truth(state: tuple[Settings, RunReport]) -> None:
    report = state[1]
    failed = [(c.name, c.observed, c.expected, c.detail) for c in report.checks if not c.passed]
    assert failed == [] and report.status == "succeeded"
    reconciled = {c.name for c in report.checks if c.name.startswith("reconcile_")}
    assert {"reconcile_fact_orders_revenue_cents", "reconcile_iot_device_hours"} <= reconciled
    assert _check(report, "dbt_source_freshness") and _check(report, "row_accounting")
    statuses = next(c for c in report.checks if c.name == "dbt_build").observed
    assert statuses["pass"] >= 40 and set(statuses) <= {"success", "pass"}  # tests + unit tests ran
    assert {o.name for o in report.outputs} >= {"fact_orders", "dim_customers", "iot_hourly_metrics"}
    assert report.metrics["scan.iot_hourly_metrics.total_files"] == DAYS
    # every dbt data test is one check record on the model it tests (unit tests are not data tests)
    dbt = {c.name: c for c in report.checks if c.name.startswith("dbt:")}
    assert statuses["pass"] >= len(dbt) >= 20
    unique = dbt["dbt:unique_fact_orders_order_id"]
    assert (unique.dataset, unique.observed, unique.failed_rows, unique.passed) == ("fact_orders", 0, 0, True)
    assert {c.dataset for c in dbt.values()} >= {"fact_orders", "dim_customers", "iot_hourly_metrics"}


def test_the_runs_checks_are_rows_of_dq_results(state: tuple[Settings, RunReport]) -> None:
    settings, report = state
    with open_warehouse(settings) as wh:
        rows = wh.query(
            "SELECT check_name, dataset, passed, observed_value, failed_rows FROM dq_results "
            "WHERE run_id = $1 ORDER BY ordinal",
            [report.run_id],
        ).to_pylist()
    assert [r["check_name"] for r in rows] == [c.name for c in report.checks]
    assert [(r["dataset"], r["passed"], r["failed_rows"]) for r in rows] == [
        (c.dataset or "", c.passed, c.failed_rows) for c in report.checks
    ]


def test_drifted_iot_columns_are_populated_from_the_drift_day_and_null_before(lake: Lake) -> None:
    readings = lake.scan("staging.iot_readings").to_pylist()
    drift = START + timedelta(days=DAYS // 2)
    before = [r for r in readings if r["reading_ts"].date() < drift]
    after = [r for r in readings if r["reading_ts"].date() >= drift]
    assert before and after
    assert all(r["device_firmware"] is None and r["signal_dbm"] is None for r in before)
    assert all(r["device_firmware"] is not None and r["signal_dbm"] is not None for r in after)


def test_rerunning_the_same_days_gives_identical_checksums(
    state: tuple[Settings, RunReport], lake: Lake
) -> None:
    settings = state[0]
    day = START + timedelta(days=1)
    tables = {
        "staging.iot_readings": "reading_ts",
        "staging.orders": "updated_at",
        "staging.customers": "updated_at",
    }

    def sums() -> dict[str, str]:
        return {t: checksum(lake.scan(t, row_filter=day_filter(c, day))) for t, c in tables.items()}

    before, snapshots_before = sums(), len(lake.snapshots("staging.orders"))
    again = pipeline.run(
        settings, input_dir=settings.resolve("lakehouse") / "incoming", today=TODAY, build=False
    )
    assert again.status == "succeeded"
    assert again.counts["raw_files_landed"] == 0 and again.counts["raw_files_unchanged"] == 5 * DAYS
    assert sums() == before
    assert len(lake.snapshots("staging.orders")) > snapshots_before  # it really re-loaded the day


def test_an_incremental_build_reads_only_the_reloaded_day(
    state: tuple[Settings, RunReport], tmp_path: Path
) -> None:
    settings, first = state
    name = f"iot_{START + timedelta(days=1)}.jsonl"
    (tmp_path / name).write_bytes((settings.resolve("lakehouse") / "incoming" / name).read_bytes())
    report = pipeline.run(settings, input_dir=tmp_path, today=TODAY)
    assert report.status == "succeeded", [c for c in report.checks if not c.passed]
    m = report.metrics
    assert (
        m["iot_hourly_metrics_incremental"] == 1.0 and first.metrics["iot_hourly_metrics_incremental"] == 0.0
    )
    assert (m["scan.iot_hourly_metrics.files"], m["scan.iot_hourly_metrics.total_files"]) == (1, DAYS)
    assert m["scan.iot_hourly_metrics.bytes"] < m["scan.iot_hourly_metrics.total_bytes"] / 2
    rows = {o.name: o.rows for o in report.outputs}
    assert rows["iot_hourly_metrics"] == {o.name: o.rows for o in first.outputs}["iot_hourly_metrics"]


def test_bad_input_is_quarantined_with_reasons_and_the_run_succeeds(
    state: tuple[Settings, RunReport], lake: Lake, tmp_path: Path
) -> None:
    settings = state[0]
    bad_day = START + timedelta(days=DAYS)  # a new day, so nothing already landed is touched
    good = '{"device":{"id":"dev-009"},"ts":"%sT01:00:00Z","readings":[{"sensor":"pressure","value":"7"}]}'
    (tmp_path / f"iot_{bad_day}.jsonl").write_text(f"{good % bad_day}\n{{not json\n")
    (tmp_path / f"orders_{bad_day}.csv").write_text(
        f"order_id,customer_id,order_ts\n999,1,{bad_day}T01:00:00\n"
    )
    (tmp_path / "customers_2026-12-31.csv").write_text("customer_id\n1\n")
    (tmp_path / "notes.txt").write_text("not an export\n")
    report = pipeline.run(settings, input_dir=tmp_path, today=TODAY, build=False)
    assert report.status == "succeeded", report.error
    assert report.counts["quarantined"] == 4 and _check(report, "row_accounting")
    with open_warehouse(settings) as wh:
        rows = wh.query(
            "SELECT reason, source FROM quarantine WHERE run_id = $1 ORDER BY reason", [report.run_id]
        ).to_pylist()
    assert [r["reason"] for r in rows] == ["bad_json", "future_date", "missing_column", "unknown_file"]
    day_rows = lake.scan("staging.iot_readings", row_filter=day_filter("reading_ts", bad_day))
    assert day_rows.column("device_id").to_pylist() == ["dev-009"]


def test_one_day_of_ninety_touches_at_most_two_percent_of_files_and_bytes(tmp_path: Path) -> None:
    settings = load_settings(profile="local", cwd=tmp_path, env={})
    iot.generate(tmp_path / "in", days=90, seed=5, start=START, devices=1, drift_day=1000)
    batches = [
        parse_iot(
            f.read_bytes(), day=date.fromisoformat(f.stem[4:]), source_file=f.name, loaded_at=LOADED
        ).table
        for f in sorted((tmp_path / "in").iterdir())
    ]
    data = pa.concat_tables(batches)
    with open_lake(settings) as lake:
        lake.create_table("staging.iot_90", data.schema, partition_by=[PartitionField("reading_ts", "day")])
        lake.append("staging.iot_90", data)
        day = START + timedelta(days=45)
        stats = ops.scan_stats(lake, f"SELECT * FROM staging.iot_90 WHERE {day_filter('reading_ts', day)}")
        metadata = lake.metadata_location("staging.iot_90")
    assert stats["total_files"] == 90 and stats["files"] == 1
    assert stats["files_pct"] <= 2.0 and stats["bytes_pct"] <= 2.0, stats
    con = connect()  # DuckDB prunes the same way through iceberg_scan
    plan = con.execute(
        f"EXPLAIN ANALYZE SELECT count(*) FROM iceberg_scan('{metadata}') "
        f"WHERE reading_ts >= '{day}' AND reading_ts < '{day + timedelta(days=1)}'"
    ).fetchall()[0][1]
    assert "Total Files Read: 1" in plan


def test_compaction_keeps_rows_and_time_travel_reads_the_past(lake: Lake) -> None:
    name = "staging.compact_me"
    schema = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us"))])
    lake.create_table(name, schema, partition_by=[PartitionField("ts", "day")])
    for i in range(4):  # four small files in one day partition
        lake.append(
            name, pa.table({"id": [i], "ts": [pa.scalar(0, pa.timestamp("us")).as_py()]}, schema=schema)
        )
    first = lake.snapshots(name)[0].snapshot_id
    result = ops.compact(lake, name)
    assert (result["files_before"], result["files_after"], result["rows"]) == (4, 1, 4)
    # PyIceberg's overwrite commits a delete and an append snapshot in one transaction
    assert [s.operation for s in lake.snapshots(name)[-2:]] == ["delete", "append"]
    snap, past = ops.read_as_of(lake, name, str(first))
    assert snap.snapshot_id == first and past.column("id").to_pylist() == [0]
    _, later = ops.read_as_of(lake, name, lake.snapshots(name)[-1].committed_at.isoformat())
    assert sorted(later.column("id").to_pylist()) == [0, 1, 2, 3]
    # expiry reclaims the four small files the compaction replaced; the rows stay
    expired = ops.expire(lake, name, older_than_days=0, retain_last=1)
    assert (expired["snapshots_kept"], expired["rows"]) == (1, 4)
    assert expired["files_deleted"] >= 4 and expired["bytes_deleted"] > 0
    assert len(lake.plan(name).files) == 1


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")} | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dotjoin", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_scan_stats_cost_and_errors(state: tuple[Settings, RunReport]) -> None:
    home = state[0].state_dir.parent
    day = START + timedelta(days=1)
    result = _cli(
        "lake", "scan-stats", f"staging.orders WHERE {day_filter('updated_at', day)}", "-o", "json", cwd=home
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["files"] == 1 and stats["total_files"] >= DAYS
    cost = _cli("lake", "cost", "-o", "json", cwd=home)
    assert cost.returncode == 0, cost.stderr
    rows = {r["what"].split(" (")[0]: r for r in json.loads(cost.stdout)["rows"]}
    assert rows["stored: raw"]["bytes"] > 0 and rows["scanned: fact_orders"]["bytes"] > 0
    expired = _cli("lake", "expire", "staging.orders", "--older-than-days", "365", "-o", "json", cwd=home)
    assert expired.returncode == 0, expired.stderr
    assert json.loads(expired.stdout)["snapshots_expired"] == 0  # nothing is a year old: no-op
    bad = _cli("lake", "snapshots", "staging.nope", cwd=home)
    assert (
        bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "does not exist" in bad.stderr
    )


def test_dbt_docs_generate_writes_the_catalog(state: tuple[Settings, RunReport], lake: Lake) -> None:
    from dotjoin.pipelines.lakehouse import curated

    tables = ["customers", "products", "orders", "order_items", "iot_readings"]
    ctx = curated.publish_sources(state[0], lake, tables, target="local")
    outcome = ctx.invoke("docs generate")
    assert outcome.success, outcome.failures
    catalog = json.loads((ctx.work_dir / "target" / "catalog.json").read_text())
    assert "model.dotjoin.fact_orders" in catalog["nodes"]
    assert "source.dotjoin.iot.iot_readings" in catalog["sources"]
