"""``POST /score``: a transaction's fraud score from the online features and the champion model.

Auth: an API key with the ``score`` scope in ``X-API-Key`` (``dotjoin keys add NAME``): none → 401, one
that is unknown or lacks the scope → 403. Each key is rate-limited (a token bucket: ``[features]
score_rate_per_s`` sustained, ``score_burst`` at once) → 429 with ``Retry-After``. A bad body → 422 naming
the field (FastAPI's validation). No champion model yet → 503. Per-stage timings (feature fetch, model,
total) go to ``/metrics`` as the histogram ``dotjoin_score_seconds{stage}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Response
from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from dotjoin.config import Settings
from dotjoin.exceptions import ServiceUnavailableError
from dotjoin.pipelines.payments.contract import MAX_AMOUNT
from dotjoin.platform.api_keys import ApiKey, KeyRing

SCOPE = "score"
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _text_only(value: Any) -> Any:
    """A time is ISO 8601 text, as the schema says: pydantic would read a number as epoch seconds."""
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


class Transaction(BaseModel):
    """A payment to score (the event contract's identifying fields)."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=128)
    card_id: str = Field(min_length=1, max_length=128)
    merchant_id: str = Field(min_length=1, max_length=128)
    amount: float = Field(gt=0, lt=MAX_AMOUNT, strict=True)  # the payments contract's bounds; no strings
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    event_time: Annotated[datetime | None, BeforeValidator(_text_only)] = Field(
        default=None, description="ISO 8601; default: now. Naive times are UTC."
    )


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


class ScoreResponse(BaseModel):
    event_id: str
    score: float
    decision: Literal["approve", "review"]
    model_version: str
    contributions: list[Contribution]
    timings_ms: dict[str, float]


class _Buckets:
    """One token bucket per key name."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """0 if a request may go now, else the seconds until one may."""
        with self._lock:
            now = time.monotonic()
            tokens, last = self._state.get(name, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._state[name] = (tokens - 1, now)
                return 0.0
            self._state[name] = (tokens, now)
            return (1 - tokens) / self.rate


def score_router(settings: Settings, registry: CollectorRegistry) -> APIRouter:
    """The scoring route; the scorer (its stores and model) is built on the first request."""
    keys = KeyRing(settings.state_dir)
    buckets = _Buckets(settings.features.score_rate_per_s, settings.features.score_burst)
    seconds = Histogram("dotjoin_score_seconds", "POST /score time by stage.", ["stage"], registry=registry,
                        buckets=_BUCKETS)  # fmt: skip
    holder: dict[str, Any] = {}
    building = threading.Lock()  # the first requests arrive together: one of them builds the scorer

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        if "scorer" in holder:  # flushes the served-feature log
            holder.pop("scorer").close()

    router = APIRouter(tags=["scoring"], lifespan=lifespan)

    def authorised(presented: str | None) -> ApiKey:
        if not presented:
            raise HTTPException(
                401, "an API key is needed: send it in X-API-Key", {"WWW-Authenticate": "ApiKey"}
            )
        key = keys.find(presented)
        if key is None or SCOPE not in key.scopes:
            raise HTTPException(403, f"this API key may not {SCOPE}")
        wait = buckets.take(key.name)
        if wait:
            raise HTTPException(
                429, "rate limit exceeded for this API key", {"Retry-After": str(math.ceil(wait))}
            )
        return key

    def scorer() -> Any:
        if "scorer" not in holder:
            with building:
                if "scorer" not in holder:
                    from dotjoin.pipelines.features.scoring import Scorer

                    holder["scorer"] = Scorer(settings)
        return holder["scorer"]

    @router.post(
        "/score",
        response_model=ScoreResponse,
        responses={400: {"description": "the body cannot be decoded"}, 401: {"description": "no API key"},
                   403: {"description": "key unknown or not allowed"}, 429: {"description": "rate limited"},
                   503: {"description": "no champion model"}},
    )  # fmt: skip
    async def score(transaction: Transaction, x_api_key: Annotated[str | None, Header()] = None) -> Response:
        """Score one transaction: its card's and merchant's features as of its time, the champion model."""
        # async on purpose: the work is ~1 ms on the event loop; a sync route's thread-pool hop made the
        # server queue for seconds at 300 requests/s on two cores (benchmarks/score.py)
        authorised(x_api_key)
        moment = transaction.event_time or datetime.now(UTC)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        try:
            serving: Any = holder.get("scorer") or await asyncio.to_thread(scorer)
            if not serving.ready:  # the first model load (MLflow, the artifact): seconds, off the loop
                await asyncio.to_thread(serving.champion)
                gc.freeze()  # what MLflow and the model loaded stays: spare full collections walking it
            done = serving.score(
                event_id=transaction.event_id, card_id=transaction.card_id,
                merchant_id=transaction.merchant_id, t=int(moment.timestamp() * 1000),
                amount=transaction.amount, currency=transaction.currency,
            )  # fmt: skip
        except ServiceUnavailableError as exc:
            raise HTTPException(503, str(exc)) from None
        for stage, ms in done.timings_ms.items():
            seconds.labels(stage=stage).observe(ms / 1e3)
        answer = ScoreResponse(
            event_id=transaction.event_id, score=done.score, decision=done.decision,
            model_version=done.model_version, contributions=[Contribution(**c) for c in done.contributions],
            timings_ms=done.timings_ms,
        )  # fmt: skip
        # serialised once here: returned as a model, FastAPI would dump, re-validate and encode it again
        return Response(answer.model_dump_json(), media_type="application/json")

    return router
