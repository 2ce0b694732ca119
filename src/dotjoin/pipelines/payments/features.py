"""Per-card streaming state, and the features of one payment computed from it and the reference data.

Every feature of an event is computed from the state *before* the event is added (no look-ahead: a
model trained on replayed history sees exactly what the live detector sees), then the event updates
the state. Windows are on event time.

State is keyed by card only (windows, running amount statistics, last position, known devices, last
visit and amount per merchant): the topic is keyed by card, so one card's events arrive in one
partition, in order, and the features are the same however a runtime interleaves partitions — the
embedded log, Kafka with a consumer group, Spark's ``applyInPandasWithState`` grouped by card, a replay.
Cross-card aggregates (a merchant's distinct cards in the last hour) would depend on that interleaving;
measured on a 10-minute run they added nothing to the classifier's precision or recall (0.888 / 0.869
with them, 0.877 / 0.889 without). What is known about merchants comes from the reference data: the
merchants table (category, risk) and each category's typical amount, learned at training time.

Plain Python on purpose: the same object runs in every runtime; it pickles for checkpoints.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from dotjoin.pipelines.payments.contract import HIGH_RISK_CATEGORIES, Payment

MINUTE_MS = 60_000
WINDOWS_MS = {"1m": MINUTE_MS, "10m": 10 * MINUTE_MS, "1h": 60 * MINUTE_MS}
SMALL_AMOUNT = 5.0  # card-testing probes are tiny
MAX_DEVICES = 16  # devices remembered per card (oldest forgotten first)
MAX_MERCHANTS = 32  # last visit times remembered per card
EARTH_KM = 6371.0088

FEATURES: tuple[str, ...] = (
    "amount",  # in US dollars (FeatureState's rates), as every amount feature
    "log_amount",
    "amount_ratio",
    "amount_z",
    "count_1m",
    "count_10m",
    "count_1h",
    "small_count_10m",
    "sum_1h",
    "distance_km",
    "speed_kmh",
    "new_device",
    "ecom",
    "atm",
    "night",
    "merchant_risk",
    "risky_category",
    "round_amount",
    "same_merchant_gap_min",
    "same_merchant_amount_ratio",
    "round_count_1h",
    "category_ratio",
    "card_history",
)


@dataclass(frozen=True, slots=True)
class MerchantInfo:
    """The reference data the stream is joined with (the merchants table)."""

    category: str
    risk: float


UNKNOWN_MERCHANT = MerchantInfo(category="unknown", risk=0.5)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km.

    >>> round(haversine_km(52.52, 13.405, 48.8566, 2.3522))  # Berlin - Paris
    877
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(slots=True)
class CardState:
    """What one card's history says, in O(window) memory."""

    recent: deque[tuple[int, float]] = field(default_factory=deque)  # (event ms, amount), last hour
    n: int = 0  # Welford running statistics of log(amount)
    mean: float = 0.0
    m2: float = 0.0
    last_ms: int | None = None
    last_lat: float = 0.0
    last_lon: float = 0.0
    devices: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    visits: dict[str, tuple[int, float]] = field(default_factory=dict)  # merchant -> (last event ms, amount)
    rounds: deque[int] = field(default_factory=deque)  # event ms of round-amount charges, last hour

    def flat(self) -> tuple[Any, ...]:
        """Plain tuples for checkpoints: pickling these is ~3x faster than the dataclass."""
        return (tuple(self.recent), self.n, self.mean, self.m2, self.last_ms, self.last_lat, self.last_lon,
                tuple(self.devices), tuple(self.visits.items()), tuple(self.rounds))  # fmt: skip

    @classmethod
    def from_flat(cls, f: tuple[Any, ...]) -> CardState:
        return cls(
            deque(f[0]), f[1], f[2], f[3], f[4], f[5], f[6], dict.fromkeys(f[7]), dict(f[8]), deque(f[9])
        )


def is_round(amount: float) -> bool:
    """A whole multiple of 100 (of any currency unit): what rings and mules move.

    >>> is_round(500.0), is_round(20000.0), is_round(99.99), is_round(50.0)
    (True, True, False, False)
    """
    return amount >= 100 and amount % 100 == 0


class FeatureState:
    """The keyed state of the detector; :meth:`observe` returns an event's features and adds it.

    >>> from types import SimpleNamespace as P
    >>> s = FeatureState({})
    >>> e = dict(card_id="c", merchant_id="m", currency="EUR", channel="pos", device_id=None)
    >>> e |= dict(latitude=0.0, longitude=0.0)
    >>> _ = s.observe(P(event_id="1", event_time_ms=0, amount=10.0, **e))
    >>> f = dict(zip(FEATURES, s.observe(P(event_id="2", event_time_ms=30_000, amount=20.0, **e))))
    >>> f["count_1m"], f["card_history"], f["same_merchant_gap_min"]
    (1.0, 1.0, 0.5)
    """

    def __init__(
        self,
        merchants: dict[str, MerchantInfo],
        usd_rates: dict[str, float] | None = None,
        category_usd: dict[str, float] | None = None,
    ) -> None:
        self.merchants = merchants
        self.usd_rates = usd_rates or {}  # currency -> units per US dollar; missing: amounts as given
        self.category_usd = category_usd or {}  # category -> typical (median) amount in US dollars
        self.cards: dict[str, CardState] = {}

    def observe(self, p: Payment) -> list[float]:
        card = self.cards.get(p.card_id)
        if card is None:
            card = self.cards[p.card_id] = CardState()
        info = self.merchants.get(p.merchant_id, UNKNOWN_MERCHANT)
        # Amounts in US dollars: thresholds (tiny probes, category typicals) mean the same in every currency.
        t, amount = p.event_time_ms, p.amount / self.usd_rates.get(p.currency, 1.0)
        log_amount = math.log1p(amount)

        recent = card.recent
        while recent and recent[0][0] <= t - WINDOWS_MS["1h"]:
            recent.popleft()
        count_1m = count_10m = small_10m = 0
        sum_1h = 0.0
        for ts, amt in recent:
            if ts > t:  # an out-of-order event: only the past counts
                continue
            sum_1h += amt
            if ts > t - WINDOWS_MS["10m"]:
                count_10m += 1
                small_10m += amt <= SMALL_AMOUNT
                if ts > t - WINDOWS_MS["1m"]:
                    count_1m += 1
        count_1h = len(recent)

        if card.n >= 2:
            std = math.sqrt(card.m2 / (card.n - 1))
            z = (log_amount - card.mean) / max(std, 0.25)
            ratio = amount / math.expm1(card.mean) if card.mean > 0 else 1.0
        else:
            z, ratio = 0.0, 1.0
        if card.last_ms is None:
            distance = speed = 0.0
        else:
            distance = haversine_km(card.last_lat, card.last_lon, p.latitude, p.longitude)
            hours = max(abs(t - card.last_ms), MINUTE_MS) / 3_600_000
            speed = distance / hours
        device = p.device_id
        # New only against a known device: a card's first online charge has nothing to differ from.
        new_device = float(device is not None and bool(card.devices) and device not in card.devices)
        last_visit = card.visits.get(p.merchant_id)
        if last_visit is None:
            gap_min, same_merchant_ratio = 24 * 60.0, 1.0
        else:
            gap_min = min(abs(t - last_visit[0]) / MINUTE_MS, 24 * 60.0)
            same_merchant_ratio = amount / max(last_visit[1], 0.01)
        round_amount = p.channel != "atm" and is_round(p.amount)  # in the card's currency; cash is round
        rounds = card.rounds
        while rounds and rounds[0] <= t - WINDOWS_MS["1h"]:
            rounds.popleft()
        typical = self.category_usd.get(info.category)
        category_ratio = amount / typical if typical else 1.0
        hour = ((t / 3_600_000) + p.longitude / 15.0) % 24  # local solar hour: no time-zone table needed
        features = [
            amount,
            log_amount,
            ratio,
            z,
            float(count_1m),
            float(count_10m),
            float(count_1h),
            float(small_10m),
            sum_1h,
            distance,
            speed,
            new_device,
            float(p.channel == "ecom"),
            float(p.channel == "atm"),
            float(hour < 5.0),
            info.risk,
            float(info.category in HIGH_RISK_CATEGORIES),
            float(round_amount),
            gap_min,
            same_merchant_ratio,
            float(len(rounds)),
            category_ratio,
            float(min(card.n, 1000)),
        ]

        # Add the event (Welford for the amount statistics).
        recent.append((t, amount))
        card.n += 1
        delta = log_amount - card.mean
        card.mean += delta / card.n
        card.m2 += delta * (log_amount - card.mean)
        if card.last_ms is None or t >= card.last_ms:
            card.last_ms, card.last_lat, card.last_lon = t, p.latitude, p.longitude
        if device is not None:
            card.devices.pop(device, None)
            card.devices[device] = None
            if len(card.devices) > MAX_DEVICES:
                del card.devices[next(iter(card.devices))]
        card.visits.pop(p.merchant_id, None)
        card.visits[p.merchant_id] = (t, amount)
        if len(card.visits) > MAX_MERCHANTS:
            del card.visits[next(iter(card.visits))]
        if round_amount:
            rounds.append(t)
        return features
