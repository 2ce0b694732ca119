"""Matching a file's header to a declared column set (any case, spacing or order), and the delimiter
that splits the header into exactly those columns.

Used when the columns are known in advance (a declared schema that names its columns, the CSV ETL's
documented formats): the header decides the delimiter, more surely than the sniffer can.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from dotjoin.platform.files.dialect import DELIMITERS
from dotjoin.platform.files.errors import AmbiguousInputError, InputFileError

MIN_CONFIDENCE = 0.75
_SAMPLE_RECORDS = 500


def header_key(name: str) -> str:
    """The comparison key of a header name: letters and digits only, lower case.

    >>> [header_key(n) for n in (" Author Name ", "AUTHOR_NAME", "authorName", "author-name")]
    ['authorname', 'authorname', 'authorname', 'authorname']
    """
    return re.sub(r"[^0-9a-z]", "", name.strip().lstrip("\ufeff").lower())


def map_header(fields: list[str], expected: tuple[str, ...], *, path: str) -> tuple[str, ...]:
    """Map the header's fields (any case, spacing or order) to the canonical column names.

    Raises:
        InputFileError: missing, unknown or repeated columns, naming them.

    >>> map_header(["SHA", " Repo "], ("repo", "sha"), path="x.csv")
    ('sha', 'repo')
    """
    by_key = {header_key(c): c for c in expected}
    mapped: list[str] = []
    unknown: list[str] = []
    for field in fields:
        column = by_key.get(header_key(field))
        if column is None:
            unknown.append(field)
        else:
            mapped.append(column)
    missing = [c for c in expected if c not in mapped]
    repeated = sorted({c for c in mapped if mapped.count(c) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(repr(u) for u in unknown)}")
        if repeated:
            parts.append(f"repeated {', '.join(repeated)}")
        raise InputFileError(
            f"{path}: unknown column set in the header (line 1): {'; '.join(parts)}; "
            f"expected: {', '.join(expected)}"
        )
    return tuple(mapped)


@dataclass(frozen=True)
class HeaderMatch:
    """The decided dialect and header of a file.

    Attributes:
        delimiter: the field separator.
        columns: canonical column names in the file's order.
        header: the header's fields as written.
        confidence: share of sampled records with as many fields as the header.
        evidence: one phrase saying why.
    """

    delimiter: str
    columns: tuple[str, ...]
    header: tuple[str, ...]
    confidence: float
    evidence: str


def _sample_records(text: str, delimiter: str) -> list[list[str]]:
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for record in reader:
            if record:
                records.append(record)
            if len(records) >= _SAMPLE_RECORDS:
                break
    except csv.Error:
        pass  # the sample may end inside a quoted field: the records before it still score the candidate
    return records


def _fit(records: list[list[str]], width: int) -> float:
    body = records[1:]
    return sum(len(r) == width for r in body) / len(body) if body else 1.0


def detect_dialect(
    text: str, expected: tuple[str, ...], *, path: str, forced: str | None = None
) -> HeaderMatch:
    """Decide the delimiter and map the header, from the decoded start of a file.

    A delimiter is chosen when it splits the first record into the expected column set; its confidence
    is the share of sampled records with the header's width. The file is refused as ambiguous when
    another delimiter splits the records into that width clearly more often.

    Args:
        text: the decoded sample, cut at a line end.
        expected: the canonical columns.
        path: the file, for messages.
        forced: a ``--delimiter`` that overrules detection.

    Raises:
        InputFileError: no header, or the header is not the expected column set (with a hint when
            another delimiter would fit: a wrong ``--delimiter``).
        AmbiguousInputError: the header and the records disagree about the delimiter.

    >>> d = detect_dialect("a;B\\n1;2\\n", ("a", "b"), path="x.csv")
    >>> d.delimiter, d.columns, d.confidence
    (';', ('a', 'b'), 1.0)
    """
    candidates = (forced,) if forced else DELIMITERS
    samples = {d: _sample_records(text, d) for d in {*DELIMITERS, *candidates}}
    if not any(samples.values()):
        raise InputFileError(f"{path}: no header line (expected columns: {', '.join(expected)})")
    fits: dict[str, tuple[str, ...]] = {}
    errors: dict[str, InputFileError] = {}
    for d in candidates:
        records = samples[d]
        try:
            fits[d] = map_header(records[0] if records else [], expected, path=path)
        except InputFileError as exc:
            errors[d] = exc
    if not fits:
        if forced:
            better = [d for d in DELIMITERS if d != forced and samples[d] and _maps(samples[d][0], expected)]
            if better:
                width = len(samples[forced][0]) if samples[forced] else 0
                raise InputFileError(
                    f"{path}: wrong delimiter {forced!r}: the header (line 1) splits into {width} "
                    f"field(s) with it, but into the expected columns with {better[0]!r}"
                )
            raise errors[forced]
        # The delimiter whose split of the header comes closest names what is wrong.
        best = max(candidates, key=lambda d: len(samples[d][0]) if samples[d] else 0)
        raise errors[best]
    chosen = next(iter(fits))
    width = len(fits[chosen])
    confidence = _fit(samples[chosen], width)
    rivals = {d: _fit(samples[d], width) for d in DELIMITERS if d != chosen and samples[d]}
    rival = max(rivals, key=lambda d: rivals[d], default=None)
    if not forced and rival is not None and rivals[rival] >= MIN_CONFIDENCE and confidence < 0.5:
        raise AmbiguousInputError(
            f"{path}: the delimiter is ambiguous: the header splits into the expected columns with "
            f"{chosen!r}, but {rivals[rival]:.0%} of the sampled records have {width} fields only with "
            f"{rival!r} ({confidence:.0%} with {chosen!r}); pass --delimiter"
        )
    evidence = "--delimiter" if forced else f"header splits into the expected columns with {chosen!r}"
    return HeaderMatch(chosen, fits[chosen], tuple(samples[chosen][0]), round(confidence, 4), evidence)


def _maps(fields: list[str], expected: tuple[str, ...]) -> bool:
    try:
        map_header(fields, expected, path="")
    except InputFileError:
        return False
    return True
