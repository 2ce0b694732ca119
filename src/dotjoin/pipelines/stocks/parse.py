"""Parsing a Stooq daily CSV: rows, identical repeats and rejected lines with a reason.

A file holds one symbol (its name, ``<symbol>.csv``) and is expected to hold one trade date. It is read
by the platform's one reader (:class:`~dotjoin.platform.files.DelimitedReader`: framing, BOM, CRLF,
per-record decoding) and typed by a declared schema (:data:`SCHEMA`,
:func:`~dotjoin.platform.files.convert.convert`). Every non-blank line after the header is one input
record and ends in exactly one of:

* a row (``PriceRow``);
* a duplicate — byte-identical values to a row already kept (an upstream repeat);
* a reject, with its 1-based line number and a code of the platform's vocabulary
  (:mod:`dotjoin.platform.quality.reasons`): ``ragged_row`` (not six fields), ``bad_encoding`` (bytes
  that are neither UTF-8 nor cp1252; a cp1252 record is repaired, as everywhere), ``missing_field`` (an
  empty value), ``bad_date``, ``bad_number`` (names the field: a price that is not a finite number, a
  volume that is not a whole number), ``outside_file_day`` (a row of another day than the partition
  being loaded) or ``conflicting_rows`` (two different bars for the same day: every version is
  rejected, as none can be trusted).

Value rules (``low <= open``, positive prices, ...) are the quality check's business, not the parser's:
a parsable row is loaded, and the check then fails the date loudly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dotjoin.exceptions import DataError
from dotjoin.platform.files import Chunk, DelimitedReader, InputFileError
from dotjoin.platform.files.convert import Converted, convert
from dotjoin.platform.files.schema import Property, Table

COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")
PRICE_FIELDS = COLUMNS[1:5]
NO_DATA = "No data"
#: The declared columns: every value required; only an empty value is missing ("nan" is a bad number).
SCHEMA = Table(
    name="stock_prices",
    properties=[
        Property(name="Date", logicalType="date", required=True, nullValues=[""]),
        *(Property(name=c, logicalType="number", required=True, nullValues=[""]) for c in COLUMNS[1:]),
    ],
)


@dataclass(frozen=True)
class PriceRow:
    symbol: str
    trade_date: date
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass(frozen=True)
class Reject:
    line: int  # 1-based, the header is line 1
    reason: str
    detail: str
    raw: str


@dataclass
class FileParse:
    """What one file gave; ``records == len(rows) + duplicates + len(rejects)`` always holds."""

    symbol: str
    records: int = 0
    rows: list[PriceRow] = field(default_factory=list)
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)


def _problem(reason: str | None, column: str | None, text: str) -> tuple[str, str]:
    """The reason and detail of a value :func:`convert` refused."""
    if reason == "missing_field":
        return reason, f"{column} is empty"
    if reason == "bad_date":
        return reason, f"Date {text!r} is not YYYY-MM-DD"
    return "bad_number", f"{column} {text!r} is not a number"


Result = tuple[int, PriceRow | Reject, str]  # (line, row or reject, raw text)


def _typed_rows(chunk: Chunk, symbol: str) -> list[Result]:
    """Each row of a chunk as a PriceRow, or the Reject of its first bad value (in column order)."""
    typed: Converted = convert(chunk.table, SCHEMA)
    values = typed.table.to_pylist()
    texts = chunk.table.to_pylist()
    out: list[Result] = []
    for i, line in enumerate(chunk.line.tolist()):
        value, text = values[i], {k: v.strip() for k, v in texts[i].items()}
        problem: tuple[str, str] | None = None
        if typed.reason[i] is not None:
            column = typed.detail[i]
            problem = _problem(typed.reason[i], column, text.get(column or "", ""))
        else:
            for name in PRICE_FIELDS:
                if not math.isfinite(value[name]):  # "1e999" parses, as infinity
                    problem = ("bad_number", f"{name} {text[name]!r} is not finite")
                    break
            if problem is None and not float(value["Volume"]).is_integer():
                problem = ("bad_number", f"Volume {text['Volume']!r} is not a whole number")
        raw = chunk.raw(i)
        if problem is not None:
            out.append((line, Reject(line, problem[0], problem[1], raw), raw))
            continue
        o, h, lo, c = (value[name] for name in PRICE_FIELDS)
        out.append((line, PriceRow(symbol, value["Date"], o, h, lo, c, int(value["Volume"])), raw))
    return out


def parse_file(data: bytes, *, symbol: str, trade_date: date, name: str) -> FileParse:
    """Parse one raw file of ``symbol`` for the partition ``trade_date``.

    Args:
        data: the file's bytes as landed.
        symbol: the symbol the file was fetched for.
        trade_date: the partition being loaded; rows of other dates are rejected (``outside_file_day``).
        name: the file, for error messages.

    Raises:
        DataError: the file is neither ``No data`` nor a CSV with Stooq's header (not record-level:
            the whole file is wrong, and one line names it).

    >>> csv = b"Date,Open,High,Low,Close,Volume\\n2024-01-02,1,2,1,1.5,10\\n2024-01-02,1,2,1,1.5,10\\nx\\n"
    >>> p = parse_file(csv, symbol="a.us", trade_date=date(2024, 1, 2), name="a.us.csv")
    >>> p.records, len(p.rows), p.duplicates, [(r.line, r.reason) for r in p.rejects]
    (3, 1, 1, [(4, 'ragged_row')])
    >>> parse_file(b"No data", symbol="a.us", trade_date=date(2024, 1, 6), name="a.us.csv").records
    0
    """
    out = FileParse(symbol)
    if data.strip() == NO_DATA.encode():
        return out
    # Stooq writes UTF-8 (ASCII in practice): a record that is not is repaired or quarantined, never
    # a reason to guess a code page for the whole file.
    try:
        reader = DelimitedReader(Path(name), data=data, columns=COLUMNS, encoding="utf-8", allow_empty=True)
    except InputFileError as exc:
        first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace").strip()
        raise DataError(
            f"{name}: line 1 is {first[:80]!r}, want the header {','.join(COLUMNS)} or {NO_DATA!r}"
        ) from exc
    results: list[Result] = []
    with reader:
        for chunk in reader:
            for rej in chunk.rejected:
                if rej.raw.strip():  # a line of blanks is no record, as an empty line is none
                    detail = (
                        f"{rej.detail} ({','.join(COLUMNS)})" if rej.reason == "ragged_row" else rej.detail
                    )
                    results.append((rej.line, Reject(rej.line, rej.reason, detail, rej.raw), rej.raw))
            results.extend(_typed_rows(chunk, symbol))
    out.records = len(results)
    versions: dict[date, list[tuple[int, PriceRow, str]]] = {}
    for line, result, raw in sorted(results, key=lambda r: r[0]):
        if isinstance(result, Reject):
            out.rejects.append(result)
            continue
        if result.trade_date != trade_date:
            detail = f"row is dated {result.trade_date}, the partition is {trade_date}"
            out.rejects.append(Reject(line, "outside_file_day", detail, raw))
            continue
        versions.setdefault(result.trade_date, []).append((line, result, raw))
    for seen in versions.values():
        distinct = {row for _, row, _ in seen}
        if len(distinct) == 1:
            out.rows.append(seen[0][1])
            out.duplicates += len(seen) - 1
            continue
        lines_seen = ", ".join(str(n) for n, _, _ in seen)
        for number, _, text in seen:
            detail = f"{len(distinct)} different bars for {seen[0][1].trade_date} (lines {lines_seen})"
            out.rejects.append(Reject(number, "conflicting_rows", detail, text))
    out.rejects.sort(key=lambda r: r.line)
    return out
