"""``dotjoin load``: files nobody here wrote, a robustness corpus, quarantine with lines, idempotent reruns.

Real files from ../shared/data (see its SOURCES.md): the FinOps FOCUS 1.0 sample (CC BY 4.0), Google
transitfeed's GTFS test feeds (Apache-2.0), Open-Meteo output-format tests (CC BY 4.0), Sparkov
fixtures (MIT), FOCUS validator samples and provider exports (MIT).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import DotjoinError
from dotjoin.pipelines.load.pipeline import run
from dotjoin.platform.files import DelimitedReader, DialectOptions
from dotjoin.platform.warehouse import open_warehouse
from tests.conftest import SHARED_DATA, require_shared_data

#: Files of ../shared/data that are refused as a whole, with the one-line reason (none today: an empty
#: file, such as the broken GTFS feed's agency.txt, loads as no records).
REFUSED: dict[str, str] = {}


def _query(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with open_warehouse(settings) as wh:
        table = wh.query(sql)
    return [tuple(r.values()) for r in table.to_pylist()]


def test_every_delimited_file_in_shared_data_loads_or_is_refused_in_one_line(
    local_settings: Settings,
) -> None:
    require_shared_data("focus/focus_1.0_sample.csv")
    files = sorted(p for p in SHARED_DATA.rglob("*") if p.is_file() and p.suffix in (".csv", ".txt"))
    assert len(files) > 350
    for i, path in enumerate(files):
        relative = str(path.relative_to(SHARED_DATA))
        try:
            report = run(local_settings, target=str(path), table=f"t{i}")
        except DotjoinError as exc:
            assert relative in REFUSED and REFUSED[relative] in str(exc), (relative, str(exc))
            assert "\n" not in str(exc)
            continue
        assert relative not in REFUSED, relative
        assert report.status == "succeeded", (relative, report.checks)
        c = report.counts
        assert c["input"] == c["output"] + c["quarantined"] + c["duplicates"], relative


def test_focus_sample_golden_values(local_settings: Settings) -> None:
    path = require_shared_data("focus/focus_1.0_sample.csv")
    report = run(local_settings, target=str(path), table="focus")
    assert report.counts == {"input": 1000, "output": 1000, "quarantined": 0, "duplicates": 0}
    columns = report.params["columns"]
    assert columns["billed_cost"]["type"] == "number"
    assert columns["charge_period_start"]["type"] == "timestamp"
    rows = _query(
        local_settings,
        "SELECT round(sum(billed_cost), 4), round(sum(effective_cost), 4), "
        "sum(CASE WHEN provider_name = 'AWS' THEN 1 ELSE 0 END) FROM focus",
    )
    assert rows == [
        (20.5202, 14.9765, 942)
    ]  # SOURCES.md: ΣBilledCost 20.5202, ΣEffectiveCost 14.9765, AWS 942


def test_gtfs_short_rows_and_utf16_read_as_the_good_feed(local_settings: Settings) -> None:
    good = require_shared_data("gtfs/transitfeed_tests_data/good_feed/stops.txt")
    utf16 = require_shared_data("gtfs/transitfeed_tests_data/utf16/stops.txt")
    a = run(local_settings, target=str(good), table="stops_good")
    b = run(local_settings, target=str(utf16), table="stops_utf16")
    # The Demo Transit Authority has 10 stops; the UTF-16 copy of the feed lists 9 of them.
    assert (a.counts["output"], b.counts["output"]) == (10, 9)
    cols = "stop_id, stop_lat, stop_lon"
    good_rows = set(_query(local_settings, f"SELECT {cols} FROM stops_good"))
    assert set(_query(local_settings, f"SELECT {cols} FROM stops_utf16")) < good_rows
    assert ("FUR_CREEK_RES", 36.425288, -117.133162) in good_rows


def test_open_meteo_csv_skips_its_metadata_block(local_settings: Settings) -> None:
    path = require_shared_data("open_meteo/outputformat_03_csv.csv")
    report = run(local_settings, target=str(path), table="weather_csv")
    (files,) = report.params["files"]
    assert files["preamble_lines"] == 3 and files["dialect"]["header"] is True
    rows = _query(local_settings, 'SELECT min("time"), count(*) FROM weather_csv')
    assert rows[0][1] >= 48


def test_a_stray_nul_byte_quarantines_its_record_not_the_file(local_settings: Settings) -> None:
    path = require_shared_data("gtfs/transitfeed_tests_data/contains_null/stops.txt")
    report = run(local_settings, target=str(path), table="stops_nul")
    assert (report.counts["output"], report.counts["quarantined"]) == (8, 1)
    assert _query(
        local_settings, "SELECT position, reason FROM quarantine WHERE pipeline = 'load:stops_nul'"
    ) == [("9", "contains_null")]


def test_sparkov_pipe_delimited_without_header(local_settings: Settings) -> None:
    path = require_shared_data("sparkov/adults_2550_female_rural.csv")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    report = run(local_settings, target=str(path), table="sparkov")
    (files,) = report.params["files"]
    assert files["dialect"]["delimiter"] == "|" and files["dialect"]["header"] is False
    assert report.counts["input"] == len(lines) == report.counts["output"]
    first = lines[0].split("|")
    assert _query(local_settings, "SELECT column_1, column_6 FROM sparkov WHERE _source_line = 1") == [
        (first[0], float(first[5]))
    ]


MESSY = (
    "Exported by BillingTool 3.2 on 2026-04-03\n"
    "\n"
    "order_id;ordered_at;amount;paid\n"
    "A1;2026-04-03 06:09:00;1.234,50;yes\n"  # naive timestamp, decimal comma, group separator
    "A2;2026-04-03T07:00:00Z;12,00;no\n"
    "A3;not a date;3,00;yes\n"  # line 6: bad_timestamp
    "A4;2026-04-03T08:00:00+02:00;4,00\n"  # line 7: ragged_row
    "A1;2026-04-03 09:00:00;9,99;yes\n"  # line 8: duplicate of line 4
    ";2026-04-03 10:00:00;1,00;no\n"  # line 9: missing order_id
    "A5;2026-04-03 11:00:00;abc;no\n"  # line 10: bad_number
    "Total;;1.263,49;\n"  # footer
)
SCHEMA = """
apiVersion: v3.0.2
kind: DataContract
name: orders
schema:
  - name: orders
    dedup: first
    properties:
      - {name: order_id, required: true, primaryKey: true}
      - name: ordered_at
        logicalType: timestamp
        logicalTypeOptions: {timezone: Europe/Paris}
      - name: amount
        logicalType: number
        logicalTypeOptions: {decimalSeparator: ",", groupSeparator: "."}
      - {name: paid, logicalType: boolean}
"""


def test_messy_export_quarantines_each_bad_line_with_its_reason(
    local_settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "orders.csv"
    data.write_text(MESSY)
    schema = tmp_path / "orders.yaml"
    schema.write_text(SCHEMA)
    report = run(local_settings, target=str(data), table="orders", schema_path=schema)
    assert report.counts == {"input": 7, "output": 2, "quarantined": 4, "duplicates": 1}
    (files,) = report.params["files"]
    assert (files["preamble_lines"], files["footer_lines"]) == (2, 1)
    assert files["footer"] == ["Total;;1.263,49;"]
    quarantine = _query(
        local_settings, "SELECT position, reason FROM quarantine WHERE pipeline = 'load:orders' ORDER BY 1"
    )
    assert sorted(quarantine, key=lambda r: int(str(r[0]))) == [
        ("6", "bad_timestamp"),
        ("7", "ragged_row"),
        ("8", "duplicate_key"),
        ("9", "missing_field"),
        ("10", "bad_number"),
    ]
    rows = _query(
        local_settings, "SELECT order_id, ordered_at, amount, paid, _source_line FROM orders ORDER BY 1"
    )
    assert [(r[0], r[1].isoformat(), r[2], r[3], r[4]) for r in rows] == [  # type: ignore[union-attr]
        ("A1", "2026-04-03T04:09:00+00:00", 1234.5, True, 4),  # naive 06:09 in Paris (UTC+2) = 04:09 UTC
        ("A2", "2026-04-03T07:00:00+00:00", 12.0, False, 5),
    ]
    assert report.metrics["naive_timestamps"] == 2  # lines 4 and 8 (a duplicate) parse with no offset
    # Re-running is idempotent: same rows, same quarantine, no growth.
    again = run(local_settings, target=str(data), table="orders", schema_path=schema)
    assert again.counts == report.counts
    assert _query(local_settings, "SELECT count(*) FROM orders") == [(2,)]
    assert _query(local_settings, "SELECT count(*) FROM quarantine WHERE pipeline = 'load:orders'") == [(5,)]


def test_a_short_last_row_is_quarantined_or_padded_never_skipped_as_a_footer(tmp_path: Path) -> None:
    """A short last record is a ragged row (quarantined at its line); in a file whose rows omit trailing
    fields (old GTFS feeds do) it is padded data. Either way it is never a footer."""
    sporadic = tmp_path / "trips.txt"
    sporadic.write_text(
        "route_id,service_id,trip_id,headsign,direction_id\nAB,FULLW,AB1,to Bullfrog,0\nAB,FULLW,AB2\n"
    )
    with DelimitedReader(sporadic) as reader:
        chunks = list(reader)
    assert reader.footer_lines == 0
    assert [(r.line, r.reason) for c in chunks for r in c.rejected] == [(3, "ragged_row")]
    habitual = tmp_path / "trips_short.txt"
    habitual.write_text(
        "route_id,service_id,trip_id,headsign,direction_id\n"
        "AB,FULLW,AB1,to X\nAB,FULLW,AB2,to Y\nAB,FULLW,AB3\n"
    )
    with DelimitedReader(habitual) as reader:
        rows = [r for c in reader for r in c.table.to_pylist()]
    assert reader.footer_lines == 0 and reader.padded_rows == 3
    assert rows[-1] == {
        "route_id": "AB",
        "service_id": "FULLW",
        "trip_id": "AB3",
        "headsign": "",
        "direction_id": "",
    }


def test_the_header_decision_is_reported_and_overridable(local_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text(
        "name,2024\nfoo,bar\nbaz,qux\nquux,corge\n"
    )  # a header, or a row whose 2nd value is 2024?
    report = run(local_settings, target=str(path), table="names")
    (files,) = report.params["files"]
    assert files["dialect"]["header"] is False
    with DelimitedReader(path) as reader:  # the evidence says which way it went and the option
        assert any("--header" in e for e in reader.dialect.evidence)
    assert _query(local_settings, "SELECT column_2 FROM names WHERE _source_line = 1") == [("2024",)]
    again = run(local_settings, target=str(path), table="names_h", source={"header": True})
    assert again.counts["output"] == 3


def test_gzip_and_zstd_inputs_load_like_plain(local_settings: Settings, tmp_path: Path) -> None:
    text = "id,v\n" + "".join(f"{i},{i * 1.5}\n" for i in range(1000))
    (tmp_path / "plain.csv").write_text(text)
    (tmp_path / "z.csv.gz").write_bytes(gzip.compress(text.encode()))
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(text.encode())
    (tmp_path / "z.csv.zst").write_bytes(sink.getvalue().to_pybytes())
    for name in ("plain.csv", "z.csv.gz", "z.csv.zst"):
        report = run(local_settings, target=str(tmp_path / name), table=name.replace(".", "_"))
        assert report.counts["output"] == 1000, name
        assert _query(local_settings, f"SELECT sum(v) FROM {name.replace('.', '_')}") == [(749250.0,)]


# -- robustness corpus: a clean table written every way a real export writes it -------------------------

CLEAN = [
    ["id", "name", "note", "amount"],
    ["1", "Zoë", 'said "hi", then left', "10.5"],
    ["2", "Ana María", "line one\nline two", "-3"],
    ["3", "O'Brien", "", "0"],
    ["4", "plain", "semi;colon|pipe\ttab", "7.25"],
    ["5", "Ünïcødé", "trailing space ", "1e3"],
]
RAGGED = "RAGGED"


def _write(
    rows: list[list[str]],
    *,
    delimiter: str,
    quote: str,
    escape: str | None,
    quote_all: bool,
    newline: str,
    header: bool,
    extra: bool,
    ragged: bool,
) -> str:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        quotechar=quote,
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        escapechar=escape,
        doublequote=escape is None,
        lineterminator=newline,
    )
    if extra:  # a preamble of two lines and a blank one, a footer of one
        out.write(f"Report: export of table notes{newline}Generated 2026-04-03{newline}{newline}")
    for i, row in enumerate(rows if header else rows[1:]):
        writer.writerow(row)
        if ragged and i == 2:
            out.write(f"{RAGGED}{delimiter}x{newline}")
    if extra:
        out.write(f"Total{delimiter}{delimiter}{delimiter}1010.75{newline}")
    return out.getvalue()


VARIANTS = list(
    itertools.product(
        [",", ";", "|", "\t"],  # delimiter
        ['"', "'"],  # quote character
        [None, "\\"],  # quotes doubled, or escaped with a backslash
        [False, True],  # quote only where needed, or every field
        ["\n", "\r\n", "\r"],  # record delimiter
        [True, False],  # header
        [False, True],  # preamble and footer lines
        [False, True],  # a ragged row among the records
    )
)


@pytest.mark.parametrize(
    ("delimiter", "quote", "escape", "quote_all", "newline", "header", "extra", "ragged"), VARIANTS
)
def test_robustness_corpus_reads_back_the_clean_table(
    tmp_path: Path,
    delimiter: str,
    quote: str,
    escape: str | None,
    quote_all: bool,
    newline: str,
    header: bool,
    extra: bool,
    ragged: bool,
) -> None:
    # A multi-line value breaks its line the way the file's records do (a CR-only file has CRs inside).
    clean = [[v.replace("\n", "\r") if newline == "\r" else v for v in row] for row in CLEAN]
    text = _write(
        clean,
        delimiter=delimiter,
        quote=quote,
        escape=escape,
        quote_all=quote_all,
        newline=newline,
        header=header,
        extra=extra,
        ragged=ragged,
    )
    path = tmp_path / "corpus.csv"
    path.write_bytes(text.encode("utf-8"))
    with DelimitedReader(path, options=DialectOptions(header=None if header else False)) as reader:
        chunks = list(reader)
    rows = [list(r.values()) for c in chunks for r in c.table.to_pylist()]
    rejected = [(r.line, r.reason) for c in chunks for r in c.rejected]
    assert rows == clean[1:]
    if ragged:  # the physical line it is on, counted independently of the reader
        line = len(re.findall(r"\r\n|\r|\n", text[: text.index(RAGGED)])) + 1
        assert rejected == [(line, "ragged_row")]
    else:
        assert rejected == []
    assert reader.dialect.delimiter == delimiter
    if header:
        assert reader.names == tuple(CLEAN[0])
    assert (reader.dialect.skip_lines, reader.footer_lines) == ((3, 1) if extra else (0, 0))


# -- pollutions the Pollock benchmark (HPI) measures, each read the way its clean file reads ------------


def _read(path: Path, **kwargs: object) -> tuple[tuple[str, ...], list[list[str]], DelimitedReader]:
    with DelimitedReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        rows = [list(r.values()) for c in reader for r in c.table.to_pylist()]
    return reader.names, rows, reader


def test_a_repeated_header_is_not_data(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_bytes(b"id,name\r\nid,name\r\n1,Ada\r\n2,Bob\r\nid,name\r\n3,Cy\r\n")  # concatenated exports
    names, rows, reader = _read(path)
    assert names == ("id", "name") and rows == [["1", "Ada"], ["2", "Bob"], ["3", "Cy"]]
    assert (reader.repeated_headers, reader.records, reader.lines) == (2, 3, 6)


def test_a_title_row_padded_with_delimiters_is_preamble(tmp_path: Path) -> None:
    path = tmp_path / "titled.csv"
    path.write_bytes(b"Quarterly report,,\r\n,,\r\nid,name,qty\r\n1,Ada,3\r\n2,Bob,4\r\n")
    names, rows, reader = _read(path)
    assert names == ("id", "name", "qty") and rows == [["1", "Ada", "3"], ["2", "Bob", "4"]]
    assert reader.dialect.skip_lines == 2


def test_an_empty_file_reads_as_no_records_when_allowed(tmp_path: Path, local_settings: Settings) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert _read(path)[1] == []
    with pytest.raises(DotjoinError, match="is empty"):
        _read(path, allow_empty=False)
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(b"id,name\r\n")
    names, rows, _ = _read(header_only)
    assert names == ("id", "name") and rows == []


def test_without_a_header_an_always_empty_last_column_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_bytes(b"1,Ada,\r\n2,Bob,\r\n3,Cy,\r\n")
    names, rows, _ = _read(path)
    assert names == ("column_1", "column_2", "column_3") and rows[0] == ["1", "Ada", ""]


def test_spaces_after_delimiters_and_space_delimited_files(tmp_path: Path) -> None:
    spaced = tmp_path / "spaced.csv"
    spaced.write_bytes(b'id, kind, note\r\n1, "Boot, size 1", ok\r\n2, "Hat", fine\r\n3, plain, "a, b"\r\n')
    names, rows, reader = _read(spaced)
    assert names == ("id", "kind", "note") and reader.dialect.skip_initial_space
    assert rows == [["1", "Boot, size 1", "ok"], ["2", "Hat", "fine"], ["3", "plain", "a, b"]]
    spaces = tmp_path / "spaces.txt"
    spaces.write_bytes(b'id name city\r\n1 "Ada Lovelace" Lyon\r\n2 Bob Paris\r\n3 "Cy D" Rome\r\n')
    names, rows, reader = _read(spaces)
    assert reader.dialect.delimiter == " " and names == ("id", "name", "city")
    assert rows[0] == ["1", "Ada Lovelace", "Lyon"]


def test_a_quote_that_never_closes_costs_only_its_line(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_bytes(b'id,name,qty\n1,Ada,3\n2,"Grace,4\n3,Bob,5\n4,Cy,6\n5,"Multi\nline",7\n')
    with DelimitedReader(path) as reader:
        chunks = list(reader)
    rows = [list(r.values()) for c in chunks for r in c.table.to_pylist()]
    assert rows == [["1", "Ada", "3"], ["3", "Bob", "5"], ["4", "Cy", "6"], ["5", "Multi\nline", "7"]]
    assert [(r.line, r.reason) for c in chunks for r in c.rejected] == [(3, "ragged_row")]


def test_json_lines_load_with_inferred_types_and_bad_lines_quarantined(
    local_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl.gz"
    lines = [
        '{"id": 1, "at": "2026-04-03T06:09:00.250Z", "ok": true, "tags": ["a", "b"]}',
        "",
        '{"id": 2, "at": "2026-04-03 07:00:00", "ok": false}',  # no tags key: NULL
        "not json",
        "[1, 2]",
        '{"id": 3, "at": "2026-04-03T08:00:00+02:00", "ok": true, "tags": []}',
    ]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    report = run(local_settings, target=str(path), table="events")
    assert report.counts == {"input": 5, "output": 3, "quarantined": 2, "duplicates": 0}
    assert report.params["columns"]["id"]["type"] == "integer"
    assert report.params["columns"]["at"]["type"] == "timestamp"
    assert report.params["columns"]["ok"]["type"] == "boolean"
    rows = _query(local_settings, 'SELECT id, "at", ok, tags, _source_line FROM events ORDER BY id')
    assert [(r[0], r[1].isoformat(), r[2], r[3], r[4]) for r in rows] == [  # type: ignore[union-attr]
        (1, "2026-04-03T06:09:00.250000+00:00", True, '["a","b"]', 1),
        (2, "2026-04-03T07:00:00+00:00", False, None, 3),
        (3, "2026-04-03T06:00:00+00:00", True, "[]", 6),
    ]
    assert _query(
        local_settings, "SELECT position, reason FROM quarantine WHERE pipeline = 'load:events' ORDER BY 1"
    ) == [("4", "bad_json"), ("5", "bad_json")]
