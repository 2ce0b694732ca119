"""`dotjoin serve` in a real browser: uvicorn in a subprocess, pages rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.drift import DRIFT_STATUS
from dotjoin.pipelines.payments.contract import TYPOLOGIES, Label
from dotjoin.pipelines.payments.detector import Alert
from dotjoin.pipelines.payments.monitor import Monitor
from dotjoin.platform.runs.report import Check, Output, RunReport, accounting_check
from dotjoin.platform.runs.store import RunStore
from tests.e2e.browser import Chromium, require_chromium
from tests.unit.web.support import elements, text

pytestmark = pytest.mark.chromium

T0 = datetime(2025, 11, 25, 9, 0, tzinfo=UTC)
GOOD_COUNTS = {"input": 1000, "output": 960, "quarantined": 30, "duplicates": 10}
BAD_COUNTS = {"input": 500, "output": 400, "quarantined": 20, "duplicates": 5}


@dataclass(frozen=True)
class Server:
    url: str
    succeeded: RunReport
    failed: RunReport


def _write_reports(runs_dir: Path) -> tuple[RunReport, RunReport]:
    store = RunStore(runs_dir)
    succeeded = RunReport(
        pipeline="csv_etl",
        run_id="csv_etl-20251125T090000-a1b2c3",
        profile="local",
        status="succeeded",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=2.4),
        params={"input": "data/commits.csv"},
        counts=GOOD_COUNTS,
        inputs=["file:data/commits.csv"],
        outputs=[Output(name="commits", rows=960, location="lake/curated/commits", dataset="table:commits")],
        checks=[
            accounting_check(GOOD_COUNTS),
            Check(name="no_duplicate_sha", passed=True, observed=0, expected=0, dataset="commits"),
        ],
        metrics={"rows_per_s": 412000.0},
    )
    failed = RunReport(
        pipeline="payments_stream",
        run_id="payments_stream-20251125T100000-d4e5f6",
        profile="local",
        status="failed",
        started_at=T0 + timedelta(hours=1),
        finished_at=T0 + timedelta(hours=1, seconds=75),
        params={"topic": "payments"},
        counts=BAD_COUNTS,
        inputs=["topic:payments"],
        outputs=[Output(name="payments_windowed", rows=400, dataset="table:payments_windowed")],
        checks=[
            accounting_check(BAD_COUNTS),
            Check(
                name="late_events_routed", passed=True, observed=3, expected=3, dataset="payments_windowed"
            ),
        ],
    )
    store.save(succeeded)
    store.save(failed)
    return succeeded, failed


ALERT = Alert(
    event_id="e-fraud-1", card_id="c-42", merchant_id="m-7", event_time_ms=1_796_119_200_000, amount=1266.0,
    score=0.9996, anomaly=0.48, rules=("amount_spike",), models=("classifier",),
    explanation="amount_spike: category_ratio 44.56 >= 8; classifier p=1.000: category_ratio 44.56 (+1.00)",
)  # fmt: skip


def _write_detector_status(path: Path) -> None:
    """What a detector process writes: 30 one-second points, then one alert."""
    monitor = Monitor(path)
    start = time.time()
    for i in range(30):
        monitor.batch(scored=1000 + 10 * i, alerts=[], latencies_s=[0.01, 0.02, 0.2], dead_letters=1, late=0,
                      duplicates=2)  # fmt: skip
        monitor.tick(now=start + i + 1)
    # Two labelled frauds: the alerted one and one missed (precision 100%, recall 50%).
    monitor.labels(
        [
            Label(ALERT.event_id, TYPOLOGIES[0], "s1").to_json(),
            Label("e-missed", TYPOLOGIES[1], "s2").to_json(),
        ]
    )
    monitor.batch(scored=5, alerts=[ALERT], latencies_s=[0.05], dead_letters=0, late=1, duplicates=0, lag=120)
    monitor.tick(now=start + 32)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"uvicorn exited with {proc.returncode}: {output[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the web app did not answer on {url} within {timeout_s}s")


def _write_drift_status(path: Path) -> None:
    """Six 5-minute windows of one model: card_sum_1h drifts past the 0.2 alert in the last two."""
    windows = [
        {"model_version": "3", "start_ms": n * 60_000, "end_ms": (n + 5) * 60_000, "rows": 500,
         "psi": {**{f.name: 0.01 for f in FEATURES}, "card_sum_1h": 0.05 * n},
         "ks": {f.name: 0.02 for f in FEATURES}}
        for n in range(6)
    ]  # fmt: skip
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"computed_at": 0, "threshold": 0.2, "windows": windows}))


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    return Chromium(require_chromium(), tmp_path_factory.mktemp("chromium"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Chromium) -> Iterator[Server]:
    """The real app under uvicorn, configured like a user's shell: cwd + DOTJOIN__ environment."""
    home = tmp_path_factory.mktemp("web")
    state_dir = home / ".dotjoin"
    succeeded, failed = _write_reports(state_dir / "runs")
    _write_detector_status(state_dir / "payments" / "status.json")
    _write_drift_status(state_dir / DRIFT_STATUS)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    env["DOTJOIN__STATE_DIR"] = str(state_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "dotjoin.web.app:create_app_from_env",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield Server(url=url, succeeded=succeeded, failed=failed)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_history_page_in_chromium(server: Server, chromium: Chromium, tmp_path: Path) -> None:
    dom = chromium.dump_dom(f"{server.url}/")
    rows = elements(dom, "tr", class_="run")
    assert [(r["data-run-id"], r["data-status"]) for r in rows] == [
        (server.failed.run_id, "failed"),
        (server.succeeded.run_id, "succeeded"),
    ]
    visible = text(dom)
    assert "Run history" in visible
    assert "csv_etl" in visible and "payments_stream" in visible
    assert "1,000 960 30 10 2 passed" in visible
    assert "500 400 20 5 1 passed · 1 failed" in visible
    assert elements(dom, "span", class_="badge badge-failed")
    assert elements(dom, "span", class_="badge badge-succeeded")
    assert elements(dom, "a", href=f"/runs/{server.failed.run_id}")

    png = chromium.screenshot(f"{server.url}/", tmp_path / "history.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 15_000  # a blank 1280x900 page compresses to a few KB


def test_run_page_in_chromium(server: Server, chromium: Chromium, tmp_path: Path) -> None:
    url = f"{server.url}/runs/{server.failed.run_id}"
    dom = chromium.dump_dom(url)
    visible = text(dom)
    assert "payments_stream" in visible and server.failed.run_id in visible
    assert {c["data-check"]: c["data-passed"] for c in elements(dom, "tr", class_="check")} == {
        "row_accounting": "false",
        "late_events_routed": "true",
    }
    assert "input 500 != output 400 + quarantined 20 + duplicates 5 (75 unaccounted)" in visible
    assert "Rows do not add up." in visible

    assert "<svg" in dom
    (svg,) = elements(dom, "svg", class_="accounting")
    assert svg["data-balanced"] == "false"
    segments = {r["data-kind"]: int(r["data-count"]) for r in elements(dom, "rect") if r.get("data-kind")}
    assert segments == {"input": 500, "output": 400, "quarantined": 20, "duplicates": 5, "unaccounted": 75}
    widths = {r["data-kind"]: float(r["width"]) for r in elements(dom, "rect") if r.get("data-kind")}
    assert widths["output"] / widths["input"] == pytest.approx(400 / 500, abs=1e-3)

    png = chromium.screenshot(url, tmp_path / "run.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 15_000


def test_unknown_run_in_chromium(server: Server, chromium: Chromium) -> None:
    dom = chromium.dump_dom(f"{server.url}/runs/no-such-run")
    assert "404 · Not found" in text(dom)
    assert elements(dom, "a", href="/")


def test_payments_dashboard_in_chromium(server: Server, chromium: Chromium, tmp_path: Path) -> None:
    url = f"{server.url}/payments"
    dom = chromium.dump_dom(url)
    visible = text(dom)
    assert "Payments fraud detector" in visible
    charts = elements(dom, "svg", class_="series")
    assert [c["aria-label"] for c in charts] == [
        "Throughput (events/s)", "Event → alert latency (ms)", "Alerts per second", "Consumer lag (messages)",
        "Precision and recall against the labels topic",
    ]  # fmt: skip
    lines = {line["data-series"]: line["points"] for line in elements(dom, "polyline")}
    assert set(lines) == {"events/s", "p50", "p95", "p99", "alerts", "lag", "precision", "recall"}
    assert "Precision 100.0%" in visible and "Recall 50.0%" in visible
    assert f"{TYPOLOGIES[0]} 100.0%" in visible and f"{TYPOLOGIES[1]} 0.0%" in visible
    assert len(lines["events/s"].split()) == 31  # one point a second
    assert "e-fraud-1" in visible and "category_ratio 44.56" in visible
    assert "Scored 34,355" in visible  # 30 batches of 1,000 + 10 i, then 5
    png = chromium.screenshot(url, tmp_path / "payments.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_features_page_in_chromium(server: Server, chromium: Chromium, tmp_path: Path) -> None:
    url = f"{server.url}/features"
    dom = chromium.dump_dom(url)
    visible = text(dom)
    assert "model 3, 500 vectors" in visible and "card_sum_1h 0.25" in visible
    assert len(elements(dom, "tr", class_="drifted")) == 1
    lines = {line["data-series"]: line["points"] for line in elements(dom, "polyline")}
    assert {"card_sum_1h", "alert 0.2"} <= set(lines)
    assert len(lines["card_sum_1h"].split()) == 6  # one point per window
    png = chromium.screenshot(url, tmp_path / "features.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quality_and_lineage_pages_in_chromium(server: Server, chromium: Chromium, tmp_path: Path) -> None:
    dom = chromium.dump_dom(f"{server.url}/quality")
    visible = text(dom)
    assert "commits 1 / 1" in visible and "payments_windowed 1 / 1" in visible
    assert "None: every check's latest result passed." in visible
    assert elements(dom, "a", href="/datasets/commits")
    dataset = text(chromium.dump_dom(f"{server.url}/datasets/commits"))
    assert "no_duplicate_sha" in dataset and "table:commits" in dataset
    url = f"{server.url}/lineage"
    dom = chromium.dump_dom(url)
    nodes = {g["data-id"] for g in elements(dom, "g") if g.get("data-id")}
    assert nodes == {"file:data/commits.csv", "job:dotjoin.csv_etl", "table:commits", "topic:payments",
                     "job:dotjoin.payments_stream", "table:payments_windowed"}  # fmt: skip
    assert len(elements(dom, "path", class_="edge")) == 4
    png = chromium.screenshot(url, tmp_path / "lineage.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
