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

Plain Python on purpose: the same object runs in every runtime. A card's state is a ``msgspec``
struct of plain lists and dicts: checkpoints and Spark's state store encode it as MessagePack in C
(~2.5 µs a card, where copying it to tuples and pickling took ~10), and it is not tracked by the
cyclic garbage collector (``gc=False``: it holds no reference cycles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from dotjoin.pipelines.payments.contract import HIGH_RISK_CATEGORIES, Payment

MINUTE_MS = 60_000
TEN_MINUTES_MS = 10 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS
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


class CardState(msgspec.Struct, array_like=True, gc=False):
    """What one card's history says, in O(window) memory."""

    recent: list[tuple[int, float]] = msgspec.field(default_factory=list)  # (event ms, amount), last hour
    n: int = 0  # Welford running statistics of log(amount)
    mean: float = 0.0
    m2: float = 0.0
    last_ms: int | None = None
    last_lat: float = 0.0
    last_lon: float = 0.0
    devices: dict[str, None] = msgspec.field(default_factory=dict)  # insertion-ordered set
    visits: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)  # merchant -> (ms, amount)
    rounds: list[int] = msgspec.field(default_factory=list)  # event ms of round-amount charges, last hour
    # The detector's event-time clock and id memory of the card (detector.py), kept here so that a card
    # is one lookup and one struct to encode.
    max_ms: int = 0  # the largest event time seen
    ids: dict[str, int] = msgspec.field(default_factory=dict)  # event id -> event ms, lateness horizon


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
    (1, 1, 0.5)
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

    def observe(self, p: Payment, card: CardState | None = None) -> list[float | int | bool]:
        """``p``'s features; then ``p`` joins its card's state (``card``: that state, looked up already)."""
        # The detector's hot loop (about 8 µs an event): names bound once, no float() around counts
        # and flags (the detector's float64 matrix converts them exactly).
        if card is None:
            card = self.cards.get(p.card_id)
            if card is None:
                card = self.cards[p.card_id] = CardState(max_ms=p.event_time_ms)
        merchant_id = p.merchant_id
        info = self.merchants.get(merchant_id, UNKNOWN_MERCHANT)
        # Amounts in US dollars: thresholds (tiny probes, category typicals) mean the same in every currency.
        t, raw, channel = p.event_time_ms, p.amount, p.channel
        amount = raw / self.usd_rates.get(p.currency, 1.0)
        log_amount = math.log1p(amount)

        recent = card.recent
        hour_ago = t - HOUR_MS
        if recent and recent[0][0] <= hour_ago:  # expire the leading entries up to the first later one
            k = 1
            while k < len(recent) and recent[k][0] <= hour_ago:
                k += 1
            del recent[:k]
        count_1m = count_10m = small_10m = 0
        sum_1h = 0.0
        if recent:
            ten_ago, minute_ago = t - TEN_MINUTES_MS, t - MINUTE_MS
            for ts, amt in recent:
                if ts > t:  # an out-of-order event: only the past counts
                    continue
                sum_1h += amt
                if ts > ten_ago:
                    count_10m += 1
                    if amt <= SMALL_AMOUNT:
                        small_10m += 1
                    if ts > minute_ago:
                        count_1m += 1
        count_1h = len(recent)

        n, mean = card.n, card.mean
        if n >= 2:
            z = (log_amount - mean) / max(math.sqrt(card.m2 / (n - 1)), 0.25)
            ratio = amount / math.expm1(mean) if mean > 0 else 1.0
        else:
            z, ratio = 0.0, 1.0
        lat, lon = p.latitude, p.longitude
        last_ms = card.last_ms
        if last_ms is None:
            distance = speed = 0.0
        else:
            distance = haversine_km(card.last_lat, card.last_lon, lat, lon)
            speed = distance / (max(abs(t - last_ms), MINUTE_MS) / 3_600_000)
        device = p.device_id
        devices = card.devices
        # New only against a known device: a card's first online charge has nothing to differ from.
        new_device = device is not None and bool(devices) and device not in devices
        visits = card.visits
        last_visit = visits.get(merchant_id)
        if last_visit is None:
            gap_min, same_merchant_ratio = 24 * 60.0, 1.0
        else:
            gap_min = min(abs(t - last_visit[0]) / MINUTE_MS, 24 * 60.0)
            same_merchant_ratio = amount / max(last_visit[1], 0.01)
        round_amount = channel != "atm" and is_round(raw)  # in the card's currency; cash is round
        rounds = card.rounds
        if rounds and rounds[0] <= hour_ago:
            k = 1
            while k < len(rounds) and rounds[k] <= hour_ago:
                k += 1
            del rounds[:k]
        category = info.category
        typical = self.category_usd.get(category)
        hour = ((t / 3_600_000) + lon / 15.0) % 24  # local solar hour: no time-zone table needed
        features = [
            amount,
            log_amount,
            ratio,
            z,
            count_1m,
            count_10m,
            count_1h,
            small_10m,
            sum_1h,
            distance,
            speed,
            new_device,
            channel == "ecom",
            channel == "atm",
            hour < 5.0,
            info.risk,
            category in HIGH_RISK_CATEGORIES,
            round_amount,
            gap_min,
            same_merchant_ratio,
            len(rounds),
            amount / typical if typical else 1.0,
            n if n < 1000 else 1000,
        ]

        # Add the event (Welford for the amount statistics).
        recent.append((t, amount))
        n += 1
        delta = log_amount - mean
        mean += delta / n
        card.n, card.mean = n, mean
        card.m2 += delta * (log_amount - mean)
        if last_ms is None or t >= last_ms:
            card.last_ms, card.last_lat, card.last_lon = t, lat, lon
        if device is not None:
            devices.pop(device, None)
            devices[device] = None
            if len(devices) > MAX_DEVICES:
                del devices[next(iter(devices))]
        visits.pop(merchant_id, None)
        visits[merchant_id] = (t, amount)
        if len(visits) > MAX_MERCHANTS:
            del visits[next(iter(visits))]
        if round_amount:
            rounds.append(t)
        return features
