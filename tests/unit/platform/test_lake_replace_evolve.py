"""The lake capabilities the lakehouse added: day replacement, schema evolution, compaction, lost metadata."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.platform.lake import Lake, PartitionField
from dotjoin.platform.lake.iceberg import IcebergLake

SCHEMA = pa.schema(
    [pa.field("id", pa.int64(), nullable=False), ("ts", pa.timestamp("us")), ("v", pa.float64())]
)
DAY2 = "ts >= '2026-01-02T00:00:00' and ts < '2026-01-03T00:00:00'"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    with IcebergLake(
        root=str(tmp_path / "lake"), catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}"
    ) as opened:
        opened.create_table("staging.t", SCHEMA, partition_by=[PartitionField("ts", "day")])
        rows = [{"id": i, "ts": datetime(2026, 1, 1 + i % 3, 1), "v": float(i)} for i in range(9)]
        opened.append("staging.t", pa.Table.from_pylist(rows, schema=SCHEMA))
        yield opened


def test_replace_swaps_one_day_in_one_commit(lake: Lake) -> None:
    before = len(lake.snapshots("staging.t"))
    new_day = pa.Table.from_pylist([{"id": 100, "ts": datetime(2026, 1, 2, 5), "v": 1.0}], schema=SCHEMA)
    lake.replace("staging.t", new_day, row_filter=DAY2)
    assert lake.scan("staging.t", row_filter=DAY2).column("id").to_pylist() == [100]
    assert lake.scan("staging.t").num_rows == 7  # the other two days untouched (3 + 3 + 1)
    ops = [s.operation for s in lake.snapshots("staging.t")[before:]]
    assert ops in (["delete", "append"], ["overwrite", "append"])


def test_evolve_adds_optional_columns_and_old_rows_read_null(lake: Lake) -> None:
    wider = SCHEMA.append(pa.field("firmware", pa.string()))
    assert lake.evolve("staging.t", wider) == ["firmware"]
    assert lake.evolve("staging.t", wider) == []  # idempotent
    lake.append(
        "staging.t",
        pa.Table.from_pylist(
            [{"id": 50, "ts": datetime(2026, 1, 4), "v": 0.0, "firmware": "2.0"}], schema=wider
        ),
    )
    firmware = {r["id"]: r["firmware"] for r in lake.scan("staging.t").to_pylist()}
    assert firmware[50] == "2.0" and firmware[0] is None


def test_compact_rewrites_small_files_into_one_per_partition(lake: Lake) -> None:
    for i in range(3):
        lake.append(
            "staging.t", pa.Table.from_pylist([{"id": 200 + i, "ts": datetime(2026, 1, 1, 9)}], schema=SCHEMA)
        )
    assert lake.compact("staging.t") == (6, 3)
    assert lake.scan("staging.t").num_rows == 12


def test_compact_with_a_filter_rewrites_only_the_files_it_matches(lake: Lake) -> None:
    for i in range(4):  # the table's tail: four one-row files of day 1, ids 200..203
        lake.append(
            "staging.t", pa.Table.from_pylist([{"id": 200 + i, "ts": datetime(2026, 1, 1, 9)}], schema=SCHEMA)
        )
    untouched = set(lake.plan("staging.t", row_filter="id < 200").files)
    assert lake.compact("staging.t", row_filter="id >= 200", properties={"dotjoin.x": "1"}) == (4, 1)
    assert set(lake.plan("staging.t", row_filter="id < 200").files) == untouched  # not rewritten
    assert lake.plan("staging.t").total_files == 3 + 1
    assert sorted(lake.scan("staging.t").column("id").to_pylist()) == [*range(9), 200, 201, 202, 203]
    assert lake.last_properties("staging.t", "dotjoin.") == {"dotjoin.x": "1"}


def test_drop_table_whose_metadata_is_gone_drops_the_catalog_entry(lake: Lake, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "lake" / "staging" / "t")
    lake.drop_table("staging.t")
    assert lake.list_tables("staging") == []
