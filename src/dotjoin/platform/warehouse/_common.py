"""Backend-neutral helpers of the warehouse adapters: errors, table names, batch checks.

Nothing here imports a driver, so both backends (and their tests) can share it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.exceptions import DataError, TerminalError, TransientError

logger = logging.getLogger(__name__)

#: Rows per encoded chunk: big enough to amortise Python overhead, small enough to bound memory.
CHUNK_ROWS = 131_072


class WarehouseError(TerminalError):
    """The SQL engine rejected a statement (syntax, missing table, constraint, type mismatch).

    Attributes:
        sqlstate: the five-character SQLSTATE when the engine reports one (PostgreSQL), else None.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class WarehouseConflictError(TransientError):
    """A concurrency conflict (serialization failure, deadlock, lock timeout): retrying may succeed."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


def one_line(message: str) -> str:
    """Collapse a multi-line driver message into one line (the CLI prints one red line)."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def split_table_name(table: str) -> tuple[str, ...]:
    """Split ``table``, ``schema.table`` or ``catalog.schema.table`` into unquoted parts.

    A part that starts with a double quote is quoted: it may hold dots (``"my.schema"."x"``) and
    ``""`` stands for one quote. Other parts are taken literally up to the next dot, case, spaces and
    inner quotes included: they are always quoted when used.

    Args:
        table: the name as the caller wrote it.

    Returns:
        One to three name parts.

    Raises:
        WarehouseError: empty parts, unbalanced quotes or more than three parts.

    >>> split_table_name("sales.orders")
    ('sales', 'orders')
    >>> split_table_name('"my.schema"."My Table"')
    ('my.schema', 'My Table')
    >>> split_table_name("my table")
    ('my table',)
    >>> split_table_name('we"ird')
    ('we"ird',)
    """
    parts: list[str] = []
    i, n = 0, len(table)
    while True:
        if i < n and table[i] == '"':
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise WarehouseError(f"invalid table name {table!r}: unbalanced double quote")
                if table[i] == '"':
                    if i + 1 < n and table[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(table[i])
                i += 1
            part = "".join(buf)
        else:
            end = table.find(".", i)
            end = n if end < 0 else end
            part = table[i:end]
            i = end
        if not part:
            raise WarehouseError(f"invalid table name {table!r}: empty name part")
        parts.append(part)
        if i >= n:
            break
        if table[i] != ".":
            raise WarehouseError(f"invalid table name {table!r}: expected '.' after a quoted part")
        i += 1
    if len(parts) > 3:
        raise WarehouseError(f"invalid table name {table!r}: at most catalog.schema.table")
    return tuple(parts)


def staging_name(name: str, purpose: str) -> str:
    """A unique sibling name for a staging table, short enough for PostgreSQL's 63-byte limit."""
    stem = name.encode()[:32].decode(errors="ignore")
    return f"{stem}__dj_{purpose}_{uuid.uuid4().hex[:8]}"


def check_column_names(schema: pa.Schema) -> None:
    """Reject Arrow schemas a SQL table cannot hold: no columns, empty or duplicate names."""
    if not schema.names:
        raise DataError("cannot load data without columns")
    seen: set[str] = set()
    for name in schema.names:
        if not name:
            raise DataError("cannot load a column with an empty name")
        if name in seen:
            raise DataError(f"duplicate column name {name!r} in the data")
        seen.add(name)


def check_columns_exist(table: str, data_columns: Sequence[str], table_columns: Sequence[str]) -> None:
    """Every data column must exist in the target table (extra table columns get their default)."""
    known = set(table_columns)
    missing = [c for c in data_columns if c not in known]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} of the data do not exist in table {table!r} "
            f"(it has: {', '.join(table_columns)}); load with mode='replace' to take the new schema"
        )


def check_upsert_batch(data: pa.Table, key: Sequence[str]) -> None:
    """Validate an upsert batch: key given and present, no NULL keys, no duplicate keys.

    Duplicate keys inside one batch are an error rather than "keep last": which of two conflicting
    rows wins would depend on the order of the input, and silently dropping one hides a bug upstream.

    Raises:
        DataError: naming the offending key column or (up to three) duplicated key values.
    """
    if not key:
        raise DataError("upsert needs at least one key column")
    check_column_names(data.schema)
    missing = [k for k in key if k not in data.column_names]
    if missing:
        raise DataError(f"key column(s) {', '.join(map(repr, missing))} not in the data")
    if len(set(key)) != len(key):
        raise DataError(f"duplicate key column in {list(key)}")
    for k in key:
        if data.column(k).null_count:
            raise DataError(f"key column {k!r} has {data.column(k).null_count} NULL value(s)")
    if data.num_rows < 2:
        return
    counts = data.select(list(key)).group_by(list(key)).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts.column("count_all"), 1))
    if dupes.num_rows:
        examples = dupes.slice(0, 3).drop_columns(["count_all"]).to_pylist()
        raise DataError(
            f"{dupes.num_rows} key value(s) occur more than once in the upsert batch "
            f"(e.g. {examples}); deduplicate the batch first"
        )


def iter_batches(
    data: pa.Table | pa.RecordBatchReader, max_rows: int = CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of at most ``max_rows`` rows, reading a reader lazily (bounded memory)."""
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=max_rows)
        return
    for batch in data:
        for start in range(0, batch.num_rows, max_rows):
            yield batch.slice(start, max_rows)


def as_source(data: pa.Table | pa.RecordBatchReader) -> pa.Table | pa.RecordBatchReader:
    """Validate the type of ``data`` early, with a message that names what was passed."""
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    raise DataError(f"expected a pyarrow Table or RecordBatchReader, got {type(data).__name__}")
