"""Acceptance: kill -9 a local runner mid-backfill; the rerun completes only the missing work.

``orchestration_worker.py`` backfills six dates of a toy flow and hangs inside the ``slow`` step of the
fourth; the test SIGKILLs it there and runs the backfill again. The state must show: the three green
dates were not re-run (one try per step, all from the first process), the crashed date reused its
green ``prepare`` and re-ran only ``slow`` and ``finish``, and the last two dates ran once. Two runners
of other flows share the state file at the same time; two runners of one flow do not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dotjoin.config import Settings, load_settings
from dotjoin.orchestration.state import CRASHED, RunState
from dotjoin.platform.runs import RunStore
from tests.conftest import REPO_ROOT

WORKER = Path(__file__).with_name("orchestration_worker.py")
START = date(2024, 1, 1)
DAYS = [START + timedelta(days=n) for n in range(6)]


def _spawn(cwd: Path, flow: str, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    args = ["--cwd", str(cwd), "--flow", flow, "--start", str(DAYS[0]), "--end", str(DAYS[-1]), *extra]
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, text=True, env=env)


def _events(proc: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    assert proc.stdout is not None
    for line in proc.stdout:
        yield json.loads(line)


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def _hang_then_kill(cwd: Path, flow: str, hang_on: date) -> str:
    """Run the backfill until it hangs in ``slow`` on ``hang_on``, kill -9 it; the first run's id."""
    proc = _spawn(cwd, flow, "--hang-on", str(hang_on))
    try:
        for event in _events(proc):
            if event["event"] == "slow" and event["date"] == str(hang_on):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return str(event["run_id"])


def test_kill_9_mid_backfill_then_rerun_completes_only_the_missing_dates(tmp_path: Path) -> None:
    settings: Settings = load_settings(profile="local", cwd=tmp_path, env={})
    crashed_run = _hang_then_kill(tmp_path, "crashy", DAYS[3])

    with RunState.open(settings) as state:
        before = state.flow_runs("crashy")
        assert [(d, r.effective_status) for d, r in before.items()] == [
            (DAYS[0], "succeeded"),
            (DAYS[1], "succeeded"),
            (DAYS[2], "succeeded"),
            (DAYS[3], "failed"),  # status "running", but its process is gone
        ]
        assert before[DAYS[3]].status == "running" and before[DAYS[3]].crashed
        green_tries = {d: state.tries("crashy", d) for d in DAYS[:3]}

    rerun = _spawn(tmp_path, "crashy")
    done = _finish(rerun)
    assert rerun.returncode == 0, done
    assert done["skipped"] == [str(d) for d in DAYS[:3]]
    assert done["ran"] == [str(d) for d in DAYS[3:]]

    with RunState.open(settings) as state:
        assert {r.effective_status for r in state.flow_runs("crashy").values()} == {"succeeded"}
        for day in DAYS[:3]:  # green dates were not re-run: the same single try of each step
            tries = state.tries("crashy", day)
            assert tries == green_tries[day]
            assert [(t.step, t.attempt, t.status) for t in tries] == [
                ("prepare", 1, "succeeded"),
                ("slow", 1, "succeeded"),
                ("finish", 1, "succeeded"),
            ]
        resumed = state.tries("crashy", DAYS[3])
        new_run = state.flow_run("crashy", DAYS[3]).run_id  # type: ignore[union-attr]
        assert [(t.step, t.run_id, t.status, t.error) for t in resumed] == [
            ("prepare", crashed_run, "succeeded", None),
            ("slow", crashed_run, "failed", CRASHED),
            ("slow", new_run, "succeeded", None),
            ("finish", new_run, "succeeded", None),
        ]
        assert state.steps("crashy", DAYS[3])["slow"].metadata == {"prepared": str(DAYS[3])}
    report = RunStore(settings.runs_dir).get(new_run)
    assert [(s.name, s.reused) for s in report.steps] == [
        ("prepare", True),
        ("slow", False),
        ("finish", False),
    ]


def test_runners_of_other_flows_share_the_state_and_one_flow_runs_once(tmp_path: Path) -> None:
    holder = _spawn(tmp_path, "busy", "--hang-on", str(DAYS[0]))
    try:
        next(e for e in _events(holder) if e["event"] == "slow")
        refused = _spawn(tmp_path, "busy")
        error = _finish(refused)
        assert refused.returncode == 2
        assert (
            error["event"] == "error"
            and "flow busy is already being run by another runner" in error["message"]
        )
        others = [_spawn(tmp_path, name) for name in ("other_a", "other_b")]
        for proc in others:
            done = _finish(proc)
            assert proc.returncode == 0 and len(done["ran"]) == len(DAYS), done
    finally:
        holder.kill()
        holder.wait(timeout=30)
