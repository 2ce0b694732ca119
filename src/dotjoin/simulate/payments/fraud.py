"""The fraud plan of a run: labelled scenarios of six typologies, their legitimate companions, and the
legitimate look-alikes the difficulty knob adds.

Each typology leaves a signal (at difficulty 0; :class:`Signal` says how difficulty ``d`` shrinks it):

* ``card_testing`` — one card, a burst of 5-20 tiny online charges (0.50-4.99 USD) at 1-3 online
  merchants within 2 minutes (up to 10 at ``d = 1``), from a device the customer never used.
* ``account_takeover`` — one online charge from a new device in a city over 1,500 km from the card's
  home, minutes after a legitimate payment at home (impossible travel), 5-20x the card's typical amount.
* ``merchant_collusion`` — a ring of 3-5 shops in one city and 10-30 local cards: repeated round amounts
  (100, 200, 500, 1000 times the currency's round unit) among themselves over the whole run.
* ``compromised_terminal`` — one shop; many distinct local cards each get a second, different charge
  there 1-5 minutes after their legitimate purchase (the companion payment, not fraud).
* ``high_amount`` — one charge 10-50x the card's typical at an everyday merchant (grocery, fuel…).
* ``stealthy`` — 1-3 online charges only 2-3x the card's typical (under a plain z-score threshold) at
  gift-card, crypto or digital-goods merchants, at the customer's night (solar hour 0-5), from a new
  device, located at home: no single rule separates it; a model combining the features does.

Look-alikes (legitimate, unlabelled; ``d`` of them per fraud payment of the typology they imitate):
bursts of small transit taps, travellers paying online from far away on a new device, round-amount
purchases, two purchases at one shop minutes apart, big-ticket purchases, night-owl digital purchases
on a new phone.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from dotjoin.pipelines.payments.contract import TYPOLOGIES, Typology
from dotjoin.simulate.payments.geo import CITIES, round_unit
from dotjoin.simulate.payments.lookalikes import LOOKALIKE_MAKERS
from dotjoin.simulate.payments.planner import LOOKALIKES, MINUTE, TYP, Builder, Plan, Signal, night
from dotjoin.simulate.payments.rows import ECOM, POS
from dotjoin.simulate.payments.world import World

__all__ = ["LOOKALIKES", "SHARES", "Plan", "Signal", "plan"]

#: Share of the fraud payments of each typology.
SHARES: dict[Typology, float] = {
    "card_testing": 0.20,
    "account_takeover": 0.12,
    "merchant_collusion": 0.18,
    "compromised_terminal": 0.18,
    "high_amount": 0.12,
    "stealthy": 0.20,
}
ROUND_STEPS = (100, 200, 500, 1000)
EVERYDAY = ("grocery", "restaurants", "fuel", "pharmacy", "clothing")
HIGH_RISK = ("gift_cards", "crypto_exchange", "digital_goods")


def plan(
    world: World, seed: int, *, t0: int, t1: int, events: int, fraud_rate: float, difficulty: float
) -> Plan:
    """The planned payments of a run of ``events`` payments in ``[t0, t1)`` (epoch ms)."""
    b = Builder(world, np.random.default_rng([seed, 1]), t0, t1, Signal(difficulty))
    fraud = round(events * fraud_rate)
    done: Counter[str] = Counter()
    if fraud > 0:
        for typology in TYPOLOGIES:
            before = sum(s.events for s in b.scenarios)
            _TYPOLOGY[typology](b, max(1, round(fraud * SHARES[typology])))
            done[typology] = sum(s.events for s in b.scenarios) - before
        for look, typology in enumerate(TYPOLOGIES):
            count = round(done[typology] * b.signal.lookalikes_per_fraud)
            while b.lookalikes[LOOKALIKES[look]] < count:
                LOOKALIKE_MAKERS[look](b, look)
    return Plan(b.rows(), b.scenarios, {k: b.lookalikes[k] for k in LOOKALIKES})


def _card_testing(b: Builder, budget: int) -> None:
    w, rng, s = b.world, b.rng, b.signal
    merchants = w.merchants_where(ECOM, ("digital_goods", "streaming", "marketplace", "gift_cards"))
    left = budget
    while left > 0:
        n = max(5, min(int(rng.integers(s.card_testing_events[0], s.card_testing_events[1] + 1)), left))
        left -= n
        scen = b.scenario("card_testing")
        card = b.card(b.customer())
        window = b.fit(s.card_testing_window_ms)
        start = b.when(window)
        shops = [b.pick(merchants) for _ in range(int(rng.integers(1, 4)))]
        device, city = b.new_device(), int(rng.integers(len(CITIES)))
        where = b.spot(city)
        for t in np.sort(rng.integers(start, start + window, n)).tolist():
            amount = b.usd(card, float(rng.uniform(*s.card_testing_usd)), floor=True)
            b.add(t, card, b.pick(shops), ECOM, amount, device, where, typ=TYP["card_testing"], scen=scen)


def _account_takeover(b: Builder, budget: int) -> None:
    w, rng, s = b.world, b.rng, b.signal
    merchants = w.merchants_where(
        ECOM, ("electronics", "travel", "marketplace", "gift_cards", "money_transfer")
    )
    for _ in range(budget):
        scen = b.scenario("account_takeover")
        customer = b.customer()
        card = b.card(customer)
        t = b.when() + min(MINUTE, (b.t1 - b.t0) // 2)
        t = min(t, b.t1 - 1)
        gap = int(rng.integers(min(30_000, t - b.t0), min(15 * MINUTE, t - b.t0) + 1))
        b.legit(t - gap, customer, card)  # the real card holder, at home, shortly before
        far = np.flatnonzero(b.far[int(w.home[customer])])
        where = b.spot(int(far[rng.integers(len(far))]))
        b.add(
            t,
            card,
            b.pick(merchants),
            ECOM,
            b.factor(card, s.takeover_factor),
            b.new_device(),
            where,
            typ=TYP["account_takeover"],
            scen=scen,
        )


def _merchant_collusion(b: Builder, budget: int) -> None:
    w, rng, s = b.world, b.rng, b.signal
    rings = max(1, round(budget / 200))
    for ring in range(rings):
        n = max(10, budget // rings + (ring < budget % rings))
        scen = b.scenario("merchant_collusion")
        size = int(rng.integers(10, 31))
        city = b.city_with(size)
        shops = w.merchants_where(POS, ("electronics", "jewelry", "clothing", "restaurants", "hotels"), city)
        shops = rng.permutation(shops)[: int(rng.integers(3, 6))].tolist()
        cards = [b.card(b.customer(city)) for _ in range(size)]
        for _ in range(n):
            card = b.pick(cards)
            unit = round_unit(str(w.card_currency[card]))
            amount = float(ROUND_STEPS[int(rng.integers(len(ROUND_STEPS)))]) * unit
            if rng.random() < s.near_round_share:
                amount = round(amount * float(rng.uniform(0.9, 1.1)) / unit) * unit
                amount += unit if amount % (50 * unit) == 0 else 0.0
            b.at_shop(b.when(), card, b.pick(shops), amount, typ=TYP["merchant_collusion"], scen=scen)


def _compromised_terminal(b: Builder, budget: int) -> None:
    w, rng, s = b.world, b.rng, b.signal
    terminals = max(1, round(budget / 150))
    for terminal in range(terminals):
        victims = max(5, budget // terminals + (terminal < budget % terminals))
        scen = b.scenario("compromised_terminal")
        city = b.city_with(victims)
        shop = b.pick(w.merchants_where(POS, ("grocery", "fuel", "restaurants", "pharmacy"), city))
        for _ in range(victims):
            card = b.card(b.customer(city))
            delay = b.fit(int(rng.integers(*s.terminal_delay_ms)))
            t = b.when(delay)
            legit = b.shop_amount(card, shop)
            b.at_shop(t, card, shop, legit)
            amount = b.usd(card, legit / float(w.card_rate[card]) * float(rng.uniform(*s.terminal_factor)))
            if amount == legit:
                amount += 10.0 ** -int(w.card_decimals[card])  # rounded to the cent by rows()
            b.at_shop(t + delay, card, shop, amount, typ=TYP["compromised_terminal"], scen=scen)


def _high_amount(b: Builder, budget: int) -> None:
    w, rng, s = b.world, b.rng, b.signal
    online = w.merchants_where(ECOM, ("marketplace", "clothing"))
    for _ in range(budget):
        scen = b.scenario("high_amount")
        customer = b.customer()
        card = b.card(customer)
        amount = b.factor(card, s.high_factor)
        city = int(w.home[customer])
        if rng.random() < 0.5:
            b.at_shop(
                b.when(),
                card,
                b.pick(w.merchants_where(POS, EVERYDAY, city)),
                amount,
                typ=TYP["high_amount"],
                scen=scen,
            )
        else:
            device = bytes(w.device_frag[int(w.device_start[customer])])
            b.add(
                b.when(),
                card,
                b.pick(online),
                ECOM,
                amount,
                device,
                b.spot(city),
                typ=TYP["high_amount"],
                scen=scen,
            )


def _stealthy(b: Builder, budget: int) -> None:
    w, rng, s = b.world, b.rng, b.signal
    merchants = w.merchants_where(ECOM, HIGH_RISK)
    left = budget
    while left > 0:
        n = min(int(rng.integers(1, 4)), left)
        left -= n
        scen = b.scenario("stealthy")
        span = min(20 * MINUTE, (b.t1 - b.t0) // 2)
        t, city = night(b, span)
        customer = b.customer(city)
        card, device, where = b.card(customer), b.new_device(), b.spot(city, 0.02)
        for ti in np.sort(rng.integers(t, t + span + 1, n)).tolist():
            b.add(
                ti,
                card,
                b.pick(merchants),
                ECOM,
                b.factor(card, s.stealthy_factor),
                device,
                where,
                typ=TYP["stealthy"],
                scen=scen,
            )


_TYPOLOGY = {
    "card_testing": _card_testing,
    "account_takeover": _account_takeover,
    "merchant_collusion": _merchant_collusion,
    "compromised_terminal": _compromised_terminal,
    "high_amount": _high_amount,
    "stealthy": _stealthy,
}
