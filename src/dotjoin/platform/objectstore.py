"""The S3-compatible object store behind an ``s3://`` lake root, as each engine wants to be told about it.

One :class:`ObjectStore` (endpoint, region, credentials, path-style addressing) from ``[objectstore]``,
rendered for PyIceberg's FileIO, DuckDB's ``httpfs`` secret, Spark's Iceberg ``S3FileIO`` and Trino's
native S3 file system — so the four engines read and write the same tables, and the credentials live in
one place (``.dotjoin/secrets.toml``; never in a committed file, never in a log).

Why the checksum variables: the AWS SDKs (2025+) send a CRC/``x-amz-content-sha256`` on every upload
by default, which S3-compatible servers such as S3Proxy 2.6 do not implement (measured: PyIceberg's
uploads fail with ``XAmzContentSHA256Mismatch``, Iceberg's Java ``S3FileIO`` with HTTP 501 "A header you
provided implies functionality that is not implemented"); ``when_required`` is the SDKs' own switch back
to the classic behaviour, read from the environment when the SDK starts (a JVM inherits it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

    from dotjoin.config import Settings

#: Where Trino's catalog file finds the secret (``${ENV:…}``): the Trino service sets it.
SECRET_ENV = "DOTJOIN_OBJECTSTORE_SECRET_KEY"  # noqa: S105 - a variable name, not a secret
CHECKSUM_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}


@dataclass(frozen=True, repr=False)
class ObjectStore:
    endpoint: str  # e.g. http://127.0.0.1:9000; empty: AWS
    region: str
    access_key: str
    secret_key: str
    path_style: bool = True

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return (
            f"ObjectStore(endpoint={self.endpoint!r}, region={self.region!r}, access_key={self.access_key!r})"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        store = settings.objectstore
        secret = store.secret_key.get_secret_value() if store.secret_key else ""
        return cls(store.endpoint.rstrip("/"), store.region, store.access_key, secret, store.path_style)

    @property
    def host_port(self) -> str:
        """``host:port`` of the endpoint (what DuckDB's ENDPOINT wants).

        >>> ObjectStore("http://127.0.0.1:9000", "us-east-1", "k", "s").host_port
        '127.0.0.1:9000'
        """
        return urlsplit(self.endpoint).netloc

    @property
    def secure(self) -> bool:
        return not self.endpoint.startswith("http://")

    def pyiceberg_properties(self) -> dict[str, str]:
        """FileIO properties of PyIceberg's catalog (its pyarrow S3 file system)."""
        props = {
            "s3.region": self.region,
            "s3.access-key-id": self.access_key,
            "s3.secret-access-key": self.secret_key,
            "s3.force-virtual-addressing": str(not self.path_style).lower(),
        }
        if self.endpoint:
            props["s3.endpoint"] = self.endpoint
        return props

    def pyarrow_filesystem(self) -> S3FileSystem:
        """A pyarrow S3 file system that may create buckets (``dotjoin services up`` makes the lake's)."""
        from pyarrow.fs import S3FileSystem

        use_checksum_env()
        netloc = self.host_port if self.endpoint else None
        return S3FileSystem(
            access_key=self.access_key, secret_key=self.secret_key, region=self.region,
            endpoint_override=netloc, scheme="https" if self.secure else "http",
            force_virtual_addressing=not self.path_style, allow_bucket_creation=True,
        )  # fmt: skip

    def duckdb_secret_sql(self, name: str = "dotjoin_lake") -> str:
        """``CREATE OR REPLACE TEMPORARY SECRET`` for DuckDB's httpfs (per connection, never persisted).

        >>> sql = ObjectStore("http://127.0.0.1:9000", "us-east-1", "k", "it's").duckdb_secret_sql()
        >>> print(sql.replace(", ", ",\\n"))
        CREATE OR REPLACE TEMPORARY SECRET dotjoin_lake (TYPE s3,
        KEY_ID 'k',
        SECRET 'it''s',
        REGION 'us-east-1',
        URL_STYLE 'path',
        USE_SSL false,
        ENDPOINT '127.0.0.1:9000')
        """

        def lit(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        parts = [f"TYPE s3, KEY_ID {lit(self.access_key)}, SECRET {lit(self.secret_key)}",
                 f"REGION {lit(self.region)}", f"URL_STYLE {lit('path' if self.path_style else 'vhost')}",
                 f"USE_SSL {str(self.secure).lower()}"]  # fmt: skip
        if self.endpoint:
            parts.append(f"ENDPOINT {lit(self.host_port)}")
        return f"CREATE OR REPLACE TEMPORARY SECRET {name} ({', '.join(parts)})"

    def spark_catalog_conf(self, prefix: str) -> dict[str, str]:
        """Iceberg ``S3FileIO`` properties of Spark catalog ``prefix`` (``spark.sql.catalog.<name>``)."""
        conf = {
            f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            f"{prefix}.client.region": self.region,
            f"{prefix}.s3.access-key-id": self.access_key,
            f"{prefix}.s3.secret-access-key": self.secret_key,
            f"{prefix}.s3.path-style-access": str(self.path_style).lower(),
        }
        if self.endpoint:
            conf[f"{prefix}.s3.endpoint"] = self.endpoint
        return conf

    def trino_properties(self) -> dict[str, str]:
        """Trino's native S3 file system, for a catalog file (the secret as ``${ENV:SECRET_ENV}``)."""
        props = {
            "fs.native-s3.enabled": "true",
            "s3.region": self.region,
            "s3.path-style-access": str(self.path_style).lower(),
            "s3.aws-access-key": self.access_key,
            "s3.aws-secret-key": f"${{ENV:{SECRET_ENV}}}",
        }
        if self.endpoint:
            props["s3.endpoint"] = self.endpoint
        return props


def use_checksum_env() -> None:
    """Ask the AWS SDKs in this process for checksums only when required (see the module docstring)."""
    for name, value in CHECKSUM_ENV.items():
        os.environ.setdefault(name, value)


def bucket_of(root: str) -> str:
    """The bucket of an ``s3://bucket/prefix`` root.

    >>> bucket_of("s3://dotjoin/lake")
    'dotjoin'
    """
    return urlsplit(root).netloc
