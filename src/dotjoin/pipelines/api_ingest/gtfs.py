"""A pure reader and validator of GTFS static feeds (a zip file, zip bytes or a directory).

Feed-level defects (not a zip, a required file or column missing, an empty or UTF-16 file) raise
:class:`GtfsFeedError` whose ``reason`` names the defect. Row-level defects (bad cell counts, bad values,
duplicate keys, dangling references) reject that row into ``feed.rejected`` with a reason code, so the
pipeline quarantines it and loads the rest. Oddities that do not stop loading go to ``feed.warnings``.
The reason codes follow google/transitfeed's test-feed names where one exists, except where the
platform has a code for the same defect (:mod:`dotjoin.platform.quality.reasons`): a row with too many
cells, or without a required trailing cell, is ``ragged_row`` with the GTFS rule (``extra_row_cells``,
``missing_row_cells``) at the start of its detail.

Members are read with the platform's ``DelimitedReader`` (exact physical line numbers, also after a
quoted cell that spans lines) with every part of the dialect fixed (``STRICT_CSV``): nothing is
guessed, so no row is ever taken for a preamble, comment or footer line. Rows may omit trailing
optional cells (read as empty, one ``missing_row_cells`` warning per file); the reader's per-row field
count tells those from rows that lack a required cell. GTFS refuses what the reader would repair: a row
that is not UTF-8 is ``bad_utf8``, never decoded as cp1252.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotjoin.exceptions import DataError
from dotjoin.platform.files import DelimitedReader, InputFileError, RawReject
from dotjoin.platform.files.dialect import STRICT_CSV

REQUIRED = ("agency", "stops", "routes", "trips", "stop_times")
KNOWN_FILES = {
    *REQUIRED,
    *("calendar", "calendar_dates", "fare_attributes", "fare_rules", "shapes", "frequencies"),
    *("transfers", "feed_info", "levels", "pathways", "translations", "attributions", "timeframes"),
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "agency": ("agency_name", "agency_url", "agency_timezone"),
    "stops": ("stop_id", "stop_lat", "stop_lon"),
    "routes": ("route_id", "route_type"),
    "trips": ("route_id", "service_id", "trip_id"),
    "stop_times": ("trip_id", "stop_id", "stop_sequence", "arrival_time", "departure_time"),
    "calendar": ("service_id", *WEEKDAYS, "start_date", "end_date"),
    "calendar_dates": ("service_id", "date", "exception_type"),
}
KNOWN_COLUMNS: dict[str, set[str]] = {
    "agency": {"agency_id", "agency_phone", "agency_lang", "agency_fare_url", "agency_email"},
    "stops": {"stop_name", "stop_desc", "stop_code", "zone_id", "stop_url", "location_type"}
    | {
        "parent_station",
        "stop_timezone",
        "wheelchair_boarding",
        "level_id",
        "platform_code",
        "tts_stop_name",
    },
    "routes": {"agency_id", "route_short_name", "route_long_name", "route_desc", "route_url", "route_color"}
    | {"route_text_color", "route_sort_order", "continuous_pickup", "continuous_drop_off", "network_id"},
    "trips": {"trip_headsign", "trip_short_name", "direction_id", "block_id", "shape_id"}
    | {"wheelchair_accessible", "bikes_allowed"},
    "stop_times": {"stop_headsign", "pickup_type", "drop_off_type", "shape_dist_traveled", "timepoint"}
    | {"continuous_pickup", "continuous_drop_off"},
}
TIME_RE = re.compile(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
DATE_RE = re.compile(r"^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")


class GtfsFeedError(DataError):
    """The feed cannot be loaded at all; ``reason`` is a code naming the defect."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"GTFS feed rejected ({reason}): {detail}")


@dataclass(frozen=True)
class Issue:
    file: str
    line: int  # 1-based line of the row (the header is line 1), 0 for the whole file
    reason: str
    detail: str
    raw: str | None = None


@dataclass
class GtfsFeed:
    """Valid rows per table (``{column: text}``), plus rejected rows and warnings."""

    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    rejected: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def parse_time(text: str) -> int:
    """``H:MM:SS`` (hours may pass 24) -> seconds after service-day noon minus 12h.

    >>> parse_time("6:05:00"), parse_time("25:00:00")
    (21900, 90000)
    """
    match = TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"bad time {text!r} (want H:MM:SS)")
    h, m, s = (int(g) for g in match.groups())
    return h * 3600 + m * 60 + s


def _read_members(source: Path | bytes) -> dict[str, bytes]:
    if isinstance(source, Path) and source.is_dir():
        return {p.name: p.read_bytes() for p in source.iterdir() if p.is_file() and p.suffix == ".txt"}
    data = source if isinstance(source, bytes) else source.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {Path(n).name: zf.read(n) for n in zf.namelist() if n.endswith(".txt")}
    except zipfile.BadZipFile as exc:
        raise GtfsFeedError("not_a_gtfs_feed", f"not a zip file or feed directory ({exc})") from exc


def _check_bytes(name: str, data: bytes, feed: GtfsFeed) -> bytes:
    """Refuse UTF-16, warn about a BOM (returned without it) and mixed line endings."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GtfsFeedError("utf16", f"{name} is UTF-16; GTFS files must be UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        feed.warnings.append(Issue(name, 0, "utf8bom", "file starts with a UTF-8 byte-order mark"))
        data = data[3:]
    if b"\r\n" in data and re.search(rb"(?<!\r)\n", data):
        feed.warnings.append(Issue(name, 0, "bad_eol", "mixed CRLF and LF line endings"))
    return data


def _blank_header(header: tuple[str, ...]) -> bool:
    """No header names at all (the reader names blank ones ``column_<n>``)."""
    return all(h == f"column_{i + 1}" for i, h in enumerate(header))


def _reader_issue(name: str, reject: RawReject, width: int) -> Issue | None:
    """A record the reader rejected, under the GTFS rule; None for a row of empty cells (skipped)."""
    if reject.reason == "contains_null" or (reject.reason == "bad_encoding" and "\x00" in reject.raw):
        return Issue(name, reject.line, "contains_null", "the row contains a NUL byte", reject.raw)
    if reject.reason == "bad_encoding":
        return Issue(name, reject.line, "bad_utf8", "the row is not valid UTF-8", reject.raw)
    if not reject.raw.replace(",", "").replace('"', "").strip():
        return None
    detail = reject.detail
    if reject.fields > width:  # the shared code for a wrong field count; the GTFS rule is in the detail
        detail = f"extra_row_cells: {reject.fields} cells, header has {width}"
    return Issue(name, reject.line, reject.reason, detail, reject.raw)


def _rows(name: str, data: bytes, feed: GtfsFeed) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the ``(physical line, {column: stripped cell})`` rows of one member; rows that
    cannot be read go to ``feed.rejected``, in line order."""
    table = name.removesuffix(".txt")
    try:
        reader = DelimitedReader(Path(name), data=data, options=STRICT_CSV, encoding="utf-8", repair=False)
    except InputFileError as exc:
        raise GtfsFeedError("not_a_gtfs_feed", str(exc)) from exc
    header = list(reader.header_fields)
    if not header or _blank_header(reader.header_fields):
        reader.close()
        raise GtfsFeedError("empty_file", f"{name} is empty (no header row)")
    missing = [c for c in REQUIRED_COLUMNS.get(table, ()) if c not in header]
    if missing:
        reader.close()
        reason = "missing_weekday_column" if set(missing) & set(WEEKDAYS) else "missing_column"
        raise GtfsFeedError(reason, f"{name} has no column {', '.join(missing)}")
    unknown = [c for c in header if table in KNOWN_COLUMNS and c not in KNOWN_COLUMNS[table]]
    unknown = [c for c in unknown if c not in REQUIRED_COLUMNS.get(table, ())]
    if unknown:
        feed.warnings.append(
            Issue(name, 1, "unrecognized_columns", f"unknown column(s) {', '.join(unknown)}")
        )
    required = set(REQUIRED_COLUMNS.get(table, ()))
    rows: list[tuple[int, dict[str, str]]] = []
    rejected: list[Issue] = []
    short = 0
    try:
        with reader:
            for chunk in reader:
                rejected += filter(None, (_reader_issue(name, r, len(header)) for r in chunk.rejected))
                assert chunk.fields is not None
                values = zip(*(chunk.table.column(h).to_pylist() for h in header), strict=True)
                lines, fields = chunk.line.tolist(), chunk.fields.tolist()
                for i, (line, count, cells) in enumerate(zip(lines, fields, values, strict=True)):
                    if not "".join(cells).strip():
                        continue  # a row of empty cells
                    if count < len(header):
                        lost = [c for c in header[count:] if c in required]
                        if lost:  # the shared code for a wrong field count; the GTFS rule is in the detail
                            detail = (
                                f"missing_row_cells: {count} cells, header has {len(header)}: no {lost[0]}"
                            )
                            rejected.append(Issue(name, line, "ragged_row", detail, chunk.raw(i)))
                            continue
                        short += 1  # trailing optional cells left out: common in old feeds, read as empty
                    rows.append((line, dict(zip(header, map(str.strip, cells), strict=True))))
    except InputFileError as exc:  # a quote that never closes
        raise GtfsFeedError("not_a_gtfs_feed", str(exc)) from exc
    feed.rejected += sorted(rejected, key=lambda issue: issue.line)
    if short:
        feed.warnings.append(
            Issue(name, 0, "missing_row_cells", f"{short} row(s) omit trailing optional cells, read as empty")
        )
    if reader.repeated_headers:  # a concatenated file: the reader skips the header's repeats
        detail = f"{reader.repeated_headers} repeat(s) of the header row, skipped"
        feed.warnings.append(Issue(name, 0, "repeated_header", detail))
    return header, rows


Check = Callable[[dict[str, str]], tuple[str, str] | None]


def _keep(
    feed: GtfsFeed,
    table: str,
    rows: list[tuple[int, dict[str, str]]],
    check: Check,
    key: tuple[str, ...] = (),
) -> list[dict[str, str]]:
    kept, seen = [], set()
    dup_reason = {"trips": "duplicate_trip_id", "routes": "duplicate_route_id", "stops": "duplicate_stop_id"}
    dup_reason |= {"stop_times": "duplicate_stop_sequence", "calendar": "duplicate_schedule_id"}
    for line, row in rows:
        problem = check(row)
        if problem is None and key:
            k = tuple(row.get(c, "") for c in key)
            if k in seen:
                problem = (dup_reason.get(table, "duplicate_key"), f"{'/'.join(key)} {'/'.join(k)} repeats")
            seen.add(k)
        if problem:
            feed.rejected.append(Issue(f"{table}.txt", line, problem[0], problem[1], ",".join(row.values())))
        else:
            kept.append(row)
    return kept


def _float_in(text: str, low: float, high: float) -> bool:
    try:
        return low <= float(text) <= high
    except ValueError:
        return False


def read_feed(source: Path | bytes) -> GtfsFeed:
    """Read and validate a GTFS feed.

    Raises:
        GtfsFeedError: the feed as a whole is unusable; ``reason`` names the defect.
    """
    members = _read_members(source)
    feed = GtfsFeed()
    for name in sorted(members):
        if name.removesuffix(".txt") not in KNOWN_FILES:
            feed.warnings.append(Issue(name, 0, "unknown_file", f"{name} is not a GTFS file"))
    for table in REQUIRED:
        if f"{table}.txt" not in members:
            raise GtfsFeedError(f"missing_{table}", f"the feed has no {table}.txt")
    if "calendar.txt" not in members and "calendar_dates.txt" not in members:
        raise GtfsFeedError("missing_calendar", "the feed has neither calendar.txt nor calendar_dates.txt")
    raw: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for table in (*REQUIRED, "calendar", "calendar_dates"):
        name = f"{table}.txt"
        if name in members:
            raw[table] = _rows(name, _check_bytes(name, members[name], feed), feed)[1]

    agencies = _keep(
        feed,
        "agency",
        raw["agency"],
        lambda r: None if r["agency_name"] else ("missing_value", "no agency_name"),
    )
    agency_ids = {a.get("agency_id", "") for a in agencies}
    if len(agencies) > 1 and "" in agency_ids:
        raise GtfsFeedError("invalid_agency_ids", "several agencies, not all with an agency_id")
    stops = _keep(feed, "stops", raw["stops"], _check_stop, ("stop_id",))
    routes = _keep(feed, "routes", raw["routes"], _route_check(agency_ids), ("route_id",))
    calendar = _keep(feed, "calendar", raw.get("calendar", []), _check_calendar, ("service_id",))
    dates = _keep(feed, "calendar_dates", raw.get("calendar_dates", []), _check_calendar_date)
    services = {c["service_id"] for c in calendar} | {d["service_id"] for d in dates}
    route_ids = {r["route_id"] for r in routes}
    trips = _keep(feed, "trips", raw["trips"], _trip_check(route_ids, services), ("trip_id",))
    stop_ids, trip_ids = {s["stop_id"] for s in stops}, {t["trip_id"] for t in trips}
    stop_times = _keep(
        feed,
        "stop_times",
        raw["stop_times"],
        _stop_time_check(trip_ids, stop_ids),
        ("trip_id", "stop_sequence"),
    )
    _check_endpoints(feed, stop_times)
    used = {st["stop_id"] for st in stop_times}
    for stop in stops:
        if stop["stop_id"] not in used and stop.get("location_type", "") in ("", "0"):
            feed.warnings.append(
                Issue("stops.txt", 0, "unused_stop", f"stop {stop['stop_id']} has no stop_times")
            )
    _name_warnings(feed, stops, routes)
    feed.tables = {
        "agency": agencies,
        "stops": stops,
        "routes": routes,
        "trips": trips,
        "stop_times": stop_times,
        "calendar": calendar,
        "calendar_dates": dates,
    }
    return feed


def _check_stop(row: dict[str, str]) -> tuple[str, str] | None:
    if not row["stop_id"]:
        return "missing_value", "empty stop_id"
    if row.get("location_type", "") in ("", "0", "1") and not (
        _float_in(row["stop_lat"], -90, 90) and _float_in(row["stop_lon"], -180, 180)
    ):
        return "bad_coordinates", f"stop_lat/stop_lon {row['stop_lat']!r}/{row['stop_lon']!r}"
    return None


def _route_check(agency_ids: set[str]) -> Check:
    def check(row: dict[str, str]) -> tuple[str, str] | None:
        if not row["route_id"]:
            return "missing_value", "empty route_id"
        if not (row.get("route_short_name") or row.get("route_long_name")):
            return "missing_value", "neither route_short_name nor route_long_name"
        agency = row.get("agency_id", "")
        if (agency and agency not in agency_ids) or (not agency and len(agency_ids - {""}) > 1):
            return "invalid_route_agency", f"agency_id {agency!r} is not in agency.txt"
        if not row["route_type"].isdigit():
            return "bad_route_type", f"route_type {row['route_type']!r}"
        return None

    return check


def _check_calendar(row: dict[str, str]) -> tuple[str, str] | None:
    for col in ("start_date", "end_date"):
        if not DATE_RE.match(row[col]):
            return "bad_date_format", f"{col} {row[col]!r} is not YYYYMMDD"
    if any(row[d] not in ("0", "1") for d in WEEKDAYS):
        return "bad_weekday", "weekday columns must be 0 or 1"
    return None


def _check_calendar_date(row: dict[str, str]) -> tuple[str, str] | None:
    if not DATE_RE.match(row["date"]):
        return "bad_date_format", f"date {row['date']!r} is not YYYYMMDD"
    if row["exception_type"] not in ("1", "2"):
        return "bad_exception_type", f"exception_type {row['exception_type']!r}"
    return None


def _trip_check(route_ids: set[str], services: set[str]) -> Check:
    def check(row: dict[str, str]) -> tuple[str, str] | None:
        if not row["trip_id"]:
            return "missing_value", "empty trip_id"
        if row["route_id"] not in route_ids:
            return "undefined_route", f"route_id {row['route_id']!r} is not in routes.txt"
        if row["service_id"] not in services:
            return "undefined_service", f"service_id {row['service_id']!r} is not in calendar(_dates).txt"
        return None

    return check


def _stop_time_check(trip_ids: set[str], stop_ids: set[str]) -> Check:
    def check(row: dict[str, str]) -> tuple[str, str] | None:
        seq = row["stop_sequence"]
        if seq.startswith("-"):
            return "negative_stop_sequence", f"stop_sequence {seq}"
        if not seq.isdigit():
            return "bad_stop_sequence", f"stop_sequence {seq!r} is not a non-negative integer"
        if row["trip_id"] not in trip_ids:
            return "undefined_trip", f"trip_id {row['trip_id']!r} is not in trips.txt"
        if row["stop_id"] not in stop_ids:
            return "undefined_stop", f"stop_id {row['stop_id']!r} is not in stops.txt"
        arrival, departure = row["arrival_time"], row["departure_time"]
        if arrival and not departure:
            return "missing_departure_time", "arrival_time without departure_time"
        if departure and not arrival:
            return "missing_arrival_time", "departure_time without arrival_time"
        for col in ("arrival_time", "departure_time"):
            if row[col] and not TIME_RE.match(row[col]):
                return "bad_time_format", f"{col} {row[col]!r} is not H:MM:SS"
        return None

    return check


def _check_endpoints(feed: GtfsFeed, stop_times: list[dict[str, str]]) -> None:
    """First and last stop of every trip need times; otherwise the whole trip's rows are rejected."""
    by_trip: dict[str, list[dict[str, str]]] = {}
    for st in stop_times:
        by_trip.setdefault(st["trip_id"], []).append(st)
    bad = set()
    for trip_id, rows in by_trip.items():
        rows.sort(key=lambda r: int(r["stop_sequence"]))
        if not (rows[0]["arrival_time"] and rows[-1]["arrival_time"]):
            bad.add(trip_id)
    if bad:
        kept = [st for st in stop_times if st["trip_id"] not in bad]
        for st in stop_times:
            if st["trip_id"] in bad:
                feed.rejected.append(
                    Issue(
                        "stop_times.txt",
                        0,
                        "missing_endpoint_times",
                        f"trip {st['trip_id']} has no time at its first or last stop",
                        ",".join(st.values()),
                    )
                )
        stop_times[:] = kept


def _name_warnings(feed: GtfsFeed, stops: list[dict[str, str]], routes: list[dict[str, str]]) -> None:
    cells: dict[tuple[int, int], list[tuple[str, float, float]]] = {}
    for stop in stops:
        if stop.get("location_type", "") not in ("", "0"):
            continue
        lat, lon = float(stop["stop_lat"]), float(stop["stop_lon"])
        cell = (round(lat * 1000), round(lon * 1000))
        for dlat in (-1, 0, 1):
            for dlon in (-1, 0, 1):
                for other, olat, olon in cells.get((cell[0] + dlat, cell[1] + dlon), []):
                    if abs(lat - olat) < 2e-5 and abs(lon - olon) < 2e-5:  # about 2 m
                        detail = f"stops {other} and {stop['stop_id']} are less than 2 m apart"
                        feed.warnings.append(Issue("stops.txt", 0, "duplicate_stop", detail))
        cells.setdefault(cell, []).append((stop["stop_id"], lat, lon))
    names: dict[tuple[str, str], str] = {}
    for route in routes:
        short, long_ = route.get("route_short_name", ""), route.get("route_long_name", "")
        if short and short == long_:
            detail = f"route {route['route_id']} has short name == long name"
            feed.warnings.append(Issue("routes.txt", 0, "same_short_long_name", detail))
        if (short, long_) in names:
            detail = f"routes {names[(short, long_)]} and {route['route_id']} share their names"
            feed.warnings.append(Issue("routes.txt", 0, "repeated_route_name", detail))
        names.setdefault((short, long_), route["route_id"])


def summary(feed: GtfsFeed) -> dict[str, Any]:
    """Counts per table and per reason, for logs and run reports."""
    reasons: dict[str, int] = {}
    for issue in feed.rejected:
        reasons[issue.reason] = reasons.get(issue.reason, 0) + 1
    return {"rows": {t: len(r) for t, r in feed.tables.items()}, "rejected": reasons}
