from __future__ import annotations

import json

import pyarrow as pa
import pytest

from dotjoin.pipelines.selfcheck.transforms import (
    EVENT_SCHEMA,
    MalformedEventError,
    checksum,
    dedupe,
    generate_events,
    parse_event,
)


def test_generator_is_deterministic_and_mixes_dirt() -> None:
    a, b = list(generate_events(1000, seed=3)), list(generate_events(1000, seed=3))
    assert a == b
    malformed = [e for e in a if not e.value.startswith(b"{")]
    assert len(malformed) == 5
    ids = [json.loads(e.value)["event_id"] for e in a if e.value.startswith(b"{")]
    # every 50th message re-sends the previous event, except where it is one of the 5 corrupt ones
    assert len(ids) - len(set(ids)) == 20 - 5


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"event_id": "e", "account": "a", "event_time": "2026-01-01"}', "missing field 'amount_cents'"),
        (b'{"event_id": "e", "account": "a", "amount_cents": "5", "event_time": "x"}', "not an integer"),
        (b'{"event_id": "e", "account": "a", "amount_cents": 5, "event_time": "yesterday"}', "event_time"),
    ],
)
def test_parse_event_names_the_defect(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedEventError, match=message):
        parse_event(payload)


def test_dedupe_counts_repeats_across_batches() -> None:
    seen: set[str] = set()
    kept, dup = dedupe([{"event_id": "a"}, {"event_id": "a"}, {"event_id": "b"}], seen)
    assert (len(kept), dup) == (2, 1)
    kept, dup = dedupe([{"event_id": "b"}, {"event_id": "c"}], seen)
    assert (len(kept), dup) == (1, 1)


def test_checksum_ignores_order_but_not_content() -> None:
    rows = [parse_event(e.value) for e in generate_events(20) if e.value.startswith(b"{")]
    t = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    assert checksum(t) == checksum(t.take(list(range(t.num_rows))[::-1]))
    changed = [*rows[:-1], {**rows[-1], "amount_cents": rows[-1]["amount_cents"] + 1}]
    assert checksum(t) != checksum(pa.Table.from_pylist(changed, schema=EVENT_SCHEMA))
