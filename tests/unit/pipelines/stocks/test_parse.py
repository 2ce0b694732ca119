"""Parsing a Stooq CSV: every record ends as a row, an identical repeat or a reject with a reason."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from dotjoin.exceptions import DataError
from dotjoin.pipelines.stocks.fetch import accept
from dotjoin.pipelines.stocks.parse import PriceRow, parse_file
from dotjoin.platform.http import BodyError

DAY = date(2024, 1, 2)
GOOD = "2024-01-02,185.5,188.44,183.89,185.64,82488674"


def _parse(text: str | bytes) -> tuple[list[PriceRow], int, list[tuple[int, str]], int]:
    data = text.encode() if isinstance(text, str) else text
    p = parse_file(data, symbol="aapl.us", trade_date=DAY, name="stocks/trade_date=2024-01-02/aapl.us.csv")
    assert p.records == len(p.rows) + p.duplicates + len(p.rejects)
    return p.rows, p.duplicates, [(r.line, r.reason) for r in p.rejects], p.records


def test_a_good_file_crlf_and_bom_included() -> None:
    rows, dups, rejects, records = _parse(f"\ufeffDate,Open,High,Low,Close,Volume\r\n{GOOD}\r\n")
    assert rows == [PriceRow("aapl.us", DAY, 185.5, 188.44, 183.89, 185.64, 82488674)]
    assert (dups, rejects, records) == (0, [], 1)


def test_no_data_is_zero_records() -> None:
    assert _parse("No data") == ([], 0, [], 0)
    assert _parse("No data\n") == ([], 0, [], 0)


@pytest.mark.parametrize(
    ("line", "reason", "fragment"),
    [
        ("2024-01-02,185.5,188.44,183.89,185.64", "ragged_row", "5 field(s), expected 6"),
        ("2024-01-02,185.5,188.44,183.89,185.64,1,2", "ragged_row", "7 field(s), expected 6"),
        ("02/01/2024,185.5,188.44,183.89,185.64,1", "bad_date", "Date '02/01/2024'"),
        ("2024-01-02,185.5,abc,183.89,185.64,1", "bad_number", "High 'abc'"),
        ("2024-01-02,185.5,188.44,nan,185.64,1", "bad_number", "Low 'nan'"),
        ("2024-01-02,185.5,188.44,183.89,1e999,1", "bad_number", "Close '1e999' is not finite"),
        ("2024-01-02,185.5,188.44,183.89,185.64,1.5", "bad_number", "Volume '1.5' is not a whole number"),
        ("2024-01-02,185.5,,183.89,185.64,1", "missing_field", "High is empty"),
        ("2024-01-03,185.5,188.44,183.89,185.64,1", "outside_file_day", "partition is 2024-01-02"),
    ],
)
def test_a_bad_line_is_rejected_with_its_line_and_reason(line: str, reason: str, fragment: str) -> None:
    data = f"Date,Open,High,Low,Close,Volume\n{GOOD}\n{line}\n".encode()
    p = parse_file(data, symbol="aapl.us", trade_date=DAY, name="f.csv")
    assert len(p.rows) == 1 and p.records == 2
    (rej,) = p.rejects
    assert (rej.line, rej.reason, rej.raw) == (3, reason, line)
    assert fragment in rej.detail


def test_bytes_neither_utf8_nor_cp1252_are_rejected_not_fatal() -> None:
    rows, _, rejects, _ = _parse(b"Date,Open,High,Low,Close,Volume\n\x81\x8d,1,2,3\n" + GOOD.encode())
    assert rejects == [(2, "bad_encoding")] and len(rows) == 1


def test_a_cp1252_record_is_repaired_then_judged_like_any_other() -> None:
    data = b"Date,Open,High,Low,Close,Volume\n" + GOOD.encode() + b"\n2024-01-02,1\xe9,2,1,1,1\n"
    p = parse_file(data, symbol="aapl.us", trade_date=DAY, name="f.csv")
    (rej,) = p.rejects
    assert (rej.line, rej.reason, rej.raw) == (3, "bad_number", "2024-01-02,1é,2,1,1,1")


def test_a_header_in_any_case_and_blank_lines_are_accepted() -> None:
    rows, _, rejects, records = _parse(f"date,OPEN,High,Low,Close,volume\n\n  \n{GOOD}\n\n")
    assert (len(rows), rejects, records) == (1, [], 1)


def test_identical_repeats_are_duplicates_and_conflicting_versions_are_all_rejected() -> None:
    assert _parse(f"Date,Open,High,Low,Close,Volume\n{GOOD}\n\n{GOOD}\n")[1:] == (1, [], 2)
    other = GOOD.replace("185.64", "185.65")
    rows, dups, rejects, _ = _parse(f"Date,Open,High,Low,Close,Volume\n{GOOD}\n{other}\n")
    assert (rows, dups, rejects) == ([], 0, [(2, "conflicting_rows"), (3, "conflicting_rows")])


def test_a_file_without_the_header_is_one_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"^x/aapl\.us\.csv: line 1 is '<html>', want the header"):
        parse_file(b"<html>\n", symbol="aapl.us", trade_date=DAY, name="x/aapl.us.csv")


@pytest.mark.parametrize("body", [b"Date,Open,High,Low,Close,Volume\n" + GOOD.encode(), b"No data"])
def test_fetch_accepts_stooq_answers(body: bytes) -> None:
    assert accept(httpx.Response(200, content=body)) == body


@pytest.mark.parametrize("body", [b"Exceeded the daily hits limit", b"<html>oops</html>", b"", b"No "])
def test_fetch_retries_anything_else(body: bytes) -> None:
    with pytest.raises(BodyError, match="not a Stooq CSV"):
        accept(httpx.Response(200, content=body))
