"""The lakehouse's upstream, wired for the pipeline: :class:`GeneratedShop` is a lakehouse
:class:`~dotjoin.pipelines.lakehouse.pipeline.Source` (``dotjoin lakehouse run``, the demo, the tests), and
:func:`nightly_exports` is what the nightly flow lands each date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dotjoin.pipelines.lakehouse.pipeline import Expected
from dotjoin.pipelines.nightly.flow import START
from dotjoin.simulate.lakehouse import ecommerce, iot

NIGHTLY_SEED = 7


@dataclass(frozen=True)
class Truth:
    """Both generators' ground truth."""

    ecommerce: ecommerce.EcommerceTruth
    iot: iot.IotTruth

    def expected(self) -> Expected:
        """What the marts must show once every generated file is loaded."""
        e, i = self.ecommerce, self.iot
        return Expected(
            fact_orders_count=e.orders,
            fact_orders_revenue_cents=e.revenue_cents,
            fact_orders_cancelled=e.cancelled_orders,
            iot_device_hours=len(i.device_hours),
            iot_readings=i.readings,
            dim_customers_versions=e.customer_versions,
            dim_customers_customers=e.customers,
        )


def generate_sources(out_dir: Path, *, days: int, seed: int, start: date, devices: int = 6) -> Truth:
    """Write both sources' daily files into ``out_dir`` and return their ground truth."""
    return Truth(
        ecommerce=ecommerce.generate(out_dir, days=days, seed=seed, start=start),
        iot=iot.generate(out_dir, days=days, seed=seed, start=start, devices=devices),
    )


class GeneratedShop:
    """``days`` days of the shop's CSV exports and the IoT fleet's files, from ``start``.

    Args:
        days: daily exports per source.
        seed: same seed, same bytes.
        start: the first day (default: ``days`` days before ``today``).
        devices: IoT devices.
        today: the day ``start`` counts back from (default: today, UTC).

    Example::

        run(settings, source=GeneratedShop(days=3, seed=7))
    """

    def __init__(
        self,
        *,
        days: int = 3,
        seed: int = 7,
        start: date | None = None,
        devices: int = 6,
        today: date | None = None,
    ) -> None:
        self.days, self.seed, self.devices = days, seed, devices
        self.start = start or (today or datetime.now(UTC).date()) - timedelta(days=days)

    @property
    def params(self) -> dict[str, Any]:
        return {"days": self.days, "seed": self.seed, "start": self.start.isoformat()}

    def write(self, out_dir: Path) -> Expected:
        shop = generate_sources(
            out_dir, days=self.days, seed=self.seed, start=self.start, devices=self.devices
        )
        return shop.expected()


def nightly_exports(day: date, out_dir: Path) -> None:
    """Every export the nightly's shop has written up to ``day``, and ``day``'s IoT file, into ``out_dir``.

    The shop is one sequential history from the flow's first date, so ids never collide between dates and
    a day's files are the same whatever the run order.
    """
    ecommerce.generate(out_dir, days=(day - START).days + 1, seed=NIGHTLY_SEED, start=START)
    iot.generate(out_dir, days=1, seed=NIGHTLY_SEED, start=day)
