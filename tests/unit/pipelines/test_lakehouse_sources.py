"""Lakehouse sources, raw landing and parsing: pure logic, no lake, no dbt."""

from __future__ import annotations

import json
import stat
from datetime import date, datetime
from pathlib import Path

import pytest

from dotjoin.exceptions import DataError
from dotjoin.pipelines.lakehouse import raw
from dotjoin.pipelines.lakehouse.parse import CSV_SPECS, parse_csv, parse_iot
from dotjoin.simulate.lakehouse import ecommerce, iot

DAY = date(2026, 1, 1)
KW = {"day": DAY, "source_file": "f", "loaded_at": datetime(2026, 1, 1, 12)}


def _bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_generators_are_deterministic_by_seed(tmp_path: Path) -> None:
    a = ecommerce.generate(tmp_path / "a", days=3, seed=3, start=DAY)
    iot.generate(tmp_path / "a", days=3, seed=3, start=DAY)
    b = ecommerce.generate(tmp_path / "b", days=3, seed=3, start=DAY)
    iot.generate(tmp_path / "b", days=3, seed=3, start=DAY)
    ecommerce.generate(tmp_path / "c", days=3, seed=4, start=DAY)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert a.revenue_cents == b.revenue_cents > 0
    assert _bytes(tmp_path / "a")["orders_2026-01-01.csv"] != _bytes(tmp_path / "c")["orders_2026-01-01.csv"]


def test_ecommerce_has_late_status_updates_and_address_changes(tmp_path: Path) -> None:
    truth = ecommerce.generate(tmp_path, days=3, seed=7, start=DAY)
    day3 = (tmp_path / "orders_2026-01-03.csv").read_text().splitlines()[1:]
    late = [line for line in day3 if not line.split(",")[2].startswith("2026-01-03")]
    assert late and all(line.split(",")[3] != "placed" for line in late)
    assert truth.customer_versions > truth.customers


def test_iot_drifts_part_way_with_strings_and_optional_fields(tmp_path: Path) -> None:
    truth = iot.generate(tmp_path, days=4, seed=7, start=DAY, devices=4)
    first = [json.loads(x) for x in (tmp_path / "iot_2026-01-01.jsonl").read_text().splitlines()]
    last = [json.loads(x) for x in (tmp_path / "iot_2026-01-04.jsonl").read_text().splitlines()]
    assert all("signal_dbm" not in m for m in first) and all("signal_dbm" in m for m in last)
    assert any(isinstance(r["value"], str) for m in first for r in m["readings"])
    assert any("location" not in m["device"] for m in first) and any("battery" not in m for m in first)
    assert truth.duplicate_messages > 0


def test_landing_is_immutable_and_a_redelivery_is_a_no_op(tmp_path: Path) -> None:
    src = tmp_path / "in" / "orders_2026-01-02.csv"
    src.parent.mkdir()
    src.write_text("order_id\n1\n2\n")
    zone = tmp_path / "raw"
    entry, new = raw.land(zone, "ecommerce", src, today=DAY.replace(day=5))
    again, new_again = raw.land(zone, "ecommerce", src, today=DAY.replace(day=5))
    assert (new, new_again) == (True, False) and again == entry
    landed = zone / "ecommerce" / "ingest_date=2026-01-02" / "orders_2026-01-02.csv"
    assert landed.read_bytes() == src.read_bytes() and not landed.stat().st_mode & stat.S_IWUSR
    assert entry.rows == 2 and entry.bytes == len(src.read_bytes())
    assert len((zone / "ecommerce" / raw.MANIFEST).read_text().splitlines()) == 1
    src.write_text("order_id\n1\n")
    with pytest.raises(DataError, match="immutable"):
        raw.land(zone, "ecommerce", src, today=DAY.replace(day=5))


def test_a_future_file_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "iot_2026-02-01.jsonl"
    src.write_text("{}\n")
    with pytest.raises(raw.FutureFileError, match="after the run's day"):
        raw.land(tmp_path / "raw", "iot", src, today=DAY)


def test_csv_missing_column_rejects_every_row_with_a_reason() -> None:
    data = b"order_id,customer_id,order_ts,updated_at\n1,2,2026-01-01T10:00:00,2026-01-01T10:00:00\n"
    parsed = parse_csv(data, CSV_SPECS["orders"], **KW)
    assert parsed.table.num_rows == 0 and parsed.input == 1
    assert [r.reason for r in parsed.rejects] == ["missing_column"] and "status" in parsed.rejects[0].detail


def test_csv_rows_outside_the_file_day_and_short_rows_are_rejected() -> None:
    head = b"order_id,customer_id,order_ts,status,updated_at\n"
    rows = (
        b"1,2,2026-01-01T10:00:00,placed,2026-01-01T10:00:00\n2,2,x\n"
        b"3,2,2026-01-01T10:00:00,placed,2026-01-09T00:00:00\n"
    )
    parsed = parse_csv(head + rows, CSV_SPECS["orders"], **KW)
    assert parsed.table.num_rows == 1
    assert sorted(r.reason for r in parsed.rejects) == ["outside_file_day", "ragged_row"]


def test_csv_bytes_are_repaired_as_cp1252_or_quarantined_never_garbled() -> None:
    head = b"customer_id,name,email,city,address,updated_at\n"
    rows = (
        b'1,Jos\xe9,j@x.io,Lyon,"1 rue X,\nBat. B",2026-01-01T10:00:00\n'  # cp1252, quoted multi-line
        b"2,Bad \x81,b@x.io,Lyon,2 rue Y,2026-01-01T11:00:00\n"  # 0x81 is not cp1252 either
        b"3,Zo\xc3\xab,z@x.io,Lyon,3 rue Z,\n"
    )
    parsed = parse_csv(head + rows, CSV_SPECS["customers"], **KW)
    assert parsed.table.column("name").to_pylist() == ["José"]
    assert parsed.table.column("address").to_pylist() == ["1 rue X,\nBat. B"]
    assert [(r.position, r.reason) for r in parsed.rejects] == [("4", "bad_encoding"), ("5", "missing_field")]
    assert parsed.rejects[0].raw == "2,Bad \\x81,b@x.io,Lyon,2 rue Y,2026-01-01T11:00:00"
    assert parsed.input == 3


def test_csv_header_with_extra_columns_any_order_is_read_by_name() -> None:
    data = (
        b"Status,order_id,note,customer_id,updated_at,order_ts\n"
        b"placed,1,hi,2,2026-01-01T10:00:00,2026-01-01T09:00:00\n"
    )
    parsed = parse_csv(data, CSV_SPECS["orders"], **KW)
    assert parsed.rejects == [] and parsed.table.select(["order_id", "status"]).to_pylist() == [
        {"order_id": 1, "status": "placed"}
    ]


def test_iot_flattens_coerces_and_quarantines_bad_records() -> None:
    good = {
        "device": {"id": "d1", "location": {"lat": "1.5", "lon": 2}},
        "ts": "2026-01-01T00:01:00Z",
        "readings": [{"sensor": "t", "value": "3.5"}, {"sensor": "h", "value": "n/a"}],
        "battery": "80",
    }
    drift = {
        "device": {"id": "d2", "firmware": "2.0"},
        "ts": "2026-01-01T00:02:00Z",
        "readings": [{"sensor": "t", "value": 1}],
        "signal_dbm": -60,
    }
    lines = [json.dumps(good), "{corrupt", json.dumps({"ts": "2026-01-01T00:00:00Z"}), json.dumps(drift)]
    parsed = parse_iot("\n".join(lines).encode(), **KW)
    assert parsed.input == 5  # 3 readings + 2 unreadable messages
    assert sorted(r.reason for r in parsed.rejects) == ["bad_json", "bad_number", "missing_field"]
    rows = {r["device_id"]: r for r in parsed.table.to_pylist()}
    assert (
        rows["d1"]["value"] == 3.5
        and rows["d1"]["device_location_lat"] == 1.5
        and rows["d1"]["battery"] == 80
    )
    assert rows["d1"]["device_firmware"] is None and rows["d2"]["device_firmware"] == "2.0"
    assert rows["d2"]["signal_dbm"] == -60
