"""The resilient HTTP client: retries, Retry-After, terminal statuses, unusable bodies, failure records."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import httpx
import pytest

from dotjoin.platform.http import (
    BodyError,
    FailedRequest,
    HttpStatusError,
    ResilientClient,
    RetriesExhaustedError,
    RetryPolicy,
    UnusableUrlError,
)

FAST = RetryPolicy(max_attempts=4, base_delay_s=0.001, max_delay_s=2.0, timeout_s=5)


def _serve(answers: list[httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    return httpx.MockTransport(handler), seen


def _get(transport: httpx.MockTransport, failures: list[FailedRequest], parse: Any = None) -> Any:
    async def main() -> Any:
        async with ResilientClient(
            source="t", policy=FAST, transport=transport, on_failure=failures.append, seed=1
        ) as client:
            return await client.get(
                "http://upstream.test/x", params={"a": 1}, parse=parse or (lambda r: r.json())
            )

    return asyncio.run(main())


def test_retries_5xx_and_records_each_failed_attempt() -> None:
    transport, seen = _serve(
        [httpx.Response(503, text="busy"), httpx.Response(500), httpx.Response(200, json=[1])]
    )
    failures: list[FailedRequest] = []
    assert _get(transport, failures) == [1]
    assert len(seen) == 3
    assert [(f.status, f.attempt, f.will_retry) for f in failures] == [(503, 1, True), (500, 2, True)]
    assert failures[0].body_excerpt == "busy"
    assert failures[0].url == "http://upstream.test/x?a=1"


def test_429_retry_after_is_honoured() -> None:
    transport, seen = _serve(
        [httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={})]
    )
    t0 = time.monotonic()
    assert _get(transport, []) == {}
    assert time.monotonic() - t0 >= 0.95
    assert len(seen) == 2


def test_a_4xx_is_terminal_and_not_retried() -> None:
    transport, seen = _serve([httpx.Response(404, text="no such city")])
    failures: list[FailedRequest] = []
    with pytest.raises(HttpStatusError) as info:
        _get(transport, failures)
    assert info.value.status == 404
    assert len(seen) == 1
    assert [(f.status, f.will_retry) for f in failures] == [(404, False)]


def test_exhausted_retries_name_the_last_status() -> None:
    transport, seen = _serve([httpx.Response(502)])
    with pytest.raises(RetriesExhaustedError, match="failed 4 times, last: HTTP 502") as info:
        _get(transport, [])
    assert info.value.status == 502
    assert len(seen) == 4


def test_an_unusable_body_is_retried() -> None:
    transport, _ = _serve([httpx.Response(200, text='{"trunc'), httpx.Response(200, text='{"ok": 1}')])

    def parse(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise BodyError("truncated JSON") from exc

    failures: list[FailedRequest] = []
    assert _get(transport, failures, parse) == {"ok": 1}
    assert [(f.status, f.error) for f in failures] == [(200, "unusable body: truncated JSON")]


def test_connection_errors_are_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return httpx.Response(200, json=2)

    failures: list[FailedRequest] = []
    assert _get(httpx.MockTransport(handler), failures) == 2
    assert failures[0].status is None and "RemoteProtocolError" in failures[0].error


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x/data", "scheme 'ftp' is not http or https"),
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:99999/x", "port 99999 is not in 1..65535"),
        ("http://exa mple.com/x", "is not a host name or address"),
        ("127.0.0.1:8765/x", "no http:// or https://"),
    ],
)
def test_a_url_that_can_never_work_fails_at_once_and_is_not_retried(url: str, problem: str) -> None:
    transport, seen = _serve([httpx.Response(200, json=1)])
    failures: list[FailedRequest] = []

    async def main() -> None:
        async with ResilientClient(
            source="t", policy=FAST, transport=transport, on_failure=failures.append
        ) as c:
            with pytest.raises(UnusableUrlError, match=re.escape(problem)):
                await c.get(url, parse=lambda r: r.json())
            assert (c.requests, c.requests_failed) == (1, 1) and c.first_error and problem in c.first_error

    asyncio.run(main())
    assert seen == []  # never sent
    assert [(f.attempt, f.will_retry) for f in failures] == [(1, False)]


def test_an_unsupported_protocol_from_the_transport_is_terminal() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        raise httpx.UnsupportedProtocol("Request URL has an unsupported protocol")

    failures: list[FailedRequest] = []
    with pytest.raises(UnusableUrlError, match="unsupported protocol"):
        _get(httpx.MockTransport(handler), failures)
    assert calls["n"] == 1 and [f.will_retry for f in failures] == [False]


def test_retries_log_one_line_per_host_and_kind_of_failure(caplog: pytest.LogCaptureFixture) -> None:
    transport, _ = _serve([httpx.Response(503)])
    failures: list[FailedRequest] = []

    async def main() -> None:
        async with ResilientClient(
            source="t", policy=FAST, transport=transport, on_failure=failures.append
        ) as c:
            for _ in range(3):
                with pytest.raises(RetriesExhaustedError):
                    await c.get("http://upstream.test/x", parse=lambda r: r.json())
            assert (c.requests, c.requests_failed) == (3, 3)

    with caplog.at_level(logging.INFO, logger="dotjoin.platform.http"):
        asyncio.run(main())
    assert len(failures) == 3 * FAST.max_attempts  # every attempt is still recorded...
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(shown) == 1, [r.getMessage() for r in shown]  # ...but logged once
    assert "upstream.test" in shown[0].getMessage() and "HTTP 503" in shown[0].getMessage()
