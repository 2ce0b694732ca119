"""The warehouse contract: what the ``Warehouse`` ABC promises, run on DuckDB and on PostgreSQL.

Every test runs once per engine through the ``engine`` fixture. The PostgreSQL run is marked ``postgres``
and needs the stack's server (`make services`): it skips with a reason when the server is down, and fails
instead under ``DOTJOIN_REQUIRE_SERVICES=1``. ``-m "not postgres"`` runs the DuckDB half alone.
What only one engine does lives next to it: ``tests/unit/platform/test_warehouse_duckdb.py`` and
``tests/integration/test_warehouse_postgres.py``.

Table names start with ``unique_name`` on both engines: other runs share the PostgreSQL database, and the
``wh`` fixture drops every table and schema with that prefix afterwards.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import DataError
from dotjoin.platform.warehouse import UpsertResult, Warehouse, WarehouseError, open_warehouse
from dotjoin.platform.warehouse._common import split_table_name
from dotjoin.platform.warehouse.duckdb_backend import quote_identifier, quote_table


@dataclass(frozen=True)
class Engine:
    """Where the engines may differ without breaking the contract: the wording of their errors."""

    name: str
    duplicate_key: str  # a primary-key violation (regex)
    duplicate_key_sqlstate: str | None
    missing_table: str  # selecting from a table that does not exist (regex)
    missing_table_sqlstate: str | None
    syntax_error: str  # regex
    broken_stream: tuple[type[Exception], ...]  # what a source failing mid-load surfaces as
    relations_like: str  # SQL listing relation names LIKE $1: no staging table may be left behind


ENGINES = {
    "duckdb": Engine(
        name="duckdb",
        duplicate_key=r"(?i)constraint|duplicate",
        duplicate_key_sqlstate=None,
        missing_table="no_such_table",
        missing_table_sqlstate=None,
        syntax_error=r"(?i)syntax",
        broken_stream=(RuntimeError, WarehouseError),  # DuckDB wraps the source's error in its own
        relations_like="SELECT table_name FROM information_schema.tables WHERE table_name LIKE $1",
    ),
    "postgres": Engine(
        name="postgres",
        duplicate_key="duplicate key",
        duplicate_key_sqlstate="23505",
        missing_table='relation "no_such_table" does not exist',
        missing_table_sqlstate="42P01",
        syntax_error="syntax error",
        broken_stream=(RuntimeError,),
        relations_like="SELECT relname FROM pg_class WHERE relname LIKE $1",
    ),
}


@contextmanager
def opened(settings: Settings, prefix: str) -> Iterator[Warehouse]:
    """A connection; at the end, on PostgreSQL, every table and schema whose name starts with ``prefix``
    goes (DuckDB's file lives in a temporary directory)."""
    warehouse = open_warehouse(settings)
    try:
        yield warehouse
        if warehouse.dialect == "postgres":
            _drop_prefixed(warehouse, prefix)
    finally:
        warehouse.close()


def _drop_prefixed(warehouse: Warehouse, prefix: str) -> None:
    schemas = warehouse.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", [prefix + "%"])
    for schema in schemas.column(0).to_pylist():
        warehouse.execute(f"DROP SCHEMA {quote_identifier(schema)} CASCADE")
    tables = warehouse.query(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND relkind = 'r' AND relname LIKE $1",
        [prefix + "%"],
    )
    for table in tables.column(0).to_pylist():
        warehouse.execute(f"DROP TABLE IF EXISTS {quote_identifier(table)} CASCADE")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    return ENGINES[request.param]


@pytest.fixture
def engine_settings(engine: Engine, request: pytest.FixtureRequest) -> Settings:
    """DuckDB in a fresh temporary directory, or the stack's PostgreSQL (skips or fails when it is down)."""
    settings: Settings = request.getfixturevalue("local_settings" if engine.name == "duckdb" else "postgres")
    return settings


@pytest.fixture
def wh(engine: Engine, engine_settings: Settings, unique_name: str) -> Iterator[Warehouse]:
    with opened(engine_settings, unique_name) as warehouse:
        assert warehouse.dialect == engine.name
        yield warehouse


def typed_table() -> pa.Table:
    """One column per Arrow type both engines store natively; row 2 holds the extremes, row 1 NULLs."""
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


def test_types_round_trip(wh: Warehouse, unique_name: str) -> None:
    data = typed_table()
    assert wh.load_arrow(unique_name, data) == 3
    back = wh.query(f"SELECT * FROM {unique_name} ORDER BY i16 NULLS LAST")
    assert back.column_names == data.column_names
    for name in data.column_names:
        if name == "tstz":  # DuckDB answers in the session's time zone; PostgreSQL's exact schema: its file
            assert pa.types.is_timestamp(back.schema.field(name).type)
        else:
            assert back.schema.field(name).type == data.schema.field(name).type, name
    assert back.to_pylist() == data.take([2, 0, 1]).to_pylist()  # ordered by i16: -32768, 1, NULL


def test_parameters_are_bound_never_interpolated(wh: Warehouse, unique_name: str) -> None:
    t = unique_name
    wh.execute(f"CREATE TABLE {t} (id bigint, name text, seen_at timestamp, seen_tz timestamptz)")
    evil = "x'); DROP TABLE users; --"
    when = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
    wh.execute(f"INSERT INTO {t} VALUES ($1, $2, $3, $4)", [1, evil, dt.datetime(2024, 5, 1, 8), when])
    wh.execute(f"INSERT INTO {t} VALUES ($2, $1, NULL, NULL)", ["second", 2])
    assert wh.query(f"SELECT name FROM {t} WHERE id = $1", [1]).column(0).to_pylist() == [evil]
    assert wh.scalar(f"SELECT name FROM {t} WHERE id = $1", [1]) == evil
    assert wh.scalar(f"SELECT count(*) FROM {t} WHERE seen_at > $1", [dt.datetime(2024, 1, 1)]) == 1
    assert wh.scalar(f"SELECT count(*) FROM {t} WHERE seen_tz >= $1", [when]) == 1
    assert wh.scalar(f"SELECT name FROM {t} WHERE id = $1", [2]) == "second"
    assert wh.scalar(f"SELECT name FROM {t} WHERE id = $1", [99]) is None


#: Table names as a caller may write them (``{u}`` is the test's unique prefix): taken literally unless a
#: part starts with a double quote, where ``""`` is one quote and a dot stays in the name.
ODD_NAMES = {
    "space": "{u} my table",
    "space-quoted": '"{u} my table"',
    "mixed-case": "{u}MixedCase",
    "mixed-case-quoted": '"{u}MixedCase"',
    "inner-quote": '{u}we"ird',
    "inner-quote-quoted": '"{u}we""ird 2"',
    "dot-quoted": '"{u}.dotted.name"',
    "schema-qualified": '"{u} my schema"."My Table"',
    "placeholders": "{u} odd $1 %s ?",
    "placeholders-quoted": '"{u} odd $1 %s ?"',
}


@pytest.mark.parametrize("template", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_odd_identifiers_are_quoted(wh: Warehouse, unique_name: str, template: str) -> None:
    table = template.format(u=unique_name)
    parts = split_table_name(table)
    if len(parts) == 2:
        wh.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(parts[0])}")
    data = pa.table({"the id": [1, 2], 'Col "Q"': ["a", "b"], "select": [True, False]})
    assert not wh.table_exists(table)
    assert wh.load_arrow(table, data) == 2
    assert wh.table_exists(table)
    upsert = pa.table({"the id": [2, 3], 'Col "Q"': ["B", "c"], "select": [False, True]})
    assert wh.upsert(table, upsert, key=["the id"]) == UpsertResult(inserted=1, updated=1)
    select = f'SELECT * FROM {quote_table(table)} ORDER BY "the id"'
    assert wh.query(select).to_pylist() == [
        {"the id": 1, 'Col "Q"': "a", "select": True},
        {"the id": 2, 'Col "Q"': "B", "select": False},
        {"the id": 3, 'Col "Q"': "c", "select": True},
    ]
    assert wh.load_arrow(table, data, mode="replace") == 2
    assert wh.query(select).to_pylist() == data.to_pylist()


def test_append_by_name_from_a_stream_then_replace(wh: Warehouse, unique_name: str) -> None:
    t = unique_name
    data = pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    assert wh.load_arrow(t, data) == 3
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=1))
    assert wh.load_arrow(t, reader) == 3
    assert wh.scalar(f"SELECT count(*) FROM {t}") == 6
    assert wh.load_arrow(t, pa.table({"v": ["z"], "id": [9]})) == 1  # by name, any order
    assert wh.scalar(f"SELECT count(*) FROM {t}") == 7
    assert wh.query(f"SELECT id, v FROM {t} WHERE id IN (1, 9) ORDER BY id").to_pylist() == [
        {"id": 1, "v": "a"},
        {"id": 1, "v": "a"},
        {"id": 9, "v": "z"},
    ]
    with pytest.raises(DataError, match="'extra'"):
        wh.load_arrow(t, pa.table({"id": [3], "extra": [1.0]}))
    assert wh.scalar(f"SELECT count(*) FROM {t}") == 7
    assert wh.load_arrow(t, pa.table({"id": [9], "note": ["new"]}), mode="replace") == 1
    assert wh.query(f"SELECT * FROM {t}").to_pylist() == [{"id": 9, "note": "new"}]
    assert wh.load_arrow(t, pa.table({"id": pa.array([], pa.int64())})) == 0


def test_failed_replace_keeps_the_old_table(wh: Warehouse, engine: Engine, unique_name: str) -> None:
    wh.load_arrow(unique_name, pa.table({"id": [1, 2, 3]}))
    schema = pa.schema([("id", pa.int64())])

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array([7, 8])], schema=schema)
        raise RuntimeError("source broke mid-stream")

    with pytest.raises(engine.broken_stream, match="mid-stream"):
        wh.load_arrow(unique_name, pa.RecordBatchReader.from_batches(schema, batches()), mode="replace")
    assert wh.query(f"SELECT id FROM {unique_name} ORDER BY id").column(0).to_pylist() == [1, 2, 3]
    assert not wh.query(engine.relations_like, [unique_name + "__dj_%"]).num_rows


def test_readers_see_the_old_table_until_a_replace_commits(
    wh: Warehouse, engine_settings: Settings, unique_name: str
) -> None:
    wh.load_arrow(unique_name, pa.table({"id": np.arange(1000)}))
    with open_warehouse(engine_settings) as reader:
        counts: list[int] = []
        errors: list[Exception] = []
        stop = threading.Event()

        def read() -> None:
            try:
                while not stop.is_set():
                    counts.append(reader.scalar(f"SELECT count(*) FROM {unique_name}"))
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


def test_upsert_counts_and_idempotent_rerun(wh: Warehouse, engine: Engine, unique_name: str) -> None:
    t = unique_name
    first = pa.table({"id": [1, 2, 3], "v": ["a", "b", None], "n": [1.0, 2.0, float("nan")]})
    assert wh.upsert(t, first, key=["id"]) == UpsertResult(inserted=3, updated=0)
    assert wh.upsert(t, first, key=["id"]) == UpsertResult(inserted=0, updated=0)
    second = pa.table({"id": [2, 3, 4], "v": ["b", "now set", "d"], "n": [2.0, float("nan"), 4.0]})
    assert wh.upsert(t, second, key=["id"]) == UpsertResult(inserted=1, updated=1)
    assert wh.upsert(t, second, key=["id"]) == UpsertResult(inserted=0, updated=0)
    assert wh.query(f"SELECT id, v FROM {t} ORDER BY id").to_pylist() == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "b"},
        {"id": 3, "v": "now set"},
        {"id": 4, "v": "d"},
    ]
    # The table was created with a primary key on the upsert key.
    with pytest.raises(WarehouseError, match=engine.duplicate_key) as info:
        wh.execute(f"INSERT INTO {t} VALUES (1, 'dup', 0)")
    assert info.value.sqlstate == engine.duplicate_key_sqlstate


def test_upsert_into_a_table_of_key_columns_only(wh: Warehouse, unique_name: str) -> None:
    data = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    assert wh.upsert(unique_name, data, key=["a", "b"]) == UpsertResult(3, 0)
    more = pa.table({"a": [1, 3], "b": ["x", "z"]})
    assert wh.upsert(unique_name, more, key=["a", "b"]) == UpsertResult(1, 0)
    assert wh.scalar(f"SELECT count(*) FROM {unique_name}") == 4


def test_upsert_composite_key_subset_of_columns_and_key_only(wh: Warehouse, unique_name: str) -> None:
    data = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"], "v": [1, 2, 3], "w": ["p", "q", "r"]})
    assert wh.upsert(unique_name, data, key=["a", "b"]) == UpsertResult(3, 0)
    partial = pa.table({"b": ["y", "z"], "a": [1, 3], "v": [20, 30]})  # w left alone
    assert wh.upsert(unique_name, partial, key=["a", "b"]) == UpsertResult(1, 1)
    assert wh.query(f"SELECT v, w FROM {unique_name} WHERE a = 1 AND b = $1", ["y"]).to_pylist() == [
        {"v": 20, "w": "q"}
    ]
    keys = pa.table({"a": [1, 4], "b": ["x", "x"]})
    assert wh.upsert(unique_name, keys, key=["a", "b"]) == UpsertResult(1, 0)


def test_upsert_rejects_bad_batches(wh: Warehouse, unique_name: str) -> None:
    with pytest.raises(DataError, match="more than once"):
        wh.upsert(unique_name, pa.table({"id": [1, 1], "v": ["a", "b"]}), key=["id"])
    with pytest.raises(DataError, match="NULL"):
        wh.upsert(unique_name, pa.table({"id": [1, None], "v": ["a", "b"]}), key=["id"])
    with pytest.raises(DataError, match="not in the data"):
        wh.upsert(unique_name, pa.table({"id": [1]}), key=["nope"])
    assert not wh.table_exists(unique_name)


def test_upsert_into_a_table_without_a_unique_key(wh: Warehouse, unique_name: str) -> None:
    wh.load_arrow(unique_name, pa.table({"id": [1, 2], "v": ["a", "b"]}))  # no primary key
    batch = pa.table({"id": [2, 3], "v": ["B", "c"]})
    assert wh.upsert(unique_name, batch, key=["id"]) == UpsertResult(inserted=1, updated=1)
    assert wh.upsert(unique_name, batch, key=["id"]) == UpsertResult(inserted=0, updated=0)
    assert wh.query(f"SELECT * FROM {unique_name} ORDER BY id").column("v").to_pylist() == ["a", "B", "c"]


def test_transaction_commits_or_rolls_back(wh: Warehouse, unique_name: str) -> None:
    t = unique_name
    wh.execute(f"CREATE TABLE {t} (id bigint)")
    with pytest.raises(RuntimeError), wh.transaction():
        wh.execute(f"INSERT INTO {t} VALUES ($1)", [1])
        wh.load_arrow(t, pa.table({"id": [2, 3]}))
        wh.upsert(f"{t}_2", pa.table({"id": [1]}), key=["id"])
        with wh.transaction():  # nested: joins the outer transaction
            wh.execute(f"INSERT INTO {t} VALUES (4)")
        raise RuntimeError("boom")
    assert wh.scalar(f"SELECT count(*) FROM {t}") == 0
    assert not wh.table_exists(f"{t}_2")
    with pytest.raises(WarehouseError), wh.transaction():
        wh.execute(f"INSERT INTO {t} VALUES (5)")
        wh.execute("SELECT * FROM no_such_table")
    assert wh.scalar(f"SELECT count(*) FROM {t}") == 0
    with wh.transaction():
        wh.execute(f"INSERT INTO {t} VALUES (6)")
        wh.upsert(f"{t}_3", pa.table({"id": [1]}), key=["id"])
    assert wh.scalar(f"SELECT count(*) FROM {t}") == 1
    assert wh.table_exists(f"{t}_3")


def test_execute_autocommits_outside_a_transaction(
    wh: Warehouse, engine_settings: Settings, unique_name: str
) -> None:
    t = unique_name
    with open_warehouse(engine_settings) as reader:
        wh.execute(f"CREATE TABLE {t} (id integer)")
        wh.execute(f"INSERT INTO {t} VALUES (1)")
        assert reader.scalar(f"SELECT count(*) FROM {t}") == 1
        with wh.transaction():
            wh.execute(f"INSERT INTO {t} VALUES (2)")
            assert reader.scalar(f"SELECT count(*) FROM {t}") == 1  # not yet committed
        assert reader.scalar(f"SELECT count(*) FROM {t}") == 2


def test_sql_errors_carry_the_engine_message(wh: Warehouse, engine: Engine) -> None:
    with pytest.raises(WarehouseError, match=engine.missing_table) as info:
        wh.query("SELECT * FROM no_such_table")
    assert info.value.sqlstate == engine.missing_table_sqlstate
    with pytest.raises(WarehouseError, match=engine.syntax_error):
        wh.execute("SELEC 1")
    assert wh.scalar("SELECT 1") == 1  # the connection is still usable


def test_close_is_idempotent_and_final(engine_settings: Settings) -> None:
    warehouse = open_warehouse(engine_settings)
    warehouse.close()
    warehouse.close()
    with pytest.raises(WarehouseError, match="closed"):
        warehouse.scalar("SELECT 1")


def lazy_batches(n_batches: int, peak: list[int], size: int = 100_000) -> Iterator[pa.RecordBatch]:
    """Generated one at a time; records the Arrow memory in use each time the loader asks for more."""
    for b in range(n_batches):
        ids = np.arange(b * size, (b + 1) * size, dtype=np.int64)
        names = pc.binary_join_element_wise("customer-", pc.cast(pa.array(ids), pa.string()), "")
        yield pa.record_batch({"id": ids, "name": names, "amount": ids / 3})
        peak[0] = max(peak[0], pa.total_allocated_bytes())


@pytest.mark.slow
def test_a_long_reader_is_loaded_in_one_pass(wh: Warehouse, unique_name: str) -> None:
    # Bounded memory is a promise of the PostgreSQL loader only (test_warehouse_postgres.py): DuckDB's
    # buffering until the commit is DuckDB's business.
    first = next(lazy_batches(1, [0]))
    reader = pa.RecordBatchReader.from_batches(first.schema, lazy_batches(30, [0]))
    assert wh.load_arrow(unique_name, reader) == 3_000_000
    row = wh.query(f"SELECT count(*) AS n, sum(id) AS s FROM {unique_name}").to_pylist()[0]
    assert row == {"n": 3_000_000, "s": sum(range(3_000_000))}


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
def test_acceptance_million_rows_then_upsert(wh: Warehouse, engine: Engine, unique_name: str) -> None:
    n = 1_000_000
    t = unique_name
    base = _acceptance_rows(n)
    started = time.perf_counter()
    assert wh.load_arrow(t, base) == n
    loaded = time.perf_counter() - started
    wh.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (id)")

    changed_ids = np.arange(0, 8 * (n // 10), 8)
    changed = base.take(changed_ids)
    changed = changed.set_column(2, "amount", pa.array(np.full(len(changed_ids), -1.0)))
    changed = changed.set_column(1, "name", pc.binary_join_element_wise(changed.column("name"), "*", ""))
    new = _acceptance_rows(5_000, start=n)
    unchanged = base.take(np.arange(1, 8_000, 8))  # 1,000 rows sent again as they are
    batch = pa.concat_tables([changed, new, unchanged])
    started = time.perf_counter()
    assert wh.upsert(t, batch, key=["id"]) == UpsertResult(inserted=5_000, updated=n // 10)
    upserted = time.perf_counter() - started

    assert wh.scalar(f"SELECT count(*) FROM {t}") == n + 5_000
    assert wh.scalar(f"SELECT sum(id) FROM {t}") == sum(range(n + 5_000))
    expected_amount = (
        pc.sum(base.column("amount")).as_py()
        - pc.sum(base.take(changed_ids).column("amount")).as_py()
        - 1.0 * len(changed_ids)
        + pc.sum(new.column("amount")).as_py()
    )
    assert wh.scalar(f"SELECT sum(amount) FROM {t}") == pytest.approx(expected_amount)
    assert wh.scalar(f"SELECT count(*) FROM {t} WHERE amount = -1") == n // 10
    assert wh.scalar(f"SELECT count(*) FROM {t} WHERE amount = -1 AND name LIKE '%*'") == n // 10
    assert wh.scalar(f"SELECT name FROM {t} WHERE id = $1", [8]) == "customer-8*"
    assert wh.scalar(f"SELECT name FROM {t} WHERE id = $1", [9]) == "customer-9"
    started = time.perf_counter()
    assert wh.upsert(t, batch, key=["id"]) == UpsertResult(0, 0)
    rerun = time.perf_counter() - started
    print(
        f"\n{engine.name}: load {n:,} rows {loaded:.2f}s, upsert {batch.num_rows:,} rows {upserted:.2f}s,"
        f" re-run {rerun:.2f}s"
    )
