"""An asyncio HTTP client over httpx that survives a flaky upstream.

* retries with exponential backoff and full jitter on connection errors, timeouts, 408, 429 and 5xx,
  and on a body the caller's ``parse`` rejects (:class:`BodyError`, e.g. truncated JSON);
* ``Retry-After`` (seconds or HTTP date) is honoured, and a 429 pauses *every* request to that host;
* a per-host rate limit (token bucket) and a bound on requests in flight;
* a URL that can never work (not http/https, no host, a bad port, unparseable) fails at once with
  :class:`UnusableUrlError`, never retried;
* every failed attempt is handed to ``on_failure`` (the pipeline stores it in ``ingest_errors``); the
  log gets one line per host and kind of failure (``ConnectError``, ``HTTP 503``, ...), the rest at DEBUG.

Example:
    >>> import asyncio, httpx
    >>> def handler(request: httpx.Request) -> httpx.Response:
    ...     return httpx.Response(200, json={"ok": True})
    >>> async def main() -> dict:
    ...     async with ResilientClient(source="demo", transport=httpx.MockTransport(handler)) as client:
    ...         return await client.get("http://example.test/x", parse=lambda r: r.json())
    >>> asyncio.run(main())
    {'ok': True}
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from dotjoin.exceptions import DotjoinError, TerminalError, TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
BODY_EXCERPT = 500


class BodyError(Exception):
    """Raised by a ``parse`` callback when a 2xx body is unusable (truncated, not JSON): retried."""


class HttpStatusError(TerminalError):
    """The server answered a status a retry will not fix (e.g. 400, 404).

    Attributes:
        status: the HTTP status code.
    """

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class UnusableUrlError(TerminalError):
    """A URL no retry can make work: not http(s), no host, a port outside 1..65535, unparseable."""


def url_problem(url: str) -> str | None:
    """Why ``url`` can never be fetched (``None`` if it can be tried).

    >>> [url_problem(u) for u in ("http://127.0.0.1:8765", "https://example.org/x?a=1")]
    [None, None]
    >>> url_problem("ftp://x")
    "scheme 'ftp' is not http or https"
    >>> url_problem("http://127.0.0.1:99999")
    'port 99999 is not in 1..65535'
    >>> url_problem("http://[::1")
    'not a valid URL (Invalid IPv6 URL)'
    >>> url_problem("localhost:8765")
    "no http:// or https:// (did you mean 'http://localhost:8765'?)"
    """
    if "://" not in url:
        return f"no http:// or https:// (did you mean 'http://{url}'?)"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        return f"not a valid URL ({exc})"
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return f"port {parts.netloc.rpartition(':')[2]} is not in 1..65535"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return f"scheme {parsed.scheme!r} is not http or https"
    host = parsed.host
    if not host:
        return "no host"
    if ":" not in host and not re.fullmatch(r"[A-Za-z0-9._~-]+", host):  # an IPv6 literal has colons
        return f"host {host!r} is not a host name or address"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return f"port {parsed.port} is not in 1..65535"
    return None


class RetriesExhaustedError(TransientError):
    """Every attempt failed with a retryable error; the last status (or None) is kept."""

    def __init__(self, message: str, *, status: int | None) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class FailedRequest:
    """One failed attempt, as stored in ``ingest_errors``."""

    source: str
    method: str
    url: str
    status: int | None
    attempt: int
    error: str
    body_excerpt: str | None
    at: datetime
    will_retry: bool


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    Args:
        max_attempts: attempts per request, the first included.
        base_delay_s: backoff of the first retry; doubles per attempt (before jitter).
        max_delay_s: cap of one backoff, and of an honoured Retry-After.
        timeout_s: connect/read/write timeout of one attempt.

    >>> policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    >>> [policy.backoff(a, random.Random(0)) <= min(5.0, 2 ** (a - 1)) for a in (1, 2, 3, 8)]
    [True, True, True, True]
    """

    max_attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0
    timeout_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff after failed attempt number ``attempt`` (1-based)."""
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=datetime(2015, 10, 21, 7, 28, tzinfo=UTC))
    5.0
    >>> parse_retry_after("soon") is None
    True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class _HostLimiter:
    """Token bucket per host (``rate`` requests/s, burst ``burst``) plus a pause set by a 429."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                if self.rate <= 0:
                    return
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


class ResilientClient:
    """Async GET with retries, per-host rate limit and bounded concurrency. Use ``async with``.

    Args:
        source: a label for the failure records (``"weather"``, ``"transit"``).
        policy: retry and timeout policy.
        rate_per_host: requests per second per host; 0 means unlimited.
        burst: token-bucket burst per host.
        concurrency: requests in flight at most (over all hosts).
        on_failure: called with every failed attempt (retried or final).
        transport: an httpx transport (tests); default is the network.
        seed: seed of the jitter (deterministic tests).
    """

    def __init__(
        self,
        *,
        source: str,
        policy: RetryPolicy | None = None,
        rate_per_host: float = 0.0,
        burst: int = 10,
        concurrency: int = 8,
        on_failure: Callable[[FailedRequest], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        seed: int | None = None,
    ) -> None:
        self.source = source
        self.policy = policy or RetryPolicy()
        self.rate_per_host = rate_per_host
        self.burst = burst
        self.on_failure = on_failure
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._limiters: dict[str, _HostLimiter] = {}
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not crypto
        limits = httpx.Limits(
            max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency)
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.policy.timeout_s),
            limits=limits,
            transport=transport,
            headers={"user-agent": "dotjoin-ingest/0.1", **dict(headers or {})},
            follow_redirects=True,
        )
        self.attempts = 0
        self.failures = 0
        #: calls of :meth:`get`, those that raised, and the message of the first that raised.
        self.requests = 0
        self.requests_failed = 0
        self.first_error: str | None = None
        self._logged: set[tuple[str, str]] = set()  # (host, kind) already logged at INFO/WARNING

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    def _limiter(self, url: str) -> _HostLimiter:
        host = urlsplit(url).netloc
        if host not in self._limiters:
            self._limiters[host] = _HostLimiter(self.rate_per_host, self.burst)
        return self._limiters[host]

    def _record(
        self,
        url: str,
        status: int | None,
        attempt: int,
        error: str,
        body: str | None,
        will_retry: bool,
    ) -> None:
        self.failures += 1
        failure = FailedRequest(
            source=self.source,
            method="GET",
            url=url,
            status=status,
            attempt=attempt,
            error=error,
            body_excerpt=body[:BODY_EXCERPT] if body else None,
            at=datetime.now(UTC),
            will_retry=will_retry,
        )
        # One line per host and kind of failure; every attempt is in ingest_errors (and at DEBUG).
        try:
            host = urlsplit(url).netloc or url
        except ValueError:  # an unparseable URL (never sent) is its own "host"
            host = url
        kind = f"HTTP {status}" if error.startswith("HTTP ") else error.split(":", 1)[0]
        if (host, kind) in self._logged:
            logger.debug("%s GET %s attempt %d failed (%s): %s", self.source, url, attempt, status, error)
        else:
            self._logged.add((host, kind))
            (logger.info if will_retry else logger.warning)(
                "%s: %s: %s (%s; more like it at DEBUG and in ingest_errors)",
                self.source, host, error if len(error) <= 80 else error[:79] + "…",
                "retrying" if will_retry else "gave up",
            )  # fmt: skip
        if self.on_failure is not None:
            self.on_failure(failure)

    async def get(
        self, url: str, *, params: Mapping[str, Any] | None = None, parse: Callable[[httpx.Response], T]
    ) -> T:
        """GET ``url`` until ``parse`` accepts a 2xx response, or raise.

        Raises:
            HttpStatusError: a non-retryable status (4xx other than 408/425/429).
            RetriesExhaustedError: every attempt failed with a retryable error.
            UnusableUrlError: a URL that can never work (see :func:`url_problem`), not retried.
        """
        self.requests += 1
        try:
            return await self._get(url, params, parse)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.requests_failed += 1
                if self.first_error is None:
                    self.first_error = (
                        str(exc) if isinstance(exc, DotjoinError) else f"{type(exc).__name__}: {exc}"
                    )
            raise

    async def _get(
        self, url: str, params: Mapping[str, Any] | None, parse: Callable[[httpx.Response], T]
    ) -> T:
        problem = url_problem(url)
        if problem is not None:
            self._record(url, None, 1, f"UnusableUrl: {problem}", None, False)
            raise UnusableUrlError(f"{self.source}: GET {url}: {problem}")
        limiter = self._limiter(url)
        full_url = str(httpx.URL(url, params=dict(params or {})))
        last_status: int | None = None
        last_error = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after: float | None = None
            await limiter.acquire()
            async with self._semaphore:
                self.attempts += 1
                try:
                    response = await self._client.get(full_url)
                except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # a retry cannot help
                    self._record(full_url, None, attempt, f"{type(exc).__name__}: {exc}", None, False)
                    raise UnusableUrlError(f"{self.source}: GET {full_url}: {exc}") from exc
                except httpx.HTTPError as exc:  # connect/read errors, timeouts, truncated bodies
                    last_status, last_error = None, f"{type(exc).__name__}: {exc}"
                    self._record(
                        full_url, None, attempt, last_error, None, attempt < self.policy.max_attempts
                    )
                    await asyncio.sleep(self.policy.backoff(attempt, self._rng))
                    continue
            status = response.status_code
            if 200 <= status < 300:
                try:
                    return parse(response)
                except BodyError as exc:
                    last_status, last_error = status, f"unusable body: {exc}"
                    self._record(
                        full_url,
                        status,
                        attempt,
                        last_error,
                        response.text,
                        attempt < self.policy.max_attempts,
                    )
                    await asyncio.sleep(self.policy.backoff(attempt, self._rng))
                    continue
            body = response.text
            last_status, last_error = status, f"HTTP {status}"
            if status not in RETRY_STATUSES:
                self._record(full_url, status, attempt, last_error, body, False)
                raise HttpStatusError(f"{self.source}: GET {full_url} answered HTTP {status}", status=status)
            self._record(full_url, status, attempt, last_error, body, attempt < self.policy.max_attempts)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = self.policy.backoff(attempt, self._rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.policy.max_delay_s))
                if status == 429:
                    limiter.pause(delay)
            await asyncio.sleep(delay)
        raise RetriesExhaustedError(
            f"{self.source}: GET {full_url} failed {self.policy.max_attempts} times, last: {last_error}",
            status=last_status,
        )
