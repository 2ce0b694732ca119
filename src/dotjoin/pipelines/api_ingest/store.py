"""The normalized schema and the idempotent write path: content hash -> compare -> upsert changed rows.

Every data row carries ``content_hash`` (of its non-key values), ``ingested_at`` (first written) and
``updated_at`` (last changed). :func:`upsert_hashed` compares a batch with the stored hashes and hands
only new and changed rows to the warehouse's upsert: a re-run of the same data writes nothing, and a
changed upstream value rewrites that row only (``updated_at`` moves, ``ingested_at`` stays).
The cursor (``ingest_state``) is written by the caller inside the same transaction as the data.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.platform.http import FailedRequest
from dotjoin.platform.warehouse.base import UpsertResult, Warehouse

logger = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")
AUDIT = [pa.field("content_hash", pa.string()), pa.field("ingested_at", TS), pa.field("updated_at", TS)]


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: tuple[str, ...]
    fields: tuple[pa.Field, ...]  # key and value columns, without the audit columns

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([*self.fields, *AUDIT])

    @property
    def data_schema(self) -> pa.Schema:
        return pa.schema(list(self.fields))

    @property
    def values(self) -> list[str]:
        return [f.name for f in self.fields if f.name not in self.key]


def _f(name: str, kind: pa.DataType) -> pa.Field:
    return pa.field(name, kind)


S, F, I32 = pa.string(), pa.float64(), pa.int32()
_TYPES: dict[str, pa.DataType] = {"s": S, "f": F, "i": I32, "ts": TS, "d": pa.date32()}


def _spec(name: str, key: tuple[str, ...], columns: str) -> TableSpec:
    """A table from ``"col:type ..."`` (types: s string, f float64, i int32, ts timestamp UTC, d date)."""
    fields = tuple(_f(c, _TYPES[t]) for c, t in (item.split(":") for item in columns.split()))
    return TableSpec(name, key, fields)


CITIES = _spec("cities", ("city",), "city:s latitude:f longitude:f")
WEATHER_HOURLY = _spec(
    "weather_hourly",
    ("city", "hour"),
    "city:s hour:ts temperature_2m:f relative_humidity_2m:f precipitation:f wind_speed_10m:f",
)
STOPS = _spec(
    "stops",
    ("feed", "stop_id"),
    "feed:s stop_id:s stop_name:s stop_lat:f stop_lon:f location_type:i parent_station:s",
)
ROUTES = _spec(
    "routes",
    ("feed", "route_id"),
    "feed:s route_id:s agency_id:s route_short_name:s route_long_name:s route_type:i",
)
TRIPS = _spec(
    "trips", ("feed", "trip_id"), "feed:s trip_id:s route_id:s service_id:s trip_headsign:s direction_id:i"
)
STOP_TIMES = _spec(
    "stop_times",
    ("feed", "trip_id", "stop_sequence"),
    "feed:s trip_id:s stop_sequence:i stop_id:s arrival_s:i departure_s:i",
)
ARRIVALS = _spec(
    "arrivals",
    ("feed", "trip_id", "stop_id", "service_date"),
    "feed:s trip_id:s stop_id:s service_date:d stop_sequence:i arrival_time:ts delay_s:i",
)
STATE_TABLE = "ingest_state"
STATE_SCHEMA = pa.schema(
    [
        _f("source", S),
        _f("scope", S),
        _f("first_complete_day", pa.date32()),
        _f("last_complete_day", pa.date32()),
        _f("updated_at", TS),
    ]
)
ERRORS_TABLE = "ingest_errors"
ERRORS_SCHEMA = pa.schema(
    [
        _f("source", S),
        _f("request", S),
        _f("status", I32),
        _f("attempt", I32),
        _f("error", S),
        _f("body_excerpt", S),
        _f("failed_at", TS),
        _f("will_retry", pa.bool_()),
        _f("run_id", S),
    ]
)
ALL_TABLES = (CITIES, WEATHER_HOURLY, STOPS, ROUTES, TRIPS, STOP_TIMES, ARRIVALS)


def content_hash(values: Sequence[Any]) -> str:
    """A stable hex digest of a row's values (None, floats, dates and text all have one spelling).

    >>> content_hash([1.5, None, "a"]) == content_hash([1.5, None, "a"])
    True
    >>> content_hash([1.5]) != content_hash([1.50001])
    True
    """
    text = "\x1f".join(
        "\x00" if v is None else (v.isoformat() if hasattr(v, "isoformat") else repr(v)) for v in values
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def ensure_tables(wh: Warehouse, specs: Sequence[TableSpec] = ALL_TABLES) -> None:
    """Create the tables (primary key = the spec's key) if missing; an empty upsert does just that."""
    for spec in specs:
        if not wh.table_exists(spec.name):
            wh.upsert(spec.name, spec.schema.empty_table(), key=list(spec.key))
    if not wh.table_exists(STATE_TABLE):
        wh.upsert(STATE_TABLE, STATE_SCHEMA.empty_table(), key=["source", "scope"])
    if not wh.table_exists(ERRORS_TABLE):
        wh.load_arrow(ERRORS_TABLE, ERRORS_SCHEMA.empty_table())


def with_hashes(spec: TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows -> an Arrow table of the spec's data columns plus ``content_hash``."""
    table = pa.Table.from_pylist(rows, schema=spec.data_schema)
    values = spec.values
    hashes = [content_hash([row[v] for v in values]) for row in rows]
    return table.append_column("content_hash", pa.array(hashes, pa.string()))


def _keys_as_text(table: pa.Table, key: Sequence[str]) -> pa.Array:
    parts = [pc.cast(table.column(k), pa.string()) for k in key]
    if len(parts) == 1:
        return pc.fill_null(parts[0], "")
    return pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "\x1f")


def upsert_hashed(
    wh: Warehouse,
    spec: TableSpec,
    batch: pa.Table,
    *,
    scope_sql: str,
    scope_params: Sequence[Any],
    now: datetime | None = None,
) -> UpsertResult:
    """Write the new and changed rows of ``batch`` (from :func:`with_hashes`) into ``spec.name``.

    Args:
        scope_sql: a WHERE clause selecting the stored rows ``batch`` may collide with (e.g. its hours),
            so the comparison reads only those.
        scope_params: its ``$n`` parameters.
        now: the ``updated_at`` (and ``ingested_at`` of new rows) to stamp.
    """
    now = now or datetime.now(UTC)
    if batch.num_rows == 0:
        return UpsertResult(0, 0)
    key = list(spec.key)
    cols = ", ".join(f'"{c}"' for c in [*key, "content_hash", "ingested_at"])
    stored = wh.query(f'SELECT {cols} FROM "{spec.name}" WHERE {scope_sql}', list(scope_params))
    old_hash: dict[str, tuple[str, Any]] = {}
    if stored.num_rows:
        stored = stored.cast(pa.schema([*(spec.data_schema.field(k) for k in key), AUDIT[0], AUDIT[1]]))
        for k, h, t in zip(
            _keys_as_text(stored, key).to_pylist(),
            stored.column("content_hash").to_pylist(),
            stored.column("ingested_at").to_pylist(),
            strict=True,
        ):
            old_hash[k] = (h, t)
    keys = _keys_as_text(batch, key).to_pylist()
    hashes = batch.column("content_hash").to_pylist()
    take, ingested = [], []
    for i, (k, h) in enumerate(zip(keys, hashes, strict=True)):
        previous = old_hash.get(k)
        if previous is None:
            take.append(i)
            ingested.append(now)
        elif previous[0] != h:
            take.append(i)
            ingested.append(previous[1])
    if not take:
        return UpsertResult(0, 0)
    changed = batch.take(pa.array(take, pa.int64()))
    changed = changed.append_column("ingested_at", pa.array(ingested, TS))
    changed = changed.append_column("updated_at", pa.array([now] * len(take), TS))
    return wh.upsert(spec.name, changed.select(spec.schema.names), key=key)


def load_state(wh: Warehouse, source: str) -> dict[str, tuple[date, date]]:
    """``scope -> (first_complete_day, last_complete_day)`` of ``source``."""
    table = wh.query(
        f"SELECT scope, first_complete_day, last_complete_day FROM {STATE_TABLE} WHERE source = $1", [source]
    )
    return {r["scope"]: (r["first_complete_day"], r["last_complete_day"]) for r in table.to_pylist()}


def extend(state: tuple[date, date] | None, start: date, end: date) -> tuple[date, date] | None:
    """The contiguous complete interval after ``start..end`` completed; None if it is unchanged.

    >>> extend(None, date(2024, 1, 1), date(2024, 1, 3))
    (datetime.date(2024, 1, 1), datetime.date(2024, 1, 3))
    >>> extend((date(2024, 1, 1), date(2024, 1, 3)), date(2024, 1, 4), date(2024, 1, 9))
    (datetime.date(2024, 1, 1), datetime.date(2024, 1, 9))
    >>> extend((date(2024, 1, 1), date(2024, 1, 3)), date(2024, 2, 1), date(2024, 2, 2)) is None
    True
    """
    if state is None:
        return (start, end)
    first, last = state
    if start.toordinal() > last.toordinal() + 1 or end.toordinal() < first.toordinal() - 1:
        return None  # a gap would open: the cursor only ever covers contiguous complete days
    new = (min(first, start), max(last, end))
    return None if new == state else new


def write_state(wh: Warehouse, source: str, scope: str, interval: tuple[date, date], now: datetime) -> None:
    row = {"source": source, "scope": scope, "first_complete_day": interval[0]}
    row |= {"last_complete_day": interval[1], "updated_at": now}
    wh.upsert(STATE_TABLE, pa.Table.from_pylist([row], schema=STATE_SCHEMA), key=["source", "scope"])


def write_errors(wh: Warehouse, failures: Sequence[FailedRequest], run_id: str) -> int:
    """Append failed attempts to ``ingest_errors``."""
    if not failures:
        return 0
    rows = [
        {
            "source": f.source,
            "request": f"{f.method} {f.url}",
            "status": f.status,
            "attempt": f.attempt,
            "error": f.error,
            "body_excerpt": (f.body_excerpt or "").replace("\x00", "\\x00") or None,
            "failed_at": f.at,
            "will_retry": f.will_retry,
            "run_id": run_id,
        }
        for f in failures
    ]
    return wh.load_arrow(ERRORS_TABLE, pa.Table.from_pylist(rows, schema=ERRORS_SCHEMA))


def table_checksum(
    wh: Warehouse,
    spec: TableSpec,
    *,
    where: str = "TRUE",
    params: Sequence[Any] = (),
    audit_times: bool = True,
) -> str:
    """SHA-256 of the table's rows (optionally those ``where`` selects) in key order.

    With ``audit_times`` the ``ingested_at``/``updated_at`` columns count (byte-identical re-runs); without
    them two ingestions at different times of the same data compare equal.
    """
    names = spec.schema.names if audit_times else [*spec.data_schema.names, "content_hash"]
    order = ", ".join(f'"{k}"' for k in spec.key)
    cols = ", ".join(f'"{c}"' for c in names)
    table = wh.query(f'SELECT {cols} FROM "{spec.name}" WHERE {where} ORDER BY {order}', list(params))
    table = table.cast(pa.schema([spec.schema.field(n) for n in names]))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()
