"""The CDC applier on the local lake: hand-made Debezium events (the shapes the connector sends, checked
against the real connector in tests/integration/test_cdc_*), expected states computed by hand."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import DataError
from dotjoin.pipelines.cdc.applier import Applier, Origin, SchemaContractError
from dotjoin.pipelines.cdc.events import UNAVAILABLE, Skipped, decode_record
from dotjoin.pipelines.cdc.pipeline import read_events, replay
from dotjoin.pipelines.cdc.tables import current_state, history
from dotjoin.platform.lake import open_lake
from tests.conftest import require_shared_data

USERS = {"id": {"type": "int64"}, "name": {"type": "string"}}


def event(
    op: str,
    row: dict[str, Any],
    *,
    lsn: int,
    commit: int | None = None,
    ts_s: int = 0,
    fields: dict[str, dict[str, Any]] = USERS,
    table: str = "users",
) -> tuple[str, str]:
    """A Kafka record (key, value) as Debezium's JSON converter with schemas writes it."""
    spec = [{"field": name, "optional": name != "id", **f} for name, f in fields.items()]
    images = [{"type": "struct", "fields": spec, "optional": True, "field": f} for f in ("before", "after")]
    source = {"schema": "app", "table": table, "lsn": lsn, "txId": 700 + lsn, "ts_us": ts_s * 1_000_000}
    if op != "r":
        source["sequence"] = json.dumps([str(commit if commit is not None else lsn - 1), str(lsn)])
    payload = {"before": row if op == "d" else None, "after": None if op == "d" else row, "op": op,
               "source": source}  # fmt: skip
    key = {
        "schema": {"type": "struct", "fields": [{"type": "int64", "field": "id"}]},
        "payload": {"id": row["id"]},
    }
    return json.dumps(key), json.dumps({"schema": {"type": "struct", "fields": images}, "payload": payload})


def batch(records: list[tuple[str, str]], first_offset: int = 0) -> list[Any]:
    return [
        (decode_record(k, v), Origin("app.users:0", first_offset + i)) for i, (k, v) in enumerate(records)
    ]


def rows(table: Any, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in table.to_pylist()]


T0 = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


STREAM = [
    event("r", {"id": 1, "name": "ann"}, lsn=100, ts_s=10),
    event("r", {"id": 2, "name": "bob"}, lsn=100, ts_s=10),
    event("u", {"id": 1, "name": "anne"}, lsn=150, commit=100, ts_s=20),
    event("d", {"id": 2}, lsn=160, commit=150, ts_s=30),
    event("c", {"id": 2, "name": "bobby"}, lsn=170, commit=150, ts_s=30),  # delete, re-insert: one tx
    event("c", {"id": 3, "name": "cy"}, lsn=180, commit=170, ts_s=40),
]


def test_state_and_history_follow_the_changes(local_settings: Settings) -> None:
    with open_lake(local_settings) as lake:
        report = Applier(lake).apply(batch(STREAM))
        assert (report.applied, report.duplicates, report.commits) == (6, 0, 1)
        assert rows(current_state(lake, "app.users"), "id", "name") == [(1, "anne"), (2, "bobby"), (3, "cy")]
        got = rows(
            history(lake, "app.users"), "id", "version", "op", "name", "valid_from", "valid_to", "is_current"
        )
    assert got == [
        (1, 1, "r", "ann", at(10), at(20), False),
        (1, 2, "u", "anne", at(20), None, True),
        (2, 1, "r", "bob", at(10), at(30), False),
        (2, 2, "d", None, at(30), at(30), False),  # the delete is a version, closed by the re-insert
        (2, 3, "c", "bobby", at(30), None, True),
        (3, 1, "c", "cy", at(40), None, True),
    ]


def test_redelivery_and_resent_events_are_dropped_across_restarts(local_settings: Settings) -> None:
    with open_lake(local_settings) as lake:
        Applier(lake).apply(batch(STREAM))
        again = Applier(lake).apply(batch(STREAM))  # a restarted applier, the same Kafka offsets
        resent = Applier(lake).apply(batch(STREAM[2:], first_offset=50))  # Connect restarted: new offsets
        assert (again.duplicates, again.applied, again.commits) == (6, 0, 0)
        assert (resent.duplicates, resent.applied) == (4, 0)
        assert len(history(lake, "app.users")) == 6


def test_interleaved_transactions_are_ordered_by_commit_not_by_lsn(local_settings: Settings) -> None:
    # Tx B (change at LSN 200) commits before tx A (changes at LSN 100 and 300): Debezium sends B first.
    # Ordering by change LSN would drop A's first change as "already seen" (Materialize's issue #5262).
    stream = [
        event("c", {"id": 1, "name": "b"}, lsn=200, commit=90, ts_s=1),
        event("c", {"id": 2, "name": "a1"}, lsn=100, commit=250, ts_s=2),
        event("u", {"id": 1, "name": "a2"}, lsn=300, commit=250, ts_s=2),
    ]
    with open_lake(local_settings) as lake:
        assert Applier(lake).apply(batch(stream)).applied == 3
        assert rows(current_state(lake, "app.users"), "id", "name") == [(1, "a2"), (2, "a1")]


def test_primary_key_update_moves_the_row(local_settings: Settings) -> None:
    # UPDATE users SET id = 9 WHERE id = 1: a delete of the old key and a create of the new, same LSN.
    stream = [
        event("r", {"id": 1, "name": "ann"}, lsn=100),
        event("d", {"id": 1}, lsn=120, commit=110),
        event("c", {"id": 9, "name": "ann"}, lsn=120, commit=110),
    ]
    with open_lake(local_settings) as lake:
        applier = Applier(lake)
        applier.apply(batch(stream[:2]))
        assert applier.apply(batch(stream[2:], first_offset=2)).applied == 1  # same LSN, later rank: kept
        assert rows(current_state(lake, "app.users"), "id", "name") == [(9, "ann")]


def test_a_repeated_snapshot_read_is_not_a_new_version(local_settings: Settings) -> None:
    with open_lake(local_settings) as lake:
        Applier(lake).apply(batch(STREAM[:3]))
        resnapshot = [
            event("r", {"id": 1, "name": "anne"}, lsn=400),
            event("r", {"id": 2, "name": "bo"}, lsn=400),
        ]
        Applier(lake).apply(batch(resnapshot, first_offset=10))
        got = rows(history(lake, "app.users"), "id", "op", "name", "is_current")
    assert got == [
        (1, "r", "ann", False),
        (1, "u", "anne", True),
        (2, "r", "bob", False),
        (2, "r", "bo", True),
    ]


def test_unchanged_toast_values_are_carried_forward(local_settings: Settings) -> None:
    fields = {"id": {"type": "int64"}, "name": {"type": "string"}, "bio": {"type": "string"}}
    first = [event("c", {"id": 1, "name": "a", "bio": "x" * 9000}, lsn=100, fields=fields)]
    later = [
        event("u", {"id": 1, "name": "b", "bio": UNAVAILABLE}, lsn=200, fields=fields),
        event("u", {"id": 1, "name": "c", "bio": UNAVAILABLE}, lsn=300, fields=fields),
        event("d", {"id": 1}, lsn=400, fields=fields),  # UPDATE ... SET id = 2: the new key's bio is
        event("c", {"id": 2, "name": "c", "bio": UNAVAILABLE}, lsn=400, fields=fields),  # the old key's
    ]
    with open_lake(local_settings) as lake:
        applier = Applier(lake)
        applier.apply(batch(first))
        report = Applier(lake).apply(batch(later, first_offset=1))  # a new process: found in the log
        assert report.unresolved_toast == 0
        assert rows(history(lake, "app.users"), "id", "name", "bio") == [
            (1, "a", "x" * 9000), (1, "b", "x" * 9000), (1, "c", "x" * 9000), (1, None, None),
            (2, "c", "x" * 9000),
        ]  # fmt: skip


def test_schema_evolves_and_narrowing_stops_the_applier(local_settings: Settings) -> None:
    v1 = {"id": {"type": "int64"}, "name": {"type": "string"}, "qty": {"type": "int32"}}
    v2 = {"id": {"type": "int64"}, "qty": {"type": "int64"}, "note": {"type": "string"}}  # name dropped
    v3 = {"id": {"type": "int64"}, "qty": {"type": "int32"}, "note": {"type": "string"}}  # qty narrowed back
    with open_lake(local_settings) as lake:
        applier = Applier(lake)
        applier.apply(batch([event("c", {"id": 1, "name": "a", "qty": 5}, lsn=100, fields=v1)]))
        report = applier.apply(
            batch([event("u", {"id": 1, "qty": 2**40, "note": "big"}, lsn=200, fields=v2)], 1)
        )
        assert sorted(report.schema_changes) == [
            "app.users.name: dropped in the source", "app.users.note: added (string)",
            "app.users.qty: int32 → int64",
        ]  # fmt: skip
        assert current_state(lake, "app.users").to_pylist() == [{"id": 1, "qty": 2**40, "note": "big"}]
        with pytest.raises(SchemaContractError, match=r"app\.users\.qty is now int32 .* int64"):
            applier.apply(batch([event("u", {"id": 1, "qty": 3, "note": "n"}, lsn=300, fields=v3)], 2))
        assert len(history(lake, "app.users")) == 2  # nothing of the refused batch was written


def test_debezium_types_decode_exactly() -> None:
    fields = {
        "id": {"type": "int64"},
        "price": {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2", "connect.decimal.precision": "12"},
        },
        "seen": {"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
        "local": {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        "day": {"type": "int32", "name": "io.debezium.time.Date"},
    }
    price = base64.b64encode((-1250).to_bytes(2, "big", signed=True)).decode()  # -12.50
    row = {"id": 1, "price": price, "seen": "2026-12-01T10:00:00.5Z", "local": 1_000_000, "day": 20_423}
    change = decode_record(*event("c", row, lsn=10, fields=fields))
    assert not isinstance(change, Skipped)
    seen = dt.datetime(2026, 12, 1, 10, 0, 0, 500_000, tzinfo=dt.UTC)
    assert change.row == {
        "id": 1, "price": Decimal("-12.50"), "seen": seen, "local": dt.datetime(1970, 1, 1, 0, 0, 1),
        "day": dt.date(2025, 12, 1),
    }  # fmt: skip
    assert str(change.types["price"]) == "decimal128(12, 2)"


def test_non_row_events_are_counted_not_applied() -> None:
    assert decode_record(b'{"id": 1}', None) == Skipped("tombstone")
    marker = {"status": "END", "id": "571:53195832", "event_count": 2, "data_collections": []}
    assert decode_record(None, json.dumps(marker)) == Skipped("transaction")


def test_replay_reconciles_and_is_idempotent(local_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps({"topic": "cdc.app.users", "partition": 0, "offset": i, "key": k, "payload": v})
             for i, (k, v) in enumerate(STREAM)]  # fmt: skip
    path.write_text("\n".join([*lines, json.dumps({"topic": "cdc.app.users", "key": "{}", "payload": None})]))
    first = replay(local_settings, path)
    second = replay(local_settings, path)
    assert first.status == second.status == "succeeded"
    assert first.counts == {"input": 7, "output": 6, "duplicates": 0, "not_row_changes": 1}
    assert second.counts == {"input": 7, "output": 0, "duplicates": 6, "not_row_changes": 1}


def test_a_bad_line_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"key": STREAM[0][0], "value": STREAM[0][1]}) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: the record's line is not JSON"):
        list(read_events(path))


def test_debeziums_documented_events_replay(local_settings: Settings, tmp_path: Path) -> None:
    # Debezium's own documentation: a create with its schema, then an update and a delete without (their
    # "schema": {}) and without Kafka keys — so the key is named, as `dotjoin cdc replay --key` does.
    folder = require_shared_data("debezium")
    path = tmp_path / "documented.json"
    names = ("pg_doc_L763_create_envelope.json", "pg_doc_L1045_update.json", "pg_doc_L1150_delete.json")
    path.write_text(json.dumps([json.loads((folder / n).read_text()) for n in names]))
    with open_lake(local_settings) as lake:
        events = list(read_events(path, key_columns={"public.customers": ["id"]}))
        assert Applier(lake).apply(events).applied == 3
        got = rows(history(lake, "public.customers"), "id", "op", "first_name", "email", "is_current")
        assert current_state(lake, "public.customers").num_rows == 0
    assert got == [
        (1, "c", "Anne", "annek@noanswer.org", False),
        (1, "u", "Anne Marie", "annek@noanswer.org", False),
        (1, "d", None, None, False),
    ]


def snapshot_read(row: dict[str, Any], *, lsn: int, mark: str) -> tuple[str, str]:
    key, value = event("r", row, lsn=lsn, ts_s=90)
    document = json.loads(value)
    document["payload"]["source"]["snapshot"] = mark
    return key, json.dumps(document)


def test_a_resnapshot_deletes_the_keys_it_no_longer_finds(local_settings: Settings) -> None:
    # The slot was lost; meanwhile id 2 was deleted and id 1 changed. The re-snapshot reads 1 and 3 only.
    again = [snapshot_read({"id": 1, "name": "ann-2"}, lsn=900, mark="first"),
             snapshot_read({"id": 3, "name": "cy"}, lsn=900, mark="last_in_data_collection")]  # fmt: skip
    with open_lake(local_settings) as lake:
        Applier(lake).apply(batch(STREAM))
        report = Applier(lake).apply(batch(again, first_offset=100))
        assert (report.applied, report.snapshot_deletes) == (2, 1)
        assert rows(current_state(lake, "app.users"), "id", "name") == [(1, "ann-2"), (3, "cy")]
        got = rows(history(lake, "app.users"), "id", "op", "name", "valid_from")
    assert [g for g in got if g[0] == 2][-1] == (2, "d", None, at(90))  # deleted as of the re-snapshot
    assert [g for g in got if g[0] == 3] == [(3, "c", "cy", at(40))]  # unchanged: no new version


def test_the_recorded_debezium_stream_replays_to_its_journal(local_settings: Settings) -> None:
    # A real recording (Debezium 3.6.1, the workload with seed 42): every kind of change, TOASTed bios
    # left unchanged by updates, key updates, multi-table transactions; its journal is the truth.
    from dotjoin.simulate.cdc_recording import EVENTS, JOURNAL, TABLES

    report = replay(local_settings, EVENTS, journal=JOURNAL)
    assert report.status == "succeeded", [c for c in report.checks if not c.passed]
    assert [c.name for c in report.checks][2:] == [f"cdc verify {t}" for t in TABLES]
    assert report.counts["duplicates"] == 0 and report.counts["output"] > 100


def test_compacted_and_expired_change_logs_keep_their_positions(local_settings: Settings) -> None:
    # Compaction rewrites a log's many small appends; the applier's positions (snapshot properties) must
    # survive it and the expiry of the old snapshots, or a replay would apply everything a second time.
    from dotjoin.pipelines.cdc.applier import PREFIX
    from dotjoin.pipelines.lakehouse.ops import compact
    from dotjoin.simulate.cdc_recording import EVENTS, JOURNAL

    first = replay(local_settings, EVENTS, journal=JOURNAL, batch_rows=10)  # many commits: many files
    with open_lake(local_settings) as lake:
        logs = lake.list_tables("raw")
        before = {log: (lake.last_properties(log, PREFIX), lake.scan(log).num_rows) for log in logs}
        for log in logs:
            result = compact(lake, log)
            assert result["files_after"] < result["files_before"]
            lake.expire_snapshots(log, older_than=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
            assert len(lake.snapshots(log)) == 1
        after = {log: (lake.last_properties(log, PREFIX), lake.scan(log).num_rows) for log in logs}
    assert after == before
    again = replay(local_settings, EVENTS, journal=JOURNAL)
    assert again.status == "succeeded", [c for c in again.checks if not c.passed]
    assert again.counts["output"] == 0 and again.counts["duplicates"] == first.counts["output"]


def test_the_applier_keeps_its_logs_small_as_it_commits(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without upkeep every append costs more than the last (each keeps every snapshot and manifest): the
    # applier compacts a log's tail every COMPACT_EVERY commits, all of it every FULL_EVERY compactions,
    # and expires old snapshots; the journal must still reconcile, and a replay must still be a no-op.
    from dotjoin.pipelines.cdc import applier
    from dotjoin.simulate.cdc_recording import EVENTS, JOURNAL

    monkeypatch.setattr(applier, "COMPACT_EVERY", 4)
    monkeypatch.setattr(applier, "FULL_EVERY", 3)
    monkeypatch.setattr(applier, "KEEP_SNAPSHOTS", 2)
    first = replay(local_settings, EVENTS, journal=JOURNAL, batch_rows=3)
    assert first.status == "succeeded", [c for c in first.checks if not c.passed]
    with open_lake(local_settings) as lake:
        logs = lake.list_tables("raw")
        states = {log: applier.TableState.from_properties(lake.last_properties(log, applier.PREFIX))
                  for log in logs}  # fmt: skip
        assert all(state.compacted > 0 for state in states.values()), states
        for log in logs:  # since the last upkeep at most COMPACT_EVERY commits, a file each
            commits = len([s for s in lake.snapshots(log) if s.operation == "append"])
            files = lake.plan(log).total_files
            assert files <= 2 * 1 + 4 and commits <= 2 * 4 + 2, (log, files, commits)
            assert states[log].compacted <= states[log].pos
    again = replay(local_settings, EVENTS, journal=JOURNAL)
    assert again.status == "succeeded", [c for c in again.checks if not c.passed]
    assert again.counts["output"] == 0 and again.counts["duplicates"] == first.counts["output"]
