"""Cleaning rules of the commits dataset (``FORMATS.md``), vectorised over a chunk of records.

The columns, types, formats and rules are declared in ``schemas/commits.yaml`` and applied by the
platform's typed conversion (:func:`~dotjoin.platform.files.convert.convert`); this module is the plug-in
for what a schema cannot say. Every field is trimmed of spaces and tabs. Then, per record, every defect is
found and the record is quarantined for the one that comes first in the reason precedence:

==================  ==============================================================================
missing_field       repo, sha, authored_at, committed_at, additions or deletions is empty
bad_sha             sha, or one of the whitespace-separated parents, is not 40 hex digits
bad_timestamp       authored_at or committed_at is in no supported format
bad_number          additions or deletions is not an integer
future_timestamp    authored_at or committed_at is at or after the run's reference time
negative_count      additions or deletions is below zero
==================  ==============================================================================

A clean record is normalised: repo, sha, parents and author_email lower case (GitHub compares them
case-insensitively), names with inner runs of blanks collapsed, timestamps in UTC, parents joined by
one space. ``parent_count`` and ``is_merge`` (two or more parents) are derived. The natural key is
``repo/sha``; its 128-bit MurmurHash3 digest finds duplicates, and ``content_hash`` (the digest of
every normalised field) detects changed rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.pipelines.csv_etl.transforms import HASH, hash128, joined
from dotjoin.platform.files.convert import convert
from dotjoin.platform.files.schema import load_schema
from dotjoin.platform.files.types import PY_WHITESPACE, UTC_US, lower, matches

logger = logging.getLogger(__name__)

CANONICAL_PARENTS = r"^(?:[0-9a-fA-F]{40}(?: [0-9a-fA-F]{40})*)?$"
#: The declared columns, types, formats and rules (schemas/commits.yaml); the code here is the plug-in.
COMMITS = load_schema(Path(__file__).with_name("schemas") / "commits.yaml").table

#: The clean columns, in table order (the load adds source, run and load-time columns).
SCHEMA = pa.schema(
    [
        pa.field("repo", pa.string(), nullable=False),
        pa.field("sha", pa.string(), nullable=False),
        pa.field("author_name", pa.string()),
        pa.field("author_email", pa.string()),
        pa.field("authored_at", UTC_US, nullable=False),
        pa.field("committer_name", pa.string()),
        pa.field("committed_at", UTC_US, nullable=False),
        pa.field("message", pa.string()),
        pa.field("parents", pa.string()),
        pa.field("parent_count", pa.int32(), nullable=False),
        pa.field("is_merge", pa.bool_(), nullable=False),
        pa.field("additions", pa.int64(), nullable=False),
        pa.field("deletions", pa.int64(), nullable=False),
        pa.field("content_hash", HASH, nullable=False),
    ]
)


@dataclass
class Cleaned:
    """The outcome of cleaning one chunk.

    Attributes:
        rows: the clean records, normalised (``SCHEMA`` of the dataset's cleaning module).
        index: position of each clean record in the input chunk.
        keys: the natural key text of each clean record (``repo/sha``, ``INVOICE/line``).
        key_hashes: the 128-bit digest of each key (what duplicates are found by).
        rejected: (position in the chunk, reason, detail) of each quarantined record.
    """

    rows: pa.Table
    index: np.ndarray
    keys: pa.Array
    key_hashes: pa.Array
    rejected: list[tuple[int, str, str]]


def detail(raw: pa.Table, row: int, reason: str, column: str) -> str:
    """The quarantine detail: the offending column and its (trimmed) value.

    >>> detail(pa.table({"sha": ["xyz"]}), 0, "bad_sha", "sha")
    "sha='xyz'"
    """
    if not column:
        return reason
    value = raw.column(column)[row].as_py()
    text = repr(value if len(value) <= 80 else value[:77] + "...")
    return f"{column}={text}"


def clean_commits(raw: pa.Table, *, now: datetime) -> Cleaned:
    """Validate and normalise a chunk of commit records (string columns as read).

    Args:
        raw: one string column per input column.
        now: the reference time of the ``future_timestamp`` rule.

    >>> from datetime import UTC
    >>> chunk = pa.table({
    ...     "repo": [" Apache/Spark", "x/y"], "sha": ["A" * 40, "abc"], "author_name": ["Ada  L.", ""],
    ...     "author_email": ["ADA@X.ORG", ""], "authored_at": ["1709633472", "2024-01-01T00:00:00Z"],
    ...     "committer_name": ["Ada", ""], "committed_at": ["05/03/2024 10:11", "2024-01-01T00:00:00Z"],
    ...     "message": ["Fix", ""], "parents": ["b" * 40 + " " + "C" * 40, ""], "additions": ["+3", "1"],
    ...     "deletions": ["0", "-1"]})
    >>> out = clean_commits(chunk, now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> out.keys.to_pylist(), out.rejected
    (['apache/spark/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'], [(1, 'bad_sha', "sha='abc'")])
    >>> row = out.rows.to_pylist()[0]
    >>> row["author_name"], row["author_email"], row["is_merge"], row["additions"]
    ('Ada L.', 'ada@x.org', True, 3)
    """
    typed = convert(raw, COMMITS, reference_time=now)
    index = np.flatnonzero(~typed.failed)
    rejected = [
        (int(i), str(typed.reason[i]), detail(raw, int(i), str(typed.reason[i]), str(typed.detail[i])))
        for i in np.flatnonzero(typed.failed).tolist()
    ]
    clean = typed.table.take(pa.array(index))
    parents = lower(clean.column("parents").combine_chunks().fill_null(""))
    if not matches(parents, CANONICAL_PARENTS).all():  # other whitespace between parents: one space
        parents = pc.utf8_trim(pc.replace_substring_regex(parents, PY_WHITESPACE + "+", " "), " ")
    parent_count = pc.divide(pc.add(pc.utf8_length(parents), 1), 41).cast(pa.int32())  # 40 hex + 1 space
    repo, sha = clean.column("repo").combine_chunks(), lower(clean.column("sha").combine_chunks())
    columns = {name: clean.column(name).combine_chunks() for name in clean.column_names}
    columns |= {"sha": sha, "parents": parents, "parent_count": parent_count}
    columns["is_merge"] = pc.greater_equal(parent_count, 2)
    columns = {name: columns[name] for name in SCHEMA.names if name != "content_hash"}
    keys = pc.binary_join_element_wise(repo, sha, "/")
    columns["content_hash"] = hash128(joined(list(columns.values())))
    return Cleaned(pa.table(columns, schema=SCHEMA), index, keys, hash128(keys), rejected)
