"""The run-history pages and the JSON API, through FastAPI's TestClient."""

from __future__ import annotations

import json

import pytest

from dotjoin.config import Settings
from dotjoin.platform.runs.report import Check, Output, accounting_check, start_run
from tests.unit.web.support import SaveReport, TestClient, elements, text

BALANCED = {"input": 1000, "output": 960, "quarantined": 30, "duplicates": 10}
UNBALANCED = {"input": 500, "output": 400, "quarantined": 20, "duplicates": 5}


def test_empty_state_tells_how_to_make_a_run(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "No runs yet — run dotjoin demo" in text(page.text)
    assert "<title>Runs · dotjoin</title>" in page.text


def test_history_lists_runs_newest_first_with_status_counts_and_checks(
    client: TestClient, save_report: SaveReport
) -> None:
    old = save_report(pipeline="csv_etl", counts=BALANCED, checks=[accounting_check(BALANCED)])
    new = save_report(
        pipeline="payments",
        status="failed",
        counts=UNBALANCED,
        checks=[accounting_check(UNBALANCED), Check(name="late_routed", passed=True)],
    )
    page = client.get("/").text
    rows = elements(page, "tr", class_="run")
    assert [(r["data-run-id"], r["data-status"]) for r in rows] == [
        (new.run_id, "failed"),
        (old.run_id, "succeeded"),
    ]
    assert elements(page, "a", href=f"/runs/{new.run_id}")
    assert elements(page, "a", href=f"/runs/{old.run_id}")
    visible = text(page)
    assert '<span class="badge badge-failed">failed</span>' in page
    assert '<span class="badge badge-succeeded">succeeded</span>' in page
    assert "1,000 960 30 10 1 passed" in visible  # input, output, quarantined, duplicates, checks
    assert "500 400 20 5 1 passed · 1 failed" in visible
    assert "2.50 s" in visible
    assert "2 runs" in visible


def test_filter_by_pipeline(client: TestClient, save_report: SaveReport) -> None:
    keep = save_report(pipeline="csv_etl")
    drop = save_report(pipeline="payments")
    page = client.get("/", params={"pipeline": "csv_etl"}).text
    assert [r["data-run-id"] for r in elements(page, "tr", class_="run")] == [keep.run_id]
    assert drop.run_id not in page
    assert elements(page, "option", value="csv_etl", selected="")
    everything = client.get("/", params={"pipeline": ""}).text  # the form's "All pipelines"
    assert len(elements(everything, "tr", class_="run")) == 2


def test_limit_caps_rows_and_says_so(client: TestClient, save_report: SaveReport) -> None:
    for _ in range(3):
        save_report()
    page = client.get("/", params={"limit": 2}).text
    assert len(elements(page, "tr", class_="run")) == 2
    assert "showing the newest 2" in text(page)


def test_hostile_pipeline_filter_is_escaped(client: TestClient, save_report: SaveReport) -> None:
    save_report()
    hostile = '<script>alert("x")</script>'
    page = client.get("/", params={"pipeline": hostile})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert f"No runs of pipeline “{hostile}”." in text(page.text)


def test_hostile_report_content_is_escaped(client: TestClient, save_report: SaveReport) -> None:
    report = save_report(
        params={"path": "<img src=x onerror=alert(1)>"},
        checks=[Check(name="<b>bold</b>", passed=False, detail="<script>alert(2)</script>")],
    )
    page = client.get(f"/runs/{report.run_id}").text
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_run_page_shows_params_counts_outputs_and_checks(client: TestClient, save_report: SaveReport) -> None:
    report = save_report(
        pipeline="csv_etl",
        counts={**BALANCED, "late": 4},
        params={"input": "data/commits.csv", "year": 2024},
        outputs=[Output(name="commits", rows=960, location="lake/curated/commits")],
        checks=[
            accounting_check(BALANCED),
            Check(name="no_duplicate_sha", passed=False, observed=2, expected=0, detail="2 shas twice"),
        ],
        metrics={"rows_per_s": 412000.0},
    )
    page = client.get(f"/runs/{report.run_id}")
    assert page.status_code == 200
    html = page.text
    visible = text(html)
    assert f"<title>csv_etl · {report.run_id} · dotjoin</title>" in html
    assert "input data/commits.csv" in visible and "year 2024" in visible
    assert "commits 960 lake/curated/commits" in visible
    assert "row_accounting passed 1000 1000" in visible
    assert "no_duplicate_sha failed 2 0 2 shas twice" in visible
    assert {c["data-check"]: c["data-passed"] for c in elements(html, "tr", class_="check")} == {
        "row_accounting": "true",
        "no_duplicate_sha": "false",
    }
    assert "Other counts late 4" in visible
    assert "rows_per_s 412,000" in visible
    assert "1 passed · 1 failed" in visible
    assert elements(html, "a", class_="brand", href="/")


def test_accounting_chart_segments_are_proportional(client: TestClient, save_report: SaveReport) -> None:
    report = save_report(counts=BALANCED)
    html = client.get(f"/runs/{report.run_id}").text
    (svg,) = elements(html, "svg", class_="accounting")
    assert svg["data-balanced"] == "true"
    (bar,) = elements(html, "rect", class_="bar bar-input")
    segments = {r["data-kind"]: r for r in elements(html, "rect") if r.get("class", "").startswith("seg ")}
    assert list(segments) == ["output", "quarantined", "duplicates"]
    input_width = float(bar["width"])
    assert input_width > 0
    for kind, seg in segments.items():
        assert int(seg["data-count"]) == BALANCED[kind]
        assert float(seg["width"]) / input_width == pytest.approx(BALANCED[kind] / 1000, abs=1e-4)
    ends = [float(s["x"]) + float(s["width"]) for s in segments.values()]
    assert ends[-1] == pytest.approx(float(bar["x"]) + input_width)  # stacked: they fill the input bar
    assert "Balanced: input 1,000 = output + quarantined + duplicates." in text(html)
    assert 'role="alert"' not in html


def test_accounting_chart_warns_when_rows_do_not_add_up(client: TestClient, save_report: SaveReport) -> None:
    report = save_report(status="failed", counts=UNBALANCED, checks=[accounting_check(UNBALANCED)])
    html = client.get(f"/runs/{report.run_id}").text
    (svg,) = elements(html, "svg", class_="accounting")
    assert svg["data-balanced"] == "false"
    (gap,) = elements(html, "rect", class_="seg seg-unaccounted")
    assert gap["data-count"] == "75"
    visible = text(html)
    assert "Rows do not add up." in visible
    assert "(75 rows unaccounted for)" in visible
    assert "⚠ 75 rows unaccounted" in visible  # inside the SVG too
    assert elements(html, "div", class_="alert alert-warning", role="alert")


def test_accounting_chart_shows_an_over_count(client: TestClient, save_report: SaveReport) -> None:
    counts = {"input": 100, "output": 100, "quarantined": 20, "duplicates": 0}
    report = save_report(counts=counts)
    html = client.get(f"/runs/{report.run_id}").text
    (bar,) = elements(html, "rect", class_="bar bar-input")
    (out,) = elements(html, "rect", class_="seg seg-output")
    (quarantined,) = elements(html, "rect", class_="seg seg-quarantined")
    assert float(bar["width"]) == pytest.approx(float(out["width"]), abs=0.01)
    assert float(quarantined["width"]) == pytest.approx(float(bar["width"]) * 0.2, abs=0.01)
    assert "(20 more rows accounted for than were read)" in text(html)


def test_run_without_input_count_says_accounting_does_not_apply(
    client: TestClient, save_report: SaveReport
) -> None:
    report = save_report(counts={"output": 12})
    html = client.get(f"/runs/{report.run_id}").text
    assert not elements(html, "svg")
    assert "row accounting does not apply" in text(html)


def test_running_and_errored_runs(client: TestClient, save_report: SaveReport) -> None:
    running = save_report(status="running", duration_s=None)
    errored = save_report(status="failed", error="DataError: <bad> file")
    html = client.get(f"/runs/{running.run_id}").text
    assert '<span class="badge badge-running">running</span>' in html
    assert "Finished — Duration —" in text(html)
    html = client.get(f"/runs/{errored.run_id}").text
    assert "Run failed with an error DataError: <bad> file" in text(html)
    assert "DataError: &lt;bad&gt; file" in html


def test_report_written_by_start_run_renders(client: TestClient, local_settings: Settings) -> None:
    with start_run("selfcheck", local_settings, params={"events": 10}, record_history=False) as run:
        run.count(input=10, output=9, quarantined=1, duplicates=0)
        run.output("events", rows=9)
        run.check_accounting()
    page = client.get(f"/runs/{run.run_id}")
    assert page.status_code == 200
    assert '<span class="badge badge-succeeded">succeeded</span>' in page.text
    assert [r["data-kind"] for r in elements(page.text, "rect") if r.get("data-kind")] == [
        "input",
        "output",
        "quarantined",
    ]


def test_unknown_run_is_a_404_page(client: TestClient) -> None:
    page = client.get("/runs/no-such-run")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "404 · Not found" in text(page.text)
    assert "<title>Not found · dotjoin</title>" in page.text
    assert client.get("/runs/bad%20id!").status_code == 404
    assert client.get("/no/such/page").status_code == 404


def test_run_id_prefix_redirects_to_the_run(client: TestClient, save_report: SaveReport) -> None:
    report = save_report(pipeline="lonely")
    page = client.get("/runs/lonely-", follow_redirects=False)
    assert page.status_code == 307
    assert page.headers["location"].endswith(f"/runs/{report.run_id}")


def test_api_returns_the_reports_as_stored(
    client: TestClient, save_report: SaveReport, local_settings: Settings
) -> None:
    old = save_report(pipeline="csv_etl", checks=[Check(name="c", passed=True, observed={"a": [1]})])
    new = save_report(pipeline="payments", status="failed")
    stored = {
        r.run_id: json.loads((local_settings.runs_dir / f"{r.run_id}.json").read_text()) for r in (old, new)
    }
    listing = client.get("/api/runs")
    assert listing.status_code == 200
    assert listing.json() == [stored[new.run_id], stored[old.run_id]]
    assert client.get("/api/runs", params={"pipeline": "csv_etl"}).json() == [stored[old.run_id]]
    assert client.get("/api/runs", params={"limit": 1}).json() == [stored[new.run_id]]
    assert client.get(f"/api/runs/{old.run_id}").json() == stored[old.run_id]


def test_api_unknown_run_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/runs/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "no run 'nope'" in response.json()["detail"]
    assert client.get("/api/runs", params={"limit": 0}).status_code == 422


def test_healthz_static_and_headers(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert client.head("/healthz").status_code == 200
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN
    assert client.get("/api/openapi.json").json()["info"]["title"] == "dotjoin"


def test_pages_reference_no_external_assets(client: TestClient, save_report: SaveReport) -> None:
    report = save_report()
    for path in ("/", f"/runs/{report.run_id}", "/runs/missing"):
        html = client.get(path).text
        for tag, attr in (("link", "href"), ("script", "src"), ("img", "src")):
            for element in elements(html, tag):
                url = element.get(attr, "")
                assert not url.startswith(("http:", "https:", "//")), (path, url)
