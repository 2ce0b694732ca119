"""Encoding detection and per-record repair for text input, with a confidence.

The detector looks at the first :data:`~dotjoin.platform.files.reader.SAMPLE_BYTES` of a file and
either decides with a confidence or refuse with an :class:`AmbiguousInputError` that names the file and
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
import logging
from dataclasses import dataclass

import numpy as np

from dotjoin.platform.files.errors import AmbiguousInputError, InputFileError
from dotjoin.platform.files.framing import Framed

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.75
#: Below this share of UTF-8 among the non-ASCII runs, a file is not "UTF-8 with some legacy records".
UTF8_SLIVER = 0.1
REPAIR_CODEC = "cp1252"
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[[*range(1, 9), 11, 12, *range(14, 32), 127]] = True


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


def raw_text(data: bytes) -> str:
    """A record's bytes as text for the quarantine: repaired like the data, else backslash-escaped.

    >>> raw_text(b"caf\\xe9"), raw_text(b"bad \\x81")
    ('café', 'bad \\\\x81')
    """
    try:
        return decode_record(data)
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace")


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


def byte_order(codec: str, sample: bytes) -> tuple[str, int]:
    """The byte order of an ``--encoding utf-16`` / ``utf-32`` file: ``(codec with -le/-be, BOM length)``.

    Python's ``utf-16``/``utf-32`` codecs need a byte-order mark at the start of every decoded stream,
    and the reader decodes the bytes after it: so the order is decided here, once. A BOM of that width
    decides (and is skipped); without one, ASCII-heavy UTF-16 shows its order by where the NUL bytes
    are, else big-endian, the default of RFC 2781 and Unicode without a mark.

    >>> byte_order("utf-16", codecs.BOM_UTF16_LE + "a,b\\n".encode("utf-16-le"))
    ('utf-16-le', 2)
    >>> byte_order("utf-16", "a,b\\n".encode("utf-16-le")), byte_order("utf-32", b"")
    (('utf-16-le', 0), ('utf-32-be', 0))
    """
    marks = (
        ((codecs.BOM_UTF32_LE, "le"), (codecs.BOM_UTF32_BE, "be"))
        if codec == "utf-32"
        else ((codecs.BOM_UTF16_LE, "le"), (codecs.BOM_UTF16_BE, "be"))
    )
    for mark, order in marks:
        if sample.startswith(mark):
            return f"{codec}-{order}", len(mark)
    if codec == "utf-16":
        guess = _looks_utf16(np.frombuffer(sample, dtype=np.uint8))
        if guess:
            return guess, 0
    return f"{codec}-be", 0


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
        if name in ("utf-16", "utf-32"):
            name, skip = byte_order(name, sample)
            return EncodingGuess(name, skip, 1.0, f"--encoding {forced} ({name})")
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
    if nul > max(2, len(a) // 200):  # a stray NUL in a text file only quarantines its record (contains_null)
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


def invalid_utf8_records(data: bytes, framed: Framed) -> list[int]:
    """Indices of the framed records whose bytes are not valid UTF-8 (as Python's decoder rules).

    Vectorised over the non-ASCII bytes only: every lead byte (C2-DF, E0-EF, F0-F4) must be followed
    by its 1-3 continuation bytes (80-BF; E0, ED, F0 and F4 restrict the second byte: no overlong
    forms, surrogates or code points above U+10FFFF), no other byte may be C0, C1 or F5-FF, and a
    record may hold no continuation byte that no lead claims.

    >>> data = "a\\né\\n".encode() + b"\\xe9\\nb\\n\\xed\\xa0\\x80\\n"
    >>> from dotjoin.platform.files.framing import frame
    >>> invalid_utf8_records(data, frame(data, ",", final=True))
    [2, 4]
    """
    a = np.frombuffer(data, dtype=np.uint8, count=framed.consumed)
    high = np.flatnonzero(a >= 0x80)
    if not high.size:
        return []
    b = a[high]
    record = np.searchsorted(framed.start, high, side="right") - 1
    need = np.select(
        [(b >= 0xC2) & (b <= 0xDF), (b >= 0xE0) & (b <= 0xEF), (b >= 0xF0) & (b <= 0xF4)], [1, 2, 3], 0
    )
    cont = (b >= 0x80) & (b <= 0xBF)
    bad = (need == 0) & ~cont  # C0, C1, F5-FF
    padded = np.concatenate((a, np.zeros(4, dtype=np.uint8)))
    for k in (1, 2, 3):  # the k-th byte after a lead that needs at least k continuation bytes
        leads = need >= k
        nxt = padded[high[leads] + k]
        ok = (nxt >= 0x80) & (nxt <= 0xBF)
        if k == 1:
            first = b[leads]
            ok &= ~((first == 0xE0) & (nxt < 0xA0)) & ~((first == 0xED) & (nxt > 0x9F))
            ok &= ~((first == 0xF0) & (nxt < 0x90)) & ~((first == 0xF4) & (nxt > 0x8F))
        bad[np.flatnonzero(leads)[~ok]] = True
    n = len(framed)
    claimed = np.bincount(record, weights=need, minlength=n)
    found = np.bincount(record, weights=cont, minlength=n)
    invalid = (np.bincount(record, weights=bad, minlength=n) > 0) | (claimed != found)
    return np.flatnonzero(invalid).tolist()


def single_byte(codec: str) -> bool:
    """Whether ``codec`` maps each byte to at most one character (cp1252, latin-1, cp1251...).

    >>> single_byte("cp1252"), single_byte("utf-16-le")
    (True, False)
    """
    try:
        return len(bytes(range(256)).decode(codec, "replace")) == 256
    except (LookupError, UnicodeError):
        return False


def decode_fields(fields: list[str]) -> list[str]:
    """Fields read as latin-1 (bytes 1:1) decoded by the record rule: all UTF-8, else all cp1252."""
    raw = [f.encode("latin-1") for f in fields]
    try:
        return [b.decode("utf-8") for b in raw]
    except UnicodeDecodeError:
        return [b.decode(REPAIR_CODEC) for b in raw]


def record_decoding(
    data: bytes, framed: Framed, skip: np.ndarray, *, repair: bool = True
) -> tuple[dict[int, str], list[int], list[int]]:
    """Per framed record (``skip``: not records): which are not UTF-8 but cp1252 {index: repaired text},
    which are neither (``bad_encoding``; with ``repair`` False, every record that is not UTF-8), and
    which hold a NUL byte (``contains_null``)."""
    if not len(framed):
        return {}, [], []
    head = np.frombuffer(data, dtype=np.uint8, count=framed.consumed)
    nul_at = np.flatnonzero(head == 0)
    nul = sorted(
        {int(i) for i in np.searchsorted(framed.start, nul_at, side="right") - 1 if i >= 0 and not skip[i]}
    )
    if head.max() < 0x80:
        return {}, [], nul
    repaired: dict[int, str] = {}
    broken: list[int] = []
    for i in invalid_utf8_records(data, framed):
        if skip[i]:
            continue
        if not repair:
            broken.append(i)
            continue
        try:
            repaired[i] = data[int(framed.start[i]) : int(framed.end[i])].decode(REPAIR_CODEC)
        except UnicodeDecodeError:
            broken.append(i)
    return repaired, broken, nul
