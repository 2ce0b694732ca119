"""Lake maintenance and inspection behind ``dotjoin lake``: scan statistics, compaction, snapshot expiry,
time travel.

Pure helpers (:func:`parse_scan_request`, :func:`pick_snapshot`) plus thin functions over a
:class:`~dotjoin.platform.lake.Lake`; the CLI only parses options and prints.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from dotjoin.exceptions import NotFoundError, TerminalError
from dotjoin.platform.lake import Lake, SnapshotInfo

logger = logging.getLogger(__name__)

_SQL = re.compile(
    r"^\s*(?:select\s+.+?\s+from\s+)?(?P<table>[A-Za-z_]\w*\.[A-Za-z_]\w*)(?:\s+where\s+(?P<where>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def parse_scan_request(text: str) -> tuple[str, str | None]:
    """The table and row filter of ``SELECT … FROM zone.table WHERE …`` or ``zone.table [WHERE …]``.

    The WHERE clause must be a PyIceberg filter (comparisons, ``and``/``or``/``not``, ``in``, ``is null``)
    — the predicate pruning is planned with; joins and functions are out of scope.

    >>> parse_scan_request("SELECT count(*) FROM staging.orders WHERE updated_at >= '2026-01-02T00:00:00'")
    ('staging.orders', "updated_at >= '2026-01-02T00:00:00'")
    >>> parse_scan_request("staging.iot_readings")
    ('staging.iot_readings', None)
    """
    match = _SQL.match(text)
    if not match:
        raise TerminalError(
            f'cannot read {text!r}: use "SELECT ... FROM <zone>.<table> [WHERE <filter>]" or '
            '"<zone>.<table> [WHERE <filter>]" (one table; the filter in PyIceberg syntax)'
        )
    return match.group("table"), match.group("where")


def scan_stats(lake: Lake, text: str) -> dict[str, Any]:
    """Files and bytes a query would scan after partition/statistics pruning, vs the table's totals."""
    table, where = parse_scan_request(text)
    plan = lake.plan(table, row_filter=where)
    return {
        "table": table,
        "filter": where,
        "files": len(plan.files),
        "total_files": plan.total_files,
        "bytes": plan.bytes,
        "total_bytes": plan.total_bytes,
        "files_pct": round(100 * len(plan.files) / plan.total_files, 2) if plan.total_files else 0.0,
        "bytes_pct": round(100 * plan.bytes / plan.total_bytes, 2) if plan.total_bytes else 0.0,
    }


def pick_snapshot(snapshots: list[SnapshotInfo], as_of: str) -> SnapshotInfo:
    """The snapshot named by ``as_of``: a snapshot id, or the last one committed at or before an ISO time.

    >>> s = [SnapshotInfo(1, datetime(2026, 1, 1, tzinfo=UTC), "append", {}),
    ...      SnapshotInfo(2, datetime(2026, 1, 2, tzinfo=UTC), "overwrite", {})]
    >>> pick_snapshot(s, "2").snapshot_id, pick_snapshot(s, "2026-01-01T12:00:00").snapshot_id
    (2, 1)
    """
    if as_of.strip().isdigit():
        wanted = int(as_of)
        for snap in snapshots:
            if snap.snapshot_id == wanted:
                return snap
        raise NotFoundError(f"no snapshot {wanted}; list them with `dotjoin lake snapshots <table>`")
    try:
        moment = datetime.fromisoformat(as_of.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise TerminalError(f"--as-of {as_of!r} is neither a snapshot id nor an ISO timestamp") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    earlier = [s for s in snapshots if s.committed_at <= moment]
    if not earlier:
        raise NotFoundError(f"the table has no snapshot at or before {moment.isoformat()}")
    return earlier[-1]


def read_as_of(
    lake: Lake, table: str, as_of: str, *, row_filter: str | None = None
) -> tuple[SnapshotInfo, pa.Table]:
    """Time travel: ``table`` as it was at ``as_of`` (snapshot id or timestamp)."""
    snap = pick_snapshot(lake.snapshots(table), as_of)
    return snap, lake.scan(table, row_filter=row_filter, snapshot_id=snap.snapshot_id)


def compact(lake: Lake, table: str) -> dict[str, Any]:
    """Rewrite ``table``'s small files into one per partition; the rows are proven unchanged."""
    before_rows = lake.scan(table).num_rows
    before_plan = lake.plan(table)
    files_before, files_after = lake.compact(table)
    after_plan = lake.plan(table)
    after_rows = lake.scan(table).num_rows
    if after_rows != before_rows:
        raise TerminalError(f"compaction of {table} changed the row count {before_rows} -> {after_rows}")
    snapshot = lake.snapshots(table)[-1]
    logger.info("compacted %s: %d -> %d files", table, files_before, files_after)
    return {
        "table": table,
        "files_before": files_before,
        "files_after": files_after,
        "bytes_before": before_plan.total_bytes,
        "bytes_after": after_plan.total_bytes,
        "rows": after_rows,
        "snapshot_id": snapshot.snapshot_id,
    }


def expire(lake: Lake, table: str, *, older_than_days: float, retain_last: int) -> dict[str, Any]:
    """Expire ``table``'s snapshots older than ``older_than_days`` (keeping the newest ``retain_last``)
    and delete the files only they referenced; the current rows are proven unchanged."""
    before = lake.scan(table).num_rows
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    result = lake.expire_snapshots(table, older_than=cutoff, retain_last=retain_last)
    after = lake.scan(table).num_rows
    if after != before:
        raise TerminalError(f"snapshot expiry of {table} changed the row count {before} -> {after}")
    logger.info(
        "expired %d snapshots of %s, deleted %d files", result.snapshots_expired, table, result.files_deleted
    )
    return {"table": table, **asdict(result), "rows": after}
