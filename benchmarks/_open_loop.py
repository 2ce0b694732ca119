"""The HTTP benchmarks' common parts: a free port, waiting for a server, the open-loop load, quantiles."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0) -> None:
    """Until ``url`` answers below 500 (a server starting); exits the benchmark after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {timeout:.0f} s")


async def open_loop(
    url: str, payloads: list[bytes], rps: float, seconds: float, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    """POST ``payloads`` (JSON, cycled) at ``rps``: request n is due at n / rps and its latency runs from
    then to its response, so a slow server's queueing counts. A fixed set of workers takes the requests
    in order (all of them at once would only measure the client's queueing). aiohttp with the bodies
    encoded beforehand: httpx's client took most of a core at 500 requests/s, a core the servers on a
    2-core machine then lacked. Returns the latencies (s) and how many answers were not 200."""
    total, latencies, errors = int(rps * seconds), [], 0
    queue = iter(range(total))
    headers = {**(headers or {}), "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:  # fmt: skip
        t0 = time.perf_counter()

        async def worker() -> None:
            nonlocal errors
            for n in queue:
                due = t0 + n / rps
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                async with client.post(url, data=payloads[n % len(payloads)], headers=headers) as response:
                    await response.read()
                    errors += response.status != 200
                latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(worker() for _ in range(64)))
    return latencies, errors


def quantiles(latencies: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max, in milliseconds."""
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1] * 1e3}
