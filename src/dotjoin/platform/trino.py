"""Queries on the stack's Trino (``dotjoin services up trino``) through its Python DB-API client.

Trino answers over HTTP; :func:`query` sends one statement with ``?`` parameters (Trino prepares it:
values never become SQL text) and returns the rows as Arrow, with column names as Trino reports them.
Installed with the ``trino`` extra (``pip install 'dotjoin[trino]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dotjoin.exceptions import DataError, MissingDependencyError, ServiceUnavailableError

if TYPE_CHECKING:
    from dotjoin.config import Settings

USER = "dotjoin"  # Trino runs without authentication on loopback; the user names the queries in its UI


def address(settings: Settings) -> tuple[str, int]:
    return "127.0.0.1", settings.services.trino_port


def query(
    settings: Settings, sql: str, params: Sequence[Any] = (), *, catalog: str | None = None
) -> pa.Table:
    """Run ``sql`` on Trino (default catalog: the lake's) and return its rows.

    Raises:
        ServiceUnavailableError: nothing answers at the Trino address.
        DataError: Trino rejected the query (its message, first line).
    """
    try:
        import trino
        from trino.exceptions import TrinoQueryError
    except ImportError as exc:
        raise MissingDependencyError("trino", "trino") from exc
    import requests

    host, port = address(settings)
    conn = trino.dbapi.connect(host=host, port=port, user=USER, catalog=catalog or settings.lake.catalog_name)
    try:
        cur = conn.cursor()
        cur.execute(sql, list(params)) if params else cur.execute(sql)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description or []]
    except requests.exceptions.ConnectionError as exc:
        raise ServiceUnavailableError("Trino", f"{host}:{port}") from exc
    except TrinoQueryError as exc:
        raise DataError(f"Trino query failed: {exc.error_name}: {exc.message.splitlines()[0]}") from exc
    finally:
        conn.close()
    columns = [pa.array([row[i] for row in rows]) for i in range(len(names))]
    return pa.Table.from_arrays(columns, names=names)
