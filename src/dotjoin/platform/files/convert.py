"""Typed values from the reader's text columns, by a declared schema, with a reason for every reject.

:func:`convert` turns a chunk's string table into the schema's typed columns and says, per row, the
reason it cannot load (``missing_field``; ``bad_number``, ``bad_boolean``, ``bad_date``, ``bad_timestamp``
or a declared code when a value does not parse; ``bad_value``, ``out_of_range``, ``future_timestamp`` or a
declared code when it breaks a rule). Fields are trimmed of spaces and tabs only (a no-break space is
content). Naive timestamps (no offset) are read in the column's zone and counted. Vectorised: no Python
loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.platform.files.schema import Property, Rule, Table
from dotjoin.platform.files.types import (
    matches,
    parse_dates,
    parse_integers,
    parse_timestamps_in,
    squeeze,
    trim,
)
from dotjoin.platform.quality.reasons import RANK

_FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FRACTION = (
    r"^(?P<head>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})\.(?P<digits>\d{1,9})(?P<zone>Z|[+-]\d{2}:\d{2})?$"
)
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

    A plug-in (money in a locale, a reference lookup) adds its own defects with :meth:`add`; each row's
    reason is then decided again over all of them, by the platform's precedence.

    Attributes:
        table: typed columns (rows that cannot load hold NULLs there).
        defects: (reason, column, rows) found, in column order.
        naive_masks: per timestamp column, the rows whose value had no offset (read in its zone).
        reason: per row, the reason it cannot load, or None.
        detail: per row, the column that failed (for the quarantine).
        failed: per row, whether it cannot load (``reason`` is not None), as a numpy mask.
        naive: per timestamp column, how many loadable rows had a value with no offset.
    """

    table: pa.Table
    defects: list[tuple[str, str, np.ndarray]]
    naive_masks: dict[str, np.ndarray] = field(default_factory=dict)
    reason: list[str | None] = field(init=False)
    detail: list[str | None] = field(init=False)
    failed: np.ndarray = field(init=False)
    naive: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self._decide()

    def add(self, reason: str, column: str, rows: np.ndarray) -> None:
        """Add a plug-in's defect (``rows``: a mask) and decide each row's reason again."""
        self.defects.append((reason, column, rows))
        self._decide()

    def _decide(self) -> None:
        n = self.table.num_rows
        reason: np.ndarray = np.full(n, None, dtype=object)
        detail: np.ndarray = np.full(n, None, dtype=object)
        failed = np.zeros(n, dtype=bool)
        for code, column, rows in sorted(self.defects, key=lambda d: RANK[d[0]]):  # stable: column order
            first = rows & ~failed
            if first.any():
                reason[first], detail[first] = code, column
                failed |= first
        self.reason, self.detail, self.failed = reason.tolist(), detail.tolist(), failed
        self.naive = {name: int(np.count_nonzero(mask & ~failed)) for name, mask in self.naive_masks.items()}


def normalise(values: pa.Array, prop: Property) -> pa.Array:
    for step in prop.normalise:
        if step == "trim":
            values = trim(values)
        elif step == "squeeze":
            values = squeeze(values)
        elif step == "lower":
            values = pc.utf8_lower(values)
        elif step == "upper":
            values = pc.utf8_upper(values)
    return values


def _nulls(values: pa.Array, prop: Property) -> np.ndarray:
    trimmed = trim(values)
    return np.asarray(
        pc.is_in(trimmed, value_set=pa.array(prop.nullValues, pa.string())).to_numpy(zero_copy_only=False),
        dtype=bool,
    )


def _number(text: pa.Array, logical: str) -> tuple[pa.Array, np.ndarray]:
    """(int64 or float64 values, ok mask) of cleaned number text; NULL where it does not parse."""
    if logical == "integer":
        parsed = parse_integers(text)
        return parsed, np.asarray(parsed.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    ok = matches(text, _FLOAT)
    parsed = pc.cast(pc.if_else(pa.array(ok), text, "0"), pa.float64())
    return pc.if_else(pa.array(ok), parsed, pa.scalar(None, pa.float64())), ok


def _scatter(where: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A mask shaped like ``where``: ``values`` at its True positions, False elsewhere."""
    out = np.zeros(len(where), dtype=bool)
    out[where] = values
    return out


def parse_column(values: pa.Array, prop: Property) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(typed values, ok mask for non-null values, naive mask) of one text column."""
    t = prop.logicalType
    opts = prop.logicalTypeOptions
    n = len(values)
    no_naive = np.zeros(n, dtype=bool)
    if t == "string":
        return values, np.ones(n, dtype=bool), no_naive
    text = trim(values)
    if t in ("integer", "number"):
        if not opts.groupSeparator and opts.decimalSeparator == ".":
            # Plain numbers first: only values that do not parse pay for the currency clean-up (a
            # value that parses has no currency mark, so the result is the same).
            parsed, ok = _number(text, t)
            if ok.all() or not opts.currencySymbols:
                return parsed, ok, no_naive
            retry = ~ok
            at = pa.array(np.flatnonzero(retry))
            cleaned = trim(pc.replace_substring_regex(text.take(at), _CURRENCY, ""))
            again, again_ok = _number(cleaned, t)
            ok = ok | _scatter(retry, again_ok)
            merged = pc.replace_with_mask(parsed, pa.array(retry), again.cast(parsed.type))
            return merged, ok, no_naive
        if opts.groupSeparator:
            text = pc.replace_substring(text, opts.groupSeparator, "")
        if opts.currencySymbols:
            text = trim(pc.replace_substring_regex(text, _CURRENCY, ""))
        if opts.decimalSeparator != ".":
            text = pc.replace_substring(text, opts.decimalSeparator, ".")
        parsed, ok = _number(text, t)
        return parsed, ok, no_naive
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
    micros = None
    if pc.any(pc.match_substring(text, ".")).as_py():  # a plain substring test first: far cheaper
        text, micros = _split_fraction(text)
    parsed, naive = parse_timestamps_in(text, formats=formats, zone=opts.timezone)
    if micros is not None:
        parsed = pc.add(parsed, pc.cast(micros, pa.duration("us")))
    return parsed, np.asarray(parsed.is_valid().to_numpy(zero_copy_only=False)), naive


def _split_fraction(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """ISO timestamps without their fraction of a second, and the fraction in microseconds (0 if none;
    digits past the sixth are dropped: timestamps are microseconds).

    >>> text, micros = _split_fraction(pa.array(["2024-01-01T00:00:00.5Z", "2024-01-01 00:00:00.1234567"]))
    >>> text.to_pylist(), micros.to_pylist()
    (['2024-01-01T00:00:00Z', '2024-01-01 00:00:00'], [500000, 123456])
    """
    parts = pc.extract_regex(text, _FRACTION)
    found = parts.is_valid()
    head, digits, zone = (pc.fill_null(pc.struct_field(parts, i), "") for i in range(3))
    whole = pc.if_else(found, pc.binary_join_element_wise(head, zone, ""), text)
    six = pc.utf8_slice_codeunits(pc.utf8_rpad(digits, 6, "0"), 0, 6)
    micros = pc.if_else(found, pc.cast(pc.if_else(found, six, "0"), pa.int64()), 0)
    return whole, micros


_RULE_REASON: dict[Rule, str] = {
    "pattern": "bad_value",
    "minimum": "out_of_range",
    "maximum": "out_of_range",
    "exclusiveMaximum": "future_timestamp",
}


def _violations(
    typed: pa.Array, valid: np.ndarray, prop: Property, reference_time: datetime | None
) -> list[tuple[Rule, np.ndarray]]:
    """(rule, mask) of the declared rules that parsed values break (``valid``: parsed, not NULL)."""
    opts = prop.logicalTypeOptions
    out: list[tuple[Rule, np.ndarray]] = []
    if opts.pattern is not None and prop.logicalType == "string":
        out.append(("pattern", valid & ~matches(typed, opts.pattern)))
    bounds: tuple[tuple[Rule, float | None, Any], ...] = (
        ("minimum", opts.minimum, pc.less),
        ("maximum", opts.maximum, pc.greater),
    )
    for rule, bound, compare in bounds:
        if bound is not None and prop.logicalType in ("integer", "number"):
            broken = compare(typed, pa.scalar(bound, pa.float64())).fill_null(False)
            out.append((rule, valid & np.asarray(broken.to_numpy(zero_copy_only=False), dtype=bool)))
    if opts.exclusiveMaximum == "now" and prop.logicalType == "timestamp":
        if reference_time is None:
            raise ValueError(f"column {prop.name}: exclusiveMaximum 'now' needs the run's reference time")
        late = pc.greater_equal(typed, pa.scalar(reference_time, ARROW_TYPES["timestamp"])).fill_null(False)
        out.append(("exclusiveMaximum", valid & np.asarray(late.to_numpy(zero_copy_only=False), dtype=bool)))
    return out


def convert(strings: pa.Table, table: Table, *, reference_time: datetime | None = None) -> Converted:
    """Typed columns of ``strings`` (columns named like the properties) and each row's reason.

    A row with several defects gets the one that comes first in the platform's precedence (the order of
    :data:`~dotjoin.platform.quality.reasons.REASONS`: missing, then unparsable, then a broken rule),
    then in column order. ``reference_time`` is "now" of ``exclusiveMaximum: now``.
    """
    defects: list[tuple[str, str, np.ndarray]] = []  # (reason, column, rows), in column order
    columns: dict[str, pa.Array] = {}
    naive_masks: dict[str, np.ndarray] = {}
    for prop in table.properties:
        raw = strings.column(prop.name).combine_chunks()
        values = normalise(raw, prop)
        null = _nulls(values, prop)
        typed, ok, naive = parse_column(values, prop)
        if prop.required:
            defects.append(("missing_field", prop.name, null))
        parse_reason = prop.reasons.get("parse", _REASON.get(prop.logicalType, "bad_value"))
        defects.append((parse_reason, prop.name, ~null & ~ok))
        for rule, broken in _violations(typed, ~null & ok, prop, reference_time):
            defects.append((prop.reasons.get(rule, _RULE_REASON[rule]), prop.name, broken))
        if prop.logicalType == "timestamp":
            naive_masks[prop.name] = naive & ~null
        unset = null | ~ok
        columns[prop.name] = (
            pc.if_else(pa.array(unset), pa.scalar(None, ARROW_TYPES[prop.logicalType]), typed)
            if unset.any()
            else typed
        )
    return Converted(pa.table(columns), defects, naive_masks)
