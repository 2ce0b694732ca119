"""The CDC history queries (``sql/*.sql``), run alike on DuckDB and on Trino over the same change logs.

A query names relations of the source schema without a prefix — ``users`` (current state),
``users_history`` (SCD type 2), ``users_changes`` (the log) — and its parameters as ``:name``; its
header declares both (``-- tables: users``, ``-- param: as_of timestamptz``). :func:`render` puts the
relations it uses in front as common table expressions over the engine's view of the logs (DuckDB:
``iceberg_scan`` of the current metadata file; Trino: ``<catalog>.raw."<log>"`` of the same JDBC
catalog), in the SQL both engines share (:mod:`dotjoin.pipelines.cdc.views`), and binds the parameters
as ``?`` values, never as text.

    dotjoin cdc query changes_per_day --engine trino
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from dotjoin.exceptions import ConfigError, DataError, NotFoundError
from dotjoin.pipelines.cdc.tables import CdcTable, cdc_tables
from dotjoin.pipelines.cdc.views import current_sql, history_sql, quote
from dotjoin.platform.lake import Lake
from dotjoin.platform.lake.duckdb_views import query_lake

if TYPE_CHECKING:
    from dotjoin.config import Settings

SQL_DIR = Path(__file__).with_name("sql")
Engine = Literal["duckdb", "trino"]
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_TABLES = re.compile(r"^--\s*tables:\s*(.+)$", re.MULTILINE)
_DECLARED = re.compile(r"^--\s*param:\s*([A-Za-z_]\w*)\s+(\w+)\s*$", re.MULTILINE)


def _instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "bigint": int, "text": str, "date": dt.date.fromisoformat, "timestamptz": _instant,
}  # fmt: skip


def names() -> list[str]:
    """The history queries there are.

    >>> names()
    ['changes_per_day', 'current_inventory', 'user_as_of']
    """
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def text(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise NotFoundError(f"no CDC query {name!r}; there are: {', '.join(names())}")
    return path.read_text()


def parameters(sql: str) -> dict[str, str]:
    """The declared parameters of a query text: name -> type.

    >>> parameters("-- param: as_of timestamptz\\nSELECT :as_of")
    {'as_of': 'timestamptz'}
    """
    return dict(_DECLARED.findall(sql))


def bind(
    sql: str, values: Mapping[str, Any], declared: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    """``sql`` with ``:name`` as ``?`` and the values in order; a string is converted by its declared type.

    >>> bind("-- param: n bigint\\nSELECT :n + :n", {"n": "2"})
    ('-- param: n bigint\\nSELECT ? + ?', [2, 2])
    """
    declared = parameters(sql) if declared is None else declared
    missing = sorted(set(declared) - set(values))
    unknown = sorted(set(values) - set(declared))
    if missing or unknown:
        wanted = ", ".join(f"{k} ({t})" for k, t in declared.items()) or "none"
        raise DataError(
            f"query parameters: missing {missing or '-'}, unknown {unknown or '-'}; it takes {wanted}"
        )
    ordered: list[Any] = []
    for match in _PARAM.finditer(sql):
        name, value = match.group(1), values[match.group(1)]
        try:
            ordered.append(CONVERTERS[declared[name]](value) if isinstance(value, str) else value)
        except ValueError:
            raise DataError(f"parameter {name}: {value!r} is not a {declared[name]}") from None
    return _PARAM.sub("?", sql), ordered


def relations(lake: Lake, schema: str, log: Callable[[CdcTable], str]) -> dict[str, str]:
    """``<table>``, ``<table>_history`` and ``<table>_changes`` of every CDC'd table of ``schema``, as SQL
    over ``log(table)`` (the engine's relation of the change log)."""
    found: dict[str, str] = {}
    for table in cdc_tables(lake):
        source_schema, _, name = table.source.partition(".")
        if source_schema != schema:
            continue
        relation = log(table)
        found[f"{name}_changes"] = f"SELECT * FROM {relation}"
        found[name] = current_sql(relation, table.key, table.current_columns)
        found[f"{name}_history"] = history_sql(relation, table.key, table.columns)
    return found


def render(sql: str, available: Mapping[str, str]) -> str:
    """``sql`` with the relations it names (outside comments) prepended as common table expressions.

    >>> render("-- a note\\nSELECT * FROM t", {"t": "SELECT 1 AS x", "u": "SELECT 2"})
    'WITH "t" AS (SELECT 1 AS x)\\nSELECT * FROM t'
    """
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()
    used = [name for name in available if re.search(rf"\b{re.escape(name)}\b", body)]
    if not used:
        return body
    ctes = ", ".join(f"{quote(name)} AS ({available[name]})" for name in used)
    if body[:5].upper() == "WITH ":
        return f"WITH {ctes},\n{body[5:]}"
    return f"WITH {ctes}\n{body}"


def run(
    lake: Lake, settings: Settings, name: str, values: Mapping[str, Any], engine: Engine = "duckdb"
) -> pa.Table:
    """Run history query ``name`` with ``values`` on ``engine`` over the lake's change logs.

    Raises:
        NotFoundError: no such query, or a table it needs was never CDC'd.
        ConfigError: Trino asked for on a lake it cannot see (not the stack's object store).
        DataError: bad parameters, or the engine rejected the query.
    """
    from dotjoin.platform.lake.catalog import is_remote

    raw = text(name)
    schema = settings.cdc.source_schema
    if engine == "trino":
        if not is_remote(lake.root) or settings.lake.catalog != "postgres":
            raise ConfigError("Trino reads the stack's lake (catalog in PostgreSQL, tables in the object "
                              f"store); this one is {lake.root}: run with --profile stack")  # fmt: skip
        catalog = quote(settings.lake.catalog_name)
        available = relations(lake, schema, lambda t: f"{catalog}.raw.{quote(t.log.partition('.')[2])}")
    else:
        available = relations(lake, schema, lambda t: _iceberg_scan(lake.metadata_location(t.log)))
    _require_tables(raw, available, schema)
    sql, params = bind(render(raw, available), values, parameters(raw))
    if engine == "trino":
        from dotjoin.platform import trino

        return trino.query(settings, sql, params)
    return query_lake(sql, params, store=lake.store)


def _iceberg_scan(metadata: str) -> str:
    return "iceberg_scan('" + metadata.replace("'", "''") + "')"


def _require_tables(sql: str, available: Mapping[str, str], schema: str) -> None:
    """Every table of the query's ``-- tables:`` header must have a change log."""
    wanted = [t for line in _TABLES.findall(sql) for t in line.replace(",", " ").split()]
    missing = [t for t in wanted if t not in available]
    if missing:
        raise NotFoundError(f"no change log in the lake for {', '.join(f'{schema}.{t}' for t in missing)}: "
                            "run `dotjoin cdc apply` (or `cdc replay`) first")  # fmt: skip
