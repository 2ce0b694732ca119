"""Fixtures for the web app tests: run reports in a temporary state dir, and a client over them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.platform.runs.report import Check, Job, Output, RunReport, RunStatus, StepRecord
from dotjoin.platform.runs.store import RunStore
from dotjoin.web.app import create_app
from tests.unit.web.support import DEFAULT_COUNTS, T0, SaveReport, TestClient


@pytest.fixture
def save_report(local_settings: Settings) -> SaveReport:
    """Write a run report into the test's state dir; every field has a plausible default."""
    store = RunStore(local_settings.runs_dir)
    serial = iter(range(1_000_000))

    def save(
        *,
        pipeline: str = "csv_etl",
        status: RunStatus = "succeeded",
        started_at: datetime | None = None,
        duration_s: float | None = 2.5,
        counts: dict[str, int] | None = None,
        checks: list[Check] | None = None,
        outputs: list[Output] | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        run_id: str | None = None,
        steps: list[StepRecord] | None = None,
        inputs: list[str] | None = None,
        jobs: list[Job] | None = None,
    ) -> RunReport:
        n = next(serial)
        started = started_at or T0 + timedelta(minutes=n)
        report = RunReport(
            pipeline=pipeline,
            run_id=run_id or f"{pipeline}-{started:%Y%m%dT%H%M%S}-{n:06x}",
            profile="local",
            status=status,
            started_at=started,
            finished_at=None if duration_s is None else started + timedelta(seconds=duration_s),
            params=params or {},
            counts=dict(DEFAULT_COUNTS) if counts is None else counts,
            outputs=outputs or [],
            checks=checks or [],
            metrics=metrics or {},
            error=error,
            steps=steps or [],
            inputs=inputs or [],
            jobs=jobs or [],
        )
        store.save(report)
        return report

    return save


@pytest.fixture
def client(local_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(local_settings)) as test_client:
        yield test_client
