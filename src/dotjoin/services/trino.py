"""Trino, the stack's distributed SQL engine: one process as coordinator and worker, on loopback.

Its server tarball (476, ``services/trino/pom.xml``) comes from Maven Central and is unpacked whole into
``services/.build/trino/server``; Trino 476 needs Java 22+, so it runs on ``[services] trino_java_home``
(Temurin 25 here), capped at ``trino_heap``. Two catalogs, written at every ``up``:

- ``dotjoin`` — the Iceberg connector on the lake's own JDBC catalog in PostgreSQL (the rows PyIceberg
  and Spark write: same catalog name, schema V1) and the object store's bucket, so Trino reads and writes
  the very tables the pipelines do (``SELECT * FROM dotjoin.cdc.users``).
- ``postgresql`` — the warehouse database itself (the baseline of the CDC snapshot benchmark).

Secrets stay out of the files: the catalogs say ``${ENV:…}`` and the process gets the PostgreSQL
password and the object store's secret in its environment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dotjoin.platform.lake.catalog import PASSWORD_ENV, trino_iceberg_catalog
from dotjoin.platform.objectstore import CHECKSUM_ENV, SECRET_ENV
from dotjoin.services import maven, process
from dotjoin.services.base import Service, ServiceError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "services" / "trino" / "pom.xml"
SERVER = REPO_ROOT / "services" / ".build" / "trino" / "server"
MAIN_CLASS = "io.trino.server.TrinoServer"
#: The flags of Trino's own launcher (etc/jvm.config) that matter on a small machine.
JVM_OPTIONS = (
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:ReservedCodeCacheSize=256M",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "--enable-native-access=ALL-UNNAMED",
)


def properties(values: Mapping[str, str], header: str) -> str:
    """A Java properties file.

    >>> print(properties({"a": "1"}, "x"), end="")
    # x
    a=1
    """
    return f"# {header}\n" + "".join(f"{k}={v}\n" for k, v in values.items())


class TrinoService(Service):
    name: ClassVar[str] = "trino"
    start_timeout: ClassVar[float] = 120.0
    stop_timeout: ClassVar[float] = 60.0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.services.trino_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    def check_prerequisites(self) -> None:
        home = self.settings.services.trino_java_home
        if not (Path(home) / "bin" / "java").is_file():
            raise ServiceError(f"trino: Trino 476 needs Java 22+, and there is no JDK at {home} "
                               "([services] trino_java_home)")  # fmt: skip
        maven.require_maven(SERVER, POM)

    def install(self) -> None:
        maven.copy_dependencies(
            POM, SERVER, required=("trino-server-",), what="the Trino server", unpack=True
        )
        if not (SERVER / "lib").is_dir() or not (SERVER / "plugin" / "iceberg").is_dir():
            raise ServiceError(f"trino: {SERVER} lacks lib/ or plugin/iceberg/; remove it and retry")
        (self.etc / "catalog").mkdir(parents=True, exist_ok=True)
        header = "Written by `dotjoin services up`; edits are overwritten."
        (self.etc / "config.properties").write_text(properties(self.server_config(), header))
        (self.etc / "log.properties").write_text(
            properties({"io.trino": "WARN", "io.airlift": "WARN"}, header)
        )
        for name, values in self.catalogs().items():
            (self.etc / "catalog" / f"{name}.properties").write_text(properties(values, header))

    def server_config(self) -> dict[str, str]:
        return {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "node.environment": "dotjoin",
            "node.id": "dotjoin-trino",
            "node.bind-ip": self.host,
            "node.internal-address": self.host,
            "http-server.http.port": str(self.port),
            "discovery.uri": self.url,
            "plugin.dir": str(SERVER / "plugin"),
            "catalog.config-dir": str(self.etc / "catalog"),
            "query.max-memory": "512MB",
            "query.max-memory-per-node": "384MB",
        }

    def catalogs(self) -> dict[str, dict[str, str]]:
        """The ``dotjoin`` (Iceberg) and ``postgresql`` catalog files (secrets as ``${ENV:…}``)."""
        pg = self.settings.postgres
        postgresql = {
            "connector.name": "postgresql",
            "connection-url": f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.dbname}",
            "connection-user": pg.user,
            "connection-password": f"${{ENV:{PASSWORD_ENV}}}",
        }
        return {
            self.settings.lake.catalog_name: trino_iceberg_catalog(self.settings),
            "postgresql": postgresql,
        }

    def command(self) -> list[str]:
        services = self.settings.services
        options = [
            *JVM_OPTIONS,
            f"-Dconfig={self.etc / 'config.properties'}",
            f"-Dlog.levels-file={self.etc / 'log.properties'}",
        ]
        jvm = process.jvm(
            services.trino_heap,
            classpath=f"{SERVER}/lib/*",
            java_home=services.trino_java_home,
            options=options,
        )
        return [*jvm, MAIN_CLASS]

    def spawn_options(self) -> Mapping[str, Any]:
        from dotjoin.services.secretfile import ensure_secret

        # What `up` of postgres and objectstore generated moments ago is in the secrets file, not in the
        # settings this process loaded before: read it from there.
        pg = self.settings.postgres.password
        store = self.settings.objectstore.secret_key
        env = {
            "JAVA_HOME": self.settings.services.trino_java_home,
            **CHECKSUM_ENV,  # Trino's S3 file system is the AWS SDK v2 (see platform/objectstore.py)
            PASSWORD_ENV: ensure_secret(self.settings.state_dir, "warehouse", "password",
                                        pg.get_secret_value() if pg else None),
            SECRET_ENV: ensure_secret(self.settings.state_dir, "objectstore", "secret_key",
                                      store.get_secret_value() if store else None),
        }  # fmt: skip
        return {"cwd": self.home, "env": env}

    def probe(self) -> str:
        """``/v1/info`` once the server has finished starting (it answers ``starting: true`` before)."""
        import httpx

        info = httpx.get(f"{self.url}/v1/info", timeout=3.0).json()
        if info.get("starting", True):
            raise ConnectionError("Trino is still starting")
        return str(info["nodeVersion"]["version"])
