"""Pure cleaning functions of the CSV ETL: timestamps, money, integers, hashes, dedup, and the rules.

The grammars are checked against the reference implementation of FORMATS.md that the generator's
tests use (test_csv_generator.py) on generated values, hand-picked edge cases and random strings.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotjoin.pipelines.csv_etl.cleaning_commits import clean_commits
from dotjoin.pipelines.csv_etl.cleaning_retail import RATE, Reference, clean_sales, guest_id
from dotjoin.pipelines.csv_etl.dedup import FirstSeen
from dotjoin.pipelines.csv_etl.money import parse_discounts, parse_prices
from dotjoin.pipelines.csv_etl.transforms import hash128
from dotjoin.platform.files.convert import Converted
from dotjoin.platform.files.types import parse_dates, parse_integers, parse_timestamps, squeeze, trim
from dotjoin.simulate.csv_etl import dirt
from tests.unit.pipelines.test_csv_generator import parse_discount, parse_money, parse_ts

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _epochs(values: list[str]) -> list[int | None]:
    return [None if t is None else int(t.timestamp()) for t in parse_timestamps(pa.array(values)).to_pylist()]


# -- timestamps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2024-03-05T10:11:12Z", 1709633472),
        ("2024-03-05 10:11:12Z", 1709633472),
        ("2024-03-05T15:56:12+05:45", 1709633472),
        ("2024-03-05T05:11:12-05:00", 1709633472),
        ("Tue, 05 Mar 2024 11:11:12 +0100", 1709633472),
        ("1709633472", 1709633472),
        ("999999999", 999999999),
        ("05/03/2024 10:11", 1709633460),
        ("2024-02-29T00:00:00Z", 1709164800),
        ("2023-02-29T00:00:00Z", None),
        ("2024-03-05T24:00:00Z", None),
        ("2024-03-05T10:11:60Z", None),
        ("2024-03-05T10:11:12+24:00", None),
        ("Tue, 05 Mar 2024 10:11:12 +0160", None),
        ("Xyz, 05 Mar 2024 10:11:12 +0000", None),
        ("31/13/2024 10:00", None),
        ("00/12/2024 10:00", None),
        ("0000-00-00 00:00:00", None),
        ("2024-03-05T10:11:12.5Z", None),
        ("12345678", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_timestamp_formats_to_utc(text: str, epoch: int | None) -> None:
    assert _epochs([text]) == [epoch] == [parse_ts(text)]


def test_timestamps_agree_with_the_reference_on_generated_and_mutated_values() -> None:
    rng = random.Random(11)
    values = list(dirt.BAD_TIMESTAMPS)
    for _ in range(5000):
        ts = rng.randint(0, 2**33)
        ts -= ts % 60 if rng.random() < 0.3 else 0
        values.append(dirt.render_ts(rng, ts, rng.choice([*dirt.TS_FORMATS, "iso_z"]))[0])
    for _ in range(5000):  # one digit changed: impossible dates and times must not parse
        chars = list(rng.choice(values))
        i = rng.randrange(len(chars))
        if chars[i].isdigit():
            chars[i] = str(rng.randint(0, 9))
        values.append("".join(chars))
    assert _epochs(values) == [parse_ts(v) for v in values]


def test_dates() -> None:
    assert parse_dates(pa.array(["2024-12-31", "2024-02-30", "24-01-01", ""])).to_pylist() == [
        datetime(2024, 12, 31).date(),
        None,
        None,
        None,
    ]


# -- numbers and money --------------------------------------------------------------------------------


def test_integers() -> None:
    assert parse_integers(
        pa.array(["12", "+3", "-0", "007", "1.5", "1,5", "NaN", "", " 1", "1" * 19])
    ).to_pylist() == [12, 3, 0, 7, None, None, None, None, None, None]


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("$1,234.50", "1234.50", "USD"),
        ("1.234,50 €", "1234.50", "EUR"),
        ("1\u00a0234,50\u00a0€", "1234.50", "EUR"),
        ("USD 12", "12", "USD"),
        ("12 USD", "12", "USD"),
        ("US$7", "7", "USD"),
        ("R$ 1.234,56", "1234.56", "BRL"),
        ("₹1,23,456.50", "123456.50", "INR"),
        ("¥1,200", "1200", "JPY"),
        ("1200円", "1200", "JPY"),
        ("12,5", "12.5", None),
        ("1.234", "1234", None),
        ("12", "12", None),
        ("EUR 1 USD", None, None),
        ("1O.50", None, None),
        ("#VALUE!", None, None),
        ("$", None, None),
        ("12;50", None, None),
    ],
)
def test_money_by_locale(text: str, amount: str | None, currency: str | None) -> None:
    price, marker = parse_prices(pa.array([text]))
    value = price.to_pylist()[0]
    assert (None if value is None else value.normalize(), marker.to_pylist()[0]) == (
        None if amount is None else Decimal(amount).normalize(),
        currency,
    )
    expected = parse_money(text)
    assert (value is None) == (expected is None)


def test_money_agrees_with_the_reference_on_every_locale_style_and_random_text() -> None:
    rng = random.Random(3)
    values = list(dirt.BAD_AMOUNTS)
    for currency, styles in dirt.MONEY_STYLES.items():
        for style in styles:
            for _ in range(40):
                amount = Decimal(f"{rng.random() * 10 ** rng.randint(0, 7):.2f}")
                values.append(dirt.money_styled(amount, currency, style))
    alphabet = "0123456789.,$€ £UuSsDdE\u00a0R"
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(5000)]
    price, marker = parse_prices(pa.array(values))
    for text, p, m in zip(values, price.to_pylist(), marker.to_pylist(), strict=True):
        expected = parse_money(text)
        assert (p, m) == ((None, None) if expected is None else expected), text


def test_discounts() -> None:
    values = ["", "10%", "0.25", "12.5%", "100%", "ten%", "N/A", "-", "abc", "-5%", "1e2"]
    got = parse_discounts(trim(pa.array(values))).to_pylist()
    assert got == [parse_discount(v) for v in values]
    assert got[:5] == [0, Decimal("0.10"), Decimal("0.25"), Decimal("0.125"), Decimal(1)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,%- ", max_size=8))
def test_discounts_agree_with_the_reference(text: str) -> None:
    assert parse_discounts(trim(pa.array([text]))).to_pylist() == [parse_discount(text)]


# -- text, hashes, reasons, dedup ----------------------------------------------------------------------


def test_whitespace_normalisation() -> None:
    assert trim(pa.array(["  a b\t", "\u00a0x"])).to_pylist() == ["a b", "\u00a0x"]
    assert squeeze(pa.array(["  Ada \t  Lovelace "])).to_pylist() == ["Ada Lovelace"]


def test_hashes_are_stable_and_distinct() -> None:
    digests = hash128(pa.array(["apache/spark/" + "a" * 40, "apache/spark/" + "a" * 40, "x"]))
    assert digests[0] == digests[1] != digests[2]
    assert digests[0].as_py().hex() == hash128(pa.array(["apache/spark/" + "a" * 40]))[0].as_py().hex()


def test_the_first_reason_in_precedence_wins() -> None:
    converted = Converted(
        pa.table({"x": [1, 2, 3]}), [("no_fx_rate", "sold_at", np.array([True, True, False]))]
    )
    converted.add("ragged_row", "", np.array([True, False, False]))
    converted.add("bad_amount", "unit_price", np.array([False, True, False]))
    assert converted.reason == ["ragged_row", "bad_amount", None]
    assert converted.detail == ["", "unit_price", None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=200), st.integers(1, 50))
def test_first_seen_is_exact_across_chunks(keys: list[int], chunk: int) -> None:
    seen, expected = FirstSeen(), dict[int, int]()
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        lines = np.arange(start, start + len(part)) + 2
        got = seen.add(hash128(pa.array([str(k) for k in part])), lines).tolist()
        for key, line, first in zip(part, lines.tolist(), got, strict=True):
            assert first == expected.get(key, -1)
            expected.setdefault(key, line)
    assert len(seen) == len(expected)


# -- the dataset rules ---------------------------------------------------------------------------------

SHA = "a" * 40


def commit(**overrides: str) -> dict[str, str]:
    row = {
        "repo": "apache/spark", "sha": SHA, "author_name": "Ada", "author_email": "ada@x.org",
        "authored_at": "2024-03-05T10:11:12Z", "committer_name": "Ada",
        "committed_at": "2024-03-05T10:11:12Z",
        "message": "Fix", "parents": "b" * 40, "additions": "1", "deletions": "2",
    }  # fmt: skip
    return row | overrides


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"repo": " "}, "missing_field"),
        ({"sha": "abc"}, "bad_sha"),
        ({"parents": "b" * 40 + " " + "c" * 7}, "bad_sha"),
        ({"authored_at": "N/A"}, "bad_timestamp"),
        ({"additions": "1.5"}, "bad_number"),
        ({"committed_at": "2099-01-01T00:00:00Z"}, "future_timestamp"),
        ({"deletions": "-1"}, "negative_count"),
        ({"sha": "abc", "authored_at": "N/A"}, "bad_sha"),
        ({"deletions": "-1", "committed_at": "nope"}, "bad_timestamp"),
        ({"additions": "x", "committed_at": "2099-01-01T00:00:00Z"}, "bad_number"),
    ],
)
def test_commit_rules_and_precedence(overrides: dict[str, str], reason: str) -> None:
    out = clean_commits(pa.Table.from_pylist([commit(), commit(**overrides)]), now=NOW)
    assert [r[:2] for r in out.rejected] == [(1, reason)]
    assert out.index.tolist() == [0]


def test_near_duplicate_commits_normalise_to_the_same_content() -> None:
    original = commit(parents="b" * 40 + " " + "c" * 40)
    near = commit(
        repo=" Apache/Spark ", sha=SHA.upper(), author_email="ADA@X.ORG ", author_name="  Ada ",
        authored_at="Tue, 05 Mar 2024 11:11:12 +0100", parents=("B" * 40 + "\t" + "c" * 40),
    )  # fmt: skip
    out = clean_commits(pa.Table.from_pylist([original, near]), now=NOW)
    rows = out.rows.to_pylist()
    assert out.keys.to_pylist() == ["apache/spark/" + SHA] * 2
    assert out.key_hashes[0] == out.key_hashes[1]
    assert rows[0] == rows[1] and rows[0]["is_merge"] and rows[0]["parent_count"] == 2


def test_a_changed_commit_has_another_content_hash() -> None:
    out = clean_commits(pa.Table.from_pylist([commit(), commit(additions="9")]), now=NOW)
    assert out.key_hashes[0] == out.key_hashes[1]
    assert out.rows.column("content_hash")[0] != out.rows.column("content_hash")[1]


REF = Reference(
    stores=pa.array(["US-NYC-01", "DE-BER-01"]),
    store_currency=pa.array(["USD", "EUR"]),
    skus=pa.array(["SKU-00001"]),
    fx={
        "USD": (np.array([19723]), pa.array([Decimal(1)], RATE)),
        "EUR": (np.array([19723, 19724]), pa.array([Decimal("1.08"), Decimal("1.10")], RATE)),
    },
)  # 19723 = 2024-01-01


def sale(**overrides: str) -> dict[str, str]:
    row = {
        "invoice_id": "INV-1", "line_no": "1", "sold_at": "2024-01-02T10:00:00Z", "store_code": "DE-BER-01",
        "sku": "SKU-00001", "customer_id": "C1", "quantity": "2", "unit_price": "10.00", "currency": "EUR",
        "discount": "",
    }  # fmt: skip
    return row | overrides


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"unit_price": ""}, "missing_field"),
        ({"sold_at": "N/A"}, "bad_timestamp"),
        ({"quantity": "two"}, "bad_number"),
        ({"unit_price": "TBD"}, "bad_amount"),
        ({"discount": "ten%"}, "bad_amount"),
        ({"sold_at": "2099-01-01T00:00:00Z"}, "future_timestamp"),
        ({"quantity": "0"}, "non_positive_quantity"),
        ({"store_code": "XX-TST-00"}, "unknown_store"),
        ({"sku": "SKU-99999"}, "unknown_sku"),
        ({"currency": "CHF"}, "unknown_currency"),
        ({"sold_at": "2023-12-31T23:59:59Z"}, "no_fx_rate"),
        ({"quantity": "-1", "store_code": "XX"}, "non_positive_quantity"),
        ({"sku": "SKU-9", "sold_at": "2023-06-01T00:00:00Z"}, "unknown_sku"),
    ],
)
def test_sale_rules_and_precedence(overrides: dict[str, str], reason: str) -> None:
    out = clean_sales(pa.Table.from_pylist([sale(), sale(**overrides)]), ref=REF, now=NOW)
    assert [r[:2] for r in out.rejected] == [(1, reason)]


def test_sale_imputation_currency_rules_and_exact_usd_amounts() -> None:
    rows = [
        sale(),  # EUR given, rate of 2024-01-02 (1.10)
        sale(invoice_id="inv-2", currency="", unit_price="€12,50", customer_id=""),  # marker names EUR
        sale(invoice_id="INV-3", currency="", unit_price="12.50", store_code="us-nyc-01"),  # store's USD
        sale(
            invoice_id="INV-4",
            currency="usd",
            unit_price="€3",
            discount="10%",
            sold_at="2024-03-01 00:00:00Z",
        ),
    ]
    out = clean_sales(pa.Table.from_pylist(rows), ref=REF, now=NOW)
    got = out.rows.to_pylist()
    assert out.rejected == [] and out.keys.to_pylist() == ["INV-1/1", "INV-2/1", "INV-3/1", "INV-4/1"]
    assert [r["currency"] for r in got] == ["EUR", "EUR", "USD", "USD"]
    assert [r["currency_imputed"] for r in got] == [False, False, True, False]
    assert [r["customer_imputed"] for r in got] == [False, True, False, False]
    assert got[1]["customer_id"] == guest_id("DE-BER-01", "inv-2") and got[1]["customer_id"].startswith(
        "guest-"
    )
    assert [r["amount_usd"] for r in got] == [Decimal("22.0"), Decimal("27.5"), Decimal("25"), Decimal("5.4")]
    assert [str(r["sold_on"]) for r in got] == ["2024-01-02", "2024-01-02", "2024-01-02", "2024-03-01"]


def test_first_seen_stays_exact_with_many_unmerged_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from dotjoin.pipelines.csv_etl import dedup

    monkeypatch.setattr(dedup, "MAX_RUN", 16)
    rng = random.Random(8)
    keys = [rng.randrange(400) for _ in range(3000)]
    seen, expected = FirstSeen(), dict[int, int]()
    for start in range(0, len(keys), 37):
        part = keys[start : start + 37]
        lines = np.arange(start, start + len(part))
        got = seen.add(hash128(pa.array([str(k) for k in part])), lines).tolist()
        for key, line, first in zip(part, lines.tolist(), got, strict=True):
            assert first == expected.get(key, -1)
            expected.setdefault(key, line)
    assert len(seen) == len(expected) and len(seen._runs) > 5
