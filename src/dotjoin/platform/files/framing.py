"""Record framing: where each CSV record of a block of bytes starts and ends, and on which line.

Two implementations with the same result:

* :func:`frame` (fast, vectorised): a line break ends a record when an even number of quote characters
  precede it; delimiters outside quotes are counted the same way. One numpy pass per byte class
  (quote, line feed, carriage return, delimiter), no Python loop per record. It flags an *anomaly* where
  the quoting is irregular (a quote inside an unquoted field, text after a closing quote, an
  unterminated quote) — the fast rule could then read differently from Python's :mod:`csv` — and the
  caller frames that part of the file with :func:`frame_slow`.
* :func:`frame_slow` (exact): Python's :mod:`csv` module over the lines; the reference semantics.

Lines are physical lines as Python's universal newlines see them: ``\\r\\n``, ``\\n`` and a lone
``\\r`` each end one line; lines are numbered from 1. Empty lines count as lines but are not records.
Framing works on bytes: quotes, delimiters and line breaks are ASCII in every encoding read this way.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

NL, CR = 0x0A, 0x0D
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
#: A quoted field spanning more lines than this is a quote that never closes (see :func:`frame_slow`).
MAX_RECORD_LINES = 10_000


@dataclass
class Framed:
    """The records of ``data[:consumed]``.

    Attributes:
        start: byte offset of each record.
        end: byte offset after each record's last field (its line break excluded).
        after: byte offset after each record's line break (where the next line starts).
        line: physical line on which each record starts.
        fields: number of fields of each record (0: the csv module could not split it).
        consumed: bytes framed: everything up to the last complete record.
        lines: physical lines in ``data[:consumed]``.
        empty_lines: lines that are not records.
        anomaly: irregular quoting: the vectorised rule may read differently from :mod:`csv`.
        multiline: per record, whether a (quoted) line break is inside it.
    """

    start: np.ndarray
    end: np.ndarray
    after: np.ndarray
    line: np.ndarray
    fields: np.ndarray
    consumed: int
    lines: int
    empty_lines: int
    anomaly: bool = False
    multiline: np.ndarray | None = None  # per record: it spans lines (fast framing only)

    def __len__(self) -> int:
        return len(self.start)


def _quote_anomaly(a: np.ndarray, quotes: np.ndarray, delimiter: int, final: bool, quote: int) -> bool:
    """Whether a quote is where RFC 4180 does not allow it (the fast rule would then misread)."""
    if len(quotes) % 2:
        return True  # an unterminated quoted field (only possible at the end of the file)
    if not quotes.size:
        return False
    opening, closing = quotes[0::2], quotes[1::2]
    before = a[np.maximum(opening - 1, 0)]
    ok_open = (opening == 0) | (before == delimiter) | (before == NL) | (before == CR) | (before == quote)
    at_end = closing + 1 >= len(a)
    following = a[np.minimum(closing + 1, len(a) - 1)]
    ok_close = np.where(
        at_end,
        final,
        (following == delimiter) | (following == NL) | (following == CR) | (following == quote),
    )
    return not (bool(ok_open.all()) and bool(ok_close.all()))


def _outside(positions: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """The subset of ``positions`` preceded by an even number of quotes."""
    if not quotes.size:
        return positions
    return positions[(np.searchsorted(quotes, positions) & 1) == 0]


def _line_breaks(a: np.ndarray, final: bool) -> np.ndarray:
    """Positions that end a line: every ``\\n``, and every ``\\r`` not followed by ``\\n``.

    A ``\\r`` at the very end of non-final data is undecided (its ``\\n`` may come next) and left out.
    """
    breaks = np.flatnonzero(a == NL)
    carriage = np.flatnonzero(a == CR)
    if carriage.size:
        following = a[np.minimum(carriage + 1, len(a) - 1)]
        last = carriage + 1 >= len(a)
        lone = carriage[np.where(last, final, following != NL)]
        if lone.size:
            breaks = np.sort(np.concatenate((breaks, lone)))
    return breaks


def frame(
    data: bytes, delimiter: str, *, quote: str | None = '"', first_line: int = 1, final: bool = False
) -> Framed | None:
    """Frame the complete records of ``data`` vectorised (quotes escaped by doubling them, RFC 4180).

    Args:
        data: bytes that start at a record boundary.
        delimiter: the one-character field separator.
        quote: the quote character, or None when fields are never quoted.
        first_line: the physical line number of ``data[0]``.
        final: ``data`` ends the file (a last record needs no line break).

    Returns:
        The framing, or None when ``data`` holds no complete record yet (and is not final).

    >>> f = frame(b'a,b\\r\\n\\n"x\\ny",2\\n', ",", final=True)
    >>> f.start.tolist(), f.line.tolist(), f.fields.tolist(), f.empty_lines, f.anomaly
    ([0, 6], [1, 3], [2, 2], 1, False)
    """
    a = np.frombuffer(data, dtype=np.uint8)
    d = ord(delimiter)
    q = ord(quote) if quote else -1
    quotes = np.flatnonzero(a == q) if quote else np.zeros(0, dtype=np.int64)
    breaks = _line_breaks(a, final)
    ends_of_record = _outside(breaks, quotes)
    if final:
        consumed = len(a)
    elif ends_of_record.size:
        consumed = int(ends_of_record[-1]) + 1
    else:
        return None
    quotes = quotes[quotes < consumed]
    body = a[:consumed]
    anomaly = _quote_anomaly(body, quotes, d, final, q)
    seg_end = ends_of_record.astype(np.int64)
    if final and consumed and (not seg_end.size or seg_end[-1] != consumed - 1):
        seg_end = np.append(seg_end, consumed)  # a last record without a line break
    seg_start = np.concatenate(([0], seg_end[:-1] + 1)).astype(np.int64) if seg_end.size else seg_end
    after = np.minimum(seg_end + 1, consumed)
    end = seg_end.copy()
    if end.size:  # a \r\n break: the \r is not part of the record
        crlf = (
            (end > seg_start)
            & (body[np.minimum(end, consumed - 1)] == NL)
            & (body[np.maximum(end - 1, 0)] == CR)
        )
        end -= crlf
    keep = end > seg_start
    start, end, after = seg_start[keep], end[keep], after[keep]
    first_break = np.searchsorted(breaks, start)
    line = first_line + first_break.astype(np.int64)
    multiline = np.searchsorted(breaks, end) > first_break  # a line break inside: a quoted one
    delims = _outside(np.flatnonzero(body == d), quotes)
    fields = np.searchsorted(delims, end) - np.searchsorted(delims, start) + 1
    lines = int(np.count_nonzero(breaks < consumed))
    if final and consumed and body[-1] not in (NL, CR):
        lines += 1  # the last line has no line break but is a line
    return Framed(
        start=start,
        end=end,
        after=after,
        line=line,
        fields=fields.astype(np.int64),
        consumed=consumed,
        lines=lines,
        empty_lines=int(np.count_nonzero(~keep)),
        anomaly=anomaly,
        multiline=multiline,
    )


def csv_reader(
    lines: Iterable[str], delimiter: str, *, quote: str | None, escape: str | None, space: bool = False
) -> Iterator[list[str]]:
    """Python's :mod:`csv` reader for a dialect: the one place its options are spelled (sniffer and framer).

    >>> list(csv_reader(['a, "b, c"\\n'], ",", quote='"', escape=None, space=True))
    [['a', 'b, c']]
    """
    return csv.reader(
        lines,
        delimiter=delimiter,
        quotechar=quote or '"',
        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
        escapechar=escape,
        doublequote=escape is None,
        skipinitialspace=space,
        strict=False,
    )


@dataclass
class SlowRecords:
    """Records framed and split by :mod:`csv`: the framing plus each record's fields.

    ``values`` hold each field's bytes decoded as latin-1 (byte for byte): the caller decodes records.
    """

    framed: Framed
    values: list[list[str] | None]  # None: the csv module could not split the record


def frame_slow(
    data: bytes,
    delimiter: str,
    *,
    quote: str | None = '"',
    escape: str | None = None,
    first_line: int = 1,
    final: bool = False,
    target: int = 0,
    width: int | None = None,
    space: bool = False,
) -> SlowRecords | None:
    """Frame and split records with Python's :mod:`csv` (the reference semantics).

    Records are read until at least ``target`` bytes are consumed; a record reaching the end of
    ``data`` is left for the next call unless ``final`` (it may continue in the next block).

    Args:
        data: bytes that start at a record boundary.
        delimiter: the field separator.
        first_line: the physical line number of ``data[0]``.
        final: ``data`` ends the file.
        target: stop at the first record boundary at or after this offset (0: read all of ``data``).
        width: the table's fields per record. A record spanning several lines with another width (or
            more than :data:`MAX_RECORD_LINES`) is a stray quote: its first line becomes a record that
            cannot be split, and reading goes on at the next line.
        space: spaces after a delimiter are not part of the next field.

    Returns:
        The records, or None when no complete record fits in ``data``.

    >>> r = frame_slow(b'a,b"c\\r\\n\\n"x\\ny",2\\n', ",", final=True)
    >>> r.values, r.framed.line.tolist(), r.framed.lines
    ([['a', 'b"c'], ['x\\ny', '2']], [1, 3], 4)
    >>> frame_slow(b'1,a,x\\n2,"b,y\\n3,c,z\\n4,d,w\\n', ",", final=True, width=3).values
    [['1', 'a', 'x'], None, ['3', 'c', 'z'], ['4', 'd', 'w']]
    """
    offsets = [0]
    for match in _LINE_BREAK.finditer(data):
        if not final and match.end() == len(data) and match.group() == b"\r":
            break  # undecided: a \n may follow in the next block
        offsets.append(match.end())
    if final and offsets[-1] < len(data):
        offsets.append(len(data))
    n_lines = len(offsets) - 1

    def reader_from(line: int) -> Iterator[list[str]]:
        texts = (data[offsets[i] : offsets[i + 1]].decode("latin-1") for i in range(line, n_lines))
        return csv_reader(texts, delimiter, quote=quote, escape=escape, space=space)

    reader = reader_from(0)
    base = 0  # the line the current csv reader started on
    starts: list[int] = []
    ends: list[int] = []
    afters: list[int] = []
    lines: list[int] = []
    values: list[list[str] | None] = []
    done = 0  # lines consumed by complete records
    empty = 0
    while done < n_lines and (not target or offsets[done] < target):
        try:
            record: list[str] | None = next(reader)
        except StopIteration:
            break
        except csv.Error:
            record = None  # e.g. a field over csv.field_size_limit(): quarantined as ragged
        used = base + reader.line_num  # type: ignore[attr-defined]
        span = used - done
        stray = span > MAX_RECORD_LINES or (
            span > 1 and width is not None and record is not None and len(record) != width
        )
        if used >= n_lines and not final and record and not stray:
            break  # may continue past the end of data
        if stray:  # a quote that never closes swallowed the lines after it: only its own line is lost
            used, record = done + 1, None
            reader, base = reader_from(used), used
        first, after = offsets[done], offsets[used]
        if record == []:
            empty += used - done
        else:
            end = (
                after - (data[after - 2 : after] == b"\r\n") - 1
                if data[after - 1 : after] in (b"\n", b"\r")
                else after
            )
            starts.append(first)
            ends.append(end)
            afters.append(after)
            lines.append(first_line + done)
            values.append(record)
        done = used
    if not done:
        return None
    framed = Framed(
        start=np.array(starts, dtype=np.int64),
        end=np.array(ends, dtype=np.int64),
        after=np.array(afters, dtype=np.int64),
        line=np.array(lines, dtype=np.int64),
        fields=np.array([len(v) if v is not None else 0 for v in values], dtype=np.int64),
        consumed=offsets[done],
        lines=done,
        empty_lines=empty,
    )
    return SlowRecords(framed, values)
