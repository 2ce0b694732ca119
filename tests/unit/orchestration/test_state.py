"""The runner's state file: a run whose process is gone counts as failed; a pid reused does not fool it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from dotjoin.config import Settings
from dotjoin.orchestration.state import RunState, process_alive, process_start_time
from tests.conftest import REPO_ROOT

DAY = date(2024, 5, 1)
LINUX = Path("/proc/self/stat").exists()


def test_a_live_process_is_alive_and_a_reaped_one_is_not() -> None:
    me = os.getpid()
    assert process_alive(me, process_start_time(me))
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert not process_alive(int(child.stdout), None)


@pytest.mark.skipif(not LINUX, reason="process start times come from /proc")
def test_a_reused_pid_is_not_the_same_process() -> None:
    me = os.getpid()
    started = process_start_time(me)
    assert started is not None and started.isdigit()
    assert not process_alive(me, str(int(started) - 1))


def test_a_run_left_running_by_a_dead_process_counts_as_failed(local_settings: Settings) -> None:
    code = (
        "import sys, pathlib; from datetime import date; from dotjoin.config import load_settings; "
        "from dotjoin.orchestration.state import RunState; "
        "s = RunState.open(load_settings(profile='local', cwd=pathlib.Path(sys.argv[1]), env={})); "
        "d = date(2024, 5, 1); s.begin_run('dies', d, 'dies-1'); s.start_try('dies', d, 'a', 'dies-1', 1)"
    )
    cwd = local_settings.state_dir.parent
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code, str(cwd)], check=True, env=env)

    with RunState.open(local_settings) as state:
        run = state.flow_run("dies", DAY)
        assert run is not None and (run.status, run.crashed, run.effective_status) == (
            "running",
            True,
            "failed",
        )
        assert state.steps("dies", DAY)["a"].status == "running"
        state.begin_run("dies", DAY, "dies-2")  # the next run closes the dead run's open tries
        (tried,) = state.tries("dies", DAY)
        assert (tried.run_id, tried.status, tried.error) == (
            "dies-1",
            "failed",
            "the runner process died during this try",
        )
        mine = state.flow_run("dies", DAY)
        assert mine is not None and (mine.run_id, mine.effective_status) == ("dies-2", "running")


def test_state_file_is_wal_and_an_unwritable_path_is_one_line(
    local_settings: Settings, tmp_path: Path
) -> None:
    with RunState.open(local_settings) as state:
        assert state.path == local_settings.state_dir / "orchestration.sqlite"
        mode = state._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(Exception, match=r"^orchestration state .*/file/state.sqlite: cannot open: "):
        RunState(blocker / "state.sqlite")
