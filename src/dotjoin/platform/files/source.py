"""Where a reader's bytes come from: a file, or bytes already in memory (a zip member, an HTTP body).

Either may be plain, gzip or zstd, told by the first bytes, never by the name.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))


def open_bytes(path: Path, data: bytes | None = None) -> tuple[Any, Any, str | None]:
    """Open ``path`` (or ``data``, which ``path`` then only names) for reading bytes, decompressed.

    Returns:
        (stream, raw stream for progress positions, compression or None).

    >>> import gzip
    >>> stream, _, compression = open_bytes(Path("member.txt"), gzip.compress(b"a,b\\n"))
    >>> stream.read(), compression
    (b'a,b\\n', 'gzip')
    """
    if data is None:
        with path.open("rb") as probe:
            magic = probe.read(4)
    else:
        magic = data[:4]
    compression = next((name for mark, name in _MAGIC if magic.startswith(mark)), None)
    if compression is None:
        fh = path.open("rb") if data is None else io.BytesIO(data)
        return fh, fh, None
    raw = pa.OSFile(str(path), "rb") if data is None else pa.BufferReader(data)
    return pa.CompressedInputStream(raw, compression), raw, compression
