"""``dotjoin sources serve``: Open-Meteo, GTFS and GTFS-realtime endpoints with fault injection.

Endpoints (same paths as the real services, so a base URL is all a client changes):

* ``GET /v1/forecast``, ``GET /v1/archive`` — Open-Meteo JSON; ``latitude``/``longitude`` (comma lists
  give a JSON list, as the real API does), ``hourly``, ``start_date``/``end_date`` or ``past_days``,
  ``timeformat=unixtime``, ``timezone`` (GMT/UTC only).
* ``GET /gtfs/static.zip`` — the GTFS static feed.
* ``GET /gtfs-rt/trip-updates?date=YYYY-MM-DD`` — GTFS-realtime TripUpdates (protobuf) of that service
  date (default: today, UTC). ``date`` is our extension: a real feed serves only "now".
* ``GET /q/d/l/?s=<symbol>&d1=YYYYMMDD&d2=YYYYMMDD&i=d`` — Stooq daily quotes as CSV, or ``No data``
  (see :mod:`dotjoin.simulate.sources.stocks`); without ``d1``/``d2`` the whole series, as Stooq does.
* ``GET /health`` — never faulty.

Faults (all seeded): ``fail_first`` answers 503 to the first N requests (deterministic: "the upstream
was down when the run started"); ``fail_rate`` answers 500/503; ``rate_limit`` (requests/s) answers 429
with ``Retry-After``; ``latency_s`` delays every answer; ``dup_rate``/``shuffle`` duplicate and reorder
the day-pages of a weather answer, the entities of a TripUpdates feed and the rows of a quotes CSV;
``truncate_rate`` cuts a body short (JSON: a 200 with half a document; binary and CSV: the connection
closes before the declared Content-Length — a CSV cut at a line end would look complete).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from dotjoin.simulate.sources.stocks import StockSource, parse_day, render
from dotjoin.simulate.sources.transit import TransitSource
from dotjoin.simulate.sources.weather import (
    HOURS_PER_PAGE,
    VARIABLES,
    WeatherSource,
    build_response,
    faulty_page_order,
    parse_dates,
)

logger = logging.getLogger(__name__)


@dataclass
class FaultConfig:
    """What goes wrong, and how often. All zero: a perfect upstream."""

    fail_rate: float = 0.0
    rate_limit: float = 0.0
    retry_after_s: int = 1
    latency_s: float = 0.0
    dup_rate: float = 0.0
    shuffle: bool = False
    truncate_rate: float = 0.0
    fail_first: int = 0  # the first N non-health requests answer 503, whatever the seed
    seed: int = 1


#: What ``dotjoin demo`` switches on: 10% 5xx, 429 bursts, duplicated and out-of-order pages, a few
#: truncated bodies.
DEMO_FAULTS = FaultConfig(fail_rate=0.1, rate_limit=100, dup_rate=0.2, shuffle=True, truncate_rate=0.02)


@dataclass
class SourceState:
    """Everything the app serves; tests mutate ``weather.overrides`` to simulate upstream corrections."""

    weather: WeatherSource = field(default_factory=WeatherSource)
    transit: TransitSource = field(default_factory=TransitSource)
    stocks: StockSource = field(default_factory=StockSource)
    faults: FaultConfig = field(default_factory=FaultConfig)
    requests: int = 0
    injected: dict[str, int] = field(default_factory=dict)


class _Faults:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - fault injection, not crypto
        self.lock = threading.Lock()
        self.tokens = max(config.rate_limit, 1.0)
        self.stamp = time.monotonic()

    def draw(self) -> float:
        with self.lock:
            return self.rng.random()

    def page_order(self, n: int) -> list[int]:
        with self.lock:
            return faulty_page_order(n, self.rng, dup_rate=self.config.dup_rate, shuffle=self.config.shuffle)

    def over_limit(self) -> bool:
        rate = self.config.rate_limit
        if rate <= 0:
            return False
        with self.lock:
            now = time.monotonic()
            self.tokens = min(rate, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return False
            return True


def _error(reason: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": True, "reason": reason}, status_code=status)


def create_app(state: SourceState | None = None) -> FastAPI:
    """The FastAPI app serving ``state`` (a fresh default state if None)."""
    state = state or SourceState()
    faults = _Faults(state.faults)
    app = FastAPI(title="dotjoin local sources", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sources = state

    def count(kind: str) -> None:
        state.injected[kind] = state.injected.get(kind, 0) + 1

    @app.middleware("http")
    async def inject(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path == "/health":
            return await call_next(request)
        state.requests += 1
        cfg = state.faults
        if state.requests <= cfg.fail_first:  # the middleware runs on the event loop: no race
            count("fail_first")
            return _error(f"injected failure ({state.requests} of the first {cfg.fail_first})", 503)
        if cfg.latency_s:
            await asyncio.sleep(cfg.latency_s)
        if faults.over_limit():
            count("429")
            return JSONResponse(
                {"error": True, "reason": "Too many requests"},
                status_code=429,
                headers={"Retry-After": str(cfg.retry_after_s)},
            )
        if cfg.fail_rate and faults.draw() < cfg.fail_rate:
            status = 503 if faults.draw() < 0.5 else 500
            count(str(status))
            return _error("injected failure", status)
        return await call_next(request)

    def finish(body: bytes, media_type: str, *, binary: bool) -> Response:
        if state.faults.truncate_rate and faults.draw() < state.faults.truncate_rate:
            count("truncated")
            cut = body[: max(1, len(body) // 2)]
            if binary:  # declare the full length, send half: the client sees the connection drop
                return Response(cut, media_type=media_type, headers={"content-length": str(len(body))})
            return Response(cut, media_type=media_type)
        return Response(body, media_type=media_type)

    def weather(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            lats = [float(x) for x in params["latitude"].split(",")]
            lons = [float(x) for x in params["longitude"].split(",")]
            start, end = parse_dates(params, datetime.now(UTC).date())
        except KeyError as exc:
            return _error(f"Parameter {exc.args[0]} is required")
        except ValueError as exc:
            return _error(f"Invalid parameter: {exc}")
        if len(lats) != len(lons):
            return _error("Parameter 'latitude' and 'longitude' must have the same number of elements")
        if params.get("timezone", "GMT").upper() not in ("GMT", "UTC"):
            return _error("Only timezone=GMT/UTC is served locally")
        variables = [v for v in params.get("hourly", ",".join(VARIABLES)).split(",") if v]
        unknown = [v for v in variables if v not in VARIABLES]
        if unknown:
            return _error(f"Cannot initialize WeatherVariable from invalid String value {unknown[0]}")
        n_pages = ((end - start).days + 1) * 24 // HOURS_PER_PAGE
        docs = [
            build_response(
                state.weather,
                latitude=lat,
                longitude=lon,
                start=start,
                end=end,
                variables=variables,
                unixtime=params.get("timeformat") == "unixtime",
                page_order=faults.page_order(n_pages),
            )
            for lat, lon in zip(lats, lons, strict=True)
        ]
        payload = docs[0] if len(docs) == 1 else docs
        return finish(json.dumps(payload, separators=(",", ":")).encode(), "application/json", binary=False)

    app.get("/v1/forecast")(weather)
    app.get("/v1/archive")(weather)

    @app.get("/gtfs/static.zip")
    def gtfs_static() -> Response:
        return finish(state.transit.static_zip(), "application/zip", binary=True)

    @app.get("/gtfs-rt/trip-updates")
    def gtfs_rt(request: Request) -> Response:
        raw = request.query_params.get("date")
        try:
            day = date.fromisoformat(raw) if raw else datetime.now(UTC).date()
        except ValueError:
            return _error(f"Invalid date {raw!r}")
        order = faults.page_order(state.transit.trip_count())
        return finish(
            state.transit.trip_updates(day, entity_order=order), "application/x-protobuf", binary=True
        )

    @app.get("/q/d/l/")
    def stooq(request: Request) -> Response:
        params = request.query_params
        if params.get("i", "d") != "d":
            return _error("Only daily quotes (i=d) are served locally")
        try:
            d1 = parse_day(params["d1"]) if "d1" in params else state.stocks.start
            d2 = parse_day(params["d2"]) if "d2" in params else datetime.now(UTC).date()
        except ValueError as exc:
            return _error(f"Invalid parameter: {exc}")
        lines = state.stocks.lines(params.get("s", "").strip(), d1, d2)
        body = render(lines, faults.page_order(len(lines)))
        return finish(body, "text/csv", binary=True)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"ok": True, "requests": state.requests, "injected": state.injected}

    return app


def serve(
    state: SourceState, *, host: str = "127.0.0.1", port: int = 8765, log_level: str = "warning"
) -> None:
    """Serve until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(create_app(state), host=host, port=port, log_level=log_level, access_log=False)


@contextmanager
def running(state: SourceState | None = None, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``state`` on a free port in a background thread; yields the base URL (tests, benchmarks)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(state), host=host, port=0, log_level="critical", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dotjoin-sources", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and server.servers):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local source server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
