"""``dotjoin run|backfill|flows`` through Typer's CliRunner, on toy flows registered for the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from dotjoin.cli.main import STATE, app
from dotjoin.config import Settings
from dotjoin.orchestration.steps import Flow, Step, StepContext
from dotjoin.simulate.sources.app import SourceState, running

BAD_DAYS = {date(2024, 3, 2)}


def fetch(ctx: StepContext) -> dict[str, object]:
    response = httpx.get(f"{ctx.params['base_url']}/health", timeout=5)  # the step reaches the given server
    return {"status": response.status_code, "ok": response.json()["ok"]}


def load(ctx: StepContext) -> dict[str, object]:
    if ctx.logical_date in BAD_DAYS:
        raise RuntimeError(f"no prices for {ctx.logical_date}")
    return {"rows": 5}


TOY = Flow(
    "toy_cli",
    "health -> load",
    (
        Step("fetch", fetch, retries=0, doc="GET /health from --base-url"),
        Step("load", load, upstream=("fetch",), retries=0, timeout_s=30),
    ),
    date(2024, 1, 1),
    schedule="0 2 * * *",
)
LOCAL = Flow("toy_local", "no HTTP", (Step("load", load, retries=1, retry_delay_s=0),), date(2024, 1, 1))

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setattr(STATE, "_settings", local_settings)
    monkeypatch.setattr(
        "dotjoin.cli.registry.FLOWS",
        {
            "toy_cli": f"{__name__}:TOY",
            "toy_local": f"{__name__}:LOCAL",
            "broken": "dotjoin.no_such_module:FLOW",
        },
    )
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_flows_list_and_show(invoke: Invoke) -> None:
    listed = invoke("flows", "list", "-o", "json")
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["toy_cli"]["schedule"] == "0 2 * * *" and rows["toy_cli"]["steps"] == 2
    assert rows["broken"]["description"] == (
        "unavailable: pipeline broken cannot be loaded: "
        "ModuleNotFoundError: No module named 'dotjoin.no_such_module'"
    )

    shown = invoke("flows", "show", "toy_cli", "-o", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert (data["schedule"], data["start_date"]) == ("0 2 * * *", "2024-01-01")
    assert [(s["name"], s["upstream"], s["retries"], s["timeout_s"]) for s in data["steps"]] == [
        ("fetch", [], 0, 3600.0),
        ("load", ["fetch"], 0, 30.0),
    ]
    table = invoke("flows", "show", "toy_local")
    assert (
        table.exit_code == 0 and "Steps, in run order" in table.stdout and "schedule @daily" in table.stdout
    )


def test_run_passes_base_url_to_the_steps_and_does_not_rerun_a_green_date(invoke: Invoke) -> None:
    with running(SourceState()) as url:
        first = invoke("run", "toy_cli", "--date", "2024-03-07", "--base-url", url, "--output", "json")
        assert first.exit_code == 0, first.output
        report = json.loads(first.stdout)
        assert report["status"] == "succeeded"
        assert report["params"] == {"logical_date": "2024-03-07", "runtime": "local", "base_url": url}
        assert [s["metadata"] for s in report["steps"]] == [{"status": 200, "ok": True}, {"rows": 5}]

        again = invoke("run", "toy_cli", "--date", "2024-03-07", "--base-url", url)
    assert again.exit_code == 0, again.output
    assert "toy_cli 2024-03-07 already succeeded" in again.stdout and report["run_id"] in again.stdout


def test_a_failed_run_exits_1_and_backfill_summarises(invoke: Invoke) -> None:
    failed = invoke("run", "toy_local", "--date", "2024-03-02")
    assert failed.exit_code == 1
    assert "load failed after 2 attempt(s): RuntimeError: no prices for 2024-03-02" in failed.stdout

    result = invoke("backfill", "toy_local", "--start", "2024-03-01", "--end", "2024-03-03", "-o", "json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["ran"] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert summary["failed"] == ["2024-03-02"]
    assert [d["status"] for d in summary["dates"]] == ["succeeded", "failed", "succeeded"]

    table = invoke("backfill", "toy_local", "--start", "2024-03-01", "--end", "2024-03-03", "--only-failed")
    assert table.exit_code == 1
    assert "1 run (0 succeeded, 1 failed), 2 skipped" in table.stdout


def test_usage_errors_exit_2(invoke: Invoke) -> None:
    bad_date = invoke("run", "toy_local", "--date", "07/03/2024")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    assert invoke("backfill", "toy_local", "--start", "2024-03-01").exit_code == 2  # --end missing


@pytest.mark.parametrize("command", [["run"], ["backfill"], ["flows"], ["flows", "list"], ["flows", "show"]])
def test_every_help_has_an_example(invoke: Invoke, command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Example: dotjoin " in result.stdout


def test_unknown_pipeline_is_one_red_line_naming_the_known_ones(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    result = subprocess.run(
        [sys.executable, "-m", "dotjoin", "run", "nope", "--date", "2024-03-07"],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: unknown pipeline 'nope'; orchestrated pipelines: monthly_aggregates, nightly, stocks"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "stocks", "--date", "2099-01-01"), "error: --date 2099-01-01 is in the future"),
        (
            ("backfill", "stocks", "--start", "2024-01-01", "--end", "2099-01-01"),
            "error: --end 2099-01-01 is in",
        ),
        (
            ("run", "stocks", "--date", "2024-01-02", "--base-url", "ftp://x"),
            "error: --base-url 'ftp://x': scheme",
        ),
    ],
)
def test_future_dates_and_unusable_base_urls_are_one_line_before_any_step(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    result = subprocess.run(
        [sys.executable, "-m", "dotjoin", *args], cwd=tmp_path, env={**env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / ".dotjoin" / "runs").exists()  # no step ran
