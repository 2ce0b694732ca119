"""The feature store's features, declared once: what the streaming state and the batch backfill compute.

Every feature is an aggregate of one entity's payments (a card's, a merchant's) **as of a time t**, over
the payments strictly before t — the payment being scored is never part of its own features, and
neither is any payment of the same millisecond (so arrival order inside a millisecond cannot matter):

* **windowed** (``card_sum_1h``): count, sum or mean of the amounts with ``t - window <= time < t``;
* **decayed** (``card_sum_hl24h``): every earlier payment weighted by ``2 ** (-(t - time) / half_life)``;
  count, sum, and mean = sum / count. Evaluated at any t from a small state, where a window would
  need every payment in it: the primitive Feast's feature views lack.

Amounts are integer US cents (:func:`usd_cents`), so sums and counts are exact on every engine and the
windowed features — the deterministic ones — must agree bit for bit between the two computations; the
decayed ones involve ``exp``, computed in different orders, and agree to a relative 1e-9
(:data:`DECAY_TOLERANCE`). A mean over nothing is null; a count or sum over nothing is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

Entity = Literal["card", "merchant"]
Function = Literal["count", "sum", "mean"]
ENTITY_KEYS: dict[Entity, str] = {"card": "card_id", "merchant": "merchant_id"}
WINDOWS_MS = {"10m": 10 * MINUTE_MS, "1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS}
HALF_LIVES_MS = {"1h": HOUR_MS, "24h": DAY_MS}
FUNCTIONS: tuple[Function, ...] = ("count", "sum", "mean")
DECAY_TOLERANCE = 1e-9  # relative (absolute below 1): exp() in a different order
LONGEST_WINDOW_MS = max(WINDOWS_MS.values())


@dataclass(frozen=True, slots=True)
class Feature:
    """One aggregate of one entity: windowed (``window_ms``) or decayed (``half_life_ms``)."""

    name: str
    entity: Entity
    function: Function
    window_ms: int | None = None
    half_life_ms: int | None = None

    @property
    def deterministic(self) -> bool:
        """Windowed features are exact integers or one division of them: equal on every engine."""
        return self.window_ms is not None


def _declare() -> tuple[Feature, ...]:
    features: list[Feature] = []
    for entity in ENTITY_KEYS:
        for label, window in WINDOWS_MS.items():
            features += [Feature(f"{entity}_{f}_{label}", entity, f, window_ms=window) for f in FUNCTIONS]
        for label, half_life in HALF_LIVES_MS.items():
            features += [
                Feature(f"{entity}_{f}_hl{label}", entity, f, half_life_ms=half_life) for f in FUNCTIONS
            ]
    return tuple(features)


FEATURES: tuple[Feature, ...] = _declare()
BY_NAME = {f.name: f for f in FEATURES}

# Computed at request time from the transaction itself and its aggregates (Feast calls these on-demand
# features): what the model reads beside FEATURES. Pure functions of integers, so as exact as those.
REQUEST_FEATURES = ("amount_cents", "amount_to_card_mean_7d", "amount_to_card_mean_24h",
                    "amount_to_merchant_mean_7d")  # fmt: skip
MODEL_FEATURES = (*(f.name for f in FEATURES), *REQUEST_FEATURES)  # the model's columns, in order


def request_features(cents: int, values: dict[str, float | int | None]) -> dict[str, float | None]:
    """The transaction's own features: its amount, and the amount over its card's and merchant's means
    (null where there is no mean).

    >>> request_features(3_000, {"card_mean_7d": 1_500.0, "card_mean_24h": None, "merchant_mean_7d": 600.0})
    {'amount_cents': 3000.0, 'amount_to_card_mean_7d': 2.0, 'amount_to_card_mean_24h': None, \
'amount_to_merchant_mean_7d': 5.0}
    """

    def ratio(mean: float | int | None) -> float | None:
        return cents / mean if mean else None

    return {
        "amount_cents": float(cents),
        "amount_to_card_mean_7d": ratio(values["card_mean_7d"]),
        "amount_to_card_mean_24h": ratio(values["card_mean_24h"]),
        "amount_to_merchant_mean_7d": ratio(values["merchant_mean_7d"]),
    }


def usd_cents(amount: float, currency: str, usd_rates: dict[str, float]) -> int:
    """An amount in integer US cents, to the nearest (``usd_rates``: units of the currency per dollar;
    missing: 1). The one conversion both computations read, so they aggregate the same integers.

    >>> usd_cents(10.0, "EUR", {"EUR": 0.8}), usd_cents(3.99, "USD", {})
    (1250, 399)
    """
    return round(amount / usd_rates.get(currency, 1.0) * 100)
