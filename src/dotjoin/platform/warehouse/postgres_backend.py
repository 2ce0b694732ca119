"""The PostgreSQL warehouse: psycopg 3 with ``$n`` server-side parameters and binary COPY loads.

* Statements run on a :class:`psycopg.RawCursor`, so ``$1, $2`` placeholders go to the server as is
  and values are bound server-side: never interpolated into the SQL text.
* Identifiers are composed with :class:`psycopg.sql.Identifier` (``schema.table`` part by part).
* Loads stream Arrow batches through ``COPY ... FROM STDIN (FORMAT BINARY)``, encoded by
  :mod:`dotjoin.platform.warehouse.pg_copy` for the target columns' types.
* The connection is in autocommit mode; :meth:`PostgresWarehouse.transaction` groups statements.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.string import TextLoader

from dotjoin.config import PostgresConnection
from dotjoin.exceptions import ConfigError, DataError, DotjoinError, ServiceUnavailableError
from dotjoin.platform.warehouse import pg_copy
from dotjoin.platform.warehouse._common import (
    WarehouseConflictError,
    WarehouseError,
    as_source,
    check_column_names,
    check_columns_exist,
    check_upsert_batch,
    iter_batches,
    one_line,
    split_table_name,
    staging_name,
)
from dotjoin.platform.warehouse.base import LoadMode, UpsertResult, Warehouse
from dotjoin.platform.warehouse.pg_types import (
    TEXT_LOADED_TYPES,
    arrow_type_for,
    pg_type_for,
    rows_to_table,
)

logger = logging.getLogger(__name__)

# Where a password is read from (named in an authentication error), not a password.
DEFAULT_PASSWORD_SOURCE = (
    "DOTJOIN__WAREHOUSE__PASSWORD, else [warehouse] password in .dotjoin/secrets.toml "  # noqa: S105
    "(written by `dotjoin services up`), else dotjoin.toml"
)
FETCH_ROWS = 65_536  # rows turned into Arrow at a time by query()
_AUTH_MARKERS = ("password authentication failed", "no password supplied", "authentication failed")
_CONFIG_MARKERS = ("does not exist", "no pg_hba.conf entry", "not permitted to log in")

# Base type of every column of a relation; enums load as their text label, domains as their base type.
_COLUMN_TYPES_SQL = """
SELECT a.attname,
       CASE WHEN t.typtype = 'e' THEN 'text' ELSE coalesce(bt.typname, t.typname)::text END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


class _Sender:
    """Writes a COPY's buffers from a worker thread, at most ``depth`` buffers behind the producer.

    The server ingests one batch while this thread encodes the next (and the caller reads its source);
    memory stays bounded by ``depth`` encoded batches. Only the worker touches the connection until
    the block ends; the worker's error is raised in the producer at its next call or at the end.
    """

    def __init__(self, copy: psycopg.Copy, depth: int = 2) -> None:
        self._copy = copy
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="dotjoin-copy", daemon=True)

    def _work(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                self._copy.write(data)
        except BaseException as exc:
            self._error = exc
            while self._queue.get() is not None:  # keep draining: the producer must never block
                pass

    def __call__(self, data: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def __enter__(self) -> _Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def _cols(names: Sequence[str], alias: str | None = None) -> sql.Composable:
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


class PostgresWarehouse(Warehouse):
    """One autocommit connection to PostgreSQL.

    Args:
        connection: host, port, database, user and password (``settings.postgres``).
        password_source: where the password comes from, named in an authentication error.

    Raises:
        ServiceUnavailableError: nothing answers at ``host:port``.
        ConfigError: the server refused the login (user, password, database, pg_hba).
    """

    dialect: ClassVar[str] = "postgres"

    def __init__(
        self, connection: PostgresConnection, *, password_source: str = DEFAULT_PASSWORD_SOURCE
    ) -> None:
        self.connection = connection
        self._password_source = password_source
        self._depth = 0
        self._closed = False
        self._conn = self._connect()
        logger.debug("connected to PostgreSQL at %s as %s", connection.address, connection.user)

    def _connect(self) -> psycopg.Connection[Any]:
        connection = self.connection
        kwargs: dict[str, Any] = {
            "host": connection.host,
            "port": connection.port,
            "dbname": connection.dbname,
            "user": connection.user,
            "connect_timeout": 10,
            "application_name": "dotjoin",
        }
        if connection.password is not None:
            kwargs["password"] = connection.password.get_secret_value()
        try:
            conn: psycopg.Connection[Any] = psycopg.connect(
                autocommit=True, cursor_factory=psycopg.RawCursor, **kwargs
            )
        except psycopg.OperationalError as exc:
            raise self._connect_error(exc, self._password_source) from exc
        for name in TEXT_LOADED_TYPES:
            conn.adapters.register_loader(name, TextLoader)
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        """The connection; a lost one is re-opened when no transaction is in progress."""
        if not self._conn.closed:
            return self._conn
        if self._closed:
            raise WarehouseError("the PostgreSQL warehouse is closed")
        if self._depth:
            raise ServiceUnavailableError(
                "PostgreSQL", self.connection.address, "connection lost inside a transaction"
            )
        logger.warning("connection to PostgreSQL at %s was lost; reconnecting", self.connection.address)
        self._conn = self._connect()
        return self._conn

    def _connect_error(self, exc: psycopg.OperationalError, password_source: str) -> DotjoinError:
        c = self.connection
        message = one_line(str(exc))
        lowered = message.lower()
        if any(marker in lowered for marker in _AUTH_MARKERS):
            return ConfigError(
                f"PostgreSQL at {c.address} rejected the login of user {c.user!r} ({message}); "
                f"the password is read from {password_source}"
            )
        if any(marker in lowered for marker in _CONFIG_MARKERS):
            return ConfigError(
                f"PostgreSQL at {c.address} refused user {c.user!r} on database {c.dbname!r}: {message}"
            )
        return ServiceUnavailableError("PostgreSQL", c.address, message)

    # -- error boundary -----------------------------------------------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn psycopg exceptions into dotjoin errors that carry the server's message."""
        try:
            yield
        except psycopg.Error as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: psycopg.Error, what: str) -> DotjoinError:
        if isinstance(exc, psycopg.OperationalError) and (self._conn.closed or self._conn.broken):
            return ServiceUnavailableError("PostgreSQL", self.connection.address, one_line(str(exc)))
        state = exc.sqlstate
        message = f"PostgreSQL {what}: {one_line(str(exc))}"
        if state and (state.startswith("40") or state == "55P03"):
            return WarehouseConflictError(message, sqlstate=state)
        return WarehouseError(message, sqlstate=state)

    # -- statements ---------------------------------------------------------------------------------

    def _run(
        self, statement: str | sql.Composable, params: Sequence[Any] | None = None
    ) -> psycopg.Cursor[Any]:
        conn = self._live()
        with self._translated("error"):
            return conn.execute(statement, params)  # type: ignore[arg-type]

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement with ``$n`` parameters; autocommits unless inside :meth:`transaction`.

        Without parameters the statement goes through the simple protocol, so ``sql`` may hold
        several statements separated by semicolons.
        """
        self._run(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a query with ``$n`` parameters; the rows as an Arrow table typed by the result OIDs."""
        cur = self._run(sql, params)
        description = cur.description
        if description is None:
            return pa.table({})

        def chunks() -> Iterator[list[tuple[Any, ...]]]:
            if cur.rownumber:  # a second pass (the fallback conversion) starts over
                cur.scroll(0, mode="absolute")
            while rows := cur.fetchmany(FETCH_ROWS):
                yield rows

        types = [arrow_type_for(col.type_code, col.precision, col.scale) for col in description]
        with self._translated("error"):
            return rows_to_table(chunks, [col.name for col in description], types)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: commit on success, roll back on error.

        A nested ``transaction()`` joins the outer one (as on DuckDB, which has no savepoints): only the
        outermost block commits, and an exception leaving any block rolls the whole transaction back.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self._translated("transaction"), self._live().transaction():
                yield
        finally:
            self._depth = 0

    # -- metadata -----------------------------------------------------------------------------------

    def _regclass_text(self, parts: Sequence[str]) -> str:
        return sql.Identifier(*parts).as_string(self._live())

    def table_exists(self, table: str) -> bool:
        """Whether ``table`` (a table or view, optionally ``schema.table``) exists on the search path."""
        parts = split_table_name(table)
        row = self._run("SELECT to_regclass($1) IS NOT NULL", [self._regclass_text(parts)]).fetchone()
        return bool(row and row[0])

    def column_types(self, table: str) -> dict[str, str]:
        """Column name → base type name (``pg_type.typname``) of ``table``, in column order."""
        return self._column_types(split_table_name(table))

    def _column_types(self, parts: Sequence[str]) -> dict[str, str]:
        rows = self._run(_COLUMN_TYPES_SQL, [self._regclass_text(parts)]).fetchall()
        return {str(name): str(typ) for name, typ in rows}

    # -- loading ------------------------------------------------------------------------------------

    def _create_table(self, parts: Sequence[str], schema: pa.Schema, *, key: Sequence[str] = ()) -> None:
        """CREATE TABLE IF NOT EXISTS from the Arrow schema (see pg_types), with an optional primary key."""
        defs: list[sql.Composable] = [
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(pg_type_for(f.type, f.name)))
            for f in schema
        ]
        if key:
            defs.append(sql.SQL("PRIMARY KEY ({})").format(_cols(key)))
        self._run(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(*parts), sql.SQL(", ").join(defs)
            )
        )

    def _copy(self, parts: Sequence[str], data: pa.Table | pa.RecordBatchReader) -> int:
        """Stream ``data`` into an existing table with binary COPY; returns the rows written."""
        names = data.schema.names
        types = self._column_types(parts)
        check_columns_exist(".".join(parts), names, list(types))
        pg_types = [types[n] for n in names]
        for name, pg_type in zip(names, pg_types, strict=True):
            if not pg_copy.supported(pg_type):
                raise DataError(
                    f"column {name!r} of {'.'.join(parts)!r} has type {pg_type}, which the binary loader "
                    "does not handle; load into a text column and cast in SQL"
                )
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(*parts), _cols(names)
        )
        rows = 0
        with self._translated("COPY"), self._live().cursor() as cur:
            with cur.copy(statement) as copy, _Sender(copy) as send:
                send(pg_copy.HEADER)
                for batch in iter_batches(data):
                    send(pg_copy.encode_batch(batch, pg_types))
                    rows += batch.num_rows
                send(pg_copy.TRAILER)
            if cur.rowcount >= 0 and cur.rowcount != rows:
                raise WarehouseError(
                    f"COPY into {'.'.join(parts)} wrote {cur.rowcount} rows, expected {rows}"
                )
        return rows

    def load_arrow(
        self, table: str, data: pa.Table | pa.RecordBatchReader, *, mode: LoadMode = "append"
    ) -> int:
        """Bulk-load Arrow data with binary COPY; a reader is streamed batch by batch (bounded memory).

        ``append`` creates the table from the Arrow schema when missing (see
        :mod:`~dotjoin.platform.warehouse.pg_types`) and loads the data's columns by name, encoded for
        the table's column types. ``replace`` loads a staging table next to the target and, in the same
        transaction, drops the target and renames the staging table: readers see the old table until
        the commit, never a partial one. The new table takes the Arrow schema; indexes, constraints and
        grants of the old one are not carried over, and PostgreSQL refuses the swap while views depend
        on the old table (drop or recreate them around the load). Returns the number of rows loaded.
        """
        if mode not in ("append", "replace"):
            raise ValueError(f"unknown load mode {mode!r}; choose 'append' or 'replace'")
        data = as_source(data)
        check_column_names(data.schema)
        parts = split_table_name(table)
        with self.transaction():
            if mode == "append":
                if not self.table_exists(table):
                    self._create_table(parts, data.schema)
                rows = self._copy(parts, data)
            else:
                stage = (*parts[:-1], staging_name(parts[-1], "new"))
                self._create_table(stage, data.schema)
                rows = self._copy(stage, data)
                self._run(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*parts)))
                self._run(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        sql.Identifier(*stage), sql.Identifier(parts[-1])
                    )
                )
        logger.debug("%s %d rows into %s", "appended" if mode == "append" else "replaced with", rows, table)
        return rows

    def upsert(self, table: str, data: pa.Table, *, key: Sequence[str]) -> UpsertResult:
        """Insert new rows and update changed ones on ``key``, in one transaction.

        The batch is COPYed into a temporary table typed like the target; one
        ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE (t.cols) IS DISTINCT FROM (EXCLUDED.cols)``
        then writes only new and changed rows (unchanged rows are filtered out by a join first, so they
        are not even locked), and ``RETURNING (xmax = 0)`` tells inserts from updates. The table is
        created with ``PRIMARY KEY (key)`` when missing. On an existing table without a unique index on
        ``key`` (ON CONFLICT needs one) the same result comes from ``UPDATE ... FROM`` + ``INSERT ...
        WHERE NOT EXISTS`` in the transaction, as on DuckDB; concurrent upserts into such a table can
        then both insert a new key. Duplicate or NULL keys in ``data`` raise :class:`DataError`.
        """
        data = as_source(data)
        if not isinstance(data, pa.Table):
            data = data.read_all()
        check_upsert_batch(data, key)
        parts = split_table_name(table)
        names = data.column_names
        values = [c for c in names if c not in key]
        target = sql.Identifier(*parts)
        stage_name = staging_name(parts[-1], "up")
        stage = sql.Identifier(stage_name)
        with self.transaction():
            if not self.table_exists(table):
                self._create_table(parts, data.schema, key=key)
            check_columns_exist(table, names, list(self._column_types(parts)))
            self._run(
                sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                    stage, _cols(names), target
                )
            )
            self._copy((stage_name,), data)
            self._run(sql.SQL("ANALYZE {}").format(stage))
            if self._has_unique_index(parts, key):
                inserted, updated = self._merge(target, stage, names, key, values)
            else:
                logger.debug("%s has no unique index on %s: upserting with UPDATE + INSERT", table, key)
                inserted, updated = self._update_then_insert(target, stage, names, key, values)
            self._run(sql.SQL("DROP TABLE {}").format(stage))
        logger.debug("upserted into %s: %d inserted, %d updated", table, inserted, updated)
        return UpsertResult(inserted=inserted, updated=updated)

    def _has_unique_index(self, parts: Sequence[str], key: Sequence[str]) -> bool:
        """Whether a plain unique index covers exactly the ``key`` columns (what ON CONFLICT infers)."""
        row = self._run(
            "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass($1)"
            " AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL"
            " AND ARRAY(SELECT a.attname::text FROM pg_attribute a"
            " WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) ORDER BY 1) = $2::text[])",
            [self._regclass_text(parts), sorted(key)],
        ).fetchone()
        return bool(row and row[0])

    def _update_then_insert(
        self,
        target: sql.Identifier,
        stage: sql.Identifier,
        names: Sequence[str],
        key: Sequence[str],
        values: Sequence[str],
    ) -> tuple[int, int]:
        match = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("s", k)) for k in key
        )
        updated = 0
        if values:
            cur = self._run(
                sql.SQL(
                    "UPDATE {} AS t SET {} FROM {} AS s WHERE {} AND ROW({}) IS DISTINCT FROM ROW({})"
                ).format(
                    target,
                    sql.SQL(", ").join(
                        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier("s", c)) for c in values
                    ),
                    stage,
                    match,
                    _cols(values, "t"),
                    _cols(values, "s"),
                )
            )
            updated = max(cur.rowcount, 0)
        cur = self._run(
            sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} AS s WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})"
            ).format(target, _cols(names), _cols(names, "s"), stage, target, match)
        )
        return max(cur.rowcount, 0), updated

    def _merge(
        self,
        target: sql.Identifier,
        stage: sql.Identifier,
        names: Sequence[str],
        key: Sequence[str],
        values: Sequence[str],
    ) -> tuple[int, int]:
        join = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("o", k), sql.Identifier("s", k)) for k in key
        )
        new_or_changed = sql.SQL("{} IS NULL").format(sql.Identifier("o", key[0]))
        if values:
            new_or_changed = sql.SQL("{} OR ROW({}) IS DISTINCT FROM ROW({})").format(
                new_or_changed, _cols(values, "o"), _cols(values, "s")
            )
            action = sql.SQL("DO UPDATE SET {} WHERE ROW({}) IS DISTINCT FROM ROW({})").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier("excluded", c))
                    for c in values
                ),
                _cols(values, "t"),
                _cols(values, "excluded"),
            )
        else:
            action = sql.Composed([sql.SQL("DO NOTHING")])
        statement = sql.SQL(
            "WITH r AS (INSERT INTO {target} AS t ({cols}) SELECT {scols} FROM {stage} AS s"
            " LEFT JOIN {target} AS o ON {join} WHERE {new_or_changed}"
            " ON CONFLICT ({key}) {action} RETURNING (t.xmax = 0) AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM r"
        ).format(
            target=target,
            cols=_cols(names),
            scols=_cols(names, "s"),
            stage=stage,
            join=join,
            new_or_changed=new_or_changed,
            key=_cols(key),
            action=action,
        )
        row = self._run(statement).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._closed = True
        self._conn.close()
