"""Jars from Maven Central: a pom under ``services/`` lists them, Maven copies them into ``services/.build``.

One way for every JVM piece of the stack (Kafka, Kafka Connect and its Debezium plugin, Spark's
connectors, S3Proxy, Trino's server tarball): ``mvn dependency:copy-dependencies`` of the pom into a
staging directory, checked for the files that must be there (a tarball unpacked whole, with ``tar``:
Trino's plugins are hard links), then renamed into place with a stamp file holding the pom's hash — so a
changed pom (a new version) fetches again and an unchanged one costs a file read. Maven's own cache
(``~/.m2``) makes a re-fetch of known versions a matter of seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from dotjoin.services import process
from dotjoin.services.base import ServiceError

logger = logging.getLogger(__name__)

STAMP = ".pom.sha256"
MVN_HINT = "apt-get install maven"


def pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def installed(target: Path, pom: Path) -> bool:
    """Whether ``target`` holds the dependencies of the current ``pom``."""
    stamp = target / STAMP
    return stamp.is_file() and stamp.read_text().strip() == pom_hash(pom)


def require_maven(target: Path, pom: Path) -> None:
    """Fail early, naming the package, when the jars must be fetched and Maven is missing."""
    if not installed(target, pom):
        process.require_binary("mvn", MVN_HINT)


def copy_dependencies(
    pom: Path,
    target: Path,
    *,
    required: Sequence[str],
    what: str,
    exclude: Sequence[str] = (),
    unpack: bool = False,
) -> list[Path]:
    """The runtime jars of ``pom`` in ``target``, fetched unless already there (idempotent).

    Args:
        pom: the dependency list.
        target: where the jars go (replaced as a whole).
        required: name prefixes of files that must arrive (a resolution that drops one is an error).
        what: for messages ("the Kafka jars").
        exclude: artifact ids to leave out (jars the runtime must not get twice).
        unpack: extract each ``*.tar.gz`` into ``target`` (its top directory stripped), then delete it.

    Raises:
        ServiceError: Maven is missing, or could not resolve the pom (its last lines quoted).
    """
    if installed(target, pom):
        return sorted(target.glob("*.jar"))
    logger.info("fetching %s with Maven into %s (first run only)", what, target)
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        process.require_binary("mvn", MVN_HINT), "-q", "-B", "-f", str(pom),
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    if exclude:
        command.append(f"-DexcludeArtifactIds={','.join(exclude)}")
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    names = [p.name for p in staging.glob("*")]
    missing = [r for r in required if not any(n.startswith(r) for n in names)]
    if result.returncode != 0 or missing:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:]) or f"missing: {missing}"
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceError(f"Maven could not fetch {what} ({' '.join(command[:6])} ...):\n{tail}")
    for archive in staging.glob("*.tar.gz") if unpack else ():
        extract = [process.require_binary("tar", "apt-get install tar"), "-xzf", str(archive),
                   "--strip-components=1", "-C", str(staging)]  # fmt: skip
        done = subprocess.run(extract, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise ServiceError(f"cannot unpack {archive.name} for {what}: {done.stderr.strip()[-500:]}")
        archive.unlink()
    (staging / STAMP).write_text(pom_hash(pom) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return sorted(target.glob("*.jar"))
