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

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dotjoin.services import process
from dotjoin.services.base import ServiceError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "services" / "spark" / "pom.xml"
JARS = REPO_ROOT / "services" / ".build" / "spark" / "jars"
STAMP = ".pom.sha256"
MVN_HINT = "apt-get install maven"
#: The jars a Kafka stream needs; ensure_jars checks they arrived.
REQUIRED = ("spark-sql-kafka-0-10_", "spark-token-provider-kafka-0-10_", "kafka-clients-", "commons-pool2-")


def pom_hash(pom: Path = POM) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def installed(jars: Path = JARS, pom: Path = POM) -> bool:
    """Whether ``jars`` holds the dependencies of the current ``pom``."""
    stamp = jars / STAMP
    return stamp.is_file() and stamp.read_text().strip() == pom_hash(pom)


def jar_paths(jars: Path = JARS) -> list[Path]:
    return sorted(jars.glob("*.jar"))


def ensure_jars(jars: Path = JARS, pom: Path = POM) -> list[Path]:
    """The connector jars, fetched with Maven unless the pom's are already there (idempotent).

    Raises:
        ServiceError: Maven is missing or could not resolve the pom (its last lines quoted).
    """
    if installed(jars, pom):
        return jar_paths(jars)
    logger.info("fetching the Spark connector jars with Maven into %s (first run only)", jars)
    staging = jars.with_name(f"jars.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        process.require_binary("mvn", MVN_HINT), "-q", "-B", "-f", str(pom),
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    names = [p.name for p in staging.glob("*.jar")]
    missing = [r for r in REQUIRED if not any(n.startswith(r) for n in names)]
    if result.returncode != 0 or missing:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:]) or f"missing: {missing}"
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceError(f"Maven could not fetch the Spark jars ({' '.join(command[:6])} ...):\n{tail}")
    (staging / STAMP).write_text(pom_hash(pom) + "\n")
    shutil.rmtree(jars, ignore_errors=True)
    staging.rename(jars)
    return jar_paths(jars)


if __name__ == "__main__":  # pragma: no cover - `make spark`
    try:
        for jar in ensure_jars():
            print(jar)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
