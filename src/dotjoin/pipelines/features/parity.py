"""Offline/online parity: the features served for each payment, against the backfill of the same points.

The stream is replayed in arrival order; each payment is scored online **before** it joins the state
(what a scoring call sees), then the backfill computes the same (card, merchant, time) points **as known**
at each point's arrival (:func:`~dotjoin.pipelines.features.backfill.backfill` with arrival order). Every
point must agree: the deterministic features exactly, the decayed ones within :data:`DECAY_TOLERANCE`.

The backfill **as happened** (every payment before t, late ones included) is compared too, for what late
data does: the points that missed a payment older than them that arrived after them (``late_affected``)
and how many of them differ (``late_differing``) — the skew a model trained on as-happened features would
meet in serving.

Duplicates (an ``event_id`` seen before) are dropped on both sides: the first arrival counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import DECAY_TOLERANCE, FEATURES
from dotjoin.pipelines.features.online import OnlineFeatures
from dotjoin.pipelines.payments.contract import Payment


@dataclass
class ParityReport:
    """Counts reconcile: payments = points + duplicates; points = agreeing + mismatched."""

    payments: int = 0
    duplicates: int = 0
    points: int = 0
    agreeing: int = 0  # served = backfilled as known
    mismatched: int = 0  # served != backfilled as known: a bug in one computation
    late_affected: int = 0  # missed a payment older than them that arrived after them
    late_differing: int = 0  # served != backfilled as happened
    max_decay_relative_diff: float = 0.0
    examples: list[str] = field(default_factory=list)  # the first few mismatches, feature by feature


def differences(online: dict[str, Any], offline: dict[str, Any]) -> tuple[list[str], float]:
    """The features that disagree (deterministic: exactly; decayed: beyond the tolerance), and the largest
    relative difference among the decayed ones."""
    bad, worst = [], 0.0
    for feature in FEATURES:
        a, b = online[feature.name], offline[feature.name]
        if feature.deterministic or a is None or b is None:
            if a != b:
                bad.append(f"{feature.name}: online {a!r}, offline {b!r}")
            continue
        worst = max(worst, abs(a - b) / max(abs(a), abs(b), 1.0))
        if not math.isclose(a, b, rel_tol=DECAY_TOLERANCE, abs_tol=DECAY_TOLERANCE):
            bad.append(f"{feature.name}: online {a!r}, offline {b!r}")
    return bad, worst


def late_affected(rows: Sequence[tuple[str, str, int]]) -> list[bool]:
    """Per row (card, merchant, time) in arrival order: does a later-arriving row of the same card or
    merchant carry an earlier time? One backward pass, keeping each entity's earliest later time."""
    earliest: dict[tuple[int, str], int] = {}
    out = [False] * len(rows)
    for n in range(len(rows) - 1, -1, -1):
        card, merchant, t = rows[n]
        keys = ((0, card), (1, merchant))
        out[n] = any(earliest.get(k, t) < t for k in keys)
        for k in keys:
            earliest[k] = min(earliest.get(k, t), t)
    return out


def check_parity(
    payments: Iterable[Payment], usd_rates: dict[str, float], *, examples: int = 5
) -> ParityReport:
    """Replay ``payments`` (arrival order) online, backfill the same points, and compare."""
    report = ParityReport()
    ids, rows, report.duplicates = distinct_rows(payments, usd_rates)
    report.payments = len(rows) + report.duplicates
    online, served = OnlineFeatures(), []
    for card, merchant, time_ms, cents in rows:
        served.append(online.features_at(card_id=card, merchant_id=merchant, t=time_ms))
        online.add(card_id=card, merchant_id=merchant, time_ms=time_ms, cents=cents)
    known = backfill(*as_tables(ids, rows, arrival=True)).to_pylist()
    happened = backfill(*as_tables(ids, rows)).to_pylist()
    affected = late_affected([(c, m, t) for c, m, t, _ in rows])
    for n, (mine, truth, after_all) in enumerate(zip(served, known, happened, strict=True)):
        report.points += 1
        bad, worst = differences(mine, truth)
        report.max_decay_relative_diff = max(report.max_decay_relative_diff, worst)
        if bad:
            report.mismatched += 1
            if len(report.examples) < examples:
                card, merchant, t, _ = rows[n]
                report.examples.append(f"card {card} merchant {merchant} at {t}: {'; '.join(bad[:3])}")
        else:
            report.agreeing += 1
        if affected[n]:
            report.late_affected += 1
            report.late_differing += bool(differences(mine, after_all)[0])
    return report
