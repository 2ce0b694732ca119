"""What only the PostgreSQL warehouse does (`make services`): binary COPY types, casts, server errors.

The behaviour both engines share is in ``test_warehouse_contract.py``, which runs on PostgreSQL too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import SecretStr

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError, DataError, ServiceUnavailableError
from dotjoin.platform.warehouse import WarehouseError, open_warehouse
from dotjoin.platform.warehouse.postgres_backend import PostgresWarehouse
from tests.integration.test_warehouse_contract import lazy_batches, opened, typed_table

pytestmark = pytest.mark.postgres


@pytest.fixture
def wh(postgres: Settings, unique_name: str) -> Iterator[PostgresWarehouse]:
    """A connection; at teardown, every table and schema whose name starts with ``unique_name`` goes."""
    with opened(postgres, unique_name) as warehouse:
        assert isinstance(warehouse, PostgresWarehouse)
        yield warehouse


def test_types_round_trip_through_binary_copy(wh: PostgresWarehouse, unique_name: str) -> None:
    # The values round trip on both engines (the contract); PostgreSQL also keeps every type exactly.
    data = typed_table()
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


def test_parameters_take_server_casts(wh: PostgresWarehouse) -> None:
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


def test_lost_connection_is_transient_and_the_next_call_reconnects(
    wh: PostgresWarehouse, postgres: Settings
) -> None:
    pid = wh.scalar("SELECT pg_backend_pid()")
    with open_warehouse(postgres) as other:
        assert other.scalar("SELECT pg_terminate_backend($1)", [pid]) is True
    with pytest.raises(ServiceUnavailableError, match="terminating connection"):
        wh.scalar("SELECT 1")
    assert wh.scalar("SELECT pg_backend_pid()") != pid


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


@pytest.mark.slow
def test_a_reader_is_streamed_in_bounded_memory(wh: PostgresWarehouse, unique_name: str) -> None:
    peak = [0]
    first = next(lazy_batches(1, [0]))
    reader = pa.RecordBatchReader.from_batches(first.schema, lazy_batches(30, peak))
    before = pa.total_allocated_bytes()
    assert wh.load_arrow(unique_name, reader) == 3_000_000
    assert 30 * first.nbytes > 90_000_000  # the whole stream would need this much at once
    assert peak[0] - before < 30_000_000
    assert wh.query(f'SELECT count(*), sum(id) FROM "{unique_name}"').to_pylist()[0] == {
        "count": 3_000_000,
        "sum": sum(range(3_000_000)),
    }
