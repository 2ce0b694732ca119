"""/metrics: the Prometheus exposition built from the run reports, parsed back with prometheus_client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dotjoin.platform.runs.report import Check, Output
from tests.unit.web.support import T0, SaveReport, TestClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_no_runs_gives_a_valid_empty_exposition(client: TestClient) -> None:
    assert scrape(client) == {}
    assert "# TYPE dotjoin_runs_total counter" in client.get("/metrics").text


def test_metrics_from_the_run_reports(client: TestClient, save_report: SaveReport) -> None:
    save_report(pipeline="csv_etl", started_at=T0, counts={"input": 5, "output": 5}, duration_s=1.0)
    failed = save_report(
        pipeline="csv_etl",
        status="failed",
        started_at=T0 + timedelta(hours=1),
        duration_s=4.5,
        counts={"input": 100, "output": 90, "quarantined": 7, "duplicates": 3},
        outputs=[Output(name="commits", rows=90)],
        checks=[Check(name="a", passed=False), Check(name="b", passed=False), Check(name="c", passed=True)],
        metrics={"rows_per_s": 22.2},
    )
    latest_ok = save_report(pipeline="csv_etl", started_at=T0 + timedelta(minutes=30), duration_s=2.0)
    save_report(pipeline="payments", status="running", started_at=T0 + timedelta(hours=2), duration_s=None)
    samples = scrape(client)

    assert samples[key("dotjoin_runs_total", pipeline="csv_etl", status="succeeded")] == 2
    assert samples[key("dotjoin_runs_total", pipeline="csv_etl", status="failed")] == 1
    assert samples[key("dotjoin_runs_total", pipeline="payments", status="running")] == 1
    # the latest csv_etl run is the failed one (started last), not the last file written
    for kind, value in {"input": 100, "output": 90, "quarantined": 7, "duplicates": 3}.items():
        assert samples[key("dotjoin_run_rows", pipeline="csv_etl", kind=kind)] == value
    assert samples[key("dotjoin_run_output_rows", pipeline="csv_etl", output="commits")] == 90
    assert samples[key("dotjoin_run_duration_seconds", pipeline="csv_etl")] == pytest.approx(4.5)
    assert samples[key("dotjoin_run_checks_failed", pipeline="csv_etl")] == 2
    assert samples[key("dotjoin_run_checks_failed", pipeline="payments")] == 0
    assert samples[key("dotjoin_run_metric", pipeline="csv_etl", metric="rows_per_s")] == pytest.approx(22.2)
    assert key("dotjoin_run_duration_seconds", pipeline="payments") not in samples  # still running

    assert latest_ok.finished_at is not None and failed.finished_at is not None
    last = "dotjoin_last_run_timestamp_seconds"
    assert samples[key(last, pipeline="csv_etl", status="succeeded")] == latest_ok.finished_at.timestamp()
    assert samples[key(last, pipeline="csv_etl", status="failed")] == failed.finished_at.timestamp()
    assert samples[key(last, pipeline="payments", status="running")] == (T0 + timedelta(hours=2)).timestamp()


def test_metrics_read_reports_on_every_scrape(client: TestClient, save_report: SaveReport) -> None:
    save_report(pipeline="csv_etl")
    assert scrape(client)[key("dotjoin_runs_total", pipeline="csv_etl", status="succeeded")] == 1
    save_report(pipeline="csv_etl")
    assert scrape(client)[key("dotjoin_runs_total", pipeline="csv_etl", status="succeeded")] == 2


def test_each_checks_latest_result_is_a_dq_series(client: TestClient, save_report: SaveReport) -> None:
    older = Check(
        name="nullValues:id", passed=True, observed=0, expected="= 0", dataset="orders", failed_rows=0
    )
    save_report(pipeline="etl", started_at=T0, checks=[older], duration_s=1.0)
    newer = Check(name="nullValues:id", passed=False, observed=4, expected="= 0", dataset="orders",
                  failed_rows=4, duration_s=0.25)  # fmt: skip
    stale = Check(name="latency:at", passed=False, observed=7200.5, dataset="orders", severity="warning",
                  partition="day=2026-01-01")  # fmt: skip
    accounting = Check(name="row_accounting", passed=True, observed=3, expected=3)
    save_report(pipeline="etl", started_at=T0 + timedelta(hours=1), checks=[newer, stale, accounting])
    samples = scrape(client)
    labels = {
        "dataset": "orders",
        "check": "nullValues:id",
        "partition": "",
        "severity": "error",
        "pipeline": "etl",
    }
    assert samples[key("dq_check_passed", **labels)] == 0.0  # the newer run's result
    assert samples[key("dq_observed_value", **labels)] == 4
    assert samples[key("dq_failed_rows", **labels)] == 4
    assert samples[key("dq_check_duration_seconds", **labels)] == 0.25
    assert samples[key("dq_check_timestamp_seconds", **labels)] > T0.timestamp()
    late = {**labels, "check": "latency:at", "partition": "day=2026-01-01", "severity": "warning"}
    assert (
        samples[key("dq_observed_value", **late)] == 7200.5 and key("dq_failed_rows", **late) not in samples
    )
    run_level = {**labels, "dataset": "", "check": "row_accounting"}
    assert samples[key("dq_check_passed", **run_level)] == 1.0
