"""The DuckDB warehouse: an embedded file (or ``:memory:``) loaded through DuckDB's Arrow scan.

Named ``duckdb_backend`` so that ``import duckdb`` inside it means the DuckDB package.
DuckDB matches identifiers case-insensitively even when quoted; names are still always quoted,
so spaces, dots and quotes in table and column names are safe.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from dotjoin.platform.warehouse._common import (
    WarehouseConflictError,
    WarehouseError,
    as_source,
    check_column_names,
    check_columns_exist,
    check_upsert_batch,
    one_line,
    split_table_name,
)
from dotjoin.platform.warehouse.base import LoadMode, UpsertResult, Warehouse

logger = logging.getLogger(__name__)


def quote_identifier(name: str) -> str:
    """Quote one identifier for DuckDB, doubling embedded quotes.

    >>> quote_identifier('my "odd" Name')
    '"my ""odd"" Name"'
    """
    return '"' + name.replace('"', '""') + '"'


def quote_table(table: str) -> str:
    """Quote a possibly qualified table name (``schema.table``) part by part.

    >>> quote_table("main.My Table")
    '"main"."My Table"'
    """
    return ".".join(quote_identifier(part) for part in split_table_name(table))


def _columns(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + quote_identifier(n) for n in names)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn DuckDB exceptions into dotjoin errors carrying DuckDB's own message."""
    try:
        yield
    except duckdb.TransactionException as exc:
        raise WarehouseConflictError(f"DuckDB {what}: {one_line(str(exc))}") from exc
    except duckdb.Error as exc:
        raise WarehouseError(f"DuckDB {what}: {one_line(str(exc))}") from exc


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (parent directories are created) or ``":memory:"``.

    Args:
        path: the database file, or ``":memory:"``.

    Example:
        >>> with DuckDBWarehouse(":memory:") as wh:
        ...     wh.load_arrow("t", pa.table({"x": [1, 2]}))
        ...     wh.scalar("SELECT max(x) FROM t WHERE x >= $1", [1])
        2
        2
    """

    dialect: ClassVar[str] = "duckdb"

    def __init__(self, path: str | Path = ":memory:", *, memory_limit: str = "") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {}
        if memory_limit:  # DuckDB caps its buffer manager; spills to disk beyond it
            config["memory_limit"] = memory_limit
        with _translated(f"cannot open {self.path}"):
            self._con = duckdb.connect(self.path, config=config)
        self._depth = 0
        self._closed = False
        logger.debug("opened DuckDB warehouse at %s", self.path)

    # -- statements ---------------------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise WarehouseError("the DuckDB warehouse is closed")
        with _translated("error"):
            return self._con.execute(sql, list(params) if params is not None else None)

    def _count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        row = self._run(sql, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement with ``$n`` parameters; autocommits unless inside :meth:`transaction`."""
        self._run(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a query with ``$n`` parameters; the result as an Arrow table (DuckDB's own export)."""
        result = self._run(sql, params)
        with _translated("error"):
            return result.to_arrow_table()

    # -- transactions -------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: commit on success, roll back on error.

        A nested ``transaction()`` joins the outer one (DuckDB has no savepoints): only the outermost
        block commits, and an exception leaving any block rolls the whole transaction back.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._run("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with _translated("rollback"):
                self._con.rollback()
            raise
        self._depth = 0
        with _translated("commit"):
            self._con.commit()

    # -- metadata -----------------------------------------------------------------------------------

    def _locate(self, table: str) -> tuple[str | None, str | None, str]:
        parts = split_table_name(table)
        catalog = parts[0] if len(parts) == 3 else None
        schema = parts[-2] if len(parts) >= 2 else None
        return catalog, schema, parts[-1]

    def table_exists(self, table: str) -> bool:
        """Whether ``table`` (a table or view, optionally ``schema.table``) exists; case-insensitive.

        An unqualified name is looked up in the current schema and among temporary tables.
        """
        catalog, schema, name = self._locate(table)
        sql = "SELECT count(*) FROM information_schema.tables WHERE lower(table_name) = lower($1)"
        if schema is None:
            sql += (
                " AND ((table_catalog = current_database() AND table_schema = current_schema())"
                " OR table_catalog = 'temp')"
            )
            return self._count(sql, [name]) > 0
        sql += (
            " AND lower(table_schema) = lower($2)"
            " AND lower(table_catalog) = lower(coalesce($3, current_database()))"
        )
        return self._count(sql, [name, schema, catalog]) > 0

    def columns(self, table: str) -> list[str]:
        """The column names of ``table`` in table order (empty when it does not exist)."""
        if not self.table_exists(table):
            return []
        return [str(row[0]) for row in self._run(f"DESCRIBE {quote_table(table)}").fetchall()]

    # -- loading ------------------------------------------------------------------------------------

    @contextmanager
    def _registered(self, data: pa.Table | pa.RecordBatchReader) -> Iterator[str]:
        view = f"__dj_arrow_{uuid.uuid4().hex[:12]}"
        with _translated("cannot scan the Arrow data"):
            self._con.register(view, data)
        try:
            yield quote_identifier(view)
        finally:
            self._con.unregister(view)

    def load_arrow(
        self, table: str, data: pa.Table | pa.RecordBatchReader, *, mode: LoadMode = "append"
    ) -> int:
        """Bulk-load Arrow data through DuckDB's Arrow scan (a reader is scanned once, streaming).

        ``append`` creates the table from the Arrow schema when missing and inserts by column name;
        ``replace`` rebuilds the table from the data in one transaction (other connections see the old
        table until the commit); the new table takes the Arrow schema, constraints of the old one are
        not carried over. Returns the number of rows loaded.
        """
        if mode not in ("append", "replace"):
            raise ValueError(f"unknown load mode {mode!r}; choose 'append' or 'replace'")
        data = as_source(data)
        check_column_names(data.schema)
        target = quote_table(table)
        with self.transaction():
            if mode == "replace":
                with self._registered(data) as view:
                    rows = self._count(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {view}")
                logger.debug("replaced %s with %d rows", table, rows)
                return rows
            self._ensure_table(table, data.schema)
            with self._registered(data) as view:
                rows = self._count(f"INSERT INTO {target} BY NAME SELECT * FROM {view}")
        logger.debug("appended %d rows to %s", rows, table)
        return rows

    def _ensure_table(self, table: str, schema: pa.Schema, key: Sequence[str] = ()) -> None:
        """Create ``table`` from the Arrow schema (with a primary key on ``key``) or check its columns."""
        if self.table_exists(table):
            existing = {c.lower(): c for c in self.columns(table)}
            check_columns_exist(
                table, [existing.get(n.lower(), n) for n in schema.names], list(existing.values())
            )
            return
        with self._registered(schema.empty_table()) as view:
            described = self._run(f"DESCRIBE SELECT * FROM {view}").fetchall()
        defs = [f"{quote_identifier(row[0])} {row[1]}" for row in described]
        if key:
            defs.append(f"PRIMARY KEY ({_columns(key)})")
        self._run(f"CREATE TABLE IF NOT EXISTS {quote_table(table)} ({', '.join(defs)})")

    def upsert(self, table: str, data: pa.Table, *, key: Sequence[str]) -> UpsertResult:
        """Insert new rows and update changed ones on ``key``, in one transaction.

        The table is created with ``PRIMARY KEY (key)`` when missing. A row counts as updated only
        when one of its non-key values is DISTINCT FROM the stored one, so a re-run reports 0/0.
        Duplicate or NULL keys in ``data`` raise :class:`DataError` (see ``check_upsert_batch``).
        """
        data = as_source(data)
        if not isinstance(data, pa.Table):
            data = data.read_all()
        check_upsert_batch(data, key)
        target = quote_table(table)
        values = [c for c in data.column_names if c not in key]
        with self.transaction():
            self._ensure_table(table, data.schema, key)
            with self._registered(data) as staged:
                match = " AND ".join(f"t.{quote_identifier(k)} = s.{quote_identifier(k)}" for k in key)
                updated = 0
                if values:
                    changed = " OR ".join(
                        f"t.{quote_identifier(c)} IS DISTINCT FROM s.{quote_identifier(c)}" for c in values
                    )
                    sets = ", ".join(f"{quote_identifier(c)} = s.{quote_identifier(c)}" for c in values)
                    updated = self._count(
                        f"UPDATE {target} AS t SET {sets} FROM {staged} AS s WHERE {match} AND ({changed})"
                    )
                inserted = self._count(
                    f"INSERT INTO {target} BY NAME SELECT s.* FROM {staged} AS s "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})"
                )
        logger.debug("upserted into %s: %d inserted, %d updated", table, inserted, updated)
        return UpsertResult(inserted=inserted, updated=updated)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._con.close()
