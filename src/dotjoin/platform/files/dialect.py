"""Dialect detection for delimited text: delimiter, quote, escape, header, preamble, footer, comments.

:func:`sniff` looks at the decoded start of a file (and, when it is known, its last lines) and decides
each part of the dialect with a confidence and says why in its evidence; a tie between two delimiters is
refused with an :class:`AmbiguousInputError` naming ``--delimiter``. Anything passed as an option
(``--delimiter``, ``--header``/``--no-header``, ``--skip-lines``...) is taken as given, not detected.

How each part is decided:

* **delimiter, quote, escape**: every candidate (``, ; \\t |``; ``"``, ``'`` or none; doubled quotes or a
  backslash escape) splits the sample with Python's :mod:`csv`; the candidate whose records most often
  share one width (more than one field) wins. Fields that hold another candidate delimiter count
  against a candidate unless they read as a number (``1,5`` with ``;`` is a decimal comma). Two
  candidates that fit equally well with different widths are refused as ambiguous.
* **preamble**: lines before the first run of records of the table's width (report titles, export
  banners, blank lines) are skipped and counted, never parsed.
* **footer**: trailing records whose first field is a summary word (``Total``, ``Sum``, ``Count``...)
  with mostly empty cells, or one-field lines such as ``(3 rows)``; a merely short record is a ragged row.
* **comments**: lines starting with ``#`` that are not records of the table's width.
* **header**: the first record is a header when its cells do not have the type of their column's body
  (text above numbers, dates or booleans); with only text columns, when its non-empty cells are names
  that never occur in the body. Otherwise there is no header and columns are ``column_1..n``; the run
  report says which way it went and why (``--header``/``--no-header`` decide).
* **trailing delimiter**: every record, the header included, ends with an empty field: the last column
  is dropped (without a header, an always-empty last column is kept: it may be data).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field

from dotjoin.platform.files.errors import AmbiguousInputError, InputFileError
from dotjoin.platform.files.framing import csv_reader

DELIMITERS = (",", ";", "\t", "|")
QUOTES = ('"', "'")
COMMENT = "#"
#: Records of the sample the dialect is decided on.
SAMPLE_RECORDS = 2000
_MIN_SHARE = 0.5
_SUMMARY = re.compile(r"^\s*(grand\s+)?(total|totals|sum|subtotal|count|end|eof|summary)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*[-+]?(\d{1,3}([.,' ]\d{3})+|\d+)([.,]\d+)?\s*%?$")
_INTEGER = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+[.,]?\d*|[.,]\d+)([eE][-+]?\d+)?$")
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$|^\d{1,2}/\d{1,2}/\d{2,4}"
)
_BOOLEAN = re.compile(r"^(true|false|yes|no|t|f|y|n)$", re.IGNORECASE)


@dataclass(frozen=True)
class Dialect:
    """How a delimited file is written, as detected (or given).

    Attributes:
        delimiter: the field separator.
        quote: the quote character, or None when fields are never quoted.
        escape: the escape character inside quotes (a backslash), or None when quotes are doubled.
        skip_initial_space: spaces after a delimiter are not part of the field (``1, "a, b", 2``).
        header: whether the first record of the table names the columns.
        columns: the column names: the header's fields as written, or ``column_1..n``.
        skip_lines: physical lines before the table (preamble), never parsed.
        footer_records: records at the end of the file that are a footer, not data.
        comment: lines starting with this are comments (skipped and counted), or None.
        trailing_delimiter: every record ends with an empty field after a last delimiter.
        pad_short_rows: records may omit trailing empty fields (read as empty, counted); otherwise a
            short record is a ``ragged_row``.
        record_delimiter: ``\\n``, ``\\r\\n``, ``\\r`` or ``mixed`` (each is read as a line break).
        confidence: share of the sampled records that have the table's width.
        evidence: phrases saying why, for the run report.
    """

    delimiter: str = ","
    quote: str | None = '"'
    escape: str | None = None
    skip_initial_space: bool = False
    header: bool = True
    columns: tuple[str, ...] = ()
    skip_lines: int = 0
    footer_records: int = 0
    comment: str | None = None
    trailing_delimiter: bool = False
    pad_short_rows: bool = False
    record_delimiter: str = "\n"
    confidence: float = 1.0
    evidence: tuple[str, ...] = field(default=())

    @property
    def width(self) -> int:
        """Fields per record as written (a trailing delimiter's empty field included)."""
        return len(self.columns) + self.trailing_delimiter

    def describe(self) -> dict[str, object]:
        """The dialect as plain values (run reports, the inferred schema file)."""
        return {
            "delimiter": self.delimiter,
            "quote": self.quote,
            "escape": self.escape,
            "skip_initial_space": self.skip_initial_space,
            "header": self.header,
            "skip_lines": self.skip_lines,
            "footer_records": self.footer_records,
            "comment": self.comment,
            "trailing_delimiter": self.trailing_delimiter,
            "pad_short_rows": self.pad_short_rows,
            "record_delimiter": self.record_delimiter,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class DialectOptions:
    """What the user fixed; None means detect (:data:`STRICT_CSV` fixes every part)."""

    delimiter: str | None = None
    quote: str | None = None  # "" means: no quoting
    escape: str | None = None  # "" means: quotes are doubled
    header: bool | None = None
    skip_lines: int | None = None
    comment: str | None = None  # "" means: no comment lines
    pad_short_rows: bool | None = None
    footer_records: int | None = None  # 0 means: no footer
    trailing_delimiter: bool | None = None  # False: an empty last field is data, never dropped

    def __post_init__(self) -> None:
        for name in ("delimiter", "quote", "escape", "comment"):
            value = getattr(self, name)
            if value is not None and len(value) > 1:
                raise InputFileError(f"--{name} must be one character, got {value!r}")
        if self.delimiter == "":
            raise InputFileError("--delimiter must be one character, got ''")
        if self.skip_lines is not None and self.skip_lines < 0:
            raise InputFileError(f"--skip-lines must be 0 or more, got {self.skip_lines}")
        if self.footer_records is not None and self.footer_records < 0:
            raise InputFileError(f"footer_records must be 0 or more, got {self.footer_records}")


#: Comma-separated, doubled quotes, a header first, and nothing guessed (no preamble, comment or footer
#: lines, no dropped trailing field): for formats whose specification fixes the dialect (GTFS feeds,
#: Open-Meteo CSV sections, cities files). Short rows are padded; ``Chunk.fields`` says how short.
STRICT_CSV = DialectOptions(
    delimiter=",",
    quote='"',
    escape="",
    header=True,
    skip_lines=0,
    comment="",
    pad_short_rows=True,
    footer_records=0,
    trailing_delimiter=False,
)


@dataclass
class _Split:
    """The sample split by one candidate dialect."""

    delimiter: str
    quote: str | None
    escape: str | None
    space: bool  # skip the spaces after a delimiter (``a, "b, c"``)
    records: list[list[str]]
    lines: list[int]  # physical line (1-based, within the sample) where each record starts
    width: int = 0
    share: float = 0.0
    purity: float = 1.0

    @property
    def score(self) -> tuple[float, float, int]:
        return (round(self.share * (0.5 + 0.5 * self.purity), 3), self.purity, self.width)


def _split(
    text: str, delimiter: str, quote: str | None, escape: str | None, space: bool, comment: str | None
) -> _Split:
    rows: list[list[str]] = []
    lines: list[int] = []
    reader = csv_reader(io.StringIO(text, newline=""), delimiter, quote=quote, escape=escape, space=space)
    start = 1
    try:
        for record in reader:
            if record and not (comment and record[0].startswith(comment)):
                rows.append(record)
                lines.append(start)
            start = reader.line_num + 1  # type: ignore[attr-defined]  # a csv reader
            if len(rows) >= SAMPLE_RECORDS:
                break
    except csv.Error:
        pass  # a field over the csv module's limit, or a quote open at the sample's end: score what was read
    return _Split(delimiter, quote, escape, space, rows, lines)


def _score(split: _Split) -> _Split:
    widths = Counter(len(r) for r in split.records)
    if not widths:
        return split
    # The table's width: the most frequent one; more fields win a tie (a short preamble line is not it).
    split.width = max(widths, key=lambda w: (widths[w], w))
    split.share = widths[split.width] / len(split.records)
    others = [d for d in DELIMITERS if d != split.delimiter]
    fields = [f for r in split.records[:200] if len(r) == split.width for f in r]
    if fields:
        impure = sum(1 for f in fields if any(d in f for d in others) and not _NUMBER.match(f))
        split.purity = 1 - impure / len(fields)
        if split.quote and split.escape is None:  # a backslash before a quote: escaped, not doubled
            escaped = sum(1 for f in fields if f"\\{split.quote}" in f)
            split.purity -= 0.5 * escaped / len(fields)
    return split


def _record_delimiter(text: str) -> str:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    kinds = [k for k, n in (("\r\n", crlf), ("\n", lf), ("\r", cr)) if n]
    if len(kinds) > 1:
        return "mixed"
    return kinds[0] if kinds else "\n"


Candidate = tuple[str, str | None, str | None, bool]


def _candidates(
    text: str, options: DialectOptions, delimiters: tuple[str, ...] = DELIMITERS
) -> list[Candidate]:
    delimiters = (options.delimiter,) if options.delimiter else delimiters
    if options.quote is not None:
        quotes: tuple[str | None, ...] = (options.quote or None,)
    else:
        quotes = ('"',) + (("'",) if re.search(r"(^|[,;\t|])'", text, re.MULTILINE) else ())
    if options.escape is not None:
        escapes: tuple[str | None, ...] = (options.escape or None,)
    else:
        escapes = (None,) + (("\\",) if '\\"' in text or "\\'" in text else ())
    spaced = {d for d in delimiters if d != " " and re.search(rf"{re.escape(d)} +[\"']", text)}
    return [
        (d, q, e, s)
        for d in delimiters
        for q in quotes
        for e in escapes
        for s in (False, True)
        if not s or d in spaced
    ]


def _spaced_share(text: str, delimiter: str) -> float:
    """The share of ``delimiter`` characters followed by a space."""
    total = text.count(delimiter)
    return text.count(delimiter + " ") / total if total else 0.0


def sniff(
    text: str,
    *,
    path: str,
    options: DialectOptions | None = None,
    tail: str | None = None,
) -> Dialect:
    """Decide the dialect of delimited text from its decoded start.

    Args:
        text: the start of the file, decoded, cut at a line end (the whole file when it is small).
        path: the file, for messages.
        options: parts the user fixed.
        tail: the file's last lines (complete lines), for footer detection; None when unknown.

    Raises:
        InputFileError: no records at all.
        AmbiguousInputError: two dialects fit equally well; the message names the option.

    >>> d = sniff("Exported 2026-01-02\\n\\nid;amount\\n1;2,5\\n2;3,0\\nTotal;5,5\\n", path="x.csv",
    ...           tail="2;3,0\\nTotal;5,5\\n")
    >>> d.delimiter, d.columns, d.skip_lines, d.footer_records, d.header
    (';', ('id', 'amount'), 2, 1, True)
    """
    options = options or DialectOptions()
    comment = None if options.comment == "" else (options.comment or COMMENT)
    body = text
    if options.skip_lines:
        body = "".join(text.splitlines(keepends=True)[options.skip_lines :])
    splits = [_score(_split(body, d, q, e, s, comment)) for d, q, e, s in _candidates(body, options)]
    if options.delimiter is None and not any(s.width > 1 and s.share >= 0.9 for s in splits):
        # No usual delimiter fits: fields separated by spaces (with quotes around those that hold one).
        splits += [_score(_split(body, *c[:3], False, comment)) for c in _candidates(body, options, (" ",))]
    splits = [s for s in splits if s.records]
    if not splits:
        raise InputFileError(f"{path}: no records (the file holds only blank or comment lines)")
    # Ties go to the escape the text shows: a backslash before the quote character means escaped quotes.
    # So do the spaces after delimiters, when most delimiters have one.
    splits.sort(
        key=lambda s: (
            s.score,
            (s.escape == "\\") == (f"\\{s.quote}" in body),
            s.space == (_spaced_share(body, s.delimiter) >= 0.9),
        ),
        reverse=True,
    )
    wide = [s for s in splits if s.width > 1]
    best = wide[0] if wide else splits[0]
    evidence = []
    rival = next((s for s in wide[1:] if s.delimiter != best.delimiter and s.width != best.width), None)
    if (
        options.delimiter is None
        and rival is not None
        and best.score[0] - rival.score[0] < 0.02
        and best.purity - rival.purity < 0.05
        and best.share < 0.999
    ):
        raise AmbiguousInputError(
            f"{path}: the delimiter is ambiguous: {best.share:.0%} of the sampled records have "
            f"{best.width} fields with {best.delimiter!r}, {rival.share:.0%} have {rival.width} with "
            f"{rival.delimiter!r}; pass --delimiter"
        )
    evidence.append(
        f"{best.share:.0%} of {len(best.records)} sampled records have {best.width} field(s) "
        f"with delimiter {best.delimiter!r}"
    )
    records, lines = best.records, best.lines
    pad = options.pad_short_rows
    if _header_above_short_rows(records, best.width) and not _blank_before_table(records, lines, best.width):
        pad = True if pad is None else pad
        # A header with more names than any record has fields: the rows are ragged, not the header.
        best.width = len(records[0])
        best.share = sum(len(r) == best.width for r in records) / len(records)
        evidence.append(f"the first record names {best.width} columns; records omit trailing empty fields")
    elif _header_near_width(records, best.width) and options.skip_lines is None:
        # Names a little fewer than most records' fields (quotes left unescaped split some values):
        # the names are the table's columns, and the wider records are ragged.
        best.width = len(records[0])
        best.share = sum(len(r) == best.width for r in records) / len(records)
        evidence.append(f"the first record names {best.width} columns; wider records are ragged")
    skip = options.skip_lines or 0
    first = 0
    if options.skip_lines is None:
        first = _table_start(records, best.width)
        skip = lines[first] - 1 if records else 0
        if skip:
            evidence.append(f"{skip} preamble line(s) before the table")
    table = records[first:]
    has_comments = bool(comment) and any(
        ln.startswith(comment or "") for ln in body.splitlines()[:SAMPLE_RECORDS]
    )
    header = options.header
    if header is None:
        header, why = _has_header(table, best.width, path=path)
        evidence.append(why)
    names = tuple(table[0]) if header and table else tuple(f"column_{i + 1}" for i in range(best.width))
    trailing = options.trailing_delimiter
    if trailing is None:
        trailing = header and _trailing_delimiter(table, best.width)
        if trailing:
            evidence.append("every record ends with a delimiter")
    if trailing:
        names = names[:-1]
    footer = options.footer_records or 0
    if tail is not None and options.footer_records is None:
        footer = _footer(tail, best, comment, pad=bool(pad))
        if footer >= len(table) - header:  # the "footer" would be every data record: it is the data
            footer = 0
        if footer:
            evidence.append(f"{footer} footer record(s) at the end")
    return Dialect(
        delimiter=best.delimiter,
        quote=best.quote,
        escape=best.escape,
        skip_initial_space=best.space,
        header=header,
        columns=unique_names(names) if header else names,
        skip_lines=skip,
        footer_records=footer,
        comment=comment if has_comments else None,
        trailing_delimiter=trailing,
        pad_short_rows=bool(pad),
        record_delimiter=_record_delimiter(text),
        confidence=round(best.share, 4),
        evidence=tuple(evidence),
    )


def _table_start(records: list[list[str]], width: int) -> int:
    """Index of the first record of the table: the first one of the table's width that is not a title
    or an empty row padded with delimiters (``Report,,``, ``,,``: one filled cell of three or more)."""
    for i, record in enumerate(records):
        if len(record) != width:
            continue
        if width >= 3 and sum(1 for f in record if f.strip()) <= 1 and i + 1 < len(records):
            continue
        return i
    return 0


def _blank_before_table(records: list[list[str]], lines: list[int], width: int) -> bool:
    """Whether a blank line separates the first records from the first one of the table's width
    (a metadata block above the table, as Open-Meteo's CSV has, rather than a wide header)."""
    first = _table_start(records, width)
    return first > 0 and lines[first] - lines[first - 1] > 1


def _header_near_width(records: list[list[str]], width: int) -> bool:
    """Whether the first record is a header a few names short of the most frequent width: distinct
    text names, at least four of five of that width, and one that some other record also has."""
    if len(records) < 3 or not (0.8 * width <= len(records[0]) < width):
        return False
    head = [c.strip() for c in records[0]]
    names = all(c and _kind(c) == "text" for c in head) and len(set(head)) == len(head)
    return names and any(len(r) == len(head) for r in records[1:])


def _header_above_short_rows(records: list[list[str]], width: int) -> bool:
    """Whether the first record is a header wider than most records and narrower than none (short rows)."""
    if len(records) < 2 or len(records[0]) <= width:
        return False
    head = records[0]
    alone = all(len(r) <= len(head) for r in records[1:])
    names = all(_kind(c) == "text" for c in head) and len({c.strip() for c in head}) == len(head)
    return alone and names


def _kind(value: str) -> str:
    v = value.strip()
    if not v:
        return "empty"
    if _INTEGER.match(v):
        return "integer"
    if _FLOAT.match(v) or _NUMBER.match(v):
        return "number"
    if _DATE.match(v):
        return "date"
    if _BOOLEAN.match(v):
        return "boolean"
    return "text"


def _has_header(records: list[list[str]], width: int, *, path: str) -> tuple[bool, str]:
    """Whether the first record names the columns, and why."""
    if len(records) < 2:
        first = records[0] if records else []
        named = bool(first) and all(_kind(c) == "text" for c in first)
        return named, "one record only: a header when all its cells are text"
    head = records[0]
    body = [r for r in records[1:201] if len(r) == width and r != head]  # a repeated header is not body
    if len(head) != width or not body:
        return True, "the first record is the header (assumed: too few records to compare)"
    votes = 0
    text_columns = 0
    for i, cell in enumerate(head):
        kinds = Counter(_kind(r[i]) for r in body) - Counter({"empty": len(body)})
        kinds.pop("empty", None)
        if not kinds:
            continue
        kind, n = kinds.most_common(1)[0]
        if kind == "text":
            text_columns += 1
            continue
        if n / sum(kinds.values()) < 0.9:
            continue
        cell_kind = _kind(cell)
        if cell_kind == "text":
            votes += 1
        elif cell_kind == kind or (cell_kind, kind) in {("integer", "number"), ("number", "integer")}:
            votes -= 1
    if votes > 0:
        return True, f"header: {votes} column(s) have text above typed values"
    if votes < 0:
        return False, "no header: the first record has the types of the body"
    cells = [c.strip() for c in head if c.strip()]
    body_values = {r[i].strip() for r in body for i in range(width)}
    if cells and all(_kind(c) == "text" for c in cells) and not (set(cells) & body_values):
        return True, "header: names that never occur in the body (--no-header if it is data)"
    return False, "no header: the first record's values are not all names or occur in the body (--header)"


def _trailing_delimiter(records: list[list[str]], width: int) -> bool:
    """The header (``records[0]``) and every full-width record end with an empty field. The header
    must too: rows that end empty under a header naming one more column are rows missing a value."""
    table = [r for r in records if len(r) == width]
    header_ends_empty = bool(records) and len(records[0]) == width and records[0][-1] == ""
    return width > 1 and header_ends_empty and all(r[-1] == "" for r in table)


def _footer(tail: str, split: _Split, comment: str | None, *, pad: bool) -> int:
    """How many records at the end of ``tail`` are a footer, not data: summary lines (``Total``...) with
    mostly empty cells, or one-field lines such as ``(3 rows)``. A merely short record is not a footer:
    it is a ragged row (or a padded one), so it is quarantined or loaded, never skipped."""
    tail_split = _split(tail, split.delimiter, split.quote, split.escape, split.space, comment)
    footer = 0
    records = tail_split.records
    for record in reversed(records):
        filled = sum(1 for f in record if f.strip())
        summary = bool(_SUMMARY.match(record[0])) and filled <= max(1, split.width // 2 + 1)
        one_field = len(record) == 1 and split.width > 2 and not pad
        if summary or one_field:
            footer += 1
        else:
            break
    boundary = len(records) - footer - 1  # the last data record: a full one, and not the header
    if not footer or footer > 5 or boundary < 0 or len(records[boundary]) != split.width:
        return 0
    return footer


def unique_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Header names with blanks named ``column_<n>`` and repeats suffixed ``_2``, ``_3``...

    >>> unique_names(("a", "", "a", " b "))
    ('a', 'column_2', 'a_2', 'b')
    """
    seen: Counter[str] = Counter()
    out = []
    for i, raw in enumerate(names):
        name = raw.strip().lstrip("\ufeff") or f"column_{i + 1}"
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return tuple(out)
