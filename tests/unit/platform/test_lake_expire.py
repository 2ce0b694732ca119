"""Snapshot expiry: old snapshots leave the metadata, files only they referenced leave the disk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.exceptions import NotFoundError, TerminalError
from dotjoin.platform.lake import Lake, PartitionField
from dotjoin.platform.lake.iceberg import IcebergLake

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("ts", pa.timestamp("us"))])
DAY2 = "ts >= '2026-01-02T00:00:00' and ts < '2026-01-03T00:00:00'"


def later() -> datetime:
    """A cutoff every snapshot committed so far is older than (taken at call time, not import time)."""
    return datetime.now(UTC) + timedelta(seconds=5)


def _rows(ids: range, day: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "ts": datetime(2026, 1, day, 1)} for i in ids], schema=SCHEMA)


def _data_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*.parquet") if "/data/" in str(p)}


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    """A table with history: three appends, a day replaced twice, then compacted (7 snapshots or so)."""
    with IcebergLake(root=str(tmp_path / "lake"), catalog_uri=f"sqlite:///{tmp_path / 'c.db'}") as opened:
        opened.create_table("staging.t", SCHEMA, partition_by=[PartitionField("ts", "day")])
        for day in (1, 2, 3):
            opened.append("staging.t", _rows(range(day * 10, day * 10 + 5), day))
        opened.replace("staging.t", _rows(range(100, 103), 2), row_filter=DAY2)
        opened.replace("staging.t", _rows(range(200, 204), 2), row_filter=DAY2)
        opened.compact("staging.t")
        yield opened


def test_expiry_keeps_the_data_and_deletes_only_unreferenced_files(lake: Lake, tmp_path: Path) -> None:
    before = lake.scan("staging.t").sort_by("id")
    history = lake.snapshots("staging.t")
    files_before = _data_files(tmp_path / "lake")
    assert len(history) >= 6

    result = lake.expire_snapshots("staging.t", older_than=later(), retain_last=1)

    assert result.snapshots_expired == len(history) - 1 and result.snapshots_kept == 1
    assert lake.scan("staging.t").sort_by("id").equals(before)
    live = {Path(f.removeprefix("file://")) for f in lake.plan("staging.t").files}
    on_disk = _data_files(tmp_path / "lake")
    assert on_disk == live  # every data file left is one the current snapshot reads
    assert result.files_deleted >= len(files_before) - len(on_disk) > 0
    assert result.bytes_deleted > 0
    with pytest.raises(NotFoundError):
        lake.scan("staging.t", snapshot_id=history[0].snapshot_id)  # no time travel past expiry


def test_retain_last_and_cutoff_keep_recent_snapshots(lake: Lake) -> None:
    history = lake.snapshots("staging.t")
    kept = lake.expire_snapshots("staging.t", older_than=later(), retain_last=3)
    assert kept.snapshots_kept == 3
    assert [s.snapshot_id for s in lake.snapshots("staging.t")] == [s.snapshot_id for s in history[-3:]]
    for snapshot in history[-3:]:  # time travel to a retained snapshot still reads its data
        lake.scan("staging.t", snapshot_id=snapshot.snapshot_id)
    nothing = lake.expire_snapshots("staging.t", older_than=datetime(2000, 1, 1, tzinfo=UTC))
    assert (nothing.snapshots_expired, nothing.files_deleted) == (0, 0)


def test_retain_last_below_one_is_refused(lake: Lake) -> None:
    with pytest.raises(TerminalError, match="retain_last"):
        lake.expire_snapshots("staging.t", older_than=later(), retain_last=0)
