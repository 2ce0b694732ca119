"""Where the lake is, as each engine is told: its root, its local files, its catalog (PyIceberg's
SQLAlchemy URI, Spark's Iceberg ``JdbcCatalog`` conf, Trino's Iceberg catalog file) — all from ``[lake]``,
``[warehouse]`` and ``[objectstore]`` of the settings.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

from dotjoin.exceptions import MissingDependencyError
from dotjoin.platform.objectstore import ObjectStore

if TYPE_CHECKING:
    from dotjoin.config import Settings

#: Where Trino's catalog files find the PostgreSQL password (``${ENV:…}``): the Trino service sets it.
PASSWORD_ENV = "DOTJOIN_WAREHOUSE_PASSWORD"  # noqa: S105 - a variable name, not a password
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(root: str) -> bool:
    """Whether ``root`` is an object-store URI (``s3://…``) rather than a local directory.

    >>> is_remote("s3://bucket/lake"), is_remote("/data/lake"), is_remote("file:///data/lake")
    (True, False, False)
    """
    return bool(_URI.match(root)) and not root.startswith("file://")


def lake_root(settings: Settings) -> str:
    """The lake root of ``settings``: an object-store URI as given, or an absolute local path (a relative
    root is resolved against ``state_dir``)."""
    root = settings.lake.root
    return root if is_remote(root) else str(settings.resolve(root.removeprefix("file://")).absolute())


def lake_files(settings: Settings) -> str:
    """The local directory of the zones' plain files: ``[lake] files``, else a local root itself, else
    ``<state_dir>/lake`` (an object-store root holds only the Iceberg tables)."""
    files = settings.lake.files or ("lake" if is_remote(settings.lake.root) else lake_root(settings))
    return str(settings.resolve(files).absolute())


def catalog_uri(settings: Settings) -> str:
    """The SQLAlchemy URI of the Iceberg catalog for ``settings`` (it may hold a password: never log it)."""
    if settings.lake.catalog == "postgres":
        if importlib.util.find_spec("psycopg2") is None:
            raise MissingDependencyError("psycopg2", "postgres")
        return settings.postgres.sqlalchemy_url() + "?connect_timeout=10"
    root = lake_root(settings)
    db = settings.resolve("lake_catalog.db").absolute() if is_remote(root) else Path(root) / "catalog.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def spark_catalog_conf(settings: Settings) -> dict[str, str]:
    """Spark conf for the lake's catalog as Spark catalog ``<catalog_name>`` (Iceberg's ``JdbcCatalog``
    on the rows PyIceberg writes: same catalog name, schema V1), with Iceberg's SQL extensions (MERGE).

    It holds the PostgreSQL password (stack): pass it to Spark, never log it. The JDBC drivers come with
    the Spark jars (``services/spark/pom.xml``).
    """
    name = settings.lake.catalog_name
    prefix = f"spark.sql.catalog.{name}"
    root = lake_root(settings)
    warehouse = root if is_remote(root) else Path(root).as_uri()
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "jdbc",
        f"{prefix}.warehouse": warehouse,
        f"{prefix}.jdbc.schema-version": "V1",
    }
    if is_remote(root):
        conf.update(ObjectStore.from_settings(settings).spark_catalog_conf(prefix))
    if settings.lake.catalog == "postgres":
        pg = settings.postgres
        conf[f"{prefix}.uri"] = f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.dbname}"
        conf[f"{prefix}.jdbc.user"] = pg.user
        if pg.password is not None:
            conf[f"{prefix}.jdbc.password"] = pg.password.get_secret_value()
    else:
        path = catalog_uri(settings).removeprefix("sqlite:///")  # an absolute path
        conf[f"{prefix}.uri"] = f"jdbc:sqlite:{path}"
    return conf


def stack_lake_root(settings: Settings) -> str:
    """The object-store root the stack's services serve: ``[lake] root`` when it is one, else the stack
    profile's (``services up`` may run under the local profile; the services are the stack's)."""
    from dotjoin.config import PROFILE_DEFAULTS

    root = settings.lake.root
    return root if is_remote(root) else str(PROFILE_DEFAULTS["stack"]["lake"]["root"])


def trino_iceberg_catalog(settings: Settings) -> dict[str, str]:
    """Trino's Iceberg catalog file on the stack's lake: the JDBC catalog in PostgreSQL (the rows PyIceberg
    and Spark write: same ``catalog_name``, schema V1) and the object store (secrets as ``${ENV:…}``)."""
    pg = settings.postgres
    return {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.dbname}",
        "iceberg.jdbc-catalog.connection-user": pg.user,
        "iceberg.jdbc-catalog.connection-password": f"${{ENV:{PASSWORD_ENV}}}",
        "iceberg.jdbc-catalog.catalog-name": settings.lake.catalog_name,
        "iceberg.jdbc-catalog.default-warehouse-dir": stack_lake_root(settings),
        "iceberg.jdbc-catalog.schema-version": "V1",
        **ObjectStore.from_settings(settings).trino_properties(),
    }
