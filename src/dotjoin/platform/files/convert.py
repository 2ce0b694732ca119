"""Typed values from the reader's text columns, by a declared schema, with a reason for every reject.

:func:`convert` turns a chunk's string table into the schema's typed columns and says, per row, the
first reason it cannot load (``missing_field``, ``bad_number``, ``bad_boolean``, ``bad_date``,
``bad_timestamp``), in column order. Naive timestamps (no offset) are read in the column's zone and
counted. Vectorised: no Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.platform.files.schema import Property, Table
from dotjoin.platform.files.types import matches, parse_dates, parse_integers, parse_timestamps_in, squeeze

_FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FRACTION = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})\.\d{1,9}(Z|[+-]\d{2}:\d{2})?$"
_CURRENCY = r"^[$€£¥]|[$€£¥]$|^(USD|EUR|GBP) | (USD|EUR|GBP)$"
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_REASON = {
    "integer": "bad_number",
    "number": "bad_number",
    "boolean": "bad_boolean",
    "date": "bad_date",
    "timestamp": "bad_timestamp",
}


@dataclass
class Converted:
    """The typed columns of a chunk and why rows cannot load.

    Attributes:
        table: typed columns (rows that cannot load hold NULLs there).
        reason: per row, the first reason it cannot load, or None.
        detail: per row, the column that failed (for the quarantine).
        naive: per timestamp column, how many values of loadable rows had no offset (read in its zone).
    """

    table: pa.Table
    reason: list[str | None]
    detail: list[str | None]
    naive: dict[str, int] = field(default_factory=dict)


def normalise(values: pa.Array, prop: Property) -> pa.Array:
    for step in prop.normalise:
        if step == "trim":
            values = pc.utf8_trim_whitespace(values)
        elif step == "squeeze":
            values = squeeze(values)
        elif step == "lower":
            values = pc.utf8_lower(values)
        elif step == "upper":
            values = pc.utf8_upper(values)
    return values


def _nulls(values: pa.Array, prop: Property) -> np.ndarray:
    trimmed = pc.utf8_trim_whitespace(values)
    return np.asarray(
        pc.is_in(trimmed, value_set=pa.array(prop.nullValues, pa.string())).to_numpy(zero_copy_only=False),
        dtype=bool,
    )


def parse_column(values: pa.Array, prop: Property) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(typed values, ok mask for non-null values, naive mask) of one text column."""
    t = prop.logicalType
    opts = prop.logicalTypeOptions
    n = len(values)
    no_naive = np.zeros(n, dtype=bool)
    if t == "string":
        return values, np.ones(n, dtype=bool), no_naive
    text = pc.utf8_trim_whitespace(values)
    if t in ("integer", "number"):
        if opts.groupSeparator:
            text = pc.replace_substring(text, opts.groupSeparator, "")
        text = pc.replace_substring_regex(text, _CURRENCY, "")
        text = pc.utf8_trim_whitespace(text)
        if opts.decimalSeparator != ".":
            text = pc.replace_substring(text, opts.decimalSeparator, ".")
        if t == "integer":
            parsed = parse_integers(text)
            return parsed, np.asarray(parsed.is_valid().to_numpy(zero_copy_only=False)), no_naive
        ok = matches(text, _FLOAT)
        parsed = pc.cast(pc.if_else(pa.array(ok), text, "0"), pa.float64())
        return pc.if_else(pa.array(ok), parsed, pa.scalar(None, pa.float64())), ok, no_naive
    if t == "boolean":
        lowered = pc.utf8_lower(text)
        true = np.asarray(
            pc.is_in(lowered, value_set=pa.array([v.lower() for v in opts.trueValues])).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        false = np.asarray(
            pc.is_in(lowered, value_set=pa.array([v.lower() for v in opts.falseValues])).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        ok = true | false
        return pa.array(true, mask=~ok), ok, no_naive
    if t == "date":
        formats = opts.format or ["iso8601"]
        result = pa.nulls(n, pa.date32())
        for fmt in formats:
            if fmt == "iso8601":
                candidate = parse_dates(text)
            else:  # dd/mm/yyyy or mm/dd/yyyy, declared: never guessed
                parts = pc.extract_regex(text, r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4})$")
                a, b, y = (pc.struct_field(parts, i) for i in range(3))
                day, month = (a, b) if fmt == "dmy" else (b, a)
                iso = pc.binary_join_element_wise(
                    y, pc.utf8_lpad(month, 2, "0"), pc.utf8_lpad(day, 2, "0"), "-"
                )
                candidate = parse_dates(pc.fill_null(iso, ""))
            result = pc.coalesce(result, candidate)
        return result, np.asarray(result.is_valid().to_numpy(zero_copy_only=False)), no_naive
    formats = opts.format or ["iso8601", "rfc2822"]
    # Fractions of a second are dropped (timestamps are whole seconds); RE2 has no look-ahead.
    text = pc.replace_substring_regex(text, _FRACTION, r"\1\2")
    parsed, naive = parse_timestamps_in(text, formats=formats, zone=opts.timezone)
    return parsed, np.asarray(parsed.is_valid().to_numpy(zero_copy_only=False)), naive


def convert(strings: pa.Table, table: Table) -> Converted:
    """Typed columns of ``strings`` (columns named like the properties) and each row's first reason."""
    n = strings.num_rows
    reason: np.ndarray = np.full(n, None, dtype=object)
    detail: np.ndarray = np.full(n, None, dtype=object)
    columns: dict[str, pa.Array] = {}
    naive_masks: dict[str, np.ndarray] = {}
    for prop in table.properties:
        raw = strings.column(prop.name).combine_chunks()
        values = normalise(raw, prop)
        null = _nulls(values, prop)
        typed, ok, naive = parse_column(values, prop)
        if prop.required:
            missing = null & (reason == None)  # noqa: E711 - element-wise on an object array
            reason[missing], detail[missing] = "missing_field", prop.name
        bad = ~null & ~ok & (reason == None)  # noqa: E711
        if bad.any():
            reason[bad], detail[bad] = _REASON.get(prop.logicalType, "bad_value"), prop.name
        if prop.logicalType == "timestamp":
            naive_masks[prop.name] = naive & ~null
        columns[prop.name] = pc.if_else(
            pa.array(null | ~ok), pa.scalar(None, ARROW_TYPES[prop.logicalType]), typed
        )
    loads = reason == None  # noqa: E711
    naive_counts = {name: int(np.count_nonzero(mask & loads)) for name, mask in naive_masks.items()}
    return Converted(pa.table(columns), reason.tolist(), detail.tolist(), naive_counts)
