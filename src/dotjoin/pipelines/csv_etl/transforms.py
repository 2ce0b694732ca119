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
from collections.abc import Sequence

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
