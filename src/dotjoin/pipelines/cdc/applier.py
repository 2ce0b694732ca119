"""The applier: Debezium changes → one append-only Iceberg change log per source table.

Design (why: docs/pipelines/cdc.md): every batch of changes is **one Iceberg append** per table — no
row-level upsert or delete, which PyIceberg does copy-on-write (it rewrites every data file a key lands in).
The current state and the SCD type 2 history are views over the log (:mod:`dotjoin.pipelines.cdc.views`),
merge-on-read: the newest version per key, and the versions in order with their validity.

Log table ``raw.<schema>_<table>_changes``: the source row's columns (after image; a delete's before
image), then ``_op``, ``_pos`` (this table's arrival order, assigned here), ``_lsn``, ``_commit_lsn``,
``_tx_id``, ``_commit_ts`` (the source commit's time, not arrival) and ``_row_hash`` (of the row's values).
Partitioned by day of ``_commit_ts``.

**Idempotence.** The applier's progress is committed in the same Iceberg snapshot as the rows it covers
(summary properties ``dotjoin.cdc.*``): the last ``_pos``, the high-water mark of streamed positions
``(last commit LSN, LSN, op rank)``, and the last offset per Kafka partition or file. A batch re-delivered
after a crash (offset at or below the mark) or re-sent by Debezium after a Kafka Connect restart (position
at or below the high-water mark) is dropped; snapshot reads re-sent by a restarted snapshot carry no order
and are harmless (the views treat an unchanged re-read as no new version).

**Schema evolution.** New source columns are added, widened types promoted (int→long, float→double, a
wider decimal) before the append, in the same run, with no restart; a column gone from the source is marked
dropped (kept in the log for history). A change the lake cannot follow — a narrowed or changed type —
raises :class:`SchemaContractError` before anything of the batch is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa

from dotjoin.exceptions import TerminalError
from dotjoin.pipelines.cdc.events import SNAPSHOT_END, Change, Skipped
from dotjoin.platform.lake import Lake, PartitionField

logger = logging.getLogger(__name__)

PREFIX = "dotjoin.cdc."
META = pa.schema(
    [
        pa.field("_op", pa.string(), nullable=False),
        pa.field("_pos", pa.int64(), nullable=False),
        pa.field("_lsn", pa.int64()),
        pa.field("_commit_lsn", pa.int64()),
        pa.field("_tx_id", pa.int64()),
        pa.field("_commit_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("_row_hash", pa.string()),
    ]
)
META_COLUMNS = frozenset(META.names)
# Log maintenance (why: docs/pipelines/cdc.md, "Keeping commits cheap"). Every COMPACT_EVERY commits of a
# table its tail (the rows since the last compaction) becomes one file per partition, and the snapshots
# older than the previous maintenance are expired (a reader that planned a scan since then still finds its
# files); every FULL_EVERY tail compactions, the whole log is compacted.
COMPACT_EVERY = 50
FULL_EVERY = 100
KEEP_SNAPSHOTS = 20
LOG_PROPERTIES = {  # every commit rewrites metadata.json: keep only the newest few in storage
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
_encode = msgspec.json.Encoder(decimal_format="number").encode


class SchemaContractError(TerminalError):
    """The source's schema changed in a way the lake cannot follow (a narrowed or changed type)."""


def log_table(source_table: str) -> str:
    """The lake table holding the change log of ``schema.table``.

    >>> log_table("cdc_source.users")
    'raw.cdc_source_users_changes'
    """
    return "raw." + source_table.replace(".", "_") + "_changes"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event came from: a Kafka partition and offset, or a file and its line."""

    stream: str  # "topic:partition" or the file's path
    offset: int


@dataclass
class TableState:
    """The applier's progress on one table, as committed with its last append."""

    pos: int = 0
    high_water: tuple[int, int, int] | None = None
    offsets: dict[str, int] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    dropped: frozenset[str] = frozenset()
    source: str = ""
    compacted: int = 0  # the log's rows up to this _pos are compacted

    def properties(self) -> dict[str, str]:
        return {
            PREFIX + "source": self.source,
            PREFIX + "pos": str(self.pos),
            PREFIX + "high_water": json.dumps(self.high_water),
            PREFIX + "offsets": json.dumps(self.offsets, sort_keys=True),
            PREFIX + "key": json.dumps(list(self.key)),
            PREFIX + "dropped": json.dumps(sorted(self.dropped)),
            PREFIX + "compacted": str(self.compacted),
        }

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> TableState:
        if not props:
            return cls()
        high = json.loads(props.get(PREFIX + "high_water", "null"))
        return cls(
            pos=int(props.get(PREFIX + "pos", "0")),
            high_water=tuple(high) if high else None,
            offsets=json.loads(props.get(PREFIX + "offsets", "{}")),
            key=tuple(json.loads(props.get(PREFIX + "key", "[]"))),
            dropped=frozenset(json.loads(props.get(PREFIX + "dropped", "[]"))),
            source=props.get(PREFIX + "source", ""),
            compacted=int(props.get(PREFIX + "compacted", "0")),
        )


@dataclass
class ApplyReport:
    """What one or more batches did; counts reconcile: events = applied + duplicates + skipped."""

    events: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    tables: Counter[str] = field(default_factory=Counter)
    commits: int = 0
    unresolved_toast: int = 0
    snapshot_deletes: int = 0  # keys a re-snapshot no longer found, deleted at its end
    schema_changes: list[str] = field(default_factory=list)

    def add(self, other: ApplyReport) -> None:
        self.events += other.events
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.skipped.update(other.skipped)
        self.tables.update(other.tables)
        self.commits += other.commits
        self.unresolved_toast += other.unresolved_toast
        self.snapshot_deletes += other.snapshot_deletes
        self.schema_changes.extend(other.schema_changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events, "applied": self.applied, "duplicates": self.duplicates,
            "skipped": dict(self.skipped), "tables": dict(self.tables), "commits": self.commits,
            "unresolved_toast": self.unresolved_toast, "snapshot_deletes": self.snapshot_deletes,
            "schema_changes": self.schema_changes,
        }  # fmt: skip


class Applier:
    """Applies batches of decoded events to the lake's change-log tables.

    Example::

        applier = Applier(lake)
        report = applier.apply([(decode_record(key, value), Origin("cdc.cdc_source.users:0", 7))])
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._states: dict[str, TableState] = {}
        self._exists: set[str] = set()
        self._toast: dict[tuple[str, str], dict[tuple[Any, ...], Any]] = {}
        self._last_delete: dict[str, tuple[int | None, tuple[Any, ...]]] = {}
        self._commits: dict[str, int] = {}
        self._maintained: dict[str, datetime] = {}  # per log: this process's first commit or last upkeep

    def state(self, source_table: str) -> TableState:
        """The committed progress on ``source_table`` (loaded from the lake once, then kept here)."""
        if source_table not in self._states:
            name = log_table(source_table)
            exists = self.lake.table_exists(name)
            if exists:
                self._exists.add(name)
            props = self.lake.last_properties(name, PREFIX) if exists else {}
            self._states[source_table] = TableState.from_properties(props)
        return self._states[source_table]

    def apply(self, batch: Sequence[tuple[Change | Skipped, Origin | None]]) -> ApplyReport:
        """Apply one batch: one append per table it touches. Nothing of a table is written if it fails."""
        report = ApplyReport(events=len(batch))
        by_table: dict[str, list[tuple[Change, Origin | None]]] = {}
        for event, origin in batch:
            if isinstance(event, Skipped):
                report.skipped[event.kind] += 1
            else:
                by_table.setdefault(event.table, []).append((event, origin))
        for table, items in by_table.items():
            self._apply_table(table, items, report)
        return report

    def _apply_table(
        self, table: str, items: list[tuple[Change, Origin | None]], report: ApplyReport
    ) -> None:
        committed = self.state(table)
        high, offsets = committed.high_water, dict(committed.offsets)
        fresh: list[Change] = []
        for change, origin in items:
            if origin is not None and origin.offset <= offsets.get(origin.stream, -1):
                report.duplicates += 1
                continue
            if high is not None and (
                change.position <= high if change.position is not None else (change.lsn or 0) < high[0]
            ):  # re-sent by Debezium: streamed at or below the mark, or an older snapshot's read
                report.duplicates += 1
                if origin is not None:
                    offsets[origin.stream] = origin.offset
                continue
            if change.position is not None:
                high = change.position
            if origin is not None:
                offsets[origin.stream] = origin.offset
            fresh.append(change)
        if not fresh:
            if offsets != committed.offsets:  # only re-deliveries: nothing to write, remember nothing
                self._states[table] = dataclasses.replace(committed, high_water=high, offsets=offsets)
            return
        name = log_table(table)
        received = len(fresh)
        fresh = self._with_snapshot_deletes(table, fresh, report)
        types, dropped = self._evolve(name, table, fresh, committed, report)
        rows = self._resolve_toast(table, fresh, report)
        state = TableState(
            pos=committed.pos + len(fresh), high_water=high, offsets=offsets,
            key=fresh[-1].key_columns, dropped=dropped, source=table, compacted=committed.compacted,
        )  # fmt: skip
        data = _arrow(fresh, rows, types, first_pos=committed.pos + 1)
        self.lake.append(name, data, properties=state.properties())
        self._states[table] = state
        self._commits[name] = self._commits.get(name, 0) + 1
        self._maintained.setdefault(name, datetime.now(UTC))
        if self._commits[name] % COMPACT_EVERY == 0:
            self._maintain(table, full=self._commits[name] % (COMPACT_EVERY * FULL_EVERY) == 0)
        self._remember_toast(table, fresh, rows)
        report.applied += received  # the snapshot's deletes are counted apart (report.snapshot_deletes)
        report.tables[table] += len(fresh)
        report.commits += 1

    def _maintain(self, table: str, *, full: bool) -> None:
        """Compact the log's tail (or all of it) and expire old snapshots: without this, each append
        costs more than the last (every manifest and snapshot stays in the metadata it rewrites)."""
        name, state = log_table(table), self._states[table]
        started = time.monotonic()
        done = dataclasses.replace(state, compacted=state.pos)
        tail = None if full else f"_pos > {state.compacted}"
        before, after = self.lake.compact(name, row_filter=tail, properties=done.properties())
        self._states[table] = done
        expired = self.lake.expire_snapshots(
            name, older_than=self._maintained[name], retain_last=KEEP_SNAPSHOTS
        )
        self._maintained[name] = datetime.now(UTC)
        logger.info("cdc: compacted %s %s (%d files → %d), expired %d snapshots, in %.1f s", name,
                    "fully" if full else f"after _pos {state.compacted}", before, after,
                    expired.snapshots_expired, time.monotonic() - started)  # fmt: skip

    # -- snapshots ---------------------------------------------------------------------------------

    def _with_snapshot_deletes(self, table: str, fresh: list[Change], report: ApplyReport) -> list[Change]:
        """``fresh`` with a delete, right after a table's last snapshot read, for every key alive in the lake
        that this snapshot did not read: a re-snapshot (after a lost slot) finds rows deleted in the gap
        only by their absence. A first snapshot finds none."""
        if not any(c.snapshot in SNAPSHOT_END for c in fresh):
            return fresh
        out: list[Change] = []
        for n, change in enumerate(fresh):
            out.append(change)
            if change.op == "r" and change.snapshot in SNAPSHOT_END:
                vanished = self._vanished(table, fresh[: n + 1], change)
                report.snapshot_deletes += len(vanished)
                out.extend(vanished)
        return out

    def _vanished(self, table: str, before: list[Change], end: Change) -> list[Change]:
        alive: dict[tuple[Any, ...], bool] = {}
        read: set[tuple[Any, ...]] = set()
        name = log_table(table)
        if name in self._exists:
            log = self.lake.scan(name).select([*end.key_columns, "_op", "_lsn", "_pos"]).sort_by("_pos")
            keys = zip(*(log.column(k).to_pylist() for k in end.key_columns), strict=True)
            for key, op, lsn in zip(keys, log.column("_op").to_pylist(), log.column("_lsn").to_pylist(),
                                    strict=True):  # fmt: skip
                alive[key] = op != "d"
                if op == "r" and lsn == end.lsn:
                    read.add(key)
        for change in before:
            alive[change.key] = change.op != "d"
            if change.op == "r" and change.lsn == end.lsn:
                read.add(change.key)
        key_types = {c: end.types[c] for c in end.key_columns}
        return [
            Change(
                table=table,
                op="d",
                key=key,
                key_columns=end.key_columns,
                row=dict(zip(end.key_columns, key, strict=True)),
                types=key_types,
                lsn=end.lsn,
                position=None,
                tx_id=None,
                commit_us=end.commit_us,
            )
            for key, is_alive in alive.items()
            if is_alive and key not in read
        ]

    # -- schema ------------------------------------------------------------------------------------

    def _evolve(
        self, name: str, table: str, changes: list[Change], state: TableState, report: ApplyReport
    ) -> tuple[dict[str, pa.DataType], frozenset[str]]:
        """The log's source columns after this batch (evolving the lake table first), and the dropped set."""
        incoming: dict[str, pa.DataType] = {}
        present: set[str] = set()
        for change in changes:
            if change.op != "d":
                present.update(change.types)
            for column, kind in change.types.items():
                known = incoming.get(column)
                incoming[column] = kind if known is None else _wider(known, kind, table, column)
        if name not in self._exists:
            schema = pa.schema([pa.field(c, t) for c, t in incoming.items()] + list(META))
            self.lake.create_table(
                name, schema, partition_by=[PartitionField("_commit_ts", "day")], properties=LOG_PROPERTIES
            )
            self._exists.add(name)
            return incoming, frozenset()
        existing = {f.name: f.type for f in self.lake.schema(name) if f.name not in META_COLUMNS}
        added = {c: t for c, t in incoming.items() if c not in existing}
        for column, kind in incoming.items():
            if column in existing and _canon(existing[column]) != _canon(kind):
                if _canon(_wider(existing[column], kind, table, column)) == _canon(existing[column]):
                    raise SchemaContractError(
                        f"cdc contract: {table}.{column} is now {_canon(kind)} in the source but "
                        f"{_canon(existing[column])} in {name}; Iceberg widens, never narrows, so the "
                        "applier stopped before writing the batch (restore the type, or re-snapshot into "
                        "a new log table)"
                    )
                self.lake.promote(name, column, kind)
                report.schema_changes.append(f"{table}.{column}: {_canon(existing[column])} → {_canon(kind)}")
        if added:
            self.lake.evolve(name, pa.schema([pa.field(c, t) for c, t in added.items()]))
            report.schema_changes.extend(f"{table}.{c}: added ({_canon(t)})" for c, t in added.items())
        dropped = set(state.dropped)
        if present:
            gone = {c for c in existing if c not in present} - dropped
            back = dropped & present
            dropped = (dropped | gone) - back
            report.schema_changes.extend(f"{table}.{c}: dropped in the source" for c in sorted(gone))
            report.schema_changes.extend(f"{table}.{c}: back in the source" for c in sorted(back))
        columns = {**existing, **incoming}
        return columns, frozenset(dropped)

    # -- TOAST ---------------------------------------------------------------------------------------

    def _resolve_toast(self, table: str, changes: list[Change], report: ApplyReport) -> list[dict[str, Any]]:
        """Each change's row with Debezium's unavailable-value placeholders replaced by the key's previous
        value of that column (earlier in the batch, else from the log)."""
        rows: list[dict[str, Any]] = []
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for change in changes:
            row = change.row
            if (
                change.op == "d"
            ):  # a key update is d(old key) then c(new key) at one LSN, maybe across batches
                self._last_delete[table] = (change.lsn, change.key)
            if change.unavailable:
                row = dict(row)
                key = change.key
                moved = self._last_delete.get(table)
                if change.op == "c" and moved is not None and moved[0] == change.lsn:
                    key = moved[1]  # the new key's unchanged values are the old key's
                previous = latest.get(key)
                for column in change.unavailable:
                    if previous is not None and column in previous:
                        row[column] = previous[column]
                        continue
                    known = self._toast_column(table, column, change.key_columns)
                    if key in known:
                        row[column] = known[key]
                    else:
                        report.unresolved_toast += 1
                        logger.warning("cdc: %s key %s: no earlier value for unchanged TOAST column %s",
                                       table, change.key, column)  # fmt: skip
            if change.op != "d":  # a key update's c looks its old key up: keep that key's last values
                latest[change.key] = row
            rows.append(row)
        return rows

    def _toast_column(self, table: str, column: str, key: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
        cache = self._toast.get((table, column))
        if cache is None:
            cache = {}
            name = log_table(table)
            if name in self._exists and column in self.lake.schema(name).names:
                log = self.lake.scan(name).select([*key, column, "_pos", "_op"]).sort_by("_pos")
                keys = list(zip(*(log.column(k).to_pylist() for k in key), strict=True))
                for k, value, op in zip(keys, log.column(column).to_pylist(), log.column("_op").to_pylist(),
                                        strict=True):  # fmt: skip
                    if op != "d":  # a deleted key's last value stays: a key update's c may need it
                        cache[k] = value
            self._toast[(table, column)] = cache
        return cache

    def _remember_toast(self, table: str, changes: list[Change], rows: list[dict[str, Any]]) -> None:
        for (t, column), cache in self._toast.items():
            if t != table:
                continue
            for change, row in zip(changes, rows, strict=True):
                if change.op != "d" and column in row:
                    cache[change.key] = row[column]


def row_hash(row: dict[str, Any]) -> str:
    """A digest of a row's non-null values by column name (a new null column does not change it)."""
    values = [[c, row[c]] for c in sorted(row) if row[c] is not None]
    return hashlib.blake2b(_encode(values), digest_size=16).hexdigest()


def _arrow(
    changes: list[Change], rows: list[dict[str, Any]], types: dict[str, pa.DataType], *, first_pos: int
) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for column, kind in types.items():
        arrays[column] = pa.array([row.get(column) for row in rows], type=kind)
    arrays["_op"] = pa.array([c.op for c in changes], pa.string())
    arrays["_pos"] = pa.array(range(first_pos, first_pos + len(changes)), pa.int64())
    arrays["_lsn"] = pa.array([c.lsn for c in changes], pa.int64())
    arrays["_commit_lsn"] = pa.array([c.position[0] if c.position else None for c in changes], pa.int64())
    arrays["_tx_id"] = pa.array([c.tx_id for c in changes], pa.int64())
    arrays["_commit_ts"] = pa.array([c.commit_us for c in changes], pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    arrays["_row_hash"] = pa.array([row_hash(row) for row in rows], pa.string())
    return pa.table(arrays)


def _canon(kind: pa.DataType) -> str:
    """A type's name with the differences that do not matter here erased (string widths, UTC spellings)."""
    if pa.types.is_large_string(kind) or pa.types.is_string(kind):
        return "string"
    if pa.types.is_large_binary(kind) or pa.types.is_binary(kind):
        return "binary"
    if pa.types.is_timestamp(kind):
        return f"timestamp[{kind.unit}{', UTC' if kind.tz else ''}]"
    return str(kind)


def _wider(a: pa.DataType, b: pa.DataType, table: str, column: str) -> pa.DataType:
    """The type that holds both ``a`` and ``b`` by Iceberg's promotions; a contract error if none does."""
    if _canon(a) == _canon(b):
        return a
    for x, y in ((a, b), (b, a)):
        if pa.types.is_int32(x) and pa.types.is_int64(y):
            return y
        if pa.types.is_float32(x) and pa.types.is_float64(y):
            return y
        if (
            pa.types.is_decimal(x)
            and pa.types.is_decimal(y)
            and x.scale == y.scale
            and x.precision <= y.precision
        ):
            return y
    raise SchemaContractError(
        f"cdc contract: {table}.{column} changed from {_canon(a)} to {_canon(b)}, which no Iceberg "
        "promotion allows; the applier stopped before writing the batch"
    )
