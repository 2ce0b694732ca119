"""The Iceberg lake on the stack's PostgreSQL catalog (the JDBC-catalog tables Trino and Spark read).

Runs the same scenarios as the SQLite tests in ``tests/unit/platform/test_lake_iceberg.py``, then checks the
catalog rows themselves. Data files go to a temporary root; every table is dropped (purged) afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError
from dotjoin.platform.lake import Lake, PartitionField, open_lake
from dotjoin.platform.lake.iceberg import IcebergLake
from tests.unit.platform.test_lake_iceberg import (
    SCHEMA,
    check_create_append_upsert,
    check_day_pruning,
    check_missing_table,
    check_snapshots_time_travel_delete,
    rows,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_settings(postgres: Settings, tmp_path: Path) -> Settings:
    """Stack settings (PostgreSQL catalog) with the lake root in a temporary directory."""
    lake = postgres.lake.model_copy(update={"root": str(tmp_path / "lake")})
    return postgres.model_copy(update={"lake": lake})


@pytest.fixture
def pg_lake(pg_settings: Settings) -> Iterator[Lake]:
    with open_lake(pg_settings) as lake:
        yield lake


@pytest.fixture
def names(pg_lake: Lake, unique_name: str) -> Iterator[list[str]]:
    """Table names for one test; whatever of them exists afterwards is dropped."""
    created: list[str] = []
    yield created
    for name in created:
        if isinstance(pg_lake, IcebergLake) and pg_lake.table_exists(name):
            pg_lake.drop_table(name)


def catalog_rows(settings: Settings, table: str) -> list[sa.Row[tuple[str, ...]]]:
    engine = sa.create_engine(settings.postgres.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT current_database(), catalog_name, table_namespace, table_name, "
                        "metadata_location, iceberg_type FROM iceberg_tables WHERE table_name = :t"
                    ),
                    {"t": table},
                )
            )
    finally:
        engine.dispose()


def test_create_append_upsert_read_on_postgres(pg_lake: Lake, names: list[str], unique_name: str) -> None:
    names.append(name := f"staging.{unique_name}")
    check_create_append_upsert(pg_lake, name)


def test_day_partition_prunes_on_postgres(pg_lake: Lake, names: list[str], unique_name: str) -> None:
    names.append(name := f"raw.{unique_name}")
    check_day_pruning(pg_lake, name)


def test_snapshots_time_travel_delete_on_postgres(pg_lake: Lake, names: list[str], unique_name: str) -> None:
    names.append(name := f"curated.{unique_name}")
    check_snapshots_time_travel_delete(pg_lake, name)


def test_missing_table_on_postgres(pg_lake: Lake, unique_name: str) -> None:
    check_missing_table(pg_lake, f"raw.{unique_name}")


def test_catalog_rows_are_in_the_dotjoin_database(
    pg_lake: Lake, pg_settings: Settings, names: list[str], unique_name: str
) -> None:
    """What Trino's and Spark's JDBC catalogs read: one row per table in ``iceberg_tables`` of dotjoin."""
    names.append(name := f"raw.{unique_name}")
    pg_lake.create_table(name, SCHEMA, partition_by=[PartitionField("ts", "day")], identifier_fields=["id"])
    pg_lake.create_table(name, SCHEMA)  # idempotent
    pg_lake.append(name, rows([1, 2]))
    assert isinstance(pg_lake, IcebergLake)

    [row] = catalog_rows(pg_settings, unique_name)

    assert row == (
        "dotjoin",
        pg_settings.lake.catalog_name,
        "raw",
        unique_name,
        pg_lake.metadata_location(name),
        "TABLE",
    )
    assert row.metadata_location.startswith(pg_lake.table_location(name) + "/metadata/")
    assert name in pg_lake.list_tables("raw")

    pg_lake.drop_table(name)
    assert catalog_rows(pg_settings, unique_name) == []
    assert name not in pg_lake.list_tables("raw")


def test_second_client_sees_the_same_tables(
    pg_lake: Lake, pg_settings: Settings, names: list[str], unique_name: str
) -> None:
    names.append(name := f"curated.{unique_name}")
    pg_lake.create_table(name, SCHEMA)
    pg_lake.append(name, rows([5]))
    with open_lake(pg_settings) as other:
        assert other.scan(name).column("id").to_pylist() == [5]
        other.append(name, rows([6]))
    assert sorted(pg_lake.scan(name).column("id").to_pylist()) == [5, 6]


def test_wrong_password_is_a_config_error(pg_settings: Settings, tmp_path: Path) -> None:
    pg = pg_settings.postgres
    env = {
        "DOTJOIN__WAREHOUSE__HOST": pg.host,
        "DOTJOIN__WAREHOUSE__PORT": str(pg.port),
        "DOTJOIN__WAREHOUSE__PASSWORD": "not-the-password",
        "DOTJOIN__LAKE__ROOT": str(tmp_path),
    }
    settings = load_settings(profile="stack", cwd=tmp_path, env=env)
    with pytest.raises(ConfigError, match="rejected the Iceberg catalog login"):
        open_lake(settings)


def test_snapshot_expiry_on_postgres(
    pg_lake: Lake, pg_settings: Settings, names: list[str], unique_name: str
) -> None:
    from tests.unit.platform.test_lake_expire import SCHEMA as DAY_SCHEMA
    from tests.unit.platform.test_lake_expire import _data_files, _rows, later

    name = f"staging.{unique_name}_exp"
    names.append(name)
    pg_lake.create_table(name, DAY_SCHEMA, partition_by=[PartitionField("ts", "day")])
    for day in (1, 2, 1, 2):
        pg_lake.append(name, _rows(range(day * 10, day * 10 + 3), day))
    pg_lake.compact(name)
    before = pg_lake.scan(name).sort_by("id")
    result = pg_lake.expire_snapshots(name, older_than=later(), retain_last=1)
    assert result.snapshots_kept == 1 and result.files_deleted > 0
    assert pg_lake.scan(name).sort_by("id").equals(before)
    table_dir = Path(pg_settings.lake.root)
    live = {Path(f.removeprefix("file://")) for f in pg_lake.plan(name).files}
    assert {p for p in _data_files(table_dir) if unique_name in str(p)} == live
