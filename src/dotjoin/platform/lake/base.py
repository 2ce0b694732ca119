"""The lake ABC: zones raw/staging/curated under one root, and Iceberg tables in a SQL catalog.

Backends differ only in where the Iceberg catalog lives: SQLite (local) or PostgreSQL (stack — the JDBC
catalog schema ``iceberg_tables``/``iceberg_namespace_properties`` that Trino and Spark read too).
Table names are ``<zone>.<table>``, e.g. ``staging.orders``; the namespace is the zone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, get_args

import pyarrow as pa

if TYPE_CHECKING:
    from dotjoin.platform.objectstore import ObjectStore

Zone = Literal["raw", "staging", "curated"]
ZONES: tuple[str, ...] = get_args(Zone)
Transform = Literal["identity", "day", "month", "year", "hour"]


@dataclass(frozen=True)
class PartitionField:
    column: str
    transform: Transform = "identity"


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    committed_at: datetime
    operation: str
    summary: dict[str, str]


@dataclass(frozen=True)
class ExpireResult:
    snapshots_expired: int
    snapshots_kept: int
    files_deleted: int
    bytes_deleted: int


@dataclass(frozen=True)
class ScanPlan:
    files: list[str]
    bytes: int
    total_files: int
    total_bytes: int


class Lake(ABC):
    root: str  # where the Iceberg tables live: a local directory or s3://bucket/prefix
    files: str  # the local directory of the zones' plain files
    store: ObjectStore | None = None  # the object store of an s3:// root

    @abstractmethod
    def zone_path(self, zone: Zone) -> str:
        """Where plain files of ``zone`` live (a local directory, created on demand)."""

    @abstractmethod
    def create_table(
        self,
        name: str,
        schema: pa.Schema,
        *,
        partition_by: Sequence[PartitionField] = (),
        identifier_fields: Sequence[str] = (),
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Create the Iceberg table if it does not exist (idempotent); ``properties`` are table properties."""

    @abstractmethod
    def append(self, name: str, data: pa.Table, *, properties: Mapping[str, str] | None = None) -> None:
        """Append ``data``; ``properties`` go into the new snapshot's summary (a sink's progress, committed
        atomically with its rows: see :meth:`last_properties`)."""

    @abstractmethod
    def last_properties(self, name: str, prefix: str) -> dict[str, str]:
        """The summary properties starting with ``prefix`` of the newest snapshot that has any (a commit
        without them, e.g. a compaction, is passed over); empty if none has."""

    @abstractmethod
    def schema(self, name: str) -> pa.Schema:
        """The table's current schema as Arrow."""

    @abstractmethod
    def upsert(self, name: str, data: pa.Table, *, key: Sequence[str]) -> tuple[int, int]:
        """Merge on ``key``; returns (rows_updated, rows_inserted)."""

    @abstractmethod
    def replace(self, name: str, data: pa.Table, *, row_filter: str) -> None:
        """Atomically delete the rows matching ``row_filter`` and append ``data`` (one commit)."""

    @abstractmethod
    def evolve(self, name: str, schema: pa.Schema) -> list[str]:
        """Add the columns of ``schema`` the table lacks (union by name); returns the added names."""

    @abstractmethod
    def promote(self, name: str, column: str, to: pa.DataType) -> None:
        """Widen ``column`` to ``to`` (Iceberg's promotions: int→long, float→double, a wider decimal)."""

    @abstractmethod
    def compact(
        self, name: str, *, row_filter: str | None = None, properties: Mapping[str, str] | None = None
    ) -> tuple[int, int]:
        """Rewrite the current data (or the rows matching ``row_filter``) into as few files as the
        partitioning allows; (files before, after). A pipeline's ``dotjoin.*`` snapshot properties survive
        it (and a later snapshot expiry), or ``properties`` replace them."""

    @abstractmethod
    def expire_snapshots(self, name: str, *, older_than: datetime, retain_last: int = 1) -> ExpireResult:
        """Drop snapshots committed before ``older_than`` (keeping the newest ``retain_last``) and the
        files only they referenced; time travel to them ends here."""

    @abstractmethod
    def delete(self, name: str, row_filter: str) -> None:
        """Delete rows matching a PyIceberg filter expression string, e.g. ``"id = 3"``."""

    @abstractmethod
    def scan(
        self, name: str, *, row_filter: str | None = None, snapshot_id: int | None = None
    ) -> pa.Table: ...

    @abstractmethod
    def plan(self, name: str, *, row_filter: str | None = None) -> ScanPlan:
        """The data files a scan with ``row_filter`` would read, against the table's total."""

    @abstractmethod
    def snapshots(self, name: str) -> list[SnapshotInfo]: ...

    @abstractmethod
    def table_exists(self, name: str) -> bool: ...

    @abstractmethod
    def metadata_location(self, name: str) -> str:
        """The current ``*.metadata.json`` of ``name`` (what other engines, e.g. DuckDB, read)."""

    @abstractmethod
    def drop_table(self, name: str) -> None: ...

    @abstractmethod
    def list_tables(self, zone: Zone) -> list[str]: ...

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op unless a backend holds connections
        """Release connections (e.g. the catalog's pool). Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
