"""Transit ingestion: a GTFS static feed -> ``stops``, ``routes``, ``trips``, ``stop_times``; GTFS-realtime
TripUpdates per service date -> ``arrivals`` keyed by (feed, trip, stop, service date).

The static feed is validated (:mod:`.gtfs`): rejected rows are quarantined with their reason. Arrivals
that name a trip or stop the static feed does not know are quarantined too, so the integrity checks
(every arrival references a known trip and stop; stop sequences increase) hold on what is loaded.
Each service date's arrivals commit with the feed's cursor in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dotjoin.config import Settings
from dotjoin.pipelines.api_ingest import store
from dotjoin.pipelines.api_ingest.common import (
    Progress,
    check_base_url,
    check_not_future,
    client,
    endpoints,
    gather_or_cancel,
    plan_days,
)
from dotjoin.pipelines.api_ingest.gtfs import GtfsFeed, parse_time, read_feed
from dotjoin.pipelines.api_ingest.gtfs_rt import RealtimeParse, parse_trip_updates
from dotjoin.platform.http import BodyError, FailedRequest, Response
from dotjoin.platform.quality.quarantine import Quarantine
from dotjoin.platform.runs import Run, RunReport, start_run
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

PIPELINE = "ingest_transit"
SOURCE = "transit"
STATIC_TABLES = (store.STOPS, store.ROUTES, store.TRIPS, store.STOP_TIMES)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text != "" and str(text).lstrip("-").isdigit() else None


def static_rows(feed: GtfsFeed, name: str) -> dict[str, list[dict[str, Any]]]:
    """The validated feed as rows of the normalized static tables (pure)."""
    t = feed.tables
    return {
        "stops": [
            {
                "feed": name,
                "stop_id": s["stop_id"],
                "stop_name": s.get("stop_name") or None,
                "stop_lat": float(s["stop_lat"]) if s["stop_lat"] else None,
                "stop_lon": float(s["stop_lon"]) if s["stop_lon"] else None,
                "location_type": _int(s.get("location_type")) or 0,
                "parent_station": s.get("parent_station") or None,
            }
            for s in t["stops"]
        ],
        "routes": [
            {
                "feed": name,
                "route_id": r["route_id"],
                "agency_id": r.get("agency_id") or None,
                "route_short_name": r.get("route_short_name") or None,
                "route_long_name": r.get("route_long_name") or None,
                "route_type": _int(r["route_type"]),
            }
            for r in t["routes"]
        ],
        "trips": [
            {
                "feed": name,
                "trip_id": tr["trip_id"],
                "route_id": tr["route_id"],
                "service_id": tr["service_id"],
                "trip_headsign": tr.get("trip_headsign") or None,
                "direction_id": _int(tr.get("direction_id")),
            }
            for tr in t["trips"]
        ],
        "stop_times": [
            {
                "feed": name,
                "trip_id": st["trip_id"],
                "stop_sequence": int(st["stop_sequence"]),
                "stop_id": st["stop_id"],
                "arrival_s": parse_time(st["arrival_time"]) if st["arrival_time"] else None,
                "departure_s": parse_time(st["departure_time"]) if st["departure_time"] else None,
            }
            for st in t["stop_times"]
        ],
    }


def _parse_zip(response: Response) -> bytes:
    if not response.content.startswith(b"PK"):
        raise BodyError("the GTFS static answer is not a zip file")
    return response.content


def _parse_rt(response: Response) -> bytes:
    return response.content


async def _fetch(
    settings: Settings, base_url: str | None, service_days: list[date], failures: list[FailedRequest]
) -> tuple[bytes, dict[date, bytes]]:
    urls = endpoints(settings.ingest, base_url)
    async with client(settings.ingest, SOURCE, failures) as http:
        static = await http.get(urls.gtfs_static, parse=_parse_zip)
        answers = await gather_or_cancel(
            *(http.get(urls.gtfs_rt, params={"date": d.isoformat()}, parse=_parse_rt) for d in service_days)
        )
    return static, dict(zip(service_days, answers, strict=True))


def run(
    settings: Settings,
    *,
    since: date | None = None,
    until: date | None = None,
    base_url: str | None = None,
    refetch: bool = False,
    report_path: Path | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Ingest the static feed, then the TripUpdates of each service date in ``since..until``.

    Raises:
        ConfigError: a base URL that can never work, or a day after today (UTC).
    """
    check_base_url(settings.ingest, base_url)
    check_not_future(since, until)
    feed_name = settings.ingest.feed
    refetch = refetch or (since is not None and since == until)
    params = {"since": str(since), "until": str(until), "feed": feed_name, "refetch": refetch}
    with (
        start_run(PIPELINE, settings, params=params, report_path=report_path) as run,
        open_warehouse(settings) as wh,
    ):
        store.ensure_tables(wh, [*STATIC_TABLES, store.ARRIVALS])
        state = store.load_state(wh, SOURCE).get(feed_name)
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        todo = plan_days(since=since, until=until, state=state, yesterday=yesterday, refetch=refetch)
        failures: list[FailedRequest] = []
        quarantine = Quarantine(PIPELINE, run.run_id)
        t0 = time.perf_counter()
        try:
            static, realtime = asyncio.run(_fetch(settings, base_url, todo, failures))
        finally:
            with wh.transaction():
                store.write_errors(wh, failures, run.run_id)
            failures.clear()
        feed = read_feed(static)
        for issue in feed.rejected:
            quarantine.reject(
                source=f"{SOURCE}:{feed_name}:{issue.file}",
                position=issue.line,
                reason=issue.reason,
                detail=issue.detail,
                raw=issue.raw,
            )
        warned: dict[str, int] = {}
        for warning in feed.warnings:
            warned[warning.reason] = warned.get(warning.reason, 0) + 1
            logger.debug("GTFS %s: %s %s", warning.file, warning.reason, warning.detail)
        if warned:
            logger.info("GTFS feed %s warnings: %s", feed_name, warned)
            run.metric("gtfs_warnings", sum(warned.values()))
        static_input = sum(len(v) for v in feed.tables.values()) + len(feed.rejected)
        inserted = updated = 0
        tables = static_rows(feed, feed_name)
        now = datetime.now(UTC)
        with wh.transaction():
            for spec in STATIC_TABLES:
                result = store.upsert_hashed(
                    wh,
                    spec,
                    store.with_hashes(spec, tables[spec.name]),
                    scope_sql="feed = $1",
                    scope_params=[feed_name],
                    now=now,
                )
                inserted, updated = inserted + result.inserted, updated + result.updated
            quarantine.flush(wh)
        quarantine.records.clear()
        run.count(static_rows=static_input, static_quarantined=len(feed.rejected))
        trip_ids = {t["trip_id"] for t in tables["trips"]}
        stop_ids = {s["stop_id"] for s in tables["stops"]}
        stop_of = {(st["trip_id"], st["stop_sequence"]): st["stop_id"] for st in tables["stop_times"]}
        for n, day in enumerate(sorted(realtime), start=1):
            parsed = parse_trip_updates(realtime[day], feed=feed_name, default_date=day, stop_of=stop_of)
            ins, upd = _load_day(wh, run, quarantine, parsed, day, feed_name, trip_ids, stop_ids, state)
            state = store.extend(state, day, day) or state
            inserted, updated = inserted + ins, updated + upd
            if progress:
                progress(n, len(realtime), "service days")
        run.metric("rows_inserted", inserted)
        run.metric("rows_updated", updated)
        run.metric("service_days", len(realtime))
        run.metric(
            "failed_requests",
            int(wh.scalar(f"SELECT count(*) FROM {store.ERRORS_TABLE} WHERE run_id = $1", [run.run_id]) or 0),
        )
        run.metric(
            "rows_per_s",
            (run.report.counts.get("input", 0) + static_input) / max(time.perf_counter() - t0, 1e-9),
        )
        run.check_accounting()
        urls = endpoints(settings.ingest, base_url)
        run.input(f"api:{urls.gtfs_static}")
        run.input(f"api:{urls.gtfs_rt}")
        for spec in STATIC_TABLES:
            run.output(spec.name, rows=len(tables[spec.name]), dataset=f"table:{spec.name}")
        run.output(store.ARRIVALS.name, rows=run.report.counts.get("output", 0), dataset="table:arrivals")
        _integrity_checks(run, wh, feed_name)
    return run.report


def _load_day(
    wh: Warehouse,
    run: Run,
    quarantine: Quarantine,
    parsed: RealtimeParse,
    day: date,
    feed_name: str,
    trip_ids: set[str],
    stop_ids: set[str],
    state: tuple[date, date] | None,
) -> tuple[int, int]:
    """Load one service date's arrivals and move the cursor, in one transaction."""
    source = f"{SOURCE}:{feed_name}:trip-updates:{day}"
    keep = []
    for row in parsed.arrivals:
        reason = None if row["trip_id"] in trip_ids else "unknown_trip"
        reason = reason or (None if row["stop_id"] in stop_ids else "unknown_stop")
        if reason:
            quarantine.reject(
                source=source, position=f"{row['trip_id']}/{row['stop_id']}", reason=reason, raw=repr(row)
            )
        else:
            keep.append(row)
    for row, why in parsed.conflicts:
        quarantine.reject(
            source=source,
            position=f"{row['trip_id']}/{row['stop_id']}#c",
            reason="conflicting_update",
            detail=why,
            raw=repr(row),
        )
    for reason, detail in parsed.rejected:
        quarantine.reject(source=source, position=detail, reason=reason, detail=detail)
    bad = parsed.updates - len(parsed.arrivals) - parsed.duplicates
    run.count(
        input=parsed.updates,
        output=len(keep),
        duplicates=parsed.duplicates,
        quarantined=len(parsed.arrivals) - len(keep) + bad,
    )
    dates = sorted({r["service_date"] for r in keep}) or [day]
    now = datetime.now(UTC)
    with wh.transaction():
        result = store.upsert_hashed(
            wh,
            store.ARRIVALS,
            store.with_hashes(store.ARRIVALS, keep),
            scope_sql="feed = $1 AND service_date >= $2 AND service_date <= $3",
            scope_params=[feed_name, dates[0], dates[-1]],
            now=now,
        )
        extended = store.extend(state, day, day)
        if extended is not None:
            store.write_state(wh, SOURCE, feed_name, extended, now)
        quarantine.flush(wh)
    quarantine.records.clear()
    return result.inserted, result.updated


def _integrity_checks(run: Run, wh: Warehouse, feed: str) -> None:
    orphans = wh.scalar(
        "SELECT count(*) FROM arrivals a WHERE a.feed = $1 AND (NOT EXISTS "
        "(SELECT 1 FROM trips t WHERE t.feed = a.feed AND t.trip_id = a.trip_id) OR NOT EXISTS "
        "(SELECT 1 FROM stops s WHERE s.feed = a.feed AND s.stop_id = a.stop_id))",
        [feed],
    )
    run.check("arrivals_reference_known_trip_and_stop", passed=orphans == 0, observed=orphans, expected=0,
              dataset="arrivals", failed_rows=int(orphans or 0))  # fmt: skip
    backwards = wh.scalar(
        "SELECT count(*) FROM (SELECT stop_sequence, arrival_s, "
        "lag(stop_sequence) OVER w AS prev_seq, lag(arrival_s) OVER w AS prev_s FROM stop_times "
        "WHERE feed = $1 WINDOW w AS (PARTITION BY trip_id ORDER BY stop_sequence)) x "
        "WHERE stop_sequence <= prev_seq OR arrival_s < prev_s",
        [feed],
    )
    run.check("stop_sequences_increase", passed=backwards == 0, observed=backwards, expected=0,
              dataset="stop_times", failed_rows=int(backwards or 0))  # fmt: skip
