"""Quarantine: every rejected record is kept with its source, position, raw text and a reason code.

Rows are keyed by (pipeline, source, position), so re-running a pipeline over the same input rewrites
the same quarantine rows instead of piling up copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from dotjoin.platform.quality.reasons import check_reason

if TYPE_CHECKING:
    from dotjoin.platform.warehouse.base import Warehouse

QUARANTINE_TABLE = "quarantine"
QUARANTINE_KEY = ("pipeline", "source", "position")
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("pipeline", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Rejected:
    source: str  # a file path, topic, URL...
    position: str  # line number, "partition:offset", page...
    reason: str  # a code of dotjoin.platform.quality.reasons, e.g. "bad_json", "unknown_store"
    detail: str | None = None
    raw: str | None = None


def _storable(text: str | None) -> str | None:
    r"""Text every warehouse can store: PostgreSQL text cannot hold NUL, so it is written as ``\x00``.

    >>> _storable("a\x00b")
    'a\\x00b'
    """
    return None if text is None else text.replace("\x00", "\\x00")


@dataclass
class Quarantine:
    """Collects rejected records during a run; :meth:`flush` writes them to the warehouse."""

    pipeline: str
    run_id: str
    records: list[Rejected] = field(default_factory=list)

    def reject(
        self,
        *,
        source: str,
        position: str | int,
        reason: str,
        detail: str | None = None,
        raw: str | None = None,
    ) -> None:
        check_reason(reason)
        self.records.append(Rejected(source, str(position), reason, _storable(detail), _storable(raw)))

    def __len__(self) -> int:
        return len(self.records)

    def by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rec in self.records:
            counts[rec.reason] = counts.get(rec.reason, 0) + 1
        return counts

    def to_arrow(self) -> pa.Table:
        now = datetime.now(UTC)
        return pa.Table.from_pylist(
            [
                {
                    "pipeline": self.pipeline,
                    "source": r.source,
                    "position": r.position,
                    "reason": r.reason,
                    "detail": r.detail,
                    "raw": r.raw,
                    "run_id": self.run_id,
                    "quarantined_at": now,
                }
                for r in self.records
            ],
            schema=QUARANTINE_SCHEMA,
        )

    def flush(self, warehouse: Warehouse) -> int:
        """Upsert the collected records into the ``quarantine`` table; returns how many were written."""
        if not self.records:
            return 0
        warehouse.upsert(QUARANTINE_TABLE, self.to_arrow(), key=list(QUARANTINE_KEY))
        return len(self.records)
