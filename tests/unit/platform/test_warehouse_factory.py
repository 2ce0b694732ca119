"""The warehouse factory, its error boundary, and the pure parts of the PostgreSQL loader (no server)."""

from __future__ import annotations

import doctest
import socket
import struct
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import load_settings
from dotjoin.exceptions import DataError, MissingDependencyError, ServiceUnavailableError
from dotjoin.platform import warehouse as warehouse_pkg
from dotjoin.platform.warehouse import _common, duckdb_backend, open_warehouse, pg_copy, pg_types
from dotjoin.platform.warehouse._common import WarehouseError, split_table_name
from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_postgres_is_a_clear_service_error(tmp_path: Path) -> None:
    port = _closed_port()
    env = {"DOTJOIN__WAREHOUSE__PORT": str(port), "DOTJOIN__WAREHOUSE__PASSWORD": "s3cret-never-shown"}
    settings = load_settings(profile="stack", cwd=tmp_path, env=env)
    with pytest.raises(ServiceUnavailableError) as info:
        open_warehouse(settings)
    message = str(info.value)
    assert f"PostgreSQL is not reachable at 127.0.0.1:{port}" in message
    assert "make services" in message
    assert "s3cret" not in message


def test_missing_psycopg_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "dotjoin.platform.warehouse.postgres_backend", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` sees when it is not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'dotjoin\[postgres\]'"):
        open_warehouse(load_settings(profile="stack", cwd=tmp_path, env={}))


def test_duckdb_never_imports_psycopg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with open_warehouse(load_settings(profile="local", cwd=tmp_path, env={})) as wh:
        assert isinstance(wh, DuckDBWarehouse)


def test_factory_knows_both_backends() -> None:
    assert set(warehouse_pkg.BACKENDS) == {"duckdb", "postgres"}


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("orders", ("orders",)),
        ("sales.orders", ("sales", "orders")),
        ("db.sales.orders", ("db", "sales", "orders")),
        ('"a.b"."c ""d"""', ("a.b", 'c "d"')),
        ("My Table", ("My Table",)),
    ],
)
def test_split_table_name(name: str, parts: tuple[str, ...]) -> None:
    assert split_table_name(name) == parts


@pytest.mark.parametrize("name", ["", "a..b", '"open', '"x"y', "a.b.c.d"])
def test_split_table_name_rejects_malformed_names(name: str) -> None:
    with pytest.raises(WarehouseError, match="invalid table name"):
        split_table_name(name)


@pytest.mark.parametrize(
    "value",
    ["0", "1", "-1", "12345.6789", "0.0001", "-0.00000123", "1e20", "9999", "10000", "NaN", "0.00", "100.10",
     "123456789012345678901234567890.5"],
)  # fmt: skip
def test_numeric_encoding_matches_psycopg(value: str) -> None:
    pytest.importorskip("psycopg")
    from psycopg.adapt import PyFormat
    from psycopg.postgres import adapters as pg_adapters

    dumper = pg_adapters.get_dumper(Decimal, PyFormat.BINARY)(Decimal)
    expected = dumper.dump(Decimal(value))
    assert expected is not None
    assert pg_copy.encode_numeric(Decimal(value)) == bytes(expected)


def _decode(stream: bytes, widths: int) -> list[list[bytes | None]]:
    """A tiny reader of the binary COPY row format, to check what the encoder wrote."""
    rows, pos = [], 0
    while pos < len(stream):
        (count,) = struct.unpack_from(">h", stream, pos)
        assert count == widths
        pos += 2
        row: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", stream, pos)
            pos += 4
            row.append(None if length == -1 else stream[pos : pos + length])
            pos += max(length, 0)
        rows.append(row)
    return rows


def test_encode_batch_writes_lengths_values_and_nulls() -> None:
    batch = pa.record_batch(
        {
            "id": pa.array([1, 2], pa.int64()),
            "txt": ["hé", None],
            "n": pa.array([None, 7], pa.int32()),
            "f": [True, False],
            "doc": ['{"a":1}', None],
        }
    )
    stream = bytes(pg_copy.encode_batch(batch, ["int8", "text", "int4", "bool", "jsonb"]))
    assert _decode(stream, 5) == [
        [struct.pack(">q", 1), "hé".encode(), None, b"\x01", b'\x01{"a":1}'],
        [struct.pack(">q", 2), None, struct.pack(">i", 7), b"\x00", None],
    ]


def test_encode_batch_converts_to_the_target_type_or_says_why() -> None:
    batch = pa.record_batch({"ts": pa.array([0], pa.timestamp("s")), "d": pa.array([10_957], pa.date32())})
    assert _decode(bytes(pg_copy.encode_batch(batch, ["timestamptz", "date"])), 2) == [
        [struct.pack(">q", -pg_copy.PG_EPOCH_US), struct.pack(">i", 0)]
    ]
    with pytest.raises(DataError, match=r"column 'x'.*int2"):
        pg_copy.encode_batch(pa.record_batch({"x": pa.array([1 << 20])}), ["int2"])


def test_pg_type_mapping_rejects_nested_types() -> None:
    assert pg_types.pg_type_for(pa.uint64()) == "bigint"
    with pytest.raises(DataError, match="'tags'"):
        pg_types.pg_type_for(pa.list_(pa.string()), "tags")


@pytest.mark.parametrize("module", [_common, pg_copy, pg_types, duckdb_backend, warehouse_pkg])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
