"""The payments contract: the JSON Schemas and the fast parser make the same decision, case by case.

The schemas are validated with ``jsonschema`` (in requirements/dev.lock). Two things it needs told:
numbers are read as decimals (``multipleOf: 0.01`` on floats rejects 19.99 in any float-based
validator), and ``format: date-time`` is only asserted with a checker — ``rfc3339-validator`` is not in
the lock, so this test registers its own (strict RFC 3339 parsing of the shape the pattern allows).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotjoin.pipelines.payments import contract
from dotjoin.pipelines.payments.contract import (
    PAYMENT_FIELDS,
    ContractError,
    Label,
    Merchant,
    Payment,
    parse_label,
    parse_payment,
)
from dotjoin.simulate.payments import generate
from dotjoin.simulate.payments.stream import MALFORMED_KINDS

START = datetime(2026, 12, 1, 10, tzinfo=UTC)
BASE: dict[str, Any] = {
    "event_id": "e-1",
    "event_time": "2026-12-01T10:00:00.123Z",
    "schema_version": 1,
    "card_id": "c-1",
    "customer_id": "u-1",
    "merchant_id": "m-1",
    "amount": 19.99,
    "currency": "EUR",
    "channel": "ecom",
    "device_id": "dv-1",
    "latitude": 38.7223,
    "longitude": -9.1393,
    "country": "PT",
}


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _decimal_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    return True


def _validator(name: str) -> jsonschema.Draft202012Validator:
    text = files("dotjoin.pipelines.payments").joinpath("contract", f"{name}.v1.schema.json").read_text()
    schema = _decimal_json(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=_FORMATS)


EVENT = _validator("payment_event")
LABEL = _validator("payment_label")


def _schema_fields(validator: jsonschema.Draft202012Validator, value: bytes) -> set[str]:
    """The fields the schema flags in ``value`` (empty when it validates); ``value`` for non-JSON."""
    try:
        instance = _decimal_json(value)
    except (ValueError, UnicodeDecodeError):
        return {"value"}
    flagged: set[str] = set()
    for error in validator.iter_errors(instance):
        if error.absolute_path:
            flagged.add(str(error.absolute_path[0]))
        elif error.validator == "required":
            flagged.update(f for f in error.validator_value if f not in instance)
        elif error.validator == "additionalProperties":
            flagged.update(k for k in instance if k not in validator.schema["properties"])
        else:
            flagged.add("value")
    return flagged


def _with(**changes: Any) -> bytes:
    obj = {**BASE, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not _DROP}, ensure_ascii=False).encode()


_DROP = object()

VALID_CASES: dict[str, bytes] = {
    "base": _with(),
    "integer amount": _with(amount=100),
    "one cent": _with(amount=0.01),
    "big amount": _with(amount=999999999999.99),
    "pos without device": _with(channel="pos", device_id=None),
    "atm": _with(channel="atm", device_id=None),
    "ecom, device unknown": _with(device_id=None),
    "poles and antimeridian": _with(latitude=90, longitude=-180),
    "epoch": _with(event_time="1970-01-01T00:00:00.000Z"),
    "leap day": _with(event_time="2028-02-29T23:59:59.999Z"),
    "version as 1.0": _with(schema_version=1.0),
    "unicode ids": _with(card_id="卡-1", merchant_id="Café"),
}
MALFORMED_CASES: dict[str, bytes] = {
    "empty": b"",
    "cut off": _with()[:40],
    "not utf-8": b'{"event_id": "\xff"}',
    "array": b"[1, 2]",
    "null": b"null",
    "NaN amount": _with().replace(b"19.99", b"NaN"),
    "infinite latitude": _with().replace(b"38.7223", b"1e400"),
    "trailing garbage": _with() + b"x",
    **{f"missing {f}": _with(**{f: _DROP}) for f in PAYMENT_FIELDS},
    "extra field": _with(ip="10.0.0.1"),
    "event_id number": _with(event_id=123),
    "event_id empty": _with(event_id=""),
    "event_id too long": _with(event_id="e" * 129),
    "event_time with space": _with(event_time="2026-12-01 10:00:00.123Z"),
    "event_time without ms": _with(event_time="2026-12-01T10:00:00Z"),
    "event_time with offset": _with(event_time="2026-12-01T10:00:00.123+00:00"),
    "event_time microseconds": _with(event_time="2026-12-01T10:00:00.123456Z"),
    "event_time 30 February": _with(event_time="2026-02-30T10:00:00.000Z"),
    "event_time hour 24": _with(event_time="2026-12-01T24:00:00.000Z"),
    "event_time arabic digits": _with(event_time="2026-12-01T10:00:00.\u0661\u0662\u0663Z"),
    "event_time number": _with(event_time=1796119200123),
    "schema_version 2": _with(schema_version=2),
    "schema_version string": _with(schema_version="1"),
    "schema_version true": _with(schema_version=True),
    "card_id null": _with(card_id=None),
    "card_id too long": _with(card_id="c" * 65),
    "customer_id list": _with(customer_id=["u"]),
    "merchant_id empty": _with(merchant_id=""),
    "amount abc": _with(amount="abc"),
    "amount negative": _with(amount=-5),
    "amount zero": _with(amount=0),
    "amount three decimals": _with(amount=12.345),
    "amount true": _with(amount=True),
    "amount 1e12": _with(amount=1e12),
    "amount null": _with(amount=None),
    "currency lower case": _with(currency="eur"),
    "currency two letters": _with(currency="EU"),
    "currency newline": _with(currency="EUR\n"),
    "currency umlaut": _with(currency="ÜSD"),
    "currency number": _with(currency=978),
    "channel web": _with(channel="web"),
    "channel upper case": _with(channel="POS", device_id=None),
    "channel null": _with(channel=None),
    "pos with device": _with(channel="pos"),
    "atm with device": _with(channel="atm"),
    "device empty": _with(device_id=""),
    "device number": _with(device_id=5),
    "latitude 91": _with(latitude=91),
    "latitude string": _with(latitude="38.7"),
    "longitude -180.5": _with(longitude=-180.5),
    "longitude null": _with(longitude=None),
    "country lower case": _with(country="pt"),
    "country alpha-3": _with(country="PRT"),
    "country digit": _with(country="P1"),
}


@pytest.mark.parametrize("name", VALID_CASES)
def test_valid_cases_pass_both_the_schema_and_the_parser(name: str) -> None:
    value = VALID_CASES[name]
    assert _schema_fields(EVENT, value) == set()
    payment = parse_payment(value)
    assert parse_payment(payment.to_json()) == payment


@pytest.mark.parametrize("name", MALFORMED_CASES)
def test_malformed_cases_fail_both_and_the_parser_names_a_field_the_schema_flags(name: str) -> None:
    value = MALFORMED_CASES[name]
    flagged = _schema_fields(EVENT, value)
    with pytest.raises(ContractError) as caught:
        parse_payment(value)
    assert flagged, f"the schema accepts {value!r}"
    assert caught.value.field in flagged
    assert "\n" not in str(caught.value) and str(caught.value).startswith(caught.value.field + ": ")


def _outcome(parse: Any, value: bytes) -> object:
    try:
        return parse(value)
    except ContractError as exc:
        return ("rejected", str(exc))


@pytest.mark.parametrize("name", [*VALID_CASES, *MALFORMED_CASES])
def test_the_fast_path_decides_as_the_checks_do(name: str) -> None:
    value = {**VALID_CASES, **MALFORMED_CASES}[name]
    assert _outcome(parse_payment, value) == _outcome(contract._parse_checked, value)


_ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=70), st.sampled_from(["pos", "ecom", "atm", "EUR", "PT", "2026-12-01T10:00:00.000Z"]),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(changes=st.dictionaries(st.sampled_from([*PAYMENT_FIELDS, "extra"]), _ODD_VALUES | st.just(_DROP),
                               max_size=3))  # fmt: skip
def test_the_fast_path_is_never_more_lenient_than_the_checks(changes: dict[str, Any]) -> None:
    """The typed decode accepts a message only where the hand-written checks accept the same payment,
    and every refusal carries the checks' error (the first bad field in contract order)."""
    value = _with(**changes)
    assert _outcome(parse_payment, value) == _outcome(contract._parse_checked, value)


def test_simulator_events_agree_with_the_schema_and_round_trip_byte_for_byte() -> None:
    sim = generate(seed=5, eps=50, duration_s=20, start=START, fraud_rate=0.05)
    messages = list(sim)
    valid = [m for m in messages if m.defect not in MALFORMED_KINDS]
    malformed = [m for m in messages if m.defect in MALFORMED_KINDS]
    assert len(valid) >= 300 and any(m.label for m in valid)
    for m in valid:
        assert _schema_fields(EVENT, m.value) == set(), m.value
        payment = parse_payment(m.value)
        assert payment.to_json() == m.value
        assert (payment.event_id, payment.event_time_ms) == (m.event_id, m.event_time_ms)
    for m in malformed:
        with pytest.raises(ContractError) as caught:
            parse_payment(m.value)
        assert caught.value.field in _schema_fields(EVENT, m.value)
        assert _outcome(parse_payment, m.value) == _outcome(contract._parse_checked, m.value)


def test_labels_validate_and_round_trip() -> None:
    label = Label("e-1", "card_testing", "card_testing-1")
    assert _schema_fields(LABEL, label.to_json()) == set()
    assert parse_label(label.to_json()) == label
    for bad in (
        b'{"event_id": "e-1", "typology": "phishing", "scenario_id": "s"}',
        b'{"event_id": "e-1", "typology": "stealthy"}',
        b'{"event_id": "", "typology": "stealthy", "scenario_id": "s"}',
        b'{"event_id": "e-1", "typology": "stealthy", "scenario_id": "s", "x": 1}',
    ):
        with pytest.raises(ContractError) as caught:
            parse_label(bad)
        assert caught.value.field in _schema_fields(LABEL, bad)
    assert set(EVENT.schema["properties"]) == set(PAYMENT_FIELDS)
    assert LABEL.schema["properties"]["typology"]["enum"] == list(contract.TYPOLOGIES)


def test_event_time_round_trips_and_the_second_cache_keeps_milliseconds() -> None:
    for ms in (0, 1, 999, 1796119200123, 1796119200999, 1835395199999, -1):
        text = contract.format_event_time(ms)
        assert len(text) == 24 and contract.parse_event_time(text) == ms
    assert contract.parse_event_time("2026-12-01T10:00:00.001Z") + 998 == contract.parse_event_time(
        "2026-12-01T10:00:00.999Z"
    )
    expected = int(datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp() * 1000) + 123
    assert parse_payment(_with()).event_time_ms == expected


def test_merchants_table_rows_round_trip_and_bad_rows_name_the_column() -> None:
    m = Merchant("m-1", "Corner Grocer Lisbon", "grocery", "PT", 38.72, -9.14, 0.05)
    assert Merchant.from_row(m.to_row()) == m
    assert tuple(m.to_row()) == contract.MERCHANT_COLUMNS
    for column, value in (("risk", "1.5"), ("latitude", "north"), ("country", "Portugal"), ("name", "")):
        with pytest.raises(ContractError) as caught:
            Merchant.from_row({**m.to_row(), column: value})
        assert caught.value.field == column
    assert set(contract.HIGH_RISK_CATEGORIES) <= set(contract.CATEGORY_MCC)


def test_topic_names() -> None:
    assert (contract.TOPIC_PAYMENTS, contract.TOPIC_LABELS, contract.TOPIC_ALERTS, contract.TOPIC_DLQ) == (
        "payments",
        "payments.labels",
        "alerts",
        "payments.dlq",
    )
    assert contract.schema("payment_event")["$id"].endswith(":v1")


def test_parser_is_fast_enough_for_the_detector() -> None:
    """The detector must sustain 20,000 events/s on 2 cores, parsing included: parsing alone takes a
    small share of that budget (about 2 microseconds a message here; the bound leaves room for a
    loaded machine)."""
    values = [m.value for m in generate(seed=2, eps=200, duration_s=25, start=START) if m.defect is None]
    best = 0.0
    for _ in range(3):
        began = time.perf_counter()
        for v in values:
            parse_payment(v)
        best = max(best, len(values) / (time.perf_counter() - began))
    assert best > 40_000, f"{best:,.0f} messages/s"


def test_payment_is_frozen_and_slotted() -> None:  # a msgspec struct: slots, no __dict__
    p = parse_payment(_with())
    with pytest.raises(AttributeError):
        p.amount = 1.0  # type: ignore[misc]
    assert not hasattr(p, "__dict__") and isinstance(p, Payment) and p.schema_version == 1
