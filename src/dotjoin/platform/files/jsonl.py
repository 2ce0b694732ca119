"""JSON lines (one JSON object per line), read block by block like delimited text.

The same :class:`~dotjoin.platform.files.reader.Chunk` comes out: one string column per key (scalars as
their text, nested objects and arrays as compact JSON, JSON ``null`` as NULL), the line each record is
on, and the lines that are not JSON objects (``bad_json``) or not decodable (``bad_encoding``) with their
raw text. Encoding detection, per-record cp1252 repair and gzip/zstd input are the delimited reader's.
Types are the schema's business, as for CSV: a declared or inferred schema types the text.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
>>> _ = path.write_bytes(b'{"a": 1, "b": {"c": true}}\\n\\nnot json\\n{"a": "x\\\\ny"}\\n')
>>> with JsonLinesReader(path) as reader:
...     (chunk,) = list(reader)
>>> chunk.table.to_pylist(), chunk.line.tolist(), [(r.line, r.reason) for r in chunk.rejected]
([{'a': '1', 'b': '{"c":true}'}, {'a': 'x\\ny', 'b': None}], [1, 4], [(3, 'bad_json')])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa

from dotjoin.platform.files.encoding import REPAIR_CODEC, detect_encoding
from dotjoin.platform.files.errors import InputFileError
from dotjoin.platform.files.reader import (
    BAD_ENCODING,
    BLOCK_BYTES,
    SAMPLE_BYTES,
    Chunk,
    RawReject,
    open_bytes,
    raw_text,
)

_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")


def looks_like_json_lines(path: Path) -> bool:
    """Whether a file holds JSON lines: a ``.jsonl``/``.ndjson`` name, or a first line that is an object."""
    if path.name.lower().removesuffix(".gz").removesuffix(".zst").endswith((".jsonl", ".ndjson")):
        return True
    fh, source, _ = open_bytes(path)
    try:
        head = bytes(fh.read(64 << 10)).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return False
    finally:
        fh.close()
        if source is not fh:
            source.close()
    first = head.split(b"\n", 1)[0].strip()
    if not first.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value)


class JsonLinesReader:
    """Read a JSON-lines file in chunks (use as a context manager; iterate once).

    Raises:
        InputFileError: missing, empty or binary file.
    """

    def __init__(self, path: Path, *, encoding: str | None = None, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = path
        self.block_bytes = block_bytes
        self.lines = self.records = self.empty_lines = self.repaired = 0
        if not path.is_file():
            raise InputFileError(f"{path}: no such file")
        self._fh, self._source, self.compression = open_bytes(path)
        try:
            sample = bytes(self._fh.read(SAMPLE_BYTES))
            self.encoding = detect_encoding(
                sample, path=str(path), forced=encoding, at_eof=len(sample) < SAMPLE_BYTES
            )
            if not sample[self.encoding.bom :].strip():
                raise InputFileError(f"{path} is empty")
        except BaseException:
            self.close()
            raise
        self.close()
        self._fh, self._source, _ = open_bytes(path)
        self._fh.read(self.encoding.bom)
        self._codec = None if self.encoding.is_utf8 else self.encoding.encoding

    @property
    def position(self) -> int:
        return int(self._source.tell())

    def close(self) -> None:
        self._fh.close()
        if self._source is not self._fh:
            self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Chunk]:
        rest = b""
        line = 1
        while True:
            block = bytes(self._fh.read(self.block_bytes))
            data = rest + (block.decode(self._codec, "replace").encode() if self._codec and block else block)
            if not block:
                rest = b""
            else:
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
            chunk, lines = self._chunk(data, line)
            line += lines
            self.lines += lines
            if chunk.records:
                yield chunk
            if not block and not rest:
                break

    def _chunk(self, data: bytes, first_line: int) -> tuple[Chunk, int]:
        rows: list[dict[str, str | None]] = []
        keys: dict[str, None] = {}
        lines: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        rejected: list[RawReject] = []
        n = 0
        for n, match in enumerate(_LINE.finditer(data), start=1):
            raw = match.group().rstrip(b"\r\n")
            number = first_line + n - 1
            if not raw.strip():
                self.empty_lines += 1
                continue
            self.records += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    text = raw.decode(REPAIR_CODEC)
                    self.repaired += 1
                except UnicodeDecodeError:
                    rejected.append(RawReject(number, "bad_encoding", BAD_ENCODING, raw_text(raw)))
                    continue
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge integers, deep nesting
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
                rejected.append(RawReject(number, "bad_json", f"not JSON ({why})", text))
                continue
            if not isinstance(value, dict):
                rejected.append(
                    RawReject(number, "bad_json", f"a JSON {type(value).__name__}, not an object", text)
                )
                continue
            row = {str(k): _text(v) for k, v in value.items()}
            keys.update(dict.fromkeys(row))
            rows.append(row)
            lines.append(number)
            starts.append(match.start())
            ends.append(match.start() + len(raw))
        table = pa.table({k: pa.array([r.get(k) for r in rows], pa.string()) for k in keys})
        chunk = Chunk(
            table=table,
            line=np.array(lines, dtype=np.int64),
            data=data,
            start=np.array(starts, dtype=np.int64),
            end=np.array(ends, dtype=np.int64),
            rejected=rejected,
            records=len(rows) + len(rejected),
        )
        return chunk, n
