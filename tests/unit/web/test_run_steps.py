"""The run page of an orchestrated run: one row per step with status, attempts, duration, metadata, error."""

from __future__ import annotations

from datetime import date, timedelta

from dotjoin.config import Settings
from dotjoin.orchestration.runner import run_date
from dotjoin.orchestration.steps import Flow, Step, StepContext
from dotjoin.platform.runs.report import StepRecord
from tests.unit.web.support import T0, SaveReport, TestClient, elements, text


def test_run_page_lists_the_steps_with_reused_ones_marked(
    client: TestClient, save_report: SaveReport
) -> None:
    steps = [
        StepRecord(
            name="fetch",
            status="succeeded",
            attempts=1,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=2.5),
            metadata={"rows": 5, "path": "raw/stocks/2024-03-07"},
            reused=True,
        ),
        StepRecord(
            name="ingest",
            status="succeeded",
            attempts=1,
            metadata={"run_id": "ingest_weather-20240307T000000-abc123", "rows_out": 48},
        ),
        StepRecord(
            name="load",
            status="failed",
            attempts=3,
            started_at=T0 + timedelta(seconds=3),
            finished_at=T0 + timedelta(seconds=3.042),
            error="RuntimeError: <warehouse> down",
        ),
        StepRecord(name="notify", status="upstream_failed"),
        StepRecord(name="monthly", status="skipped"),
    ]
    report = save_report(pipeline="stocks", status="failed", counts={}, steps=steps)
    html = client.get(f"/runs/{report.run_id}").text

    rows = elements(html, "tr", class_="step")
    assert [(r["data-step"], r["data-status"], r["data-reused"]) for r in rows] == [
        ("fetch", "succeeded", "true"),
        ("ingest", "succeeded", "false"),
        ("load", "failed", "false"),
        ("notify", "upstream_failed", "false"),
        ("monthly", "skipped", "false"),
    ]
    links = elements(html, "a", class_="child-run")  # a step's child run links to its own page
    assert [a["href"] for a in links] == ["/runs/ingest_weather-20240307T000000-abc123"]
    visible = text(html)
    assert "fetch succeeded reused 1 2.50 s rows=5, path=raw/stocks/2024-03-07" in visible
    assert "load failed 3 42 ms — RuntimeError: <warehouse> down" in visible
    assert "notify upstream_failed 0 — —" in visible
    assert "RuntimeError: &lt;warehouse&gt; down" in html  # escaped
    assert '<span class="badge badge-upstream_failed">upstream_failed</span>' in html


def test_a_run_without_steps_has_no_steps_table(client: TestClient, save_report: SaveReport) -> None:
    report = save_report()
    html = client.get(f"/runs/{report.run_id}").text
    assert not elements(html, "table", class_="steps-table") and "Steps" not in text(html)


def test_a_report_written_by_the_runner_renders_its_steps(
    client: TestClient, local_settings: Settings
) -> None:
    def extract(ctx: StepContext) -> dict[str, int]:
        return {"rows": 12}

    flow = Flow(
        "web_toy",
        "toy",
        (Step("extract", extract), Step("load", lambda ctx: None, upstream=("extract",))),
        date(2024, 1, 1),
    )
    report = run_date(flow, local_settings, date(2024, 3, 7))
    html = client.get(f"/runs/{report.run_id}").text
    assert [r["data-step"] for r in elements(html, "tr", class_="step")] == ["extract", "load"]
    assert "extract succeeded 1" in text(html) and "rows=12" in text(html)
    assert "logical_date 2024-03-07" in text(html)
