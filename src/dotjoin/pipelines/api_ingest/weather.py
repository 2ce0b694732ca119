"""Weather ingestion: Open-Meteo hourly data per city -> ``cities`` + ``weather_hourly``.

Per city, windows of days are fetched in order (cities concurrently, bounded by the client); a writer
commits batches of windows in one transaction each, together with each city's cursor, so a crash at
any point leaves the cursor describing exactly the data that is committed. A re-run resumes after the
cursor; re-fetching committed days writes nothing unless upstream changed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dotjoin.config import Settings
from dotjoin.exceptions import DotjoinError
from dotjoin.pipelines.api_ingest import store
from dotjoin.pipelines.api_ingest.common import (
    AllRequestsFailedError,
    City,
    Progress,
    check_base_url,
    check_not_future,
    client,
    endpoints,
    load_cities,
    plan_days,
    windows,
)
from dotjoin.pipelines.api_ingest.openmeteo import (
    VARIABLES,
    WeatherDoc,
    WeatherFormatError,
    normalise,
    parse_json,
)
from dotjoin.platform.http import BodyError, FailedRequest, Response
from dotjoin.platform.quality.checks import check_table
from dotjoin.platform.quality.quarantine import Quarantine
from dotjoin.platform.runs import Run, RunReport, start_run
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)
CONTRACTS = Path(__file__).with_name("contracts")  # the written tables' contracts: their checks

PIPELINE = "ingest_weather"
SOURCE = "weather"
FLUSH_ROWS = 50_000  # commit a batch at this many rows...
FLUSH_SECONDS = 0.5  # ...or when its oldest window has waited this long (bounds work lost to a crash)
ARCHIVE_LAG_DAYS = 5  # the archive API trails real time by a few days; newer days come from forecast


@dataclass
class _Fetched:
    city: City
    start: date
    end: date
    doc: WeatherDoc


@dataclass
class _Totals:
    input: int = 0
    output: int = 0
    duplicates: int = 0
    quarantined: int = 0
    inserted: int = 0
    updated: int = 0
    windows: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    requests_failed: int = 0
    first_error: str | None = None


def _parse(response: Response) -> WeatherDoc:
    try:
        docs = parse_json(response.content)
    except WeatherFormatError as exc:
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        if not response.content:
            raise BodyError("an empty body, not Open-Meteo JSON") from exc
        if kind and "json" not in kind:
            raise BodyError(f"a {kind} answer, not Open-Meteo JSON") from exc
        raise BodyError(str(exc)) from exc
    if len(docs) != 1:
        raise BodyError(f"expected one location, got {len(docs)}")
    return docs[0]


def _hours(start: date, end: date) -> list[datetime]:
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return [first + timedelta(hours=h) for h in range(((end - start).days + 1) * 24)]


class _Writer:
    """Commits fetched windows: data + cursor + errors + quarantine, one transaction per batch."""

    def __init__(self, wh: Warehouse, run: Run, failures: list[FailedRequest], state: dict[str, Any]) -> None:
        self.wh, self.run, self.failures, self.state = wh, run, failures, state
        self.quarantine = Quarantine(PIPELINE, run.run_id)
        self.totals = _Totals()
        self.incomplete: list[str] = []
        self.last_complete = datetime.now(UTC).date() - timedelta(days=1)

    def flush(self, batch: list[_Fetched]) -> None:
        rows: list[dict[str, Any]] = []
        cursors: dict[str, tuple[date, date]] = {}
        t = self.totals
        for item in batch:
            wanted = _hours(item.start, item.end)
            hourly = normalise(item.doc, item.city.name, keep=wanted)
            t.input += hourly.total
            t.duplicates += hourly.duplicates
            t.quarantined += hourly.quarantined
            t.output += len(hourly.rows)
            for hour, versions in hourly.conflicts.items():
                for n, version in enumerate(versions):
                    self.quarantine.reject(
                        source=f"{SOURCE}:{item.city.name}",
                        position=f"{hour.isoformat()}#{n}",
                        reason="conflicting_duplicate_hour",
                        detail=f"{len(versions)} different values for one hour",
                        raw=repr({k: version[k] for k in VARIABLES}),
                    )
            rows.extend(hourly.rows)
            if len(hourly.rows) != len(wanted):
                self.incomplete.append(f"{item.city.name} {item.start}..{item.end}")
                continue  # the cursor never covers a window with missing hours
            end = min(item.end, self.last_complete)  # today is not over: the cursor never claims it
            current = cursors.get(item.city.name, self.state.get(item.city.name))
            extended = store.extend(current, item.start, end) if item.start <= end else None
            if extended is not None:
                cursors[item.city.name] = extended
        if rows:
            data = store.with_hashes(store.WEATHER_HOURLY, rows)
            lo, hi = min(r["hour"] for r in rows), max(r["hour"] for r in rows)
            cities = sorted({r["city"] for r in rows})
            membership = "list_contains($3, city)" if self.wh.dialect == "duckdb" else "city = ANY($3)"
            now = datetime.now(UTC)
            with self.wh.transaction():
                result = store.upsert_hashed(
                    self.wh,
                    store.WEATHER_HOURLY,
                    data,
                    scope_sql=f"hour >= $1 AND hour <= $2 AND {membership}",
                    scope_params=[lo, hi, cities],
                    now=now,
                )
                for city, interval in cursors.items():
                    store.write_state(self.wh, SOURCE, city, interval, now)
                self._flush_side_tables()
            self.state.update(cursors)
            t.inserted += result.inserted
            t.updated += result.updated
        t.windows += len(batch)

    def _flush_side_tables(self) -> None:
        n = len(self.failures)  # the event loop may append meanwhile: take exactly the first n
        taken = self.failures[:n]
        del self.failures[:n]
        store.write_errors(self.wh, taken, self.run.run_id)
        self.quarantine.flush(self.wh)
        self.quarantine.records.clear()


async def _ingest(
    plan: list[tuple[City, list[tuple[date, date]]]],
    settings: Settings,
    writer: _Writer,
    base_url: str | None,
    progress: Progress | None,
) -> None:
    urls = endpoints(settings.ingest, base_url)
    archive_before = datetime.now(UTC).date() - timedelta(days=ARCHIVE_LAG_DAYS)
    queue: asyncio.Queue[_Fetched] = asyncio.Queue(maxsize=max(4, settings.ingest.concurrency * 4))
    total = sum(len(w) for _, w in plan)

    async with client(settings.ingest, SOURCE, writer.failures) as http:

        async def city_worker(city: City, todo: list[tuple[date, date]]) -> None:
            for start, end in todo:
                params = {
                    "latitude": city.latitude,
                    "longitude": city.longitude,
                    "hourly": ",".join(VARIABLES),
                    "start_date": start.isoformat(),
                    "end_date": end.isoformat(),
                    "timezone": "GMT",
                }
                url = urls.archive if end < archive_before else urls.forecast
                try:
                    doc = await http.get(url, params=params, parse=_parse)
                except DotjoinError as exc:  # this city stops here; its cursor stays before the gap
                    writer.totals.failed[city.name] = str(exc)
                    logger.debug("weather: giving up on %s at %s: %s", city.name, start, exc)
                    return
                await queue.put(_Fetched(city, start, end, doc))

        producers = [asyncio.create_task(city_worker(c, w)) for c, w in plan if w]
        try:
            await _drain(queue, producers, writer, total, progress)
        finally:
            # However the loop ended, no worker outlives the client: cancel, then collect every outcome.
            for p in producers:
                p.cancel()
            outcomes = await asyncio.gather(*producers, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome  # a bug in a worker, never swallowed
        t = writer.totals
        t.requests, t.requests_failed, t.first_error = http.requests, http.requests_failed, http.first_error
        writer.run.metric("http_attempts", http.attempts)


async def _drain(
    queue: asyncio.Queue[_Fetched],
    producers: list[asyncio.Task[None]],
    writer: _Writer,
    total: int,
    progress: Progress | None,
) -> None:
    """Commit what the workers fetch, in batches, until every worker is done and the queue is empty."""
    pending: list[_Fetched] = []
    rows, oldest = 0, 0.0
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), timeout=0.2)
            if not pending:
                oldest = time.monotonic()
            pending.append(item)
            rows += len(item.doc.hours)
            young = time.monotonic() - oldest < FLUSH_SECONDS
            if rows < FLUSH_ROWS and young and not all(p.done() for p in producers):
                continue
        except TimeoutError:
            if not pending:
                if all(p.done() for p in producers) and queue.empty():
                    break
                continue
        await asyncio.to_thread(writer.flush, pending)
        pending, rows = [], 0
        if progress:
            progress(writer.totals.windows, total, "weather windows")


def run(
    settings: Settings,
    *,
    since: date | None = None,
    until: date | None = None,
    base_url: str | None = None,
    cities_file: Path | None = None,
    cities: list[City] | None = None,
    refetch: bool = False,
    report_path: Path | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Ingest hourly weather for ``since..until`` (or, with no dates, the days after each cursor).

    A single explicit day (``since == until``) is always fetched; in a range, days the cursor marks
    complete are skipped unless ``refetch``.

    Raises:
        ConfigError: a base URL that can never work, a day after today (UTC), a bad cities file.
        AllRequestsFailedError: every request failed (the run report is kept, failed).
    """
    check_base_url(settings.ingest, base_url)
    check_not_future(since, until)
    cities = cities if cities is not None else load_cities(settings, cities_file)
    refetch = refetch or (since is not None and since == until)
    params = {"since": str(since), "until": str(until), "cities": len(cities), "refetch": refetch}
    with (
        start_run(PIPELINE, settings, params=params, report_path=report_path) as run,
        open_warehouse(settings) as wh,
    ):
        store.ensure_tables(wh, [store.CITIES, store.WEATHER_HOURLY])
        city_rows = [{"city": c.name, "latitude": c.latitude, "longitude": c.longitude} for c in cities]
        store.upsert_hashed(
            wh, store.CITIES, store.with_hashes(store.CITIES, city_rows), scope_sql="TRUE", scope_params=[]
        )
        state: dict[str, Any] = store.load_state(wh, SOURCE)
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        plan = []
        for city in cities:
            todo = plan_days(
                since=since, until=until, state=state.get(city.name), yesterday=yesterday, refetch=refetch
            )
            plan.append((city, windows(todo, settings.ingest.window_days)))
        failures: list[FailedRequest] = []
        writer = _Writer(wh, run, failures, state)
        t0 = time.perf_counter()
        asyncio.run(_ingest(plan, settings, writer, base_url, progress))
        with wh.transaction():
            writer._flush_side_tables()
        elapsed = time.perf_counter() - t0
        t = writer.totals
        run.count(input=t.input, output=t.output, duplicates=t.duplicates, quarantined=t.quarantined)
        run.output(store.WEATHER_HOURLY.name, rows=t.inserted + t.updated, dataset="table:weather_hourly")
        urls = endpoints(settings.ingest, base_url)
        run.input(f"api:{urls.forecast}")
        run.input(f"api:{urls.archive}")
        for name, value in {
            "rows_inserted": t.inserted,
            "rows_updated": t.updated,
            "rows_unchanged": t.output - t.inserted - t.updated,
            "windows": t.windows,
            "failed_requests": int(
                wh.scalar(f"SELECT count(*) FROM {store.ERRORS_TABLE} WHERE run_id = $1", [run.run_id]) or 0
            ),
            "rows_per_s": t.input / max(elapsed, 1e-9),
        }.items():
            run.metric(name, value)
        if t.requests and t.requests_failed == t.requests:  # nothing fetched: checks would say no more
            # The query strings are in ingest_errors; the line names the endpoint.
            first = re.sub(r"(https?://[^\s?]*)\?\S*", r"\1", t.first_error or "")
            which = "the only request" if t.requests == 1 else f"all {t.requests} requests"
            raise AllRequestsFailedError(
                f"ingest weather: {which} failed; first error: {first} (see ingest_errors)"
            )
        run.check_accounting()
        run.check(
            "all_cities_fetched",
            passed=not t.failed,
            observed=len(t.failed),
            expected=0,
            detail="; ".join(f"{c}: {e}" for c, e in t.failed.items())[:1000] or None,
            dataset=store.WEATHER_HOURLY.name,
        )
        _check_contiguous(run, wh, plan, writer.incomplete)
        check_table(run, wh, CONTRACTS / "weather_hourly.yaml")
        if t.failed:
            names = ", ".join(sorted(t.failed)[:5]) + (", ..." if len(t.failed) > 5 else "")
            logger.warning("weather: gave up on %d of %d cities (%s); see ingest_errors", len(t.failed),
                           len(cities), names)  # fmt: skip
    return run.report


def _check_contiguous(
    run: Run, wh: Warehouse, plan: list[tuple[City, list[tuple[date, date]]]], incomplete: list[str]
) -> None:
    """Every requested city-day has its 24 hours in the table (the key makes each hour unique)."""
    expected = observed = 0
    for city, ws in plan:
        if not ws:
            continue
        wanted = {h for start, end in ws for h in _hours(start, end)}
        lo, hi = min(wanted), max(wanted)
        stored = wh.query(
            "SELECT hour FROM weather_hourly WHERE city = $1 AND hour >= $2 AND hour <= $3",
            [city.name, lo, hi],
        )
        present = {h.astimezone(UTC) for h in stored.column("hour").to_pylist()}
        expected += len(wanted)
        observed += len(wanted & present)
    run.check(
        "hours_contiguous_per_city",
        dataset=store.WEATHER_HOURLY.name,
        passed=observed == expected and not incomplete,
        observed=observed,
        expected=expected,
        detail=("incomplete windows: " + ", ".join(incomplete[:10])) if incomplete else None,
    )
