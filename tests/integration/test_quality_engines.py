"""The contract checks compiled for PostgreSQL and Trino, on the hand-made case the DuckDB unit test
runs (``tests/unit/platform/quality_case.py``): the same results, counted by hand, on every engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dotjoin.config import Settings
from dotjoin.platform import trino
from dotjoin.platform.lake.iceberg import IcebergLake
from dotjoin.platform.quality.checks import CheckEngine, run_checks
from dotjoin.platform.warehouse import open_warehouse
from tests.unit.platform import quality_case as case


@pytest.mark.postgres
def test_every_check_on_postgres_equals_the_hand_count(postgres: Settings, unique_name: str) -> None:
    orders, customers = f"{unique_name}_orders", f"{unique_name}_customers"
    with open_warehouse(postgres) as wh:
        try:
            wh.load_arrow(orders, case.ORDERS)
            wh.load_arrow(customers, case.CUSTOMERS)
            checks = run_checks(case.contract(customers), CheckEngine.of(wh), table=orders, now=case.NOW)
        finally:
            for table in (orders, customers):
                wh.execute(f'DROP TABLE IF EXISTS "{table}"')
    case.compare(checks)


@pytest.fixture
def lake(trino_service: Settings) -> Iterator[IcebergLake]:
    opened = IcebergLake.from_settings(trino_service)
    yield opened
    opened.close()


@pytest.mark.trino
@pytest.mark.objectstore
@pytest.mark.postgres
def test_every_check_on_trino_equals_the_hand_count(
    lake: IcebergLake, trino_service: Settings, unique_name: str
) -> None:
    orders, customers = f"staging.{unique_name}_orders", f"staging.{unique_name}_customers"
    try:
        for name, data in ((orders, case.ORDERS), (customers, case.CUSTOMERS)):
            lake.create_table(name, data.schema)
            lake.append(name, data)
        engine = CheckEngine("trino", lambda sql, params: trino.query(trino_service, sql, params))
        checks = run_checks(case.contract(customers), engine, table=orders, now=case.NOW)
    finally:
        for name in (orders, customers):
            if lake.table_exists(name):
                lake.drop_table(name)
    case.compare(checks)
