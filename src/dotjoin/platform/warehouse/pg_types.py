"""Type mapping between Arrow and PostgreSQL, in both directions.

Arrow → PostgreSQL (used to create a table from an Arrow schema):

==============================================  =====================================
Arrow                                           PostgreSQL
==============================================  =====================================
bool                                            boolean
int8, int16, uint8                              smallint
int32, uint16                                   integer
int64, uint32, uint64 (overflow is an error)    bigint
float16, float32                                real
float64                                         double precision
decimal128/256(p, s)                            numeric(p, s)
string, large_string, string_view               text
binary, large_binary, fixed_size_binary         bytea
date32, date64                                  date
timestamp[unit] (no time zone)                  timestamp (microseconds; ns truncated)
timestamp[unit, tz]                             timestamptz
time32, time64                                  time
duration                                        interval
null (an all-NULL column)                       text
dictionary<values>                              the mapping of its value type
==============================================  =====================================

Nested types (list, struct, map) are rejected with a :class:`DataError`: cast them to a JSON string
column first, and load that into a ``jsonb`` column of an existing table.

PostgreSQL → Arrow (query results), by the result column's type OID: integers and floats to their
exact width, ``numeric(p, s)`` to ``decimal128(p, s)`` (unconstrained ``numeric`` to the decimal type
the values need, or float64 when they hold NaN/infinity), text-like types, ``json``/``jsonb`` and
``uuid`` to string, ``bytea`` to binary, ``date`` to date32, ``timestamp``/``timestamptz`` to
``timestamp[us]`` / ``timestamp[us, UTC]``, ``time`` to ``time64[us]``, ``interval`` to
``duration[us]``. Other types are inferred from the Python values, else rendered as strings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from dotjoin.exceptions import DataError

logger = logging.getLogger(__name__)

# Result-column OIDs of the built-in types we map explicitly (pg_type.oid is stable across versions).
OID_BOOL, OID_BYTEA, OID_CHAR, OID_NAME, OID_INT8, OID_INT2, OID_INT4, OID_TEXT, OID_OID = (
    16, 17, 18, 19, 20, 21, 23, 25, 26
)  # fmt: skip
OID_JSON, OID_FLOAT4, OID_FLOAT8, OID_BPCHAR, OID_VARCHAR, OID_DATE, OID_TIME = (
    114, 700, 701, 1042, 1043, 1082, 1083
)  # fmt: skip
OID_TIMESTAMP, OID_TIMESTAMPTZ, OID_INTERVAL, OID_NUMERIC, OID_UUID, OID_JSONB = (
    1114, 1184, 1186, 1700, 2950, 3802
)  # fmt: skip

_OID_TO_ARROW: dict[int, pa.DataType] = {
    OID_BOOL: pa.bool_(),
    OID_BYTEA: pa.binary(),
    OID_CHAR: pa.string(),
    OID_NAME: pa.string(),
    OID_INT8: pa.int64(),
    OID_INT2: pa.int16(),
    OID_INT4: pa.int32(),
    OID_TEXT: pa.string(),
    OID_OID: pa.int64(),
    OID_JSON: pa.string(),
    OID_FLOAT4: pa.float32(),
    OID_FLOAT8: pa.float64(),
    OID_BPCHAR: pa.string(),
    OID_VARCHAR: pa.string(),
    OID_DATE: pa.date32(),
    OID_TIME: pa.time64("us"),
    OID_TIMESTAMP: pa.timestamp("us"),
    OID_TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    OID_INTERVAL: pa.duration("us"),
    OID_UUID: pa.string(),
    OID_JSONB: pa.string(),
}

#: Types whose values we ask psycopg to hand over as ``str`` (no JSON parsing, no UUID objects).
TEXT_LOADED_TYPES = ("json", "jsonb", "uuid")


def pg_type_for(arrow_type: pa.DataType, column: str = "?") -> str:
    """The PostgreSQL column type for an Arrow type (see the module table).

    Args:
        arrow_type: the Arrow type of the column.
        column: the column name, for the error message.

    Raises:
        DataError: the Arrow type has no PostgreSQL column type here (nested types).

    >>> pg_type_for(pa.timestamp("ns", tz="Europe/Paris"))
    'timestamptz'
    >>> pg_type_for(pa.decimal128(12, 2))
    'numeric(12,2)'
    """
    t = arrow_type
    if pa.types.is_dictionary(t):
        return pg_type_for(t.value_type, column)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "integer"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "real"
    if pa.types.is_float64(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_null(t):
        return "text"
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return "bytea"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t):
        return "interval"
    raise DataError(
        f"column {column!r} has Arrow type {t}, which has no PostgreSQL column type here; "
        "cast it (e.g. nested values to a JSON string) before loading"
    )


def arrow_type_for(oid: int, precision: int | None = None, scale: int | None = None) -> pa.DataType | None:
    """The Arrow type for a PostgreSQL result column, or None to infer it from the values.

    >>> arrow_type_for(1700, 10, 2)
    Decimal128Type(decimal128(10, 2))
    >>> arrow_type_for(1700) is None
    True
    """
    if oid == OID_NUMERIC:
        if precision is None:
            return None
        s = scale or 0
        return pa.decimal128(precision, s) if precision <= 38 else pa.decimal256(precision, s)
    return _OID_TO_ARROW.get(oid)


def column_to_arrow(values: list[Any] | tuple[Any, ...], arrow_type: pa.DataType | None) -> pa.Array:
    """Build one Arrow column from Python values, typed when the type is known.

    Falls back to inference, then to strings, so an unusual type never fails a query.
    """
    if arrow_type is not None:
        try:
            return pa.array(values, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            logger.debug("typed conversion to %s failed; inferring", arrow_type)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        if all(v is None or isinstance(v, float | int | Decimal) for v in values):
            return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def rows_to_table(
    chunks: Callable[[], Iterator[Sequence[tuple[Any, ...]]]],
    names: Sequence[str],
    types: Sequence[pa.DataType | None],
) -> pa.Table:
    """Build an Arrow table from chunks of row tuples.

    When every column's type is known, each chunk of tuples becomes one struct array in C++ (no
    Python transposition: about 3x faster than column by column); if that fails (say a NaN in a
    ``numeric(p, s)`` column) or a type is unknown, the rows are converted column by column.

    Args:
        chunks: returns a fresh iterator over the result's row chunks each time it is called.
        names: the result column names (duplicates allowed).
        types: the Arrow type of each column, None where it must be inferred.
    """
    if all(t is not None for t in types):
        struct = pa.struct([pa.field(f"c{i}", t) for i, t in enumerate(types)])
        schema = pa.schema([pa.field(f"c{i}", t) for i, t in enumerate(types)])
        try:
            batches = [pa.RecordBatch.from_struct_array(pa.array(rows, type=struct)) for rows in chunks()]
            return pa.Table.from_batches(batches, schema=schema).rename_columns(list(names))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            logger.debug("typed row conversion failed; converting column by column")
    rows = [row for chunk in chunks() for row in chunk]
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = [column_to_arrow(values, t) for values, t in zip(columns, types, strict=True)]
    return pa.Table.from_arrays(arrays, names=list(names))
