"""Pure transforms raw file -> typed, de-duplicated, flattened Arrow rows, with rejects and their reasons.

Nothing here touches the lake or the warehouse: :func:`parse_csv` and :func:`parse_iot` take bytes and
return a :class:`Parsed` whose ``input == len(rows) + len(rejects) + duplicates`` always holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

META = [
    pa.field("_ingest_date", pa.date32(), nullable=False),
    pa.field("_source_file", pa.string(), nullable=False),
    pa.field("_loaded_at", pa.timestamp("us"), nullable=False),
]


@dataclass(frozen=True)
class Reject:
    position: str
    reason: str  # bad_row, bad_value, missing_column, bad_json, missing_field, outside_file_day
    detail: str
    raw: str


@dataclass
class Parsed:
    table: pa.Table
    input: int
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)


def _int(text: Any) -> int:
    return int(str(text).strip())


def _cents(text: Any) -> int:
    """A decimal money string as integer cents.

    >>> _cents("12.50"), _cents("3")
    (1250, 300)
    """
    value = Decimal(str(text).strip()) * 100
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} has more than two decimals")
    return int(value)


def _ts(text: Any) -> datetime:
    """An ISO timestamp, UTC; a trailing ``Z`` or offset is normalised to naive UTC.

    >>> _ts("2026-01-02T03:04:05Z")
    datetime.datetime(2026, 1, 2, 3, 4, 5)
    """
    moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = (moment - moment.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return moment


def _float(value: Any) -> float:
    """A number that may arrive as a string.

    >>> _float("21.5"), _float(3)
    (21.5, 3.0)
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return float(value)


_TYPES: dict[str, tuple[pa.DataType, Callable[[Any], Any]]] = {
    "int": (pa.int64(), _int),
    "str": (pa.string(), lambda v: str(v)),
    "ts": (pa.timestamp("us"), _ts),
    "money": (pa.int64(), _cents),
}


@dataclass(frozen=True)
class CsvSpec:
    columns: dict[str, str]  # csv column -> type name in _TYPES
    key: tuple[str, ...]
    event_column: str
    rename: dict[str, str] = field(default_factory=dict)  # csv column -> staging column

    def schema(self) -> pa.Schema:
        fields = [
            pa.field(self.rename.get(c, c), _TYPES[t][0], nullable=c not in self.key)
            for c, t in self.columns.items()
        ]
        return pa.schema([*fields, *META])


CSV_SPECS: dict[str, CsvSpec] = {
    "customers": CsvSpec(
        {
            "customer_id": "int",
            "name": "str",
            "email": "str",
            "city": "str",
            "address": "str",
            "updated_at": "ts",
        },
        key=("customer_id", "updated_at"),
        event_column="updated_at",
    ),
    "products": CsvSpec(
        {"product_id": "int", "name": "str", "category": "str", "price": "money", "updated_at": "ts"},
        key=("product_id", "updated_at"),
        event_column="updated_at",
        rename={"price": "price_cents"},
    ),
    "orders": CsvSpec(
        {"order_id": "int", "customer_id": "int", "order_ts": "ts", "status": "str", "updated_at": "ts"},
        key=("order_id", "updated_at"),
        event_column="updated_at",
    ),
    "order_items": CsvSpec(
        {
            "order_id": "int",
            "line_no": "int",
            "product_id": "int",
            "quantity": "int",
            "unit_price": "money",
            "order_ts": "ts",
        },
        key=("order_id", "line_no"),
        event_column="order_ts",
        rename={"unit_price": "unit_price_cents"},
    ),
}


def _in_day(moment: datetime, day: date) -> bool:
    return (
        datetime(day.year, day.month, day.day)
        <= moment
        < datetime(day.year, day.month, day.day) + timedelta(days=1)
    )


def parse_csv(data: bytes, spec: CsvSpec, *, day: date, source_file: str, loaded_at: datetime) -> Parsed:
    """Type, check and de-duplicate one daily CSV export.

    A missing column rejects every row (reason ``missing_column``) instead of failing the run; a row with
    the wrong number of fields is ``bad_row``; an unparsable value ``bad_value``; an event outside the
    file's day ``outside_file_day``. Exact key repeats count as duplicates (the first is kept).

    >>> spec = CSV_SPECS["orders"]
    >>> head = b"order_id,customer_id,order_ts,status,updated_at\\n"
    >>> good = b"1,2,2026-01-01T10:00:00,placed,2026-01-01T10:00:00\\n"
    >>> kw = {"day": date(2026, 1, 1), "source_file": "f", "loaded_at": datetime(2026, 1, 1)}
    >>> p = parse_csv(head + good + b"x,2,a,b,c\\n", spec, **kw)
    >>> p.table.num_rows, p.input, [r.reason for r in p.rejects]
    (1, 2, ['bad_value'])
    """
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    header = next(reader, [])
    lines = [(i, row) for i, row in enumerate(reader, start=2) if row]
    parsed = Parsed(table=spec.schema().empty_table(), input=len(lines))
    missing = [c for c in spec.columns if c not in header]
    if missing:
        detail = f"missing column(s) {', '.join(missing)}; header is {','.join(header)}"
        parsed.rejects = [Reject(str(i), "missing_column", detail, ",".join(r)) for i, r in lines]
        return parsed
    index = {name: header.index(name) for name in spec.columns}
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for line_no, fields in lines:
        raw = ",".join(fields)
        if len(fields) != len(header):
            parsed.rejects.append(
                Reject(str(line_no), "bad_row", f"{len(fields)} fields, want {len(header)}", raw)
            )
            continue
        try:
            row = {spec.rename.get(c, c): _TYPES[t][1](fields[index[c]]) for c, t in spec.columns.items()}
        except (ValueError, InvalidOperation) as exc:
            parsed.rejects.append(Reject(str(line_no), "bad_value", str(exc), raw))
            continue
        if not _in_day(row[spec.event_column], day):
            parsed.rejects.append(
                Reject(str(line_no), "outside_file_day", f"{spec.event_column} not on {day}", raw)
            )
            continue
        key = tuple(row[spec.rename.get(k, k)] for k in spec.key)
        if key in seen:
            parsed.duplicates += 1
            continue
        seen.add(key)
        rows.append(row | {"_ingest_date": day, "_source_file": source_file, "_loaded_at": loaded_at})
    parsed.table = pa.Table.from_pylist(rows, schema=spec.schema())
    return parsed


IOT_COLUMNS = [
    pa.field("device_id", pa.string(), nullable=False),
    pa.field("device_site", pa.string()),
    pa.field("device_model", pa.string()),
    pa.field("device_location_lat", pa.float64()),
    pa.field("device_location_lon", pa.float64()),
    pa.field("reading_ts", pa.timestamp("us"), nullable=False),
    pa.field("sensor", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("battery", pa.int64()),
]
IOT_KEY = ("device_id", "reading_ts", "sensor")
_IOT_COERCE: dict[str, Callable[[Any], Any]] = {
    "device_location_lat": _float,
    "device_location_lon": _float,
    "battery": lambda v: int(_float(v)),
    "device_id": str,
    "device_site": str,
    "device_model": str,
}


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects to ``parent_child`` scalar columns (arrays are left to the caller).

    >>> flatten({"device": {"id": "d1", "location": {"lat": 1.5}}, "battery": 9})
    {'device_id': 'd1', 'device_location_lat': 1.5, 'battery': 9}
    """
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def _extra_type(values: list[Any]) -> pa.DataType:
    """The Arrow type of a new (drifted) field: int, float, bool or — when mixed — string.

    >>> _extra_type([1, None, 2]), _extra_type([1, 2.5]), _extra_type([1, "x"])
    (DataType(int64), DataType(double), DataType(string))
    """
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    if kinds == {bool}:
        return pa.bool_()
    return pa.string()


def parse_iot(data: bytes, *, day: date, source_file: str, loaded_at: datetime) -> Parsed:
    """Flatten JSON-lines messages into one row per reading; unknown top-level or device fields become
    new columns (schema drift), typed from their values.

    ``input`` counts readings (a message that cannot be read counts as one): a corrupt line is
    ``bad_json``, a message without device id, ts or readings ``missing_field``, an unreadable value
    ``bad_value``, a reading outside the file's day ``outside_file_day``; re-sent readings are duplicates.

    >>> line = b'{"device":{"id":"d1"},"ts":"2026-01-01T00:05:00Z","readings":[{"sensor":"t","value":"1.5"}]}'
    >>> kw = {"day": date(2026, 1, 1), "source_file": "f", "loaded_at": datetime(2026, 1, 1)}
    >>> p = parse_iot(line + b"\\n" + line + b"\\n{oops\\n", **kw)
    >>> p.table.column("value").to_pylist(), p.input, p.duplicates, [r.reason for r in p.rejects]
    ([1.5], 3, 1, ['bad_json'])
    """
    parsed = Parsed(table=pa.table({}), input=0)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    known = {f.name for f in IOT_COLUMNS}
    for line_no, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            parsed.input += 1
            parsed.rejects.append(Reject(str(line_no), "bad_json", str(exc), line[:1000]))
            continue
        readings = message.get("readings")
        base = flatten(message)
        ts = base.pop("ts", None)
        if not isinstance(readings, list) or not readings or ts is None or base.get("device_id") is None:
            parsed.input += 1
            parsed.rejects.append(
                Reject(str(line_no), "missing_field", "need device.id, ts, readings", line[:1000])
            )
            continue
        for n, reading in enumerate(readings):
            parsed.input += 1
            position = f"{line_no}:{n}"
            try:
                row = {
                    k: _IOT_COERCE[k](v) if k in _IOT_COERCE and v is not None else v for k, v in base.items()
                }
                row |= {
                    "reading_ts": _ts(ts),
                    "sensor": str(reading["sensor"]),
                    "value": _float(reading["value"]),
                }
            except (ValueError, TypeError, KeyError) as exc:
                parsed.rejects.append(
                    Reject(position, "bad_value", f"{type(exc).__name__}: {exc}", line[:1000])
                )
                continue
            if not _in_day(row["reading_ts"], day):
                parsed.rejects.append(
                    Reject(position, "outside_file_day", f"reading_ts not on {day}", line[:1000])
                )
                continue
            key = tuple(row[k] for k in IOT_KEY)
            if key in seen:
                parsed.duplicates += 1
                continue
            seen.add(key)
            rows.append(row)
    extras = sorted({k for row in rows for k in row} - known)
    fields = [*IOT_COLUMNS]
    for name in extras:
        kind = _extra_type([row.get(name) for row in rows])
        fields.append(pa.field(name, kind))
        if kind == pa.string():
            for row in rows:
                if row.get(name) is not None:
                    row[name] = str(row[name])
    schema = pa.schema([*fields, *META])
    meta = {"_ingest_date": day, "_source_file": source_file, "_loaded_at": loaded_at}
    parsed.table = pa.Table.from_pylist([row | meta for row in rows], schema=schema)
    return parsed


def checksum(table: pa.Table) -> str:
    """A content hash independent of row order and column order.

    >>> t = pa.table({"a": [1, 2], "b": ["x", "y"]})
    >>> checksum(t) == checksum(t.take([1, 0]).select(["b", "a"]))
    True
    """
    names = sorted(table.column_names)
    lines = sorted(
        json.dumps([row[n] for n in names], default=str) for row in table.select(names).to_pylist()
    )
    return hashlib.sha256(("\n".join([",".join(names), *lines])).encode()).hexdigest()
