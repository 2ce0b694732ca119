"""Metric series with known anomalies: the ground truth of the anomaly checks' tests and backtest.

A series is one value per day, oldest first:

- ``volume`` — a table's daily row count: a level (5,000-50,000 rows) with a trend (-0.2% to +0.5% a
  day, compounded), a weekly profile (weekends at 55-80% of a weekday, a busier Monday), multiplicative
  noise (a 3-7% standard deviation, drawn per series) and injected **spikes** (x1.35 to x3) and **drops**
  (35% to 95% fewer rows, an outage);
- ``freshness`` — the hours of delay of each day's arrival: a usual delay (1-4 h), a later Monday (the
  weekend's backlog), a slow drift, additive noise (a 6-12% standard deviation of the usual delay) and
  injected **late** arrivals (x1.4 to x1.8 of the usual, or 3-20 hours later).

Half of the injected anomalies are subtle (35-60% for volume, 40-80% for freshness). They fall at random
days after ``min_history`` (the detector has nothing to decide before), at least ``spacing`` days
apart. Deterministic per seed.

>>> s = generate_series(seed=7)
>>> len(s.values), len(s.anomalies) >= 3, s == generate_series(seed=7)
(90, True, True)
>>> all(a.index >= 28 for a in s.anomalies)
True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

Metric = Literal["volume", "freshness"]
AnomalyKind = Literal["spike", "drop", "late"]


@dataclass(frozen=True)
class Injected:
    """One injected anomaly: its day, its kind and the factor it applied to the clean value."""

    index: int
    kind: AnomalyKind
    factor: float  # observed / clean


@dataclass(frozen=True)
class GeneratedSeries:
    """A generated series, the same series without its anomalies, and the anomalies (the truth)."""

    metric: Metric
    seed: int
    values: tuple[float, ...]
    clean: tuple[float, ...]
    anomalies: tuple[Injected, ...]

    @property
    def truth(self) -> frozenset[int]:
        """The indices of the injected anomalies."""
        return frozenset(a.index for a in self.anomalies)


def generate_series(
    days: int = 90,
    *,
    seed: int,
    metric: Metric = "volume",
    min_history: int = 28,
    anomalies: int | None = None,
    spacing: int = 3,
    start_weekday: int | None = None,
) -> GeneratedSeries:
    """A daily ``metric`` series of ``days`` values with injected anomalies (see the module docstring).

    Args:
        days: the series length.
        seed: the random seed; the same seed gives the same series.
        metric: ``volume`` (row counts) or ``freshness`` (hours of delay).
        min_history: no anomaly before this index.
        anomalies: how many to inject; default 3 to 5 (one per ~15 days after ``min_history``).
        spacing: the fewest days between two anomalies.
        start_weekday: the weekday of day 0 (0 = Monday); default random.
    """
    rng = random.Random(f"quality-series-{metric}-{seed}")  # noqa: S311 - synthetic series, not crypto
    first_weekday = rng.randrange(7) if start_weekday is None else start_weekday
    clean = _volume(days, rng, first_weekday) if metric == "volume" else _freshness(days, rng, first_weekday)
    count = rng.randint(3, 5) if anomalies is None else anomalies
    where = _days(rng, min_history, days, count, spacing)
    values = list(clean)
    injected: list[Injected] = []
    for index in where:
        subtle = rng.random() < 0.5
        if metric == "freshness":
            kind: AnomalyKind = "late"
            if subtle:
                factor = 1 + rng.uniform(0.4, 0.8)
            else:
                factor = (clean[index] + rng.uniform(3.0, 20.0)) / clean[index]
            values[index] = round(clean[index] * factor, 2)
        else:
            kind = "spike" if rng.random() < 0.5 else "drop"
            if kind == "spike":
                factor = 1 + (rng.uniform(0.35, 0.6) if subtle else rng.uniform(0.6, 2.0))
            else:
                factor = 1 - (rng.uniform(0.35, 0.6) if subtle else rng.uniform(0.6, 0.95))
            values[index] = float(round(clean[index] * factor))
        injected.append(Injected(index=index, kind=kind, factor=round(factor, 3)))
    return GeneratedSeries(
        metric=metric, seed=seed, values=tuple(values), clean=tuple(clean), anomalies=tuple(injected)
    )


def _volume(days: int, rng: random.Random, first_weekday: int) -> list[float]:
    """Daily row counts: level x compounded trend x weekly profile x log-normal noise."""
    level = rng.uniform(5_000, 50_000)
    growth = rng.uniform(-0.002, 0.005)
    profile = [rng.uniform(1.0, 1.1)] + [rng.uniform(0.95, 1.05) for _ in range(4)]  # Monday busier
    profile += [rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8)]  # the weekend dip
    noise = rng.uniform(0.03, 0.07)
    return [
        float(
            round(
                level * (1 + growth) ** d * profile[(first_weekday + d) % 7] * math.exp(rng.gauss(0, noise))
            )
        )
        for d in range(days)
    ]


def _freshness(days: int, rng: random.Random, first_weekday: int) -> list[float]:
    """Hours of delay: usual delay + Monday backlog + slow drift + Gaussian noise (never below 0.05 h)."""
    usual = rng.uniform(1.0, 4.0)
    monday = rng.uniform(0.3, 1.0) * usual
    drift = rng.uniform(0.0, 0.004) * usual  # hours a day: the pipeline slows as the data grows
    noise = rng.uniform(0.06, 0.12) * usual
    return [
        round(
            max(
                0.05,
                usual + (monday if (first_weekday + d) % 7 == 0 else 0.0) + drift * d + rng.gauss(0, noise),
            ),
            2,
        )
        for d in range(days)
    ]


def _days(rng: random.Random, start: int, stop: int, count: int, spacing: int) -> list[int]:
    """``count`` sorted days in ``[start, stop)``, at least ``spacing`` apart."""
    slots = stop - start - (count - 1) * (spacing - 1)
    if slots < count:
        raise ValueError(f"{count} anomalies {spacing} days apart do not fit in days {start}..{stop - 1}")
    picks = sorted(rng.sample(range(slots), count))
    return [start + p + i * (spacing - 1) for i, p in enumerate(picks)]
