"""The simulated world: customers in real cities, their cards and devices, merchants; and the legitimate
payments they make.

* Customers live in the cities of :mod:`.geo` (more in bigger ones); a few are travelling abroad for
  the whole run. Each has 1-2 cards billed in the home currency (or all in USD with ``billing="usd"``),
  1-2 devices for online shopping, a spending scale, an activity level and an online share.
* Merchants: in every city, shops of every in-person category (grocery, fuel, restaurants, transit…)
  and ATMs; online merchants worldwide (marketplaces, digital goods, travel, gift cards, crypto…).
  Risk comes from the category, with noise.
* A legitimate payment: a customer drawn by activity times the diurnal and weekly rhythm of their
  current city's local hour; one of their cards; a channel; a merchant of the current city (in person)
  or of the world (online, with the customer's own device, located where the customer is); an amount
  drawn from the category's lognormal, scaled by the customer's spending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from dotjoin.pipelines.payments.contract import Merchant
from dotjoin.simulate.payments.geo import CITIES, CURRENCIES, solar_hour
from dotjoin.simulate.payments.rows import ATM, COUNTRY, DEVICE, ECOM, LEGIT, POS, Rows

Billing = Literal["local", "usd"]


class Category(NamedTuple):
    name: str
    kind: int  # POS or ECOM: where its merchants sell (ATMs are their own table)
    median_usd: float
    sigma: float  # of log(amount)
    share: float  # of the channel's legitimate payments
    risk: float  # typical merchant risk


CATEGORIES: tuple[Category, ...] = (
    Category("grocery", POS, 35.0, 0.55, 0.26, 0.03),
    Category("restaurants", POS, 28.0, 0.50, 0.20, 0.05),
    Category("transit", POS, 2.6, 0.25, 0.17, 0.02),
    Category("fuel", POS, 45.0, 0.35, 0.10, 0.06),
    Category("pharmacy", POS, 20.0, 0.60, 0.08, 0.03),
    Category("clothing", POS, 60.0, 0.60, 0.09, 0.08),
    Category("electronics", POS, 150.0, 0.70, 0.04, 0.20),
    Category("hotels", POS, 180.0, 0.45, 0.015, 0.12),
    Category("jewelry", POS, 250.0, 0.70, 0.008, 0.30),
    Category("marketplace", ECOM, 40.0, 0.80, 0.36, 0.15),
    Category("clothing", ECOM, 60.0, 0.60, 0.12, 0.10),
    Category("streaming", ECOM, 11.0, 0.25, 0.12, 0.10),
    Category("digital_goods", ECOM, 12.0, 0.70, 0.11, 0.45),
    Category("electronics", ECOM, 150.0, 0.70, 0.08, 0.20),
    Category("travel", ECOM, 300.0, 0.60, 0.06, 0.25),
    Category("hotels", ECOM, 180.0, 0.45, 0.02, 0.15),
    Category("gift_cards", ECOM, 50.0, 0.50, 0.05, 0.55),
    Category("crypto_exchange", ECOM, 200.0, 0.90, 0.02, 0.70),
    Category("money_transfer", ECOM, 150.0, 0.80, 0.02, 0.50),
)
ATM_USD = (20.0, 40.0, 60.0, 100.0, 200.0)
ATM_RISK = 0.2
BRANDS: dict[str, tuple[str, ...]] = {
    "grocery": ("FreshMart", "Corner Grocer", "GreenBasket", "DailyFoods"),
    "restaurants": ("Bistro Luna", "Noodle House", "Grill & Co", "Cafe Central"),
    "transit": ("Metro", "City Transit", "Bus Network"),
    "fuel": ("PetroOne", "FuelStop", "Highway Energy"),
    "pharmacy": ("CarePharm", "HealthPlus", "Green Cross"),
    "clothing": ("Urban Threads", "Moda", "Denim Works", "StyleHub"),
    "electronics": ("TechZone", "Circuit World", "GadgetHub"),
    "hotels": ("Grand Plaza Hotel", "Harbour Inn", "Skyline Suites"),
    "jewelry": ("Golden Hour", "Aurum Jewels", "Diamond Row"),
    "marketplace": ("ShopSphere", "MegaCart", "BazaarNet", "Everything Store"),
    "streaming": ("StreamBox", "TuneFlow", "CinemaNow"),
    "digital_goods": ("PixelPlay", "AppVault", "GameKeys", "eBook Cloud"),
    "travel": ("FlyAway Travel", "TripMaker", "Globe Tours"),
    "gift_cards": ("GiftHub", "CardCorner", "e-Gift Express"),
    "crypto_exchange": ("CoinPort", "BlockTrade", "SatoshiX"),
    "money_transfer": ("SendFast", "GlobalRemit", "WireNow"),
}
# Local-hour rhythm (solar hour 0..23) and weekday factor (Monday first).
HOURLY = np.array(
    [
        0.14,
        0.08,
        0.05,
        0.04,
        0.05,
        0.10,
        0.28,
        0.60,
        0.90,
        1.00,
        1.05,
        1.15,
        1.30,
        1.20,
        1.05,
        1.00,
        1.05,
        1.20,
        1.35,
        1.30,
        1.10,
        0.85,
        0.55,
        0.30,
    ]
)
WEEKDAY = np.array([0.95, 0.97, 1.0, 1.02, 1.12, 1.05, 0.80])
TRAVELLER_SHARE = 0.03
ATM_SHARE = 0.06
ID_MASK = (1 << 40) - 1
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLES = np.arange(36, -1, -4, dtype=np.uint64)  # the 10 hex digits of a 40-bit number, high first


def opaque_ids(
    prefix: str, index: npt.NDArray[np.int64], salt: int, suffix: str = ""
) -> npt.NDArray[np.bytes_]:
    """Ids that look random but never collide: a bijection of ``index`` on 40 bits (multiply by an odd
    number, xor-shift: each step is invertible modulo 2**40) in 10 hex digits after ``prefix``; as
    fixed-width bytes, built without a Python loop (a world has millions).

    >>> opaque_ids("c", np.arange(3), salt=7).tolist()
    [b'c4b443f4d0d', b'c7605b17756', b'c31283b745e']
    """
    mask = np.uint64(ID_MASK)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    tail = np.frombuffer(suffix.encode(), dtype=np.uint8)
    chars = np.empty((len(index), len(head) + 10 + len(tail)), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) + 10 :] = tail
    for lo in range(0, len(index), 1 << 16):  # blocks: the digit table is 80 bytes an id
        x = (index[lo : lo + (1 << 16)].astype(np.uint64) + np.uint64(salt & ID_MASK)) & mask
        for odd, shift in ((0x9E3779B97F, 20), (0xBF58476D1D, 17), (0x94D049BB13, 21)):
            x = (x * np.uint64(odd)) & mask
            x ^= x >> np.uint64(shift)
        chars[lo : lo + len(x), len(head) : len(head) + 10] = _HEX[(x[:, None] >> _NIBBLES) & np.uint64(0xF)]
    return chars.view(f"S{chars.shape[1]}").ravel()


@dataclass
class World:
    """Entities as parallel numpy arrays (index = entity number) plus the merchants table."""

    # cities
    city_lat: npt.NDArray[np.float64]
    city_lon: npt.NDArray[np.float64]
    city_country: npt.NDArray[Any]  # str
    # customers
    home: npt.NDArray[np.int64]  # city
    current: npt.NDArray[np.int64]  # city where the customer is during the run (home unless travelling)
    scale: npt.NDArray[np.float64]  # spending multiplier
    activity: npt.NDArray[np.float64]
    ecom_share: npt.NDArray[np.float64]
    card_start: npt.NDArray[np.int64]  # the customer's cards are card_start .. card_start + card_count
    card_count: npt.NDArray[np.int64]
    device_start: npt.NDArray[np.int64]
    device_count: npt.NDArray[np.int64]
    # cards
    card_customer: npt.NDArray[np.int64]
    card_ids: npt.NDArray[np.bytes_]
    customer_ids: npt.NDArray[np.bytes_]  # index = customer
    card_currency: npt.NDArray[Any]  # str
    card_rate: npt.NDArray[np.float64]  # currency units per USD
    card_decimals: npt.NDArray[np.int64]
    typical: npt.NDArray[np.float64]  # the card's median legitimate amount, in its currency
    # devices: the device_id JSON fragment (b'"dv-…"'), index = device number
    device_frag: npt.NDArray[np.bytes_]
    # merchants
    merchants: list[Merchant]
    m_city: npt.NDArray[np.int64]
    m_category: npt.NDArray[Any]  # category name
    m_kind: npt.NDArray[np.int64]  # POS, ECOM or ATM
    m_lat: npt.NDArray[np.float64]
    m_lon: npt.NDArray[np.float64]
    m_country: npt.NDArray[Any]  # str
    m_ids: npt.NDArray[np.bytes_]
    # sampling tables: sorted merchant indexes and cumulative weights (city + share within the city)
    pos_index: npt.NDArray[np.int64]
    pos_cum: npt.NDArray[np.float64]
    atm_index: npt.NDArray[np.int64]
    atm_cum: npt.NDArray[np.float64]
    ecom_index: npt.NDArray[np.int64]
    ecom_cum: npt.NDArray[np.float64]
    m_mu: npt.NDArray[np.float64]  # log median amount (USD) of the merchant's category
    m_sigma: npt.NDArray[np.float64]
    salt: int

    @property
    def customers(self) -> int:
        return len(self.home)

    def customers_in(self, city: int) -> npt.NDArray[np.int64]:
        """The customers living in ``city`` and at home during the run."""
        return np.flatnonzero((self.home == city) & (self.current == city))

    def merchants_where(self, kind: int, categories: tuple[str, ...], city: int | None = None) -> list[int]:
        mask = (self.m_kind == kind) & np.isin(self.m_category, categories)
        if city is not None:
            mask &= self.m_city == city
        return np.flatnonzero(mask).tolist()

    def local_amount(self, card: int, usd: float) -> float:
        """``usd`` in the card's currency, rounded to its minor unit (at least one minor unit)."""
        step = 10.0 ** -int(self.card_decimals[card])
        return max(step, round(usd * float(self.card_rate[card]), int(self.card_decimals[card])))

    def new_device(self, number: int) -> bytes:
        """The JSON fragment of a device nobody has used before (``number``: 0, 1, 2 … per run)."""
        index = np.array([len(self.device_frag) + number], dtype=np.int64)
        return bytes(opaque_ids('"dv-', index, self.salt + 3, '"')[0])


def _segments(group: npt.NDArray[np.int64], weight: npt.NDArray[np.float64]) -> tuple[Any, Any]:
    """Sampling table: items sorted by group, cumulative weight ``group + share within the group``."""
    order = np.argsort(group, kind="stable")
    g, w = group[order], weight[order]
    totals = np.bincount(g, weights=w)
    cum = np.cumsum(w)
    starts = np.searchsorted(g, g, side="left")
    before = np.concatenate([[0.0], cum])[starts]
    within = (cum - before) / totals[g]
    last = np.r_[g[1:] != g[:-1], True]
    within[last] = 1.0  # exact segment ends: a draw never spills into the next group
    return order.astype(np.int64), g + within


def sample_segments(
    index: npt.NDArray[np.int64], cum: npt.NDArray[np.float64], group: npt.NDArray[np.int64], u: Any
) -> npt.NDArray[np.int64]:
    """One weighted draw per element of ``group`` from that group's segment of a :func:`_segments`."""
    return index[np.searchsorted(cum, group + u, side="right")]


def build_world(seed: int, *, customers: int, billing: Billing = "local") -> World:
    """A deterministic world for ``seed``."""
    rng = np.random.default_rng([seed, 0])
    n_city = len(CITIES)
    city_lat = np.array([c.latitude for c in CITIES])
    city_lon = np.array([c.longitude for c in CITIES])
    city_country = np.array([c.country for c in CITIES], dtype=object)
    weight = np.array([c.population_m for c in CITIES]) ** 0.7
    weight /= weight.sum()

    per_city = np.maximum(25, np.round(weight * customers)).astype(np.int64)
    home = np.repeat(np.arange(n_city), per_city)
    n = len(home)
    current = home.copy()
    travelling = rng.random(n) < TRAVELLER_SHARE
    abroad = rng.choice(n_city, size=n, p=weight)
    moved = travelling & (city_country[abroad] != city_country[home])
    current[moved] = abroad[moved]
    scale = rng.lognormal(0.0, 0.35, n)
    activity = rng.lognormal(0.0, 0.6, n)
    ecom_share = rng.beta(2.0, 5.0, n)
    card_count = 1 + (rng.random(n) < 0.35).astype(np.int64)
    device_count = 1 + (rng.random(n) < 0.4).astype(np.int64)
    card_start = np.concatenate([[0], np.cumsum(card_count)[:-1]]).astype(np.int64)
    device_start = np.concatenate([[0], np.cumsum(device_count)[:-1]]).astype(np.int64)
    card_customer = np.repeat(np.arange(n), card_count)
    salt = int(rng.integers(0, 1 << 40))
    customer_ids = opaque_ids("u", np.arange(n, dtype=np.int64), salt)
    card_ids = opaque_ids("c", np.arange(len(card_customer), dtype=np.int64), salt + 1)
    device_frag = opaque_ids('"dv-', np.arange(int(device_count.sum()), dtype=np.int64), salt + 3, '"')

    if billing == "usd":
        currency = np.full(n_city, "USD", dtype=object)
    else:
        currency = np.array([c.currency for c in CITIES], dtype=object)
    card_city = home[card_customer]
    card_currency = currency[card_city]
    card_rate = np.array([CURRENCIES[c][0] for c in currency])[card_city]
    card_decimals = np.array([CURRENCIES[c][1] for c in currency], dtype=np.int64)[card_city]

    merchants = _merchants(rng, weight, city_lat, city_lon, city_country)
    m_city = np.array([m[0] for m in merchants], dtype=np.int64)
    m_kind = np.array([m[1] for m in merchants], dtype=np.int64)
    m_category = np.array([m[2] for m in merchants], dtype=object)
    m_lat = np.array([m[3] for m in merchants])
    m_lon = np.array([m[4] for m in merchants])
    popularity = np.array([m[5] for m in merchants])
    risk = np.array([m[6] for m in merchants])
    m_ids = opaque_ids("m", np.arange(len(merchants), dtype=np.int64), salt + 2)
    m_country = city_country[m_city]
    params = {(c.kind, c.name): c for c in CATEGORIES}
    shape = [params.get((int(k), str(c))) for k, c in zip(m_kind, m_category, strict=True)]  # None: ATM
    m_mu = np.array([0.0 if p is None else np.log(p.median_usd) for p in shape])
    m_sigma = np.array([0.0 if p is None else p.sigma for p in shape])
    table = [
        Merchant(
            merchant_id=m_ids[i].decode(),
            name=_name(rng, str(m_category[i]), CITIES[int(m_city[i])].name, int(m_kind[i])),
            category=str(m_category[i]),
            country=str(m_country[i]),
            latitude=round(float(m_lat[i]), 5),
            longitude=round(float(m_lon[i]), 5),
            risk=round(float(risk[i]), 3),
        )
        for i in range(len(merchants))
    ]
    m_lat = np.array([m.latitude for m in table])
    m_lon = np.array([m.longitude for m in table])
    pos = np.flatnonzero(m_kind == POS)
    atm = np.flatnonzero(m_kind == ATM)
    ecom = np.flatnonzero(m_kind == ECOM)
    pos_order, pos_cum = _segments(m_city[pos], popularity[pos])
    atm_order, atm_cum = _segments(m_city[atm], popularity[atm])
    ecom_order, ecom_cum = _segments(np.zeros(len(ecom), dtype=np.int64), popularity[ecom])
    world = World(
        city_lat=city_lat,
        city_lon=city_lon,
        city_country=city_country,
        home=home,
        current=current,
        scale=scale,
        activity=activity,
        ecom_share=ecom_share,
        card_start=card_start,
        card_count=card_count,
        device_start=device_start,
        device_count=device_count,
        card_customer=card_customer,
        card_ids=card_ids,
        customer_ids=customer_ids,
        card_currency=card_currency,
        card_rate=card_rate,
        card_decimals=card_decimals,
        typical=np.zeros(len(card_customer)),
        device_frag=device_frag,
        merchants=table,
        m_city=m_city,
        m_category=m_category,
        m_kind=m_kind,
        m_lat=m_lat,
        m_lon=m_lon,
        m_country=m_country,
        m_ids=m_ids,
        pos_index=pos[pos_order],
        pos_cum=pos_cum,
        atm_index=atm[atm_order],
        atm_cum=atm_cum,
        ecom_index=ecom[ecom_order],
        ecom_cum=ecom_cum,
        m_mu=m_mu,
        m_sigma=m_sigma,
        salt=salt,
    )
    world.typical = _typical_usd(world, seed) * scale[card_customer] * card_rate
    return world


def _merchants(
    rng: np.random.Generator, weight: Any, lat: Any, lon: Any, country: Any
) -> list[tuple[int, int, str, float, float, float, float]]:
    """(city, kind, category, lat, lon, popularity, risk) of every merchant."""
    out: list[tuple[int, int, str, float, float, float, float]] = []

    def add(city: int, kind: int, category: str, spread: float, popularity: float, risk: float) -> None:
        y, x = _near(rng, lat[city], lon[city], spread)
        out.append((city, kind, category, y, x, popularity, _risk(rng, risk)))

    pos_categories = [c for c in CATEGORIES if c.kind == POS]
    for city in range(len(weight)):
        size = 10 + 40 * weight[city] * len(weight)  # about 50 shops in an average city
        for cat in pos_categories:
            count = max(1, round(size * cat.share))
            for _ in range(count):
                add(city, POS, cat.name, 0.05, cat.share / count * rng.lognormal(0.0, 0.5), cat.risk)
        for _ in range(3):
            add(city, ATM, "atm", 0.05, rng.lognormal(0.0, 0.3), ATM_RISK)
    for cat in (c for c in CATEGORIES if c.kind == ECOM):
        count = max(2, round(120 * cat.share))
        for _ in range(count):
            city = int(rng.choice(len(weight), p=weight))  # the online merchant's seat
            add(city, ECOM, cat.name, 0.03, cat.share / count * rng.lognormal(0.0, 0.7), cat.risk)
    return out


def _near(rng: np.random.Generator, lat: float, lon: float, spread_deg: float) -> tuple[float, float]:
    return float(lat + rng.normal(0, spread_deg)), float(lon + rng.normal(0, spread_deg))


def _risk(rng: np.random.Generator, base: float) -> float:
    return float(np.clip(base + 0.12 * (rng.beta(2.0, 5.0) - 0.285), 0.0, 1.0))


def _name(rng: np.random.Generator, category: str, city: str, kind: int) -> str:
    if kind == ATM:
        return f"ATM {city} {int(rng.integers(1, 999)):03d}"
    brand = BRANDS[category][int(rng.integers(len(BRANDS[category])))]
    return f"{brand} {city}" if kind == POS else f"{brand} Online"


def _typical_usd(world: World, seed: int) -> float:
    """The median legitimate amount (USD) of a customer of spending scale 1, by simulation."""
    rng = np.random.default_rng([seed, 9])
    n = 20_000
    customers = rng.integers(0, world.customers, n)
    rows = legit_rows(world, rng, np.zeros(n, dtype=np.int64), customers=customers, usd=True)
    return float(np.median(rows.amount / world.scale[customers]))


def city_rhythm(t_ms: int, city_lon: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """How busy each city is at ``t_ms``: the hourly profile at its local (solar) hour times the weekday's."""
    hour = solar_hour(t_ms, city_lon)
    days = np.floor((t_ms / 3_600_000 + city_lon / 15.0) / 24.0).astype(np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    lo = np.floor(hour).astype(np.int64) % 24
    frac = hour - np.floor(hour)
    profile = HOURLY[lo] * (1 - frac) + HOURLY[(lo + 1) % 24] * frac
    return np.asarray(profile * WEEKDAY[weekday], dtype=np.float64)


def draw_customers(world: World, rng: np.random.Generator, t_ms: int, n: int) -> npt.NDArray[np.int64]:
    """``n`` customers, drawn by activity times the rhythm of where they are at ``t_ms``."""
    w = world.activity * city_rhythm(t_ms, world.city_lon)[world.current]
    return np.asarray(rng.choice(world.customers, size=n, p=w / w.sum()), dtype=np.int64)


def legit_rows(
    world: World,
    rng: np.random.Generator,
    t: npt.NDArray[np.int64],
    *,
    customers: npt.NDArray[np.int64],
    cards: npt.NDArray[np.int64] | None = None,
    usd: bool = False,
) -> Rows:
    """Legitimate payments at times ``t`` by ``customers`` (with one of their cards, or ``cards``),
    vectorised; amounts in USD with ``usd``."""
    n = len(t)
    card = world.card_start[customers] + (rng.random(n) * world.card_count[customers]).astype(np.int64)
    if cards is not None:
        card = cards
    u = rng.random(n)
    channel = np.where(u < ATM_SHARE, ATM, np.where(u < ATM_SHARE + world.ecom_share[customers], ECOM, POS))
    city = world.current[customers]
    pick = rng.random(n)
    merchant = np.empty(n, dtype=np.int64)
    for code, index, cum, group in (
        (POS, world.pos_index, world.pos_cum, city),
        (ATM, world.atm_index, world.atm_cum, city),
        (ECOM, world.ecom_index, world.ecom_cum, np.zeros(n, dtype=np.int64)),
    ):
        mask = channel == code
        merchant[mask] = sample_segments(index, cum, group[mask], pick[mask])
    amount_usd = np.exp(world.m_mu[merchant] + world.m_sigma[merchant] * rng.standard_normal(n))
    amount_usd *= world.scale[customers]
    atm = channel == ATM
    amount_usd[atm] = rng.choice(ATM_USD, size=int(atm.sum()))
    device = np.full(n, b"null", dtype=DEVICE)
    ecom = channel == ECOM
    dev_index = world.device_start[customers] + (rng.random(n) * world.device_count[customers]).astype(
        np.int64
    )
    device[ecom] = world.device_frag[dev_index[ecom]]
    lat = np.where(ecom, world.city_lat[city] + rng.normal(0, 0.04, n), world.m_lat[merchant])
    lon = np.where(ecom, world.city_lon[city] + rng.normal(0, 0.04, n), world.m_lon[merchant])
    if usd:
        amount = amount_usd
    else:
        amount = to_local(world, card, amount_usd)
        amount[atm] = _round_cash(world, card[atm], amount_usd[atm])
    none = np.full(n, LEGIT)
    return Rows(
        t=t.astype(np.int64),
        card=card,
        merchant=merchant,
        channel=channel.astype(np.int8),
        amount=amount,
        device=device,
        lat=np.round(lat, 5).astype(np.float64),
        lon=np.round(lon, 5).astype(np.float64),
        country=world.city_country[city].astype(COUNTRY),
        typ=none.astype(np.int8),
        scen=none.astype(np.int32),
        look=none.astype(np.int8),
    )


def to_local(
    world: World, card: npt.NDArray[np.int64], usd: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """USD amounts in each card's currency, rounded to its minor unit (never below one minor unit)."""
    factor = 10.0 ** world.card_decimals[card]
    local = np.rint(usd * world.card_rate[card] * factor)
    return np.asarray(np.maximum(local, 1.0) / factor, dtype=np.float64)


def _round_cash(
    world: World, card: npt.NDArray[np.int64], usd: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Cash withdrawals: the USD amount in local currency, to a round number of notes."""
    step = 10.0 ** np.round(np.log10(world.card_rate[card])) * 10
    return np.asarray(np.maximum(np.round(usd * world.card_rate[card] / step), 1.0) * step, dtype=np.float64)
