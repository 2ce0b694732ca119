"""DuckDB over the lake's Iceberg tables, offline: the ``iceberg``/``avro`` extension wheels from PyPI.

``INSTALL iceberg`` downloads from the internet; the ``duckdb-extension-iceberg`` and ``-avro`` wheels
(pinned in pyproject with duckdb itself) ship the binaries, which ``LOAD '<path>'`` accepts directly.
:func:`create_iceberg_views` publishes lake tables to a DuckDB database as views over
``iceberg_scan('<metadata.json>')`` — the way dbt (dbt-duckdb) reads the staging zone as sources.
A view is pinned to the metadata file it names, i.e. to one snapshot: re-create the views after a load.
An ``s3://`` lake (the stack's object store) also needs ``httpfs`` (its wheel too) and a temporary
secret per connection: :func:`connect` with the lake's ``store``.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from dotjoin.exceptions import DataError, TerminalError

if TYPE_CHECKING:
    from dotjoin.platform.objectstore import ObjectStore

logger = logging.getLogger(__name__)

EXTENSIONS = ("avro", "iceberg")  # iceberg needs avro (manifests are Avro files)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def extension_paths(names: tuple[str, ...] = EXTENSIONS) -> list[str]:
    """Absolute paths of the extension binaries (avro and iceberg by default) of the installed duckdb.

    Raises:
        TerminalError: a ``duckdb-extension-<name>`` wheel for this duckdb version is not installed.
    """
    paths = []
    for name in names:
        wheel = f"duckdb-extension-{name}=={duckdb.__version__}"
        spec = importlib.util.find_spec(f"duckdb_extension_{name}")
        if spec is None or not spec.submodule_search_locations:
            raise TerminalError(f"{wheel} is not installed; install it with: pip install '{wheel}'")
        base = Path(next(iter(spec.submodule_search_locations)))
        path = base / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        if not path.exists():
            raise TerminalError(f"{path} is missing; install it with: pip install '{wheel}'")
        paths.append(str(path))
    return paths


def load_sql() -> list[str]:
    """The ``LOAD '<path>'`` statements that enable ``iceberg_scan`` on a DuckDB connection.

    >>> all(s.startswith("LOAD '") for s in load_sql())
    True
    """
    return [f"LOAD '{path}'" for path in extension_paths()]


def connect(database: str | Path = ":memory:", store: ObjectStore | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the iceberg extension loaded (offline); with ``store``, also httpfs and
    the object store's credentials as a temporary secret (this connection only)."""
    con = duckdb.connect(str(database))
    for statement in load_sql():
        con.execute(statement)
    if store is not None:
        con.execute(f"LOAD '{extension_paths(('httpfs',))[0]}'")
        con.execute(store.duckdb_secret_sql())
    return con


def query_lake(sql: str, params: Sequence[Any] = (), store: ObjectStore | None = None) -> pa.Table:
    """Run ``sql`` (``?`` parameters) on an in-memory DuckDB with the lake's extensions (and the object
    store's secret), in UTC: timestamptz values come back as UTC instants, as Trino's do.

    Raises:
        DataError: DuckDB rejected the query (its first line).
    """
    con = connect(store=store)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, list(params)).to_arrow_table()
    except duckdb.Error as exc:
        raise DataError(f"DuckDB query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def _quote(text: str) -> str:
    """A SQL string literal.

    >>> _quote("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def create_iceberg_views(database: str | Path, schema: str, tables: Mapping[str, str]) -> None:
    """Create or replace ``<schema>.<view>`` over ``iceberg_scan(metadata)`` for each ``view: metadata``.

    Args:
        database: the DuckDB file (created if missing).
        schema: the schema of the views, e.g. ``lake_staging``.
        tables: view name -> the table's current ``*.metadata.json`` location.

    Raises:
        DataError: a bad identifier, or DuckDB cannot read a table.
    """
    for name in (schema, *tables):
        if not _IDENT.match(name):
            raise DataError(f"bad DuckDB identifier {name!r}: use letters, digits and underscores")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    con = connect(database)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for view, metadata in tables.items():
            con.execute(
                f"CREATE OR REPLACE VIEW {schema}.{view} AS SELECT * FROM iceberg_scan({_quote(metadata)})"
            )
    except duckdb.Error as exc:
        raise DataError(f"cannot create Iceberg views in {database}: {exc}") from exc
    finally:
        con.close()
    logger.info("DuckDB views %s.{%s} over Iceberg in %s", schema, ",".join(tables), database)


def time_query(con: duckdb.DuckDBPyConnection, sql: str, *, repeat: int = 5) -> tuple[float, object]:
    """The best wall time of ``repeat`` runs of ``sql`` (seconds) and its first result row."""
    best, row = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        row = con.execute(sql).fetchone()
        best = min(best, time.perf_counter() - t0)
    return best, row


def query(database: str | Path, sql: str) -> pa.Table:
    """Run ``sql`` against a DuckDB file (iceberg extension loaded) and return Arrow.

    Raises:
        DataError: DuckDB rejected the query.
    """
    con = duckdb.connect(str(database))  # same config as dbt-duckdb: shares its open instance
    try:
        for statement in load_sql():
            con.execute(statement)
        return con.execute(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise DataError(f"DuckDB query on {database} failed: {exc}") from exc
    finally:
        con.close()
