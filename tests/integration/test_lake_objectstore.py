"""The stack's lake on the object store: Iceberg tables under ``s3://dotjoin/<prefix>`` of S3Proxy, catalog
rows in PostgreSQL. PyIceberg writes; the objects are listed through S3 itself (not the catalog); DuckDB
(httpfs + a temporary secret) reads the same files; a purge leaves nothing behind in the bucket.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow.fs as pafs
import pytest
from pydantic import SecretStr

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError
from dotjoin.platform.lake.duckdb_views import connect as duckdb_connect
from dotjoin.platform.lake.iceberg import IcebergLake
from dotjoin.platform.objectstore import ObjectStore
from tests.unit.platform.test_lake_iceberg import (
    SCHEMA,
    check_create_append_upsert,
    check_snapshots_time_travel_delete,
)

pytestmark = [pytest.mark.postgres, pytest.mark.objectstore]


@pytest.fixture
def s3_settings(objectstore: Settings, unique_name: str) -> Settings:
    """Stack settings with the lake under a prefix of the lake's bucket no other test uses."""
    lake = objectstore.lake.model_copy(update={"root": f"s3://dotjoin/test-{unique_name}"})
    return objectstore.model_copy(update={"lake": lake})


@pytest.fixture
def s3_lake(s3_settings: Settings) -> Iterator[IcebergLake]:
    lake = IcebergLake.from_settings(s3_settings)
    try:
        yield lake
    finally:
        for zone in ("raw", "staging", "curated"):
            for name in lake.list_tables(zone):  # type: ignore[arg-type]
                lake.drop_table(name)
        lake.close()


def objects(store: ObjectStore, prefix: str) -> list[str]:
    """The keys under ``bucket/prefix``, listed by the S3 API."""
    selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    infos = store.pyarrow_filesystem().get_file_info(selector)
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def test_pyiceberg_writes_to_s3_and_duckdb_reads_it(s3_lake: IcebergLake, unique_name: str) -> None:
    assert s3_lake.store is not None
    name = f"curated.{unique_name}"
    check_create_append_upsert(s3_lake, name)
    check_snapshots_time_travel_delete(s3_lake, f"staging.{unique_name}")

    keys = objects(s3_lake.store, f"dotjoin/test-{unique_name}/curated/{unique_name}")
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".metadata.json") for k in keys)
    assert s3_lake.metadata_location(name).startswith(f"s3://dotjoin/test-{unique_name}/curated/")

    con = duckdb_connect(store=s3_lake.store)
    try:
        sql = f"SELECT id, name FROM iceberg_scan('{s3_lake.metadata_location(name)}') ORDER BY id"
        got = con.execute(sql).fetchall()
    finally:
        con.close()
    assert got == [(1, "changed1"), (2, "v2"), (3, "v3"), (4, "new4")]  # check_create_append_upsert's result

    s3_lake.drop_table(name)
    assert objects(s3_lake.store, f"dotjoin/test-{unique_name}/curated/{unique_name}") == []


def test_wrong_secret_is_a_clear_error(s3_settings: Settings, unique_name: str) -> None:
    store = s3_settings.objectstore.model_copy(update={"secret_key": SecretStr("not-the-secret")})
    settings = s3_settings.model_copy(update={"objectstore": store})
    rejected = r"object store at http://127\.0\.0\.1:9000 rejected the lake's credentials"
    with IcebergLake.from_settings(settings) as lake, pytest.raises(ConfigError, match=rejected):
        lake.create_table(f"raw.{unique_name}", SCHEMA)
