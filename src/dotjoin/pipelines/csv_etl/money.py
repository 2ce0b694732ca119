"""Money and discounts by locale, vectorised: ``$1,234.50``, ``1.234,50 €``, ``USD 12``, ``10%``.

The grammar (``FORMATS.md``), applied in this order:

1. Trim spaces, tabs and no-break spaces.
2. A currency symbol at the start or end (``US$``, ``R$``, ``$``, ``€``, ``£``, ``¥``, ``円``, ``₹``,
   tried in that order) is removed and names the currency; else one ISO code (three capitals) before
   *or* after the number is.
3. Spaces and no-break spaces inside the number are removed.
4. With both ``.`` and ``,`` the later one is the decimal separator and the other groups thousands.
   With one of them: it is the decimal separator when it occurs once with one or two digits after it,
   else it groups thousands (``1.234`` is 1234, ``12,5`` is 12.5).
5. What is left must be ``digits[.digits]``.

Limits of the fixed-point columns (beyond them a value is ``bad_amount``): at most 18 integer digits
and 6 decimals for prices; discounts of at most 12 integer digits and 8 decimals (percentages: 6).
"""

from __future__ import annotations

import logging
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.platform.files.types import matches

logger = logging.getLogger(__name__)

MONEY_SPACE = " \t\u00a0"
SYMBOLS: tuple[tuple[str, str], ...] = (
    ("US$", "USD"),
    ("R$", "BRL"),
    ("$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("円", "JPY"),
    ("₹", "INR"),
)
PRICE = pa.decimal128(24, 6)
DISCOUNT = pa.decimal128(20, 8)
_ISO_CODES = r"^(?P<pre>[A-Z]{3})?[ \x{00a0}]*(?P<mid>.*?)[ \x{00a0}]*(?P<post>[A-Z]{3})?$"
_NUMBER_CHARS = r"^[\d.,]*\d[\d.,]*$"
_PRICE_OK = r"^\d{1,18}(\.\d{1,6})?$"
_NULL_STRING = pa.scalar(None, pa.string())


def _where(mask: np.ndarray, then: pa.Array | pa.Scalar, otherwise: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), then, otherwise)


def _re2(text: str) -> str:
    return "".join(c if c.isalnum() else "\\" + c if c.isascii() else c for c in text)


def split_currency(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Steps 1-2: the number text without its currency marker, and the currency it names (or NULL).

    >>> text, currency = split_currency(pa.array(["US$1,234.50", "1.234,50 €", "USD 12", "EUR 1 USD", "12"]))
    >>> text.to_pylist(), currency.to_pylist()
    (['1,234.50', '1.234,50 ', '12', 'EUR 1 USD', '12'], ['USD', 'EUR', 'USD', None, None])
    """
    s = pc.utf8_trim(values, MONEY_SPACE)
    currency = pa.nulls(len(s), pa.string())
    done = np.zeros(len(s), dtype=bool)
    for symbol, code in SYMBOLS:
        hit = ~done & (_mask_of(pc.starts_with(s, symbol)) | _mask_of(pc.ends_with(s, symbol)))
        if not hit.any():
            continue
        escaped = _re2(symbol)
        stripped = pc.replace_substring_regex(
            pc.replace_substring_regex(s, "^" + escaped, ""), escaped + "$", ""
        )
        s = _where(hit, stripped, s)
        currency = _where(hit, pa.scalar(code), currency)
        done |= hit
    parts = pc.extract_regex(s, _ISO_CODES)
    pre = pc.struct_field(parts, "pre").fill_null("")
    post = pc.struct_field(parts, "post").fill_null("")
    has_pre, has_post = _mask_of(pc.not_equal(pre, "")), _mask_of(pc.not_equal(post, ""))
    coded = ~done & (has_pre ^ has_post)
    if coded.any():
        s = _where(coded, pc.struct_field(parts, "mid"), s)
        currency = _where(coded, _where(has_pre, pre, post), currency)
    return s, currency


def _mask_of(values: pa.Array) -> np.ndarray:
    return np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def normalise_number(text: pa.Array) -> pa.Array:
    """Steps 3-5: locale separators to a plain ``digits[.digits]`` text, NULL when it is not a number.

    >>> texts = ["1,234.50", "1.234,50", "1.234", "12,5", "1 234", "1,23,456.50", "1O.5"]
    >>> normalise_number(pa.array(texts)).to_pylist()
    ['1234.50', '1234.50', '1234', '12.5', '1234', '123456.50', None]
    """
    s = pc.utf8_trim(text, MONEY_SPACE)
    s = pc.replace_substring_regex(s, "[ \u00a0]", "")
    shape_ok = matches(s, _NUMBER_CHARS)
    s = _where(shape_ok, s, pa.array([""] * len(s)))  # placeholders keep string offsets sane
    has_dot = _mask_of(pc.match_substring(s, "."))
    has_comma = _mask_of(pc.match_substring(s, ","))
    out = s
    both = has_dot & has_comma
    if both.any():
        reversed_ = pc.binary_reverse(s.cast(pa.binary())).cast(pa.string())
        dot_last = _mask_of(pc.less(pc.find_substring(reversed_, "."), pc.find_substring(reversed_, ",")))
        dot_decimal = pc.replace_substring(s, ",", "")
        comma_decimal = pc.replace_substring(pc.replace_substring(s, ".", ""), ",", ".")
        out = _where(both, _where(dot_last, dot_decimal, comma_decimal), out)
    for sep, only in ((".", has_dot & ~has_comma), (",", has_comma & ~has_dot)):
        if not only.any():
            continue
        count = pc.count_substring(s, sep).to_numpy(zero_copy_only=False)
        after = (
            pc.utf8_length(s).to_numpy(zero_copy_only=False)
            - pc.find_substring(s, sep).to_numpy(zero_copy_only=False)
            - 1
        )
        decimal_like = (count == 1) & ((after == 1) | (after == 2))
        out = _where(
            only,
            _where(decimal_like, pc.replace_substring(s, sep, "."), pc.replace_substring(s, sep, "")),
            out,
        )
    valid = shape_ok & matches(out, r"^\d+(\.\d+)?$")
    return _where(valid, out, _NULL_STRING)


def parse_prices(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Money text to a decimal (``PRICE``) and the currency its marker names; NULL price = bad amount.

    >>> price, currency = parse_prices(pa.array(["$1,234.50", "1.234,50 €", "USD 12", "¥1,200", "TBD"]))
    >>> [str(p) if p is not None else None for p in price.to_pylist()], currency.to_pylist()
    (['1234.500000', '1234.500000', '12.000000', '1200.000000', None], ['USD', 'EUR', 'USD', 'JPY', None])
    """
    text, currency = split_currency(values)
    number = normalise_number(text)
    ok = matches(number, _PRICE_OK)
    price = pc.cast(_where(ok, number, pa.scalar("0")), PRICE)
    return _where(ok, price, pa.scalar(None, PRICE)), _where(ok, currency, _NULL_STRING)


def parse_discounts(values: pa.Array) -> pa.Array:
    """Discount text (already trimmed) to a fraction: empty is 0, ``10%`` is 0.10, ``0.1`` is 0.1.

    NULL means the text is not a discount (``bad_amount``).

    >>> discounts = parse_discounts(pa.array(["", "10%", "0.25", "ten%"]))
    >>> [str(d) if d is not None else None for d in discounts.to_pylist()]
    ['0E-8', '0.10000000', '0.25000000', None]
    """
    percent = matches(values, r"^\d{1,12}(\.\d{1,6})?%$")
    plain = matches(values, r"^\d{1,12}(\.\d{1,8})?$")
    empty = _mask_of(pc.equal(pc.utf8_length(values), 0))
    number = pc.replace_substring(_where(percent | plain, values, pa.scalar("0")), "%", "")
    as_decimal = pc.cast(number, DISCOUNT)
    scaled = pc.cast(pc.multiply(as_decimal, pa.scalar(Decimal("0.01"), pa.decimal128(3, 2))), DISCOUNT)
    value = _where(percent, scaled, as_decimal)
    value = _where(empty, pa.scalar(Decimal(0), DISCOUNT), value)
    return _where(percent | plain | empty, value, pa.scalar(None, DISCOUNT))
