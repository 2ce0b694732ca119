"""The one reader of delimited text: detection, framing, encoding repair and parsing, block by block.

:class:`DelimitedReader` reads a file (plain, gzip or zstd: told by its first bytes) in blocks of
:data:`BLOCK_BYTES` (memory stays bounded by a few blocks whatever the file size) and yields one
:class:`Chunk` per block: an Arrow table of the well-formed records (every column a string), the
physical line each record starts on, and the records it had to reject (``ragged_row``,
``bad_encoding``) with their raw text. Preamble, comment, empty and footer lines are not records: they
are counted (and the preamble and footer kept as text for the run report), never parsed.

Per block: a file in another encoding is transcoded to UTF-8;
:func:`~dotjoin.platform.files.framing.frame` finds records and counts their fields (vectorised),
falling back to the :mod:`csv` module where quoting is irregular or quotes are backslash-escaped; each
record is decoded as UTF-8, else as cp1252 (``bad_encoding`` when neither works), and must have the
table's number of fields (``ragged_row``); pyarrow's CSV parser then splits the good records (one
thread: the other core belongs to the warehouse ingesting the previous chunk).

Columns come from the sniffer (:func:`~dotjoin.platform.files.dialect.sniff`), or, when ``columns``
names them in advance, from matching the header to those names (any case, spacing or order), which
also decides the delimiter.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_bytes(b'\\xef\\xbb\\xbfB,A\\r\\n1,x\\r\\n\\r\\n2,"y\\nz"\\r\\n3\\r\\n')
>>> with DelimitedReader(path, columns=("a", "b")) as reader:
...     chunks = list(reader)
>>> chunks[0].table.to_pylist(), chunks[0].line.tolist()
([{'a': 'x', 'b': '1'}, {'a': 'y\\nz', 'b': '2'}], [2, 4])
>>> [(r.line, r.reason) for r in chunks[0].rejected]
[(6, 'ragged_row')]
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from dotjoin.platform.files.dialect import Dialect, DialectOptions, sniff
from dotjoin.platform.files.encoding import (
    EncodingGuess,
    decode_fields,
    detect_encoding,
    raw_text,
    record_decoding,
    single_byte,
)
from dotjoin.platform.files.errors import InputFileError
from dotjoin.platform.files.framing import Framed, frame, frame_slow
from dotjoin.platform.files.header import detect_dialect as match_header
from dotjoin.platform.files.source import open_bytes

logger = logging.getLogger(__name__)

#: Bytes read from the file per block; a block is cut at the last record boundary it holds.
BLOCK_BYTES = 8 << 20
#: Bytes sampled from the start of a file for encoding and dialect detection.
SAMPLE_BYTES = 1 << 20
#: Bytes read from the end of an uncompressed file for footer detection.
TAIL_BYTES = 64 << 10
#: Bytes held back from framing while the file's footer may still be ahead.
HOLD_BYTES = 256 << 10
#: A record longer than this (a quote never closed) is an error naming its line.
MAX_RECORD_BYTES = 64 << 20
BAD_ENCODING = "bytes that are neither UTF-8 nor cp1252"
NOT_UTF8 = "bytes that are not UTF-8"
KEPT_LINES = 20  # preamble and footer lines kept as text for the run report
_TRAILING = "\x00trailing"
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class RawReject:
    """A record rejected before parsing: its start line, reason code, detail, raw text and field count
    (0 when it was not split: undecodable bytes, a NUL byte, quoting the csv module cannot split)."""

    line: int
    reason: str
    detail: str
    raw: str
    fields: int = 0


@dataclass
class Chunk:
    """The records of one block.

    Attributes:
        table: the well-formed records, one string column per column.
        line: int64 physical start line of each row of ``table``.
        data: the block's bytes (UTF-8, before repair); ``start``/``end`` index into it.
        start: byte offset of each row's record in ``data``.
        end: byte offset after each row's record.
        rejected: records rejected while reading (ragged rows, undecodable bytes).
        records: records of the block (rows + rejected); empty, comment and footer lines are not records.
        repaired: rows whose non-UTF-8 bytes were repaired as cp1252.
        fields: the number of fields each row had as written: fewer than the columns when the dialect
            pads short rows (None from readers without fields).
    """

    table: pa.Table
    line: np.ndarray
    data: bytes
    start: np.ndarray
    end: np.ndarray
    rejected: list[RawReject] = field(default_factory=list)
    records: int = 0
    repaired: int = 0
    fields: np.ndarray | None = None

    def raw(self, row: int) -> str:
        """The raw text of row ``row`` of ``table``."""
        return raw_text(self.data[int(self.start[row]) : int(self.end[row])])


class DelimitedReader:
    """Read one delimited text file in chunks (use as a context manager; iterate once).

    Detection runs in the constructor, so a bad file fails before any work starts.

    Args:
        path: the file (``.gz``/``.zst`` content is decompressed on the fly).
        columns: the expected columns, in output order: the header must hold exactly these (any case,
            spacing or order) and decides the delimiter. None: the sniffer decides everything.
        options: dialect parts the user fixed (delimiter, quote, header...).
        encoding: overrules encoding detection.
        block_bytes: bytes per block.
        allow_empty: a file with nothing in it, or a header and no records, reads as no records (as
            DuckDB and pandas read it); False refuses it with one line (an export that must hold data).
        data: the file's bytes when they are already in memory (a zip member, an HTTP body);
            ``path`` then only names the file in messages.
        repair: decode a record that is not UTF-8 as cp1252; False: it is ``bad_encoding`` (a format
            that must be UTF-8, such as GTFS).

    Raises:
        InputFileError: missing, empty, binary or header-only file, unknown columns, wrong delimiter.
        AmbiguousInputError: detection is not confident; the message names the option that decides.
    """

    def __init__(
        self,
        path: Path,
        *,
        columns: tuple[str, ...] | None = None,
        options: DialectOptions | None = None,
        encoding: str | None = None,
        block_bytes: int = BLOCK_BYTES,
        allow_empty: bool = True,
        data: bytes | None = None,
        repair: bool = True,
    ) -> None:
        self.path = path
        self.repair = repair
        self._bad_encoding = BAD_ENCODING if repair else NOT_UTF8
        self._data = data
        self.block_bytes = block_bytes
        self.allow_empty = allow_empty
        self.lines = 0
        self.records = 0
        self.empty_lines = 0
        self.comment_lines = 0
        self.repaired = 0
        self.header_line = 1
        self.preamble: list[str] = []
        self.footer: list[str] = []
        self._header_at: int | None = None
        self._header_bytes: bytes | None = None
        self.repeated_headers = 0
        self.padded_rows = 0
        options = options or DialectOptions()
        if data is None and not path.exists():
            raise InputFileError(f"{path}: no such file")
        if data is None and not path.is_file():
            raise InputFileError(f"{path}: not a file")
        self._fh, self._source, self.compression = open_bytes(path, data)
        try:
            sample = self._read_raw(SAMPLE_BYTES)
            at_eof = len(sample) < SAMPLE_BYTES
            self.encoding: EncodingGuess = detect_encoding(
                sample, path=str(path), forced=encoding, at_eof=at_eof
            )
            text = self._sample_text(sample, at_eof)
            if not text.strip() and not (allow_empty and columns is None):
                expected = f": expected a header line with columns {', '.join(columns)}" if columns else ""
                raise InputFileError(f"{path} is empty{expected}")
            self.header_fields: tuple[str, ...] = ()
            self.names: tuple[str, ...] = ()
            if not text.strip():  # allowed: a file with nothing in it reads as no records
                self.dialect: Dialect = Dialect(header=False, evidence=("empty file",))
            elif columns is not None:
                match = match_header(text, columns, path=str(path), forced=options.delimiter)
                self.header_fields = match.header
                self.dialect = Dialect(
                    delimiter=match.delimiter,
                    columns=match.columns,
                    confidence=match.confidence,
                    evidence=(match.evidence,),
                )
                self.names = columns
            else:
                tail = text if at_eof else self._tail()
                self.dialect = sniff(text, path=str(path), options=options, tail=tail)
                self.header_fields = self.dialect.columns if self.dialect.header else ()
                self.names = self.dialect.columns
        except BaseException:
            self.close()
            raise
        logger.debug(
            "%s: %s (confidence %.2f: %s); %s",
            path, self.encoding.encoding, self.encoding.confidence, self.encoding.evidence, self.dialect,
        )  # fmt: skip
        self._restart()

    def _restart(self) -> None:
        """Position the stream after the byte-order mark, ready to read the first block."""
        self._fh.close()
        self._fh, self._source, _ = open_bytes(self.path, self._data)
        self._fh.read(self.encoding.bom)
        # Single-byte codecs keep undefined bytes as they are (surrogateescape), so the record rule
        # quarantines those records as bad_encoding; multi-byte codecs replace what they cannot decode.
        errors = "surrogateescape" if single_byte(self.encoding.encoding) else "replace"
        self._decoder = (
            None
            if self.encoding.is_utf8
            else codecs.getincrementaldecoder(self.encoding.encoding)(errors=errors)
        )

    def _sample_text(self, sample: bytes, at_eof: bool) -> str:
        body = sample[self.encoding.bom :]
        if self.encoding.is_utf8:
            if not at_eof:
                body = body[: max(body.rfind(b"\n"), body.rfind(b"\r")) + 1]
            return body.decode("utf-8", "replace")
        text = body.decode(self.encoding.encoding, "replace")
        return text if at_eof else text[: max(text.rfind("\n"), text.rfind("\r")) + 1]

    def _tail(self) -> str | None:
        """The complete lines in the last bytes of an uncompressed file (footer detection)."""
        if self.compression is not None:
            return None
        size = self.path.stat().st_size if self._data is None else len(self._data)
        unit = 4 if "32" in self.encoding.encoding else 2 if "16" in self.encoding.encoding else 1
        start = max(self.encoding.bom, size - TAIL_BYTES)
        start -= (start - self.encoding.bom) % unit
        if self._data is not None:
            data = self._data[start:]
        else:
            with self.path.open("rb") as fh:
                fh.seek(start)
                data = fh.read()
        codec = "utf-8" if self.encoding.is_utf8 else self.encoding.encoding
        text = data.decode(codec, "replace")
        lines = text.splitlines(keepends=True)
        return "".join(lines[1:])

    @property
    def position(self) -> int:
        """Bytes of the file (compressed bytes for a compressed file) read so far, for progress."""
        return int(self._source.tell())

    @property
    def footer_lines(self) -> int:
        return len(self.footer)

    # -- context manager ----------------------------------------------------------------------------

    def close(self) -> None:
        self._fh.close()
        if self._source is not self._fh:
            self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------

    def _read(self) -> bytes:
        """The next block of UTF-8 (or not yet repaired UTF-8) bytes; b"" at the end of the file."""
        raw = self._read_raw(self.block_bytes)
        if self._decoder is None:
            return raw
        return self._decoder.decode(raw, final=not raw).encode("utf-8", "surrogateescape")

    def _read_raw(self, n: int) -> bytes:
        try:
            return bytes(self._fh.read(n))
        except OSError as exc:  # a corrupt or truncated gzip/zstd stream
            raise InputFileError(f"{self.path}: not a valid {self.compression} file ({exc})") from exc

    def _skip_preamble(self, buf: bytes, eof: bool) -> int | None:
        """Byte offset after the preamble's lines in ``buf``, or None when more bytes are needed."""
        want = self.dialect.skip_lines
        offset = 0
        lines: list[bytes] = []
        for match in _LINE_BREAK.finditer(buf):
            if not eof and match.end() == len(buf) and match.group() == b"\r":
                return None  # undecided: a \n may follow
            lines.append(buf[offset : match.start()])
            offset = match.end()
            if len(lines) == want:
                break
        if len(lines) < want and not eof:
            return None
        if len(lines) < want:
            offset = len(buf)
        self.preamble = [raw_text(line) for line in lines[:KEPT_LINES]]
        return offset

    def __iter__(self) -> Iterator[Chunk]:
        d = self.dialect
        if not self.names:  # an empty file (allow_empty)
            return
        buf = b""
        eof = False
        line = 1
        header_pending = d.header
        hold = HOLD_BYTES if d.footer_records else 0
        width = None if d.pad_short_rows else d.width  # what tells a stray quote from a multi-line field
        slow_only = bool(d.escape or d.skip_initial_space)  # pyarrow's parser knows neither
        want = self.block_bytes + hold
        extended = False
        preamble_pending = d.skip_lines > 0
        while True:
            while not eof and len(buf) < want:
                more = self._read()
                eof = not more
                buf += more
            if preamble_pending:
                offset = self._skip_preamble(buf, eof)
                if offset is None:
                    want = len(buf) + self.block_bytes
                    continue
                buf = buf[offset:]
                line += d.skip_lines
                self.lines += d.skip_lines
                preamble_pending = False
            view = buf if eof or not hold else buf[: max(0, len(buf) - hold)]
            final = eof
            framed = (
                None if slow_only else frame(view, d.delimiter, quote=d.quote, first_line=line, final=final)
            )
            if framed is not None and width is not None and framed.multiline is not None:
                # A multi-line record of another width may be a quote never closed: the exact framer decides.
                framed.anomaly |= bool((framed.multiline & (framed.fields != width)).any())
            slow_values: list[list[str] | None] | None = None
            if framed is None or framed.anomaly:
                if not eof and (framed is None or not extended) and not slow_only:
                    self._check_record_size(buf, line)
                    want, extended = len(buf) + self.block_bytes, True  # look further ahead first
                    continue
                target = framed.consumed if framed is not None else 0
                slow = frame_slow(
                    view,
                    d.delimiter,
                    quote=d.quote,
                    escape=d.escape,
                    width=width,
                    space=d.skip_initial_space,
                    first_line=line,
                    final=final,
                    target=target,
                )
                if slow is None:
                    self._check_record_size(buf, line)
                    want = len(buf) + self.block_bytes
                    continue
                framed, slow_values = slow.framed, slow.values
                logger.debug("%s: lines %d.. framed by the csv module", self.path, line)
            extended = False
            want = self.block_bytes + hold
            data = buf
            buf = buf[framed.consumed :]
            chunk = self._chunk(data, framed, slow_values, header_pending, eof and not buf)
            if chunk is None:  # pyarrow split the block differently: the csv module decides
                slow = frame_slow(
                    data[: framed.consumed], d.delimiter, quote=d.quote, escape=d.escape, width=width,
                    space=d.skip_initial_space, first_line=line, final=True,
                )  # fmt: skip
                assert slow is not None
                framed = slow.framed
                chunk = self._chunk(data, framed, slow.values, header_pending, eof and not buf)
                assert chunk is not None
            if header_pending and self._header_at is not None:
                header_pending = False
                self.header_line = self._header_at
            line += framed.lines
            self.lines += framed.lines
            self.empty_lines += framed.empty_lines
            self.records += chunk.records
            self.repaired += chunk.repaired
            if chunk.records:
                yield chunk
            if eof and not buf:
                break
        if not self.records and not self.allow_empty:
            where = f"after the header (line {self.header_line})" if d.header else "in the file"
            raise InputFileError(f"{self.path}: no data records {where}")

    def _check_record_size(self, buf: bytes, line: int) -> None:
        if len(buf) >= MAX_RECORD_BYTES:
            raise InputFileError(
                f"{self.path}: line {line}: a record longer than {MAX_RECORD_BYTES:,} bytes "
                "(a quote that is never closed?)"
            )

    # -- one block ----------------------------------------------------------------------------------

    def _chunk(
        self,
        data: bytes,
        framed: Framed,
        slow: list[list[str] | None] | None,
        header_pending: bool,
        last: bool,
    ) -> Chunk | None:
        """The chunk of a framed block; None when pyarrow's parse disagrees with the framing.

        Each record is decoded first (UTF-8, else cp1252, else ``bad_encoding``), then must have the
        table's number of fields (else ``ragged_row``).
        """
        d = self.dialect
        width = d.width
        n = len(framed)
        # Lines that are not records: comments, the header, the footer.
        skip = np.zeros(n, dtype=bool)
        if d.comment and n:
            first_bytes = np.frombuffer(data, dtype=np.uint8)[np.minimum(framed.start, len(data) - 1)]
            comments = first_bytes == ord(d.comment)
            skip |= comments
            self.comment_lines += int(np.count_nonzero(comments))
        self._header_at = None
        if header_pending:
            candidates = np.flatnonzero(~skip)
            if candidates.size:
                skip[candidates[0]] = True
                self._header_at = int(framed.line[candidates[0]])
                at = int(candidates[0])
                self._header_bytes = bytes(data[int(framed.start[at]) : int(framed.end[at])])
        if self._header_bytes is not None and n:  # the header again (a concatenated export): not data
            length = framed.end - framed.start
            for i in np.flatnonzero((length == len(self._header_bytes)) & ~skip).tolist():
                if data[int(framed.start[i]) : int(framed.end[i])] == self._header_bytes:
                    skip[i] = True
                    self.repeated_headers += 1
        if last and d.footer_records:
            tail = np.flatnonzero(~skip)[-d.footer_records :]
            skip[tail] = True
            self.footer = [self._raw(data, framed, int(i)) for i in tail[:KEPT_LINES]]
        repaired, broken, nul = record_decoding(data, framed, skip, repair=self.repair)
        if slow is not None:
            fields = np.array([len(v) if v is not None else 0 for v in slow], dtype=np.int64)
        else:
            fields = framed.fields
        short = (fields >= 1) & (fields < width) & ~skip if d.pad_short_rows else np.zeros(n, dtype=bool)
        good = ((fields == width) | short) & ~skip
        rejected: list[RawReject] = []
        bad = set(broken) | set(nul)
        for i in sorted(bad):
            good[i] = False
            reason, detail = (
                ("bad_encoding", self._bad_encoding) if i in broken else ("contains_null", "a NUL byte")
            )
            rejected.append(RawReject(int(framed.line[i]), reason, detail, self._raw(data, framed, i)))
        for j in np.flatnonzero(~good & ~skip).tolist():
            i = int(j)
            if i in bad:
                continue
            got = "unsplittable quoting" if slow is not None and slow[i] is None else f"{fields[i]} field(s)"
            raw = self._raw(data, framed, i)
            rejected.append(
                RawReject(int(framed.line[i]), "ragged_row", f"{got}, expected {width}", raw, int(fields[i]))
            )
        rows = np.flatnonzero(good)
        self.padded_rows += int(np.count_nonzero(short & good))
        if slow is not None:
            table = self._table_from_values([_padded(slow[i], width) for i in rows])
        else:
            table = self._parse(data, framed, good, repaired, np.where(short, width - fields, 0))
            if table.num_rows != len(rows):
                logger.debug("%s: pyarrow found %d rows, framing %d", self.path, table.num_rows, len(rows))
                return None
        if d.trailing_delimiter and table.num_rows:
            extra = np.asarray(pc_nonempty(table.column(_TRAILING)), dtype=bool)
            for k in np.flatnonzero(extra).tolist():
                i = int(rows[k])
                rejected.append(
                    RawReject(
                        int(framed.line[i]),
                        "ragged_row",
                        f"a value after the last column ({width} fields, expected {width - 1})",
                        self._raw(data, framed, i),
                        width,
                    )
                )
            if extra.any():
                keep = pa.array(~extra)
                table, rows = table.filter(keep), rows[~extra]
        if _TRAILING in table.column_names:
            table = table.drop_columns([_TRAILING])
        rejected.sort(key=lambda r: r.line)
        return Chunk(
            table=table.select(list(self.names)),
            line=framed.line[rows],
            data=data,
            start=framed.start[rows],
            end=framed.end[rows],
            rejected=rejected,
            records=n - int(np.count_nonzero(skip)),
            repaired=int(np.count_nonzero(good[list(repaired)])) if repaired else 0,
            fields=fields[rows],
        )

    @property
    def _file_columns(self) -> list[str]:
        names = list(self.dialect.columns)
        return [*names, _TRAILING] if self.dialect.trailing_delimiter else names

    def _raw(self, data: bytes, framed: Framed, i: int) -> str:
        record = data[int(framed.start[i]) : int(framed.end[i])]  # shown as repaired, or as it is
        return raw_text(record) if self.repair else record.decode("utf-8", "backslashreplace")

    def _parse(
        self, data: bytes, framed: Framed, good: np.ndarray, repaired: dict[int, str], missing: np.ndarray
    ) -> pa.Table:
        """Parse the good records of a fast-framed block with pyarrow (dropping the others)."""
        names = self._file_columns
        if not good.any():
            return pa.table({c: pa.array([], pa.string()) for c in names})
        special = sorted({*np.flatnonzero(~good | (missing > 0)).tolist(), *(i for i in repaired if good[i])})
        pad = self.dialect.delimiter.encode()
        body: bytes | memoryview
        if not special:
            body = memoryview(data)[: framed.consumed]
        else:
            pieces: list[bytes | memoryview] = []
            view = memoryview(data)
            pos = 0
            for i in special:
                pieces.append(view[pos : int(framed.start[i])])
                if good[i]:  # a repaired record re-encoded as UTF-8, or a short one padded
                    record = (
                        repaired[i].encode("utf-8")
                        if i in repaired
                        else bytes(view[int(framed.start[i]) : int(framed.end[i])])
                    )
                    pieces.append(record + pad * int(missing[i]) + b"\n")
                pos = int(framed.after[i])
            pieces.append(view[pos : framed.consumed])
            body = b"".join(pieces)
        quote = self.dialect.quote
        return pa_csv.read_csv(
            pa.BufferReader(body),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=4 << 20),
            parse_options=pa_csv.ParseOptions(
                delimiter=self.dialect.delimiter,
                quote_char=quote or False,
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
        ).combine_chunks()

    def _table_from_values(self, values: list[list[str] | None]) -> pa.Table:
        """A table from csv-module fields (latin-1 text, byte for byte), decoded record by record."""
        names = self._file_columns
        decoded = [decode_fields(v) for v in values if v is not None]
        columns = list(zip(*decoded, strict=True)) if decoded else [()] * len(names)
        return pa.table({c: pa.array(col, pa.string()) for c, col in zip(names, columns, strict=True)})


def pc_nonempty(values: pa.ChunkedArray) -> np.ndarray:
    """True where a string value is not empty."""
    return np.asarray(pc.utf8_length(values.combine_chunks()).to_numpy(zero_copy_only=False)) > 0


def _padded(values: list[str] | None, width: int) -> list[str] | None:
    return values if values is None or len(values) >= width else values + [""] * (width - len(values))
