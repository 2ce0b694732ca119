"""A resilient HTTP client: retries with backoff + jitter, Retry-After, per-host rate limit, bounded
concurrency, timeouts, and a record of every failed attempt."""

from __future__ import annotations

from httpx import Response  # what a ``parse`` callback receives: pipelines never import httpx themselves

from dotjoin.platform.http.client import (
    BodyError,
    FailedRequest,
    HttpStatusError,
    ResilientClient,
    RetriesExhaustedError,
    RetryPolicy,
    UnusableUrlError,
    parse_retry_after,
    url_problem,
)

__all__ = [
    "BodyError",
    "FailedRequest",
    "HttpStatusError",
    "ResilientClient",
    "Response",
    "RetriesExhaustedError",
    "RetryPolicy",
    "UnusableUrlError",
    "parse_retry_after",
    "url_problem",
]
