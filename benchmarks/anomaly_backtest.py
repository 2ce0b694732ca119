"""Backtest of the anomaly checks: precision, recall and F1 against injected anomalies, next to a rolling z.

**Series**: ``dotjoin.simulate.quality.generate_series`` — 90 days each, one per seed (seeds 1000 on,
never looked at while the detector was tuned): ``volume`` (daily row counts: level, trend, weekend dips,
3-7% noise, spikes and drops of 35% to x3, half of them subtle) and ``freshness`` (hours of delay with a
Monday backlog, late arrivals of +40% to +20 h). Anomalies fall after day 28; a point counts as found
only when its own day is flagged.

**Contenders**, on the same series in the same run, scored on the same days (28 on):

- ``dotjoin``: :func:`dotjoin.platform.quality.anomaly.score` (STL forecast from the days before t,
  robust z of its forecast residuals, threshold 3.5; ``multiplicative`` for volume);
- ``rolling z, 28 d incl. t`` — **the baseline**: what a user of Elementary-style tools gets, a z-score
  (mean, sample standard deviation) over the trailing 28 days *including* the tested day, no
  seasonality, the same threshold 3.5;
- ``rolling z, 28 d excl. t``: the same without the tested day in its window (how much of the gap the
  self-inclusion alone explains);
- ``rolling z, 14 d incl. t`` at 3.5 and at 3.0: Elementary's defaults (a 14-day training period that
  contains the detection period, ``anomaly_sensitivity`` 3). At 3.5 it cannot flag anything: over 14
  points that z never exceeds 13 / sqrt(14) = 3.47.

Usage: .venv/bin/python benchmarks/anomaly_backtest.py [--seeds 20] [--days 90]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from _baselines import headline, machine

from dotjoin.platform.quality.anomaly import score
from dotjoin.simulate.quality import GeneratedSeries, Metric, generate_series

MIN_HISTORY = 28
THRESHOLD = 3.5
FIRST_SEED = 1000
Detector = Callable[[Sequence[float], Metric], set[int]]


def ours(values: Sequence[float], metric: Metric) -> set[int]:
    verdicts = score(values, min_history=MIN_HISTORY, threshold=THRESHOLD, multiplicative=metric == "volume")
    return {v.index for v in verdicts if v.anomaly}


def rolling_z(window: int, threshold: float, *, include_t: bool) -> Detector:
    """A z-score over the trailing ``window`` days, the tested day in it or not; no seasonality."""

    def detect(values: Sequence[float], metric: Metric) -> set[int]:
        found = set()
        for t in range(MIN_HISTORY, len(values)):
            past = values[t - window + 1 : t + 1] if include_t else values[t - window : t]
            sd = statistics.stdev(past)
            if sd > 0 and abs(values[t] - statistics.mean(past)) / sd > threshold:
                found.add(t)
        return found

    return detect


CONTENDERS: dict[str, Detector] = {
    "dotjoin": ours,
    "rolling z, 28 d incl. t": rolling_z(28, THRESHOLD, include_t=True),
    "rolling z, 28 d excl. t": rolling_z(28, THRESHOLD, include_t=False),
    "rolling z, 14 d incl. t": rolling_z(14, THRESHOLD, include_t=True),
    "rolling z, 14 d incl. t, 3.0": rolling_z(14, 3.0, include_t=True),
}
BASELINE = "rolling z, 28 d incl. t"


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    seconds: float = 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def backtest(series: list[GeneratedSeries]) -> dict[str, Tally]:
    tallies = {name: Tally() for name in CONTENDERS}
    for s in series:
        for name, detect in CONTENDERS.items():
            t0 = time.perf_counter()
            found = detect(s.values, s.metric)
            tally = tallies[name]
            tally.seconds += time.perf_counter() - t0
            tally.tp += len(found & s.truth)
            tally.fp += len(found - s.truth)
            tally.fn += len(s.truth - found)
    return tallies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="series per metric (default 20)")
    parser.add_argument("--days", type=int, default=90, help="days per series (default 90)")
    args = parser.parse_args(argv)
    print(machine())
    score([1.0] * (MIN_HISTORY + 1))  # statsmodels imported (seconds) before any contender is timed
    seeds = range(FIRST_SEED, FIRST_SEED + args.seeds)
    summary = []
    metrics: tuple[Metric, ...] = ("volume", "freshness")
    for metric in metrics:
        series = [
            generate_series(args.days, seed=seed, metric=metric, min_history=MIN_HISTORY) for seed in seeds
        ]
        injected = sum(len(s.anomalies) for s in series)
        print(
            f"\n{metric}: {len(series)} series x {args.days} days (seeds {seeds.start}-{seeds.stop - 1}),"
            f" {injected} injected anomalies"
        )
        tallies = backtest(series)
        print(
            f"  {'contender':<30} {'precision':>9} {'recall':>7} {'F1':>6} {'found':>6} {'false':>6} {'s':>6}"
        )
        for name, t in tallies.items():
            print(
                f"  {name:<30} {t.precision:>9.3f} {t.recall:>7.3f} {t.f1:>6.3f} {t.tp:>6} {t.fp:>6}"
                f" {t.seconds:>6.2f}"
            )
        ours_f1, base_f1 = tallies["dotjoin"].f1, tallies[BASELINE].f1
        ratio = f"{ours_f1 / base_f1:.1f}x" if base_f1 else "inf (baseline F1 0)"
        print(f"  F1 ratio dotjoin / {BASELINE}: {ratio}")
        summary.append(f"{metric} F1 {ours_f1:.2f} vs {base_f1:.2f} ({ratio})")
    headline("anomaly_backtest", "; ".join(summary) + f" — rolling z over 28 d incl. t, {args.seeds} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
