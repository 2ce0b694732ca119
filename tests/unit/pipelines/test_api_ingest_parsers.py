"""Parsers of the API ingestion against real files nobody here wrote, and against the local server.

Open-Meteo answers: open-meteo/open-meteo output-format tests (CC BY 4.0). GTFS feeds:
google/transitfeed ``tests/data`` (Apache-2.0). GTFS-realtime: MobilityData/gtfs-realtime-bindings test
resources (Apache-2.0). See ../shared/data/SOURCES.md.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotjoin.pipelines.api_ingest.gtfs import GtfsFeedError, read_feed
from dotjoin.pipelines.api_ingest.gtfs_rt import RealtimeFormatError, parse_trip_updates
from dotjoin.pipelines.api_ingest.openmeteo import (
    WeatherFormatError,
    normalise,
    parse_csv,
    parse_json,
)
from dotjoin.simulate.sources.transit import TransitSource
from dotjoin.simulate.sources.weather import WeatherSource, build_response
from tests.conftest import require_shared_data

OPEN_METEO = [
    f"outputformat_0{i}_{k}"
    for i, k in enumerate(
        [
            "json.json",
            "jsonUnix.json",
            "csv.csv",
            "csvUnix.csv",
            "csvUnixNoHeader.csv",
            "json.json",
            "jsonUnix.json",
            "csv.csv",
            "csvUnix.csv",
        ],
        start=1,
    )
]


@pytest.mark.parametrize("name", OPEN_METEO)
def test_every_open_meteo_file_parses_to_the_same_48_utc_hours(name: str) -> None:
    path = require_shared_data(f"open_meteo/{name}")
    docs = parse_json(path.read_bytes()) if path.suffix == ".json" else parse_csv(path.read_text())
    assert len(docs) == (2 if name[14] in "6789" else 1)
    for doc in docs:
        rows = normalise(doc, "X").rows
        assert len(rows) == 48
        # iso8601 times are local (utc_offset_seconds 3600); unixtime is UTC: both give 00:00 UTC first
        assert rows[0]["hour"] == datetime(2022, 7, 12, 0, tzinfo=UTC)
        assert rows[-1]["hour"] == datetime(2022, 7, 13, 23, tzinfo=UTC)
        assert {r["temperature_2m"] for r in rows} == {20.0}
        assert {r["wind_speed_10m"] for r in rows} == {10.0}  # old name windspeed_10m, mapped


def test_an_open_meteo_csv_is_read_section_by_section() -> None:
    text = (
        "latitude,longitude,utc_offset_seconds,timezone\r\n"
        '52.5,13.4,3600,"Europe/Berlin"\r\n'
        "\r\n"
        "time, temperature_2m (°C) \r\n"
        "2024-01-01T01:00,1.5\r\n"
        "2024-01-01T02:00,2.5\r\n"
        "2024-01-01T03:00,3.5\r\n"
        ",,\r\n"  # a line of empty cells ends a section too
        "time,temperature_2m_max (°C)\r\n"
        "2024-01-01,3.0\r\n"
    )
    [doc] = parse_csv(text)
    assert (doc.latitude, doc.longitude, doc.timezone) == (52.5, 13.4, "Europe/Berlin")
    assert doc.hours == tuple(datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3))  # UTC+1 in the file
    assert doc.values == {"temperature_2m": (1.5, 2.5, 3.5)}
    assert doc.units == {"temperature_2m": "°C", "time": "iso8601"}
    for row, cells in (("2024-01-01T03:00", 1), ("2024-01-01T03:00,3.5,9", 3)):
        broken = text.replace("2024-01-01T03:00,3.5", row)
        with pytest.raises(
            WeatherFormatError, match=rf"^Open-Meteo CSV row has {cells} cells, header has 2$"
        ):
            parse_csv(broken)


def test_open_meteo_errors_name_the_problem() -> None:
    with pytest.raises(WeatherFormatError, match="not valid JSON"):
        parse_json(b'{"latitude": 1.0, "hourly": {"ti')
    with pytest.raises(WeatherFormatError, match="Open-Meteo error: Latitude must be in range"):
        parse_json(b'{"error": true, "reason": "Latitude must be in range of -90 to 90"}')
    with pytest.raises(WeatherFormatError, match="3 values for 2 times"):
        parse_json(b'{"latitude":1,"longitude":1,"hourly":{"time":[0,3600],"temperature_2m":[1,2,3]}}')


def test_the_local_server_answers_in_the_real_shape() -> None:
    real = require_shared_data("open_meteo/outputformat_01_json.json")
    import json

    ours = build_response(
        WeatherSource(1),
        latitude=41.0,
        longitude=2.0,
        start=date(2022, 7, 12),
        end=date(2022, 7, 13),
        variables=["temperature_2m"],
    )
    theirs = json.loads(real.read_text())
    shared = {
        "latitude",
        "longitude",
        "generationtime_ms",
        "utc_offset_seconds",
        "timezone",
        "timezone_abbreviation",
        "hourly_units",
        "hourly",
    }
    assert shared <= set(ours) and shared <= set(theirs)
    assert {k: type(theirs[k]) for k in shared} == {k: type(ours[k]) for k in shared}
    assert type(ours["hourly"]["time"][0]) is type(theirs["hourly"]["time"][0])
    assert len(ours["hourly"]["time"][0]) == len(theirs["hourly"]["time"][0])  # "YYYY-MM-DDTHH:MM"


# -- GTFS static ------------------------------------------------------------------------------------

#: folder -> the reason code its defect must produce (fatal error, quarantined row or warning).
EXPECTED_DEFECT = {
    "bad_date_format": "bad_date_format",
    "bad_eol.zip": "bad_eol",
    "bad_utf8": "bad_utf8",
    "contains_null": "contains_null",
    "duplicate_schedule_id": "duplicate_schedule_id",
    "duplicate_stop": "duplicate_stop",
    "duplicate_stop_sequence": "duplicate_stop_sequence",
    "empty_file": "empty_file",
    "extra_row_cells": "ragged_row",  # the shared code; the GTFS rule starts the detail
    "invalid_agency_ids": "invalid_agency_ids",
    "invalid_route_agency": "invalid_route_agency",
    "missing_agency": "missing_agency",
    "missing_calendar": "missing_calendar",
    "missing_column": "missing_column",
    "missing_departure_time": "missing_departure_time",
    "missing_endpoint_times": "missing_endpoint_times",
    "missing_routes": "missing_routes",
    "missing_row_cells": "missing_row_cells",
    "missing_stop_times": "missing_stop_times",
    "missing_stops": "missing_stops",
    "missing_trips": "missing_trips",
    "missing_weekday_column": "missing_weekday_column",
    "negative_stop_sequence": "negative_stop_sequence",
    "one_line.kml": "not_a_gtfs_feed",
    "one_stop.kml": "not_a_gtfs_feed",
    "repeated_route_name": "repeated_route_name",
    "same_short_long_name": "same_short_long_name",
    "undefined_stop": "undefined_stop",
    "unknown_file": "unknown_file",
    "unknown_format.zip": "not_a_gtfs_feed",
    "unrecognized_columns": "unrecognized_columns",
    "unused_stop": "unused_stop",
    "utf16": "utf16",
    "utf8bom": "utf8bom",
}
CLEAN = {"good_feed", "good_feed.zip", "filter_unusual_trips", "only_calendar_dates"}


def _reasons(path: Path) -> set[str]:
    try:
        feed = read_feed(path)
    except GtfsFeedError as exc:
        assert str(exc).startswith(f"GTFS feed rejected ({exc.reason}): ")
        return {exc.reason}
    return {i.reason for i in feed.rejected} | {w.reason for w in feed.warnings}


def test_every_transitfeed_test_feed_gives_its_defect_or_loads_cleanly() -> None:
    """~40 deliberately broken feeds: never a crash; each names its own defect."""
    base = require_shared_data("gtfs/transitfeed_tests_data")
    seen = set()
    for path in sorted(base.iterdir()):
        reasons = _reasons(path)  # any exception other than GtfsFeedError fails the test here
        seen.add(path.name)
        if path.name in EXPECTED_DEFECT:
            assert EXPECTED_DEFECT[path.name] in reasons, (path.name, reasons)
        elif path.name in CLEAN:
            assert not reasons - {"unused_stop"}, (path.name, reasons)
    assert set(EXPECTED_DEFECT) <= seen


def test_the_good_feed_loads_every_row() -> None:
    feed = read_feed(require_shared_data("gtfs/transitfeed_good_feed.zip"))
    counts = {t: len(rows) for t, rows in feed.tables.items()}
    assert counts["stops"] == 10 and counts["routes"] == 5 and counts["trips"] == 11
    assert counts["stop_times"] == 28
    assert feed.rejected == [] and feed.warnings == []


def test_a_wrong_cell_count_is_a_ragged_row_naming_the_gtfs_rule() -> None:
    feed = read_feed(require_shared_data("gtfs/transitfeed_tests_data/extra_row_cells"))
    ragged = [i for i in feed.rejected if i.reason == "ragged_row"]
    assert [(i.file, i.line, i.detail) for i in ragged] == [
        ("routes.txt", 4, "extra_row_cells: 7 cells, header has 6")
    ]


def test_a_row_without_a_required_trailing_cell_is_ragged_optional_ones_are_padded(tmp_path: Path) -> None:
    good = require_shared_data("gtfs/transitfeed_tests_data/good_feed")
    for member in good.iterdir():
        (tmp_path / member.name).write_bytes(member.read_bytes())
    stops = (tmp_path / "stops.txt").read_text()
    (tmp_path / "stops.txt").write_text(stops + "SHORT_A,Short A,,36.4\nSHORT_B,Short B,,36.4,-117.1\n")
    feed = read_feed(tmp_path)
    ragged = [(i.file, i.reason, i.detail) for i in feed.rejected if i.reason == "ragged_row"]
    assert ragged == [("stops.txt", "ragged_row", "missing_row_cells: 4 cells, header has 10: no stop_lon")]
    assert "SHORT_B" in {s["stop_id"] for s in feed.tables["stops"]}
    assert ("stops.txt", "missing_row_cells") in {(w.file, w.reason) for w in feed.warnings}


def _good_feed_with_stops(tmp_path: Path, extra: str) -> Path:
    good = require_shared_data("gtfs/transitfeed_tests_data/good_feed")
    for member in good.iterdir():
        (tmp_path / member.name).write_bytes(member.read_bytes())
    stops = (tmp_path / "stops.txt").read_text()
    assert stops.count("\n") == 11 and stops.endswith("\n")  # the header and 10 stops: line 12 is next
    (tmp_path / "stops.txt").write_text(stops + extra)
    return tmp_path


def test_rejects_after_a_quoted_multi_line_cell_carry_their_physical_line(tmp_path: Path) -> None:
    feed = read_feed(
        _good_feed_with_stops(
            tmp_path,
            'ML_STOP,Multi-line,"first line\nsecond line",36.4,-117.1,,,,,\n'  # lines 12-13
            "EXTRA,Extra,,36.4,-117.1,,,,,,,\n"  # 14: 12 cells
            "FAR,Far away,,99,-117.1,,,,,\n"  # 15: latitude out of range
            "SHORT_A,Short A,,36.4\n",  # 16: no stop_lon
        )
    )
    stops = [(i.line, i.reason, i.detail) for i in feed.rejected if i.file == "stops.txt"]
    assert sorted(stops) == [
        (14, "ragged_row", "extra_row_cells: 12 cells, header has 10"),
        (15, "bad_coordinates", "stop_lat/stop_lon '99'/'-117.1'"),
        (16, "ragged_row", "missing_row_cells: 4 cells, header has 10: no stop_lon"),
    ]
    [extra] = [i for i in feed.rejected if i.line == 14]
    assert extra.raw == "EXTRA,Extra,,36.4,-117.1,,,,,,,"
    [kept] = [s for s in feed.tables["stops"] if s["stop_id"] == "ML_STOP"]
    assert kept["stop_desc"] == "first line\nsecond line"


def test_rows_without_trailing_optional_cells_are_padded_and_counted_in_one_warning(tmp_path: Path) -> None:
    feed = read_feed(
        _good_feed_with_stops(
            tmp_path,
            "SHORT_B,Short B,,36.4,-117.1\n"  # 5 of 10 cells
            'SHORT_C,Short "C",,36.41,-117.11,,\n'  # 7 cells, and a stray quote: the csv module frames it
            "FULL,Full,,36.42,-117.12,,,,,\n",
        )
    )
    assert [(w.line, w.detail) for w in feed.warnings if w.reason == "missing_row_cells"] == [
        (0, "2 row(s) omit trailing optional cells, read as empty")
    ]
    assert feed.rejected == []
    stops = {s["stop_id"]: s for s in feed.tables["stops"]}
    assert stops["SHORT_B"]["zone_id"] == "" and stops["SHORT_B"]["parent_station"] == ""
    assert stops["SHORT_C"]["stop_name"] == 'Short "C"' and stops["SHORT_C"]["stop_code"] == ""


def test_a_row_that_is_not_utf8_is_bad_utf8_never_repaired_as_cp1252(tmp_path: Path) -> None:
    feed_dir = _good_feed_with_stops(tmp_path, "")
    stops = feed_dir / "stops.txt"
    stops.write_bytes(
        stops.read_bytes() + b"CP1252,Caf\xe9,,36.4,-117.1,,,,,\nUTF8,Caf\xc3\xa9,,36.5,-117.1,,,,,\n"
    )
    feed = read_feed(feed_dir)
    assert [(i.file, i.line, i.reason, i.raw) for i in feed.rejected] == [
        ("stops.txt", 12, "bad_utf8", "CP1252,Caf\\xe9,,36.4,-117.1,,,,,")
    ]
    assert {s["stop_id"]: s["stop_name"] for s in feed.tables["stops"]}["UTF8"] == "Café"


def test_rejected_rows_carry_file_line_and_raw_text() -> None:
    feed = read_feed(require_shared_data("gtfs/transitfeed_tests_data/negative_stop_sequence"))
    [issue] = feed.rejected
    assert (issue.file, issue.reason) == ("stop_times.txt", "negative_stop_sequence")
    assert issue.line > 1 and "-" in (issue.raw or "")


# -- GTFS-realtime ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "vehicle_position.pb",
        "vehicle-position-pre-occupancy-defaults-no-occupancy.pb",
        "vehicle-position-pre-occupancy-defaults-with-occupancy-status.pb",
    ],
)
def test_real_realtime_files_parse_and_vehicle_positions_are_counted(name: str) -> None:
    parsed = parse_trip_updates(require_shared_data(f"gtfs_rt/{name}").read_bytes(), feed="f")
    assert parsed.version in ("1.0", "2.0")
    assert parsed.other_entities == {"vehicle": 1}
    assert parsed.arrivals == []


def test_a_truncated_realtime_message_is_a_clear_error() -> None:
    data = TransitSource(3).trip_updates(date(2024, 1, 1))
    with pytest.raises(RealtimeFormatError, match="not a GTFS-realtime FeedMessage"):
        parse_trip_updates(data[: len(data) // 2 + 1], feed="f")


# -- property: page order and duplication never change the result -----------------------------------

DAYS = 4


@settings(max_examples=60, deadline=None)
@given(
    extra=st.lists(st.integers(min_value=0, max_value=DAYS - 1), max_size=6),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_weather_pages_in_any_order_with_repeats_give_the_same_rows(extra: list[int], seed: int) -> None:
    source = WeatherSource(5)
    args = {
        "latitude": 10.5,
        "longitude": -3.25,
        "start": date(2024, 2, 27),
        "end": date(2024, 3, 1),
        "variables": ["temperature_2m", "precipitation"],
    }
    order = list(range(DAYS)) + extra
    random.Random(seed).shuffle(order)
    clean = normalise(parse_json(build_response(source, **args))[0], "C")
    faulty = normalise(parse_json(build_response(source, page_order=order, **args))[0], "C")
    assert faulty.rows == clean.rows
    assert faulty.duplicates == 24 * len(extra)
    assert faulty.total == faulty.duplicates + len(faulty.rows)


@settings(max_examples=30, deadline=None)
@given(extra=st.lists(st.integers(min_value=0, max_value=23), max_size=10), seed=st.integers(0, 2**32))
def test_trip_update_entities_in_any_order_with_repeats_give_the_same_arrivals(
    extra: list[int], seed: int
) -> None:
    source = TransitSource(9)
    order = list(range(source.trip_count())) + extra
    random.Random(seed).shuffle(order)
    day = date(2024, 5, 1)
    clean = parse_trip_updates(source.trip_updates(day), feed="f")
    faulty = parse_trip_updates(source.trip_updates(day, entity_order=order), feed="f")
    assert faulty.arrivals == clean.arrivals
    assert faulty.duplicates == source.stops_per_trip * len(extra)


def _loaded_checksum(rows: list[dict[str, object]]) -> str:
    from dotjoin.pipelines.api_ingest import store
    from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse

    with DuckDBWarehouse(":memory:") as wh:
        store.ensure_tables(wh, [store.WEATHER_HOURLY])
        for half in (rows[::2], rows[1::2], rows):  # two batches, then everything again
            data = store.with_hashes(store.WEATHER_HOURLY, half)
            store.upsert_hashed(wh, store.WEATHER_HOURLY, data, scope_sql="TRUE", scope_params=[])
        return store.table_checksum(wh, store.WEATHER_HOURLY, audit_times=False)


@settings(max_examples=25, deadline=None)
@given(
    extra=st.lists(st.integers(min_value=0, max_value=DAYS - 1), max_size=5),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_page_order_and_repeats_load_the_same_table(extra: list[int], seed: int) -> None:
    """Through the write path: hashed upsert into DuckDB ends with the same table as in-order pages."""
    source = WeatherSource(11)
    args = {
        "latitude": 1.5,
        "longitude": 2.5,
        "start": date(2024, 2, 27),
        "end": date(2024, 3, 1),
        "variables": ["temperature_2m", "relative_humidity_2m", "precipitation", "wind_speed_10m"],
    }
    order = list(range(DAYS)) + extra
    random.Random(seed).shuffle(order)
    faulty = parse_json(build_response(source, page_order=order, **args))[0]
    clean = parse_json(build_response(source, **args))[0]
    assert _loaded_checksum(normalise(faulty, "C").rows) == _loaded_checksum(normalise(clean, "C").rows)
