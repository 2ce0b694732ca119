"""The retail dataset of the generator: reference files (stores, products, daily fx rates), a clean
stream of invoice lines, their valid dirt, and the defects that make a line quarantined.

The natural key is ``invoice_id/line_no`` (invoice trimmed and upper-cased, line_no an integer).
See the pipeline's ``FORMATS.md`` for every rule.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from decimal import Decimal
from random import Random

from dotjoin.pipelines.csv_etl.config import SALES_FILE
from dotjoin.simulate.csv_etl.dirt import (
    BAD_AMOUNTS,
    BAD_DISCOUNTS,
    BAD_INTEGERS,
    BAD_TIMESTAMPS,
    CHUNK,
    CURRENCY_DECIMALS,
    MONEY_STYLES,
    PERIOD_END,
    PERIOD_START,
    STALE_START,
    TS_FORMATS,
    MoneyStyle,
    Rec,
    future_ts,
    has_marker,
    iso_z,
    money_plain,
    money_styled,
    other_ts_format,
    pad,
    pick,
    render_ts,
    weighted,
)

logger = logging.getLogger(__name__)

HEADER = SALES_FILE.columns  # the documented input format, one definition
INVOICE, LINE_NO, SOLD_AT, STORE, SKU, CUSTOMER, QTY, PRICE, CURRENCY, DISCOUNT = range(10)
CURRENCIES = tuple(CURRENCY_DECIMALS)
_BASE_RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0068, "INR": 0.012, "BRL": 0.19}
DAYS = (PERIOD_END - PERIOD_START) // 86400
_SPAN_MIN = (PERIOD_END - PERIOD_START) // 60

# (store_code, name, country, currency); names with delimiters, quotes and non-ASCII on purpose.
STORES = (
    ("US-NYC-01", "Manhattan Flagship", "US", "USD"),
    ("US-SFO-01", "Union Square", "US", "USD"),
    ("US-CHI-01", "Chicago Loop", "US", "USD"),
    ("US-WEB-01", "Online Store, US", "US", "USD"),
    ("DE-BER-01", "Berlin Mitte", "DE", "EUR"),
    ("DE-MUC-01", "München Marienplatz", "DE", "EUR"),
    ("FR-PAR-01", "Paris, Le Marais", "FR", "EUR"),
    ("ES-MAD-01", "Madrid Sol", "ES", "EUR"),
    ("IT-MIL-01", "Milano Duomo", "IT", "EUR"),
    ("NL-AMS-01", "Amsterdam Centraal", "NL", "EUR"),
    ("IE-DUB-01", "Dublin Grafton Street", "IE", "EUR"),
    ("GB-LON-01", "London Oxford Street", "GB", "GBP"),
    ("GB-MAN-01", "Manchester Arndale", "GB", "GBP"),
    ("JP-TYO-01", "東京 銀座店", "JP", "JPY"),
    ("JP-OSA-01", "大阪 梅田店", "JP", "JPY"),
    ("IN-BLR-01", "Bengaluru MG Road", "IN", "INR"),
    ("IN-DEL-01", "Delhi Connaught Place", "IN", "INR"),
    ("BR-SAO-01", "São Paulo Paulista", "BR", "BRL"),
    ("BR-RIO-01", 'Rio "Centro"', "BR", "BRL"),
)
UNKNOWN_STORES = ("US-LAX-01", "DE-HAM-02", "XX-TST-00", "FR-LYO-01", "GB-EDI-01")
UNKNOWN_CURRENCIES = ("CHF", "SEK", "AUD", "MXN")
# Local UTC offsets (minutes) a store's till may print.
_STORE_OFFSETS = {
    "US": (-300, -240, -480, -420, -360),
    "DE": (60, 120),
    "FR": (60, 120),
    "ES": (60, 120),
    "IT": (60, 120),
    "NL": (60, 120),
    "IE": (0, 60),
    "GB": (0, 60),
    "JP": (540,),
    "IN": (330,),
    "BR": (-180,),
}
_CATEGORIES = ("apparel", "footwear", "electronics", "home", "beauty", "grocery", "toys", "books")
_ADJECTIVES = ("Classic", "Organic", "Wireless", "Compact", "Deluxe", "Vintage", "Everyday", "Smart")
_NOUNS = ("Tee", "Sneaker", "Headphones", "Mug", "Lotion", "Coffee", "Puzzle", "Notebook", "Lamp", "Socks")
_DISCOUNTS = (
    Decimal("0.05"),
    Decimal("0.10"),
    Decimal("0.15"),
    Decimal("0.20"),
    Decimal("0.25"),
    Decimal("0.50"),
)
_ONE = Decimal(1)

VALID_DIRT = (
    ("ts_iso_offset", 2.0),
    ("ts_rfc2822", 1.5),
    ("ts_epoch", 1.0),
    ("ts_dmy", 2.0),
    ("money_locale", 3.0),
    ("cp1252", 1.5),
    ("currency_from_symbol", 1.0),
    ("currency_from_store", 1.0),
    ("discount_percent", 0.7),
    ("discount_empty", 0.5),
    ("padded_whitespace", 1.0),
    ("code_case", 1.0),
    ("quoted_all", 0.7),
)


# Locale styles whose text is non-ASCII but encodable in cp1252 (€, £, ¥, no-break space).
def _cp1252_only(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return not text.isascii()


_CP1252_STYLES = {
    cur: [s for s in styles if _cp1252_only("".join(s[:4]))] for cur, styles in MONEY_STYLES.items()
}
_GUEST_SHARE = 0.3  # of the valid-dirt probability: invoices without a customer id


def guest_id(store_code: str, invoice_id: str) -> str:
    """The imputed customer id of a sale without one.

    >>> guest_id("US-NYC-01", "INV-0001")
    'guest-3facdc5cb160'
    """
    digest = hashlib.sha256(f"{store_code.strip().upper()}|{invoice_id.strip().upper()}".encode()).hexdigest()
    return "guest-" + digest[:12]


class RetailGenerator:
    """Retail: ``sales.csv`` (one row per invoice line) plus stores, products and fx reference files."""

    dataset: str = "retail"
    data_file: str = "sales.csv"
    header: tuple[str, ...] = HEADER
    totals_names: tuple[str, ...] = ("revenue_usd", "quantity", "lines")
    defects: tuple[tuple[str, float], ...] = (
        ("ragged_row", 1.0),
        ("missing_field", 1.0),
        ("bad_timestamp", 1.0),
        ("future_timestamp", 1.0),
        ("bad_number", 0.7),
        ("bad_amount", 1.5),
        ("non_positive_quantity", 1.5),
        ("unknown_store", 1.0),
        ("unknown_sku", 1.0),
        ("unknown_currency", 0.5),
        ("no_fx_rate", 0.5),
        ("precedence", 1.0),
        ("bad_repeat", 0.5),
        ("defect_on_loaded_key", 0.5),
    )
    loaded_key_defects: tuple[str, ...] = (
        "bad_timestamp",
        "future_timestamp",
        "bad_amount",
        "non_positive_quantity",
        "unknown_sku",
    )
    precedence_pairs: tuple[tuple[str, str], ...] = (
        ("non_positive_quantity", "unknown_store"),
        ("bad_timestamp", "bad_amount"),
        ("missing_field", "unknown_sku"),
        ("future_timestamp", "unknown_sku"),
        ("bad_amount", "non_positive_quantity"),
        ("unknown_store", "unknown_sku"),
        ("bad_number", "unknown_currency"),
        ("unknown_sku", "no_fx_rate"),
        ("bad_amount", "ragged_row"),
    )
    duplicates: tuple[tuple[str, float], ...] = (("exact_duplicate", 1.0), ("near_duplicate", 1.5))

    def __init__(self, *, seed: int, dirty_rate: float, valid_share: float) -> None:
        self.seed = seed
        self.valid_p = min(1.0, dirty_rate * valid_share)
        self.tag = hashlib.sha256(str(seed).encode()).hexdigest()[:4].upper()
        rng = Random(f"dotjoin-csv/retail-ref/{seed}")  # noqa: S311 - test data
        self.products: list[tuple[str, str, str, Decimal]] = []
        for n in range(1, 401):
            name = f"{pick(rng, _ADJECTIVES)} {pick(rng, _NOUNS)}"
            if rng.random() < 0.15:
                name += f", {2 + int(rng.random() * 4)}-pack"
            elif rng.random() < 0.05:
                name = f'The "{name}"'
            price = Decimal(f"{2 + rng.random() ** 2 * 400:.2f}")
            self.products.append((f"SKU-{n:05d}", name, pick(rng, _CATEGORIES), price))
        self.rate_text: dict[str, list[str]] = {}
        for cur in CURRENCIES:
            rate, texts = _BASE_RATES[cur], []
            for _ in range(DAYS):
                texts.append(f"{rate:.8f}")
                if cur != "USD":
                    rate *= math.exp(rng.gauss(0, 0.004))
            self.rate_text[cur] = texts
        self.rates = {cur: [Decimal(t) for t in texts] for cur, texts in self.rate_text.items()}

    def reference_files(self) -> dict[str, str]:
        """``stores.csv``, ``products.csv`` and ``fx_rates.csv`` (clean UTF-8, LF, minimal quoting)."""
        return {
            "stores.csv": _csv(("store_code", "name", "country", "currency"), STORES),
            "products.csv": _csv(
                ("sku", "name", "category", "list_price_usd"),
                [(sku, name, cat, str(price)) for sku, name, cat, price in self.products],
            ),
            "fx_rates.csv": _csv(
                ("date", "currency", "rate_to_usd"),
                [
                    (iso_z(PERIOD_START + day * 86400)[:10], cur, self.rate_text[cur][day])
                    for day in range(DAYS)
                    for cur in CURRENCIES
                ],
            ),
        }

    def base_chunk(self, chunk: int) -> list[Rec]:
        """Lines ``chunk * CHUNK ..`` of the clean stream (valid dirt included); all of them load.

        Invoices do not straddle chunks; an invoice's id is ``INV-<tag>-<index of its first line + 1>``.
        """
        rng = Random(f"dotjoin-csv/retail/{self.seed}/{chunk}")  # noqa: S311 - test data
        out: list[Rec] = []
        i, end = chunk * CHUNK, (chunk + 1) * CHUNK
        while i < end:
            n_lines = min(1 + int(rng.random() ** 2 * 5), end - i)
            out.extend(self._invoice(rng, f"INV-{self.tag}-{i + 1:08d}", n_lines, self.valid_p))
            i += n_lines
        return out

    def fresh(self, rng: Random) -> Rec:
        """A clean, canonically rendered one-line invoice (ids 9xxxxxxx never occur in the stream)."""
        return self._invoice(rng, f"INV-{self.tag}-9{int(rng.random() * 10**7):07d}", 1, 0.0)[0]

    def _invoice(self, rng: Random, invoice: str, n_lines: int, valid_p: float) -> list[Rec]:
        r = rng.random
        store_code, _, country, store_cur = STORES[int(r() * len(STORES))]
        sold = PERIOD_START + int(r() * _SPAN_MIN) * 60
        day = (sold - PERIOD_START) // 86400
        guest = bool(valid_p) and r() < valid_p * _GUEST_SHARE
        customer = "" if guest else f"C{1 + int(r() * 50000):07d}"
        currency = store_cur if r() < 0.95 else pick(rng, CURRENCIES)
        rate = self.rates[currency][day]
        rate_f = float(rate)
        decimals = CURRENCY_DECIMALS[currency]
        out = []
        for line_no in range(1, n_lines + 1):
            sku, _, _, list_usd = self.products[int(r() * len(self.products))]
            qty = 1 + int(r() ** 3 * 8)
            price = max(
                Decimal(f"{float(list_usd) / rate_f * (0.9 + 0.2 * r()):.{decimals}f}"),
                Decimal(1).scaleb(-decimals),
            )
            discount = Decimal(0) if r() < 0.8 else _DISCOUNTS[int(r() * len(_DISCOUNTS))]
            fields = [
                invoice,
                str(line_no),
                iso_z(sold),
                store_code,
                sku,
                customer,
                str(qty),
                money_plain(price, currency),
                currency,
                f"{discount:.2f}",
            ]
            rec = Rec(
                fields,
                key=f"{invoice}/{line_no}",
                values=(qty * price * (_ONE - discount) * rate, qty, 1),
                ts=(sold,),
            )
            if guest:
                rec.dirt.append("missing_customer_id")
                rec.imputed = ("customer_id",)
            if valid_p and r() < valid_p:
                self._valid_dirt(rng, rec, country, store_cur)
            out.append(rec)
        return out

    def _valid_dirt(self, rng: Random, rec: Rec, country: str, store_cur: str) -> None:
        f = rec.fields
        kind = weighted(rng, VALID_DIRT)
        cur = f[CURRENCY]
        amount = Decimal(f[PRICE])
        if kind in TS_FORMATS:
            f[SOLD_AT], kind = render_ts(rng, rec.ts[0], kind, _STORE_OFFSETS[country])
        elif kind == "cp1252" and cur in ("EUR", "GBP", "JPY"):
            f[PRICE] = money_styled(amount, cur, _pick_style(rng, _CP1252_STYLES[cur]))
            rec.encoding = "cp1252"
        elif kind in ("money_locale", "cp1252"):
            f[PRICE] = money_styled(amount, cur, _pick_style(rng, MONEY_STYLES[cur]))
            kind = "money_locale"
        elif kind == "currency_from_symbol":
            f[PRICE] = money_styled(
                amount, cur, _pick_style(rng, [s for s in MONEY_STYLES[cur] if has_marker(s)])
            )
            f[CURRENCY] = ""
        elif kind == "currency_from_store" and cur == store_cur:
            f[PRICE] = money_styled(
                amount, cur, _pick_style(rng, [s for s in MONEY_STYLES[cur] if not has_marker(s)])
            )
            f[CURRENCY] = ""
            rec.imputed = (*rec.imputed, "currency")
        elif kind == "discount_percent" or (kind == "discount_empty" and f[DISCOUNT] != "0.00"):
            f[DISCOUNT] = f"{Decimal(f[DISCOUNT]) * 100:.0f}%"
            kind = "discount_percent"
        elif kind == "discount_empty":
            f[DISCOUNT] = ""
        elif kind == "padded_whitespace":
            for col in (INVOICE, LINE_NO, STORE, SKU, QTY, CURRENCY):
                if rng.random() < 0.5 or col == INVOICE:
                    f[col] = pad(rng, f[col])
        elif kind == "code_case":
            for col in (INVOICE, STORE, SKU, CURRENCY):
                if rng.random() < 0.5 or col == STORE:
                    f[col] = f[col].lower() if rng.random() < 0.7 else f[col].title()
        else:  # quoted_all, or currency_from_store where the sale is not in the store's currency
            rec.quote_all = True
            kind = "quoted_all"
        rec.dirt.append(kind)

    def apply_defect(self, rng: Random, rec: Rec, defect: str, avoid: set[int]) -> set[int] | None:
        """Give ``rec`` the defect ``defect`` on columns not in ``avoid``.

        Returns:
            The columns it changed, or ``None`` when the defect cannot be applied there.
        """
        f = rec.fields
        col: int | None
        if defect == "missing_field":
            col = _free(rng, (INVOICE, LINE_NO, SOLD_AT, STORE, SKU, QTY, PRICE), avoid)
            if col is not None:
                f[col] = "" if rng.random() < 0.7 else "  "
        elif defect in ("bad_timestamp", "future_timestamp", "no_fx_rate"):
            col = None if SOLD_AT in avoid else SOLD_AT
            if col is not None and defect == "no_fx_rate":
                if f[CURRENCY].strip().upper() in ("", "USD"):
                    if CURRENCY in avoid:
                        return None
                    f[CURRENCY] = "EUR"
                stale = STALE_START + int(rng.random() * (PERIOD_START - STALE_START)) // 60 * 60
                f[SOLD_AT] = render_ts(rng, stale, pick(rng, (*TS_FORMATS, "ts_iso_z")))[0]
                return {SOLD_AT, CURRENCY}
            if col is not None:
                f[col] = pick(rng, BAD_TIMESTAMPS) if defect == "bad_timestamp" else future_ts(rng)
        elif defect == "bad_number":
            col = _free(rng, (QTY, QTY, LINE_NO), avoid)
            if col is not None:
                f[col] = pick(rng, BAD_INTEGERS) if col == QTY else pick(rng, ("1a", "#1", "one", "2.5"))
        elif defect == "bad_amount":
            col = _free(rng, (PRICE, PRICE, PRICE, DISCOUNT), avoid)
            if col is not None:
                f[col] = pick(rng, BAD_AMOUNTS) if col == PRICE else pick(rng, BAD_DISCOUNTS)
        elif defect == "non_positive_quantity":
            col = None if QTY in avoid else QTY
            if col is not None:
                f[col] = pick(rng, ("0", "-1", "-2", "0", "-10"))
        elif defect == "unknown_store":
            col = None if STORE in avoid else STORE
            if col is not None:
                f[col] = pick(rng, UNKNOWN_STORES)
        elif defect == "unknown_sku":
            col = None if SKU in avoid else SKU
            if col is not None:
                f[col] = f"SKU-9{int(rng.random() * 10000):04d}"
        elif defect == "unknown_currency":
            col = None if CURRENCY in avoid else CURRENCY
            if col is not None:
                f[col] = pick(rng, UNKNOWN_CURRENCIES)
        elif defect == "ragged_row":
            if (avoid or rng.random() < 0.5) and rng.random() < 0.5:
                f.append("")  # a trailing delimiter
            elif avoid or rng.random() < 0.5:
                f.insert(QTY, "1")  # an unquoted split field
            else:
                del f[len(f) - 1 - int(rng.random() * 3) :]
            return set()
        else:
            raise ValueError(f"unknown retail defect {defect!r}")
        return None if col is None else {col}

    def near_duplicate(self, rng: Random, rec: Rec) -> Rec:
        """The same invoice line exported again: whitespace, case or timestamp format differ."""
        dup = rec.copy()
        f = dup.fields
        changes = 0
        while changes == 0:
            if rng.random() < 0.5:
                f[INVOICE] = pad(
                    rng, f[INVOICE].strip().lower() if rng.random() < 0.5 else f[INVOICE].strip()
                )
                changes += 1
            if rng.random() < 0.4:
                for col in (STORE, SKU, QTY, LINE_NO):
                    if rng.random() < 0.5:
                        f[col] = pad(rng, f[col].strip())
                        changes += 1
            if rng.random() < 0.4:
                f[SOLD_AT] = other_ts_format(rng, dup.ts[0])[0]
                changes += 1
        return dup


def _pick_style(rng: Random, styles: list[MoneyStyle] | tuple[MoneyStyle, ...]) -> MoneyStyle:
    return styles[int(rng.random() * len(styles))]


def _free(rng: Random, cols: tuple[int, ...], avoid: set[int]) -> int | None:
    free = [c for c in cols if c not in avoid]
    return free[int(rng.random() * len(free))] if free else None


def _csv(header: tuple[str, ...], rows: object) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)  # type: ignore[arg-type]
    return buf.getvalue()
