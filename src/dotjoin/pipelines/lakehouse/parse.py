"""Pure transforms raw file -> typed, de-duplicated, flattened Arrow rows, with rejects and their reasons.

Nothing here touches the lake or the warehouse: :func:`parse_csv` and :func:`parse_iot` take bytes and
return a :class:`Parsed` whose ``input == len(rows) + len(rejects) + duplicates`` always holds.

The CSV exports are read by the platform's one reader (:class:`~dotjoin.platform.files.DelimitedReader`:
framing, quoting, multi-line fields, physical line numbers, per-record decoding), so a record that is
not UTF-8 is repaired as cp1252 or quarantined as ``bad_encoding`` exactly as in every other pipeline.
Reason codes are the platform's (:mod:`dotjoin.platform.quality.reasons`): ``ragged_row``,
``bad_encoding``, ``missing_field``, ``bad_number``, ``bad_amount``, ``bad_timestamp``,
``missing_column``, ``outside_file_day`` and, for JSON lines, ``bad_json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from dotjoin.platform.files import DelimitedReader, DialectOptions, InputFileError
from dotjoin.platform.files.encoding import decode_record
from dotjoin.platform.files.header import header_key
from dotjoin.platform.files.reader import BAD_ENCODING, raw_text

META = [
    pa.field("_ingest_date", pa.date32(), nullable=False),
    pa.field("_source_file", pa.string(), nullable=False),
    pa.field("_loaded_at", pa.timestamp("us"), nullable=False),
]


@dataclass(frozen=True)
class Reject:
    position: str
    reason: str  # a code of dotjoin.platform.quality.reasons
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


#: type name -> (Arrow type, converter, reason code when the converter refuses a value)
_TYPES: dict[str, tuple[pa.DataType, Callable[[Any], Any], str | None]] = {
    "int": (pa.int64(), _int, "bad_number"),
    "str": (pa.string(), lambda v: str(v), None),  # any text, kept as written
    "ts": (pa.timestamp("us"), _ts, "bad_timestamp"),
    "money": (pa.int64(), _cents, "bad_amount"),
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


#: How the exports are written; only the header is matched (any case or spacing), nothing guessed.
CSV_OPTIONS = DialectOptions(delimiter=",", quote='"', escape="", header=True, skip_lines=0, comment="")


class _BadValue(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _typed(spec: CsvSpec, values: dict[str, str]) -> dict[str, Any]:
    """One record's values (by csv column) typed by ``spec``; raises ``_BadValue`` at the first bad one."""
    row: dict[str, Any] = {}
    for column, kind in spec.columns.items():
        text = values[column]
        _, parse, reason = _TYPES[kind]
        if reason is None:
            row[spec.rename.get(column, column)] = parse(text)
            continue
        if not text.strip():
            raise _BadValue("missing_field", f"{column} is empty")
        try:
            row[spec.rename.get(column, column)] = parse(text)
        except (ValueError, InvalidOperation) as exc:
            raise _BadValue(reason, f"{column}: {exc}") from None
    return row


def _open_csv(data: bytes, spec: CsvSpec, name: str) -> tuple[DelimitedReader, dict[str, str], list[str]]:
    """The reader of an export, the file column of each spec column, and the spec columns it lacks.

    The header is matched to the spec's columns; one with extra or missing columns is read with its
    own header (the dialect still fixed), so that a missing column rejects every record, not the run.
    """
    expected = tuple(spec.columns)
    kw: dict[str, Any] = {"data": data, "encoding": "utf-8", "allow_empty": True}
    try:
        return DelimitedReader(Path(name), columns=expected, **kw), {c: c for c in expected}, []
    except InputFileError:
        reader = DelimitedReader(Path(name), options=CSV_OPTIONS, **kw)
    by_key: dict[str, str] = {}
    for column in reader.names:
        by_key.setdefault(header_key(column), column)
    found = {c: by_key[header_key(c)] for c in expected if header_key(c) in by_key}
    return reader, found, [c for c in expected if c not in found]


def parse_csv(data: bytes, spec: CsvSpec, *, day: date, source_file: str, loaded_at: datetime) -> Parsed:
    """Type, check and de-duplicate one daily CSV export.

    A missing column rejects every record (reason ``missing_column``) instead of failing the run; a
    record with the wrong number of fields is ``ragged_row``, one neither UTF-8 nor cp1252
    ``bad_encoding``; an empty value ``missing_field``; an unparsable one ``bad_number``,
    ``bad_amount`` (money) or ``bad_timestamp``; an event outside the file's day ``outside_file_day``.
    Exact key repeats count as duplicates (the first is kept).

    Raises:
        InputFileError: the file cannot be read as CSV at all (the pipeline quarantines the file).

    >>> spec = CSV_SPECS["orders"]
    >>> head = b"order_id,customer_id,order_ts,status,updated_at\\n"
    >>> good = b"1,2,2026-01-01T10:00:00,placed,2026-01-01T10:00:00\\n"
    >>> kw = {"day": date(2026, 1, 1), "source_file": "f", "loaded_at": datetime(2026, 1, 1)}
    >>> p = parse_csv(head + good + b"x,2,a,b,c\\n" + b"3,2\\n", spec, **kw)
    >>> p.table.num_rows, p.input, [r.reason for r in p.rejects]
    (1, 3, ['bad_number', 'ragged_row'])
    """
    parsed = Parsed(table=spec.schema().empty_table(), input=0)
    if not data.strip():
        return parsed
    reader, found, missing = _open_csv(data, spec, source_file)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    rejects: list[tuple[int, Reject]] = []
    header = ",".join(reader.header_fields)
    with reader:
        for chunk in reader:
            parsed.input += len(chunk.rejected) + chunk.table.num_rows
            for rej in chunk.rejected:
                rejects.append((rej.line, Reject(str(rej.line), rej.reason, rej.detail, rej.raw)))
            if missing:
                detail = f"missing column(s) {', '.join(missing)}; header is {header}"
                for i, line in enumerate(chunk.line.tolist()):
                    rejects.append((line, Reject(str(line), "missing_column", detail, chunk.raw(i))))
                continue
            texts = chunk.table.select([found[c] for c in spec.columns]).to_pylist()
            for i, line in enumerate(chunk.line.tolist()):
                values = dict(zip(spec.columns, texts[i].values(), strict=True))
                try:
                    row = _typed(spec, values)
                except _BadValue as exc:
                    rejects.append((line, Reject(str(line), exc.reason, str(exc), chunk.raw(i))))
                    continue
                if not _in_day(row[spec.event_column], day):
                    detail = f"{spec.event_column} not on {day}"
                    rejects.append((line, Reject(str(line), "outside_file_day", detail, chunk.raw(i))))
                    continue
                key = tuple(row[spec.rename.get(k, k)] for k in spec.key)
                if key in seen:
                    parsed.duplicates += 1
                    continue
                seen.add(key)
                rows.append(row | {"_ingest_date": day, "_source_file": source_file, "_loaded_at": loaded_at})
    parsed.rejects = [r for _, r in sorted(rejects, key=lambda r: r[0])]
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


def _reading_row(base: dict[str, Any], ts: Any, reading: Any) -> dict[str, Any]:
    """One reading of a message as a row; raises ``_BadValue`` with the shared reason code."""
    row: dict[str, Any] = {}
    for key, value in base.items():
        try:
            row[key] = _IOT_COERCE[key](value) if key in _IOT_COERCE and value is not None else value
        except (ValueError, TypeError, OverflowError) as exc:
            raise _BadValue("bad_number", f"{key} {value!r}: {exc}") from None
    try:
        row["reading_ts"] = _ts(ts)
    except (ValueError, TypeError) as exc:
        raise _BadValue("bad_timestamp", f"ts {ts!r}: {exc}") from None
    if not isinstance(reading, dict) or reading.get("sensor") is None or reading.get("value") is None:
        raise _BadValue("missing_field", f"a reading needs sensor and value, got {reading!r}"[:200])
    row["sensor"] = str(reading["sensor"])
    try:
        row["value"] = _float(reading["value"])
    except (ValueError, TypeError) as exc:
        raise _BadValue("bad_number", f"value {reading['value']!r}: {exc}") from None
    return row


def parse_iot(data: bytes, *, day: date, source_file: str, loaded_at: datetime) -> Parsed:
    """Flatten JSON-lines messages into one row per reading; unknown top-level or device fields become
    new columns (schema drift), typed from their values.

    ``input`` counts readings (a message that cannot be read counts as one): a corrupt line is
    ``bad_json`` (``bad_encoding`` when neither UTF-8 nor cp1252), a message without device id, ts or
    readings, or a reading without sensor or value, ``missing_field``; a value that is not a number
    ``bad_number``, a ts that is not ISO 8601 ``bad_timestamp``; a reading outside the file's day
    ``outside_file_day``; re-sent readings are duplicates.

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
    # JSON lines are not delimited text: this path keeps its own line loop for now, but decodes each
    # line as the platform reader decodes a record (UTF-8, else cp1252, else bad_encoding).
    for line_no, raw_line in enumerate(data.splitlines(), start=1):
        if not raw_line.strip():
            continue
        try:
            line = decode_record(raw_line)
        except UnicodeDecodeError:
            parsed.input += 1
            shown = raw_text(raw_line)[:1000]
            parsed.rejects.append(Reject(str(line_no), "bad_encoding", BAD_ENCODING, shown))
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
                row = _reading_row(base, ts, reading)
            except _BadValue as exc:
                parsed.rejects.append(Reject(position, exc.reason, str(exc), line[:1000]))
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
