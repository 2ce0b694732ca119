"""The SQL warehouse: DuckDB (local profile) or PostgreSQL (stack profile), behind one ABC.

>>> from dotjoin.config import load_settings
>>> from pathlib import Path
>>> env = {"DOTJOIN__WAREHOUSE__PATH": ":memory:"}
>>> settings = load_settings(profile="local", env=env, cwd=Path("/nonexistent"))
>>> with open_warehouse(settings) as wh:
...     wh.scalar("SELECT $1 + 1", [41])
42

Backends are imported lazily: opening DuckDB never imports psycopg, and a missing psycopg is a
:class:`~dotjoin.exceptions.MissingDependencyError` that names the extra to install.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dotjoin.config import CONFIG_FILE, Settings
from dotjoin.exceptions import ConfigError, MissingDependencyError
from dotjoin.platform.warehouse._common import WarehouseConflictError, WarehouseError
from dotjoin.platform.warehouse.base import LoadMode, UpsertResult, Warehouse

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "LoadMode",
    "UpsertResult",
    "Warehouse",
    "WarehouseConflictError",
    "WarehouseError",
    "open_warehouse",
]


def _open_duckdb(settings: Settings) -> Warehouse:
    from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse

    path = settings.warehouse.path
    return DuckDBWarehouse(
        path if path == ":memory:" else settings.resolve(path), memory_limit=settings.warehouse.memory_limit
    )


def _open_postgres(settings: Settings) -> Warehouse:
    try:
        from dotjoin.platform.warehouse.postgres_backend import PostgresWarehouse
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "psycopg":
            raise MissingDependencyError("psycopg", "postgres") from exc
        raise
    source = (
        f"DOTJOIN__WAREHOUSE__PASSWORD, else [warehouse] password in {settings.state_dir / 'secrets.toml'} "
        f"(written by `dotjoin services up`), else {CONFIG_FILE}"
    )
    return PostgresWarehouse(settings.postgres, password_source=source)


#: warehouse.type → opener; the one place that knows every backend.
BACKENDS: dict[str, Callable[[Settings], Warehouse]] = {
    "duckdb": _open_duckdb,
    "postgres": _open_postgres,
}


def open_warehouse(settings: Settings) -> Warehouse:
    """Open the warehouse that ``settings.warehouse.type`` names.

    Args:
        settings: the loaded settings; DuckDB uses ``warehouse.path`` under ``state_dir`` (``:memory:``
            allowed), PostgreSQL uses ``settings.postgres``.

    Raises:
        ConfigError: unknown warehouse type, or PostgreSQL refused the login.
        MissingDependencyError: the backend's driver is not installed.
        ServiceUnavailableError: PostgreSQL is not reachable.
    """
    kind = settings.warehouse.type
    try:
        opener = BACKENDS[kind]
    except KeyError:
        raise ConfigError(f"unknown warehouse type {kind!r}; choose one of: {', '.join(BACKENDS)}") from None
    logger.debug("opening the %s warehouse", kind)
    return opener(settings)
