"""The Iceberg lake on its SQLite catalog: real PyIceberg, real files, no mocks.

The ``check_*`` scenarios are shared with ``tests/integration/test_lake_postgres.py``, which runs them on
the PostgreSQL catalog.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError, DataError, NotFoundError, ServiceUnavailableError, TerminalError
from dotjoin.platform.lake import Lake, PartitionField, open_lake
from dotjoin.platform.lake.catalog import lake_files, lake_root
from dotjoin.platform.lake.iceberg import IcebergLake

DAY0 = datetime(2026, 1, 1)

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("ts", pa.timestamp("us")),
    ]
)


def rows(ids: list[int], *, name: str = "v", day: int = 0, amount: float = 1.0) -> pa.Table:
    """Rows of SCHEMA: ``id`` as given, timestamps spread over the hours of ``DAY0 + day``."""
    return pa.table(
        {
            "id": ids,
            "name": [f"{name}{i}" for i in ids],
            "amount": [amount * i for i in ids],
            "ts": [DAY0 + timedelta(days=day, hours=i % 24) for i in ids],
        },
        schema=SCHEMA,
    )


def by_id(table: pa.Table) -> dict[int, dict[str, object]]:
    return {row["id"]: row for row in table.to_pylist()}


# -- scenarios shared with the PostgreSQL catalog --------------------------------------------------


def check_create_append_upsert(lake: Lake, name: str) -> None:
    """Acceptance: create, append, upsert (1 updated, 1 inserted, 1 unchanged), read back."""
    lake.create_table(name, SCHEMA, identifier_fields=["id"])
    lake.append(name, rows([1, 2, 3]))
    assert lake.scan(name).num_rows == 3

    change = pa.concat_tables([rows([1], name="changed"), rows([2]), rows([4], name="new")])
    updated, inserted = lake.upsert(name, change, key=["id"])

    assert (updated, inserted) == (1, 1)
    got = by_id(lake.scan(name))
    assert sorted(got) == [1, 2, 3, 4]
    assert got[1]["name"] == "changed1"
    assert got[2]["name"] == "v2"
    assert got[4]["name"] == "new4"


def check_day_pruning(lake: Lake, name: str) -> None:
    """Acceptance: 10 daily appends into ``day(ts)``; a one-day filter plans only that day's files."""
    lake.create_table(name, SCHEMA, partition_by=[PartitionField("ts", "day")])
    for day in range(10):
        lake.append(name, rows(list(range(day * 100, day * 100 + 50)), day=day))
    day_filter = "ts >= '2026-01-03T00:00:00' and ts < '2026-01-04T00:00:00'"

    plan = lake.plan(name, row_filter=day_filter)

    assert plan.total_files >= 10
    assert 1 <= len(plan.files) <= plan.total_files / 10
    assert all("ts_day=2026-01-03" in path for path in plan.files), plan.files
    assert 0 < plan.bytes <= plan.total_bytes / 10
    full = lake.plan(name)
    assert (full.total_files, len(full.files)) == (plan.total_files, plan.total_files)
    day = lake.scan(name, row_filter=day_filter)
    assert day.num_rows == 50
    assert {ts.date().isoformat() for ts in day.column("ts").to_pylist()} == {"2026-01-03"}


def check_snapshots_time_travel_delete(lake: Lake, name: str) -> None:
    """Each write adds snapshots; an old snapshot id reads the old rows; delete removes rows."""
    lake.create_table(name, SCHEMA, identifier_fields=["id"])
    assert lake.snapshots(name) == []
    lake.append(name, rows([1, 2]))
    first = lake.snapshots(name)
    assert [s.operation for s in first] == ["append"]
    lake.append(name, rows([3]))
    second = lake.snapshots(name)
    assert len(second) == 2
    assert second[-1].summary["added-records"] == "1"
    assert second[-1].committed_at >= first[-1].committed_at
    lake.upsert(name, rows([3], name="x"), key=["id"])
    third = lake.snapshots(name)
    assert len(third) > len(second)
    lake.delete(name, "id = 1")
    fourth = lake.snapshots(name)
    assert len(fourth) > len(third)
    assert fourth[-1].operation in {"delete", "overwrite"}

    assert sorted(by_id(lake.scan(name))) == [2, 3]
    assert sorted(by_id(lake.scan(name, snapshot_id=first[-1].snapshot_id))) == [1, 2]
    assert sorted(by_id(lake.scan(name, snapshot_id=second[-1].snapshot_id))) == [1, 2, 3]
    with pytest.raises(NotFoundError, match="snapshot 42 "):
        lake.scan(name, snapshot_id=42)


def check_missing_table(lake: Lake, name: str) -> None:
    """A missing table is a NotFoundError that names it, for every operation."""
    for call in (
        lambda: lake.scan(name),
        lambda: lake.append(name, rows([1])),
        lambda: lake.upsert(name, rows([1]), key=["id"]),
        lambda: lake.delete(name, "id = 1"),
        lambda: lake.plan(name),
        lambda: lake.snapshots(name),
        lambda: lake.drop_table(name),
    ):
        with pytest.raises(NotFoundError, match=re.escape(name)):
            call()


# -- SQLite catalog ------------------------------------------------------------------------------------


@pytest.fixture
def lake(local_settings: Settings) -> Iterator[Lake]:
    with open_lake(local_settings) as opened:
        yield opened


def test_create_append_upsert_read(lake: Lake) -> None:
    check_create_append_upsert(lake, "staging.orders")


def test_day_partition_prunes_to_one_day(lake: Lake) -> None:
    check_day_pruning(lake, "raw.events")


def test_snapshots_time_travel_and_delete(lake: Lake) -> None:
    check_snapshots_time_travel_delete(lake, "curated.customers")


def test_missing_table_is_not_found(lake: Lake) -> None:
    check_missing_table(lake, "raw.nope")


def test_layout_catalog_file_and_zones(local_settings: Settings, lake: Lake) -> None:
    root = (local_settings.state_dir / "lake").absolute()
    assert lake.root == str(root)
    assert (root / "catalog.db").is_file()
    for zone in ("raw", "staging", "curated"):
        assert lake.zone_path(zone) == str(root / zone)
        assert (root / zone).is_dir()
    with pytest.raises(TerminalError, match="unknown zone"):
        lake.zone_path("gold")  # type: ignore[arg-type]

    lake.create_table("raw.clicks", SCHEMA, partition_by=[PartitionField("ts", "day")])
    lake.append("raw.clicks", rows([1]))
    assert isinstance(lake, IcebergLake)
    assert lake.metadata_location("raw.clicks").startswith((root / "raw" / "clicks" / "metadata").as_uri())
    data_files = list((root / "raw" / "clicks" / "data").rglob("*.parquet"))
    assert [f.parent.name for f in data_files] == ["ts_day=2026-01-01"]


def test_create_is_idempotent_and_list_tables(lake: Lake) -> None:
    assert lake.list_tables("raw") == []
    lake.create_table("raw.a", SCHEMA)
    lake.append("raw.a", rows([1, 2]))
    lake.create_table("raw.a", SCHEMA)  # no-op: data stays
    lake.create_table("raw.b", SCHEMA)
    lake.create_table("curated.c", SCHEMA)

    assert lake.list_tables("raw") == ["raw.a", "raw.b"]
    assert lake.list_tables("curated") == ["curated.c"]
    assert lake.list_tables("staging") == []
    assert lake.scan("raw.a").num_rows == 2


def test_catalog_persists_across_opens(local_settings: Settings) -> None:
    with open_lake(local_settings) as first:
        first.create_table("staging.kept", SCHEMA)
        first.append("staging.kept", rows([7]))
    with open_lake(local_settings) as second:
        assert second.list_tables("staging") == ["staging.kept"]
        assert by_id(second.scan("staging.kept"))[7]["name"] == "v7"


def test_append_casts_trivial_schema_differences(lake: Lake) -> None:
    lake.create_table("raw.casts", SCHEMA, identifier_fields=["id"])
    loose = pa.table(
        {
            "ts": pa.array([DAY0], pa.timestamp("ns")),
            "name": pa.array(["a"], pa.large_string()),
            "id": pa.array([1], pa.int32()),  # nullable, narrower, and out of order
        }
    )

    lake.append("raw.casts", loose)  # amount is missing: it is optional, so it becomes null

    assert lake.scan("raw.casts").to_pylist() == [{"id": 1, "name": "a", "amount": None, "ts": DAY0}]


def test_append_rejects_data_that_does_not_fit(lake: Lake) -> None:
    lake.create_table("raw.strict", SCHEMA, identifier_fields=["id"])
    with pytest.raises(DataError, match="extra"):
        lake.append("raw.strict", rows([1]).append_column("extra", pa.array([1])))
    with pytest.raises(DataError, match="required column 'id'"):
        lake.append("raw.strict", rows([1]).drop_columns(["id"]))
    with pytest.raises(DataError, match=r"raw\.strict"):
        lake.append("raw.strict", pa.table({"id": pa.array([None], pa.int64())}))
    with pytest.raises(DataError, match=r"raw\.strict"):
        lake.append("raw.strict", pa.table({"id": ["x"]}))
    assert lake.scan("raw.strict").num_rows == 0


def test_identifier_fields_become_required(lake: Lake) -> None:
    nullable_key = pa.schema([pa.field("k", pa.string()), pa.field("v", pa.int64())])
    lake.create_table("staging.kv", nullable_key, identifier_fields=["k"])
    assert lake.upsert("staging.kv", pa.table({"k": ["a", "b"], "v": [1, 2]}), key=["k"]) == (0, 2)
    assert lake.upsert("staging.kv", pa.table({"k": ["a", "c"], "v": [9, 3]}), key=["k"]) == (1, 1)
    assert {r["k"]: r["v"] for r in lake.scan("staging.kv").to_pylist()} == {"a": 9, "b": 2, "c": 3}
    with pytest.raises(TerminalError, match=r"[Dd]uplicate"):
        lake.upsert("staging.kv", pa.table({"k": ["a", "a"], "v": [1, 2]}), key=["k"])


@pytest.mark.parametrize(
    ("transform", "column", "partition_dir"),
    [
        ("identity", "name", "name=v1"),
        ("month", "ts", "ts_month=2026-01"),
        ("year", "ts", "ts_year=2026"),
        ("hour", "ts", "ts_hour=2026-01-01-01"),
    ],
)
def test_partition_transforms(lake: Lake, transform: str, column: str, partition_dir: str) -> None:
    name = f"raw.p_{transform}"
    lake.create_table(name, SCHEMA, partition_by=[PartitionField(column, transform)])  # type: ignore[arg-type]
    lake.append(name, rows([1]))
    plan = lake.plan(name)
    assert len(plan.files) == 1
    assert f"/{partition_dir}/" in plan.files[0]


def test_create_rejects_bad_definitions(lake: Lake) -> None:
    with pytest.raises(TerminalError, match="bad lake table name"):
        lake.create_table("nozone.t", SCHEMA)
    with pytest.raises(TerminalError, match="bad lake table name"):
        lake.create_table("raw", SCHEMA)
    with pytest.raises(TerminalError, match="unknown column"):
        lake.create_table("raw.t", SCHEMA, partition_by=[PartitionField("nope", "day")])
    with pytest.raises(TerminalError, match="unknown transform"):
        lake.create_table("raw.t", SCHEMA, partition_by=[PartitionField("ts", "week")])  # type: ignore[arg-type]
    assert lake.list_tables("raw") == []


def test_bad_row_filter_is_a_clear_error(lake: Lake) -> None:
    lake.create_table("raw.f", SCHEMA)
    with pytest.raises(TerminalError, match="bad row filter"):
        lake.scan("raw.f", row_filter="id ===== 3")
    with pytest.raises(TerminalError, match=r"raw\.f"):
        lake.scan("raw.f", row_filter="no_such_column = 3")


def test_drop_table_purges_files(lake: Lake, local_settings: Settings) -> None:
    lake.create_table("curated.gone", SCHEMA)
    lake.append("curated.gone", rows([1, 2]))
    table_dir = local_settings.state_dir / "lake" / "curated" / "gone"
    assert any(table_dir.rglob("*.parquet"))

    lake.drop_table("curated.gone")

    assert lake.list_tables("curated") == []
    assert not table_dir.exists()
    lake.create_table("curated.gone", SCHEMA)  # the name is free again
    assert lake.scan("curated.gone").num_rows == 0


def test_object_store_root_keeps_plain_files_local(tmp_path: Path) -> None:
    files = tmp_path / "files"
    lake = IcebergLake(
        root="s3://bucket/lake/", catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}", files=str(files)
    )
    try:
        assert lake.root == "s3://bucket/lake"
        assert lake.table_location("curated.orders") == "s3://bucket/lake/curated/orders"
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "catalog.db"
        ]  # nothing until a zone is asked for
        assert lake.zone_path("raw") == str(files / "raw") and (files / "raw").is_dir()
    finally:
        lake.close()


def test_object_store_root_needs_a_files_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is an object store: name a local directory"):
        IcebergLake(root="s3://bucket/lake", catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}")


def test_stack_lake_is_the_object_store_with_local_files(tmp_path: Path) -> None:
    settings = load_settings(profile="stack", cwd=tmp_path, env={})
    assert settings.lake.root == "s3://dotjoin/lake"
    assert lake_files(settings) == str((tmp_path / ".dotjoin" / "lake").absolute())
    local = load_settings(profile="local", cwd=tmp_path, env={})
    assert lake_files(local) == lake_root(local)


def test_unreachable_postgres_catalog(tmp_path: Path) -> None:
    env = {"DOTJOIN__LAKE__CATALOG": "postgres", "DOTJOIN__WAREHOUSE__PORT": "1"}  # nothing listens on 1
    settings = load_settings(profile="local", cwd=tmp_path, env=env)
    with pytest.raises(ServiceUnavailableError, match=r"PostgreSQL is not reachable at 127\.0\.0\.1:1"):
        open_lake(settings)


def test_duckdb_iceberg_scan_reads_our_tables(lake: Lake) -> None:
    """DuckDB (pip-packaged iceberg + avro extensions, offline) reads a table PyIceberg wrote, pruned."""
    duckdb = pytest.importorskip("duckdb")
    paths = []
    for ext in ("avro", "iceberg"):
        spec = importlib.util.find_spec(f"duckdb_extension_{ext}")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"duckdb-extension-{ext}=={duckdb.__version__} is not installed")
        package = Path(next(iter(spec.submodule_search_locations)))
        paths.append(package / "extensions" / f"v{duckdb.__version__}" / f"{ext}.duckdb_extension")
    lake.create_table(
        "curated.duck", SCHEMA, partition_by=[PartitionField("ts", "day")], identifier_fields=["id"]
    )
    for day in range(3):
        lake.append("curated.duck", rows([day * 10 + 1, day * 10 + 2], day=day))
    lake.upsert("curated.duck", rows([1], name="changed"), key=["id"])
    lake.delete("curated.duck", "id = 2")
    assert isinstance(lake, IcebergLake)
    metadata = lake.metadata_location("curated.duck")

    con = duckdb.connect()
    try:
        for path in paths:
            con.execute(f"LOAD '{path}'")
        scanned = con.execute(f"SELECT id, name FROM iceberg_scan('{metadata}') ORDER BY id").fetchall()
        day = con.execute(
            f"SELECT count(*) FROM iceberg_scan('{metadata}') "
            "WHERE ts >= TIMESTAMP '2026-01-02' AND ts < TIMESTAMP '2026-01-03'"
        ).fetchone()
    finally:
        con.close()
    assert scanned == [(1, "changed1"), (11, "v11"), (12, "v12"), (21, "v21"), (22, "v22")]
    assert day == (2,)
