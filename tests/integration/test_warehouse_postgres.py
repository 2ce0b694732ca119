"""The PostgreSQL warehouse against a real PostgreSQL (`make services`): binary COPY, upserts, errors."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import SecretStr

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError, DataError, ServiceUnavailableError
from dotjoin.platform.warehouse import UpsertResult, WarehouseError, open_warehouse
from dotjoin.platform.warehouse.postgres_backend import PostgresWarehouse

pytestmark = pytest.mark.postgres


@pytest.fixture
def wh(postgres: Settings, unique_name: str) -> Iterator[PostgresWarehouse]:
    """A connection; at teardown, every table and schema whose name starts with ``unique_name`` goes."""
    warehouse = open_warehouse(postgres)
    assert isinstance(warehouse, PostgresWarehouse)
    yield warehouse
    schemas = warehouse.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", [unique_name + "%"])
    for schema in schemas.column(0).to_pylist():
        warehouse.execute(f'DROP SCHEMA "{schema}" CASCADE')
    tables = warehouse.query(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND relkind = 'r' AND relname LIKE $1",
        [unique_name + "%"],
    )
    for table in tables.column(0).to_pylist():
        warehouse.execute('DROP TABLE IF EXISTS "{}" CASCADE'.format(table.replace('"', '""')))
    warehouse.close()


def _typed_table() -> pa.Table:
    utc = dt.UTC
    return pa.table(
        {
            "i16": pa.array([1, None, -32768], pa.int16()),
            "i32": pa.array([1, None, 2**31 - 1], pa.int32()),
            "i64": pa.array([1, None, -(2**63)], pa.int64()),
            "f32": pa.array([1.5, None, -0.25], pa.float32()),
            "f64": pa.array([1.5, None, float("inf")], pa.float64()),
            "dec": pa.array([Decimal("1.23"), None, Decimal("-99999.99")], pa.decimal128(7, 2)),
            "txt": pa.array(["a", None, "ünï 'quoted' \"x\" \\ tab\t"], pa.string()),
            "bin": pa.array([b"\x00\x01\xff", None, b""], pa.binary()),
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


def test_types_round_trip_through_binary_copy(wh: PostgresWarehouse, unique_name: str) -> None:
    data = _typed_table()
    assert wh.load_arrow(unique_name, data) == 3
    assert wh.column_types(unique_name) == {
        "i16": "int2", "i32": "int4", "i64": "int8", "f32": "float4", "f64": "float8", "dec": "numeric",
        "txt": "text", "bin": "bytea", "flag": "bool", "day": "date", "ts": "timestamp",
        "tstz": "timestamptz", "tod": "time",
    }  # fmt: skip
    back = wh.query(f'SELECT * FROM "{unique_name}" ORDER BY i16 NULLS LAST')
    assert back.schema == data.schema
    assert back.to_pylist() == data.take([2, 0, 1]).to_pylist()  # ordered by i16: -32768, 1, NULL


def test_nanoseconds_and_other_units_convert(wh: PostgresWarehouse, unique_name: str) -> None:
    data = pa.table(
        {
            "ns": pa.array([1_700_000_000_123_456_789], pa.timestamp("ns", tz="Europe/Paris")),
            "s": pa.array([1_700_000_000], pa.timestamp("s")),
            "d64": pa.array([dt.date(2000, 1, 1)], pa.date64()),
            "u8": pa.array([200], pa.uint8()),
            "dict": pa.array(["x"]).dictionary_encode(),
            "dur": pa.array([dt.timedelta(days=1, microseconds=5)], pa.duration("us")),
        }
    )
    wh.load_arrow(unique_name, data)
    row = wh.query(f'SELECT * FROM "{unique_name}"').to_pylist()[0]
    assert row["ns"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)  # ns truncated
    assert row["s"] == dt.datetime(2023, 11, 14, 22, 13, 20)
    assert row["d64"] == dt.date(2000, 1, 1)
    assert (row["u8"], row["dict"]) == (200, "x")
    assert row["dur"] == dt.timedelta(days=1, microseconds=5)


def test_loading_into_existing_columns_of_other_types(wh: PostgresWarehouse, unique_name: str) -> None:
    wh.execute(
        f'CREATE TABLE "{unique_name}" (id integer, doc jsonb, price numeric(10, 2), ref uuid, '
        "label varchar(8), created date DEFAULT '2020-01-01', n smallint)"
    )
    data = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "doc": ['{"a": [1, 2]}', None],
            "price": pa.array([12.5, 0.1], pa.float64()),
            "ref": ["12345678-1234-5678-1234-567812345678", None],
            "label": ["short", "ok"],
            "n": pa.array([7, None], pa.int64()),
        }
    )
    assert wh.load_arrow(unique_name, data) == 2
    rows = wh.query(
        f'SELECT id, doc, price, ref, label, created, n FROM "{unique_name}" ORDER BY id'
    ).to_pylist()
    assert rows[0] == {
        "id": 1, "doc": '{"a": [1, 2]}', "price": Decimal("12.50"),
        "ref": "12345678-1234-5678-1234-567812345678", "label": "short",
        "created": dt.date(2020, 1, 1), "n": 7,
    }  # fmt: skip
    assert rows[1]["doc"] is None and rows[1]["price"] == Decimal("0.10")
    with pytest.raises(DataError, match="'n'"):  # int64 overflow into smallint is refused, not wrapped
        wh.load_arrow(unique_name, pa.table({"n": pa.array([70_000], pa.int64())}))
    with pytest.raises(WarehouseError, match="too long"):  # the server's own check, translated
        wh.load_arrow(unique_name, pa.table({"label": ["far too long"]}))
    assert wh.scalar(f'SELECT count(*) FROM "{unique_name}"') == 2


def test_parameters_use_dollar_placeholders(wh: PostgresWarehouse, unique_name: str) -> None:
    wh.execute(f'CREATE TABLE "{unique_name}" (id bigint, name text, seen_at timestamptz)')
    evil = "x'); DROP TABLE users; --"
    when = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
    wh.execute(f'INSERT INTO "{unique_name}" VALUES ($1, $2, $3)', [1, evil, when])
    wh.execute(f'INSERT INTO "{unique_name}" VALUES ($2, $1, NULL)', ["second", 2])
    assert wh.scalar(f'SELECT name FROM "{unique_name}" WHERE id = $1', [1]) == evil
    assert wh.scalar(f'SELECT count(*) FROM "{unique_name}" WHERE seen_at >= $1', [when]) == 1
    assert wh.scalar(f'SELECT name FROM "{unique_name}" WHERE id = $1', [99]) is None
    assert wh.query("SELECT $1::jsonb AS j, $2::numeric AS n", ['{"k": 1}', Decimal("1.5")]).to_pylist() == [
        {"j": '{"k": 1}', "n": Decimal("1.5")}
    ]


def test_query_result_types_and_fallbacks(wh: PostgresWarehouse) -> None:
    typed = wh.query(
        "SELECT 1::bigint AS i, 2.5::numeric(4, 1) AS n, 'a'::varchar AS v, '{\"k\": 1}'::jsonb AS j,"
        " '12345678-1234-5678-1234-567812345678'::uuid AS u, interval '1 day 2 hours' AS iv"
    )
    assert typed.schema == pa.schema(
        [("i", pa.int64()), ("n", pa.decimal128(4, 1)), ("v", pa.string()), ("j", pa.string()),
         ("u", pa.string()), ("iv", pa.duration("us"))]
    )  # fmt: skip
    assert typed.to_pylist()[0]["j"] == '{"k": 1}'
    # NaN does not fit decimal128, arrays have no explicit mapping: both still come back, by inference.
    odd = wh.query(
        "SELECT 'NaN'::numeric(5, 2) AS nan, ARRAY[1, 2] AS arr, sum(x) AS s FROM (VALUES (1), (2)) v(x)"
    )
    assert odd.to_pylist() == [{"nan": pytest.approx(float("nan"), nan_ok=True), "arr": [1, 2], "s": 3}]
    empty = wh.query("SELECT 1::int AS x, 'a'::text AS y WHERE false")
    assert empty.num_rows == 0 and empty.schema == pa.schema([("x", pa.int32()), ("y", pa.string())])


@pytest.mark.parametrize("suffix", [" my table", "MixedCase", 'we"ird', ".dotted", " odd $1 %s ?"])
def test_odd_identifiers_are_quoted(wh: PostgresWarehouse, unique_name: str, suffix: str) -> None:
    table = f'"{unique_name}{suffix.replace(chr(34), chr(34) * 2)}"'
    data = pa.table({"the id": [1, 2], 'Col "Q"': ["a", "b"], "select": [True, False]})
    assert not wh.table_exists(table)
    assert wh.load_arrow(table, data) == 2
    assert wh.table_exists(table)
    upsert = pa.table({"the id": [2, 3], 'Col "Q"': ["B", "c"], "select": [False, True]})
    assert wh.upsert(table, upsert, key=["the id"]) == UpsertResult(inserted=1, updated=1)
    assert wh.load_arrow(table, data, mode="replace") == 2
    assert wh.query(f'SELECT * FROM {table} ORDER BY "the id"').to_pylist() == data.to_pylist()


def test_schema_qualified_mixed_case_table(wh: PostgresWarehouse, unique_name: str) -> None:
    schema = f"{unique_name}_Sales"
    wh.execute(f'CREATE SCHEMA "{schema}"')
    table = f'"{schema}".Orders'
    wh.load_arrow(table, pa.table({"id": [1]}))
    assert wh.table_exists(table)
    assert not wh.table_exists(f'"{schema}".orders')  # PostgreSQL names are case-sensitive once quoted
    assert wh.scalar(f'SELECT count(*) FROM "{schema}"."Orders"') == 1
    wh.load_arrow(table, pa.table({"id": [5, 6]}), mode="replace")
    assert wh.scalar(f'SELECT sum(id) FROM "{schema}"."Orders"') == 11
    assert wh.query("SELECT relname FROM pg_class WHERE relname LIKE $1", ["%__dj_%"]).num_rows == 0


def test_append_replace_and_stream(wh: PostgresWarehouse, unique_name: str) -> None:
    data = pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    assert wh.load_arrow(unique_name, data) == 3
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=1))
    assert wh.load_arrow(unique_name, reader) == 3
    assert wh.load_arrow(unique_name, pa.table({"v": ["z"], "id": [9]})) == 1  # by name, any order
    assert wh.scalar(f'SELECT count(*) FROM "{unique_name}"') == 7
    with pytest.raises(DataError, match="'extra'"):
        wh.load_arrow(unique_name, pa.table({"id": [3], "extra": [1.0]}))
    assert wh.load_arrow(unique_name, pa.table({"id": [9], "note": ["new"]}), mode="replace") == 1
    assert wh.query(f'SELECT * FROM "{unique_name}"').to_pylist() == [{"id": 9, "note": "new"}]
    assert wh.load_arrow(unique_name, pa.table({"id": pa.array([], pa.int64())})) == 0


def test_failed_replace_keeps_the_old_table(wh: PostgresWarehouse, unique_name: str) -> None:
    wh.load_arrow(unique_name, pa.table({"id": [1, 2, 3]}))
    schema = pa.schema([("id", pa.int64())])

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array([7, 8])], schema=schema)
        raise RuntimeError("source broke mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        wh.load_arrow(unique_name, pa.RecordBatchReader.from_batches(schema, batches()), mode="replace")
    assert wh.query(f'SELECT id FROM "{unique_name}" ORDER BY id').column(0).to_pylist() == [1, 2, 3]
    assert not wh.query(
        "SELECT relname FROM pg_class WHERE relname LIKE $1", [unique_name + "__dj_%"]
    ).num_rows


def test_readers_see_the_old_table_until_a_replace_commits(
    wh: PostgresWarehouse, postgres: Settings, unique_name: str
) -> None:
    wh.load_arrow(unique_name, pa.table({"id": np.arange(1000)}))
    with open_warehouse(postgres) as reader:
        counts: list[int] = []
        errors: list[Exception] = []
        stop = threading.Event()

        def read() -> None:
            try:
                while not stop.is_set():
                    counts.append(reader.scalar(f'SELECT count(*) FROM "{unique_name}"'))
            except Exception as exc:  # a reader must never fail because of the swap
                errors.append(exc)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            for _ in range(5):
                wh.load_arrow(unique_name, pa.table({"id": np.arange(200_000)}), mode="replace")
                wh.load_arrow(unique_name, pa.table({"id": np.arange(1000)}), mode="replace")
        finally:
            stop.set()
            thread.join()
    assert errors == []
    assert len(counts) > 10 and set(counts) <= {1000, 200_000}


def test_upsert_counts_and_idempotent_rerun(wh: PostgresWarehouse, unique_name: str) -> None:
    first = pa.table({"id": [1, 2, 3], "v": ["a", "b", None], "n": [1.0, 2.0, float("nan")]})
    assert wh.upsert(unique_name, first, key=["id"]) == UpsertResult(inserted=3, updated=0)
    assert wh.upsert(unique_name, first, key=["id"]) == UpsertResult(inserted=0, updated=0)
    second = pa.table({"id": [2, 3, 4], "v": ["b", "now set", "d"], "n": [2.0, float("nan"), 4.0]})
    assert wh.upsert(unique_name, second, key=["id"]) == UpsertResult(inserted=1, updated=1)
    assert wh.upsert(unique_name, second, key=["id"]) == UpsertResult(inserted=0, updated=0)
    assert wh.query(f'SELECT id, v FROM "{unique_name}" ORDER BY id').to_pylist() == [
        {"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "now set"}, {"id": 4, "v": "d"},
    ]  # fmt: skip
    with pytest.raises(WarehouseError, match="duplicate key") as info:  # created with the primary key
        wh.execute(f"INSERT INTO \"{unique_name}\" VALUES (1, 'dup', 0)")
    assert info.value.sqlstate == "23505"


def test_upsert_composite_key_subset_of_columns_and_key_only(wh: PostgresWarehouse, unique_name: str) -> None:
    data = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"], "v": [1, 2, 3], "w": ["p", "q", "r"]})
    assert wh.upsert(unique_name, data, key=["a", "b"]) == UpsertResult(3, 0)
    partial = pa.table({"b": ["y", "z"], "a": [1, 3], "v": [20, 30]})  # w left alone
    assert wh.upsert(unique_name, partial, key=["a", "b"]) == UpsertResult(1, 1)
    assert wh.query(f'SELECT v, w FROM "{unique_name}" WHERE a = 1 AND b = $1', ["y"]).to_pylist() == [
        {"v": 20, "w": "q"}
    ]
    keys = pa.table({"a": [1, 4], "b": ["x", "x"]})
    assert wh.upsert(unique_name, keys, key=["a", "b"]) == UpsertResult(1, 0)


def test_upsert_rejects_bad_batches(wh: PostgresWarehouse, unique_name: str) -> None:
    with pytest.raises(DataError, match="more than once"):
        wh.upsert(unique_name, pa.table({"id": [1, 1], "v": ["a", "b"]}), key=["id"])
    with pytest.raises(DataError, match="NULL"):
        wh.upsert(unique_name, pa.table({"id": [1, None], "v": ["a", "b"]}), key=["id"])
    with pytest.raises(DataError, match="not in the data"):
        wh.upsert(unique_name, pa.table({"id": [1]}), key=["nope"])
    assert not wh.table_exists(unique_name)


def test_upsert_into_a_table_without_a_unique_key(wh: PostgresWarehouse, unique_name: str) -> None:
    wh.load_arrow(unique_name, pa.table({"id": [1, 2], "v": ["a", "b"]}))  # no primary key
    batch = pa.table({"id": [2, 3], "v": ["B", "c"]})
    assert wh.upsert(unique_name, batch, key=["id"]) == UpsertResult(inserted=1, updated=1)
    assert wh.upsert(unique_name, batch, key=["id"]) == UpsertResult(inserted=0, updated=0)
    assert wh.query(f'SELECT * FROM "{unique_name}" ORDER BY id').column("v").to_pylist() == ["a", "B", "c"]


def test_transaction_commits_or_rolls_back(wh: PostgresWarehouse, unique_name: str) -> None:
    wh.execute(f'CREATE TABLE "{unique_name}" (id bigint)')
    with pytest.raises(RuntimeError), wh.transaction():
        wh.execute(f'INSERT INTO "{unique_name}" VALUES ($1)', [1])
        wh.load_arrow(unique_name, pa.table({"id": [2, 3]}))
        wh.upsert(f"{unique_name}_2", pa.table({"id": [1]}), key=["id"])
        with wh.transaction():  # nested: joins the outer transaction
            wh.execute(f'INSERT INTO "{unique_name}" VALUES (4)')
        raise RuntimeError("boom")
    assert wh.scalar(f'SELECT count(*) FROM "{unique_name}"') == 0
    assert not wh.table_exists(f"{unique_name}_2")
    with pytest.raises(WarehouseError), wh.transaction():
        wh.execute(f'INSERT INTO "{unique_name}" VALUES (5)')
        wh.execute("SELECT * FROM no_such_table")
    assert wh.scalar(f'SELECT count(*) FROM "{unique_name}"') == 0
    with wh.transaction():
        wh.execute(f'INSERT INTO "{unique_name}" VALUES (6)')
    assert wh.scalar(f'SELECT count(*) FROM "{unique_name}"') == 1


def test_sql_errors_carry_the_server_message(wh: PostgresWarehouse) -> None:
    with pytest.raises(WarehouseError, match='relation "no_such_table" does not exist') as info:
        wh.query("SELECT * FROM no_such_table")
    assert info.value.sqlstate == "42P01"
    with pytest.raises(WarehouseError, match="syntax error"):
        wh.execute("SELEC 1")
    assert wh.scalar("SELECT 1") == 1


def test_lost_connection_is_transient_and_the_next_call_reconnects(
    wh: PostgresWarehouse, postgres: Settings
) -> None:
    pid = wh.scalar("SELECT pg_backend_pid()")
    with open_warehouse(postgres) as other:
        assert other.scalar("SELECT pg_terminate_backend($1)", [pid]) is True
    with pytest.raises(ServiceUnavailableError, match="terminating connection"):
        wh.scalar("SELECT 1")
    assert wh.scalar("SELECT pg_backend_pid()") != pid


def test_closed_warehouse_says_so(postgres: Settings) -> None:
    warehouse = open_warehouse(postgres)
    warehouse.close()
    warehouse.close()
    with pytest.raises(WarehouseError, match="closed"):
        warehouse.scalar("SELECT 1")


def test_wrong_password_is_a_config_error_without_the_password(postgres: Settings) -> None:
    secret = "definitely-not-the-password-4711"
    warehouse = postgres.warehouse.model_copy(update={"password": SecretStr(secret)})
    settings = postgres.model_copy(update={"warehouse": warehouse})
    with pytest.raises(ConfigError) as info:
        open_warehouse(settings)
    message = str(info.value)
    assert secret not in message
    assert repr(postgres.postgres.user) in message
    assert "secrets.toml" in message and "DOTJOIN__WAREHOUSE__PASSWORD" in message


def _lazy_batches(n_batches: int, peak: list[int], size: int = 100_000) -> Iterator[pa.RecordBatch]:
    """Generated one at a time; records the Arrow memory in use each time the loader asks for more."""
    for b in range(n_batches):
        ids = np.arange(b * size, (b + 1) * size, dtype=np.int64)
        names = pc.binary_join_element_wise("customer-", pc.cast(pa.array(ids), pa.string()), "")
        yield pa.record_batch({"id": ids, "name": names, "amount": ids / 3})
        peak[0] = max(peak[0], pa.total_allocated_bytes())


@pytest.mark.slow
def test_a_reader_is_streamed_in_bounded_memory(wh: PostgresWarehouse, unique_name: str) -> None:
    peak = [0]
    first = next(_lazy_batches(1, [0]))
    reader = pa.RecordBatchReader.from_batches(first.schema, _lazy_batches(30, peak))
    before = pa.total_allocated_bytes()
    assert wh.load_arrow(unique_name, reader) == 3_000_000
    assert 30 * first.nbytes > 90_000_000  # the whole stream would need this much at once
    assert peak[0] - before < 30_000_000
    assert wh.query(f'SELECT count(*), sum(id) FROM "{unique_name}"').to_pylist()[0] == {
        "count": 3_000_000,
        "sum": sum(range(3_000_000)),
    }


def _acceptance_rows(n: int, start: int = 0) -> pa.Table:
    ids = np.arange(start, start + n, dtype=np.int64)
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
def test_acceptance_million_rows_then_upsert(wh: PostgresWarehouse, unique_name: str) -> None:
    n = 1_000_000
    base = _acceptance_rows(n)
    started = time.perf_counter()
    assert wh.load_arrow(unique_name, base) == n
    loaded = time.perf_counter() - started
    wh.execute(f'ALTER TABLE "{unique_name}" ADD PRIMARY KEY (id)')

    changed_ids = np.arange(0, 8 * (n // 10), 8)
    changed = base.take(changed_ids)
    changed = changed.set_column(2, "amount", pa.array(np.full(len(changed_ids), -1.0)))
    changed = changed.set_column(1, "name", pc.binary_join_element_wise(changed.column("name"), "*", ""))
    new = _acceptance_rows(5_000, start=n)
    unchanged = base.take(np.arange(1, 8_000, 8))
    batch = pa.concat_tables([changed, new, unchanged])
    started = time.perf_counter()
    assert wh.upsert(unique_name, batch, key=["id"]) == UpsertResult(inserted=5_000, updated=n // 10)
    upserted = time.perf_counter() - started

    table = f'"{unique_name}"'
    assert wh.scalar(f"SELECT count(*) FROM {table}") == n + 5_000
    assert wh.scalar(f"SELECT sum(id) FROM {table}") == sum(range(n + 5_000))
    expected_amount = (
        pc.sum(base.column("amount")).as_py()
        - pc.sum(base.take(changed_ids).column("amount")).as_py()
        - 1.0 * len(changed_ids)
        + pc.sum(new.column("amount")).as_py()
    )
    assert wh.scalar(f"SELECT sum(amount) FROM {table}") == pytest.approx(expected_amount)
    assert wh.scalar(f"SELECT count(*) FROM {table} WHERE amount = -1 AND name LIKE '%*'") == n // 10
    assert wh.scalar(f"SELECT name FROM {table} WHERE id = $1", [8]) == "customer-8*"
    assert wh.scalar(f"SELECT name FROM {table} WHERE id = $1", [9]) == "customer-9"
    started = time.perf_counter()
    assert wh.upsert(unique_name, batch, key=["id"]) == UpsertResult(0, 0)
    rerun = time.perf_counter() - started
    print(
        f"\nPostgreSQL: load {n:,} rows {loaded:.2f}s, upsert {batch.num_rows:,} rows {upserted:.2f}s,",
        end="",
    )
    print(f" re-run {rerun:.2f}s")
