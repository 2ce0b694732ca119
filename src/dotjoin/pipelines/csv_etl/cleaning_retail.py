"""Cleaning rules of the retail dataset (``FORMATS.md``), vectorised over a chunk of sales lines.

The columns, types, formats and rules are declared in ``schemas/sales.yaml`` and applied by the
platform's typed conversion; this module is the plug-in for money, references, imputation and the USD
amount. Every field is trimmed of spaces and tabs. Defects, in precedence order (a line is quarantined
for the first one it has):

=======================  =========================================================================
missing_field            invoice_id, line_no, sold_at, store_code, sku, quantity or unit_price empty
bad_timestamp            sold_at in no supported format
bad_number               line_no or quantity not an integer
bad_amount               unit_price not money in a supported locale style, or discount not a discount
future_timestamp         sold_at at or after the run's reference time
non_positive_quantity    quantity <= 0
unknown_store            store_code (any case) not in stores.csv
unknown_sku              sku (any case) not in products.csv
unknown_currency         the sale's currency has no rates in fx_rates.csv
no_fx_rate               no rate for the currency on or before the sale's UTC date
=======================  =========================================================================

Currency of a sale: the ``currency`` field (upper case), else the marker of ``unit_price`` (``€``,
``USD``...), else — imputed, ``currency_imputed`` — the currency of the sale's store. A missing
``customer_id`` is imputed with :func:`guest_id` (``customer_imputed``). ``amount_usd`` is exact:
``quantity * unit_price * (1 - discount) * rate`` with the rate of the latest fx date on or before the
sale's UTC date, kept to 12 decimals (so sums round like the source). The natural key is
``INVOICE_ID/line_no`` (invoice upper case, line number as an integer).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.pipelines.csv_etl.cleaning_commits import Cleaned, detail
from dotjoin.pipelines.csv_etl.money import DISCOUNT, PRICE, parse_discounts, parse_prices
from dotjoin.pipelines.csv_etl.transforms import HASH, hash128, joined
from dotjoin.platform.files.convert import convert
from dotjoin.platform.files.schema import load_schema
from dotjoin.platform.files.types import UTC_US, is_empty, trim

logger = logging.getLogger(__name__)

RATE = pa.decimal128(16, 10)
AMOUNT = pa.decimal128(38, 12)
#: The declared columns, types, formats and rules (schemas/sales.yaml); the code here is the plug-in.
SALES = load_schema(Path(__file__).with_name("schemas") / "sales.yaml").table
_MAX_QUANTITY = 10**12
_MAX_AMOUNT = Decimal(10) ** 26

SCHEMA = pa.schema(
    [
        pa.field("invoice_id", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
        pa.field("sold_at", UTC_US, nullable=False),
        pa.field("sold_on", pa.date32(), nullable=False),
        pa.field("store_code", pa.string(), nullable=False),
        pa.field("sku", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("customer_imputed", pa.bool_(), nullable=False),
        pa.field("quantity", pa.int64(), nullable=False),
        pa.field("unit_price", PRICE, nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("currency_imputed", pa.bool_(), nullable=False),
        pa.field("discount", DISCOUNT, nullable=False),
        pa.field("fx_rate", RATE, nullable=False),
        pa.field("amount_usd", AMOUNT, nullable=False),
        pa.field("content_hash", HASH, nullable=False),
    ]
)


def guest_id(store_code: str, invoice_id: str) -> str:
    """The stable customer id imputed for a sale without one: one guest per store and invoice.

    >>> guest_id("US-NYC-01", "INV-0001")
    'guest-3facdc5cb160'
    >>> guest_id(" us-nyc-01", "inv-0001 ") == guest_id("US-NYC-01", "INV-0001")
    True
    """
    text = f"{store_code.strip().upper()}|{invoice_id.strip().upper()}"
    return "guest-" + hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Reference:
    """The reference data a sale is checked against (from stores.csv, products.csv, fx_rates.csv).

    Attributes:
        stores: store codes (upper case) and, aligned, each store's currency.
        store_currency: the currency of each store in ``stores``.
        skus: product SKUs (upper case).
        fx: per currency, (sorted days since 1970, rates as ``RATE``).
    """

    stores: pa.Array
    store_currency: pa.Array
    skus: pa.Array
    fx: dict[str, tuple[np.ndarray, pa.Array]]

    @property
    def currencies(self) -> pa.Array:
        return pa.array(sorted(self.fx), pa.string())


def _as_of(ref: Reference, currency: pa.Array, day: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """Per row, whether ``currency`` has a rate on or before ``day``, and the latest such rate."""
    n = len(currency)
    found = np.zeros(n, dtype=bool)
    pick = np.zeros(n, dtype=np.int64)
    names = list(ref.fx)
    which = pc.index_in(currency, value_set=pa.array(names, pa.string())).fill_null(-1).to_numpy()
    base = 0
    for code, name in enumerate(names):
        days = ref.fx[name][0]
        rows = np.flatnonzero(which == code)
        if rows.size:
            idx = np.searchsorted(days, day[rows], side="right") - 1
            ok = idx >= 0
            found[rows[ok]] = True
            pick[rows[ok]] = base + idx[ok]
        base += len(days)
    if not base:
        return found, pa.nulls(n, RATE)
    rates = pa.concat_arrays([ref.fx[name][1] for name in names])
    return found, rates.take(pa.array(pick))


def clean_sales(raw: pa.Table, *, ref: Reference, now: datetime) -> Cleaned:
    """Validate, impute and normalise a chunk of sales lines (string columns as read).

    >>> from datetime import UTC
    >>> ref = Reference(pa.array(["US-NYC-01"]), pa.array(["USD"]), pa.array(["SKU-00001"]),
    ...     {"USD": (np.array([19723]), pa.array([Decimal(1)], RATE))})
    >>> chunk = pa.table({
    ...     "invoice_id": ["inv-1", "INV-2"], "line_no": ["1", "1"], "sold_at": ["05/03/2024 10:11"] * 2,
    ...     "store_code": ["us-nyc-01", "US-NYC-01"], "sku": ["SKU-00001", "SKU-99999"],
    ...     "customer_id": ["", "C1"], "quantity": ["2", "1"], "unit_price": ["$1,234.50", "1"],
    ...     "currency": ["", ""], "discount": ["10%", ""]})
    >>> out = clean_sales(chunk, ref=ref, now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> out.keys.to_pylist(), out.rejected
    (['INV-1/1'], [(1, 'unknown_sku', "sku='SKU-99999'")])
    >>> row = out.rows.to_pylist()[0]
    >>> row["amount_usd"], row["currency"], row["customer_id"], row["customer_imputed"]
    (Decimal('2222.100000000000'), 'USD', 'guest-1895fc66d37b', True)
    """
    typed = convert(raw, SALES, reference_time=now)
    t = {name: typed.table.column(name).combine_chunks() for name in typed.table.column_names}
    invoice, store, sku, line_no, quantity, sold_at = (
        t[c] for c in ("invoice_id", "store_code", "sku", "line_no", "quantity", "sold_at")
    )
    # The plug-ins: what a schema cannot say, as defects decided with the schema's by one precedence.
    typed.add("bad_number", "quantity", _true(pc.greater_equal(pc.abs(quantity), _MAX_QUANTITY)))
    price_text = trim(raw.column("unit_price").combine_chunks())
    price, marker = parse_prices(price_text)
    typed.add("bad_amount", "unit_price", ~is_empty(price_text) & _null(price))
    discount = parse_discounts(trim(raw.column("discount").combine_chunks()))
    typed.add("bad_amount", "discount", _null(discount))
    store_known = _true(pc.is_in(store, value_set=ref.stores))
    typed.add("unknown_store", "store_code", ~_null(store) & ~store_known)
    typed.add("unknown_sku", "sku", ~_null(sku) & ~_true(pc.is_in(sku, value_set=ref.skus)))
    given = t["currency"]
    currency = pc.if_else(pc.not_equal(given, ""), given, marker)
    store_cur = ref.store_currency.take(pc.index_in(store, value_set=ref.stores))
    imputed = _null(currency) & store_known
    currency = pc.if_else(pa.array(imputed), store_cur, currency)
    has_currency = ~_null(currency)
    known_cur = _true(pc.is_in(currency, value_set=ref.currencies))
    typed.add("unknown_currency", "currency", has_currency & ~known_cur)
    seconds = pc.cast(sold_at, pa.int64()).fill_null(0).to_numpy() // 1_000_000
    day = np.floor_divide(seconds, 86400)
    has_rate, rate = _as_of(ref, currency.fill_null(""), day)
    typed.add("no_fx_rate", "sold_at", has_currency & known_cur & ~_null(sold_at) & ~has_rate)

    bad = typed.failed
    rejected = [
        (int(i), str(typed.reason[i]), detail(raw, int(i), str(typed.reason[i]), str(typed.detail[i])))
        for i in np.flatnonzero(bad).tolist()
    ]
    index = np.flatnonzero(~bad)
    take = pa.array(index)
    amount = _amount_usd(quantity.take(take), price.take(take), discount.take(take), rate.take(take))
    too_big = _true(pc.greater_equal(pc.abs(amount), pa.scalar(_MAX_AMOUNT, pa.decimal256(40, 12))))
    if too_big.any():  # beyond the amount_usd column: a bad amount (FORMATS.md, limits)
        for i in np.flatnonzero(too_big).tolist():
            rejected.append((int(index[i]), "bad_amount", "amount_usd out of range"))
        rejected.sort()
        keep = pa.array(~too_big)
        index, take, amount = index[~too_big], pa.array(index[~too_big]), amount.filter(keep)
    customer = t["customer_id"].take(take)
    no_customer = is_empty(customer)
    keys = pc.binary_join_element_wise(invoice.take(take), pc.cast(line_no.take(take), pa.string()), "/")
    columns = {
        "invoice_id": invoice.take(take),
        "line_no": line_no.take(take),
        "sold_at": sold_at.take(take),
        "sold_on": pc.cast(pa.array(day[index].astype(np.int32)), pa.date32()),
        "store_code": store.take(take),
        "sku": sku.take(take),
        "customer_id": _impute_customers(
            customer,
            no_customer,
            trim(raw.column("store_code").combine_chunks()).take(take),
            trim(raw.column("invoice_id").combine_chunks()).take(take),
        ),
        "customer_imputed": pa.array(no_customer),
        "quantity": quantity.take(take),
        "unit_price": price.take(take),
        "currency": currency.take(take),
        "currency_imputed": pa.array(imputed[index]),
        "discount": discount.take(take),
        "fx_rate": rate.take(take),
        "amount_usd": pc.cast(amount, AMOUNT),
    }
    columns["content_hash"] = hash128(joined(list(columns.values())))
    return Cleaned(pa.table(columns, schema=SCHEMA), index, keys, hash128(keys), rejected)


def _amount_usd(quantity: pa.Array, price: pa.Array, discount: pa.Array, rate: pa.Array) -> pa.Array:
    """``quantity * price * (1 - discount) * rate``, exact in decimal256, rounded to 12 decimals.

    >>> price, discount = pa.array([Decimal("19.99")], PRICE), pa.array([Decimal("0.1")], DISCOUNT)
    >>> str(_amount_usd(pa.array([3]), price, discount, pa.array([Decimal("1.08")], RATE))[0])
    '58.290840000000'
    """
    qty = pc.cast(pc.cast(quantity, pa.decimal256(19, 0)), pa.decimal256(12, 0))  # |quantity| < 1e12
    factor = pc.subtract(pa.scalar(Decimal(1), pa.decimal256(1, 0)), pc.cast(discount, pa.decimal256(20, 8)))
    product = pc.multiply(
        pc.multiply(pc.multiply(qty, pc.cast(price, pa.decimal256(24, 6))), factor),
        pc.cast(rate, pa.decimal256(16, 10)),
    )
    return pc.cast(pc.round(product, ndigits=12, round_mode="half_up"), pa.decimal256(40, 12))


def _impute_customers(
    customer: pa.Array, missing: np.ndarray, store: pa.Array, invoice: pa.Array
) -> pa.Array:
    if not missing.any():
        return customer
    values = customer.to_pylist()
    stores, invoices = store.to_pylist(), invoice.to_pylist()
    for i in np.flatnonzero(missing).tolist():
        values[i] = guest_id(stores[i], invoices[i])
    return pa.array(values, pa.string())


def _null(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _true(values: pa.Array) -> np.ndarray:
    return np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
