"""``dag.test()`` end to end on the local profile: the real DAGs, XCom and branches, retries and alerts.

Each real DAG runs one date against the local source server, state in a temporary project; the local
runner runs the same date in another temporary project, and the outputs must be equal value for value.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from dotjoin.cli.registry import get_flow
from dotjoin.config import Settings, load_settings
from dotjoin.simulate.sources.app import SourceState, running
from tests.airflow.outputs import checksums
from tests.conftest import Receiver

pytestmark = pytest.mark.airflow

CITIES = "name,latitude,longitude\nOslo,59.91,10.75\nLima,-12.05,-77.04\n"
MONTH_END = date(2024, 1, 31)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _project(root: Path, **env: str) -> dict[str, str]:
    """A project directory with two cities; the environment a task needs to load its settings."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cities.csv").write_text(CITIES)
    return {
        "DOTJOIN_HOME": str(root),
        "DOTJOIN_PROFILE": "local",
        "DOTJOIN__INGEST__CITIES_FILE": str(root / "cities.csv"),
        "DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0",
        **env,
    }


def _settings(env: dict[str, str]) -> Settings:
    values = {k: v for k, v in env.items() if k.startswith("DOTJOIN__")}
    return load_settings(profile="local", cwd=Path(env["DOTJOIN_HOME"]), env=values)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(SourceState()) as url:
        yield url


def _dag(folder: Path, dag_id: str, source: str | None = None) -> Any:
    """The DAG ``dag_id`` from the test DAG folder (writing ``source`` into it first, if given)."""
    if source is not None:
        (folder / f"{dag_id}.py").write_text(textwrap.dedent(source))
    bag = DagBag(dag_folder=folder / f"{dag_id}.py" if source else folder, safe_mode=True)
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def _value(state: Any) -> str:
    return str(getattr(state, "value", state))


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: _value(ti.state) for ti in run.get_task_instances()}


# -- the real DAGs, against the local runner -------------------------------------------------------------
REAL = [
    pytest.param("monthly_aggregates", MONTH_END, id="monthly_aggregates-month-end"),
    pytest.param("stocks", date(2024, 1, 30), id="stocks"),
    pytest.param("nightly", date(2024, 3, 7), id="nightly", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("dag_id", "day"), REAL)
def test_real_dag_end_to_end_equals_the_local_runner(
    airflow_db: Path,
    dags_folder: Path,
    base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dag_id: str,
    day: date,
) -> None:
    from dotjoin.orchestration.runner import run_date

    flow = get_flow(dag_id)
    assert day >= flow.start_date, "Airflow creates no tasks for a date before the DAG's start"
    airflow_env = _project(tmp_path / "airflow")
    for key, value in airflow_env.items():
        monkeypatch.setenv(key, value)
    run = _dag(dags_folder, dag_id).test(logical_date=_at(day), run_conf={"base_url": base_url})
    states = _states(run)
    assert _value(run.state) == "success", states
    skipped = {"monthly_aggregates"} if dag_id == "monthly_aggregates" and day != MONTH_END else set()
    assert states == {s.name: "skipped" if s.name in skipped else "success" for s in flow.steps}

    local_env = _project(tmp_path / "local")
    report = run_date(flow, _settings(local_env), day, params={"base_url": base_url})
    assert report.status == "succeeded", report.error

    cities = ["Oslo", "Lima"]
    ours = checksums(_settings(airflow_env), dag_id, day, day, cities)
    theirs = checksums(_settings(local_env), dag_id, day, day, cities)
    assert ours == theirs
    assert all(not value.startswith("0:") for value in ours.values()), ours


# -- XCom and branches on a toy flow -------------------------------------------------------------------
TOY = '''
"""A test DAG (airflow, dag): XCom metadata and a month-end branch."""
import json, os
from datetime import date
from dotjoin.orchestration.airflow import build_dag
from dotjoin.orchestration.steps import Flow, Step

def extract(ctx):
    return {"rows": 3, "day": ctx.logical_date.isoformat(), "params": dict(ctx.params)}

def month_end(ctx):
    return ["monthly"] if date.fromordinal(ctx.logical_date.toordinal() + 1).day == 1 else []

def monthly(ctx):
    return {"month": ctx.logical_date.strftime("%Y-%m"), "chosen": ctx.get("month_end", "chosen")}

def report(ctx):
    with open(os.environ["DJ_TEST_OUT"], "w") as fh:
        json.dump({"upstream": ctx.upstream, "attempt": ctx.attempt, "run_id": ctx.run_id}, fh)

FLOW = Flow("dj_test_toy", "toy: extract -> month_end? -> monthly -> report", (
    Step("extract", extract, retry_delay_s=0),
    Step("month_end", month_end, upstream=("extract",), branch=True, retry_delay_s=0),
    Step("monthly", monthly, upstream=("month_end",), retry_delay_s=0),
    Step("report", report, upstream=("extract", "monthly"), trigger_rule="none_failed", retry_delay_s=0),
), date(2024, 1, 1))
dag = build_dag(FLOW)
'''


@pytest.mark.parametrize(("day", "monthly"), [(MONTH_END, "success"), (date(2024, 2, 1), "skipped")])
def test_metadata_moves_through_xcom_and_the_branch_skips(
    airflow_db: Path,
    dags_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    day: date,
    monthly: str,
) -> None:
    for key, value in _project(tmp_path, DJ_TEST_OUT=str(tmp_path / "out.json")).items():
        monkeypatch.setenv(key, value)
    run = _dag(dags_folder, "dj_test_toy", TOY).test(logical_date=_at(day), run_conf={"base_url": "http://x"})
    states = _states(run)
    assert _value(run.state) == "success", states
    assert states == {"extract": "success", "month_end": "success", "monthly": monthly, "report": "success"}
    seen = json.loads((tmp_path / "out.json").read_text())
    assert seen["upstream"]["extract"] == {
        "rows": 3,
        "day": day.isoformat(),
        "params": {"base_url": "http://x"},
    }
    if monthly == "success":
        assert seen["upstream"]["monthly"] == {"month": "2024-01", "chosen": ["monthly"]}
    else:
        assert seen["upstream"]["monthly"] == {}  # skipped: no metadata, as under the local runner
    assert seen["attempt"] == 1 and seen["run_id"] == run.run_id


# -- retries, then the alert ---------------------------------------------------------------------------
FAILING = '''
"""A test DAG (airflow, dag): a step that fails deterministically."""
import os
from datetime import date
from dotjoin.orchestration.airflow import build_dag
from dotjoin.orchestration.steps import Flow, Step, StepFailed

def always_fails(ctx):
    with open(os.environ["DJ_TEST_ATTEMPTS"], "a") as fh:
        fh.write(f"{ctx.attempt}\\n")
    raise StepFailed(f"quality check failed for {ctx.logical_date}: 2 rows with high < low")

FLOW = Flow("dj_test_failing", "a step that always fails", (
    Step("quality", always_fails, retries=2, retry_delay_s=0, backoff=1.0),
), date(2024, 1, 1))
dag = build_dag(FLOW)
'''


def test_deterministic_failure_is_retried_then_alerts_the_receiver(
    airflow_db: Path,
    dags_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
) -> None:
    url, received = receiver.url, receiver.posts
    attempts = tmp_path / "attempts.txt"
    env = _project(tmp_path, DJ_TEST_ATTEMPTS=str(attempts), DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL=url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dag = _dag(dags_folder, "dj_test_failing", FAILING)
    run = dag.test(logical_date=_at(MONTH_END))
    assert _value(run.state) == "failed"
    assert attempts.read_text().split() == ["1", "2", "3"], "1 try + retries=2, then no more"
    assert len(received) == 1, "one alert, after the last try (none per retry)"
    alert = received[0]["dotjoin"]
    assert alert["dag"] == "dj_test_failing" and alert["task"] == "quality"
    assert alert["date"] == "2024-01-31" and alert["runtime"] == "airflow" and alert["attempts"] == 3
    assert alert["error"] == "StepFailed: quality check failed for 2024-01-31: 2 rows with high < low"
    assert alert["run_id"] == run.run_id
    assert "dj_test_failing.quality failed for 2024-01-31" in received[0]["text"]
    assert os.environ["DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL"] not in json.dumps(received)


# -- a defect in the data fails its dataset's task ---------------------------------------------------------
DEFECT = '''
"""A test DAG (airflow, dag): the real weather-ingest step, no retries."""
from datetime import date
from dotjoin.orchestration.airflow import build_dag
from dotjoin.orchestration.steps import Flow, Step
from dotjoin.pipelines.flow_steps import ingest_weather

FLOW = Flow("dj_test_defect", "the weather step alone", (
    Step("ingest_weather", ingest_weather, retries=0, retry_delay_s=0),
), date(2024, 1, 1))
dag = build_dag(FLOW)
'''


def test_an_impossible_value_fails_the_contract_check_and_so_the_task(
    airflow_db: Path, dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dotjoin.platform.runs.store import RunStore

    day = date(2024, 1, 30)
    state = SourceState()
    hour = datetime(2024, 1, 30, 13, tzinfo=UTC)
    state.weather.overrides[(59.91, 10.75, int(hour.timestamp()) // 3600)] = {"temperature_2m": 99.5}
    env = _project(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with running(state) as url:
        run = _dag(dags_folder, "dj_test_defect", DEFECT).test(
            logical_date=_at(day), run_conf={"base_url": url}
        )
    assert _states(run) == {"ingest_weather": "failed"}
    (report,) = RunStore(_settings(env).runs_dir).list(pipeline="ingest_weather")
    failed = [(c.name, c.dataset, c.observed) for c in report.checks if not c.passed]
    assert report.status == "failed" and failed == [("invalidValues:temperature_2m", "weather_hourly", 1)]
