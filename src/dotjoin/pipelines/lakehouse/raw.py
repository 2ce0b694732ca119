"""The raw zone: files exactly as received, immutable, under ``raw/<source>/ingest_date=YYYY-MM-DD/``.

Each source has an append-only ``_manifest.jsonl`` (file, sha256, bytes, rows, landed_at). Landing the
same bytes again is a no-op that returns the original entry (so ``landed_at`` — the ``_loaded_at`` of the
staging rows — is stable and a re-run reproduces identical staging data). A different file under a name
that already landed is refused: raw files are never overwritten. Landed files are made read-only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from dotjoin.exceptions import DataError

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.jsonl"
_DATE_IN_NAME = re.compile(r"_(\d{4}-\d{2}-\d{2})\.[A-Za-z]+$")


class FutureFileError(DataError):
    """A file dated after the run's day: refused, reported, never landed."""


@dataclass(frozen=True)
class ManifestEntry:
    source: str
    ingest_date: str
    file: str  # path relative to the raw zone
    sha256: str
    bytes: int
    rows: int
    landed_at: str  # ISO timestamp, UTC, naive


def file_date(name: str) -> date:
    """The export date in a file name like ``orders_2026-01-03.csv``.

    >>> file_date("orders_2026-01-03.csv")
    datetime.date(2026, 1, 3)
    >>> file_date("orders.csv")
    Traceback (most recent call last):
    ...
    dotjoin.exceptions.DataError: file name 'orders.csv' has no _YYYY-MM-DD date before its extension
    """
    match = _DATE_IN_NAME.search(name)
    if not match:
        raise DataError(f"file name {name!r} has no _YYYY-MM-DD date before its extension")
    try:
        return date.fromisoformat(match.group(1))
    except ValueError as exc:
        raise DataError(f"file name {name!r} has an invalid date: {exc}") from exc


def count_rows(data: bytes, *, header: bool) -> int:
    """Records in a CSV (minus its header) or JSON-lines file: non-empty lines.

    >>> count_rows(b"a,b\\n1,2\\n3,4\\n", header=True), count_rows(b'{"a":1}\\n\\n{"a":2}', header=False)
    (2, 2)
    """
    lines = sum(1 for line in data.splitlines() if line.strip())
    return max(lines - 1, 0) if header else lines


def read_manifest(raw_zone: Path, source: str) -> dict[str, ManifestEntry]:
    """The manifest of ``source``: relative file path -> entry."""
    path = raw_zone / source / MANIFEST
    if not path.exists():
        return {}
    entries = (ManifestEntry(**json.loads(line)) for line in path.read_text().splitlines() if line)
    return {e.file: e for e in entries}


def land(raw_zone: Path, source: str, file: Path, *, today: date) -> tuple[ManifestEntry, bool]:
    """Copy ``file`` into the raw zone unless the same bytes already landed.

    Args:
        raw_zone: the raw zone directory.
        source: the source system, e.g. ``ecommerce``.
        file: the received file; its name carries the export date.
        today: the run's day; a file dated later is refused.

    Returns:
        The manifest entry and whether the file was newly landed (False: a no-op re-delivery).

    Raises:
        FutureFileError: the file is dated after ``today``.
        DataError: a different file with the same name already landed (raw is immutable).
    """
    day = file_date(file.name)
    if day > today:
        raise FutureFileError(f"{file.name} is dated {day}, after the run's day {today}; not landed")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{source}/ingest_date={day.isoformat()}/{file.name}"
    existing = read_manifest(raw_zone, source).get(relative)
    if existing is not None:
        if existing.sha256 != digest:
            raise DataError(
                f"raw file {relative} already landed with sha256 {existing.sha256[:12]}; a different file "
                f"({digest[:12]}) under the same name is refused (raw is immutable): rename the re-export"
            )
        logger.debug("raw %s already landed; no-op", relative)
        return existing, False
    target = raw_zone / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(file, tmp)
    os.chmod(tmp, 0o444)
    os.replace(tmp, target)
    entry = ManifestEntry(
        source=source,
        ingest_date=day.isoformat(),
        file=relative,
        sha256=digest,
        bytes=len(data),
        rows=count_rows(data, header=file.suffix == ".csv"),
        landed_at=datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds"),
    )
    with (raw_zone / source / MANIFEST).open("a") as manifest:
        manifest.write(json.dumps(asdict(entry)) + "\n")
    logger.info("landed raw %s (%d bytes, %d rows)", relative, entry.bytes, entry.rows)
    return entry, True
