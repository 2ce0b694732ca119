"""Per-task overhead of orchestration: the local runner against Airflow's ``dag.test()``, same DAG, same run.

The flow is ``--tasks`` chained no-op steps (each returns ``None``), declared once and run by both:

* **local runner** — ``dotjoin.orchestration.runner.run_date`` (durable SQLite state, run report, lock);
* **Airflow** (the baseline the ratio is against) — ``build_dag(flow).test()`` in ``.venv-airflow``
  (``AIRFLOW_PYTHON`` overrides), SQLite metadata database, task runner and execution API in-process.

Each side runs ``--runs`` dates after one warm-up date (not counted: imports, Airflow's in-process API
server). Per task: the run's wall time / tasks (scheduling included), and the p50/p95 of the step's own
duration (the runner's step records, Airflow's task-instance durations). Target: local p50 <= 50 ms.

Usage: .venv/bin/python benchmarks/orchestration.py [--tasks 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dotjoin.config import load_settings
from dotjoin.orchestration.steps import Flow, Step, StepContext

REPO = Path(__file__).resolve().parents[1]
START = date(2024, 1, 1)
TARGET_MS = 50.0


def noop(_ctx: StepContext) -> None:
    """A task that does nothing: what is left is the orchestrator's overhead."""


def noop_flow(tasks: int) -> Flow:
    steps = tuple(
        Step(f"t{i:03d}", noop, upstream=(f"t{i - 1:03d}",) if i else (), retries=1, retry_delay_s=0)
        for i in range(tasks)
    )
    return Flow("bench_noop", f"{tasks} chained no-op steps", steps, START, schedule="@daily")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_local(tasks: int, runs: int, root: Path) -> dict[str, Any]:
    from dotjoin.orchestration.runner import run_date

    settings = load_settings(profile="local", cwd=root, env={})
    flow = noop_flow(tasks)
    walls: list[float] = []
    steps: list[float] = []
    for n in range(runs + 1):
        began = time.perf_counter()
        report = run_date(flow, settings, START + timedelta(days=n))
        wall = time.perf_counter() - began
        assert report.status == "succeeded", report.error
        if n:  # the first date is the warm-up
            walls.append(wall)
            steps += [s.duration_s for s in report.steps if s.duration_s is not None]
    return {"walls": walls, "steps": steps}


AIRFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime, timedelta, timezone
    from airflow.utils.db import initdb
    from airflow.dag_processing.dagbag import DagBag

    tasks, runs, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    initdb()
    dag = DagBag(dag_folder=folder, safe_mode=True).dags["bench_noop"]
    walls, steps = [], []
    for n in range(runs + 1):
        began = time.perf_counter()
        run = dag.test(logical_date=datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=n))
        wall = time.perf_counter() - began
        assert str(getattr(run.state, "value", run.state)) == "success", run.state
        if n:
            walls.append(wall)
            steps += [ti.duration for ti in run.get_task_instances() if ti.duration is not None]
    print(json.dumps({"walls": walls, "steps": steps}))
    """
)

DAG_FILE = """# the benchmark's DAG (airflow): the same no-op flow the local runner runs
from benchmarks.orchestration import noop_flow
from dotjoin.orchestration.airflow import build_dag

dag = build_dag(noop_flow({tasks}))
"""


def run_airflow(tasks: int, runs: int, root: Path) -> dict[str, Any] | str:
    python = Path(os.environ.get("AIRFLOW_PYTHON", REPO / ".venv-airflow" / "bin" / "python"))
    if not python.exists():
        return f"skipped: no Airflow interpreter at {python} (run `make airflow`)"
    home, dags, project = root / "airflow", root / "dags", root / "project"
    for folder in (home, dags, project):
        folder.mkdir(parents=True)
    (dags / "bench_noop.py").write_text(DAG_FILE.format(tasks=tasks))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DOTJOIN"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "DOTJOIN_HOME": str(project),
            "DOTJOIN_PROFILE": "local",
            "PYTHONPATH": str(REPO),
        }
    )
    out = subprocess.run(
        [str(python), "-c", AIRFLOW_SCRIPT, str(tasks), str(runs), str(dags)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    if out.returncode != 0:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summary(name: str, tasks: int, result: dict[str, Any]) -> float:
    """Print one side's figures; return its per-task p50 (ms) of wall time / tasks."""
    per_task = [w / tasks * 1000 for w in result["walls"]]
    steps = [s * 1000 for s in result["steps"]]
    p50 = statistics.median(per_task)
    p95, s50, s95 = percentile(per_task, 0.95), statistics.median(steps), percentile(steps, 0.95)
    print(
        f"{name:<15} per task (run wall / {tasks}): p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
        f"   step itself: p50 {s50:6.1f} ms  p95 {s95:6.1f} ms",
        flush=True,
    )
    return p50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="dates per side, after one warm-up date")
    args = parser.parse_args()
    print(f"{args.tasks} chained no-op tasks x {args.runs} dates (+1 warm-up) per runtime", flush=True)
    with tempfile.TemporaryDirectory(prefix="dj-bench-orch-") as tmp:
        root = Path(tmp)
        local = summary("local runner", args.tasks, run_local(args.tasks, args.runs, root / "local"))
        airflow = run_airflow(args.tasks, args.runs, root / "airflow")
        if isinstance(airflow, str):
            print(f"{'airflow':<15} {airflow}")
        else:
            baseline = summary("airflow test()", args.tasks, airflow)
            ratio = baseline / local
            print(f"ratio vs Airflow dag.test(): the local runner's per-task overhead is {ratio:.1f}x lower")
    verdict = "met" if local <= TARGET_MS else "MISSED"
    print(f"target local runner p50 <= {TARGET_MS:.0f} ms per task: {verdict} ({local:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
