"""The platform reader with every part of the dialect fixed (GTFS, Open-Meteo sections, cities files):
nothing guessed, each row's field count as written, and strict UTF-8 when a format demands it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dotjoin.platform.files import Chunk, DelimitedReader, DialectOptions
from dotjoin.platform.files.dialect import STRICT_CSV


def _read(
    data: bytes, options: DialectOptions = STRICT_CSV, **kwargs: bool
) -> tuple[DelimitedReader, list[Chunk]]:
    with DelimitedReader(Path("t.csv"), data=data, options=options, encoding="utf-8", **kwargs) as reader:
        return reader, list(reader)


@pytest.mark.parametrize("stray", [False, True], ids=["vectorised", "csv-module"])
def test_each_row_keeps_the_number_of_fields_it_had(stray: bool, caplog: pytest.LogCaptureFixture) -> None:
    # A quote inside an unquoted field makes the fast framer hand the block to the csv module.
    middle = b'4,x"y\n' if stray else b"4,xy\n"
    with caplog.at_level(logging.DEBUG, logger="dotjoin.platform.files.reader"):
        _, [chunk] = _read(b'a,b,c\n1,"two\nlines",3\n' + middle + b"5\n6,7,8\n")
    assert ("framed by the csv module" in caplog.text) == stray
    assert chunk.fields is not None
    assert chunk.fields.tolist() == [3, 2, 1, 3]
    assert chunk.line.tolist() == [2, 4, 5, 6]
    assert chunk.table.column("c").to_pylist() == ["3", "", "", "8"]


def test_a_row_wider_than_the_header_is_rejected_with_its_field_count() -> None:
    _, [chunk] = _read(b"a,b\n1,2\n3,4,5\n")
    assert [(r.line, r.reason, r.fields) for r in chunk.rejected] == [(3, "ragged_row", 3)]


def test_without_repair_a_record_that_is_not_utf8_is_bad_encoding() -> None:
    data = b"a,b\n1,caf\xe9\n2,caf\xc3\xa9\n"
    _, [repaired] = _read(data)
    assert repaired.table.column("b").to_pylist() == ["café", "café"] and repaired.repaired == 1
    _, [strict] = _read(data, repair=False)
    assert strict.table.column("b").to_pylist() == ["café"] and strict.line.tolist() == [3]
    assert [(r.line, r.reason, r.detail, r.raw) for r in strict.rejected] == [
        (2, "bad_encoding", "bytes that are not UTF-8", "1,caf\\xe9")
    ]


def test_a_fixed_footer_and_trailing_delimiter_are_not_guessed() -> None:
    # Detected: "Total" ends the file as a footer; fixed, it is a record (a stop or route may be so named).
    data = b"name,kind,note\nAirport,1,x\nTotal,2,\n"
    guessed, _ = _read(data, DialectOptions(delimiter=",", header=True))
    assert guessed.dialect.footer_records == 1
    fixed, [chunk] = _read(data)
    assert fixed.dialect.footer_records == 0 and chunk.table.column("name").to_pylist() == [
        "Airport",
        "Total",
    ]
    # Detected: rows ending with an empty cell under a header that names one more column are short
    # rows, not a trailing delimiter: no header name is dropped.
    data = b"stop_id,stop_name,stop_lat,stop_lon,zone_id\n" + b"S,B,1,\n" * 5 + b"X,Y,1,2,3,4\n"
    guessed, _ = _read(data, DialectOptions(delimiter=",", header=True, skip_lines=0, pad_short_rows=True))
    assert guessed.names == ("stop_id", "stop_name", "stop_lat", "stop_lon", "zone_id")
    fixed, _ = _read(data)
    assert fixed.names == ("stop_id", "stop_name", "stop_lat", "stop_lon", "zone_id")
