"""Streaming CSV reader: detection, framing, encoding repair and parsing, block by block.

:class:`CsvReader` reads a file in blocks of :data:`~dotjoin.pipelines.csv_etl.config.BLOCK_BYTES`
(memory stays bounded by a few blocks whatever the file size) and yields one :class:`Chunk` per block:
an Arrow table of the well-formed records (every canonical column as a string, file order mapped to
the documented order), the physical line each record starts on, and the records it had to reject
(``ragged_row``, ``bad_encoding``) with their raw text.

Per block: a file in another encoding (``--encoding``, a UTF-16 byte-order mark) is transcoded to
UTF-8; :func:`~dotjoin.platform.files.framing.frame` finds records and counts their fields
(vectorised), falling back to the :mod:`csv` module where quoting is irregular; each record is decoded
as UTF-8, else as cp1252 (``bad_encoding`` when neither works), and must have the header's number of
fields (``ragged_row``); pyarrow's CSV parser then splits the good records (one thread: the
other core belongs to the warehouse ingesting the previous chunk).

>>> import tempfile, pathlib
>>> from dotjoin.pipelines.csv_etl.config import FileSpec
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_bytes(b'\\xef\\xbb\\xbfB,A\\r\\n1,x\\r\\n\\r\\n2,"y\\nz"\\r\\n3\\r\\n')
>>> with CsvReader(path, FileSpec("t", ("a", "b"))) as reader:
...     chunks = list(reader)
>>> chunks[0].table.to_pylist(), chunks[0].line.tolist()
([{'a': 'x', 'b': '1'}, {'a': 'y\\nz', 'b': '2'}], [2, 4])
>>> [(r.line, r.reason) for r in chunks[0].rejected]
[(6, 'ragged_row')]
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from dotjoin.pipelines.csv_etl.config import BLOCK_BYTES, SAMPLE_BYTES, FileSpec
from dotjoin.pipelines.csv_etl.detect import (
    REPAIR_CODEC,
    Dialect,
    EncodingGuess,
    InputFileError,
    decode_record,
    detect_dialect,
    detect_encoding,
)
from dotjoin.platform.files.framing import Framed, frame, frame_slow
from dotjoin.pipelines.csv_etl.reasons import Reason

logger = logging.getLogger(__name__)

#: A record longer than this (a quote never closed) is framed by the csv module and rejected.
MAX_RECORD_BYTES = 64 << 20
BAD_ENCODING = "bytes that are neither UTF-8 nor cp1252"


@dataclass(frozen=True)
class RawReject:
    """A record rejected before parsing: its start line, reason code, detail and raw text."""

    line: int
    reason: Reason
    detail: str
    raw: str


def raw_text(data: bytes) -> str:
    """A record's bytes as text for the quarantine: repaired like the data, else backslash-escaped.

    >>> raw_text(b"caf\\xe9"), raw_text(b"bad \\x81")
    ('café', 'bad \\\\x81')
    """
    try:
        return decode_record(data)
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace")


@dataclass
class Chunk:
    """The records of one block.

    Attributes:
        table: the well-formed records, one string column per canonical column (documented order).
        line: int64 physical start line of each row of ``table``.
        data: the block's bytes (UTF-8, before repair); ``start``/``end`` index into it.
        start: byte offset of each row's record in ``data``.
        end: byte offset after each row's record.
        rejected: records rejected while reading (ragged rows, undecodable bytes).
        records: records of the block (rows + rejected); empty lines are not records.
        repaired: rows whose non-UTF-8 bytes were repaired as cp1252.
    """

    table: pa.Table
    line: np.ndarray
    data: bytes
    start: np.ndarray
    end: np.ndarray
    rejected: list[RawReject] = field(default_factory=list)
    records: int = 0
    repaired: int = 0

    def raw(self, row: int) -> str:
        """The raw text of row ``row`` of ``table``."""
        return raw_text(self.data[int(self.start[row]) : int(self.end[row])])


class CsvReader:
    """Read one CSV file of ``spec``'s columns in chunks (use as a context manager or iterate once).

    Detection runs in the constructor, so a bad file fails before any work starts.

    Args:
        path: the file.
        spec: the expected columns.
        delimiter: overrules delimiter detection.
        encoding: overrules encoding detection.
        block_bytes: bytes per block.

    Raises:
        InputFileError: missing, empty, binary or header-only file, unknown columns, wrong delimiter.
        AmbiguousInputError: detection is not confident; ``delimiter``/``encoding`` decide.
    """

    def __init__(
        self,
        path: Path,
        spec: FileSpec,
        *,
        delimiter: str | None = None,
        encoding: str | None = None,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self.path = path
        self.spec = spec
        self.block_bytes = block_bytes
        self.lines = 0
        self.records = 0
        self.empty_lines = 0
        self.repaired = 0
        self.header_line = 1
        if delimiter is not None and len(delimiter) != 1:
            raise InputFileError(f"{path}: --delimiter must be one character, got {delimiter!r}")
        if not path.exists():
            raise InputFileError(f"{path}: no such file")
        if not path.is_file():
            raise InputFileError(f"{path}: not a file")
        self._fh: IO[bytes] = path.open("rb")
        try:
            sample = self._fh.read(SAMPLE_BYTES)
            at_eof = len(sample) < SAMPLE_BYTES
            self.encoding: EncodingGuess = detect_encoding(
                sample, path=str(path), forced=encoding, at_eof=at_eof
            )
            text = self._sample_text(sample, at_eof)
            if not text.strip():
                raise InputFileError(
                    f"{path} is empty: expected a header line with columns {', '.join(spec.columns)}"
                )
            self.dialect: Dialect = detect_dialect(text, spec.columns, path=str(path), forced=delimiter)
            if at_eof:  # the whole file is in the sample: refuse a header-only file before any work
                framed = frame(text.encode("utf-8"), self.dialect.delimiter, final=True)
                if framed is not None and len(framed) <= 1:
                    line = int(framed.line[0]) if len(framed) else 1
                    raise InputFileError(f"{path}: no data records after the header (line {line})")
        except BaseException:
            self._fh.close()
            raise
        logger.debug(
            "%s: %s (confidence %.2f: %s); delimiter %r (confidence %.2f: %s)",
            path, self.encoding.encoding, self.encoding.confidence, self.encoding.evidence,
            self.dialect.delimiter, self.dialect.confidence, self.dialect.evidence,
        )  # fmt: skip
        self._fh.seek(self.encoding.bom)
        # Single-byte codecs keep undefined bytes as they are (surrogateescape), so the record rule
        # quarantines those records as bad_encoding; multi-byte codecs replace what they cannot decode.
        errors = "surrogateescape" if _single_byte(self.encoding.encoding) else "replace"
        self._decoder = (
            None
            if self.encoding.is_utf8
            else codecs.getincrementaldecoder(self.encoding.encoding)(errors=errors)
        )
        self._order = [self.dialect.columns.index(c) for c in spec.columns]

    def _sample_text(self, sample: bytes, at_eof: bool) -> str:
        body = sample[self.encoding.bom :]
        if self.encoding.is_utf8:
            if not at_eof:
                body = body[: body.rfind(b"\n") + 1]
            return body.decode("utf-8", "replace")
        text = body.decode(self.encoding.encoding, "replace")
        return text if at_eof else text[: text.rfind("\n") + 1]

    @property
    def position(self) -> int:
        """Bytes of the file read so far (for progress)."""
        return self._fh.tell()

    # -- context manager ----------------------------------------------------------------------------

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------

    def _read(self) -> bytes:
        """The next block of UTF-8 (or not yet repaired UTF-8) bytes; b"" at the end of the file."""
        raw = self._fh.read(self.block_bytes)
        if self._decoder is None:
            return raw
        return self._decoder.decode(raw, final=not raw).encode("utf-8", "surrogateescape")

    def __iter__(self) -> Iterator[Chunk]:
        buf = b""
        eof = False
        line = 1
        header_pending = True
        want = self.block_bytes
        extended = False
        while True:
            while not eof and len(buf) < want:
                more = self._read()
                eof = not more
                buf += more
            framed = frame(buf, self.dialect.delimiter, first_line=line, final=eof)
            slow_values: list[list[str] | None] | None = None
            if framed is None or framed.anomaly:
                if not eof and (framed is None or not extended):
                    if len(buf) >= MAX_RECORD_BYTES:
                        raise InputFileError(
                            f"{self.path}: line {line}: a record longer than {MAX_RECORD_BYTES:,} bytes "
                            "(a quote that is never closed?)"
                        )
                    want, extended = len(buf) + self.block_bytes, True  # look further ahead first
                    continue
                target = framed.consumed if framed is not None else 0
                slow = frame_slow(buf, self.dialect.delimiter, first_line=line, final=eof, target=target)
                if slow is None:
                    if len(buf) >= MAX_RECORD_BYTES:
                        raise InputFileError(
                            f"{self.path}: line {line}: a record longer than {MAX_RECORD_BYTES:,} bytes "
                            "(a quote that is never closed?)"
                        )
                    want = len(buf) + self.block_bytes
                    continue
                framed, slow_values = slow.framed, slow.values
                logger.debug("%s: lines %d.. framed by the csv module (irregular quoting)", self.path, line)
            extended = False
            want = self.block_bytes
            data = buf
            buf = buf[framed.consumed :]
            skip = 1 if header_pending and len(framed) else 0
            chunk = self._chunk(data, framed, slow_values, skip)
            if chunk is None:  # pyarrow split the block differently: the csv module decides
                slow = frame_slow(
                    data[: framed.consumed], self.dialect.delimiter, first_line=line, final=True
                )
                assert slow is not None
                framed = slow.framed
                chunk = self._chunk(data, framed, slow.values, skip)
                assert chunk is not None
            if skip:
                header_pending = False
                self.header_line = int(framed.line[0])
            line += framed.lines
            self.lines += framed.lines
            self.empty_lines += framed.empty_lines
            self.records += chunk.records
            self.repaired += chunk.repaired
            if chunk.records:
                yield chunk
            if eof and not buf:
                break
        if header_pending or not self.records:
            raise InputFileError(f"{self.path}: no data records after the header (line {self.header_line})")

    # -- one block ----------------------------------------------------------------------------------

    def _chunk(
        self, data: bytes, framed: Framed, slow: list[list[str] | None] | None, skip: int
    ) -> Chunk | None:
        """The chunk of a framed block; None when pyarrow's parse disagrees with the framing.

        Each record is decoded first (UTF-8, else cp1252, else ``bad_encoding``), then must have the
        header's number of fields (else ``ragged_row``): the reason precedence of ``reasons.py``.
        """
        width = len(self.spec.columns)
        n = len(framed)
        repaired, broken = self._decode_failures(data, framed, skip)
        if slow is not None:
            fields = np.array([len(v) if v is not None else 0 for v in slow], dtype=np.int64)
        else:
            fields = framed.fields
        good = fields == width
        good[:skip] = False
        rejected: list[RawReject] = []
        for i in broken:
            good[i] = False
            rejected.append(
                RawReject(int(framed.line[i]), "bad_encoding", BAD_ENCODING, self._raw(data, framed, i))
            )
        bad = set(broken)
        for j in (np.flatnonzero(~good[skip:]) + skip).tolist():
            i = int(j)
            if i in bad:
                continue
            got = "unsplittable quoting" if slow is not None and slow[i] is None else f"{fields[i]} field(s)"
            rejected.append(
                RawReject(
                    int(framed.line[i]),
                    "ragged_row",
                    f"{got}, expected {width}",
                    self._raw(data, framed, int(i)),
                )
            )
        rows = np.flatnonzero(good)
        if slow is not None:
            table = self._table_from_values([slow[i] for i in rows])
        else:
            table = self._parse(data, framed, good, repaired)
            if table.num_rows != len(rows):
                logger.debug("%s: pyarrow found %d rows, framing %d", self.path, table.num_rows, len(rows))
                return None
        rejected.sort(key=lambda r: r.line)
        return Chunk(
            table=table,
            line=framed.line[rows],
            data=data,
            start=framed.start[rows],
            end=framed.end[rows],
            rejected=rejected,
            records=n - skip,
            repaired=int(np.count_nonzero(good[list(repaired)])) if repaired else 0,
        )

    @staticmethod
    def _raw(data: bytes, framed: Framed, i: int) -> str:
        return raw_text(data[int(framed.start[i]) : int(framed.end[i])])

    def _decode_failures(self, data: bytes, framed: Framed, skip: int) -> tuple[dict[int, str], list[int]]:
        """Records that are not UTF-8: {index: text decoded as cp1252}, and those not cp1252 either."""
        if not len(framed):
            return {}, []
        head = np.frombuffer(data, dtype=np.uint8, count=framed.consumed)
        if head.max() < 0x80:
            return {}, []
        invalid = _invalid_utf8_records(data, framed)
        repaired: dict[int, str] = {}
        broken: list[int] = []
        for i in invalid:
            if i < skip:
                continue
            try:
                repaired[i] = data[int(framed.start[i]) : int(framed.end[i])].decode(REPAIR_CODEC)
            except UnicodeDecodeError:
                broken.append(i)
        return repaired, broken

    def _parse(self, data: bytes, framed: Framed, good: np.ndarray, repaired: dict[int, str]) -> pa.Table:
        """Parse the good records of a fast-framed block with pyarrow (dropping the others)."""
        names = list(self.dialect.columns)
        if not good.any():
            return pa.table({c: pa.array([], pa.string()) for c in self.spec.columns})
        special = sorted({*np.flatnonzero(~good).tolist(), *(i for i in repaired if good[i])})
        body: bytes | memoryview
        if not special:
            body = memoryview(data)[: framed.consumed]
        else:
            pieces: list[bytes | memoryview] = []
            view = memoryview(data)
            pos = 0
            for i in special:
                pieces.append(view[pos : int(framed.start[i])])
                if good[i]:  # a repaired record, re-encoded as UTF-8
                    pieces.append(repaired[i].encode("utf-8") + b"\n")
                pos = int(framed.after[i])
            pieces.append(view[pos : framed.consumed])
            body = b"".join(pieces)
        table = pa_csv.read_csv(
            pa.BufferReader(body),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=4 << 20),
            parse_options=pa_csv.ParseOptions(
                delimiter=self.dialect.delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        return table.select(list(self.spec.columns)).combine_chunks()

    def _table_from_values(self, values: list[list[str] | None]) -> pa.Table:
        """A table from csv-module fields (latin-1 text, byte for byte), decoded record by record."""
        decoded = [_decode_fields(v) for v in values if v is not None]
        columns = list(zip(*decoded, strict=True)) if decoded else [()] * len(self.spec.columns)
        by_name = dict(zip(self.dialect.columns, columns, strict=True))
        return pa.table({c: pa.array(by_name[c], pa.string()) for c in self.spec.columns})


def _invalid_utf8_records(data: bytes, framed: Framed) -> list[int]:
    """Indices of the framed records whose bytes are not valid UTF-8 (as Python's decoder rules).

    Vectorised over the non-ASCII bytes only: every lead byte (C2-DF, E0-EF, F0-F4) must be followed
    by its 1-3 continuation bytes (80-BF; E0, ED, F0 and F4 restrict the second byte: no overlong
    forms, surrogates or code points above U+10FFFF), no other byte may be C0, C1 or F5-FF, and a
    record may hold no continuation byte that no lead claims.

    >>> from dotjoin.platform.files.framing import frame
    >>> data = "a\\né\\n".encode() + b"\\xe9\\nb\\n\\xed\\xa0\\x80\\n"
    >>> _invalid_utf8_records(data, frame(data, ",", final=True))
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


def _single_byte(codec: str) -> bool:
    """Whether ``codec`` maps each byte to at most one character (cp1252, latin-1, cp1251...).

    >>> _single_byte("cp1252"), _single_byte("utf-16-le")
    (True, False)
    """
    try:
        return len(bytes(range(256)).decode(codec, "replace")) == 256
    except (LookupError, UnicodeError):
        return False


def _decode_fields(fields: list[str]) -> list[str]:
    """Fields read as latin-1 (bytes 1:1) decoded by the record rule: all UTF-8, else all cp1252."""
    raw = [f.encode("latin-1") for f in fields]
    try:
        return [b.decode("utf-8") for b in raw]
    except UnicodeDecodeError:
        return [b.decode(REPAIR_CODEC) for b in raw]
