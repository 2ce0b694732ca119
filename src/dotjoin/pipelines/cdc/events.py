"""Debezium change events → :class:`Change` records with typed Python values and an Arrow schema.

One decoder for every way events arrive: Kafka records (JSON converter, with or without schemas), a
recorded file (``kcat -J`` lines, ``{"key", "value"}`` lines, bare envelopes). What it knows about
Debezium's PostgreSQL events:

* ``op``: ``r`` (snapshot read), ``c``, ``u``, ``d``; ``t`` (truncate) and ``m`` (logical message) are not
  row changes and are counted, not applied; a null value is a tombstone (the key's delete already came).
* **Order.** ``source.sequence`` is ``["<last commit LSN>", "<change LSN>"]``: transactions arrive in commit
  order but their changes' LSNs interleave, so the change LSN alone is not monotone; the pair is (it is what
  Debezium added for de-duplication). A primary-key update is a ``d`` and a ``c`` at the same LSN, so the
  op's rank breaks the tie: :attr:`Change.position` is ``(last commit LSN, LSN, rank)``. Snapshot reads all
  carry the snapshot's LSN and have no order among themselves (``position`` is None).
* **Types** come from the event's Connect schema (``name`` first: ``io.debezium.time.*``, Kafka Connect's
  ``Decimal``, ``io.debezium.data.Json``…); without a schema they are inferred from the JSON values.
* **TOAST.** An update that leaves a large (TOASTed) value unchanged carries Debezium's placeholder
  ``__debezium_unavailable_value`` instead of it: the column is listed in :attr:`Change.unavailable` so the
  applier carries the previous value forward, never writes the placeholder.

Bad input raises :class:`~dotjoin.exceptions.DataError` naming what is wrong; the caller adds where it was.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pyarrow as pa

from dotjoin.exceptions import DataError

UNAVAILABLE = "__debezium_unavailable_value"
_UNAVAILABLE_BYTES = base64.b64encode(UNAVAILABLE.encode()).decode()
ROW_OPS = ("r", "c", "u", "d")
SNAPSHOT_END = frozenset({"last_in_data_collection", "last"})  # a table's last snapshot read
OP_RANK = {"d": 0, "r": 1, "c": 1, "u": 2}  # a primary-key update: the old key's d before the new key's c
_EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1)
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Change:
    """One row change of one source table, values already typed."""

    table: str  # "schema.table" in the source database
    op: str  # r, c, u, d
    key: tuple[Any, ...]  # the primary key's values, in key_columns order
    key_columns: tuple[str, ...]
    row: dict[str, Any]  # the row after the change; for a delete, the row before it (often the key only)
    types: dict[str, pa.DataType]  # the row's columns and Arrow types, in source order
    lsn: int | None
    position: tuple[int, int, int] | None  # (last commit LSN, LSN, op rank); None for snapshot reads
    tx_id: int | None
    commit_us: int  # the source commit's time (snapshot: the read's time), µs since the epoch, UTC
    unavailable: frozenset[str] = field(default_factory=frozenset)
    snapshot: str | None = None  # a snapshot read's place: first, true, last_in_data_collection, last…


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event that is not a row change (tombstone, truncate, logical message, heartbeat, tx marker)."""

    kind: str
    table: str | None = None


def decode_record(key: bytes | str | None, value: bytes | str | None) -> Change | Skipped:
    """Decode one Kafka record of Debezium's JSON converter (``schemas.enable`` true or false).

    Raises:
        DataError: not JSON, not a Debezium envelope, or a value that does not fit its declared type.
    """
    if value is None or value in (b"", ""):
        return Skipped("tombstone")
    envelope = _json(value, "value")
    key_doc = _json(key, "key") if key not in (None, b"", "") else None
    return decode_envelope(envelope, key_doc)


def decode_envelope(
    envelope: Any, key_doc: Any = None, *, key_columns: Sequence[str] = ()
) -> Change | Skipped:
    """Decode a parsed envelope (``{"schema", "payload"}`` or a bare payload) and its parsed key.

    ``key_columns`` names the primary key when there is no key document (a file of bare envelopes).
    """
    if not isinstance(envelope, dict):
        raise DataError(f"a Debezium event is a JSON object, got {type(envelope).__name__}")
    schema, payload = _split(envelope)
    if not isinstance(payload, dict):
        raise DataError("the event's payload is not a JSON object")
    if "status" in payload and "op" not in payload:
        return Skipped("transaction")
    op = payload.get("op")
    source = payload.get("source") or {}
    table = _table_of(source)
    if op in ("t", "m"):
        return Skipped("truncate" if op == "t" else "message", table)
    if op not in ROW_OPS:
        raise DataError(f"unknown Debezium op {op!r} (expected one of r, c, u, d, t, m)")
    image_name = "before" if op == "d" else "after"
    image = payload.get(image_name)
    if not isinstance(image, dict):
        raise DataError(f"a {op!r} event without its {image_name!r} row")
    fields = _image_fields(schema, image_name)
    types, row, unavailable = _convert_row(image, fields)
    _, key_payload = _split(key_doc) if isinstance(key_doc, dict) else (None, None)
    if isinstance(key_payload, dict) and key_payload:
        columns = tuple(key_payload)
    elif key_columns:
        columns = tuple(key_columns)
    else:
        raise DataError(f"an event of {table} without a key: name the primary key (--key {table}=col)")
    missing = [c for c in columns if c not in row]
    if missing:
        raise DataError(f"the {image_name!r} row of {table} lacks key column(s) {', '.join(missing)}")
    lsn = _int_or_none(source.get("lsn"))
    snapshot = op == "r"
    return Change(
        table=table,
        op=op,
        key=tuple(row[c] for c in columns),
        key_columns=columns,
        row=row,
        types=types,
        lsn=lsn,
        position=None if snapshot else _position(source, lsn, op),
        tx_id=_int_or_none(source.get("txId")),
        commit_us=_commit_us(source, payload),
        unavailable=frozenset(unavailable),
        snapshot=str(source.get("snapshot")).lower() if snapshot else None,
    )


def read_kcat_line(line: str, *, key_columns: Mapping[str, Sequence[str]] | None = None) -> Change | Skipped:
    """One line of a recorded event file: ``kcat -J`` (``{"topic", "key", "payload"}``, key and payload as
    JSON strings), ``{"key": …, "value": …}``, or a bare envelope (its table's key from ``key_columns``)."""
    doc = _json(line, "line")
    if isinstance(doc, dict) and "payload" in doc and "topic" in doc and "op" not in doc:  # kcat -J
        return decode_record(_text(doc.get("key")), _text(doc.get("payload")))
    if isinstance(doc, dict) and "value" in doc and "payload" not in doc and "op" not in doc:
        value = doc["value"]
        if value is None:
            return Skipped("tombstone")
        key = doc.get("key")
        key = _json(key, "key") if isinstance(key, str) else key
        value = _json(value, "value") if isinstance(value, str) else value
        return decode_envelope(value, key, key_columns=keys_for(value, key_columns))
    return decode_envelope(doc, None, key_columns=keys_for(doc, key_columns))


def keys_for(envelope: Any, key_columns: Mapping[str, Sequence[str]] | None) -> Sequence[str]:
    """The key columns ``key_columns`` names for the envelope's table (none: the event has its key)."""
    if not key_columns or not isinstance(envelope, dict):
        return ()
    _, payload = _split(envelope)
    source = payload.get("source") if isinstance(payload, dict) else None
    return key_columns.get(_table_of(source or {}), ()) if source else ()


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else msgspec.json.encode(value).decode()


def _json(raw: bytes | str | None, what: str) -> Any:
    try:
        return _decode(raw) if raw is not None else None
    except msgspec.DecodeError as exc:
        raise DataError(f"the record's {what} is not JSON: {exc}") from None


def _split(envelope: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
    """(schema, payload) of a JSON-converter document; a bare payload has no schema."""
    if "payload" in envelope and set(envelope) <= {"schema", "payload"}:
        schema = envelope.get("schema")
        return (schema if isinstance(schema, dict) and schema else None), envelope["payload"]
    return None, envelope


def _table_of(source: Mapping[str, Any]) -> str:
    schema, table = source.get("schema"), source.get("table")
    if not table:
        raise DataError("the event's source names no table (source.table)")
    return f"{schema}.{table}" if schema else str(table)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"expected an integer, got {value!r}") from None


def _position(source: Mapping[str, Any], lsn: int | None, op: str) -> tuple[int, int, int]:
    sequence = source.get("sequence")
    last_commit = None
    if isinstance(sequence, str) and sequence:
        pair = _json(sequence, "source.sequence")
        if isinstance(pair, list) and len(pair) == 2:
            last_commit, lsn = _int_or_none(pair[0]), _int_or_none(pair[1]) or lsn
    if lsn is None:
        raise DataError("a streamed event without source.lsn: its order is unknown")
    return (lsn if last_commit is None else last_commit, lsn, OP_RANK[op])


def _commit_us(source: Mapping[str, Any], payload: Mapping[str, Any]) -> int:
    for container, name, scale in ((source, "ts_us", 1), (source, "ts_ms", 1000), (payload, "ts_us", 1),
                                   (payload, "ts_ms", 1000)):  # fmt: skip
        value = _int_or_none(container.get(name))
        if value is not None:
            return value * scale
    raise DataError("the event has no commit time (source.ts_ms)")


# -- types -----------------------------------------------------------------------------------------


def _image_fields(schema: dict[str, Any] | None, image: str) -> list[dict[str, Any]] | None:
    if schema is None:
        return None
    for f in schema.get("fields", ()):
        if f.get("field") == image:
            return list(f.get("fields", ()))
    return None


def arrow_type(f: Mapping[str, Any]) -> pa.DataType:
    """The Arrow type of one field of a Debezium row schema (its semantic ``name`` first).

    >>> arrow_type({"type": "int64", "name": "io.debezium.time.MicroTimestamp"})
    TimestampType(timestamp[us])
    >>> arrow_type({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
    ...             "parameters": {"scale": "2", "connect.decimal.precision": "12"}})
    Decimal128Type(decimal128(12, 2))
    """
    name, kind = f.get("name"), f.get("type")
    if name in _NAMED:
        return _NAMED[name]
    if name == "org.apache.kafka.connect.data.Decimal":
        params = f.get("parameters") or {}
        scale = int(params.get("scale", 0))
        precision = int(params.get("connect.decimal.precision", 38))
        return pa.decimal128(precision, scale)
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind == "array":
        return pa.list_(arrow_type(f.get("items") or {"type": "string"}))
    # structs (VariableScaleDecimal, geometry) and maps: kept as their JSON text, never lost
    return pa.string()


_NAMED: dict[str, pa.DataType] = {
    "io.debezium.time.Date": pa.date32(),
    "org.apache.kafka.connect.data.Date": pa.date32(),
    "io.debezium.time.Time": pa.time64("us"),
    "io.debezium.time.MicroTime": pa.time64("us"),
    "io.debezium.time.NanoTime": pa.time64("us"),
    "io.debezium.time.Timestamp": pa.timestamp("us"),
    "io.debezium.time.MicroTimestamp": pa.timestamp("us"),
    "io.debezium.time.NanoTimestamp": pa.timestamp("us"),
    "org.apache.kafka.connect.data.Timestamp": pa.timestamp("us"),
    "io.debezium.time.ZonedTimestamp": pa.timestamp("us", tz="UTC"),
    "io.debezium.time.ZonedTime": pa.string(),
    "io.debezium.time.MicroDuration": pa.int64(),
    "io.debezium.data.Json": pa.string(),
    "io.debezium.data.Uuid": pa.string(),
    "io.debezium.data.Enum": pa.string(),
    "io.debezium.data.Xml": pa.string(),
}
_PLAIN: dict[str, pa.DataType] = {
    "int8": pa.int32(), "int16": pa.int32(), "int32": pa.int32(), "int64": pa.int64(),
    "float32": pa.float32(), "float64": pa.float64(), "float": pa.float32(), "double": pa.float64(),
    "boolean": pa.bool_(), "string": pa.string(), "bytes": pa.binary(),
}  # fmt: skip


def _infer(value: Any) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


Converter = Callable[[Any], Any] | None  # raw JSON value (not null) -> Python value; None: as it is
_PLANS: dict[tuple[Any, ...], dict[str, tuple[pa.DataType, Converter]]] = {}


def _plan(fields: list[dict[str, Any]]) -> dict[str, tuple[pa.DataType, Converter]]:
    """Each declared column's Arrow type and converter, built once per distinct row schema."""
    signature = tuple(
        (f.get("field"), f.get("type"), f.get("name"), str(f.get("parameters"))) for f in fields
    )
    plan = _PLANS.get(signature)
    if plan is None:
        plan = {
            f["field"]: (kind, _converter(kind, f.get("name"))) for f in fields for kind in [arrow_type(f)]
        }
        if len(_PLANS) > 1024:  # a schema per table and version: a bound against pathological streams
            _PLANS.clear()
        _PLANS[signature] = plan
    return plan


def _convert_row(
    image: dict[str, Any], fields: list[dict[str, Any]] | None
) -> tuple[dict[str, pa.DataType], dict[str, Any], list[str]]:
    types: dict[str, pa.DataType] = {}
    row: dict[str, Any] = {}
    unavailable: list[str] = []
    plan = _plan(fields) if fields else {}
    for column, raw in image.items():
        kind, convert = plan.get(column) or (_infer(raw), None)
        types[column] = kind
        if raw is None:
            row[column] = None
        elif raw == UNAVAILABLE or (raw == _UNAVAILABLE_BYTES and pa.types.is_binary(kind)):
            unavailable.append(column)
            row[column] = None
        elif convert is None:
            row[column] = raw
        else:
            try:
                row[column] = convert(raw)
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise DataError(f"column {column!r}: {raw!r} is not a valid {kind}: {exc}") from None
    return types, row, unavailable


def _converter(kind: pa.DataType, name: str | None) -> Converter:
    """The function turning a JSON value of a column of ``kind`` (Debezium type ``name``) into Python."""
    if pa.types.is_decimal(kind):
        scale = kind.scale
        if name == "org.apache.kafka.connect.data.Decimal":  # precise: the unscaled integer's bytes
            return lambda raw: (
                decimal.Decimal(int.from_bytes(base64.b64decode(raw), "big", signed=True)).scaleb(-scale)
                if isinstance(raw, str) else decimal.Decimal(str(raw)))  # fmt: skip
        return lambda raw: decimal.Decimal(str(raw))
    if pa.types.is_timestamp(kind):
        scale = _TIME_SCALE.get(name or "", 1000)
        epoch = _EPOCH if kind.tz is None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

        def timestamp(raw: Any) -> dt.datetime:
            if isinstance(raw, str):  # ZonedTimestamp: ISO-8601 with an offset
                return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return epoch + dt.timedelta(microseconds=int(raw) * scale // 1000)

        return timestamp
    if pa.types.is_date32(kind):
        return lambda raw: _EPOCH_DATE + dt.timedelta(days=int(raw))
    if pa.types.is_time64(kind):
        scale = _TIME_SCALE.get(name or "", 1000)
        return lambda raw: (_EPOCH + dt.timedelta(microseconds=int(raw) * scale // 1000)).time()
    if pa.types.is_binary(kind):
        return base64.b64decode
    if pa.types.is_string(kind):
        return lambda raw: raw if isinstance(raw, str) else msgspec.json.encode(raw).decode()
    if pa.types.is_floating(kind):
        return float  # Debezium writes NaN and Infinity as strings
    if pa.types.is_integer(kind):
        return lambda raw: raw if type(raw) is int else int(raw)
    return None


# Units of Debezium's temporal types, in nanoseconds per unit: ms→1000000, µs→1000, ns→1.
_TIME_SCALE = {
    "io.debezium.time.Timestamp": 1_000_000,
    "org.apache.kafka.connect.data.Timestamp": 1_000_000,
    "io.debezium.time.MicroTimestamp": 1000,
    "io.debezium.time.NanoTimestamp": 1,
    "io.debezium.time.Time": 1_000_000,
    "io.debezium.time.MicroTime": 1000,
    "io.debezium.time.NanoTime": 1,
}
