"""Pure logic of the self-check: deterministic events, parsing, and a content checksum."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("amount_cents", pa.int64(), nullable=False),
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GeneratedEvent:
    key: bytes
    value: bytes


def generate_events(
    count: int, *, seed: int = 7, duplicate_every: int = 50, malformed_every: int = 200
) -> Iterator[GeneratedEvent]:
    """``count`` messages: valid JSON events, plus a re-sent copy of every ``duplicate_every``-th
    event (at-least-once producers do that) and a corrupt payload every ``malformed_every``-th message.

    >>> events = list(generate_events(400))
    >>> len(events), sum(e.value.startswith(b"{") for e in events)
    (400, 398)
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    last_valid: GeneratedEvent | None = None
    for i in range(count):
        if malformed_every and i % malformed_every == malformed_every - 1:
            yield GeneratedEvent(key=f"bad-{i}".encode(), value=b"\x00not json " + str(i).encode())
            continue
        if duplicate_every and last_valid is not None and i % duplicate_every == duplicate_every - 1:
            yield last_valid
            continue
        account = f"acct-{rng.randrange(100):03d}"
        event = {
            "event_id": f"evt-{seed}-{i:08d}",
            "account": account,
            "amount_cents": rng.randrange(1, 100_000),
            "event_time": (EPOCH + timedelta(seconds=i)).isoformat(),
        }
        last_valid = GeneratedEvent(key=account.encode(), value=json.dumps(event).encode())
        yield last_valid


class MalformedEventError(ValueError):
    """A message that is not a valid event; the message says which field."""


def parse_event(value: bytes) -> dict[str, object]:
    """Decode one message into a row of ``EVENT_SCHEMA``; raise MalformedEventError naming the defect.

    >>> event = b'{"event_id": "e1", "account": "a", "amount_cents": 5, "event_time": "2026-01-01T00:00Z"}'
    >>> parse_event(event)["amount_cents"]
    5
    """
    try:
        doc = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEventError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MalformedEventError("not a JSON object")
    for name in ("event_id", "account", "amount_cents", "event_time"):
        if name not in doc:
            raise MalformedEventError(f"missing field {name!r}")
    if not isinstance(doc["amount_cents"], int):
        raise MalformedEventError("field 'amount_cents' is not an integer")
    try:
        event_time = datetime.fromisoformat(str(doc["event_time"]))
    except ValueError as exc:
        raise MalformedEventError(f"field 'event_time': {exc}") from exc
    return {
        "event_id": str(doc["event_id"]),
        "account": str(doc["account"]),
        "amount_cents": doc["amount_cents"],
        "event_time": event_time,
    }


def dedupe(rows: Iterable[dict[str, object]], seen: set[str]) -> tuple[list[dict[str, object]], int]:
    """Drop rows whose ``event_id`` is in ``seen`` (updating it); returns (kept rows, duplicates)."""
    kept, duplicates = [], 0
    for row in rows:
        event_id = str(row["event_id"])
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        kept.append(row)
    return kept, duplicates


def checksum(table: pa.Table) -> str:
    """Order-independent content checksum of an events table (same rows => same digest)."""
    digest = hashlib.sha256()
    rows = sorted(
        zip(
            table.column("event_id").to_pylist(),
            table.column("account").to_pylist(),
            table.column("amount_cents").to_pylist(),
            (t.isoformat() for t in table.column("event_time").to_pylist()),
            strict=True,
        )
    )
    for row in rows:
        digest.update("\x1f".join(map(str, row)).encode() + b"\n")
    return digest.hexdigest()
