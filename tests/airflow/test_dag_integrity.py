"""Every file in dags/ imports into a DagBag with no errors, and each DAG is its flow, task for task.

Safe mode is on (Airflow's default): a file is parsed only if it mentions "airflow" and "dag", so a thin
DAG file that lost one of them would silently disappear — the file-to-DAG check catches that.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable

from dotjoin.cli.registry import FLOWS, get_flow
from dotjoin.config import load_settings
from dotjoin.orchestration.airflow import build_dag
from dotjoin.orchestration.steps import Flow, Step
from tests.airflow.conftest import REPO_DAGS

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagBag]:
    home = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOTJOIN_HOME", str(home))
        mp.setenv("DOTJOIN_PROFILE", "local")
        yield DagBag(dag_folder=REPO_DAGS, safe_mode=True)


def _acyclic(dag: object) -> bool:
    """Kahn's algorithm over the tasks' upstream ids: True when every task can be ordered."""
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}  # type: ignore[attr-defined]
    done: set[str] = set()
    while len(done) < len(upstream):
        ready = {t for t, ups in upstream.items() if t not in done and ups <= done}
        if not ready:
            return False
        done |= ready
    return True


def test_every_dag_file_imports_without_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    files = sorted(p.name for p in REPO_DAGS.glob("*.py"))
    assert sorted(Path(dag.fileloc).name for dag in bag.dags.values()) == files
    assert sorted(bag.dag_ids) == sorted(FLOWS), "one DAG file per orchestrated flow"


@pytest.mark.parametrize("dag_id", sorted(FLOWS))
def test_dag_is_its_flow(bag: DagBag, dag_id: str) -> None:
    dag, flow = bag.dags[dag_id], get_flow(dag_id)
    assert _acyclic(dag)
    assert dag.max_active_runs == flow.max_active_runs >= 1
    assert dag.catchup is flow.catchup
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.start_date.date() == flow.start_date
    assert "dotjoin" in dag.tags and set(flow.tags) <= set(dag.tags)
    assert dag.doc_md and flow.description in dag.doc_md
    assert sorted(dag.task_ids) == sorted(s.name for s in flow.steps)
    for step in flow.steps:
        task = dag.get_task(step.name)
        assert task.upstream_task_ids == set(step.upstream), step.name
        assert task.retries == step.retries >= 1, f"{dag_id}.{step.name} has no retries"
        assert task.owner == flow.owner and task.owner != "airflow", f"{dag_id}.{step.name} has no owner"
        assert task.on_failure_callback, f"{dag_id}.{step.name} has no on_failure_callback"
        assert task.trigger_rule == step.trigger_rule
        assert task.retry_delay.total_seconds() == step.retry_delay_s
        assert task.max_retry_delay.total_seconds() == step.max_retry_delay_s
        expected_timeout = None if step.timeout_s is None else step.timeout_s
        timeout = task.execution_timeout.total_seconds() if task.execution_timeout else None
        assert timeout == expected_timeout
        assert task.retry_exponential_backoff == (step.backoff if step.backoff > 1 else 0)
        assert ("Branch" in type(task).__name__) is step.branch


def test_monthly_aggregates_branches_at_month_end(bag: DagBag) -> None:
    dag = bag.dags["monthly_aggregates"]
    branches = [t for t in dag.tasks if "Branch" in type(t).__name__]
    assert [t.task_id for t in branches] == ["is_month_end"]
    assert dag.get_task("monthly_aggregates").upstream_task_ids == {"is_month_end"}
    assert dag.get_task("notify").trigger_rule == "none_failed"


def _noop(_ctx: object) -> None:
    return None


def test_a_duckdb_warehouse_runs_one_task_at_a_time(tmp_path: Path) -> None:
    flow = Flow("dj_test_writers", "", (Step("a", _noop), Step("b", _noop)), get_flow("stocks").start_date)
    local = load_settings(profile="local", cwd=tmp_path, env={})
    stack = load_settings(profile="stack", cwd=tmp_path, env={})
    assert build_dag(flow, settings=local).max_active_tasks == 1
    assert build_dag(flow, settings=stack).max_active_tasks > 1


def test_constant_delay_has_no_exponential_backoff(tmp_path: Path) -> None:
    steps = (Step("flat", _noop, backoff=1.0), Step("steep", _noop, backoff=3.0, max_retry_delay_s=60))
    flow = Flow("dj_test_backoff", "", steps, get_flow("stocks").start_date)
    dag = build_dag(flow, settings=load_settings(profile="local", cwd=tmp_path, env={}))
    assert dag.get_task("flat").retry_exponential_backoff == 0
    assert dag.get_task("steep").retry_exponential_backoff == 3.0
    assert dag.get_task("steep").max_retry_delay.total_seconds() == 60
