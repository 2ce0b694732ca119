"""The lakehouse's dbt project on real PostgreSQL (stack target), in a schema of its own per test run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.lakehouse import pipeline
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.lakehouse.shop import GeneratedShop

pytestmark = pytest.mark.postgres


def test_dbt_build_passes_on_postgres_and_marts_reconcile(
    postgres: Settings, unique_name: str, tmp_path: Path
) -> None:
    # Warehouse, quarantine and marts on PostgreSQL; the Iceberg staging tables in a private local lake.
    lake = postgres.lake.model_copy(update={"root": str(tmp_path / "lake"), "catalog": "sqlite"})
    settings = postgres.model_copy(update={"state_dir": tmp_path / ".dotjoin", "lake": lake})
    schema = f"lh_{unique_name}"
    try:
        report = pipeline.run(
            settings,
            source=GeneratedShop(days=2, seed=3, start=date(2026, 1, 1), devices=3),
            today=date(2026, 1, 5),
            target="stack",
            dbt_schema=schema,
        )
        failed = [(c.name, c.observed, c.expected, c.detail) for c in report.checks if not c.passed]
        assert failed == [] and report.status == "succeeded"
        assert report.params["target"] == "stack"
        assert any(c.name == "reconcile_fact_orders_revenue_cents" for c in report.checks)
        with open_warehouse(settings) as wh:
            assert wh.scalar(f"SELECT count(*) FROM {schema}.iot_hourly_metrics") > 0
            assert wh.scalar(f"SELECT count(*) FROM {schema}_lake.iot_readings") > 0
    finally:
        with open_warehouse(settings) as wh:
            for name in (f"{schema}_lake", schema):
                wh.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
