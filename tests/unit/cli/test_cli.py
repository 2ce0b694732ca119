"""The CLI as a user meets it: a real `dotjoin` process, its exit codes and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dotjoin.cli.registry import DEMO_STEPS


def dotjoin(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "dotjoin", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_shows_commands_and_an_example(tmp_path: Path) -> None:
    result = dotjoin("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("version", "services", "runs", "sql", "serve", "demo"):
        assert command in result.stdout
    assert "Example" in result.stdout


def test_version_json(tmp_path: Path) -> None:
    result = dotjoin("version", "--output", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dotjoin"]


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = dotjoin("runs", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_bad_config_key_is_one_red_line_naming_key_and_source(tmp_path: Path) -> None:
    result = dotjoin("runs", "list", cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__HOSTNAME": "x"})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "warehouse.hostname" in lines[0] and "DOTJOIN__WAREHOUSE__HOSTNAME" in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = dotjoin("--debug", "runs", "list", cwd=tmp_path, env={"DOTJOIN_PROFILE": "nope"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_unreachable_postgres_names_it_and_how_to_start_it(tmp_path: Path) -> None:
    result = dotjoin(
        "--profile",
        "stack",
        "sql",
        "SELECT 1",
        cwd=tmp_path,
        env={"DOTJOIN__WAREHOUSE__PORT": "1", "DOTJOIN__WAREHOUSE__PASSWORD": "x"},
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "PostgreSQL" in lines[0] and "127.0.0.1:1" in lines[0] and "make services" in lines[0]


def test_sql_on_local_duckdb_with_params_json(tmp_path: Path) -> None:
    result = dotjoin("sql", "SELECT $1::INTEGER + 1 AS answer", "-P", "41", "--output", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"answer": 42}]
    assert (tmp_path / ".dotjoin" / "warehouse.duckdb").exists()


def test_sql_error_is_one_line(tmp_path: Path) -> None:
    result = dotjoin("sql", "SELECT * FROM no_such_table", cwd=tmp_path)
    assert result.returncode == 1
    assert "no_such_table" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_runs_and_is_listed(tmp_path: Path) -> None:
    result = dotjoin("demo", "--output", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    runs = json.loads(result.stdout)["runs"]
    assert [r["pipeline"] for r in runs] == [step.name for step in DEMO_STEPS]
    assert all(r["status"] == "succeeded" for r in runs)
    listed = dotjoin("runs", "list", "--output", "json", cwd=tmp_path)
    history = json.loads(listed.stdout)
    assert {r["run_id"] for r in runs} <= {r["run_id"] for r in history}  # with the orchestrated children
    starts = [r["started_at"] for r in history]
    assert starts == sorted(starts, reverse=True)  # newest first
    shown = dotjoin("runs", "show", runs[0]["run_id"][:-3], cwd=tmp_path)
    assert shown.returncode == 0 and "row_accounting" in shown.stdout
    _assert_quality_and_lineage(tmp_path)


def _assert_quality_and_lineage(root: Path) -> None:
    """After the demo: its datasets have check results in dq_results, and the lineage store connects
    files → tables, files → raw → staging → marts, payments → alerts."""
    from dotjoin.config import load_settings
    from dotjoin.platform.lineage import LINEAGE_TABLE, graph
    from dotjoin.platform.warehouse import open_warehouse

    with open_warehouse(load_settings(profile="local", cwd=root, env={})) as wh:
        checked = {r["dataset"] for r in wh.query("SELECT DISTINCT dataset FROM dq_results").to_pylist()}
        events = wh.query(f"SELECT * FROM {LINEAGE_TABLE} ORDER BY event_time DESC").to_pylist()
    assert {"commits", "weather_hourly", "arrivals", "payment_alerts", "fact_orders", "stg_orders"} <= checked
    edges = graph(events)["edges"]
    after: dict[str, set[str]] = {}
    for e in edges:
        after.setdefault(e["source"], set()).add(e["target"])

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for nxt in after.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    files = {e["source"] for e in edges if e["source"].startswith("file:")}
    assert any(f.endswith("commits.csv") and reaches(f, "table:commits") for f in files)
    assert any(reaches(f, "lake:staging.orders") and reaches(f, "model:fact_orders") for f in files)
    assert reaches("topic:payments", "table:payment_alerts") and reaches("topic:payments", "kv:features")
    assert any(e["source"].startswith("api:") and reaches(e["source"], "table:weather_hourly") for e in edges)
