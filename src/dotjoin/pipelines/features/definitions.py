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


def usd_cents(amount: float, currency: str, usd_rates: dict[str, float]) -> int:
    """An amount in integer US cents, to the nearest (``usd_rates``: units of the currency per dollar;
    missing: 1). The one conversion both computations read, so they aggregate the same integers.

    >>> usd_cents(10.0, "EUR", {"EUR": 0.8}), usd_cents(3.99, "USD", {})
    (1250, 399)
    """
    return round(amount / usd_rates.get(currency, 1.0) * 100)
