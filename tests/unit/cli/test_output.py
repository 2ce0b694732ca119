"""The CLI's shared output helpers: the progress bar and the run-report printout."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
import typer
from rich.console import Console

from dotjoin.cli import output
from dotjoin.platform.runs import RunReport
from dotjoin.platform.runs.report import Check


def test_progress_bar_draws_only_when_enabled_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    with output.progress_bar(True, "fetching") as update:  # the test's stdout is no terminal
        assert update is None
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, force_terminal=True, width=100))
    with output.progress_bar(False, "fetching") as update:
        assert update is None
    with output.progress_bar(True, "fetching") as update:
        assert update is not None
        update(2, 3, "service days")
    assert "service days" in screen.getvalue() and "2/3" in screen.getvalue()


def test_emit_report_prints_json_or_checks_and_summary_and_exits_1_unless_succeeded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = RunReport(
        pipeline="toy", run_id="r1", profile="local", status="succeeded", started_at=datetime.now(UTC),
        checks=[Check(name="accounting", passed=True, observed=3, expected=3)],
    )  # fmt: skip
    output.emit_report(report, "json", lambda r: "never printed")
    assert json.loads(capsys.readouterr().out)["run_id"] == "r1"
    output.emit_report(report, "table", lambda r: f"summary of {r.run_id}")
    table = capsys.readouterr().out
    assert "accounting" in table and "toy r1: succeeded" in table and "summary of r1" in table
    with pytest.raises(typer.Exit) as exit_:
        output.emit_report(report.model_copy(update={"status": "failed"}), "json", str)
    assert exit_.value.exit_code == 1
