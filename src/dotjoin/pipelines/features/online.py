"""The streaming computation: per-entity state that answers every feature as of any time t.

Each card and merchant keeps its payments of the longest window (plus :data:`LATENESS_MS`, so a payment
that arrives late is still counted in every window it belongs to) as time-sorted lists of times, cents
and running sums of cents: a windowed feature at t is two bisections and a subtraction of integers. Every
payment also joins one decayed (count, sum) per half-life anchored at the newest time, so a decayed
feature at t is that, less the few payments at or after t, decayed to t — O(1) in the history's length.
Late payments are inserted in time order: the state depends on what has arrived, not on its order.

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


class _Decayed:
    """Decayed (count, sum) per half-life of a set of payments, weighted at ``anchor`` (its newest time):
    weights stay at most 1, so nothing overflows however long the history."""

    __slots__ = ("anchor", "sums")

    def __init__(self) -> None:
        self.anchor: int | None = None
        self.sums: list[list[float]] = [[0.0, 0.0] for _ in _HALF_LIVES]

    def add(self, time_ms: int, cents: int) -> None:
        if self.anchor is None:
            self.anchor = time_ms
        if time_ms >= self.anchor:  # move the anchor forward: decay what is there to the new time
            for pair, half_life in zip(self.sums, _HALF_LIVES, strict=True):
                factor = 2.0 ** ((self.anchor - time_ms) / half_life)
                pair[0], pair[1] = pair[0] * factor + 1.0, pair[1] * factor + cents
            self.anchor = time_ms
        else:  # an older payment: weigh it at the anchor
            for pair, half_life in zip(self.sums, _HALF_LIVES, strict=True):
                weight = 2.0 ** ((time_ms - self.anchor) / half_life)
                pair[0] += weight
                pair[1] += cents * weight


class EntityHistory:
    """One entity's payments: the recent ones listed (with running sums), all of them decayed."""

    __slots__ = ("base", "cents", "everything", "folded", "recent_ids", "running", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.cents: list[int] = []
        self.running: list[int] = []  # running[i] = base + cents[0] + ... + cents[i]
        self.base = 0
        self.everything = _Decayed()  # every payment: the decayed features in O(1)
        self.folded = _Decayed()  # the payments no longer listed: for the exact slow path
        self.recent_ids: dict[str, int] = {}  # event id -> time, within LATENESS_MS of the newest (dedupe)

    def seen(self, event_id: str, time_ms: int) -> bool:
        """Whether ``event_id`` was seen here lately (a duplicate message); remembers it if not."""
        if event_id in self.recent_ids:
            return True
        self.recent_ids[event_id] = time_ms
        size = len(self.recent_ids)
        # Pruned at every 64th id, not on every payment (a busy merchant holds thousands): a function
        # of the ids alone, so the state does not depend on where batches were cut.
        if size > 64 and size % 64 == 0:
            newest = max(time_ms, self.times[-1] if self.times else time_ms)
            self.recent_ids = {i: t for i, t in self.recent_ids.items() if t >= newest - LATENESS_MS}
        return False

    def record(self, event_id: str, time_ms: int, cents: int) -> bool:
        """Add one payment unless its ``event_id`` was seen here lately; False for a duplicate. What both
        streaming runtimes do with each of an entity's payments, in the topic's order."""
        if self.seen(event_id, time_ms):
            return False
        self.add(time_ms, cents)
        return True

    def add(self, time_ms: int, cents: int) -> None:
        """Add one payment (in time order among the listed ones, whenever it arrives)."""
        self.everything.add(time_ms, cents)
        if self.times and time_ms < self.times[-1] - KEEP_MS:
            self.folded.add(time_ms, cents)  # older than anything still listed: outside every window
            return
        at = bisect.bisect_right(self.times, time_ms)
        self.times.insert(at, time_ms)
        self.cents.insert(at, cents)
        self.running.insert(at, (self.running[at - 1] if at else self.base) + cents)
        for n in range(at + 1, len(self.running)):  # a late payment: the few after it move up
            self.running[n] += cents
        cutoff = self.times[-1] - KEEP_MS
        if self.times[0] < cutoff:
            gone = bisect.bisect_left(self.times, cutoff)
            for t, c in zip(self.times[:gone], self.cents[:gone], strict=True):
                self.folded.add(t, c)
            self.base = self.running[gone - 1]
            del self.times[:gone], self.cents[:gone], self.running[:gone]

    def _sum(self, start: int, end: int) -> int:
        """The listed cents ``start:end``, from the running sums."""
        if end <= start:
            return 0
        return self.running[end - 1] - (self.running[start - 1] if start else self.base)

    def _decayed(self, n: int, end: int, t: int) -> tuple[float, float]:
        """Decayed (count, sum) of the payments before ``t`` for half-life ``n``: every payment's, less the
        few at or after t; summed directly where that subtraction would cancel most digits."""
        half_life, (count, total) = _HALF_LIVES[n], self.everything.sums[n]
        anchor = self.everything.anchor
        if anchor is None:
            return 0.0, 0.0
        later_count = later_sum = 0.0
        for time_ms, cents in zip(self.times[end:], self.cents[end:], strict=True):
            weight = 2.0 ** ((time_ms - anchor) / half_life)
            later_count += weight
            later_sum += cents * weight
        if later_count <= 0.5 * count:
            factor = 2.0 ** ((anchor - t) / half_life)
            return (count - later_count) * factor, (total - later_sum) * factor
        count = total = 0.0
        folded = self.folded.anchor
        if folded is not None and folded < t:
            factor = 2.0 ** ((folded - t) / half_life)
            count, total = self.folded.sums[n][0] * factor, self.folded.sums[n][1] * factor
        for time_ms, cents in zip(self.times[:end], self.cents[:end], strict=True):
            weight = 2.0 ** ((time_ms - t) / half_life)
            count += weight
            total += cents * weight
        return count, total

    def values(self, prefix: str, t: int) -> dict[str, float | int | None]:
        """Every feature of this entity as of ``t`` (payments strictly before ``t``), by name."""
        out: dict[str, float | int | None] = {}
        end = bisect.bisect_left(self.times, t)
        for label, window in WINDOWS_MS.items():
            start = bisect.bisect_left(self.times, t - window, 0, end)
            count, total = end - start, self._sum(start, end)
            out[f"{prefix}_count_{label}"] = count
            out[f"{prefix}_sum_{label}"] = total
            out[f"{prefix}_mean_{label}"] = total / count if count else None
        for n, label in enumerate(HALF_LIVES_MS):
            weight_sum, weighted = self._decayed(n, end, t)
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
