"""The legitimate look-alikes: payments that imitate a typology's signal without being fraud, so that
no single rule separates fraud (difficulty > 0 adds them; see :mod:`.fraud`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dotjoin.simulate.payments.geo import round_unit
from dotjoin.simulate.payments.planner import MINUTE, Builder, night
from dotjoin.simulate.payments.rows import ECOM, POS


def _transit_burst(b: Builder, look: int) -> None:
    w, rng = b.world, b.rng
    customer = b.customer()
    card, city = b.card(customer), int(w.home[customer])
    taps = w.merchants_where(POS, ("transit",), city)
    window = b.fit(int(rng.integers(2 * MINUTE, 10 * MINUTE)))
    start = b.when(window)
    for t in np.sort(rng.integers(start, start + window, int(rng.integers(5, 11)))).tolist():
        b.at_shop(t, card, b.pick(taps), b.usd(card, float(rng.uniform(1.0, 4.0))), look=look)


def _new_device_far(b: Builder, look: int) -> None:
    w, rng = b.world, b.rng
    customer = b.customer()
    card = b.card(customer)
    t = min(b.when() + min(MINUTE, (b.t1 - b.t0) // 2), b.t1 - 1)
    b.legit(t - int(rng.integers(min(30_000, t - b.t0), min(15 * MINUTE, t - b.t0) + 1)), customer, card)
    far = np.flatnonzero(b.far[int(w.home[customer])])
    merchant = int(w.ecom_index[np.searchsorted(w.ecom_cum, rng.random(), side="right")])
    b.add(
        t,
        card,
        merchant,
        ECOM,
        b.factor(card, (0.5, 2.0)),
        b.new_device(),
        b.spot(int(far[rng.integers(len(far))])),
        look=look,
    )


def _round_amounts(b: Builder, look: int) -> None:
    w, rng = b.world, b.rng
    customer = b.customer()
    card, city = b.card(customer), int(w.home[customer])
    shops = w.merchants_where(POS, ("electronics", "clothing", "restaurants"), city)
    unit = round_unit(str(w.card_currency[card]))
    for _ in range(int(rng.integers(2, 5))):
        b.at_shop(b.when(), card, b.pick(shops), float(rng.choice([50, 100, 200])) * unit, look=look)


def _repeat_purchase(b: Builder, look: int) -> None:
    w, rng = b.world, b.rng
    customer = b.customer()
    card = b.card(customer)
    shop = b.pick(w.merchants_where(POS, ("restaurants", "grocery", "fuel"), int(w.home[customer])))
    delay = b.fit(int(rng.integers(MINUTE, 5 * MINUTE)))
    t = b.when(delay)
    b.at_shop(t, card, shop, b.shop_amount(card, shop), look=look)
    b.at_shop(t + delay, card, shop, b.shop_amount(card, shop), look=look)


def _big_ticket(b: Builder, look: int) -> None:
    w, rng = b.world, b.rng
    customer = b.customer()
    card, city = b.card(customer), int(w.home[customer])
    amount = b.factor(card, (5.0, 15.0))
    if rng.random() < 0.5:
        b.at_shop(
            b.when(),
            card,
            b.pick(w.merchants_where(POS, ("electronics", "jewelry", "hotels"), city)),
            amount,
            look=look,
        )
    else:
        device = bytes(w.device_frag[int(w.device_start[customer])])
        shop = b.pick(w.merchants_where(ECOM, ("travel", "electronics")))
        b.add(b.when(), card, shop, ECOM, amount, device, b.spot(city), look=look)


def _night_owl(b: Builder, look: int) -> None:
    w = b.world
    t, city = night(b, 0)
    customer = b.customer(city)
    card = b.card(customer)
    shop = b.pick(w.merchants_where(ECOM, ("digital_goods", "gift_cards", "streaming")))
    b.add(t, card, shop, ECOM, b.factor(card, (1.0, 2.5)), b.new_device(), b.spot(city, 0.02), look=look)


#: One maker per entry of ``planner.LOOKALIKES``, in that order.
LOOKALIKE_MAKERS: tuple[Callable[[Builder, int], None], ...] = (
    _transit_burst,
    _new_device_far,
    _round_amounts,
    _repeat_purchase,
    _big_ticket,
    _night_owl,
)
