"""Typed parsing of text values, vectorised on Arrow arrays: whitespace, integers, timestamps, dates.

Every function takes and returns Arrow arrays (or numpy masks) and has no side effects; a value that
does not parse becomes NULL (or False in a validity mask) and the caller turns that into a reason code.
Regular expressions (RE2) classify values, fixed-width formats are decoded from the string buffer with
numpy, and calendars are computed with integer arithmetic: no Python loop per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Characters trimmed from both ends of every field (FORMATS.md: "fields are trimmed of spaces and tabs").
FIELD_SPACE = " \t"
#: Whitespace as Python's ``str.split()`` sees it (separates parent SHAs), as an RE2 character class.
PY_WHITESPACE = (
    r"[\t\n\x0b\x0c\r\x1c-\x1f \x{0085}\x{00a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}]"
)
UTC_US = pa.timestamp("us", tz="UTC")


# -- text -------------------------------------------------------------------------------------------


def trim(values: pa.Array) -> pa.Array:
    """Trim spaces and tabs from both ends (not other whitespace: a no-break space is content).

    >>> trim(pa.array([" a\\t", "b c ", "\\u00a0x"])).to_pylist()
    ['a', 'b c', '\\xa0x']
    """
    return pc.utf8_trim(values, FIELD_SPACE)


def squeeze(values: pa.Array) -> pa.Array:
    """Trim, and collapse runs of spaces and tabs inside a one-line value (names) to one space.

    >>> squeeze(pa.array(["  Ada \t Lovelace ", "Bob"])).to_pylist()
    ['Ada Lovelace', 'Bob']
    """
    values = trim(values)
    blanks = _mask(pc.match_substring(values, "  ")) | _mask(pc.match_substring(values, "\t"))
    if not blanks.any():
        return values
    return pc.replace_substring_regex(values, r"[ \t]{2,}|\t", " ")


def lower(values: pa.Array) -> pa.Array:
    """Unicode lower case (emails, repository names, SHAs).

    >>> lower(pa.array(["Alice@Example.COM"])).to_pylist()
    ['alice@example.com']
    """
    return pc.utf8_lower(values)


def upper(values: pa.Array) -> pa.Array:
    """Unicode upper case (invoice ids, store codes, SKUs, currency codes).

    >>> upper(pa.array(["inv-1", "us-nyc-01"])).to_pylist()
    ['INV-1', 'US-NYC-01']
    """
    return pc.utf8_upper(values)


def is_empty(values: pa.Array) -> np.ndarray:
    """True where a (trimmed) value is empty: a missing field.

    >>> is_empty(pa.array(["", "x"])).tolist()
    [True, False]
    """
    return _mask(pc.equal(pc.utf8_length(values), 0))


def matches(values: pa.Array, pattern: str) -> np.ndarray:
    """True where the whole value matches the RE2 ``pattern`` (anchor it with ``^...$``).

    >>> matches(pa.array(["abc", "ab1"]), r"^[a-z]+$").tolist()
    [True, False]
    """
    return _mask(pc.match_substring_regex(values, pattern))


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


# -- integers ---------------------------------------------------------------------------------------

INTEGER = r"^[+-]?\d+$"
_INT64_SAFE = r"^[+-]?\d{1,18}$"


def parse_integers(values: pa.Array) -> pa.Array:
    """Parse ``[+-]?digits`` as int64; anything else (or more than 18 digits) is NULL.

    >>> parse_integers(pa.array(["+7", "-3", "007", "1.5", "", "12a"])).to_pylist()
    [7, -3, 7, None, None, None]
    """
    ok = matches(values, _INT64_SAFE)
    cleaned = pc.replace_substring_regex(pc.if_else(ok, values, "0"), r"^\+", "")
    return pc.if_else(ok, pc.cast(cleaned, pa.int64()), pa.scalar(None, pa.int64()))


# -- timestamps -------------------------------------------------------------------------------------

TS_EPOCH = r"^\d{9,10}$"
TS_ISO_Z = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}Z$"
TS_ISO_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"
TS_RFC2822 = r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"
TS_DMY = r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$"
TS_ISO_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}$"
TS_EPOCH_MS = r"^\d{12,13}$"
#: The named timestamp formats a schema may accept (``logicalTypeOptions.format``).
TIMESTAMP_FORMATS = ("iso8601", "rfc2822", "epoch_s", "epoch_ms", "dmy")
_NAIVE_FORMATS = frozenset({TS_ISO_NAIVE, TS_DMY})
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _code3(names: Sequence[str]) -> np.ndarray:
    return np.array([(ord(n[0]) << 16) | (ord(n[1]) << 8) | ord(n[2]) for n in names], dtype=np.int64)


_WEEKDAY_CODES = np.sort(_code3(_WEEKDAYS))
_MONTH_CODES = _code3(_MONTHS)
_MONTH_ORDER = np.argsort(_MONTH_CODES)


def _fixed(values: pa.Array, width: int) -> np.ndarray:
    """The bytes of a string array whose values all have ``width`` bytes, as an (n, width) matrix."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    first = int(offsets[0])
    return data[first : first + width * len(values)].reshape(len(values), width)


def _col(c: np.ndarray, i: int) -> np.ndarray:
    return c[:, i].astype(np.int64)


def _num(c: np.ndarray, start: int, digits: int) -> np.ndarray:
    out = np.zeros(len(c), dtype=np.int64)
    for i in range(start, start + digits):
        out = out * 10 + (_col(c, i) - 48)
    return out


def civil_to_epoch(
    year: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    hour: np.ndarray,
    minute: np.ndarray,
    second: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since 1970 of proleptic Gregorian date-times, and whether each is a real date-time.

    Valid means what Python's ``datetime`` accepts: year 1..9999, month 1..12, a day that exists in
    that month, hour 0..23, minute and second 0..59.

    >>> s, ok = civil_to_epoch(*(np.array([v, v]) for v in (2024, 2, 29, 23, 59, 59)))
    >>> s.tolist(), ok.tolist()
    ([1709251199, 1709251199], [True, True])
    >>> civil_to_epoch(*(np.array([v]) for v in (2023, 2, 29, 0, 0, 0)))[1].tolist()
    [False]
    """
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    safe_month = np.clip(month, 1, 12)
    days_in_month = month_days[safe_month] + ((safe_month == 2) & leap)
    ok = (
        (year >= 1)
        & (year <= 9999)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= days_in_month)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    # days_from_civil (H. Hinnant): exact integer arithmetic, vectorised.
    y = year - (safe_month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (safe_month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second, ok


def _iso(c: np.ndarray, *, offset: bool) -> tuple[np.ndarray, np.ndarray]:
    secs, ok = civil_to_epoch(
        _num(c, 0, 4), _num(c, 5, 2), _num(c, 8, 2), _num(c, 11, 2), _num(c, 14, 2), _num(c, 17, 2)
    )
    if offset:  # Python's fromisoformat: any +hh:mm whose total is under 24 hours
        minutes = _num(c, 20, 2) * 60 + _num(c, 23, 2)
        ok &= minutes < 1440
        secs = secs - np.where(c[:, 19] == ord("-"), -minutes, minutes) * 60
    return secs, ok


def _rfc2822(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Tue, 03 Mar 2026 14:05:00 +0100`` (strptime ``%a, %d %b %Y %H:%M:%S %z``)."""
    weekday = (_col(c, 0) << 16) | (_col(c, 1) << 8) | _col(c, 2)
    month_code = (_col(c, 8) << 16) | (_col(c, 9) << 8) | _col(c, 10)
    pos = np.clip(np.searchsorted(_MONTH_CODES[_MONTH_ORDER], month_code), 0, 11)
    month_ok = _MONTH_CODES[_MONTH_ORDER][pos] == month_code
    month = np.where(month_ok, _MONTH_ORDER[pos] + 1, 0)
    wpos = np.clip(np.searchsorted(_WEEKDAY_CODES, weekday), 0, 6)
    secs, ok = civil_to_epoch(
        _num(c, 12, 4), month, _num(c, 5, 2), _num(c, 17, 2), _num(c, 20, 2), _num(c, 23, 2)
    )
    off_h, off_m = _num(c, 27, 2), _num(c, 29, 2)
    ok &= month_ok & (_WEEKDAY_CODES[wpos] == weekday) & (off_h <= 23) & (off_m <= 59)
    minutes = off_h * 60 + off_m
    return secs - np.where(c[:, 26] == ord("-"), -minutes, minutes) * 60, ok


def _dmy(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dd/mm/yyyy hh:mm`` in UTC (strptime ``%d/%m/%Y %H:%M``)."""
    return civil_to_epoch(
        _num(c, 6, 4),
        _num(c, 3, 2),
        _num(c, 0, 2),
        _num(c, 11, 2),
        _num(c, 14, 2),
        np.zeros(len(c), np.int64),
    )


_FIXED_FORMATS = (
    (TS_ISO_Z, 20, lambda c: _iso(c, offset=False)),
    (TS_ISO_NAIVE, 19, lambda c: _iso(c, offset=False)),
    (TS_ISO_OFFSET, 25, lambda c: _iso(c, offset=True)),
    (TS_RFC2822, 31, _rfc2822),
    (TS_DMY, 16, _dmy),
)


def parse_timestamps(values: pa.Array) -> pa.Array:
    """Parse the CSV ETL's timestamp formats to UTC; anything else is NULL.

    Formats: ISO 8601 ``yyyy-mm-ddThh:mm:ss`` (``T`` or a space) with ``Z``, a ``+hh:mm`` offset or
    none (naive: read as UTC); RFC 2822 ``Tue, 03 Mar 2026 14:05:00 +0100``; epoch seconds (9 or 10
    digits); ``dd/mm/yyyy hh:mm`` (UTC). Impossible dates and times (February 30, 25:00) do not parse.

    >>> ts = parse_timestamps(pa.array([
    ...     "2024-03-05T10:11:12Z", "2024-03-05 11:11:12+01:00", "Tue, 05 Mar 2024 10:11:12 +0000",
    ...     "1709633472", "05/03/2024 10:11", "2024-02-30T10:00:00Z", "N/A", "2024-03-05 10:11:12",
    ... ]))
    >>> [t.isoformat() if t else None for t in ts.to_pylist()]  # doctest: +NORMALIZE_WHITESPACE
    ['2024-03-05T10:11:12+00:00', '2024-03-05T10:11:12+00:00', '2024-03-05T10:11:12+00:00',
     '2024-03-05T10:11:12+00:00', '2024-03-05T10:11:00+00:00', None, None, '2024-03-05T10:11:12+00:00']
    """
    return parse_timestamps_in(values, formats=("iso8601", "rfc2822", "epoch_s", "dmy"))[0]


def parse_timestamps_in(
    values: pa.Array, *, formats: Sequence[str] = TIMESTAMP_FORMATS, zone: str = "UTC"
) -> tuple[pa.Array, np.ndarray]:
    """Parse timestamps in the named ``formats``; naive ones (no offset) are read in ``zone``.

    Returns:
        (UTC timestamps, NULL where no format parses; True where the value had no offset).

    >>> ts, naive = parse_timestamps_in(pa.array(["2024-07-01 12:00:00", "2024-07-01T12:00:00Z",
    ...                                          "1719835200000"]), zone="Europe/Paris")
    >>> [t.isoformat() for t in ts.to_pylist()], naive.tolist()  # doctest: +NORMALIZE_WHITESPACE
    (['2024-07-01T10:00:00+00:00', '2024-07-01T12:00:00+00:00', '2024-07-01T12:00:00+00:00'],
     [True, False, False])
    """
    values = _plain(values)
    n = len(values)
    seconds = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    naive = np.zeros(n, dtype=bool)
    millis = np.zeros(n, dtype=bool)
    left = np.arange(n)  # rows no format has claimed yet; each pattern only scans those
    fixed = [f for f in _FIXED_FORMATS if _FORMAT_OF[f[0]] in formats]
    epochs = [(TS_EPOCH, False)] * ("epoch_s" in formats) + [(TS_EPOCH_MS, True)] * ("epoch_ms" in formats)
    for pattern, width, parser in fixed:
        if not len(left):
            break
        pool = values if len(left) == n else values.take(pa.array(left))
        hit = matches(pool, pattern)
        if not hit.any():
            continue
        subset = pool if hit.all() else pool.filter(pa.array(hit))
        secs, valid = parser(_fixed(subset, width))
        rows = left[hit]
        seconds[rows], ok[rows] = secs, valid
        naive[rows] = pattern in _NAIVE_FORMATS
        left = left[~hit]
    for pattern, is_ms in epochs:
        if not len(left):
            break
        pool = values if len(left) == n else values.take(pa.array(left))
        epoch = matches(pool, pattern)
        if epoch.any():
            rows = left[epoch]
            seconds[rows] = pc.cast(pool.filter(pa.array(epoch)), pa.int64()).to_numpy()
            ok[rows], millis[rows] = True, is_ms
            left = left[~epoch]
    micros = np.where(millis, seconds * 1_000, seconds * 1_000_000)
    result = pa.array(micros, type=UTC_US, mask=~ok)
    if zone != "UTC" and (naive & ok).any():
        local = pa.array(micros, type=pa.timestamp("us"), mask=~(naive & ok))
        shifted = pc.assume_timezone(local, timezone=zone, ambiguous="earliest", nonexistent="earliest")
        result = pc.if_else(pa.array(naive & ok), shifted.cast(UTC_US), result)
    naive &= ok
    return result, naive


def parse_dates(values: pa.Array) -> pa.Array:
    """Parse ``yyyy-mm-dd`` dates (real calendar dates only); anything else is NULL.

    >>> parse_dates(pa.array(["2024-02-29", "2023-02-29", "2024-1-1"])).to_pylist()
    [datetime.date(2024, 2, 29), None, None]
    """
    values = _plain(values)
    days = np.zeros(len(values), dtype=np.int64)
    ok = matches(values, r"^\d{4}-\d{2}-\d{2}$")
    if ok.any():
        rows = np.flatnonzero(ok)
        c = _fixed(values if len(rows) == len(values) else values.take(pa.array(rows)), 10)
        zero = np.zeros(len(rows), dtype=np.int64)
        secs, valid = civil_to_epoch(_num(c, 0, 4), _num(c, 5, 2), _num(c, 8, 2), zero, zero, zero)
        days[rows], ok[rows] = secs // 86400, valid
    return pc.cast(pa.array(days.astype(np.int32), mask=~ok), pa.date32())


_FORMAT_OF = {
    TS_ISO_Z: "iso8601",
    TS_ISO_NAIVE: "iso8601",
    TS_ISO_OFFSET: "iso8601",
    TS_RFC2822: "rfc2822",
    TS_DMY: "dmy",
}


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous ``string`` array (the fixed-width decoder reads its buffers)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.cast(pa.string()) if values.type != pa.string() else values


def at_or_after(ts: pa.Array, reference: datetime) -> np.ndarray:
    """True where a timestamp is at or after ``reference`` (the future_timestamp rule).

    >>> from datetime import UTC
    >>> ts = parse_timestamps(pa.array(["2099-01-01T00:00:00Z", "x"]))
    >>> at_or_after(ts, datetime(2026, 1, 1, tzinfo=UTC)).tolist()
    [True, False]
    """
    return _mask(pc.greater_equal(ts, pa.scalar(reference, UTC_US)))
