"""The planner's toolbox: the signal each typology leaves at a difficulty, scenarios, and the
:class:`Builder` that collects the planned payments (:mod:`.fraud` and :mod:`.lookalikes` use it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.payments.contract import TYPOLOGIES, Typology
from dotjoin.simulate.payments.geo import CITIES, city_distances, solar_hour
from dotjoin.simulate.payments.rows import LEGIT, POS, Rows
from dotjoin.simulate.payments.world import World, legit_rows

LOOKALIKES: tuple[str, ...] = (
    "transit_burst",  # imitates card_testing
    "new_device_far",  # account_takeover
    "round_amounts",  # merchant_collusion
    "repeat_purchase",  # compromised_terminal
    "big_ticket",  # high_amount
    "night_owl",  # stealthy
)
FAR_KM = 1500.0  # account takeovers and far look-alikes happen in a city at least this far from home
MINUTE = 60_000
TYP = {t: i for i, t in enumerate(TYPOLOGIES)}  # the ``typ`` code of each typology


@dataclass(frozen=True)
class Signal:
    """What each typology looks like at ``difficulty`` (0 = the plain signal, 1 = hardest)."""

    difficulty: float

    @property
    def card_testing_window_ms(self) -> int:
        return int((2 + 8 * self.difficulty) * MINUTE)

    card_testing_events: tuple[int, int] = (5, 20)
    card_testing_usd: tuple[float, float] = (0.50, 4.99)

    @property
    def takeover_factor(self) -> tuple[float, float]:
        return 5 - 2 * self.difficulty, 20 - 12 * self.difficulty

    @property
    def near_round_share(self) -> float:
        """Share of collusion amounts only near a round number (470 instead of 500)."""
        return 0.5 * self.difficulty

    terminal_delay_ms: tuple[int, int] = (1 * MINUTE, 5 * MINUTE)

    @property
    def terminal_factor(self) -> tuple[float, float]:
        return 1.5 - 0.7 * self.difficulty, 4 - 2.5 * self.difficulty

    @property
    def high_factor(self) -> tuple[float, float]:
        return 10 - 5 * self.difficulty, 50 - 30 * self.difficulty

    @property
    def stealthy_factor(self) -> tuple[float, float]:
        return 2 - 0.5 * self.difficulty, 3.0

    @property
    def lookalikes_per_fraud(self) -> float:
        return self.difficulty


@dataclass
class Scenario:
    scenario_id: str
    typology: Typology
    cards: list[str] = field(default_factory=list)
    merchants: list[str] = field(default_factory=list)
    events: int = 0
    start_ms: int = 0
    end_ms: int = 0


@dataclass
class Plan:
    rows: Rows  # fraud payments, their companions and the look-alikes, by event time
    scenarios: list[Scenario]
    lookalikes: dict[str, int]  # payments per look-alike kind


class Builder:
    """Collects the planned payments row by row (they are few) and the scenarios they belong to."""

    def __init__(self, world: World, rng: np.random.Generator, t0: int, t1: int, signal: Signal) -> None:
        self.world, self.rng, self.t0, self.t1, self.signal = world, rng, t0, t1, signal
        self.columns: dict[str, list[Any]] = {name: [] for name in Rows.__dataclass_fields__}
        self.scenarios: list[Scenario] = []
        self.numbers: Counter[str] = Counter()
        self.lookalikes: Counter[str] = Counter()
        self.used = np.zeros(world.customers, dtype=bool)
        self.at_home = world.home == world.current
        self.devices = 0
        self.by_city: dict[int, npt.NDArray[np.int64]] = {}
        self.far = city_distances() > FAR_KM
        self.city_people = np.bincount(world.home[self.at_home], minlength=len(CITIES))  # free ones

    # -- who, where, how much
    def customer(self, city: int | None = None) -> int:
        """A customer at home, not yet part of another scenario or look-alike."""
        if city is not None and city not in self.by_city:
            self.by_city[city] = self.world.customers_in(city)
        pool = self.by_city[city] if city is not None else None
        size = len(pool) if pool is not None else self.world.customers
        for _ in range(200):
            c = int(pool[self.rng.integers(size)]) if pool is not None else int(self.rng.integers(size))
            if self.at_home[c] and not self.used[c]:
                return self._take(c)
        free = pool[~self.used[pool]] if pool is not None else np.flatnonzero(self.at_home & ~self.used)
        if len(free) == 0:
            raise ConfigError("the fraud plan ran out of customers: raise `customers` or lower fraud_rate")
        return self._take(int(free[self.rng.integers(len(free))]))

    def _take(self, customer: int) -> int:
        self.used[customer] = True
        self.city_people[self.world.home[customer]] -= 1
        return customer

    def card(self, customer: int) -> int:
        w = self.world
        return int(w.card_start[customer] + self.rng.integers(w.card_count[customer]))

    def new_device(self) -> bytes:
        self.devices += 1
        return self.world.new_device(self.devices)

    def city_with(self, customers: int) -> int:
        """A city (bigger ones likelier) with at least ``customers`` free customers at home."""
        fits = self.city_people >= customers
        if not fits.any():
            raise ConfigError("no city has enough customers for the fraud plan: raise `customers`")
        weight = np.where(fits, [c.population_m for c in CITIES], 0.0)
        return int(self.rng.choice(len(CITIES), p=weight / weight.sum()))

    def spot(self, city: int, spread: float = 0.04) -> tuple[float, float, str]:
        w = self.world
        lat = round(float(np.clip(w.city_lat[city] + self.rng.normal(0, spread), -90, 90)), 5)
        lon = round(float(np.clip(w.city_lon[city] + self.rng.normal(0, spread), -180, 180)), 5)
        return lat, lon, str(w.city_country[city])

    def usd(self, card: int, usd: float, *, floor: bool = False) -> float:
        """``usd`` in the card's currency, rounded (``floor``: down) to its minor unit."""
        w = self.world
        if not floor:
            return w.local_amount(card, usd)
        scale = 10 ** int(w.card_decimals[card])
        return max(1, math.floor(usd * float(w.card_rate[card]) * scale)) / scale

    def factor(self, card: int, bounds: tuple[float, float]) -> float:
        """The card's typical amount times a factor drawn in ``bounds``, in the card's currency."""
        w = self.world
        usd = float(w.typical[card] / w.card_rate[card]) * float(self.rng.uniform(*bounds))
        return w.local_amount(card, usd)

    def fit(self, span_ms: int) -> int:
        """``span_ms``, shortened to fit in the run."""
        return max(1, min(span_ms, self.t1 - self.t0 - 1))

    def when(self, room_ms: int = 0) -> int:
        """A time in the run with ``room_ms`` (shortened by :meth:`fit`) left after it."""
        room = self.fit(room_ms) if room_ms else 0
        return int(self.rng.integers(self.t0, self.t1 - room))

    def pick(self, items: Sequence[int]) -> int:
        return int(items[int(self.rng.integers(len(items)))])

    # -- rows
    def add(
        self,
        t: int,
        card: int,
        merchant: int,
        channel: int,
        amount: float,
        device: bytes,
        where: tuple[float, float, str],
        typ: int = LEGIT,
        scen: int = LEGIT,
        look: int = LEGIT,
    ) -> None:
        """One planned payment; ``device`` is the device_id JSON fragment, ``where`` (lat, lon, country)."""
        lat, lon, country = where
        values = (t, card, merchant, channel, amount, device, lat, lon, country.encode(), typ, scen, look)
        for name, value in zip(self.columns, values, strict=True):
            self.columns[name].append(value)
        if look != LEGIT:
            self.lookalikes[LOOKALIKES[look]] += 1
        if scen != LEGIT:
            s = self.scenarios[scen]
            s.events += 1
            s.start_ms = t if s.events == 1 else min(s.start_ms, t)
            s.end_ms = max(s.end_ms, t)
            card_id, merchant_id = self.world.card_ids[card].decode(), self.world.m_ids[merchant].decode()
            if card_id not in s.cards:
                s.cards.append(card_id)
            if merchant_id not in s.merchants:
                s.merchants.append(merchant_id)

    def legit(self, t: int, customer: int, card: int, look: int = LEGIT) -> None:
        """An ordinary payment of ``card`` at ``t`` (in the customer's city)."""
        r = legit_rows(
            self.world, self.rng, np.array([t]), customers=np.array([customer]), cards=np.array([card])
        )
        where = (float(r.lat[0]), float(r.lon[0]), r.country[0].decode())
        self.add(
            t,
            card,
            int(r.merchant[0]),
            int(r.channel[0]),
            float(r.amount[0]),
            bytes(r.device[0]),
            where,
            look=look,
        )

    def at_shop(self, t: int, card: int, merchant: int, amount: float, **kw: int) -> None:
        w = self.world
        where = (float(w.m_lat[merchant]), float(w.m_lon[merchant]), str(w.m_country[merchant]))
        self.add(t, card, merchant, POS, amount, b"null", where, **kw)

    def scenario(self, typology: Typology) -> int:
        self.numbers[typology] += 1
        self.scenarios.append(Scenario(f"{typology}-{self.numbers[typology]}", typology))
        return len(self.scenarios) - 1

    def shop_amount(self, card: int, merchant: int) -> float:
        w = self.world
        customer = int(w.card_customer[card])
        usd = np.exp(w.m_mu[merchant] + w.m_sigma[merchant] * self.rng.standard_normal()) * w.scale[customer]
        return w.local_amount(card, float(usd))

    def rows(self) -> Rows:
        rows = Rows.from_lists(self.columns)
        scale = 10.0 ** self.world.card_decimals[rows.card]
        rows.amount = np.rint(rows.amount * scale) / scale  # exact cents: 12.34, never 12.340000000000002
        return rows.take(np.argsort(rows.t, kind="stable"))


def night(b: Builder, span_ms: int) -> tuple[int, int]:
    """A time in the run and a city where it is night (solar 00:15-04:30) from then for ``span_ms``."""
    lon = b.world.city_lon
    for _ in range(1000):
        t = b.when(span_ms)
        start, end = solar_hour(t, lon), solar_hour(t + span_ms, lon)
        dark = (start >= 0.25) & (end <= 4.5) & (end >= start) & (b.city_people > 0)
        if dark.any():
            weight = np.where(dark, b.city_people, 0)
            return t, int(b.rng.choice(len(lon), p=weight / weight.sum()))
    raise ConfigError("the fraud plan ran out of customers at night: raise `customers` or lower fraud_rate")
