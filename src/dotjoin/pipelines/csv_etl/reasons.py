"""The one list of quarantine reason codes of the CSV ETL, shared by the generator's ground-truth
manifest and the pipeline's quarantine, so the two can be compared row for row.

A record with several defects is quarantined once, for the reason that comes first in
:data:`REASON_PRECEDENCE`: the record could not be decoded or split into the header's fields, then a
required field is empty, then a value does not parse (sha, timestamp, integer, money), then a parsed value
breaks a rule (future time, negative count, quantity <= 0), then a reference is missing (store, sku,
currency, fx rate). Duplicates are decided after all of these: only a record without any defect can load
or be a duplicate (see ``FORMATS.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, cast, get_args

from dotjoin.platform.quality.reasons import precedence
from dotjoin.platform.quality.reasons import primary_reason as platform_primary

Dataset = Literal["commits", "retail"]
DATASETS: tuple[str, ...] = get_args(Dataset)

Reason = Literal[
    # any dataset: the row could not be read as a record of the file's columns
    "ragged_row",  # more or fewer fields than the header
    "bad_encoding",  # bytes that decode neither as UTF-8 nor as the detected fallback
    "missing_field",  # a required field is empty
    "bad_timestamp",  # a timestamp in no supported format
    "future_timestamp",  # a timestamp after the run's reference time
    "bad_number",  # an integer/decimal field that does not parse
    # commits
    "bad_sha",  # sha (or a parent) is not 40 hex characters
    "negative_count",  # additions or deletions below zero
    # retail
    "bad_amount",  # unit_price or discount that does not parse as money
    "non_positive_quantity",  # quantity <= 0
    "unknown_store",  # store_code not in stores.csv (referential integrity)
    "unknown_sku",  # sku not in products.csv (referential integrity)
    "unknown_currency",  # a currency with no rate in fx_rates.csv
    "no_fx_rate",  # no rate for the currency on (or before) the sale date
]
REASONS: tuple[str, ...] = get_args(Reason)

#: The platform's precedence (the order of :data:`dotjoin.platform.quality.reasons.REASONS`) of these codes.
REASON_PRECEDENCE: tuple[Reason, ...] = cast("tuple[Reason, ...]", precedence(REASONS))


def primary_reason(reasons: Iterable[Reason]) -> Reason:
    """The one reason a record with several defects is quarantined for.

    >>> primary_reason(["negative_count", "bad_timestamp"])
    'bad_timestamp'
    >>> primary_reason(["unknown_sku", "future_timestamp", "bad_amount"])
    'bad_amount'
    """
    return cast(Reason, platform_primary(reasons))
