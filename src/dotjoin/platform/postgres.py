"""Plain PostgreSQL sessions, for what is not the warehouse's tables: a CDC source's DDL and grants, the
replication role's slot. The driver stays here (pipelines never import one); names are composed with
``sql.Identifier`` (re-exported), values are always parameters.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from dotjoin.config import PostgresConnection
from dotjoin.exceptions import ConfigError

__all__ = ["connect", "sql"]


def connect(
    connection: PostgresConnection, *, user: str | None = None, password: SecretStr | None = None
) -> psycopg.Connection[Any]:
    """An autocommit session on ``connection``'s database, as its role or as ``user`` / ``password``.

    Raises:
        ConfigError: the server refused the login or does not answer (address and role named, and the
            server's first line; never the password).
    """
    role = user or connection.user
    secret = password if user is not None else connection.password
    try:
        return psycopg.connect(
            host=connection.host, port=connection.port, dbname=connection.dbname, user=role,
            password=secret.get_secret_value() if secret else None, autocommit=True, connect_timeout=10,
        )  # fmt: skip
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"cannot connect to PostgreSQL at {connection.address} as {role}: {first} "
            "(start it: dotjoin services up postgres)"
        ) from None
