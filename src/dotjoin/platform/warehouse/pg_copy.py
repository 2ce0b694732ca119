"""Encode Arrow record batches as a PostgreSQL binary COPY stream, vectorised.

``COPY t (cols) FROM STDIN (FORMAT BINARY)`` expects a header, then per row a 16-bit field count and
per field a 32-bit big-endian length (-1 for NULL) followed by the value in the type's binary send
format, then a 16-bit -1 trailer. PostgreSQL applies no casts to binary input, so each value is encoded
for the *target column's* type (``int4`` gets 4 bytes even when the Arrow column is int64).

How the rows are built without a Python loop per row:

* consecutive fixed-width columns without NULLs in the batch (and the row's field count) are written
  at once into one numpy structured array with big-endian fields — one memory pass per column;
* every other column becomes an Arrow binary array of "length + payload" per row (NULL → ``-1``);
* ``pyarrow.compute.binary_join_element_wise`` concatenates those parts row by row in C++, and the
  data buffer of the result *is* the COPY stream of the batch (no copy).

Only ``numeric`` and ``uuid`` columns are encoded value by value in Python (a slow path).
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.exceptions import DataError

logger = logging.getLogger(__name__)

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01

TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "char", "citext", "xml"})
_SEP = pa.scalar(b"", pa.large_binary())
_NULL_FIELD = pa.scalar(struct.pack(">i", -1), pa.large_binary())


def _cast(arr: pa.Array, target: pa.DataType, *, safe: bool = True) -> pa.Array:
    if arr.type == target:
        return arr
    return pc.cast(arr, target, safe=safe)


def _numbers(target: pa.DataType) -> Callable[[pa.Array], np.ndarray]:
    def convert(arr: pa.Array) -> np.ndarray:
        return _cast(arr, target).fill_null(0).to_numpy(zero_copy_only=False)

    return convert


def _bools(arr: pa.Array) -> np.ndarray:
    return _cast(arr, pa.bool_()).fill_null(False).to_numpy(zero_copy_only=False).view(np.uint8)


def _dates(arr: pa.Array) -> np.ndarray:
    days = _cast(arr, pa.date32()).cast(pa.int32()).fill_null(0).to_numpy()
    return days - np.int32(PG_EPOCH_DAYS)


def _timestamps(arr: pa.Array) -> np.ndarray:
    t = arr.type
    tz = t.tz if pa.types.is_timestamp(t) else None
    # Nanoseconds are truncated to PostgreSQL's microseconds; coarser units are checked for overflow.
    safe = not (pa.types.is_timestamp(t) and t.unit == "ns")
    micros = _cast(arr, pa.timestamp("us", tz=tz), safe=safe).cast(pa.int64()).fill_null(0).to_numpy()
    return micros - np.int64(PG_EPOCH_US)


def _times(arr: pa.Array) -> np.ndarray:
    safe = not (pa.types.is_time(arr.type) and arr.type.unit == "ns")
    return _cast(arr, pa.time64("us"), safe=safe).cast(pa.int64()).fill_null(0).to_numpy()


_INTERVAL = np.dtype([("us", ">i8"), ("days", ">i4"), ("months", ">i4")])


def _intervals(arr: pa.Array) -> np.ndarray:
    safe = not (pa.types.is_duration(arr.type) and arr.type.unit == "ns")
    micros = _cast(arr, pa.duration("us"), safe=safe).cast(pa.int64()).fill_null(0).to_numpy()
    out = np.zeros(len(micros), dtype=_INTERVAL)
    out["us"] = micros
    return out


# target type -> (big-endian field dtype, Arrow array -> numpy values with NULLs filled)
_FIXED: dict[str, tuple[np.dtype[Any], Callable[[pa.Array], np.ndarray]]] = {
    "bool": (np.dtype("u1"), _bools),
    "int2": (np.dtype(">i2"), _numbers(pa.int16())),
    "int4": (np.dtype(">i4"), _numbers(pa.int32())),
    "int8": (np.dtype(">i8"), _numbers(pa.int64())),
    "oid": (np.dtype(">u4"), _numbers(pa.uint32())),
    "float4": (np.dtype(">f4"), _numbers(pa.float32())),
    "float8": (np.dtype(">f8"), _numbers(pa.float64())),
    "date": (np.dtype(">i4"), _dates),
    "timestamp": (np.dtype(">i8"), _timestamps),
    "timestamptz": (np.dtype(">i8"), _timestamps),
    "time": (np.dtype(">i8"), _times),
    "interval": (_INTERVAL, _intervals),
}


def encode_numeric(value: Decimal) -> bytes:
    """One value in PostgreSQL's ``numeric`` binary format (base-10000 digits).

    >>> encode_numeric(Decimal("-12345.6")).hex()
    '0003000140000001000109291770'
    """
    if value.is_nan():
        return struct.pack(">hhHh", 0, 0, 0xC000, 0)
    if value.is_infinite():
        return struct.pack(">hhHh", 0, 0, 0xF000 if value.is_signed() else 0xD000, 0)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    if exponent > 0:
        mantissa, exponent = mantissa * 10**exponent, 0
    dscale = -exponent
    frac_groups = -(-dscale // 4)
    mantissa *= 10 ** (frac_groups * 4 - dscale)
    groups: list[int] = []
    while mantissa:
        mantissa, group = divmod(mantissa, 10_000)
        groups.append(group)
    groups.reverse()
    weight = len(groups) - 1 - frac_groups
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return struct.pack(">hhHh", 0, 0, 0, dscale)
    return struct.pack(f">hhHh{len(groups)}h", len(groups), weight, 0x4000 if sign else 0, dscale, *groups)


def _numeric_payload(arr: pa.Array) -> pa.Array:
    if pa.types.is_floating(arr.type):
        values = [None if v is None else Decimal(repr(v)) for v in arr.to_pylist()]
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        values = [None if v is None else Decimal(v) for v in arr.to_pylist()]
    else:
        values = [None if v is None else Decimal(v) for v in arr.to_pylist()]
    return pa.array([None if v is None else encode_numeric(v) for v in values], pa.large_binary())


def _uuid_payload(arr: pa.Array) -> pa.Array:
    if pa.types.is_fixed_size_binary(arr.type) and arr.type.byte_width == 16:
        return arr.cast(pa.large_binary())
    values = _cast(arr, pa.large_string()).to_pylist()
    return pa.array([None if v is None else uuid.UUID(v).bytes for v in values], pa.large_binary())


def _payload(pg_type: str, arr: pa.Array) -> pa.Array:
    """The binary send format of a variable-width value, as a large_binary array (NULLs kept)."""
    if pg_type in TEXT_TYPES or pg_type == "json":
        return _cast(arr, pa.large_string()).cast(pa.large_binary())
    if pg_type == "jsonb":
        text = _cast(arr, pa.large_string()).cast(pa.large_binary())
        return pc.binary_join_element_wise(pa.scalar(b"\x01", pa.large_binary()), text, _SEP)
    if pg_type == "bytea":
        if pa.types.is_fixed_size_binary(arr.type) or pa.types.is_binary_view(arr.type):
            arr = arr.cast(pa.binary())
        return _cast(arr, pa.large_binary())
    if pg_type == "numeric":
        return _numeric_payload(arr)
    if pg_type == "uuid":
        return _uuid_payload(arr)
    raise DataError(f"PostgreSQL type {pg_type!r} is not supported by the binary loader")


def supported(pg_type: str) -> bool:
    """Whether a target column of this (base) type can be bulk-loaded."""
    return (
        pg_type in _FIXED or pg_type in TEXT_TYPES or pg_type in {"json", "jsonb", "bytea", "numeric", "uuid"}
    )


def _fixed_to_binary(buffer: np.ndarray, rows: int, width: int) -> pa.Array:
    """View ``rows`` contiguous records of ``width`` bytes as a large_binary array (zero copy)."""
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(buffer)])


def _pack(rows: int, fields: list[tuple[np.dtype[Any], np.ndarray]], *, header: int | None) -> np.ndarray:
    """Write (length, value) pairs of NULL-free fixed-width columns into one big-endian record array."""
    layout: list[tuple[str, Any]] = [("h", ">i2")] if header is not None else []
    layout += [pair for i, (dt, _) in enumerate(fields) for pair in ((f"l{i}", ">i4"), (f"v{i}", dt))]
    out = np.empty(rows, dtype=np.dtype(layout))
    if header is not None:
        out["h"] = header
    for i, (dt, values) in enumerate(fields):
        out[f"l{i}"] = dt.itemsize
        out[f"v{i}"] = values
    return out


def encode_batch(batch: pa.RecordBatch, pg_types: Sequence[str]) -> memoryview:
    """Encode the rows of ``batch`` (columns in COPY order) for target columns of ``pg_types``.

    Args:
        batch: the rows; column ``i`` is loaded into a column of base type ``pg_types[i]``.
        pg_types: PostgreSQL base type names (``pg_type.typname``), e.g. ``int8``, ``timestamptz``.

    Returns:
        The bytes of the rows (without the stream's header and trailer).

    Raises:
        DataError: a value cannot be converted to its column's type (overflow, unparsable text).
    """
    rows, ncols = batch.num_rows, batch.num_columns
    if rows == 0:
        return memoryview(b"")
    parts: list[pa.Array | pa.Scalar] = []
    group: list[tuple[np.dtype[Any], np.ndarray]] = []
    header: int | None = ncols

    def flush() -> None:
        nonlocal header, group
        if group or header is not None:
            packed = _pack(rows, group, header=header)
            parts.append(_fixed_to_binary(packed, rows, packed.dtype.itemsize))
            header, group = None, []

    for name, arr, pg_type in zip(batch.schema.names, batch.columns, pg_types, strict=True):
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        try:
            if pg_type in _FIXED:
                dtype, convert = _FIXED[pg_type]
                values = convert(arr)
                if arr.null_count == 0:
                    group.append((dtype, values))
                    continue
                flush()
                packed = _pack(rows, [(dtype, values)], header=None)
                field = _fixed_to_binary(packed, rows, packed.dtype.itemsize)
                parts.append(pc.if_else(arr.is_valid(), field, _NULL_FIELD))
            else:
                flush()
                payload = _payload(pg_type, arr)
                lengths = pc.binary_length(payload).fill_null(-1).to_numpy().astype(">i4")
                prefix = _fixed_to_binary(lengths, rows, 4)
                parts.append(pc.binary_join_element_wise(prefix, payload.fill_null(b""), _SEP))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, ArithmeticError) as exc:
            raise DataError(
                f"column {name!r} ({arr.type}) cannot be loaded into a PostgreSQL {pg_type} column: {exc}"
            ) from exc
    flush()
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEP)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64, count=joined.offset + rows + 1)
    start, end = int(offsets[joined.offset]), int(offsets[joined.offset + rows])
    return memoryview(joined.buffers()[2])[start:end]
