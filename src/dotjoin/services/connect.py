"""Kafka Connect (one distributed worker) with the Debezium PostgreSQL connector, jars from Maven Central.

``services/connect/pom.xml`` is the worker (``connect-runtime``), ``services/connect/debezium-postgres/
pom.xml`` the plugin; :mod:`dotjoin.services.maven` copies them into ``services/.build/connect/libs`` and
``.../plugins/debezium-postgres`` — the plugin without the Connect API, Kafka client, slf4j and
compression jars it brings (the worker's must be the only ones: a second copy of the API in the plugin's
class loader breaks it, a second slf4j logs nothing, a native library loads once per JVM).

The worker is distributed mode, as production runs it: its connector configs, source offsets and
statuses live in three compacted Kafka topics (``dotjoin.connect.*``), so a restarted worker resumes
where it was; connectors are registered over its REST API (127.0.0.1:8083), never in a file. Plugins
are found through their service manifests (``plugin.discovery=service_load``: no 10 s reflection scan).
JSON converters with schemas, so a change event carries its columns' types (what the applier evolves
Iceberg tables by). Needs the broker: without one the worker never opens its REST port.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dotjoin.services import maven, process
from dotjoin.services.base import Service, ServiceError
from dotjoin.services.kafka import KafkaService

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER_POM = REPO_ROOT / "services" / "connect" / "pom.xml"
PLUGIN_POM = REPO_ROOT / "services" / "connect" / "debezium-postgres" / "pom.xml"
BUILD = REPO_ROOT / "services" / ".build" / "connect"
LIBS = BUILD / "libs"
PLUGINS = BUILD / "plugins"
MAIN_CLASS = "org.apache.kafka.connect.cli.ConnectDistributed"
POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
#: What the plugin must not bring along (the worker has its own; see the module docstring).
PLUGIN_EXCLUDES = ("connect-api", "kafka-clients", "slf4j-api", "lz4-java", "snappy-java", "zstd-jni")
GROUP_ID = "dotjoin-connect"
TOPIC_PREFIX = "dotjoin.connect"

LOG4J2 = """# Written by `dotjoin services up`. Everything to stdout, which is appended to connect.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


def render_worker_properties(
    *, bootstrap_servers: str, host: str, port: int, plugin_path: Path, secrets_dir: Path
) -> str:
    """``connect-distributed.properties`` for one worker on loopback."""
    return f"""# Written by `dotjoin services up`; edits are overwritten.
bootstrap.servers={bootstrap_servers}
group.id={GROUP_ID}
listeners=http://{host}:{port}
rest.advertised.host.name={host}
rest.advertised.port={port}
config.storage.topic={TOPIC_PREFIX}.configs
offset.storage.topic={TOPIC_PREFIX}.offsets
status.storage.topic={TOPIC_PREFIX}.status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.flush.interval.ms=1000
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
plugin.path={plugin_path}
plugin.discovery=service_load
# secrets: a connector config says ${{file:<path>:<key>}}; the worker reads the file (not in REST)
config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
config.providers.file.param.allowed.paths={secrets_dir}
"""


def rest(base_url: str, path: str, *, method: str = "GET", body: Any = None, timeout: float = 10.0) -> Any:
    """One call of the worker's REST API: the decoded JSON reply (None for an empty one).

    Raises:
        ServiceError: the worker answered with an error (its message quoted).
        httpx.TransportError: nothing answers.
    """
    import httpx

    response = httpx.request(method, base_url + path, json=body, timeout=timeout)
    if response.is_error:
        try:
            detail = response.json().get("message", response.text)
        except ValueError:
            detail = response.text
        raise ServiceError(f"Kafka Connect: {method} {path} answered {response.status_code}: {detail}")
    return response.json() if response.content.strip() else None


class ConnectService(Service):
    name: ClassVar[str] = "connect"
    start_timeout: ClassVar[float] = 120.0
    stop_timeout: ClassVar[float] = 60.0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.services.connect_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.home / "connect-distributed.properties"

    @property
    def secrets_dir(self) -> Path:
        """Where connectors' secrets are written (mode 700), for the worker's FileConfigProvider."""
        return self.home / "secrets"

    def check_prerequisites(self) -> None:
        process.java()
        maven.require_maven(LIBS, WORKER_POM)
        maven.require_maven(PLUGINS / "debezium-postgres", PLUGIN_POM)
        kafka = KafkaService(self.settings)
        if not process.port_open(kafka.host, kafka.port):
            raise ServiceError(
                f"connect: Kafka Connect keeps its state in Kafka, and nothing answers at {kafka.address}; "
                "start it first: dotjoin services up kafka connect"
            )

    def install(self) -> None:
        maven.copy_dependencies(WORKER_POM, LIBS, required=("connect-runtime-", "connect-json-",
                                "log4j-slf4j-impl-"), what="the Kafka Connect jars")  # fmt: skip
        maven.copy_dependencies(
            PLUGIN_POM, PLUGINS / "debezium-postgres", required=("debezium-connector-postgres-",
            "postgresql-"), what="the Debezium PostgreSQL connector", exclude=PLUGIN_EXCLUDES,
        )  # fmt: skip
        self.home.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        self.properties_file.write_text(
            render_worker_properties(
                bootstrap_servers=self.settings.bus.bootstrap_servers,
                host=self.host,
                port=self.port,
                plugin_path=PLUGINS,
                secrets_dir=self.secrets_dir,
            )
        )
        (self.home / "log4j2.properties").write_text(LOG4J2)

    def command(self) -> list[str]:
        heap = self.settings.services.connect_heap
        jvm = process.jvm(heap, classpath=f"{LIBS}/*", log4j2=self.home / "log4j2.properties")
        return [*jvm, MAIN_CLASS, str(self.properties_file)]

    def spawn_options(self) -> Mapping[str, Any]:
        return {"cwd": self.home, "env": {"LOG_DIR": str(self.home)}}

    def probe(self) -> str:
        """The worker's root resource (it answers once it has joined its group)."""
        info = rest(self.url, "/", timeout=3.0)
        return str(info["version"])

    def after_start(self) -> None:
        """The Debezium plugin must be loaded: a worker without it would fail every registration later."""
        plugins = rest(self.url, "/connector-plugins")
        if not any(p.get("class") == POSTGRES_CONNECTOR for p in plugins):
            found = ", ".join(sorted(p.get("class", "?") for p in plugins)) or "none"
            raise ServiceError(f"connect: the worker did not load {POSTGRES_CONNECTOR} (plugins: {found}); "
                               f"see {self.log_file}")  # fmt: skip
