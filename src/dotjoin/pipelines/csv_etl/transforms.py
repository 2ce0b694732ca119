"""Pure, vectorised cleaning functions on Arrow arrays: whitespace, integers, timestamps, hashes, reasons.

Every function takes and returns Arrow arrays (or numpy masks) and has no side effects; a value that
does not parse becomes NULL (or False in a validity mask) and the caller turns that into a reason code.
The grammars are the ones ``FORMATS.md`` documents, implemented without a Python loop per row:
regular expressions (RE2) classify values, fixed-width formats are decoded from the string buffer with
numpy, and calendars are computed with integer arithmetic.

Money and discounts live in :mod:`~dotjoin.pipelines.csv_etl.money`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.pipelines.csv_etl.reasons import REASON_PRECEDENCE
from dotjoin.platform.files.types import _plain

logger = logging.getLogger(__name__)

HASH = pa.binary(16)


# -- hashes -----------------------------------------------------------------------------------------

SEPARATOR = "\x1f"  # ASCII unit separator: joins the parts of a hashed value


def hash128(values: pa.Array) -> pa.Array:
    """MurmurHash3 x64 128-bit digest of each value's UTF-8 bytes (NULL hashes like "").

    >>> hash128(pa.array(["apache/spark/" + "a" * 40])).type
    FixedSizeBinaryType(fixed_size_binary[16])
    """
    digest = mmh3.mmh3_x64_128_digest
    data = b"".join([digest(v) for v in _plain(values).fill_null("").cast(pa.binary()).to_pylist()])
    return pa.FixedSizeBinaryArray.from_buffers(HASH, len(values), [None, pa.py_buffer(data)])


def joined(columns: Sequence[pa.Array]) -> pa.Array:
    """Values joined with the unit separator, row by row (NULL parts as empty text); the hash input.

    >>> joined([pa.array(["a"]), pa.array([None], pa.string()), pa.array(["c"])]).to_pylist()
    ['a\\x1f\\x1fc']
    """
    parts = [_as_text(c).fill_null("") for c in columns]
    return pc.binary_join_element_wise(*parts, SEPARATOR)


def _as_text(values: pa.Array) -> pa.Array:
    """Values as text for hashing; timestamps as epoch microseconds (formatting dates is slow)."""
    if pa.types.is_timestamp(values.type):
        values = pc.cast(values, pa.int64())
    elif pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def hash_words(digests: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit halves of 128-bit digests, for exact set operations in numpy.

    >>> hi, lo = hash_words(hash128(pa.array(["x", "x", "y"])))
    >>> bool(hi[0] == hi[1] and lo[0] == lo[1]), bool(hi[0] == hi[2])
    (True, False)
    """
    words = np.frombuffer(digests.buffers()[1], dtype="<u8")[
        2 * digests.offset : 2 * (digests.offset + len(digests))
    ]
    return words[0::2].copy(), words[1::2].copy()


# -- reasons ----------------------------------------------------------------------------------------


def first_reason(defects: Mapping[str, np.ndarray], n: int) -> pa.Array:
    """Per row, the defect that comes first in the reason precedence (NULL when there is none).

    >>> first_reason({"negative_count": np.array([True, True, False]),
    ...               "bad_timestamp": np.array([True, False, False])}, 3).to_pylist()
    ['bad_timestamp', 'negative_count', None]
    """
    codes = np.full(n, -1, dtype=np.int64)
    for rank, reason in reversed(list(enumerate(REASON_PRECEDENCE))):
        mask = defects.get(reason)
        if mask is not None:
            codes[mask] = rank
    names = pa.array(list(REASON_PRECEDENCE), pa.string())
    return pc.take(names, pa.array(codes, mask=codes < 0))


class Defects:
    """The defects found in a chunk: per (reason, column) a row mask; picks each row's one reason.

    >>> d = Defects(3)
    >>> d.add("negative_count", "additions", np.array([True, False, False]))
    >>> d.add("bad_timestamp", "authored_at", np.array([True, True, False]))
    >>> d.reasons().to_pylist(), d.column(0, "bad_timestamp")
    (['bad_timestamp', 'bad_timestamp', None], 'authored_at')
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.found: dict[str, list[tuple[str, np.ndarray]]] = {}

    def add(self, reason: str, column: str, mask: np.ndarray) -> None:
        """Record that ``column`` has defect ``reason`` where ``mask`` is true."""
        if mask.any():
            self.found.setdefault(reason, []).append((column, mask))

    def masks(self) -> dict[str, np.ndarray]:
        """Per reason, the rows that have it (on any column)."""
        out = {}
        for reason, items in self.found.items():
            mask = np.zeros(self.n, dtype=bool)
            for _, m in items:
                mask |= m
            out[reason] = mask
        return out

    def reasons(self) -> pa.Array:
        """Per row, the reason that comes first in the precedence, or NULL."""
        return first_reason(self.masks(), self.n)

    def column(self, row: int, reason: str) -> str:
        """The first column that gave ``row`` its ``reason`` (for the quarantine detail)."""
        return next((c for c, m in self.found.get(reason, []) if m[row]), "")
