"""The streaming computation: per-entity state that answers every feature as of any time t.

Each card and merchant keeps its payments of the longest window (plus :data:`LATENESS_MS`, so a payment
that arrives late is still counted in every window it belongs to) as two time-sorted lists, times and
cents; windowed features at t are a bisection and a sum of integers. A payment that leaves the lists
is folded into one decayed (count, sum) per half-life, anchored at the newest folded time, so the decayed
features keep the whole history in O(1) memory. Late payments are inserted in time order: the state does
not depend on arrival order (only on what has arrived).

Exact for any t at or after the entity's newest payment minus :data:`LATENESS_MS` (the serving case:
t is now); for earlier t, ask the backfill (:mod:`dotjoin.pipelines.features.backfill`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from dotjoin.pipelines.features.definitions import (
    ENTITY_KEYS,
    FEATURES,
    HALF_LIVES_MS,
    HOUR_MS,
    LONGEST_WINDOW_MS,
    WINDOWS_MS,
    Entity,
)

LATENESS_MS = HOUR_MS  # payments this much older than an entity's newest are still windowed exactly
KEEP_MS = LONGEST_WINDOW_MS + LATENESS_MS
_HALF_LIVES = tuple(HALF_LIVES_MS.values())


class EntityHistory:
    """One entity's payments: the recent ones listed, the older ones folded into decayed sums."""

    __slots__ = ("cents", "fold_at", "folds", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.cents: list[int] = []
        self.fold_at: int | None = None  # the newest folded payment's time
        self.folds: list[list[float]] = [[0.0, 0.0] for _ in _HALF_LIVES]  # [count, sum] at fold_at

    def add(self, time_ms: int, cents: int) -> None:
        """Add one payment (in time order among the listed ones, whenever it arrives)."""
        if self.times and time_ms < self.times[-1] - KEEP_MS:
            self._fold(time_ms, cents)  # older than anything still listed: straight to the folds
            return
        at = bisect.bisect_right(self.times, time_ms)
        self.times.insert(at, time_ms)
        self.cents.insert(at, cents)
        cutoff = self.times[-1] - KEEP_MS
        if self.times[0] < cutoff:
            gone = bisect.bisect_left(self.times, cutoff)
            for t, c in zip(self.times[:gone], self.cents[:gone], strict=True):
                self._fold(t, c)
            del self.times[:gone], self.cents[:gone]

    def _fold(self, time_ms: int, cents: int) -> None:
        if self.fold_at is None:
            self.fold_at = time_ms
        if time_ms >= self.fold_at:  # move the anchor forward: decay what is folded to the new time
            for fold, half_life in zip(self.folds, _HALF_LIVES, strict=True):
                factor = 2.0 ** ((self.fold_at - time_ms) / half_life)
                fold[0], fold[1] = fold[0] * factor + 1.0, fold[1] * factor + cents
            self.fold_at = time_ms
        else:  # a very late payment: weigh it at the anchor
            for fold, half_life in zip(self.folds, _HALF_LIVES, strict=True):
                weight = 2.0 ** ((time_ms - self.fold_at) / half_life)
                fold[0] += weight
                fold[1] += cents * weight

    def values(self, prefix: str, t: int) -> dict[str, float | int | None]:
        """Every feature of this entity as of ``t`` (payments strictly before ``t``), by name."""
        out: dict[str, float | int | None] = {}
        end = bisect.bisect_left(self.times, t)
        for label, window in WINDOWS_MS.items():
            start = bisect.bisect_left(self.times, t - window, 0, end)
            count, total = end - start, sum(self.cents[start:end])
            out[f"{prefix}_count_{label}"] = count
            out[f"{prefix}_sum_{label}"] = total
            out[f"{prefix}_mean_{label}"] = total / count if count else None
        for (label, half_life), fold in zip(HALF_LIVES_MS.items(), self.folds, strict=True):
            weight_sum = weighted = 0.0
            if self.fold_at is not None and self.fold_at < t:
                factor = 2.0 ** ((self.fold_at - t) / half_life)
                weight_sum, weighted = fold[0] * factor, fold[1] * factor
            for time_ms, cents in zip(self.times[:end], self.cents[:end], strict=True):
                weight = 2.0 ** ((time_ms - t) / half_life)
                weight_sum += weight
                weighted += cents * weight
            out[f"{prefix}_count_hl{label}"] = weight_sum
            out[f"{prefix}_sum_hl{label}"] = weighted
            out[f"{prefix}_mean_hl{label}"] = weighted / weight_sum if weight_sum else None
        return out


class OnlineFeatures:
    """The streaming job's state: every card's and merchant's :class:`EntityHistory`.

    Example::

        state = OnlineFeatures()
        state.add(card_id="c1", merchant_id="m1", time_ms=0, cents=1250)
        state.features_at(card_id="c1", merchant_id="m1", t=60_000)["card_count_10m"]  # 1
    """

    def __init__(self) -> None:
        self.entities: dict[Entity, dict[str, EntityHistory]] = {e: {} for e in ENTITY_KEYS}

    def add(self, *, card_id: str, merchant_id: str, time_ms: int, cents: int) -> None:
        for entity, key in (("card", card_id), ("merchant", merchant_id)):
            table = self.entities[entity]  # type: ignore[index]
            history = table.get(key)
            if history is None:
                history = table[key] = EntityHistory()
            history.add(time_ms, cents)

    def features_at(self, *, card_id: str, merchant_id: str, t: int) -> dict[str, float | int | None]:
        """Every feature (in :data:`FEATURES` order) of this card and merchant as of ``t``."""
        values: dict[str, float | int | None] = {}
        for entity, key in (("card", card_id), ("merchant", merchant_id)):
            history = self.entities[entity].get(key) or _EMPTY  # type: ignore[index]
            values.update(history.values(entity, t))
        return {f.name: values[f.name] for f in FEATURES}

    def add_all(self, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Add ``(card_id, merchant_id, time_ms, cents)`` rows in arrival order."""
        for card_id, merchant_id, time_ms, cents in rows:
            self.add(card_id=card_id, merchant_id=merchant_id, time_ms=time_ms, cents=cents)


_EMPTY = EntityHistory()
