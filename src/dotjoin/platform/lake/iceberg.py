"""The lake on Apache Iceberg through PyIceberg's SQL catalog — SQLite (local) or PostgreSQL (stack).

One class, :class:`IcebergLake`, parameterised by the catalog's SQLAlchemy URI:

* ``local``: ``sqlite:///<state_dir>/<lake root>/catalog.db`` (``<state_dir>/lake_catalog.db`` when the
  root is an object-store URI, which cannot hold a SQLite file).
* ``stack``: the ``dotjoin`` PostgreSQL database. PyIceberg's ``SqlCatalog`` creates and uses the tables
  ``iceberg_tables`` and ``iceberg_namespace_properties`` — the schema of Iceberg's Java ``JdbcCatalog`` (V1,
  with the ``iceberg_type`` column). Trino (``iceberg.catalog.type=jdbc``,
  ``iceberg.jdbc-catalog.catalog-name=dotjoin``, ``iceberg.jdbc-catalog.connection-url=
  jdbc:postgresql://127.0.0.1:5432/dotjoin``) and Spark (``spark.sql.catalog.dotjoin.type=jdbc``,
  ``...uri=jdbc:postgresql://…/dotjoin``, ``...jdbc.schema-version=V1``) point at the same rows, so every
  engine sees the same tables. Rows are keyed by ``catalog_name``: the other engines must use the same name
  (``settings.lake.catalog_name``, default ``dotjoin``).

Layout under the root (a local directory or ``s3://bucket/prefix`` of the object store, see
:mod:`dotjoin.platform.objectstore`)::

    <files>/<zone>/                plain files of the zone (zone_path; ``files`` is the root when local)
    <root>/<zone>/<table>/         one Iceberg table: data/ (Hive-style partitions, e.g. ts_day=2026-01-03)
                                   and metadata/
    <root>/catalog.db              the SQLite catalog (local profile, local root)

Iceberg namespaces are the zones ``raw``, ``staging``, ``curated``; they are created on demand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import pyarrow as pa
from pyiceberg import transforms
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationError,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.expressions.parser import parse as parse_filter
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, ProgrammingError

from dotjoin.exceptions import (
    ConfigError,
    DataError,
    DotjoinError,
    NotFoundError,
    ServiceUnavailableError,
    TerminalError,
    TransientError,
)
from dotjoin.platform.lake.base import ZONES, ExpireResult, Lake, PartitionField, ScanPlan, SnapshotInfo, Zone
from dotjoin.platform.lake.base import Transform as TransformName
from dotjoin.platform.lake.catalog import catalog_uri, is_remote, lake_files, lake_root
from dotjoin.platform.objectstore import ObjectStore, use_checksum_env

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from dotjoin.config import Settings

logger = logging.getLogger(__name__)

_TRANSFORMS: dict[str, transforms.Transform[Any, Any]] = {
    "identity": transforms.IdentityTransform(),
    "day": transforms.DayTransform(),
    "month": transforms.MonthTransform(),
    "year": transforms.YearTransform(),
    "hour": transforms.HourTransform(),
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOGIN_FAILURES = ("authentication failed", "no password supplied", "does not exist")  # role or database


class IcebergLake(Lake):
    """Zones and Iceberg tables under one root, catalogued in a SQL database.

    Args:
        root: a local directory or an object-store URI such as ``s3://bucket/prefix``.
        catalog_uri: SQLAlchemy URI of the catalog database (SQLite file or PostgreSQL).
        catalog_name: the ``catalog_name`` of the catalog rows; other engines must use the same.
        service_address: ``host:port`` of the catalog server, named in errors when it is unreachable.
        files: the local directory of the zones' plain files (default: a local root itself).
        store: the object store of an ``s3://`` root (endpoint and credentials, never logged).

    Example::

        with IcebergLake(root="/tmp/lake", catalog_uri="sqlite:////tmp/lake/catalog.db") as lake:
            lake.create_table("raw.events", pa.schema([("id", pa.int64())]), identifier_fields=["id"])
    """

    def __init__(
        self,
        *,
        root: str,
        catalog_uri: str,
        catalog_name: str = "dotjoin",
        service_address: str | None = None,
        files: str | None = None,
        store: ObjectStore | None = None,
    ) -> None:
        self._remote = is_remote(root)
        if self._remote:
            self.root = root.rstrip("/")
            self._root_uri = self.root
        else:
            local = Path(root.removeprefix("file://")).absolute()
            local.mkdir(parents=True, exist_ok=True)
            self.root = str(local)
            self._root_uri = local.as_uri()
        if files is None and self._remote:
            raise ConfigError(
                f"lake root {root} is an object store: name a local directory for its plain files"
            )
        self.files = str(Path(files).absolute()) if files is not None else self.root
        self.catalog_name = catalog_name
        self._is_postgres = catalog_uri.startswith("postgresql")
        self._address = service_address or _address_of(catalog_uri)
        self._namespaces: set[str] = set()
        self.store = store
        props = {"uri": catalog_uri, "warehouse": self._root_uri}
        if store is not None:
            use_checksum_env()
            props.update(store.pyiceberg_properties())
        if self._is_postgres:
            props["pool_pre_ping"] = "true"
        self._catalog = self._open_catalog(catalog_name, props)
        logger.debug("lake root %s, catalog %s at %s", self.root, catalog_name, self._address)

    @classmethod
    def from_settings(cls, settings: Settings) -> IcebergLake:
        """Build the lake of ``settings`` (root resolved against ``state_dir``, catalog per profile)."""
        root = lake_root(settings)
        address = settings.postgres.address if settings.lake.catalog == "postgres" else None
        return cls(
            root=root,
            catalog_uri=catalog_uri(settings),
            catalog_name=settings.lake.catalog_name,
            service_address=address,
            files=lake_files(settings),
            store=ObjectStore.from_settings(settings) if is_remote(root) else None,
        )

    def _open_catalog(self, name: str, props: dict[str, str]) -> SqlCatalog:
        try:
            return SqlCatalog(name, **props)
        except (IntegrityError, ProgrammingError) as exc:
            # Two processes creating the catalog tables at once: the loser sees them on the retry.
            logger.debug("retrying catalog setup after %s", type(exc).__name__)
        except DBAPIError as exc:
            raise self._catalog_error(exc) from exc
        try:
            return SqlCatalog(name, **props)
        except DBAPIError as exc:
            raise self._catalog_error(exc) from exc

    def _catalog_error(self, exc: DBAPIError) -> DotjoinError:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        if not self._is_postgres:
            return TransientError(f"Iceberg catalog (SQLite, {self._address}) failed: {detail}")
        if not isinstance(exc, OperationalError | InterfaceError):
            return TerminalError(f"Iceberg catalog on PostgreSQL at {self._address} failed: {detail}")
        if any(marker in detail for marker in _LOGIN_FAILURES):
            return ConfigError(
                f"PostgreSQL at {self._address} rejected the Iceberg catalog login: {detail}; check "
                "[warehouse] user/password (.dotjoin/secrets.toml is written by `dotjoin services up`)"
            )
        return ServiceUnavailableError("PostgreSQL", self._address, detail)

    @contextlib.contextmanager
    def _errors(self, name: str, action: str) -> Iterator[None]:
        """Translate PyIceberg, SQLAlchemy, Arrow and storage errors into dotjoin errors naming the table."""
        try:
            yield
        except DotjoinError:
            raise
        except (NoSuchTableError, NoSuchNamespaceError) as exc:
            raise NotFoundError(f"lake table {name!r} does not exist (catalog {self.catalog_name})") from exc
        except CommitFailedException as exc:
            raise TransientError(f"cannot {action} {name}: a concurrent commit won, retry ({exc})") from exc
        except DBAPIError as exc:
            raise self._catalog_error(exc) from exc
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"cannot {action} {name}: {exc}") from exc
        except (ValueError, TypeError, ValidationError) as exc:
            raise TerminalError(f"cannot {action} {name}: {exc}") from exc
        except FileNotFoundError as exc:
            raise NotFoundError(f"cannot {action} {name}: file missing: {exc}") from exc
        except OSError as exc:
            if self.store is not None and "ACCESS_DENIED" in str(exc):  # pyarrow's S3 error code
                raise ConfigError(
                    f"cannot {action} {name}: the object store at {self.store.endpoint or 'AWS'} rejected "
                    "the lake's credentials ([objectstore] access_key and secret_key)"
                ) from exc
            raise TransientError(f"cannot {action} {name}: storage error: {exc}") from exc

    # -- names, zones, locations -------------------------------------------------------------------

    @staticmethod
    def _split(name: str) -> tuple[str, str]:
        zone, dot, table = name.partition(".")
        if not dot or zone not in ZONES or not _NAME.match(table):
            raise TerminalError(
                f"bad lake table name {name!r}: use '<zone>.<table>' with zone one of {', '.join(ZONES)} "
                "and a table name of letters, digits and underscores"
            )
        return zone, table

    def zone_path(self, zone: Zone) -> str:
        """Where plain files of ``zone`` live: ``<files>/<zone>``, a local directory created on demand."""
        _check_zone(zone)
        path = Path(self.files) / zone
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def table_location(self, name: str) -> str:
        """The warehouse location of table ``name``: ``<root URI>/<zone>/<table>``."""
        zone, table = self._split(name)
        return f"{self._root_uri}/{zone}/{table}"

    def _ensure_zone(self, zone: str) -> None:
        if zone in self._namespaces:
            return
        # No namespace 'location' property: the PostgreSQL catalog is shared by lakes with different roots
        # (tests, other engines). Tables get explicit locations; Trino/Spark use <warehouse>/<zone>/<table>.
        try:
            self._catalog.create_namespace(zone)
            logger.info("created lake zone %s (Iceberg namespace) in catalog %s", zone, self.catalog_name)
        except NamespaceAlreadyExistsError:
            pass
        self._namespaces.add(zone)

    def _load(self, name: str) -> Table:
        self._split(name)
        return self._catalog.load_table(name)

    # -- tables ------------------------------------------------------------------------------------

    def table_exists(self, name: str) -> bool:
        """Whether the Iceberg table ``name`` exists."""
        with self._errors(name, "look up"):
            self._split(name)
            return self._catalog.table_exists(name)

    def metadata_location(self, name: str) -> str:
        """The current ``*.metadata.json`` of ``name`` (what DuckDB's ``iceberg_scan`` reads)."""
        with self._errors(name, "load"):
            return str(self._load(name).metadata_location)

    def create_table(
        self,
        name: str,
        schema: pa.Schema,
        *,
        partition_by: Sequence[PartitionField] = (),
        identifier_fields: Sequence[str] = (),
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Create the Iceberg table if it does not exist (idempotent: an existing table is left as it is).

        Field ids are assigned fresh; ``ns`` timestamps become ``us`` (Iceberg's precision). Identifier fields
        (the upsert key) are made required, as Iceberg demands. Schema, partition spec and identifier fields
        are committed in one transaction, so a table never exists half-made.

        Args:
            name: ``<zone>.<table>``.
            schema: the Arrow schema; nullable=False fields become required columns.
            partition_by: partition fields, e.g. ``[PartitionField("ts", "day")]`` (named ``ts_day``).
            identifier_fields: the row key (for upserts and for engines that honour it).
            properties: Iceberg table properties, e.g. ``{"write.metadata.previous-versions-max": "20"}``.

        Raises:
            TerminalError: a bad name, an unknown column or transform, or an unsupported type.
        """
        zone, _ = self._split(name)
        columns = set(schema.names)
        unknown = [c for c in [*identifier_fields, *(p.column for p in partition_by)] if c not in columns]
        if unknown:
            raise TerminalError(f"cannot create {name}: unknown column(s) {', '.join(unknown)}")
        bad = [p.transform for p in partition_by if p.transform not in get_args(TransformName)]
        if bad:
            raise TerminalError(f"cannot create {name}: unknown transform(s) {', '.join(map(str, bad))}")
        with self._errors(name, "create"):
            self._ensure_zone(zone)
            if self._catalog.table_exists(name):
                logger.debug("lake table %s exists; create is a no-op", name)
                return
            arrow = _iceberg_ready(schema, required=set(identifier_fields))
            txn = self._catalog.create_table_transaction(
                name, schema=arrow, location=self.table_location(name), properties=dict(properties or {})
            )
            if identifier_fields:
                with txn.update_schema() as update:
                    update.set_identifier_fields(*identifier_fields)
            if partition_by:
                with txn.update_spec() as spec:
                    for field in partition_by:
                        suffix = "" if field.transform == "identity" else f"_{field.transform}"
                        spec.add_field(field.column, _TRANSFORMS[field.transform], f"{field.column}{suffix}")
            try:
                txn.commit_transaction()
            except TableAlreadyExistsError:
                logger.debug("lake table %s was created concurrently", name)
                return
        logger.info("created lake table %s at %s", name, self.table_location(name))

    def append(self, name: str, data: pa.Table, *, properties: Mapping[str, str] | None = None) -> None:
        """Append ``data``, cast to the table schema (string widths, ns→us, column order, nullability);
        ``properties`` go into the snapshot's summary, in the same commit."""
        with self._errors(name, "append to"):
            table = self._load(name)
            table.append(_conform(data, table, name), snapshot_properties=dict(properties or {}))
        logger.debug("appended %d rows to %s", data.num_rows, name)

    def last_properties(self, name: str, prefix: str) -> dict[str, str]:
        """The ``prefix``-ed summary properties of the newest snapshot that has any (walking parents back)."""
        with self._errors(name, "read the snapshots of"):
            table = self._load(name)
            snapshot = table.current_snapshot()
            while snapshot is not None:
                extra = snapshot.summary.additional_properties if snapshot.summary else {}
                found = {k: v for k, v in extra.items() if k.startswith(prefix)}
                if found:
                    return found
                parent = snapshot.parent_snapshot_id
                snapshot = table.snapshot_by_id(parent) if parent is not None else None
        return {}

    def schema(self, name: str) -> pa.Schema:
        """The current schema of ``name`` as Arrow."""
        with self._errors(name, "load"):
            return self._load(name).schema().as_arrow()

    def promote(self, name: str, column: str, to: pa.DataType) -> None:
        """Widen ``column`` to the Iceberg type of ``to`` (PyIceberg refuses what Iceberg does not allow)."""
        from pyiceberg.io.pyarrow import pyarrow_to_schema

        iceberg = pyarrow_to_schema(pa.schema([pa.field(column, to)]), name_mapping=_identity_mapping(column))
        with self._errors(name, "widen a column of"), self._load(name).update_schema() as update:
            update.update_column(column, field_type=iceberg.find_field(column).field_type)
        logger.info("lake table %s: column %s widened to %s", name, column, to)

    def upsert(self, name: str, data: pa.Table, *, key: Sequence[str]) -> tuple[int, int]:
        """Merge ``data`` on ``key``: changed rows are updated, new rows inserted, unchanged rows left alone.

        Returns:
            ``(rows_updated, rows_inserted)``; rows whose non-key values did not change count in neither.

        Raises:
            TerminalError: ``data`` has duplicate keys, or ``key`` is not a column.
        """
        if not key:
            raise TerminalError(f"cannot upsert into {name}: no key columns given")
        with self._errors(name, "upsert into"):
            table = self._load(name)
            result = table.upsert(_conform(data, table, name), join_cols=list(key))
        updated, inserted = result.rows_updated, result.rows_inserted
        logger.debug("upserted into %s: %d updated, %d inserted", name, updated, inserted)
        return updated, inserted

    def replace(self, name: str, data: pa.Table, *, row_filter: str) -> None:
        """Delete the rows matching ``row_filter`` and append ``data`` in one transaction (a day reload)."""
        expression = _parse(name, row_filter)
        with self._errors(name, "replace rows of"):
            table = self._load(name)
            with warnings.catch_warnings():  # an empty day to replace is normal, not worth a warning
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                table.overwrite(_conform(data, table, name), overwrite_filter=expression)

    def evolve(self, name: str, schema: pa.Schema) -> list[str]:
        """Add the columns of ``schema`` that ``name`` lacks (PyIceberg ``union_by_name``), all optional."""
        with self._errors(name, "evolve the schema of"):
            table = self._load(name)
            added = [f for f in schema.names if f not in table.schema().column_names]
            if added:
                with table.update_schema() as update:
                    new = pa.schema([schema.field(f).with_nullable(True) for f in added])
                    update.union_by_name(_iceberg_ready(new, required=set()))
        return added

    def compact(
        self, name: str, *, row_filter: str | None = None, properties: Mapping[str, str] | None = None
    ) -> tuple[int, int]:
        """Rewrite the current data into one file per partition (delete + append snapshots, one commit).

        With ``row_filter``, only the rows matching it: a filter that matches whole files (an append-only
        table's newest rows, ``"_pos > 1000"``) leaves every other file as it is, unread, so compacting a
        log's tail costs the tail, not the table. The newest ``dotjoin.*`` snapshot properties (a pipeline's
        state, e.g. the CDC applier's positions) are carried onto the new snapshots, so expiring the old
        ones afterwards loses nothing; ``properties`` replace them (a state that records the compaction).
        """
        carried = dict(properties) if properties is not None else self.last_properties(name, "dotjoin.")
        expression = _parse(name, row_filter)
        with self._errors(name, "compact"):
            table = self._load(name)
            before = len(list(table.scan(row_filter=expression).plan_files()))
            if before > 1:
                rows = table.scan(row_filter=expression).to_arrow()
                table.overwrite(rows, overwrite_filter=expression, snapshot_properties=carried)
                table = table.refresh()
            after = len(list(table.scan(row_filter=expression).plan_files()))
        return before, after

    def expire_snapshots(self, name: str, *, older_than: datetime, retain_last: int = 1) -> ExpireResult:
        """Expire old snapshots and delete the files only they referenced (see iceberg_maintenance)."""
        from dotjoin.platform.lake.iceberg_maintenance import expire_snapshots

        with self._errors(name, "expire snapshots of"):
            return expire_snapshots(self._load(name), older_than=older_than, retain_last=retain_last)

    def delete(self, name: str, row_filter: str) -> None:
        """Delete rows matching a PyIceberg filter, e.g. ``"id = 3"`` or ``"ts < '2026-01-02T00:00:00'"``."""
        expression = _parse(name, row_filter)
        with self._errors(name, "delete from"):
            self._load(name).delete(expression)

    def scan(self, name: str, *, row_filter: str | None = None, snapshot_id: int | None = None) -> pa.Table:
        """Read ``name`` as Arrow, optionally filtered and as of ``snapshot_id`` (time travel)."""
        expression = _parse(name, row_filter)
        with self._errors(name, "scan"):
            table = self._load(name)
            if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
                raise NotFoundError(f"snapshot {snapshot_id} of lake table {name} does not exist")
            return table.scan(row_filter=expression, snapshot_id=snapshot_id).to_arrow()

    def plan(self, name: str, *, row_filter: str | None = None) -> ScanPlan:
        """The data files a scan with ``row_filter`` reads, against all data files of the current snapshot."""
        expression = _parse(name, row_filter)
        with self._errors(name, "plan a scan of"):
            table = self._load(name)
            chosen = [task.file for task in table.scan(row_filter=expression).plan_files()]
            every = [task.file for task in table.scan().plan_files()]
        return ScanPlan(
            files=sorted(f.file_path for f in chosen),
            bytes=sum(f.file_size_in_bytes for f in chosen),
            total_files=len(every),
            total_bytes=sum(f.file_size_in_bytes for f in every),
        )

    def snapshots(self, name: str) -> list[SnapshotInfo]:
        """Every snapshot of ``name``, oldest first (operation: append, overwrite, delete, replace)."""
        with self._errors(name, "list snapshots of"):
            table = self._load(name)
            return [
                SnapshotInfo(
                    snapshot_id=s.snapshot_id,
                    committed_at=datetime.fromtimestamp(s.timestamp_ms / 1000, tz=UTC),
                    operation=s.summary.operation.value if s.summary else "unknown",
                    summary=dict(s.summary.additional_properties) if s.summary else {},
                )
                for s in sorted(table.snapshots(), key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
            ]

    def drop_table(self, name: str) -> None:
        """Drop ``name`` and purge its data and metadata files (empty local directories are removed too).

        Raises:
            NotFoundError: the table does not exist.
        """
        zone, table = self._split(name)
        with self._errors(name, "drop"):
            try:
                self._catalog.purge_table(name)
            except FileNotFoundError:  # its metadata is gone (e.g. a deleted temp dir): drop the entry
                logger.warning("lake table %s has no metadata file left; dropping its catalog entry", name)
                self._catalog.drop_table(name)
        if not self._remote:
            _remove_empty_dirs(Path(self.root) / zone / table)
        logger.info("dropped lake table %s", name)

    def list_tables(self, zone: Zone) -> list[str]:
        """The tables of ``zone`` as ``<zone>.<table>`` names, sorted."""
        _check_zone(zone)
        with self._errors(zone, "list tables of"):
            try:
                identifiers = self._catalog.list_tables(zone)
            except NoSuchNamespaceError:
                return []
        return sorted(".".join(identifier) for identifier in identifiers)

    def close(self) -> None:
        """Dispose of the catalog's connection pool."""
        self._catalog.close()


def _check_zone(zone: str) -> None:
    if zone not in ZONES:
        raise TerminalError(f"unknown zone {zone!r}; choose one of: {', '.join(ZONES)}")


def _address_of(uri: str) -> str:
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _parse(name: str, row_filter: str | None) -> BooleanExpression:
    if row_filter is None:
        return AlwaysTrue()
    try:
        return parse_filter(row_filter)
    except Exception as exc:  # pyparsing.ParseException: its message lists the whole grammar
        where = f" at column {exc.col}" if hasattr(exc, "col") else ""
        raise TerminalError(
            f"bad row filter {row_filter!r} for {name}: cannot parse it{where}; use PyIceberg syntax, "
            "e.g. \"id = 3 and ts >= '2026-01-03T00:00:00'\" (timestamptz: '...T00:00:00+00:00')"
        ) from exc


def _iceberg_type(t: pa.DataType) -> pa.DataType:
    """``t`` with nanosecond timestamps made microsecond (Iceberg v2 has no ns), recursively."""
    if pa.types.is_timestamp(t) and t.unit == "ns":
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_iceberg_type(f.type)) for f in t.fields])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_iceberg_type(t.value_type)))
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_iceberg_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(t.key_field.with_type(_iceberg_type(t.key_type)), _iceberg_type(t.item_type))
    return t


def _iceberg_ready(schema: pa.Schema, *, required: set[str]) -> pa.Schema:
    return pa.schema(
        [
            f.with_type(_iceberg_type(f.type)).with_nullable(f.nullable and f.name not in required)
            for f in schema
        ]
    )


def _conform(data: pa.Table, table: Table, name: str) -> pa.Table:
    """Cast ``data`` to the table's Arrow schema; missing optional columns become nulls."""
    target = table.schema().as_arrow()
    extra = [c for c in data.column_names if c not in target.names]
    if extra:
        raise DataError(f"columns not in lake table {name}: {', '.join(extra)} (evolve the schema first)")
    columns = []
    for field in target:
        if field.name in data.column_names:
            columns.append(data.column(field.name))
        elif field.nullable:
            columns.append(pa.nulls(data.num_rows, field.type))
        else:
            raise DataError(f"required column {field.name!r} of lake table {name} is missing from the data")
    try:
        return pa.Table.from_arrays(columns, names=target.names).cast(target)
    except (pa.ArrowException, ValueError, TypeError) as exc:  # ValueError: nulls into a required column
        raise DataError(f"data does not fit lake table {name}: {exc}") from exc


def _identity_mapping(column: str) -> Any:
    from pyiceberg.table.name_mapping import MappedField, NameMapping

    return NameMapping([MappedField.model_validate({"field-id": 1, "names": [column]})])


def _remove_empty_dirs(top: Path) -> None:
    for dirpath, _dirs, _files in os.walk(top, topdown=False):  # bottom-up: children before parents
        with contextlib.suppress(OSError):
            Path(dirpath).rmdir()
