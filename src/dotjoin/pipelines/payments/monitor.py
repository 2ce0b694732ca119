"""What the live detector shows: Prometheus metrics and a once-a-second status file for the dashboard.

The runner calls :meth:`Monitor.batch` after each batch. The monitor keeps

* Prometheus families in its own registry (served by ``dotjoin payments detect --metrics-port``):
  ``dotjoin_payments_events_total``, ``..._alerts_total{rule}``, ``..._dead_letters_total``,
  ``..._late_total``, ``..._duplicates_total``, ``..._consumer_lag_messages``, the histogram
  ``..._alert_latency_seconds`` (message timestamp → alert written), and — when the runner reads the
  ``payments.labels`` topic — ``..._precision`` / ``..._recall`` against the labels received so far
  (an alert whose label is still on its way counts as a false positive until it arrives);
* a ring of one-second points (events/s, lag, latency p50/p95/p99) and the latest alerts, written
  atomically to ``<state>/payments/status.json`` for the ``/payments`` page of ``dotjoin serve``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dotjoin.pipelines.payments.contract import ContractError, parse_label
from dotjoin.pipelines.payments.detector import Alert

logger = logging.getLogger(__name__)

POINTS = 600  # ten minutes of one-second points
LATEST_ALERTS = 20
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Second:
    events: int = 0
    alerts: int = 0
    latencies: list[float] = field(default_factory=list)


class Monitor:
    """Metrics and the dashboard's status file of one detector process."""

    def __init__(self, status_path: Path | None, *, runtime: str = "embedded") -> None:
        self.status_path = status_path
        self.runtime = runtime
        self.registry = CollectorRegistry()
        prefix = "dotjoin_payments"
        self.events = Counter(f"{prefix}_events", "Payments scored", registry=self.registry)
        self.alerts = Counter(
            f"{prefix}_alerts", "Alerts raised, by rule or model", ["rule"], registry=self.registry
        )
        self.dead = Counter(
            f"{prefix}_dead_letters", "Messages that broke the contract", registry=self.registry
        )
        self.late = Counter(f"{prefix}_late", "Events behind their card's watermark", registry=self.registry)
        self.duplicates = Counter(f"{prefix}_duplicates", "Repeated event ids", registry=self.registry)
        self.lag = Gauge(
            f"{prefix}_consumer_lag_messages", "Messages not yet consumed", registry=self.registry
        )
        self.latency = Histogram(
            f"{prefix}_alert_latency_seconds",
            "Message timestamp to alert written",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.precision = Gauge(
            f"{prefix}_precision",
            "Alerted events that are labelled fraud, of all alerted",
            registry=self.registry,
        )
        self.recall = Gauge(
            f"{prefix}_recall", "Labelled fraud events alerted, of all labelled", registry=self.registry
        )
        self.points: deque[dict[str, float]] = deque(maxlen=POINTS)
        self.labelled: dict[str, str] = {}  # event id -> typology, from the labels topic
        self.alerted: set[str] = set()
        self._totals: dict[str, int] = {}  # labelled events per typology
        self._hits: dict[str, int] = {}  # ... of them alerted
        self.latest: deque[dict[str, Any]] = deque(maxlen=LATEST_ALERTS)
        self.by_rule: dict[str, int] = {}
        self.totals = {"events": 0, "alerts": 0, "dead_letters": 0, "late": 0, "duplicates": 0}
        self._second = _Second()
        self._second_start = time.time()
        self._lag = 0
        self._quality: dict[str, Any] | None = None

    def batch(
        self,
        *,
        scored: int,
        alerts: Sequence[Alert],
        latencies_s: Sequence[float],
        dead_letters: int,
        late: int,
        duplicates: int,
        lag: int | None = None,
    ) -> None:
        """Count one processed batch; rolls the one-second point and writes the status when due."""
        self.events.inc(scored)
        self.dead.inc(dead_letters)
        self.late.inc(late)
        self.duplicates.inc(duplicates)
        for alert in alerts:
            typology = self.labelled.get(alert.event_id)
            if typology is not None and alert.event_id not in self.alerted:
                self._hits[typology] = self._hits.get(typology, 0) + 1
            self.alerted.add(alert.event_id)
            for name in alert.rules + alert.models:
                self.alerts.labels(rule=name).inc()
                self.by_rule[name] = self.by_rule.get(name, 0) + 1
            self.latest.appendleft(alert.as_dict())
        for seconds in latencies_s:
            self.latency.observe(seconds)
        if lag is not None:
            self._lag = lag
            self.lag.set(lag)
        t = self.totals
        t["events"] += scored
        t["alerts"] += len(alerts)
        t["dead_letters"] += dead_letters
        t["late"] += late
        t["duplicates"] += duplicates
        s = self._second
        s.events += scored
        s.alerts += len(alerts)
        s.latencies.extend(latencies_s)
        self.tick()

    def labels(self, values: Sequence[bytes]) -> None:
        """Take label messages (``payment_label.v1``); a malformed one is logged and skipped (the
        labels are the evaluation's input, not the detector's)."""
        for value in values:
            try:
                label = parse_label(value)
            except ContractError as exc:
                logger.warning("ignoring a malformed label: %s", exc)
                continue
            if label.event_id in self.labelled:
                continue
            self.labelled[label.event_id] = label.typology
            self._totals[label.typology] = self._totals.get(label.typology, 0) + 1
            if label.event_id in self.alerted:
                self._hits[label.typology] = self._hits.get(label.typology, 0) + 1

    def quality(self) -> dict[str, Any] | None:
        """Precision, recall and recall per typology against the labels received (None: no labels)."""
        if not self.labelled:
            return None
        caught = sum(self._hits.values())
        return {
            "labelled": len(self.labelled),
            "alerted": len(self.alerted),
            "precision": caught / len(self.alerted) if self.alerted else None,
            "recall": caught / len(self.labelled),
            "recall_by_typology": {t: self._hits.get(t, 0) / n for t, n in sorted(self._totals.items())},
        }

    def tick(self, now: float | None = None) -> None:
        """Close the current second if it is over (also called while idle) and write the status."""
        now = time.time() if now is None else now
        if now - self._second_start < 1.0:
            return
        s, span = self._second, now - self._second_start
        lat = np.asarray(s.latencies) * 1000 if s.latencies else None
        self.points.append(
            {
                "t": round(now, 3),
                "events_per_s": round(s.events / span, 1),
                "alerts": s.alerts,
                "lag": self._lag,
                **(
                    {f"p{q}_ms": round(float(np.percentile(lat, q)), 2) for q in (50, 95, 99)}
                    if lat is not None
                    else {}
                ),
            }
        )
        self._second, self._second_start = _Second(), now
        self._quality = q = self.quality()
        if q is not None:
            self.recall.set(q["recall"])
            self.points[-1]["recall"] = round(q["recall"], 4)
            if q["precision"] is not None:
                self.precision.set(q["precision"])
                self.points[-1]["precision"] = round(q["precision"], 4)
        self.write()

    def status(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "updated": time.time(),
            "totals": dict(self.totals),
            "by_rule": dict(sorted(self.by_rule.items())),
            "points": list(self.points),
            "latest_alerts": list(self.latest),
            "quality": self._quality,
        }

    def write(self) -> None:
        if self.status_path is None:
            return
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.status_path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status a detector wrote, or None (no detector has run here)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
