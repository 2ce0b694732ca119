"""One hand-made table with known defects and the contract that checks it, for every engine's test.

``orders`` (12 rows) and ``customers`` (3 rows); each defect is placed by hand and its expected result
counted by hand in :data:`EXPECTED` — never from the engine under test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import yaml  # type: ignore[import-untyped, unused-ignore]

from dotjoin.platform.files.schema import Schema

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
T = NOW - dt.timedelta(hours=30)  # the newest order: 30 h old, over its 1-day latency SLA

CUSTOMERS = pa.table({"id": ["c1", "c2", "c3"]})
_ROWS: list[tuple[Any, ...]] = [
    # order_id, customer_id, status, amount, ordered_at
    ("o01", "c1", "paid", 10.0, T),
    ("o02", "c2", "paid", 20.0, T),
    ("o03", "c3", "refunded", 5.0, T),
    ("o04", "c1", "paid", -3.0, T),  # amount below minimum 0
    ("o05", "c9", "paid", 7.0, T),  # customer c9 does not exist
    ("o06", None, "paid", 8.0, T),  # null customer: no relationship failure, a nullValues one
    ("o07", "c2", "lost", 9.0, T),  # status not accepted
    ("o07", "c2", "paid", 9.0, T),  # o07 twice: one extra copy of the key
    (None, "c1", "paid", 1.0, T),  # null key
    ("o09", "c3", "paid", 2_000_000.0, T),  # over maximum 1e6
    ("o10", "c8", "LOST", 4.0, T),  # c8 missing too; LOST not accepted
    ("o11", "c1", "paid", 6.0, T - dt.timedelta(days=3)),
]
ORDERS = pa.table(
    {
        "order_id": pa.array([r[0] for r in _ROWS], pa.string()),
        "customer_id": pa.array([r[1] for r in _ROWS], pa.string()),
        "status": pa.array([r[2] for r in _ROWS], pa.string()),
        "amount": pa.array([r[3] for r in _ROWS], pa.float64()),
        "ordered_at": pa.array([r[4] for r in _ROWS], pa.timestamp("us", tz="UTC")),
    }
)

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
name: orders
schema:
  - name: orders
    quality:
      - {metric: rowCount, mustBeGreaterOrEqualTo: 10}
      - name: big_orders
        type: sql
        query: "SELECT COUNT(*) FROM ${object} WHERE amount > 100"
        mustBeLessThan: 1
        severity: warning
    properties:
      - {name: order_id, required: true, primaryKey: true}
      - name: customer_id
        relationships: [{to: "{customers}.id"}]
        quality: [{metric: nullValues, mustBeLessOrEqualTo: 10, unit: percent}]
      - name: status
        quality:
          - {metric: invalidValues, arguments: {validValues: [paid, refunded]}}
          - {name: status_lowercase, metric: invalidValues, arguments: {pattern: "[a-z]+"}, severity: warning}
      - {name: amount, logicalType: number, logicalTypeOptions: {minimum: 0, maximum: 1000000}}
      - {name: ordered_at, logicalType: timestamp}
slaProperties:
  - {property: latency, value: 1, unit: d, element: orders.ordered_at}
"""

#: check name → (passed, observed, failed_rows, sample) by hand.
EXPECTED: dict[str, tuple[bool, Any, int | None, list[str]]] = {
    "nullValues:order_id": (False, 1, 1, ["None"]),
    "invalidValues:amount": (False, 2, 2, ["o04", "o09"]),
    "relationship:customer_id": (False, 2, 2, ["c8", "c9"]),
    "nullValues:customer_id": (True, 100 / 12, None, []),  # 1 of 12 rows: 8.33% <= 10%
    "invalidValues:status": (False, 2, 2, ["o07", "o10"]),
    "status_lowercase": (False, 1, 1, ["o10"]),
    "duplicateValues:order_id": (False, 1, 1, ["o07"]),
    "rowCount": (True, 12, None, []),
    "big_orders": (False, 1, None, []),
    "latency:ordered_at": (False, 30 * 3600, None, []),
}
SEVERITY_WARNING = {"status_lowercase", "big_orders"}


def contract(customers: str = "customers") -> Schema:
    return Schema.model_validate(yaml.safe_load(CONTRACT.replace("{customers}", customers)))


def compare(checks: list[Any]) -> None:
    """Every result equals its hand-computed truth (order-independent samples, rounded percentages)."""
    got = {c.name: c for c in checks}
    assert sorted(got) == sorted(EXPECTED)
    for name, (passed, observed, failed, sample) in EXPECTED.items():
        c = got[name]
        assert c.passed is passed, (name, c)
        assert abs(float(c.observed) - observed) < 1e-6, (name, c.observed, observed)
        if failed is not None:
            assert c.failed_rows == failed, (name, c.failed_rows)
        assert sorted(c.sample) == sorted(sample), (name, c.sample)
        assert c.severity == ("warning" if name in SEVERITY_WARNING else "error"), name
        assert c.duration_s is not None and c.dataset
