"""Pure parsing of a Stooq daily CSV: rows, identical repeats and rejected lines with a reason.

A file holds one symbol (its name, ``<symbol>.csv``) and is expected to hold one trade date. Every
non-empty line after the header is one input record and ends in exactly one of:

* a row (``PriceRow``);
* a duplicate — byte-identical values to a row already kept (an upstream repeat);
* a reject, with its 1-based line number and a reason code: ``wrong_field_count``, ``bad_encoding``,
  ``bad_date``, ``bad_number`` (names the field), ``bad_volume``, ``wrong_date`` (a row of another day
  than the partition being loaded) or ``conflicting_rows`` (two different bars for the same day: every
  version is rejected, as none can be trusted).

Value rules (``low <= open``, positive prices, ...) are the quality check's business, not the parser's:
a parsable row is loaded, and the check then fails the date loudly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from dotjoin.exceptions import DataError

COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")
PRICE_FIELDS = COLUMNS[1:5]
NO_DATA = "No data"


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


class _BadField(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _price(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadField("bad_number", f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _BadField("bad_number", f"{name} {text!r} is not finite")
    return value


def _volume(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise _BadField("bad_volume", f"Volume {text!r} is not a number") from None
    if not value.is_integer():  # also rejects nan/inf
        raise _BadField("bad_volume", f"Volume {text!r} is not a whole number")
    return int(value)


def parse_row(symbol: str, fields: list[str]) -> PriceRow:
    """One data line's fields as a row; raises ``_BadField`` with a reason code.

    >>> parse_row("aapl.us", "2024-01-02,1.5,2,1,1.75,100".split(","))
    PriceRow(symbol='aapl.us', trade_date=datetime.date(2024, 1, 2), open=1.5, high=2.0, low=1.0, close=1.75, volume=100)
    """  # noqa: E501
    if len(fields) != len(COLUMNS):
        raise _BadField(
            "wrong_field_count", f"{len(fields)} fields, want {len(COLUMNS)} ({','.join(COLUMNS)})"
        )
    raw_date, *prices, raw_volume = (f.strip() for f in fields)
    try:
        day = date.fromisoformat(raw_date)
    except ValueError:
        raise _BadField("bad_date", f"Date {raw_date!r} is not YYYY-MM-DD") from None
    o, h, lo, c = (_price(n, t) for n, t in zip(PRICE_FIELDS, prices, strict=True))
    return PriceRow(symbol, day, o, h, lo, c, _volume(raw_volume))


def parse_file(data: bytes, *, symbol: str, trade_date: date, name: str) -> FileParse:
    """Parse one raw file of ``symbol`` for the partition ``trade_date``.

    Args:
        data: the file's bytes as landed.
        symbol: the symbol the file was fetched for.
        trade_date: the partition being loaded; rows of other dates are rejected (``wrong_date``).
        name: the file, for error messages.

    Raises:
        DataError: the file is neither ``No data`` nor a CSV with Stooq's header (not record-level:
            the whole file is wrong, and one line names it).

    >>> csv = b"Date,Open,High,Low,Close,Volume\\n2024-01-02,1,2,1,1.5,10\\n2024-01-02,1,2,1,1.5,10\\nx\\n"
    >>> p = parse_file(csv, symbol="a.us", trade_date=date(2024, 1, 2), name="a.us.csv")
    >>> p.records, len(p.rows), p.duplicates, [(r.line, r.reason) for r in p.rejects]
    (3, 1, 1, [(4, 'wrong_field_count')])
    >>> parse_file(b"No data", symbol="a.us", trade_date=date(2024, 1, 6), name="a.us.csv").records
    0
    """
    out = FileParse(symbol)
    lines = data.split(b"\n")
    first = lines[0].rstrip(b"\r").decode("utf-8", errors="replace").strip()
    if first == NO_DATA and not any(line.strip() for line in lines[1:]):
        return out
    header = [h.strip().lower() for h in first.lstrip("\ufeff").split(",")]
    if header != [c.lower() for c in COLUMNS]:
        raise DataError(
            f"{name}: line 1 is {first[:80]!r}, want the header {','.join(COLUMNS)} or {NO_DATA!r}"
        )
    versions: dict[date, list[tuple[int, PriceRow, str]]] = {}
    for number, raw_line in enumerate(lines[1:], start=2):
        raw_bytes = raw_line.rstrip(b"\r")
        if not raw_bytes.strip():
            continue
        out.records += 1
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.rejects.append(Reject(number, "bad_encoding", f"not UTF-8: {exc.reason}", repr(raw_bytes)))
            continue
        try:
            row = parse_row(symbol, text.split(","))
        except _BadField as exc:
            out.rejects.append(Reject(number, exc.reason, str(exc), text))
            continue
        if row.trade_date != trade_date:
            detail = f"row is dated {row.trade_date}, the partition is {trade_date}"
            out.rejects.append(Reject(number, "wrong_date", detail, text))
            continue
        versions.setdefault(row.trade_date, []).append((number, row, text))
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
