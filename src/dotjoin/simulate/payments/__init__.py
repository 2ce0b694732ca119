"""The payments simulator (issue 11): a deterministic world of customers, cards, devices and merchants
in real cities, and a stream of their payments with labelled fraud and stream defects.

>>> from datetime import UTC, datetime
>>> sim = generate(seed=7, eps=100, duration_s=30, start=datetime(2026, 12, 1, 10, tzinfo=UTC))
>>> from dotjoin.pipelines.payments.contract import parse_payment
>>> first = next(iter(sim))
>>> parse_payment(first.value).event_id == first.event_id
True

- :mod:`.geo` — the cities, currencies, distances and local hours
- :mod:`.world` — customers, cards, devices, merchants; legitimate payments
- :mod:`.fraud` — the fraud typologies, their scenarios and the legitimate look-alikes
- :mod:`.stream` — :func:`generate`: the messages in emission order, with duplicates, out-of-order,
  late and malformed ones
- :mod:`.output` — :func:`write_log` (a recorded log with its manifest) and :func:`produce` (the bus)

The contract it produces is :mod:`dotjoin.pipelines.payments.contract`; no pipeline imports this package.
"""

from dotjoin.simulate.payments.output import PaymentsManifest, produce, write_log, write_merchants
from dotjoin.simulate.payments.stream import Defects, Emitted, Simulation, generate

__all__ = [
    "Defects",
    "Emitted",
    "PaymentsManifest",
    "Simulation",
    "generate",
    "produce",
    "write_log",
    "write_merchants",
]
