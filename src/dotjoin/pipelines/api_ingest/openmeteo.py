"""Pure parsers of Open-Meteo answers: JSON (iso8601 or unixtime; one location or a list) and CSV.

Both give :class:`WeatherDoc` objects whose hours are UTC. Open-Meteo writes iso8601 times in the
location's local time (``utc_offset_seconds``) and unixtime in UTC; both are normalised here.

A CSV answer is a document of several tables (the location block, then current/hourly/daily/monthly
sections, each with its own header, separated by blank lines), while the platform's ``DelimitedReader``
reads one table per file: the answer is cut into its sections at blank lines (Open-Meteo never quotes a
line break), and the reader reads each one with the dialect fixed (``STRICT_CSV``): short rows keep
the number of cells they had, wider ones are rejected.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dotjoin.exceptions import DataError
from dotjoin.platform.files import DelimitedReader, InputFileError, RawReject
from dotjoin.platform.files.dialect import STRICT_CSV

#: the hourly variables we store, in column order.
VARIABLES: tuple[str, ...] = ("temperature_2m", "relative_humidity_2m", "precipitation", "wind_speed_10m")
#: older Open-Meteo names still found in answers -> current name.
ALIASES: dict[str, str] = {"windspeed_10m": "wind_speed_10m", "relativehumidity_2m": "relative_humidity_2m"}


class WeatherFormatError(DataError):
    """An Open-Meteo answer we cannot read; the message names what is wrong."""


@dataclass(frozen=True)
class WeatherDoc:
    """One location's hourly series, in the order the answer gave it (duplicates kept)."""

    latitude: float
    longitude: float
    utc_offset_seconds: int
    timezone: str
    hours: tuple[datetime, ...]
    values: dict[str, tuple[float | None, ...]]
    units: dict[str, str]


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _to_utc(value: Any, unixtime: bool, offset_s: int) -> datetime:
    """An Open-Meteo time as an aware UTC datetime.

    >>> _to_utc("2022-07-12T01:00", False, 3600)
    datetime.datetime(2022, 7, 12, 0, 0, tzinfo=datetime.timezone.utc)
    >>> _to_utc(1657584000, True, 3600)
    datetime.datetime(2022, 7, 12, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if unixtime:
        return datetime.fromtimestamp(int(value), tz=UTC)
    local = datetime.fromisoformat(str(value))
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return (local - timedelta(seconds=offset_s)).replace(tzinfo=UTC)


def _doc(meta: dict[str, Any], hourly: dict[str, Sequence[Any]], units: dict[str, str]) -> WeatherDoc:
    try:
        offset = int(meta.get("utc_offset_seconds") or 0)
        times = hourly["time"]
        unixtime = units.get("time") == "unixtime" or (bool(times) and isinstance(times[0], int | float))
        hours = tuple(_to_utc(t, unixtime, offset) for t in times)
        values: dict[str, tuple[float | None, ...]] = {}
        for name, series in hourly.items():
            canonical = ALIASES.get(name, name)
            if name == "time" or canonical not in VARIABLES:
                continue
            if len(series) != len(times):
                raise WeatherFormatError(
                    f"hourly.{name} has {len(series)} values for {len(times)} times (truncated answer?)"
                )
            values[canonical] = tuple(_number(v) for v in series)
        return WeatherDoc(
            latitude=float(meta["latitude"]),
            longitude=float(meta["longitude"]),
            utc_offset_seconds=offset,
            timezone=str(meta.get("timezone") or "GMT"),
            hours=hours,
            values=values,
            units={ALIASES.get(k, k): str(v) for k, v in units.items()},
        )
    except WeatherFormatError:
        raise
    except KeyError as exc:
        raise WeatherFormatError(f"Open-Meteo answer without {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise WeatherFormatError(f"Open-Meteo answer with a bad value: {exc}") from exc


def parse_json(payload: str | bytes | dict[str, Any] | list[Any]) -> list[WeatherDoc]:
    """Parse an Open-Meteo JSON answer (one object, or a list for several locations).

    >>> text = ('{"latitude":41.0,"longitude":2.0,"utc_offset_seconds":0,"timezone":"GMT",'
    ...         '"hourly_units":{"time":"iso8601","temperature_2m":"°C"},'
    ...         '"hourly":{"time":["2022-07-12T00:00"],"temperature_2m":[20.5]}}')
    >>> doc = parse_json(text)[0]
    >>> doc.hours[0].isoformat(), doc.values["temperature_2m"]
    ('2022-07-12T00:00:00+00:00', (20.5,))

    Raises:
        WeatherFormatError: not JSON, an API error object, or missing/mismatched fields.
    """
    data: Any = payload
    if isinstance(payload, str | bytes):
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise WeatherFormatError(f"Open-Meteo answer is not valid JSON (truncated?): {exc}") from exc
    items = data if isinstance(data, list) else [data]
    docs = []
    for item in items:
        if not isinstance(item, dict):
            raise WeatherFormatError(f"Open-Meteo answer item is a {type(item).__name__}, not an object")
        if item.get("error"):
            raise WeatherFormatError(f"Open-Meteo error: {item.get('reason', 'no reason given')}")
        if "hourly" not in item:
            raise WeatherFormatError("Open-Meteo answer has no 'hourly' block (ask with hourly=...)")
        docs.append(_doc(item, item["hourly"], dict(item.get("hourly_units") or {})))
    return docs


@dataclass(frozen=True)
class _Section:
    """One table of a CSV answer: its header, each row (padded to the header's width) with the number of
    cells it had, and the rows the reader rejected (more cells than the header)."""

    header: list[str]
    rows: list[list[str]]
    cells: list[int]
    rejected: list[RawReject]

    def check(self, *, short: bool = False) -> None:
        """Every row has the header's number of cells (``short``: or fewer); else WeatherFormatError."""
        width = len(self.header)
        counts = [n for n in self.cells if n > width or (n < width and not short)]
        for reject in self.rejected:
            if not reject.fields:  # not split: a NUL byte, quoting the csv module cannot split
                raise WeatherFormatError(
                    f"Open-Meteo CSV row unreadable ({reject.detail}): {reject.raw[:80]!r}"
                )
            counts.append(reject.fields)
        if counts:
            raise WeatherFormatError(f"Open-Meteo CSV row has {counts[0]} cells, header has {width}")


def _section(text: str) -> _Section:
    try:
        with DelimitedReader(
            Path("open-meteo.csv"),
            data=text.encode(errors="replace"),
            options=STRICT_CSV,
            encoding="utf-8",
        ) as reader:
            section = _Section(list(reader.header_fields), [], [], [])
            for chunk in reader:
                assert chunk.fields is not None
                section.rows.extend(map(list, zip(*chunk.table.to_pydict().values(), strict=True)))
                section.cells.extend(chunk.fields.tolist())
                section.rejected.extend(chunk.rejected)
    except InputFileError as exc:  # e.g. a quote never closed
        raise WeatherFormatError(f"Open-Meteo CSV unreadable: {exc}") from exc
    return section


def _sections(text: str) -> list[_Section]:
    """The sections of a CSV answer: its lines cut at blank ones (or ones of empty cells)."""
    blocks: list[list[str]] = [[]]
    for line in io.StringIO(text.lstrip("\ufeff"), newline=""):
        if not line.replace(",", "").replace('"', "").strip():
            if blocks[-1]:
                blocks.append([])
            continue
        blocks[-1].append(line)
    return [_section("".join(block)) for block in blocks if block]


def _is_hourly(times: Sequence[str]) -> bool:
    if len(times) < 2:
        return False
    try:
        stamps = sorted(
            int(t) if t.lstrip("-").isdigit() else datetime.fromisoformat(t).timestamp() for t in times
        )
    except ValueError:
        return False
    steps = {b - a for a, b in itertools.pairwise(stamps) if b > a}
    return min(steps, default=0) == 3600


def parse_csv(text: str) -> list[WeatherDoc]:
    """Parse Open-Meteo CSV: a location section, then current/hourly/daily/monthly sections.

    Works with and without the location header section (``format=csv&csv_header=false``) and with the
    ``location_id`` column of multi-location answers. Units come from ``name (unit)`` headers.

    >>> text = "time,temperature_2m (°C)\\n1657584000,20.0\\n1657587600,21.0\\n"
    >>> [d.values["temperature_2m"] for d in parse_csv(text)]
    [(20.0, 21.0)]
    """
    sections = _sections(text)
    metas: dict[str, dict[str, Any]] = {}
    hourly_section: _Section | None = None
    for section in sections:
        header = section.header
        if "latitude" in header:
            section.check(short=True)
            for row, cells in zip(section.rows, section.cells, strict=True):
                meta = dict(zip(header, row[:cells], strict=False))
                metas[meta.get("location_id", "0")] = meta
        elif "time" in header and _is_hourly([r[header.index("time")] for r in section.rows]):
            hourly_section = section
    if hourly_section is None:
        raise WeatherFormatError("Open-Meteo CSV has no hourly section")
    hourly_section.check()
    names, units = [], {}
    for col in hourly_section.header:
        name, _, unit = col.partition(" (")
        names.append(name)
        if unit:
            units[ALIASES.get(name, name)] = unit.rstrip(")")
    by_location: dict[str, dict[str, list[Any]]] = {}
    for row in hourly_section.rows:
        record = dict(zip(names, row, strict=True))
        series = by_location.setdefault(record.pop("location_id", "0"), {})
        for name, value in record.items():
            series.setdefault(name, []).append(value)
    docs = []
    for loc, series in by_location.items():
        meta = metas.get(loc, {"latitude": "nan", "longitude": "nan", "utc_offset_seconds": 0})
        unixtime = all(t.lstrip("-").isdigit() for t in series["time"])
        units["time"] = "unixtime" if unixtime else "iso8601"
        converted: dict[str, Sequence[Any]] = {
            k: ([int(t) for t in v] if k == "time" and unixtime else v) for k, v in series.items()
        }
        docs.append(_doc(meta, converted, dict(units)))
    return docs


@dataclass(frozen=True)
class HourlyRows:
    """One city's rows: sorted, one per hour. Identical repeats are ``duplicates``; hours given with
    different values are all ``quarantined`` (their occurrences) and listed in ``conflicts``."""

    rows: list[dict[str, Any]]
    total: int
    duplicates: int
    quarantined: int
    conflicts: dict[datetime, list[dict[str, Any]]]


def normalise(doc: WeatherDoc, city: str, *, keep: Iterable[datetime] | None = None) -> HourlyRows:
    """Sort by hour, collapse identical repeats (counted), set aside hours with conflicting repeats.

    Args:
        doc: a parsed answer.
        city: the city the answer is for.
        keep: if given, only these hours are kept (the requested window).

    >>> h0, h1 = datetime(2024, 1, 1, 0, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC)
    >>> d = WeatherDoc(0, 0, 0, "GMT", (h1, h0, h1), {"temperature_2m": (2.0, 1.0, 2.0)}, {})
    >>> r = normalise(d, "X")
    >>> [row["temperature_2m"] for row in r.rows], r.total, r.duplicates, r.quarantined
    ([1.0, 2.0], 3, 1, 0)
    """
    wanted = set(keep) if keep is not None else None
    by_hour: dict[datetime, list[dict[str, Any]]] = {}
    total = 0
    for i, hour in enumerate(doc.hours):
        if wanted is not None and hour not in wanted:
            continue
        total += 1
        row: dict[str, Any] = {"city": city, "hour": hour}
        for var in VARIABLES:
            series = doc.values.get(var)
            row[var] = series[i] if series is not None else None
        by_hour.setdefault(hour, []).append(row)
    rows, conflicts = [], {}
    duplicates = quarantined = 0
    for hour in sorted(by_hour):
        versions = by_hour[hour]
        if all(v == versions[0] for v in versions):
            rows.append(versions[0])
            duplicates += len(versions) - 1
        else:
            conflicts[hour] = versions
            quarantined += len(versions)
    return HourlyRows(rows, total, duplicates, quarantined, conflicts)
