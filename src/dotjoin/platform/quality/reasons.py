"""The one vocabulary of quarantine reason codes, for every pipeline.

A reason says why one record did not load. The same defect has the same code everywhere: a record with
the wrong number of fields is ``ragged_row`` whether it came from a billing export, a quotes file or
a GTFS feed. Pipelines add detail (the column, the GTFS rule) in the quarantine's ``detail`` field, never
a new code for an old defect. :meth:`~dotjoin.platform.quality.quarantine.Quarantine.reject` refuses a
code that is not here, and ``docs/reasons.md`` lists them all (a unit test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Iterable

#: code -> what it means, grouped from "the bytes cannot be read" to "a reference is missing". The order is
#: the precedence: a record with several defects is quarantined for the one listed first.
REASONS: dict[str, str] = {
    # the record cannot be read
    "bad_encoding": "bytes that decode neither as UTF-8 nor as the cp1252 repair (or the declared encoding)",
    "ragged_row": "more or fewer fields than the table's columns",
    "bad_json": "a line that is not a JSON object",
    "contains_null": "a NUL byte inside the record",
    "malformed_event": "an event without the fields of its schema",
    # a required value is missing
    "missing_field": "a required field is empty",
    "missing_value": "a required value is absent from a nested record",
    "missing_column": "a record without a column its schema requires",
    # a value does not parse
    "bad_sha": "a git SHA that is not 40 hexadecimal characters",
    "bad_timestamp": "a timestamp in no accepted format, or one that does not exist",
    "bad_number": "an integer or decimal that does not parse",
    "bad_amount": "a money amount that does not parse",
    "bad_boolean": "a boolean that is none of the declared true/false words",
    "bad_date": "a date in no accepted format, or one that does not exist",
    "bad_value": "a value that does not parse as its column's type",
    # a parsed value breaks a rule
    "future_timestamp": "a timestamp after the run's reference time",
    "negative_count": "a count below zero",
    "out_of_range": "a number outside its column's declared minimum or maximum",
    "non_positive_quantity": "a quantity of zero or less",
    "outside_file_day": "an event dated outside the day its file covers",
    "duplicate_key": "the same natural key as an earlier record (the first one is kept)",
    "conflicting_rows": "two records with one key and different values in one input",
    "conflicting_update": "an update that contradicts the stored row",
    "conflicting_duplicate_hour": "two different values for the same location and hour",
    "incomplete_update": "a realtime update without the fields that identify its stop",
    # a reference is missing
    "unknown_store": "a store code not in the stores reference",
    "unknown_sku": "a SKU not in the products reference",
    "unknown_currency": "a currency with no exchange rate at all",
    "no_fx_rate": "no exchange rate on or before the sale date",
    "unknown_trip": "a realtime update for a trip the static feed does not have",
    "unknown_stop": "a realtime update for a stop the static feed does not have",
    # a whole input could not be used
    "load_failed": "a file that could not be read or written at all (the detail says why)",
    "future_date": "a file dated after the run's day",
    "unknown_file": "a file that is no export the pipeline knows",
    "raw_refused": "a file the raw zone refused (the detail says why)",
    # GTFS rules (the GTFS reference's names, so a feed's publisher recognises them)
    "bad_coordinates": "GTFS: latitude or longitude out of range",
    "bad_route_type": "GTFS: a route_type the specification does not define",
    "bad_stop_sequence": "GTFS: a stop_sequence that is not a non-negative integer",
    "negative_stop_sequence": "GTFS: a negative stop_sequence",
    "bad_time_format": "GTFS: a time that is not H:MM:SS",
    "bad_date_format": "GTFS: a date that is not YYYYMMDD",
    "bad_start_date": "GTFS: a start_date that is not YYYYMMDD",
    "bad_exception_type": "GTFS: an exception_type other than 1 or 2",
    "bad_weekday": "GTFS: a calendar weekday column that is not 0 or 1",
    "missing_arrival_time": "GTFS: a departure_time without an arrival_time",
    "missing_departure_time": "GTFS: an arrival_time without a departure_time",
    "missing_endpoint_times": "GTFS: a trip whose first or last stop has no times",
    "bad_utf8": "GTFS: bytes that are not UTF-8 (GTFS files must be UTF-8)",
    "missing_row_cells": "GTFS: a row that omits a required trailing cell",
    "extra_row_cells": "GTFS: a row with more cells than the header",
    "invalid_route_agency": "GTFS: a route whose agency_id is not in agency.txt",
    "undefined_route": "GTFS: a trip whose route_id is not in routes.txt",
    "undefined_service": "GTFS: a trip whose service_id is in neither calendar file",
    "undefined_stop": "GTFS: a stop time whose stop_id is not in stops.txt",
    "undefined_trip": "GTFS: a stop time whose trip_id is not in trips.txt",
    "duplicate_trip_id": "GTFS: a trip_id already defined in trips.txt",
    "duplicate_route_id": "GTFS: a route_id already defined in routes.txt",
    "duplicate_stop_id": "GTFS: a stop_id already defined in stops.txt",
    "duplicate_stop_sequence": "GTFS: a (trip_id, stop_sequence) already defined in stop_times.txt",
    "duplicate_schedule_id": "GTFS: a service_id already defined in calendar.txt",
}


#: The precedence rank of each code (lower first).
RANK = {reason: rank for rank, reason in enumerate(REASONS)}


def primary_reason(reasons: Iterable[str]) -> str:
    """The one reason a record with several defects is quarantined for: the first in :data:`REASONS`.

    >>> primary_reason(["negative_count", "bad_timestamp", "missing_field"])
    'missing_field'
    """
    return min(reasons, key=RANK.__getitem__)


def precedence(codes: Iterable[str]) -> tuple[str, ...]:
    """``codes`` in precedence order."""
    return tuple(sorted(codes, key=RANK.__getitem__))


def check_reason(reason: str) -> str:
    """``reason`` if it is a known code.

    Raises:
        ValueError: an unknown code (a programming error: add it to :data:`REASONS` and docs/reasons.md).

    >>> check_reason("ragged_row")
    'ragged_row'
    """
    if reason not in REASONS:
        raise ValueError(
            f"unknown quarantine reason {reason!r}: use a code of dotjoin.platform.quality.reasons "
            "(or add it there and to docs/reasons.md)"
        )
    return reason
