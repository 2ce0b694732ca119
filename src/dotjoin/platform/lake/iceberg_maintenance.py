"""Snapshot expiry for Iceberg tables: fewer snapshots in the metadata, unreferenced files deleted.

PyIceberg 0.12 removes expired snapshots from the table metadata but leaves their files in storage;
:func:`expire_snapshots` also deletes the manifest lists, manifests and data files that only expired
snapshots referenced — the same "reachable files" rule as Iceberg's Java ``ExpireSnapshots``: a file
stays if any retained snapshot still reads it (a live entry of one of its manifests).

Run it when no other writer commits to the table (our pipelines write a table from one process);
time travel to an expired snapshot is no longer possible afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from dotjoin.platform.lake.base import ExpireResult

if TYPE_CHECKING:
    from pyiceberg.manifest import ManifestFile
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


def _reachable(table: Table, snapshots: list[Snapshot], *, live_only: bool) -> dict[str, int]:
    """Every file ``snapshots`` reference -> its size in bytes (0 where unknown: lists, manifests).

    Snapshots of one table share most of their manifests (an append adds one and keeps the rest), so each
    manifest is read once: reading it per snapshot made expiring a few hundred snapshots take minutes."""
    files: dict[str, int] = {}
    manifests: dict[str, ManifestFile] = {}
    for snapshot in snapshots:
        files[snapshot.manifest_list] = 0
        for manifest in snapshot.manifests(table.io):
            manifests.setdefault(manifest.manifest_path, manifest)
    for path, manifest in manifests.items():
        files[path] = manifest.manifest_length
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=live_only):
            files[entry.data_file.file_path] = entry.data_file.file_size_in_bytes
    return files


def expire_snapshots(table: Table, *, older_than: datetime, retain_last: int = 1) -> ExpireResult:
    """Expire the snapshots committed before ``older_than``, always keeping the newest ``retain_last``
    (and the current one), then delete the files no retained snapshot references.
    """
    if retain_last < 1:
        raise ValueError(f"retain_last must be at least 1, not {retain_last}")
    snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    current = table.current_snapshot()
    keep = {s.snapshot_id for s in snapshots[-retain_last:]} | ({current.snapshot_id} if current else set())
    cutoff_ms = int(older_than.timestamp() * 1000)
    doomed = [s for s in snapshots if s.snapshot_id not in keep and s.timestamp_ms < cutoff_ms]
    if not doomed:
        return ExpireResult(0, len(snapshots), 0, 0)
    candidates = _reachable(table, doomed, live_only=False)
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in doomed]).commit()
    table = table.refresh()
    still_needed = _reachable(table, list(table.metadata.snapshots), live_only=True)
    deleted = {path: size for path, size in candidates.items() if path not in still_needed}
    for path in deleted:
        table.io.delete(path)
    return ExpireResult(
        snapshots_expired=len(doomed),
        snapshots_kept=len(table.metadata.snapshots),
        files_deleted=len(deleted),
        bytes_deleted=sum(deleted.values()),
    )
