"""API ingestion on the real PostgreSQL of the stack: the acceptance criteria of tests/e2e/test_api_ingest.py.

Tests share the database with other runs, so each one uses its own city names and feed name and
compares only its own rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.api_ingest import store, transit, weather
from dotjoin.pipelines.api_ingest.common import City
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.sources.app import FaultConfig, SourceState, running

pytestmark = pytest.mark.postgres

FAULTS = FaultConfig(fail_rate=0.1, rate_limit=8, dup_rate=0.3, shuffle=True, truncate_rate=0.05, seed=7)


def _settings(base: Settings, feed: str, window_days: int = 31) -> Settings:
    ingest = base.ingest.model_copy(
        update={"feed": feed, "rate_limit_per_s": 0.0, "max_attempts": 10, "window_days": window_days}
    )
    return base.model_copy(update={"ingest": ingest})


def _weather_sum(settings: Settings, cities: list[City], *, audit_times: bool = True) -> str:
    with open_warehouse(settings) as wh:
        return store.table_checksum(
            wh,
            store.WEATHER_HOURLY,
            where="city = ANY($1)",
            params=[[c.name for c in cities]],
            audit_times=audit_times,
        )


def _arrivals_sum(settings: Settings, *, audit_times: bool = True) -> str:
    with open_warehouse(settings) as wh:
        return store.table_checksum(
            wh, store.ARRIVALS, where="feed = $1", params=[settings.ingest.feed], audit_times=audit_times
        )


def test_weather_idempotent_fault_tolerant_and_row_precise_on_postgres(
    postgres: Settings, unique_name: str
) -> None:
    cities = [City(f"{unique_name}-a", 48.1, 11.6), City(f"{unique_name}-b", -1.3, 36.8)]
    clean_cities = [City(f"{unique_name}-clean-{c.name[-1]}", c.latitude, c.longitude) for c in cities]
    settings = _settings(postgres, unique_name, window_days=1)
    span = {"since": date(2024, 4, 1), "until": date(2024, 4, 6)}
    state = SourceState(faults=FAULTS)
    with running(state) as url:
        faulty = weather.run(settings, base_url=url, cities=cities, **span)
    assert faulty.status == "succeeded", faulty.checks
    assert state.injected.get("429", 0) > 0
    clean_state = SourceState()
    with running(clean_state) as url:
        clean = weather.run(settings, base_url=url, cities=clean_cities, **span)
        assert clean.status == "succeeded", clean.checks
        # same day twice: nothing written, bytes identical
        before = _weather_sum(settings, clean_cities)
        again = weather.run(
            settings, base_url=url, cities=clean_cities, since=date(2024, 4, 3), until=date(2024, 4, 3)
        )
        assert (again.metrics["rows_inserted"], again.metrics["rows_updated"]) == (0, 0)
        assert _weather_sum(settings, clean_cities) == before
        # a changed upstream value: one row updated
        hour = datetime(2024, 4, 3, 5, tzinfo=UTC)
        c = clean_cities[0]
        clean_state.weather.overrides[(c.latitude, c.longitude, int(hour.timestamp()) // 3600)] = {
            "precipitation": 42.0
        }
        changed = weather.run(
            settings, base_url=url, cities=clean_cities, since=date(2024, 4, 3), until=date(2024, 4, 3)
        )
    assert (changed.metrics["rows_inserted"], changed.metrics["rows_updated"]) == (0, 1)
    with open_warehouse(settings) as wh:
        rows = wh.query(
            "SELECT city, hour, precipitation, ingested_at, updated_at FROM weather_hourly "
            "WHERE city = ANY($1) AND updated_at > ingested_at",
            [[x.name for x in clean_cities]],
        ).to_pylist()
        # faulty and clean runs of the same coordinates hold the same values
        pairs = wh.query(
            "SELECT count(*) AS n FROM weather_hourly f JOIN weather_hourly c ON f.hour = c.hour "
            "AND f.content_hash = c.content_hash AND c.city = $2 WHERE f.city = $1",
            [cities[0].name, clean_cities[0].name],
        ).to_pylist()[0]["n"]
    assert [(r["city"], r["hour"].astimezone(UTC), r["precipitation"]) for r in rows] == [
        (c.name, hour, 42.0)
    ]
    assert pairs == 6 * 24 - 1  # every hour equals the fault-free run's, except the one changed after it


def test_transit_on_postgres_with_faults_equals_clean(postgres: Settings, unique_name: str) -> None:
    clean, faulty = _settings(postgres, f"{unique_name}c"), _settings(postgres, f"{unique_name}f")
    span = {"since": date(2024, 4, 1), "until": date(2024, 4, 3)}
    with running(SourceState()) as url:
        first = transit.run(clean, base_url=url, **span)
        assert first.status == "succeeded", first.checks
        before = _arrivals_sum(clean)
        again = transit.run(clean, base_url=url, refetch=True, **span)
    assert (again.metrics["rows_inserted"], again.metrics["rows_updated"]) == (0, 0)
    assert _arrivals_sum(clean) == before
    with running(SourceState(faults=FAULTS)) as url:
        report = transit.run(faulty, base_url=url, **span)
    assert report.status == "succeeded", report.checks
    with open_warehouse(faulty) as wh:
        rows = {
            feed: wh.query(
                "SELECT trip_id, stop_id, service_date, content_hash FROM arrivals WHERE feed = $1 "
                "ORDER BY 1, 2, 3",
                [feed],
            ).to_pylist()
            for feed in (clean.ingest.feed, faulty.ingest.feed)
        }
    assert rows[clean.ingest.feed] == rows[faulty.ingest.feed] and len(rows[clean.ingest.feed]) == 3 * 192
