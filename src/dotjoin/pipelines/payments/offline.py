"""Train on a labelled history; replay a recorded stream through the detector and score it.

Both go through :class:`~.detector.Detector` in file order, batch by batch, exactly as the streaming
runners do — so the features a model is trained on are the features it is served, and a replay's
alerts are the alerts a live run on the same messages would raise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dotjoin.pipelines.payments.detector import Alert, Counters, Detector
from dotjoin.pipelines.payments.evaluate import Quality, quality
from dotjoin.pipelines.payments.history import History, Reference, Rejected
from dotjoin.pipelines.payments.models import FraudModels, train
from dotjoin.pipelines.payments.rules import Rule

BATCH = 500


def category_typicals(
    history: History, reference: Reference, *, before_share: float = 0.8
) -> dict[str, float]:
    """The median US-dollar amount of each merchant category over the earliest ``before_share`` of the
    history (the part a model is fitted on: the validation part stays unseen)."""
    payments = sorted(history.payments, key=lambda p: p.event_time_ms)
    amounts: dict[str, list[float]] = {}
    rates = reference.usd_rates
    for p in payments[: max(1, int(len(payments) * before_share))]:
        category = (
            reference.merchants[p.merchant_id].category if p.merchant_id in reference.merchants else None
        )
        if category is not None:
            amounts.setdefault(category, []).append(p.amount / rates.get(p.currency, 1.0))
    return {c: float(np.median(v)) for c, v in amounts.items() if len(v) >= 20}


def training_rows(
    history: History, reference: Reference, category_usd: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, labels and event times of the history's payments (late and duplicate ones left
    out, as the live detector leaves them out)."""
    labels = history.labels()
    detector = Detector(reference.merchants, rules=(), usd_rates=reference.usd_rates)
    detector.state.category_usd = dict(category_usd or {})
    rows, ys, ms = [], [], []
    payments = history.payments
    for start in range(0, len(payments), BATCH):
        batch = payments[start : start + BATCH]
        matrix, kept, _ = detector.features(batch)
        rows.append(matrix)
        ys.append(labels[start : start + BATCH][kept])
        ms.append(np.fromiter((batch[i].event_time_ms for i in kept), dtype=np.int64, count=len(kept)))
    return np.concatenate(rows), np.concatenate(ys), np.concatenate(ms)


def train_models(
    history: History, reference: Reference, *, validation_share: float = 0.2, seed: int = 0
) -> FraudModels:
    typicals = category_typicals(history, reference, before_share=1 - validation_share)
    rows, labels, event_ms = training_rows(history, reference, typicals)
    return train(rows, labels, event_ms, validation_share=validation_share, seed=seed, category_usd=typicals)


@dataclass
class Replay:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[Rejected] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # event ids
    counters: Counters = field(default_factory=Counters)
    risk: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    quality: Quality | None = None

    @property
    def events_per_s(self) -> float:
        return self.counters.scored / self.seconds if self.seconds else 0.0


def replay(
    history: History,
    reference: Reference,
    rules: Sequence[Rule],
    models: FraudModels | None,
    *,
    allowed_lateness_ms: int | None = None,
    warm_up: History | None = None,
) -> Replay:
    """Run the history through a detector; with labels, score the alerts against them.

    ``warm_up``: an earlier stream whose events build the detector's state first (features only,
    nothing scored or counted) — what a live detector that ran over it holds in its checkpoint.
    Without it the detector starts empty, as on its first day.
    """
    kwargs = {} if allowed_lateness_ms is None else {"allowed_lateness_ms": allowed_lateness_ms}
    detector = Detector(reference.merchants, rules, models, usd_rates=reference.usd_rates, **kwargs)
    if warm_up is not None:
        for start in range(0, len(warm_up.payments), BATCH):
            detector.features(warm_up.payments[start : start + BATCH])
        detector.counters = Counters()
    out = Replay(dead_letters=list(history.rejected))
    payments = history.payments
    began = time.perf_counter()
    for start in range(0, len(payments), BATCH):
        batch = payments[start : start + BATCH]
        result = detector.process(batch)
        out.alerts.extend(result.alerts)
        out.late.extend(batch[i].event_id for i in result.late)
        out.risk.extend(result.risk)
    out.seconds = time.perf_counter() - began
    out.counters = detector.counters
    if history.fraud is not None:
        fraud = {p.event_id for p, f in zip(payments, history.fraud, strict=True) if f}
        out.quality = quality(out.risk, {a.event_id for a in out.alerts}, fraud, history.typologies)
    return out


def save_alerts(alerts: Sequence[Alert], path: Path) -> None:
    """Alerts as JSON lines (one per alerted event, in detection order)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for alert in alerts:
            fh.write(json.dumps(alert.as_dict(), separators=(",", ":")) + "\n")
