"""The orchestrated flows on the local runner, end to end on the embedded engines (issue 6 acceptance).

- a 30-day backfill run twice gives identical outputs, equal to running the days one by one;
- killing the runner mid-backfill and running it again completes only what was missing;
- a transient source failure recovers through step retries with no alert; a deterministic one is
  retried the configured number of times and then alerts a local HTTP receiver;
- the nightly flow runs end to end for one date.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.cli.registry import get_flow
from dotjoin.config import Settings, load_settings
from dotjoin.orchestration.runner import backfill, run_date
from dotjoin.platform.runs import RunStore
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.sources.app import FaultConfig, SourceState, running
from tests.conftest import Receiver

pytestmark = pytest.mark.slow

START, END = date(2024, 1, 15), date(2024, 2, 13)  # 30 days across a month end (the branch runs once)
CITIES = "name,latitude,longitude\nOslo,59.91,10.75\nLima,-12.05,-77.04\n"
OUTPUTS = {
    "weather_hourly": "SELECT city, hour, temperature_2m, precipitation FROM weather_hourly ORDER BY 1, 2",
    "weather_daily": "SELECT * FROM weather_daily ORDER BY city, day",
    "weather_monthly": "SELECT * FROM weather_monthly ORDER BY city, month",
}


def _settings(root: Path, **env: str) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cities.csv").write_text(CITIES)
    values = {
        "DOTJOIN__INGEST__CITIES_FILE": str(root / "cities.csv"),
        "DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0",
    }
    return load_settings(profile="local", cwd=root, env=values | env)


def _checksums(settings: Settings) -> dict[str, str]:
    out = {}
    with open_warehouse(settings) as wh:
        for name, sql in OUTPUTS.items():
            table = wh.query(sql)
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            out[name] = f"{table.num_rows}:{hashlib.sha256(sink.getvalue()).hexdigest()[:16]}"
    return out


def _no_sleep(_: float) -> None:
    """Retry delays are the runner's business; the tests do not wait them out."""


def _reports(settings: Settings, flow: str) -> dict[str, list[str]]:
    """Statuses of the flow's run reports per logical date."""
    per_date: dict[str, list[str]] = {}
    for report in RunStore(settings.runs_dir).list(pipeline=flow):
        per_date.setdefault(str(report.params["logical_date"]), []).append(report.status)
    return per_date


def test_backfill_twice_is_identical_and_equals_day_by_day(tmp_path: Path) -> None:
    flow = get_flow("monthly_aggregates")
    with running(SourceState()) as url:
        params = {"base_url": url}
        batch = _settings(tmp_path / "backfill")
        result = backfill(flow, batch, START, END, params=params, sleep=_no_sleep)
        assert len(result.failed) == 0, result
        first = _checksums(batch)
        again = backfill(flow, batch, START, END, params=params, force=True, sleep=_no_sleep)
        assert len(again.failed) == 0, again
        second = _checksums(batch)

        one_by_one = _settings(tmp_path / "daily")
        day = START
        while day <= END:
            report = run_date(flow, one_by_one, day, params=params, sleep=_no_sleep)
            assert report.status == "succeeded", report.steps
            day += timedelta(days=1)
        daily = _checksums(one_by_one)

    assert first == second == daily
    assert first["weather_daily"].startswith("60:")  # 2 cities x 30 days
    assert first["weather_monthly"].startswith("2:")  # January only: February never reached its last day
    statuses = _reports(batch, "monthly_aggregates")
    assert len(statuses) == 30 and all(s == ["succeeded", "succeeded"] for s in statuses.values())


def test_backfill_resumes_after_kill_without_rerunning_green_dates(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    start, end = date(2024, 2, 20), date(2024, 3, 2)  # 12 days across February's end
    with running(SourceState(faults=FaultConfig(latency_s=0.05))) as url:
        env = os.environ | {
            "DOTJOIN__INGEST__CITIES_FILE": str(tmp_path / "state" / "cities.csv"),
            "DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0",
        }
        cmd = [sys.executable, "-m", "dotjoin", "backfill", "monthly_aggregates", "--start", str(start)]
        cmd += ["--end", str(end), "--base-url", url]
        proc = subprocess.Popen(cmd, cwd=tmp_path / "state", env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(_reports(settings, "monthly_aggregates")) < 4:
            assert proc.poll() is None, "the backfill ended before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        green = set(_reports(settings, "monthly_aggregates"))
        assert 4 <= len(green) < 12

        rerun = subprocess.run(cmd, cwd=tmp_path / "state", env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    statuses = _reports(settings, "monthly_aggregates")
    assert len(statuses) == 12
    for day, runs in statuses.items():
        assert runs == ["succeeded"], f"{day} ran {len(runs)} times: {runs}"  # green dates never re-ran
    reference = _settings(tmp_path / "clean")
    with running(SourceState()) as url:
        assert not backfill(
            get_flow("monthly_aggregates"), reference, start, end, params={"base_url": url}
        ).failed
    assert _checksums(settings) == _checksums(reference)


def test_transient_source_failure_recovers_through_retries_without_alert(
    tmp_path: Path, receiver: Receiver
) -> None:
    url_hook, received = receiver.url, receiver.posts
    settings = _settings(
        tmp_path,
        DOTJOIN__INGEST__MAX_ATTEMPTS="1",  # the HTTP client gives up at once: the step's retry recovers
        DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL=url_hook,
        DOTJOIN__ORCHESTRATION__NOTIFY_SUCCESS="false",
    )
    state = SourceState(faults=FaultConfig(fail_first=2))
    with running(state) as url:
        flow = get_flow("monthly_aggregates")
        report = run_date(flow, settings, date(2024, 5, 2), params={"base_url": url}, sleep=_no_sleep)
    assert report.status == "succeeded", report.steps
    assert state.injected["fail_first"] == 2
    ingest = next(s for s in report.steps if s.name == "ingest_weather")
    assert ingest.attempts >= 2  # the 503s failed the first try; a step retry recovered
    assert received == []


def test_deterministic_failure_is_retried_then_alerts(tmp_path: Path, receiver: Receiver) -> None:
    url_hook, received = receiver.url, receiver.posts
    settings = _settings(
        tmp_path, DOTJOIN__INGEST__MAX_ATTEMPTS="1", DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL=url_hook
    )
    flow = get_flow("monthly_aggregates")
    with running(SourceState()) as url:
        broken = url + "/no-such-api"  # every request answers 404: no retry can fix it
        report = run_date(flow, settings, date(2024, 5, 2), params={"base_url": broken}, sleep=_no_sleep)
    assert report.status == "failed"
    steps = {s.name: s for s in report.steps}
    assert steps["ingest_weather"].status == "failed"
    assert steps["ingest_weather"].attempts == flow.step("ingest_weather").retries + 1
    assert steps["daily_aggregates"].status == "upstream_failed"
    assert len(received) == 1
    alert = received[0]["dotjoin"]
    assert (alert["dag"], alert["task"], alert["date"]) == (
        "monthly_aggregates",
        "ingest_weather",
        "2024-05-02",
    )
    assert "404" in alert["error"] or "not found" in alert["error"].lower()
    assert "monthly_aggregates" in received[0]["text"]


def test_nightly_runs_end_to_end_for_one_date(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with running(SourceState()) as url:
        report = run_date(get_flow("nightly"), settings, date(2024, 3, 7), params={"base_url": url})
    assert report.status == "succeeded", [(s.name, s.error) for s in report.steps]
    steps = {s.name: s for s in report.steps}
    assert list(steps) == [s.name for s in get_flow("nightly").order()]
    assert all(s.status == "succeeded" and s.attempts == 1 for s in steps.values())
    checks = steps["quality_checks"].metadata["checks"]
    assert checks["weather_hours"] == 48 and checks["arrivals_present"]
    assert steps["dbt_build"].metadata["marts"]["fact_orders"] > 0
