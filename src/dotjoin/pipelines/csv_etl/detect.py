"""Encoding, dialect and header detection for CSV input, each with a confidence.

The detectors look at the first :data:`~dotjoin.pipelines.csv_etl.config.SAMPLE_BYTES` of a file and
either decide with a confidence or refuse with an :class:`AmbiguousInputError` that names the file and
what is ambiguous (``--encoding`` / ``--delimiter`` overrule them). Bytes are classified as:

* a byte-order mark: UTF-8, UTF-16 or UTF-32, certain;
* NUL bytes: UTF-16 without a BOM when every other byte is NUL, else a binary file (an error);
* only ASCII, or only well-formed UTF-8: UTF-8, certain;
* UTF-8 with some records that are not UTF-8 (the "latin-1 bytes in a UTF-8 file" of a careless
  export): UTF-8, and each such record is decoded as cp1252 instead (:func:`decode_record`; a record
  that is not cp1252 either is quarantined as ``bad_encoding``). The confidence is the share of
  non-ASCII byte runs that are UTF-8.
* No UTF-8 at all but non-ASCII bytes: a legacy single-byte file. When its non-ASCII runs are short
  (accented letters in Latin words) every record decodes as cp1252; when they are mostly long (words
  of a Cyrillic, Greek or CJK code page) or UTF-8 is only a sliver of the evidence, the code page is a
  guess: the file is refused unless ``--encoding`` names it.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
from dataclasses import dataclass

import numpy as np

from dotjoin.exceptions import DataError

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.75
#: Below this share of UTF-8 among the non-ASCII runs, a file is not "UTF-8 with some legacy records".
UTF8_SLIVER = 0.1
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
REPAIR_CODEC = "cp1252"
_SAMPLE_RECORDS = 500
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[[*range(0, 9), 11, 12, *range(14, 32), 127]] = True


class InputFileError(DataError):
    """An input file that cannot be read as the expected CSV (the message names the file)."""


class AmbiguousInputError(InputFileError):
    """Detection could not decide with enough confidence; ``--encoding``/``--delimiter`` decide."""


def decode_record(data: bytes) -> str:
    """Decode one record: UTF-8, else cp1252 (a repair of a legacy record), else fail.

    Raises:
        UnicodeDecodeError: the bytes are neither UTF-8 nor cp1252 (0x81, 0x8D, 0x8F, 0x90 and 0x9D
            are undefined in cp1252): the record is quarantined as ``bad_encoding``.

    >>> decode_record("Zoë".encode()), decode_record("José".encode("cp1252"))
    ('Zoë', 'José')
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(REPAIR_CODEC)


@dataclass(frozen=True)
class EncodingGuess:
    """The decided encoding of a file.

    Attributes:
        encoding: Python codec name of the bytes after the BOM (``utf-8``, ``cp1252``, ``utf-16-le``...).
        bom: length of the byte-order mark to skip.
        confidence: 0..1, the share of the sampled evidence that agrees with the decision.
        evidence: one phrase saying why, for the run report.
    """

    encoding: str
    bom: int
    confidence: float
    evidence: str

    @property
    def is_utf8(self) -> bool:
        return self.encoding == "utf-8"


def utf8_runs(data: bytes, *, at_eof: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of non-ASCII bytes in ``data`` and whether each is well-formed UTF-8.

    Valid UTF-8 sequences consist of non-ASCII bytes only, so a text is valid UTF-8 exactly when every
    maximal non-ASCII run is. A run cut by the end of a sample (``at_eof=False``) is dropped.

    Returns:
        (starts, ends, valid) as numpy arrays.

    >>> starts, ends, valid = utf8_runs("é ".encode() + b"\\xe9 x")
    >>> starts.tolist(), ends.tolist(), valid.tolist()
    ([0, 3], [2, 4], [True, False])
    """
    a = np.frombuffer(data, dtype=np.uint8)
    high = np.flatnonzero(a >= 0x80)
    if not high.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool)
    breaks = np.flatnonzero(np.diff(high) != 1)
    starts = np.concatenate(([high[0]], high[breaks + 1])).astype(np.int64)
    ends = np.concatenate((high[breaks] + 1, [high[-1] + 1])).astype(np.int64)
    if not at_eof and ends[-1] == len(a):
        starts, ends = starts[:-1], ends[:-1]
    length = ends - starts
    first = a[starts] if starts.size else np.zeros(0, dtype=np.uint8)
    second = a[np.minimum(starts + 1, len(a) - 1)] if starts.size else first
    # Most runs are one character: decide lengths 1 and 2 in numpy, the rest by decoding.
    valid = (length == 2) & (first >= 0xC2) & (first <= 0xDF) & (second >= 0x80) & (second <= 0xBF)
    for i in np.flatnonzero(length >= 3):
        try:
            data[starts[i] : ends[i]].decode("utf-8")
        except UnicodeDecodeError:
            continue
        valid[i] = True
    return starts, ends, valid


def _looks_utf16(a: np.ndarray) -> str | None:
    """``utf-16-le``/``-be`` when one byte of every pair is NUL (ASCII text in UTF-16), else None."""
    if len(a) < 4:
        return None
    even, odd = a[0 : len(a) - 1 : 2], a[1::2]
    zero_even, zero_odd = float(np.mean(even == 0)), float(np.mean(odd == 0))
    if zero_odd > 0.4 and zero_even < 0.05:
        return "utf-16-le"
    if zero_even > 0.4 and zero_odd < 0.05:
        return "utf-16-be"
    return None


def detect_encoding(
    sample: bytes, *, path: str, forced: str | None = None, at_eof: bool = False
) -> EncodingGuess:
    """Decide the encoding of a file from its first bytes.

    Args:
        sample: the first bytes of the file.
        path: the file, for messages.
        forced: an ``--encoding`` that overrules detection (a BOM of that encoding is still skipped).
        at_eof: whether ``sample`` is the whole file.

    Raises:
        InputFileError: a binary file, or an unknown ``forced`` codec.
        AmbiguousInputError: the evidence does not decide (see the module docstring).

    >>> detect_encoding(b"repo,sha\\n", path="x.csv").evidence
    'ASCII only'
    >>> detect_encoding(codecs.BOM_UTF8 + b"a\\n", path="x.csv").bom
    3
    >>> detect_encoding("Zoë,José\\n".encode("latin-1"), path="x.csv").encoding
    'utf-8'
    """
    bom, bom_codec = 0, None
    for mark, codec in _BOMS:
        if sample.startswith(mark):
            bom, bom_codec = len(mark), codec
            break
    if forced:
        try:
            name = codecs.lookup(forced).name
        except LookupError:
            raise InputFileError(f"{path}: unknown encoding {forced!r} (--encoding)") from None
        if name in ("utf-8-sig", "utf_8"):
            name = "utf-8"
        skip = bom if bom_codec and codecs.lookup(bom_codec).name.startswith(name.split("-")[0]) else 0
        return EncodingGuess(name, skip, 1.0, "--encoding")
    if bom_codec:
        return EncodingGuess(bom_codec, bom, 1.0, f"{bom_codec} byte-order mark")
    a = np.frombuffer(sample, dtype=np.uint8)
    nul = int(np.count_nonzero(a == 0))
    if nul:
        utf16 = _looks_utf16(a)
        if utf16:
            return EncodingGuess(utf16, 0, 0.9, "every other byte is NUL (UTF-16 without a byte-order mark)")
        raise InputFileError(
            f"{path} looks like a binary file, not CSV text ({nul} NUL byte(s) in the first "
            f"{len(sample):,} bytes)"
        )
    controls = int(np.count_nonzero(_CONTROL[a]))
    if controls > max(8, len(a) // 100):
        raise InputFileError(
            f"{path} looks like a binary file, not CSV text ({controls} control byte(s) in the first "
            f"{len(sample):,} bytes)"
        )
    starts, ends, valid = utf8_runs(sample, at_eof=at_eof)
    n_valid, n_invalid = int(valid.sum()), int((~valid).sum())
    if n_invalid == 0:
        return EncodingGuess("utf-8", 0, 1.0, "valid UTF-8" if n_valid else "ASCII only")
    where = f"in the first {len(sample):,} bytes"
    if n_valid:
        confidence = n_valid / (n_valid + n_invalid)
        evidence = f"{n_valid} UTF-8 sequence(s) and {n_invalid} non-UTF-8 run(s) {where}"
        ambiguous = n_invalid >= 20 and confidence < UTF8_SLIVER
    else:
        short = int(np.count_nonzero((ends - starts) <= 2))
        confidence = short / n_invalid
        evidence = f"no UTF-8; {short} of {n_invalid} non-ASCII run(s) {where} are one or two bytes"
        ambiguous = confidence < MIN_CONFIDENCE
    if ambiguous:
        raise AmbiguousInputError(
            f"{path}: the encoding is ambiguous ({evidence}, confidence {confidence:.2f}): "
            "pass --encoding (e.g. utf-8, cp1252, cp1251, shift_jis)"
        )
    return EncodingGuess(
        "utf-8", 0, round(confidence, 4), evidence + f"; non-UTF-8 records decode as {REPAIR_CODEC}"
    )


# -- header -----------------------------------------------------------------------------------------


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


# -- dialect ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
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
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
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


def detect_dialect(text: str, expected: tuple[str, ...], *, path: str, forced: str | None = None) -> Dialect:
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
    candidates = (forced,) if forced else CANDIDATE_DELIMITERS
    samples = {d: _sample_records(text, d) for d in {*CANDIDATE_DELIMITERS, *candidates}}
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
            better = [
                d
                for d in CANDIDATE_DELIMITERS
                if d != forced and samples[d] and _maps(samples[d][0], expected)
            ]
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
    rivals = {d: _fit(samples[d], width) for d in CANDIDATE_DELIMITERS if d != chosen and samples[d]}
    rival = max(rivals, key=lambda d: rivals[d], default=None)
    if not forced and rival is not None and rivals[rival] >= MIN_CONFIDENCE and confidence < 0.5:
        raise AmbiguousInputError(
            f"{path}: the delimiter is ambiguous: the header splits into the expected columns with "
            f"{chosen!r}, but {rivals[rival]:.0%} of the sampled records have {width} fields only with "
            f"{rival!r} ({confidence:.0%} with {chosen!r}); pass --delimiter"
        )
    evidence = "--delimiter" if forced else f"header splits into the expected columns with {chosen!r}"
    return Dialect(chosen, fits[chosen], tuple(samples[chosen][0]), round(confidence, 4), evidence)


def _maps(fields: list[str], expected: tuple[str, ...]) -> bool:
    try:
        map_header(fields, expected, path="")
    except InputFileError:
        return False
    return True
