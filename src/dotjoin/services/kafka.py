"""Apache Kafka in KRaft mode (one JVM: broker + controller), jars from Maven Central.

``services/kafka/pom.xml`` lists the artifacts; the first ``up`` copies them into
``services/.build/kafka/libs`` (:mod:`dotjoin.services.maven`: again only when the pom changes). The
storage is formatted once with a cluster id kept in ``<services dir>/kafka/cluster.id``; then
``java -cp 'libs/*' kafka.Kafka server.properties`` runs.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dotjoin.services import maven, process
from dotjoin.services.base import Service, ServiceError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "services" / "kafka" / "pom.xml"
LIBS = REPO_ROOT / "services" / ".build" / "kafka" / "libs"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
NODE_ID = 1

LOG4J2 = """# Written by `dotjoin services up`. Everything to stdout, which is appended to kafka.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.channel.name = kafka.network.RequestChannel$
logger.channel.level = WARN
"""


def pom_version(pom: Path = POM) -> str:
    """The ``kafka.version`` property of the pom."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not match:
        raise ServiceError(f"{pom} has no <kafka.version> property")
    return match.group(1).strip()


def libs_version(libs: Path = LIBS) -> str | None:
    """The Kafka version of the jars in ``libs`` (from ``kafka_2.13-<version>.jar``), None if absent."""
    for jar in libs.glob("kafka_2.13-*.jar"):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return None


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what ``random-uuid`` prints)."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def render_server_properties(
    *, host: str, port: int, controller_port: int, log_dir: Path, partitions: int
) -> str:
    """``server.properties`` for a single combined broker + controller on loopback."""
    return f"""# Written by `dotjoin services up`; edits are overwritten.
process.roles=broker,controller
node.id={NODE_ID}
controller.quorum.voters={NODE_ID}@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions={partitions}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""


class KafkaService(Service):
    name: ClassVar[str] = "kafka"
    start_timeout: ClassVar[float] = 120.0
    stop_timeout: ClassVar[float] = 60.0

    @property
    def host(self) -> str:
        return self.settings.bus.bootstrap_servers.split(",")[0].rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.settings.bus.bootstrap_servers.split(",")[0].rpartition(":")[2])

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def check_prerequisites(self) -> None:
        process.java()
        maven.require_maven(LIBS, POM)

    def install(self) -> None:
        maven.copy_dependencies(POM, LIBS, required=("kafka_2.13-", "kafka-server-"), what="the Kafka jars")
        self.home.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(
            render_server_properties(
                host=self.host,
                port=self.port,
                controller_port=self.settings.services.kafka_controller_port,
                log_dir=self.data_dir,
                partitions=self.settings.bus.partitions,
            )
        )
        (self.home / "log4j2.properties").write_text(LOG4J2)
        if not (self.data_dir / "meta.properties").is_file():
            self._format()

    def _jvm(self, heap: str) -> list[str]:
        return process.jvm(heap, classpath=f"{LIBS}/*", log4j2=self.home / "log4j2.properties")

    def _format(self) -> None:
        id_file = self.home / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        command = [
            *self._jvm("256m"),
            STORAGE_TOOL,
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.properties_file),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:])
            raise ServiceError(f"formatting the Kafka storage in {self.data_dir} failed:\n{tail}")
        logger.info("formatted Kafka storage %s (cluster id %s)", self.data_dir, cluster_id)

    def command(self) -> list[str]:
        return [*self._jvm(self.settings.services.kafka_heap), MAIN_CLASS, str(self.properties_file)]

    def spawn_options(self) -> Mapping[str, Any]:
        return {"cwd": self.home, "env": {"LOG_DIR": str(self.home)}}

    def probe(self) -> str:
        """A metadata round trip (when confluent-kafka is installed), else the open port."""
        if not process.port_open(self.host, self.port):
            raise ConnectionError(f"nothing listens on {self.address}")
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:
            pass
        else:
            admin = AdminClient(
                {"bootstrap.servers": self.address, "log_level": 0, "socket.timeout.ms": 3000}
            )
            metadata = admin.list_topics(timeout=3)
            if not metadata.brokers:
                raise ConnectionError("the broker reports no brokers yet")
        ours = self.our_pid() is not None
        return (libs_version() or "?") if ours else "?"
