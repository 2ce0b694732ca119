"""The check record on the real Prometheus: a run pushes its results to the Pushgateway, Prometheus
scrapes them, and its alerting rules (services/prometheus/alerts.yml) fire on a failed check and a
stale dataset, through Prometheus's own HTTP API — then resolve when the next run passes."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.platform.runs import start_run
from dotjoin.platform.runs.metrics import PUSH_JOB

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus]


def _api(settings: Settings, path: str, **query: str) -> Any:
    url = f"{settings.observability.prometheus_url}{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def _wait(what: str, found: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(1.0)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


@pytest.fixture
def pipeline(prometheus_service: Settings, postgres: Settings, unique_name: str) -> Iterator[str]:
    yield unique_name
    gateway = prometheus_service.observability.pushgateway
    request = urllib.request.Request(f"http://{gateway}/metrics/job/{PUSH_JOB}/pipeline/{unique_name}",
                                     method="DELETE")  # fmt: skip
    urllib.request.urlopen(request, timeout=5).close()


def _run(settings: Settings, pipeline: str, *, null_keys: int, age_s: float) -> None:
    with start_run(pipeline, settings) as run:
        run.check("nullValues:order_id", passed=null_keys == 0, observed=null_keys, expected="= 0",
                  dataset=f"{pipeline}_orders", failed_rows=null_keys, duration_s=0.01)  # fmt: skip
        run.check("latency:ordered_at", passed=age_s <= 3600, observed=age_s, expected="<= 3600 s",
                  dataset=f"{pipeline}_orders", duration_s=0.01)  # fmt: skip


def test_a_failed_check_and_a_stale_dataset_alert_in_prometheus_and_resolve(
    prometheus_service: Settings, pipeline: str
) -> None:
    settings = prometheus_service
    interval = settings.services.prometheus_interval_s
    _run(settings, pipeline, null_keys=3, age_s=7200.0)  # pushed when the run ends

    def failed_rows() -> Any:
        result = _api(settings, "/api/v1/query", query=f'dq_failed_rows{{pipeline="{pipeline}"}}')["result"]
        return result and result[0]

    sample = _wait("the pushed dq_failed_rows", failed_rows, 4 * interval)
    assert sample["metric"]["dataset"] == f"{pipeline}_orders" and float(sample["value"][1]) == 3.0

    def firing() -> set[str]:
        alerts = _api(settings, "/api/v1/alerts")["alerts"]
        return {a["labels"]["alertname"] for a in alerts
                if a["state"] == "firing" and a["labels"].get("pipeline", a["labels"].get("dataset", ""))
                .startswith(pipeline)}  # fmt: skip

    wanted = {"DataQualityCheckFailed", "DatasetStale", "PipelineRunFailed"}
    _wait(f"alerts {sorted(wanted)} firing", lambda: firing() >= wanted, 4 * interval)

    _run(settings, pipeline, null_keys=0, age_s=60.0)  # the next run passes: its push replaces the last
    _wait("the alerts to resolve", lambda: not firing() or None, 4 * interval)
