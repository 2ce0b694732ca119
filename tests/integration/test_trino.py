"""Trino on the stack's lake: the tables PyIceberg writes on the object store are Trino's tables, and the
ones Trino writes are PyIceberg's — one JDBC catalog in PostgreSQL, one bucket, no copies."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import DataError
from dotjoin.platform import trino
from dotjoin.platform.lake.iceberg import IcebergLake

pytestmark = [pytest.mark.trino, pytest.mark.objectstore, pytest.mark.postgres]


@pytest.fixture
def lake(trino_service: Settings) -> Iterator[IcebergLake]:
    opened = IcebergLake.from_settings(trino_service)
    names: list[str] = []
    opened.created = names  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        for name in names:
            if opened.table_exists(name):
                opened.drop_table(name)
        opened.close()


def test_trino_reads_what_pyiceberg_wrote(
    lake: IcebergLake, trino_service: Settings, unique_name: str
) -> None:
    name = f"raw.{unique_name}"
    lake.created.append(name)  # type: ignore[attr-defined]
    at = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.UTC)
    data = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()), "who": ["ann", "bo", None],
        "amount": pa.array([Decimal("1.50"), Decimal("-2.25"), Decimal("0.00")], pa.decimal128(12, 2)),
        "at": pa.array([at, at, at + dt.timedelta(days=1)], pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    lake.create_table(name, data.schema)
    lake.append(name, data)
    got = trino.query(trino_service, f'SELECT id, who, amount, "at" FROM raw."{unique_name}" ORDER BY id')
    assert got.to_pylist() == data.to_pylist()
    by_day = trino.query(
        trino_service,
        f'SELECT CAST("at" AS date) AS day, count(*) AS n FROM raw."{unique_name}" GROUP BY 1 ORDER BY 1',
    )
    assert by_day.to_pylist() == [
        {"day": dt.date(2026, 12, 1), "n": 2},
        {"day": dt.date(2026, 12, 2), "n": 1},
    ]


def test_pyiceberg_reads_what_trino_wrote(
    lake: IcebergLake, trino_service: Settings, unique_name: str
) -> None:
    name = f"staging.{unique_name}"
    lake.created.append(name)  # type: ignore[attr-defined]
    trino.query(trino_service, f"CREATE TABLE staging.\"{unique_name}\" AS "
                "SELECT * FROM (VALUES (1, 'x'), (2, 'y')) AS t(id, label)")  # fmt: skip
    trino.query(trino_service, f"INSERT INTO staging.\"{unique_name}\" VALUES (3, 'z')")
    rows = lake.scan(name).sort_by("id").to_pylist()
    assert rows == [{"id": 1, "label": "x"}, {"id": 2, "label": "y"}, {"id": 3, "label": "z"}]
    assert lake.metadata_location(name).startswith(trino_service.lake.root)


def test_sql_engine_trino_from_the_cli(trino_service: Settings) -> None:
    command = [sys.executable, "-m", "dotjoin", "--profile", "stack", "sql", "-e", "trino", "-o", "json",
               "SELECT CAST(? AS integer) + 1 AS n, 'it''s' AS s", "-P", "41"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": 42, "s": "it's"}]


def test_a_bad_query_is_a_data_error_naming_trinos_reason(trino_service: Settings) -> None:
    with pytest.raises(DataError, match="Trino query failed: TABLE_NOT_FOUND"):
        trino.query(trino_service, "SELECT * FROM raw.no_such_table_here")
