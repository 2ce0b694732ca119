"""The CDC'd tables of the lake, and DuckDB over them: change log, current state, SCD type 2 history.

For every change log the applier wrote (``raw.<schema>_<table>_changes``, found by its ``dotjoin.cdc.*``
snapshot properties) :func:`duckdb_views` creates, in schema ``cdc`` of a DuckDB connection::

    cdc.<schema>_<table>_changes   the log (iceberg_scan of its current snapshot)
    cdc.<schema>_<table>           the current state            (views.current_sql)
    cdc.<schema>_<table>_history   the SCD type 2 history       (views.history_sql)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from dotjoin.exceptions import NotFoundError
from dotjoin.pipelines.cdc.applier import META_COLUMNS, PREFIX, TableState, log_table
from dotjoin.pipelines.cdc.views import current_sql, history_sql, quote
from dotjoin.platform.lake import Lake
from dotjoin.platform.lake.duckdb_views import connect as duckdb_connect


@dataclass(frozen=True)
class CdcTable:
    source: str  # schema.table in the source database
    log: str  # the lake table of its change log
    key: tuple[str, ...]
    columns: tuple[str, ...]  # every column the log has (the source's, past and present)
    dropped: frozenset[str]
    state: TableState

    @property
    def view(self) -> str:
        """The DuckDB view name of its current state: ``<schema>_<table>``."""
        return self.source.replace(".", "_")

    @property
    def current_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.dropped)


def cdc_tables(lake: Lake) -> list[CdcTable]:
    """Every change log in the lake's raw zone, with what its last commit recorded."""
    found = []
    for name in lake.list_tables("raw"):
        if not name.endswith("_changes"):
            continue
        props = lake.last_properties(name, PREFIX)
        if not props.get(PREFIX + "source"):
            continue
        state = TableState.from_properties(props)
        columns = tuple(f.name for f in lake.schema(name) if f.name not in META_COLUMNS)
        found.append(CdcTable(state.source, name, state.key, columns, state.dropped, state))
    return found


def cdc_table(lake: Lake, source: str) -> CdcTable:
    """The CDC'd table ``schema.table``; NotFoundError naming the ones there are."""
    tables = cdc_tables(lake)
    for table in tables:
        if table.source == source or table.view == source:
            return table
    known = ", ".join(t.source for t in tables) or "none yet"
    raise NotFoundError(
        f"no change log for {source!r} in the lake ({log_table(source)}); CDC'd tables: {known}"
    )


def duckdb_views(lake: Lake, con: Any = None) -> Any:
    """A DuckDB connection (iceberg extension loaded) with the ``cdc`` views over every change log."""
    con = con or duckdb_connect(store=lake.store)
    con.execute("CREATE SCHEMA IF NOT EXISTS cdc")
    for table in cdc_tables(lake):
        log = f"cdc.{quote(table.view + '_changes')}"
        metadata = lake.metadata_location(table.log).replace("'", "''")
        con.execute(f"CREATE OR REPLACE VIEW {log} AS SELECT * FROM iceberg_scan('{metadata}')")
        current = current_sql(log, table.key, table.current_columns)
        con.execute(f"CREATE OR REPLACE VIEW cdc.{quote(table.view)} AS {current}")
        history = history_sql(log, table.key, table.columns)
        con.execute(f"CREATE OR REPLACE VIEW cdc.{quote(table.view + '_history')} AS {history}")
    return con


def current_state(lake: Lake, source: str) -> pa.Table:
    """The current state of ``source`` (schema.table), ordered by key."""
    table = cdc_table(lake, source)
    con = duckdb_views(lake)
    try:
        keys = ", ".join(map(quote, table.key))
        return con.execute(f"SELECT * FROM cdc.{quote(table.view)} ORDER BY {keys}").to_arrow_table()
    finally:
        con.close()


def history(lake: Lake, source: str) -> pa.Table:
    """The SCD type 2 history of ``source``, ordered by key and version."""
    table = cdc_table(lake, source)
    con = duckdb_views(lake)
    try:
        keys = ", ".join(map(quote, table.key))
        sql = f"SELECT * FROM cdc.{quote(table.view + '_history')} ORDER BY {keys}, version"
        return con.execute(sql).to_arrow_table()
    finally:
        con.close()


def state_as_of(lake: Lake, source: str, instant: Any) -> pa.Table:
    """The state of ``source`` as of ``instant`` (an aware datetime), from its history: the versions valid
    then (``valid_from <= t < valid_to``) that are not deletes, ordered by key."""
    table = cdc_table(lake, source)
    con = duckdb_views(lake)
    try:
        keys = ", ".join(map(quote, table.key))
        cols = ", ".join(map(quote, table.current_columns))
        sql = (f"SELECT {cols} FROM cdc.{quote(table.view + '_history')} WHERE valid_from <= ? "
               f"AND (valid_to IS NULL OR valid_to > ?) AND NOT is_deleted ORDER BY {keys}")  # fmt: skip
        return con.execute(sql, [instant, instant]).to_arrow_table()
    finally:
        con.close()
