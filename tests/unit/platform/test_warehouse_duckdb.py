"""The DuckDB warehouse against a real DuckDB: types, parameters, quoting, loads, upserts, transactions."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import DataError
from dotjoin.platform.warehouse import UpsertResult, WarehouseError, open_warehouse
from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse, quote_table


@pytest.fixture
def wh(local_settings: Settings) -> Iterator[DuckDBWarehouse]:
    warehouse = open_warehouse(local_settings)
    assert isinstance(warehouse, DuckDBWarehouse)
    yield warehouse
    warehouse.close()


def _typed_table() -> pa.Table:
    utc = dt.UTC
    return pa.table(
        {
            "i8": pa.array([1, None, -128], pa.int8()),
            "i16": pa.array([1, None, -32768], pa.int16()),
            "i32": pa.array([1, None, 2**31 - 1], pa.int32()),
            "i64": pa.array([1, None, -(2**63)], pa.int64()),
            "f32": pa.array([1.5, None, -0.25], pa.float32()),
            "f64": pa.array([1.5, None, float("inf")], pa.float64()),
            "dec": pa.array([Decimal("1.23"), None, Decimal("-99999.99")], pa.decimal128(7, 2)),
            "txt": pa.array(["a", None, "ünï 'quoted' \"x\""], pa.string()),
            "bin": pa.array([b"\x00\x01", None, b""], pa.binary()),
            "flag": pa.array([True, None, False], pa.bool_()),
            "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1900, 1, 1)], pa.date32()),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 12, 0, 0, 123456), None, dt.datetime(1960, 5, 1)], pa.timestamp("us")
            ),
            "tstz": pa.array(
                [
                    dt.datetime(2024, 1, 1, 12, tzinfo=utc),
                    None,
                    dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=utc),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "tod": pa.array([dt.time(12, 30, 1, 5), None, dt.time(0, 0)], pa.time64("us")),
        }
    )


def test_factory_creates_the_file_under_state_dir(local_settings: Settings) -> None:
    with open_warehouse(local_settings) as wh:
        wh.execute("CREATE TABLE t (x INTEGER)")
    assert (local_settings.state_dir / "warehouse.duckdb").is_file()


def test_memory_database(tmp_path: Path) -> None:
    settings = load_settings(profile="local", cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__PATH": ":memory:"})
    with open_warehouse(settings) as wh:
        assert wh.scalar("SELECT $1 * 2", [21]) == 42
    assert not list(tmp_path.rglob("*.duckdb"))


def test_types_round_trip(wh: DuckDBWarehouse) -> None:
    data = _typed_table()
    assert wh.load_arrow("typed", data) == 3
    back = wh.query("SELECT * FROM typed ORDER BY i8 NULLS LAST")
    assert back.column_names == data.column_names
    for name in data.column_names:
        if name == "tstz":
            assert pa.types.is_timestamp(back.schema.field(name).type)
        else:
            assert back.schema.field(name).type == data.schema.field(name).type, name
    expected = data.take([2, 0, 1]).to_pylist()  # ordered by i8: -128, 1, NULL
    assert back.to_pylist() == expected


def test_parameters_are_bound_never_interpolated(wh: DuckDBWarehouse) -> None:
    wh.execute("CREATE TABLE p (id INTEGER, name VARCHAR, seen_at TIMESTAMP)")
    evil = "x'); DROP TABLE p; --"
    wh.execute("INSERT INTO p VALUES ($1, $2, $3)", [1, evil, dt.datetime(2024, 5, 1, 8)])
    wh.execute("INSERT INTO p VALUES ($2, $1, NULL)", ["second", 2])
    assert wh.query("SELECT name FROM p WHERE id = $1", [1]).column(0).to_pylist() == [evil]
    assert wh.scalar("SELECT count(*) FROM p WHERE seen_at > $1", [dt.datetime(2024, 1, 1)]) == 1
    assert wh.scalar("SELECT name FROM p WHERE id = $1", [2]) == "second"
    assert wh.scalar("SELECT name FROM p WHERE id = $1", [99]) is None


@pytest.mark.parametrize(
    "table",
    [
        "my table",
        "MixedCase",
        'we"ird',
        '"we""ird 2"',
        '"my schema"."My Table"',
        '"dotted.name"',
        "odd $1 %s ?",
    ],
)
def test_odd_identifiers_are_quoted(wh: DuckDBWarehouse, table: str) -> None:
    wh.execute('CREATE SCHEMA IF NOT EXISTS "my schema"')
    data = pa.table({"the id": [1, 2], 'Col "Q"': ["a", "b"], "select": [True, False]})
    assert not wh.table_exists(table)
    assert wh.load_arrow(table, data) == 2
    assert wh.table_exists(table)
    assert wh.upsert(
        table, pa.table({"the id": [2, 3], 'Col "Q"': ["B", "c"], "select": [False, True]}), key=["the id"]
    ) == UpsertResult(1, 1)
    rows = wh.query(f'SELECT * FROM {quote_table(table)} ORDER BY "the id"').to_pylist()
    assert rows == [
        {"the id": 1, 'Col "Q"': "a", "select": True},
        {"the id": 2, 'Col "Q"': "B", "select": False},
        {"the id": 3, 'Col "Q"': "c", "select": True},
    ]


def test_append_twice_and_from_a_stream(wh: DuckDBWarehouse) -> None:
    data = pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    assert wh.load_arrow("app", data) == 3
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=1))
    assert wh.load_arrow("app", reader) == 3
    assert wh.scalar("SELECT count(*) FROM app") == 6


def test_append_matches_columns_by_name_and_rejects_unknown_ones(wh: DuckDBWarehouse) -> None:
    wh.load_arrow("byname", pa.table({"id": [1], "v": ["a"]}))
    wh.load_arrow("byname", pa.table({"v": ["b"], "id": [2]}))
    assert wh.query("SELECT id, v FROM byname ORDER BY id").to_pylist() == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "b"},
    ]
    with pytest.raises(DataError, match="'extra'"):
        wh.load_arrow("byname", pa.table({"id": [3], "extra": [1.0]}))
    assert wh.scalar("SELECT count(*) FROM byname") == 2


def test_replace_swaps_schema_and_data(wh: DuckDBWarehouse) -> None:
    wh.load_arrow("rep", pa.table({"id": [1, 2, 3]}))
    assert wh.load_arrow("rep", pa.table({"id": [9], "note": ["new"]}), mode="replace") == 1
    assert wh.query("SELECT * FROM rep").to_pylist() == [{"id": 9, "note": "new"}]


def test_failed_replace_keeps_the_old_table(wh: DuckDBWarehouse) -> None:
    wh.load_arrow("keep", pa.table({"id": [1, 2, 3]}))
    schema = pa.schema([("id", pa.int64())])

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array([7, 8])], schema=schema)
        raise RuntimeError("source broke mid-stream")

    with pytest.raises((RuntimeError, WarehouseError)):
        wh.load_arrow("keep", pa.RecordBatchReader.from_batches(schema, batches()), mode="replace")
    assert wh.query("SELECT id FROM keep ORDER BY id").column(0).to_pylist() == [1, 2, 3]


def test_upsert_counts_and_idempotent_rerun(wh: DuckDBWarehouse) -> None:
    first = pa.table({"id": [1, 2, 3], "v": ["a", "b", None], "n": [1.0, 2.0, 3.0]})
    assert wh.upsert("up", first, key=["id"]) == UpsertResult(inserted=3, updated=0)
    assert wh.upsert("up", first, key=["id"]) == UpsertResult(inserted=0, updated=0)
    second = pa.table({"id": [2, 3, 4], "v": ["b", "now set", "d"], "n": [2.0, 3.0, 4.0]})
    assert wh.upsert("up", second, key=["id"]) == UpsertResult(inserted=1, updated=1)
    assert wh.upsert("up", second, key=["id"]) == UpsertResult(inserted=0, updated=0)
    assert wh.query("SELECT id, v FROM up ORDER BY id").to_pylist() == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "b"},
        {"id": 3, "v": "now set"},
        {"id": 4, "v": "d"},
    ]
    # The table was created with a primary key on the upsert key.
    with pytest.raises(WarehouseError, match=r"(?i)constraint|duplicate"):
        wh.execute("INSERT INTO up VALUES (1, 'dup', 0)")


def test_upsert_with_a_composite_key_and_only_key_columns(wh: DuckDBWarehouse) -> None:
    data = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    assert wh.upsert("keys_only", data, key=["a", "b"]) == UpsertResult(3, 0)
    assert wh.upsert("keys_only", pa.table({"a": [1, 3], "b": ["x", "z"]}), key=["a", "b"]) == UpsertResult(
        1, 0
    )
    assert wh.scalar("SELECT count(*) FROM keys_only") == 4


def test_upsert_rejects_duplicate_and_null_keys(wh: DuckDBWarehouse) -> None:
    with pytest.raises(DataError, match="more than once"):
        wh.upsert("bad", pa.table({"id": [1, 1], "v": ["a", "b"]}), key=["id"])
    with pytest.raises(DataError, match="NULL"):
        wh.upsert("bad", pa.table({"id": [1, None], "v": ["a", "b"]}), key=["id"])
    with pytest.raises(DataError, match="not in the data"):
        wh.upsert("bad", pa.table({"id": [1]}), key=["nope"])
    assert not wh.table_exists("bad")


def test_transaction_commits_or_rolls_back(wh: DuckDBWarehouse) -> None:
    wh.execute("CREATE TABLE tx (id INTEGER)")
    with pytest.raises(RuntimeError), wh.transaction():
        wh.execute("INSERT INTO tx VALUES ($1)", [1])
        wh.load_arrow("tx", pa.table({"id": pa.array([2, 3], pa.int32())}))
        with wh.transaction():  # nested: joins the outer transaction
            wh.execute("INSERT INTO tx VALUES (4)")
        raise RuntimeError("boom")
    assert wh.scalar("SELECT count(*) FROM tx") == 0
    with wh.transaction():
        wh.execute("INSERT INTO tx VALUES (5)")
        wh.upsert("tx2", pa.table({"id": [1]}), key=["id"])
    assert wh.scalar("SELECT count(*) FROM tx") == 1
    assert wh.table_exists("tx2")


def test_execute_autocommits_outside_a_transaction(local_settings: Settings) -> None:
    with open_warehouse(local_settings) as writer, open_warehouse(local_settings) as reader:
        writer.execute("CREATE TABLE seen (id INTEGER)")
        writer.execute("INSERT INTO seen VALUES (1)")
        assert reader.scalar("SELECT count(*) FROM seen") == 1
        with writer.transaction():
            writer.execute("INSERT INTO seen VALUES (2)")
            assert reader.scalar("SELECT count(*) FROM seen") == 1  # not yet committed
        assert reader.scalar("SELECT count(*) FROM seen") == 2


def test_sql_errors_carry_the_engine_message(wh: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError, match="no_such_table"):
        wh.query("SELECT * FROM no_such_table")
    with pytest.raises(WarehouseError, match=r"(?i)syntax"):
        wh.execute("SELEC 1")
    assert wh.scalar("SELECT 1") == 1  # the connection is still usable


def test_close_is_idempotent_and_final(wh: DuckDBWarehouse) -> None:
    wh.close()
    wh.close()
    with pytest.raises(WarehouseError, match="closed"):
        wh.scalar("SELECT 1")


def _lazy_batches(n_batches: int, peak: list[int], size: int = 100_000) -> Iterator[pa.RecordBatch]:
    """Generated one at a time; records the Arrow memory in use each time the loader asks for more."""
    for b in range(n_batches):
        ids = np.arange(b * size, (b + 1) * size, dtype=np.int64)
        names = pc.binary_join_element_wise("customer-", pc.cast(pa.array(ids), pa.string()), "")
        yield pa.record_batch({"id": ids, "name": names, "amount": ids / 3})
        peak[0] = max(peak[0], pa.total_allocated_bytes())


@pytest.mark.slow
def test_a_long_reader_is_loaded_in_one_pass(wh: DuckDBWarehouse) -> None:
    # DuckDB pulls the batches itself; unlike the PostgreSQL path, its own buffering until the commit
    # is DuckDB's business, so only the single lazy pass and the result are checked here.
    first = next(_lazy_batches(1, [0]))
    reader = pa.RecordBatchReader.from_batches(first.schema, _lazy_batches(30, [0]))
    assert wh.load_arrow("streamed", reader) == 3_000_000
    row = wh.query("SELECT count(*) AS n, sum(id) AS s FROM streamed").to_pylist()[0]
    assert row == {"n": 3_000_000, "s": sum(range(3_000_000))}


def _acceptance_rows(n: int) -> pa.Table:
    ids = np.arange(n, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise("customer-", pc.cast(pa.array(ids), pa.string()), ""),
            "amount": (ids % 1000).astype(np.float64) / 4,
            "at": pa.array(ids * 1_000_000 + 1_700_000_000_000_000, pa.timestamp("us")),
            "active": ids % 3 == 0,
        }
    )


@pytest.mark.slow
def test_acceptance_million_rows_then_upsert(wh: DuckDBWarehouse) -> None:
    n = 1_000_000
    base = _acceptance_rows(n)
    started = time.perf_counter()
    assert wh.load_arrow("accept", base) == n
    loaded = time.perf_counter() - started

    changed = base.filter(pc.equal(pc.bit_wise_and(base.column("id"), 7), 0))  # ids divisible by 8
    changed = changed.slice(0, n // 10).set_column(2, "amount", pa.array(np.full(n // 10, -1.0)))
    new = _acceptance_rows(n + 5_000).slice(n)
    unchanged = base.take(np.arange(1, 8_000, 8))  # 1,000 rows sent again as they are
    batch = pa.concat_tables([changed, new, unchanged])
    started = time.perf_counter()
    assert wh.upsert("accept", batch, key=["id"]) == UpsertResult(inserted=5_000, updated=n // 10)
    upserted = time.perf_counter() - started

    assert wh.scalar("SELECT count(*) FROM accept") == n + 5_000
    assert wh.scalar("SELECT count(*) FROM accept WHERE amount = -1") == n // 10
    expected_sum = (
        pc.sum(base.column("amount")).as_py()
        - pc.sum(base.take(changed.column("id")).column("amount")).as_py()
        - 1.0 * (n // 10)
        + pc.sum(new.column("amount")).as_py()
    )
    assert wh.scalar("SELECT sum(amount) FROM accept") == pytest.approx(expected_sum)
    assert wh.scalar("SELECT sum(id) FROM accept") == sum(range(n + 5_000))
    assert wh.upsert("accept", batch, key=["id"]) == UpsertResult(0, 0)
    print(f"\nDuckDB: load {n:,} rows {loaded:.2f}s, upsert {batch.num_rows:,} rows {upserted:.2f}s")
