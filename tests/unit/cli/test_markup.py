"""Text in square brackets is data, not rich markup: the CLI prints values, headers, file names and error
messages literally (``dependabot[bot]`` is not shortened, ``[/]`` does not crash)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from dotjoin.cli import output
from dotjoin.config import load_settings
from dotjoin.platform.runs import RunReport, RunStore
from dotjoin.platform.runs.report import Check
from tests.unit.cli.test_cli import dotjoin

TRICKY = ("dependabot[bot]", "[/]", "[bold]x")


def test_sql_prints_bracketed_values_and_headers_literally(tmp_path: Path) -> None:
    query = "SELECT 'dependabot[bot]' AS \"author[bot]\", '[/]' AS \"[/]\", '[bold]x' AS \"[bold]h\""
    result = dotjoin("sql", query, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in (*TRICKY, "author[bot]", "[bold]h"):
        assert text in result.stdout, result.stdout
    assert "Traceback" not in result.stderr


def test_error_messages_keep_brackets_and_stay_one_line(tmp_path: Path) -> None:
    result = dotjoin("sql", 'SELECT * FROM "[/]x[bold]"', cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "[/]x[bold]" in lines[0]

    config = dotjoin("runs", "list", cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__NOPE": "1"})
    assert config.returncode == 1 and "[warehouse]" in config.stderr, config.stderr

    (tmp_path / "data[bold].csv").write_text("x\n")
    etl = dotjoin("etl", "csv", "-d", "commits", "-i", "data[bold].csv", cwd=tmp_path)
    assert etl.returncode == 1 and "data[bold].csv" in etl.stderr, etl.stderr
    assert "Traceback" not in etl.stderr + config.stderr


def test_runs_show_prints_a_report_holding_markup_literally(tmp_path: Path) -> None:
    settings = load_settings(profile="local", cwd=tmp_path, env={})
    report = RunReport(
        pipeline="csv_etl", run_id="csv_etl-markup", profile="local", status="failed",
        started_at=datetime.now(UTC), finished_at=datetime.now(UTC), counts={"input": 1},
        checks=[Check(name="header [/]", passed=False, observed="dependabot[bot]", expected="[bold]x")],
        metrics={"quarantined.[/]": 1.0}, error="bad header [/] in data[bold].csv",
    )  # fmt: skip
    RunStore(settings.runs_dir).save(report)
    result = dotjoin("runs", "show", "csv_etl-markup", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in (*TRICKY, "header [/]", "quarantined.[/]", "bad header [/] in data[bold].csv"):
        assert text in result.stdout, result.stdout


def test_report_summary_and_progress_labels_are_literal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = RunReport(
        pipeline="toy", run_id="r[/]", profile="local", status="succeeded", started_at=datetime.now(UTC),
        checks=[Check(name="[bold]rows", passed=True, observed=1, expected=1)],
    )  # fmt: skip
    output.emit_report(report, "table", lambda r: "summary [/] dependabot[bot]")
    printed = capsys.readouterr().out
    assert "summary [/] dependabot[bot]" in printed and "toy r[/]: succeeded" in printed
    assert "[bold]rows" in printed

    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, force_terminal=True, width=100))
    with output.progress_bar(True, "[/] fetching") as update:
        assert update is not None
        update(1, 2, "day [bold]x")
    assert "day [bold]x" in screen.getvalue()
