"""Anomaly checks on a dataset's metric series: daily row counts (volume) or hours of delay (freshness).

How a point is scored. For each day ``t`` with at least ``min_history`` days before it:

1. **Train on the past only.** A robust STL decomposition (weekly ``period``; a periodic seasonal, one
   value per weekday) is fitted on the trailing ``window`` values *before* ``t`` (8 periods by default)
   — never on ``t`` itself.
2. **Forecast t.** The trend's continuation — its last value (a local line over two periods, so it
   follows a trend) — plus the seasonal value of ``t``'s phase, from the last full period of the fitted
   seasonal.
3. **Score t.** ``r`` are the residuals of the training window *as forecasts*: each earlier point's value
   minus the forecast made for it, the same way, from the points before it (they start two periods
   into the series, so ``min_history`` is at least three periods). With ``r_t`` the value at ``t`` minus
   its forecast, the robust z is ``0.6745 * (r_t - median(r)) / MAD(r)`` (MAD: the median absolute
   deviation; ``MAD / 0.6745`` is a standard deviation that outliers do not inflate). ``t`` is an anomaly
   when ``|z| > threshold``: a ``spike`` above the band, a ``drop`` below it. The band is ``expected ±
   threshold * MAD / 0.6745``, ``expected`` being the forecast plus ``median(r)`` (which also corrects
   the one step a steady trend's forecast lags).

   Why forecast residuals rather than STL's own: a fit follows the points it is fitted on, so on 4-8
   weeks of history its residuals were 1.7 times smaller than the error of its forecast (robust STL on
   four cycles fits some points exactly); the band they gave flagged 5-7% of clean days — three or four
   false alarms in two months. Forecast residuals measure the very error the band is about.

Why the tested point is excluded from its own training. A detector that computes the mean and the
standard deviation over a window *including* the value it tests (Elementary's default: its training
period contains the detection period) lets a spike inflate the very band that judges it: over ``n``
points, that z-score can never exceed ``(n - 1) / sqrt(n)`` — 3.47 for a 14-day window, whatever the
spike. Here ``t`` is in neither the fit nor the residuals that judge it: changing the values at or after
``t`` cannot change ``t``'s band.

Past anomalies are excluded too (``exclude_anomalies=True``, the default), so one incident does not bend
the trend or the weekly shape — and with them the band — for the weeks it stays in the training
window: later points are fitted on a history where a flagged point is replaced by its expected value
(when ``|z| >= 2 * threshold``) or clipped to its band's edge (a narrowly flagged point: were it a wrong
flag, its replacement would otherwise pull the next forecasts its way and flag again). When ``period``
consecutive points are flagged, that is no incident but a new level: their observed values go back into
the history, and the model learns it. (The flagged points' own forecast residuals stay: the MAD shrugs
off a few.)

The MAD floor: a perfectly regular series has MAD 0, and any change would get an infinite z. The MAD is
floored at ``mad_floor`` (default 1%) of the training window's median absolute value (``1e-9`` when that
is 0; with ``multiplicative``, at a 1% relative change), so on a flat series a change of more than ~5%
is flagged at the default threshold.

Example::

    verdicts = score(daily_row_counts, multiplicative=True)
    check = as_check(verdicts[-1], dataset="table:orders", metric="volume")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dotjoin.platform.runs.report import Check

Direction = Literal["spike", "drop"]
#: The MAD of a normal distribution is 0.6745 of its standard deviation.
MAD_TO_SIGMA = 0.6745
INSUFFICIENT = "insufficient history"


@dataclass(frozen=True)
class Verdict:
    """The score of one point of the series.

    ``anomaly`` is None when fewer than ``min_history`` points precede it (no decision); ``expected``,
    ``lower``, ``upper`` and ``z`` are None then too. ``direction`` is set when ``anomaly`` is True.
    """

    index: int
    observed: float
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    z: float | None = None
    anomaly: bool | None = None
    direction: Direction | None = None
    history: int = 0  # how many points preceded it


def score(
    values: Sequence[float],
    *,
    period: int = 7,
    min_history: int = 28,
    threshold: float = 3.5,
    window: int | None = None,
    multiplicative: bool = False,
    exclude_anomalies: bool = True,
    mad_floor: float = 0.01,
) -> list[Verdict]:
    """Score every point of a metric series against a forecast from the points before it.

    Args:
        values: the series, one value per step (a day), oldest first.
        period: the seasonal period in steps (7: the weekly shape of daily values).
        min_history: how many points must precede a point for it to be scored (at least three periods:
            two to fit a model, one of its forecast residuals to size the band).
        threshold: the ``|z|`` above which a point is an anomaly (a robust z, see the module docstring).
        window: how many trailing points each model is fitted on, and its band sized from; default
            ``max(min_history, 8 * period)``.
        multiplicative: model ``log(1 + value)``, for a metric whose weekly swing and noise grow with its
            level (row counts). The band is then asymmetric around the expected value: a drop to half
            and a spike to double are equally far. Values must be >= 0.
        exclude_anomalies: keep flagged points out of the history later points are fitted on (replaced by
            their expected value, or clipped to their band when narrowly flagged; see the module docstring).
        mad_floor: the smallest MAD, as a fraction of the training window's median absolute value.

    Returns:
        One :class:`Verdict` per value, in order.

    >>> flat = [100.0 + (i * 7 % 5) for i in range(40)] + [180.0]
    >>> last = score(flat)[-1]
    >>> last.anomaly, last.direction, last.index
    (True, 'spike', 40)
    >>> score(flat)[27].anomaly is None, score(flat)[28].anomaly
    (True, False)
    """
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    if min_history < 3 * period:
        raise ValueError(f"min_history must be at least three periods ({3 * period}), got {min_history}")
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    window = max(min_history, 8 * period) if window is None else window
    if window < 2 * period:
        raise ValueError(f"window must be at least two periods ({2 * period}), got {window}")
    observed = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(observed)):
        raise ValueError("values must be finite numbers (no NaN or infinity)")
    if multiplicative and np.any(observed < 0):
        raise ValueError("multiplicative=True needs values >= 0")

    model = np.log1p(observed) if multiplicative else observed
    back = np.expm1 if multiplicative else _identity
    history = model.copy()  # what later points are fitted on: flagged points replaced (exclude_anomalies)
    residuals = np.full(len(model), np.nan)  # each point minus its forecast: the band's width
    verdicts: list[Verdict] = []
    flagged_run = 0
    for t, value in enumerate(observed):
        if t < 2 * period:
            verdicts.append(Verdict(index=t, observed=float(value), history=t))
            continue
        train = history[max(0, t - window) : t]
        forecast = _forecast(train, period)
        residuals[t] = model[t] - forecast
        if t < min_history:  # the warm-up: residuals for the first band, no decision
            verdicts.append(Verdict(index=t, observed=float(value), history=t))
            continue
        past = residuals[max(0, t - window) : t]
        past = past[~np.isnan(past)]
        centre = float(np.median(past))
        if multiplicative:
            floor = float(np.log1p(mad_floor))
        else:
            level = float(np.median(np.abs(train)))
            floor = mad_floor * level if level > 0 else 1e-9
        sigma = max(float(np.median(np.abs(past - centre))), floor) / MAD_TO_SIGMA
        expected = forecast + centre
        z = float((model[t] - expected) / sigma)  # = 0.6745 * (r_t - median(r)) / MAD(r)
        anomaly = abs(z) > threshold
        verdicts.append(
            Verdict(
                index=t,
                observed=float(value),
                expected=float(back(expected)),
                lower=float(back(expected - threshold * sigma)),
                upper=float(back(expected + threshold * sigma)),
                z=z,
                anomaly=anomaly,
                direction=("spike" if z > 0 else "drop") if anomaly else None,
                history=t,
            )
        )
        flagged_run = flagged_run + 1 if anomaly else 0
        if not (exclude_anomalies and anomaly):
            continue
        # a clear outlier leaves the history, a narrow one is clipped to the band (see the module docstring)
        history[t] = expected if abs(z) >= 2 * threshold else expected + np.sign(z) * threshold * sigma
        if flagged_run >= period:  # a new level, not an incident: learn it
            history[t - flagged_run + 1 : t + 1] = model[t - flagged_run + 1 : t + 1]
    return verdicts


def _forecast(train: np.ndarray, period: int) -> float:
    """The next value after ``train``: STL's last trend value plus the seasonal value of its phase.

    The seasonal is periodic (``seasonal_deg=0`` over a window longer than the series: each phase's
    value is a robustly weighted mean of its cycles); the trend is a local line over two periods, so
    its last value already follows a trend; the one step it lags is the forecast residuals' median,
    which :func:`score` adds.
    """
    from statsmodels.tsa.seasonal import STL  # lazy: statsmodels takes seconds to import

    fit = STL(
        train,
        period=period,
        seasonal=_odd(10 * len(train)),
        seasonal_deg=0,
        trend=_odd(2 * period),
        robust=True,
    ).fit()
    trend = np.asarray(fit.trend)
    return float(trend[-1] + np.asarray(fit.seasonal)[-period])


def _identity(x: float) -> float:
    return x


def _odd(n: int) -> int:
    return n if n % 2 else n + 1


def as_check(verdict: Verdict, *, dataset: str, metric: str = "volume") -> Check:
    """The verdict as the platform's check record (``anomaly:<metric>``).

    The band is the check's ``expected`` text; a flagged point fails it (severity error) with the
    direction and the z in its detail. A point without enough history passes as a warning that says
    so: it is not a decision.

    >>> check = as_check(Verdict(index=3, observed=120.0, history=3), dataset="table:orders")
    >>> check.passed, check.severity, check.detail
    (True, 'warning', 'insufficient history: 3 points before it, no decision')
    >>> v = Verdict(0, 40.0, expected=100.0, lower=80.0, upper=120.0, z=-10.5, anomaly=True, direction="drop")
    >>> c = as_check(v, dataset="table:orders")
    >>> c.passed, c.expected, c.detail
    (False, '80 .. 120 (expected 100)', 'drop: 40 is 10.5 robust standard deviations below the expected 100')
    """
    name = f"anomaly:{metric}"
    if verdict.anomaly is None or verdict.expected is None:
        return Check(
            name=name,
            passed=True,
            observed=verdict.observed,
            detail=f"{INSUFFICIENT}: {verdict.history} points before it, no decision",
            dataset=dataset,
            severity="warning",
        )
    scale = verdict.expected
    lower, upper = _num(verdict.lower, scale), _num(verdict.upper, scale)
    band = f"{lower} .. {upper} (expected {_num(verdict.expected, scale)})"
    detail = None
    if verdict.anomaly:
        side = "above" if verdict.direction == "spike" else "below"
        detail = (
            f"{verdict.direction}: {_num(verdict.observed, scale)} is {abs(verdict.z or 0.0):.1f} robust"
            f" standard deviations {side} the expected {_num(verdict.expected, scale)}"
        )
    return Check(
        name=name,
        passed=not verdict.anomaly,
        observed=verdict.observed,
        expected=band,
        detail=detail,
        dataset=dataset,
    )


def _num(value: float | None, scale: float) -> str:
    """A value for a message: thousands separators; two decimals when ``scale`` (the expected value)
    is below 100 (hours of delay), none above (row counts).

    >>> _num(12034.4, 13600.0), _num(94.92, 100.0), _num(2.345, 2.0), _num(None, 1.0)
    ('12,034', '95', '2.35', '?')
    """
    if value is None:
        return "?"
    return f"{value:,.0f}" if abs(scale) >= 100 else f"{value:,.2f}"
