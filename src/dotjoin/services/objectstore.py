"""The stack's S3-compatible object store: S3Proxy (``org.gaul:s3proxy``) with its filesystem backend.

Why S3Proxy: it is on Maven Central (the registries here have no MinIO; Garage and s3s-fs would be
compiled from crates.io), starts in about a second under a 256 MB heap, speaks the S3 API with AWS
signature v2/v4, and stores each object as a plain file under ``<services dir>/objectstore/data`` —
inspectable, and one ``rm -rf`` from empty. The lake's bucket (``s3://<bucket>/…`` of ``[lake] root``)
is created after start. Credentials: ``[objectstore] access_key`` and a ``secret_key`` generated once into
``.dotjoin/secrets.toml``; the properties file that hands it to S3Proxy is mode 600.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from dotjoin.services import maven, process
from dotjoin.services.base import Service, ServiceError
from dotjoin.services.secretfile import ensure_secret

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "services" / "objectstore" / "pom.xml"
LIBS = REPO_ROOT / "services" / ".build" / "objectstore" / "libs"
MAIN_CLASS = "org.gaul.s3proxy.Main"

LOGBACK = """<!-- Written by `dotjoin services up`: S3Proxy's default logs every Jetty selector event. -->
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>[%d] %level %msg \\(%logger{20}\\)%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="OUT"/></root>
  <logger name="org.gaul.s3proxy" level="INFO"/>
</configuration>
"""


def render_properties(*, endpoint: str, access_key: str, secret_key: str, data_dir: Path) -> str:
    """``s3proxy.properties``: S3 on ``endpoint``, objects as files under ``data_dir``."""
    return f"""# Written by `dotjoin services up`; edits are overwritten. Holds a secret: mode 600.
s3proxy.endpoint={endpoint}
s3proxy.authorization=aws-v2-or-v4
# Trino's S3 listing asks for x-amz-optional-object-attributes (Glacier restore status), which S3Proxy
# would refuse with 501 NotImplemented; a store without archive tiers has nothing to add there
s3proxy.ignore-unknown-headers=true
s3proxy.identity={access_key}
s3proxy.credential={secret_key}
jclouds.provider=filesystem-nio2
# the backend's own login: required by the nio2 provider, unused by a local directory
jclouds.identity=local
jclouds.credential=local
jclouds.filesystem.basedir={data_dir}
"""


class ObjectStoreService(Service):
    name: ClassVar[str] = "objectstore"
    start_timeout: ClassVar[float] = 30.0

    @property
    def host(self) -> str:
        return urlsplit(self.settings.objectstore.endpoint).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.settings.objectstore.endpoint).port or 9000

    @property
    def properties_file(self) -> Path:
        return self.home / "s3proxy.properties"

    def secret_key(self) -> str:
        current = self.settings.objectstore.secret_key
        value = current.get_secret_value() if current else None
        return ensure_secret(self.settings.state_dir, "objectstore", "secret_key", value)

    def check_prerequisites(self) -> None:
        process.java()
        maven.require_maven(LIBS, POM)
        if not self.settings.objectstore.endpoint.startswith("http://"):
            raise ServiceError(f"objectstore: S3Proxy serves plain HTTP on loopback; [objectstore] endpoint "
                               f"is {self.settings.objectstore.endpoint}")  # fmt: skip

    def install(self) -> None:
        maven.copy_dependencies(POM, LIBS, required=("s3proxy-", "filesystem-"), what="S3Proxy")
        data_dir = self.home / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        text = render_properties(
            endpoint=f"http://{self.host}:{self.port}",
            access_key=self.settings.objectstore.access_key,
            secret_key=self.secret_key(),
            data_dir=data_dir,
        )
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        (self.home / "logback.xml").write_text(LOGBACK)

    def command(self) -> list[str]:
        heap = self.settings.services.objectstore_heap
        logback = f"-Dlogback.configurationFile={self.home / 'logback.xml'}"
        jvm = process.jvm(heap, classpath=f"{LIBS}/*", options=[logback])
        return [*jvm, MAIN_CLASS, "--properties", str(self.properties_file)]

    def spawn_options(self) -> Mapping[str, Any]:
        return {"cwd": self.home}

    def probe(self) -> str:
        """An anonymous request: S3 answers 403 AccessDenied in its XML (anything else is not S3)."""
        import httpx

        response = httpx.get(f"http://{self.host}:{self.port}/", timeout=3.0)
        if b"<Error>" not in response.content:
            raise ConnectionError(f"not an S3 reply: HTTP {response.status_code}")
        jars = LIBS.glob("s3proxy-*.jar")
        return next((p.name.removeprefix("s3proxy-").removesuffix(".jar") for p in jars), "?")

    def after_start(self) -> None:
        """Create the lake's bucket (idempotent) with the generated credentials: the bucket of an
        ``s3://`` ``[lake] root``, else the stack profile's (services serve the stack whatever profile
        started them)."""
        from dotjoin.platform.lake.catalog import stack_lake_root
        from dotjoin.platform.objectstore import ObjectStore, bucket_of

        bucket = bucket_of(stack_lake_root(self.settings))
        store = dataclasses.replace(ObjectStore.from_settings(self.settings), secret_key=self.secret_key())
        try:
            store.pyarrow_filesystem().create_dir(bucket)
        except OSError as exc:
            raise ServiceError(f"objectstore: cannot create bucket {bucket!r}: {exc}") from exc
        logger.info("objectstore: bucket %s ready at %s", bucket, store.endpoint)
