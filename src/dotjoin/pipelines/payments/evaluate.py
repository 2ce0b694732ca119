"""Detection quality against labels: precision, recall, AUC, precision@k, recall per typology.

The truth is the labels (the simulator's ground truth, or the user's ``is_fraud``), never the alerts
table: an alert counts as a true positive only if its event id is labelled fraudulent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass
class Quality:
    events: int
    fraud: int
    alerts: int
    true_positives: int
    precision: float
    recall: float
    auc: float | None
    precision_at_k: dict[int, float] = field(default_factory=dict)
    recall_by_typology: dict[str, float] = field(default_factory=dict)
    fraud_by_typology: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def quality(
    risk: Sequence[tuple[str, float]],
    alerted: Collection[str],
    fraud: Collection[str],
    typologies: Mapping[str, str] | None = None,
    ks: Sequence[int] = (100, 1000),
) -> Quality:
    """Score the scored events ``risk`` (event id, risk) and the ``alerted`` ids against ``fraud`` ids.

    >>> q = quality([("a", 0.9), ("b", 0.8), ("c", 0.1)], {"a", "b"}, {"a"}, {"a": "high_amount"}, ks=(1,))
    >>> q.precision, q.recall, q.auc, q.precision_at_k, q.recall_by_typology
    (0.5, 1.0, 1.0, {1: 1.0}, {'high_amount': 1.0})
    """
    ids = [event_id for event_id, _ in risk]
    scored = set(ids)
    fraud_set = {f for f in fraud if f in scored}
    alerted_set = set(alerted) & scored
    tp = len(alerted_set & fraud_set)
    y = np.fromiter((event_id in fraud_set for event_id in ids), dtype=bool, count=len(ids))
    scores = np.fromiter((s for _, s in risk), dtype=np.float64, count=len(ids))
    auc = float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else None
    order = np.argsort(-scores, kind="stable")
    at_k = {k: round(float(y[order[:k]].mean()), 4) for k in ks if len(order) >= k}
    by_typology: dict[str, list[str]] = {}
    for event_id in fraud_set:
        by_typology.setdefault((typologies or {}).get(event_id, "fraud"), []).append(event_id)
    return Quality(
        events=len(ids),
        fraud=len(fraud_set),
        alerts=len(alerted_set),
        true_positives=tp,
        precision=round(tp / len(alerted_set), 4) if alerted_set else 0.0,
        recall=round(tp / len(fraud_set), 4) if fraud_set else 0.0,
        auc=round(auc, 4) if auc is not None else None,
        precision_at_k=at_k,
        recall_by_typology={
            t: round(sum(e in alerted_set for e in events) / len(events), 4)
            for t, events in sorted(by_typology.items())
        },
        fraud_by_typology={t: len(events) for t, events in sorted(by_typology.items())},
    )
