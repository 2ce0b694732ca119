"""Realtime scoring: the online store's features of a transaction, the champion model, an explanation.

:class:`Scorer` holds one model — the registry's ``champion`` of
:data:`~dotjoin.pipelines.features.train.MODEL_NAME` — and looks the alias up again at most every
``[features] champion_recheck_s`` seconds, so a promotion is served without a restart. A score comes with
the decision (``review`` at or above the threshold, else ``approve``), the features' top contributions
(how much the score drops when a feature is set to its training median: one batched prediction of
1 + 40 rows) and the time each stage took. Every served vector goes to the served-feature log
(:class:`~dotjoin.pipelines.features.served.ServedLog`) for the parity job on live traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dotjoin.config import Settings
from dotjoin.exceptions import ServiceUnavailableError
from dotjoin.pipelines.features.definitions import MODEL_FEATURES, request_features, usd_cents
from dotjoin.pipelines.features.served import ServedLog
from dotjoin.pipelines.features.store import OnlineStore
from dotjoin.pipelines.features.stream import NAMESPACE
from dotjoin.pipelines.features.train import CHAMPION, MODEL_NAME, REFERENCE_ARTIFACT, open_mlflow
from dotjoin.pipelines.features.trees import Predict, probabilities
from dotjoin.pipelines.payments.history import read_usd_rates
from dotjoin.platform.kv import KeyValueStore, open_kv

logger = logging.getLogger(__name__)


class NoChampionError(ServiceUnavailableError):
    def __init__(self, detail: str) -> None:
        super().__init__("the champion model", f"models:/{MODEL_NAME}@{CHAMPION}", detail)


@dataclass
class Scored:
    score: float
    decision: str
    model_version: str
    contributions: list[dict[str, Any]]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class _Champion:
    version: str
    reference: np.ndarray
    predict: Predict  # rows → probabilities: the model's own, minus its per-call overhead (trees.py)


class Scorer:
    def __init__(
        self, settings: Settings, *, kv: KeyValueStore | None = None, recheck_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.store = OnlineStore(kv or open_kv(settings, NAMESPACE))
        self.threshold = settings.features.decision_threshold
        rates = settings.features.fx_rates  # the stream job's rates: the same cents on both sides
        self.usd_rates = read_usd_rates(settings.resolve(rates)) if rates else {}
        self.recheck_s = settings.features.champion_recheck_s
        self._champion: _Champion | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        log = settings.features.served_log
        self.served = (
            ServedLog(settings.resolve(log), flush_s=settings.features.served_flush_s) if log else None
        )

    @property
    def ready(self) -> bool:
        """Whether a champion is loaded (until then :meth:`champion` blocks for the first load)."""
        return self._champion is not None

    def champion(self) -> _Champion:
        """The served model. Only the first call waits for it; when the alias is due a look-up again
        (every ``recheck_s``), one background thread does it and swaps a newly promoted model in, so a
        request never waits on the registry."""
        current = self._champion
        if current is None:
            with self._lock:
                if self._champion is None:
                    self._champion = self._load(None)
                    self._checked = time.monotonic()
                return self._champion
        if time.monotonic() - self._checked >= self.recheck_s and self._lock.acquire(blocking=False):
            self._checked = time.monotonic()
            threading.Thread(target=self._recheck, name="champion-recheck", daemon=True).start()
        return current

    def _recheck(self) -> None:
        try:
            self._champion = self._load(self._champion)
        finally:
            self._checked = time.monotonic()
            self._lock.release()

    def _load(self, current: _Champion | None) -> _Champion:
        mlflow = open_mlflow(self.settings)
        try:
            found = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION)
        except Exception as exc:  # MlflowException: no model, or no alias yet
            if current is not None:
                return current  # the registry is unreachable or the alias gone: keep serving what we have
            raise NoChampionError(f"{exc}; train one and `dotjoin features promote VERSION`") from None
        if current is not None and current.version == str(found.version):
            return current
        try:
            model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{found.version}")
            reference = mlflow.artifacts.load_dict(f"runs:/{found.run_id}/{REFERENCE_ARTIFACT}")
            medians = np.asarray([reference[name] for name in MODEL_FEATURES])
        except Exception as exc:  # an unloadable version: keep serving the last good one, if any
            if current is not None:
                logger.error("champion version %s does not load (%s); still serving %s", found.version, exc,
                             current.version)  # fmt: skip
                return current
            raise NoChampionError(f"version {found.version} does not load: {exc}") from None
        logger.info("serving %s version %s", MODEL_NAME, found.version)
        probe = np.vstack([medians, medians * 0.5, medians * 2.0, np.full(medians.size, np.nan)])
        return _Champion(str(found.version), medians, probabilities(model, probe))

    def score(
        self,
        *,
        event_id: str,
        card_id: str,
        merchant_id: str,
        t: int,
        amount: float,
        currency: str,
        top: int = 3,
    ) -> Scored:
        started = time.perf_counter()
        champion = self.champion()
        looked_up = time.perf_counter()
        values, offsets = self.store.snapshot(card_id=card_id, merchant_id=merchant_id, t=t)
        fetched = time.perf_counter()
        inputs = values | request_features(usd_cents(amount, currency, self.usd_rates), values)
        row = np.asarray(
            [np.nan if inputs[n] is None else inputs[n] for n in MODEL_FEATURES], dtype=np.float64
        )
        width = len(MODEL_FEATURES)
        rows = np.repeat(row[None, :], width + 1, axis=0)
        rows[np.arange(1, width + 1), np.arange(width)] = champion.reference
        scores = champion.predict(rows)
        scored = time.perf_counter()
        score = float(scores[0])
        if self.served is not None:
            self.served.record(
                event_id=event_id, card_id=card_id, merchant_id=merchant_id, time_ms=t,
                model_version=champion.version, score=score, offsets=offsets, values=values,
            )  # fmt: skip
        moves = score - scores[1:]
        order = np.argsort(-np.abs(moves))[:top]
        return Scored(
            score=score,
            decision="review" if score >= self.threshold else "approve",
            model_version=champion.version,
            contributions=[
                {
                    "feature": MODEL_FEATURES[n],
                    "value": inputs[MODEL_FEATURES[n]],
                    "contribution": float(moves[n]),
                }
                for n in order
            ],
            timings_ms={
                "features": (fetched - looked_up) * 1e3,
                "model": (scored - fetched) * 1e3,
                "total": (scored - started) * 1e3,
            },
        )

    def close(self) -> None:
        if self.served is not None:
            self.served.close()
        self.store.kv.close()
