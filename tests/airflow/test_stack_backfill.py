"""The stack: a real Airflow (scheduler + LocalExecutor, PostgreSQL metadata) runs a 3-day backfill.

The backfill is created with the Airflow CLI (``airflow backfill create``) against the running service;
the test waits for it through the REST API, then checks the outputs in the stack's PostgreSQL and that
they equal what the local runner computes for the same dates (on DuckDB, in a temporary project).
2024-01-30 .. 2024-02-01 crosses a month end: the branch builds January on the 31st only.

Needs ``make services`` (postgres + airflow); skipped otherwise, failed under DOTJOIN_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dotjoin.cli.registry import get_flow
from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.api_ingest.common import BUILTIN_CITIES
from dotjoin.services.airflow import AirflowService
from dotjoin.simulate.sources.app import SourceState, running
from tests.airflow.outputs import checksums
from tests.conftest import require_service

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.slow]

DAG_ID = "monthly_aggregates"
FIRST, LAST = date(2024, 1, 30), date(2024, 2, 1)
DATES = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
TIMEOUT_S = 600


class Api:
    """The Airflow REST API (v2) as the SimpleAuthManager's generated admin."""

    def __init__(self, service: AirflowService) -> None:
        self.base = f"http://{service.host}:{service.port}"
        passwords = json.loads((service.home / "simple_auth_manager_passwords.json.generated").read_text())
        token = httpx.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": passwords["admin"]}, timeout=10
        )
        token.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{self.base}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


def _wait(what: str, condition: Any, timeout: float = TIMEOUT_S, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}", pytrace=False)
        time.sleep(interval)


@pytest.fixture
def airflow_api(stack_settings: Settings) -> Iterator[Api]:
    pg = stack_settings.postgres
    require_service("PostgreSQL", pg.host, pg.port)
    service = AirflowService(stack_settings)
    require_service("Airflow", service.host, service.port)
    _wait("a healthy Airflow (scheduler and dag-processor heartbeats)", service.version, timeout=120)
    api = Api(service)
    _wait(f"the dag-processor to serialize {DAG_ID}", lambda: _dag_known(api), timeout=180)
    for backfill in api.get("/backfills", dag_id=DAG_ID)["backfills"]:
        if backfill["completed_at"] is None:  # a leftover of an interrupted run of this test
            api.send("PUT", f"/backfills/{backfill['id']}/cancel")
    api.send("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})  # a paused DAG's tasks never run
    try:
        yield api
    finally:
        api.send("PATCH", f"/dags/{DAG_ID}", {"is_paused": True})
        api.client.close()


def _dag_known(api: Api) -> bool:
    try:
        api.get(f"/dags/{DAG_ID}")
    except httpx.HTTPStatusError:
        return False
    return True


def _runs(api: Api) -> dict[str, dict[str, Any]]:
    found = api.get(
        f"/dags/{DAG_ID}/dagRuns",
        logical_date_gte=f"{FIRST}T00:00:00Z",
        logical_date_lte=f"{LAST}T00:00:00Z",
    )["dag_runs"]
    return {run["logical_date"][:10]: run for run in found}


def test_backfill_on_the_real_scheduler_equals_the_local_runner(
    airflow_api: Api, stack_settings: Settings, tmp_path: Path
) -> None:
    service = AirflowService(stack_settings)
    with running(SourceState()) as base_url:
        began = time.monotonic()
        created = service.cli(
            [
                "backfill", "create", "--dag-id", DAG_ID,
                "--from-date", FIRST.isoformat(), "--to-date", LAST.isoformat(),
                "--reprocess-behavior", "completed", "--max-active-runs", "1",
                "--dag-run-conf", json.dumps({"base_url": base_url}),
            ]
        )  # fmt: skip
        assert created.returncode == 0, created.stderr[-2000:]
        backfill = max(airflow_api.get("/backfills", dag_id=DAG_ID)["backfills"], key=lambda b: b["id"])
        assert backfill["completed_at"] is None
        _wait(
            f"backfill {backfill['id']} of {DAG_ID} {FIRST}..{LAST}",
            lambda: airflow_api.get(f"/backfills/{backfill['id']}")["completed_at"],
        )
        elapsed = time.monotonic() - began
        runs = _runs(airflow_api)
        assert sorted(runs) == [d.isoformat() for d in DATES]
        assert {d: r["state"] for d, r in runs.items()} == {d.isoformat(): "success" for d in DATES}, elapsed
        assert all(r["run_type"] == "backfill" and r["conf"] == {"base_url": base_url} for r in runs.values())
        monthly = {
            day: {
                ti["task_id"]: ti["state"]
                for ti in airflow_api.get(f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")[
                    "task_instances"
                ]
            }["monthly_aggregates"]
            for day, run in runs.items()
        }
        assert monthly == {"2024-01-30": "skipped", "2024-01-31": "success", "2024-02-01": "skipped"}

        # the local runner, same dates, same source, on DuckDB
        from dotjoin.orchestration.runner import run_date

        local = load_settings(profile="local", cwd=tmp_path, env={"DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0"})
        flow = get_flow(DAG_ID)
        for day in DATES:
            report = run_date(flow, local, day, params={"base_url": base_url})
            assert report.status == "succeeded", report.error

    cities = [c.name for c in BUILTIN_CITIES]
    in_postgres = checksums(stack_settings, DAG_ID, FIRST, LAST, cities)
    assert in_postgres == checksums(local, DAG_ID, FIRST, LAST, cities)
    assert in_postgres["weather_daily"].startswith(f"{len(cities) * len(DATES)}:")
    assert in_postgres["weather_monthly"].startswith(f"{len(cities)}:"), "January only: Feb is not over"
    print(f"\nairflow backfill {FIRST}..{LAST}: {elapsed:.1f}s on the real scheduler")
