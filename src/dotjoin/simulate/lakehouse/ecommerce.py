"""Deterministic ecommerce source: daily CSV exports of customers, products, orders and order items.

Every day ``d`` writes four files ``<entity>_<YYYY-MM-DD>.csv``. Orders are a change feed: a new order
appears with status ``placed`` and comes back on later days with ``shipped``/``delivered``/``cancelled``
(late status updates); customers come back with a new address (address changes, the stuff of SCD2).
A few rows are exported twice (duplicates the staging zone removes). The generator returns the ground
truth that the curated marts must reconcile with.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)

CUSTOMER_COLUMNS = ("customer_id", "name", "email", "city", "address", "updated_at")
PRODUCT_COLUMNS = ("product_id", "name", "category", "price", "updated_at")
ORDER_COLUMNS = ("order_id", "customer_id", "order_ts", "status", "updated_at")
ITEM_COLUMNS = ("order_id", "line_no", "product_id", "quantity", "unit_price", "order_ts")
ENTITIES = ("customers", "products", "orders", "order_items")
CITIES = ("Lisbon", "Porto", "Berlin", "Hamburg", "Lyon", "Madrid", "Turin", "Ghent")
CATEGORIES = ("books", "garden", "kitchen", "toys", "tools")
NEXT_STATUS = {"placed": ("shipped", "cancelled"), "shipped": ("delivered",)}


@dataclass
class EcommerceTruth:
    """What the marts must show: counts and revenue computed while generating."""

    orders: int = 0
    order_items: int = 0
    revenue_cents: int = 0  # sum(quantity * unit_price) over every order
    cancelled_orders: int = 0
    customers: int = 0
    customer_versions: int = 0  # SCD2 rows: first version + every address change
    products: int = 0
    final_status: dict[int, str] = field(default_factory=dict)


@dataclass
class _State:
    customers: dict[int, str] = field(default_factory=dict)  # id -> current address
    products: dict[int, int] = field(default_factory=dict)  # id -> price in cents
    open_orders: dict[int, str] = field(default_factory=dict)  # id -> status
    orders: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (customer, order_ts)
    next_order: int = 1


def _csv(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def _ts(day: date, rng: random.Random) -> str:
    moment = datetime(day.year, day.month, day.day) + timedelta(seconds=rng.randrange(86_400))
    return moment.isoformat()


def _money(cents: int) -> str:
    """Cents as a decimal string.

    >>> _money(1250), _money(5)
    ('12.50', '0.05')
    """
    return f"{cents // 100}.{cents % 100:02d}"


def generate_day_files(
    day_index: int, day: date, rng: random.Random, state: _State, truth: EcommerceTruth
) -> dict[str, str]:
    """The four CSV exports of one day, as text, advancing ``state`` and ``truth``."""
    customers, products, open_orders = state.customers, state.products, state.open_orders
    next_order = state.next_order

    customer_rows: list[tuple[object, ...]] = []
    new_customers = 12 if day_index == 0 else rng.randint(2, 4)
    for _ in range(new_customers):
        cid = len(customers) + 1
        customers[cid] = f"{rng.randint(1, 200)} Main St"
        customer_rows.append(
            (cid, f"Customer {cid}", f"c{cid}@example.com", rng.choice(CITIES), customers[cid], _ts(day, rng))
        )
        truth.customers += 1
        truth.customer_versions += 1
    if day_index > 0:
        for cid in rng.sample(sorted(customers), k=min(2, len(customers))):
            if cid > len(customers) - new_customers:
                continue  # created today: no change on its first day
            customers[cid] = f"{rng.randint(201, 999)} Harbour Rd"
            customer_rows.append(
                (
                    cid,
                    f"Customer {cid}",
                    f"c{cid}@example.com",
                    rng.choice(CITIES),
                    customers[cid],
                    _ts(day, rng),
                )
            )
            truth.customer_versions += 1

    product_rows: list[tuple[object, ...]] = []
    if day_index == 0:
        for pid in range(1, 21):
            products[pid] = rng.randrange(199, 9_999)
            product_rows.append(
                (
                    pid,
                    f"Product {pid}",
                    CATEGORIES[pid % len(CATEGORIES)],
                    _money(products[pid]),
                    _ts(day, rng),
                )
            )
            truth.products += 1

    order_rows: list[tuple[object, ...]] = []
    item_rows: list[tuple[object, ...]] = []
    for oid in sorted(open_orders):  # late status updates of earlier orders
        if rng.random() < 0.5:
            status = rng.choice(NEXT_STATUS[open_orders[oid]])
            cid, order_ts = state.orders[oid]
            order_rows.append((oid, cid, order_ts, status, _ts(day, rng)))
            truth.final_status[oid] = status
            if status in NEXT_STATUS:
                open_orders[oid] = status
            else:
                del open_orders[oid]
                truth.cancelled_orders += status == "cancelled"
    for _ in range(rng.randint(15, 25)):
        oid, next_order = next_order, next_order + 1
        cid = rng.randint(1, len(customers))
        order_ts = _ts(day, rng)
        state.orders[oid] = (cid, order_ts)
        order_rows.append((oid, cid, order_ts, "placed", order_ts))
        open_orders[oid] = "placed"
        truth.final_status[oid] = "placed"
        truth.orders += 1
        for line in range(1, rng.randint(1, 4) + 1):
            pid = rng.randint(1, len(products))
            qty = rng.randint(1, 3)
            item_rows.append((oid, line, pid, qty, _money(products[pid]), order_ts))
            truth.order_items += 1
            truth.revenue_cents += qty * products[pid]
    state.next_order = next_order
    if order_rows:
        order_rows.append(order_rows[0])  # re-exported row: a duplicate for staging to drop
    return {
        "customers": _csv(CUSTOMER_COLUMNS, customer_rows),
        "products": _csv(PRODUCT_COLUMNS, product_rows),
        "orders": _csv(ORDER_COLUMNS, order_rows),
        "order_items": _csv(ITEM_COLUMNS, item_rows),
    }


def generate(out_dir: Path, *, days: int, seed: int = 7, start: date = date(2026, 1, 1)) -> EcommerceTruth:
    """Write ``days`` daily exports under ``out_dir`` and return the ground truth.

    Args:
        out_dir: where ``<entity>_<YYYY-MM-DD>.csv`` files go (created if missing).
        days: number of daily exports.
        seed: same seed, same bytes.
        start: the first export day.

    Example::

        truth = generate(Path("/tmp/ecom"), days=3, seed=7)
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - deterministic test data, not security
    truth = EcommerceTruth()
    state = _State()
    for index in range(days):
        day = start + timedelta(days=index)
        for entity, text in generate_day_files(index, day, rng, state, truth).items():
            (out_dir / f"{entity}_{day.isoformat()}.csv").write_text(text)
    logger.info("ecommerce: %d days, %d orders into %s", days, truth.orders, out_dir)
    return truth
