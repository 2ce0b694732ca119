"""The connector jars of the Spark runtime (Kafka source, Iceberg), from Maven Central.

Spark itself comes with pyspark (its ``jars/``); what Structured Streaming needs on top is listed in
``services/spark/pom.xml``. :func:`ensure_jars` copies them into ``services/.build/spark/jars`` with
``mvn dependency:copy-dependencies`` — once: a stamp file holds the pom's hash, so a changed pom (a new
version) fetches again and an unchanged one costs a file read. ``make spark`` (and so CI) runs it;
the Spark job calls it too, so a fresh clone works without the make step.

Not a :class:`~dotjoin.services.base.Service`: nothing runs; a job starts Spark in its own process.

    python -m dotjoin.services.spark      # fetch (if needed) and print the jar paths
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from dotjoin.services import maven
from dotjoin.services.base import ServiceError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "services" / "spark" / "pom.xml"
JARS = REPO_ROOT / "services" / ".build" / "spark" / "jars"
#: The jars a Spark job needs (Kafka source, Iceberg S3FileIO); ensure_jars checks they arrived.
REQUIRED = (
    "spark-sql-kafka-0-10_",
    "spark-token-provider-kafka-0-10_",
    "kafka-clients-",
    "commons-pool2-",
    "iceberg-aws-bundle-",
)


def installed(jars: Path = JARS, pom: Path = POM) -> bool:
    """Whether ``jars`` holds the dependencies of the current ``pom``."""
    return maven.installed(jars, pom)


def ensure_jars(jars: Path = JARS, pom: Path = POM) -> list[Path]:
    """The connector jars, fetched with Maven unless the pom's are already there (idempotent).

    Raises:
        ServiceError: Maven is missing or could not resolve the pom (its last lines quoted).
    """
    return maven.copy_dependencies(pom, jars, required=REQUIRED, what="the Spark connector jars")


if __name__ == "__main__":  # pragma: no cover - `make spark`
    try:
        for jar in ensure_jars():
            print(jar)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
