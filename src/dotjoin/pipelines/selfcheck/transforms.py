"""Pure logic of the self-check: deterministic events, parsing, and a content checksum."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
    """One message, and what the producer knows of it: the event it carries (None: corrupt on purpose)
    and whether it is a re-sent copy."""

    key: bytes
    value: bytes
    event: tuple[str, str, int, str] | None = None  # (event_id, account, amount_cents, event_time ISO)
    resent: bool = False


@dataclass
class Ledger:
    """What the producer sent, recorded before sending: the independent truth the run is checked against."""

    events: dict[str, tuple[str, str, int, str]] = field(default_factory=dict)
    malformed: int = 0
    resent: int = 0
    sent: int = 0

    def record(self, message: GeneratedEvent) -> None:
        self.sent += 1
        if message.event is None:
            self.malformed += 1
        elif message.resent:
            self.resent += 1
        else:
            self.events[message.event[0]] = message.event

    def checksum(self) -> str:
        return checksum_rows(self.events.values())


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
            yield GeneratedEvent(last_valid.key, last_valid.value, last_valid.event, resent=True)
            continue
        account = f"acct-{rng.randrange(100):03d}"
        amount = rng.randrange(1, 100_000)
        sent = (f"evt-{seed}-{i:08d}", account, amount, (EPOCH + timedelta(seconds=i)).isoformat())
        event = dict(zip(("event_id", "account", "amount_cents", "event_time"), sent, strict=True))
        last_valid = GeneratedEvent(key=account.encode(), value=json.dumps(event).encode(), event=sent)
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
    return checksum_rows(
        zip(
            table.column("event_id").to_pylist(),
            table.column("account").to_pylist(),
            table.column("amount_cents").to_pylist(),
            (t.isoformat() for t in table.column("event_time").to_pylist()),
            strict=True,
        )
    )


def checksum_rows(rows: Iterable[tuple[str, str, int, str]]) -> str:
    """Order-independent SHA-256 of (event_id, account, amount_cents, event_time ISO) rows.

    >>> a, b = ("b", "x", 1, "t"), ("a", "y", 2, "t")
    >>> checksum_rows([a, b]) == checksum_rows([b, a]) != checksum_rows([a])
    True
    """
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update("\x1f".join(map(str, row)).encode() + b"\n")
    return digest.hexdigest()
