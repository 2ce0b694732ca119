"""API ingestion end to end against the local source server: idempotent, fault-tolerant, resumable.

The same assertions run on DuckDB here and on PostgreSQL in tests/integration/test_api_ingest_postgres.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.api_ingest import store, transit, weather
from dotjoin.pipelines.api_ingest.common import City
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.sources.app import FaultConfig, SourceState, running

CITIES = [City("Berlin", 52.52, 13.41), City("Lima", -12.05, -77.04), City("Oslo", 59.91, 10.75)]
#: 10% 5xx, 429 bursts (rate limit), duplicated and out-of-order pages, truncated bodies.
FAULTS = FaultConfig(fail_rate=0.1, rate_limit=8, dup_rate=0.3, shuffle=True, truncate_rate=0.05, seed=7)
FAST_RETRY_ENV = {"DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0", "DOTJOIN__INGEST__MAX_ATTEMPTS": "10"}


def _settings(root: Path, **env: str) -> Settings:
    return load_settings(profile="local", cwd=root, env={**FAST_RETRY_ENV, **env})


def _checksums(settings: Settings, *, audit_times: bool = True) -> dict[str, str]:
    with open_warehouse(settings) as wh:
        return {
            spec.name: store.table_checksum(wh, spec, audit_times=audit_times)
            for spec in store.ALL_TABLES
            if wh.table_exists(spec.name)
        }


def _ok(report: object) -> None:
    assert report.status == "succeeded", [c for c in report.checks if not c.passed]  # type: ignore[attr-defined]


def test_same_day_twice_writes_nothing_and_tables_stay_byte_identical(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with running(SourceState()) as url:
        first = weather.run(
            settings, since=date(2024, 3, 1), until=date(2024, 3, 1), base_url=url, cities=CITIES
        )
        _ok(first)
        assert first.metrics["rows_inserted"] == 3 * 24
        before = _checksums(settings)
        second = weather.run(
            settings, since=date(2024, 3, 1), until=date(2024, 3, 1), base_url=url, cities=CITIES
        )
    _ok(second)
    assert second.counts["output"] == 3 * 24  # fetched and compared again...
    assert (second.metrics["rows_inserted"], second.metrics["rows_updated"]) == (0, 0)  # ...nothing written
    assert _checksums(settings) == before


def test_with_faults_the_tables_equal_a_fault_free_run(tmp_path: Path) -> None:
    one_day = {"DOTJOIN__INGEST__WINDOW_DAYS": "1"}  # one request per city-day: more requests to break
    clean, faulty = _settings(tmp_path / "clean", **one_day), _settings(tmp_path / "faulty", **one_day)
    span = {"since": date(2024, 1, 27), "until": date(2024, 2, 3), "cities": CITIES}
    with running(SourceState()) as url:
        _ok(weather.run(clean, base_url=url, **span))
        _ok(transit.run(clean, since=date(2024, 2, 1), until=date(2024, 2, 3), base_url=url))
    state = SourceState(faults=FAULTS)
    with running(state) as url:
        report = weather.run(faulty, base_url=url, **span)
        _ok(report)
        _ok(transit.run(faulty, since=date(2024, 2, 1), until=date(2024, 2, 3), base_url=url))
    assert report.counts["duplicates"] > 0
    assert (
        state.injected.get("429", 0) > 0 and state.injected.get("500", 0) + state.injected.get("503", 0) > 0
    )
    assert _checksums(faulty, audit_times=False) == _checksums(clean, audit_times=False)
    with open_warehouse(faulty) as wh:
        errors = wh.query(
            "SELECT source, request, status, attempt, body_excerpt, failed_at FROM ingest_errors"
        ).to_pylist()
    assert {e["status"] for e in errors} >= {429}
    assert all(e["request"].startswith("GET http://127.0.0.1:") and e["attempt"] >= 1 for e in errors)


def test_a_changed_upstream_value_updates_that_row_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    state = SourceState()
    span = {"since": date(2024, 3, 1), "until": date(2024, 3, 2), "cities": CITIES}
    with running(state) as url:
        _ok(weather.run(settings, base_url=url, **span))
        with open_warehouse(settings) as wh:
            before = {(r["city"], r["hour"]): r for r in wh.query("SELECT * FROM weather_hourly").to_pylist()}
        hour = datetime(2024, 3, 2, 13, tzinfo=UTC)
        state.weather.overrides[(52.52, 13.41, int(hour.timestamp()) // 3600)] = {"temperature_2m": 39.5}
        report = weather.run(settings, base_url=url, refetch=True, **span)
    _ok(report)
    assert (report.metrics["rows_inserted"], report.metrics["rows_updated"]) == (0, 1)
    with open_warehouse(settings) as wh:
        after = {(r["city"], r["hour"]): r for r in wh.query("SELECT * FROM weather_hourly").to_pylist()}
    changed = [k for k in after if after[k] != before[k]]
    assert [(c, h.astimezone(UTC)) for c, h in changed] == [("Berlin", hour)]
    old, new = before[changed[0]], after[changed[0]]
    assert new["temperature_2m"] == 39.5 and new["content_hash"] != old["content_hash"]
    assert new["ingested_at"] == old["ingested_at"] and new["updated_at"] > old["updated_at"]


def test_an_impossible_upstream_value_fails_the_contract_check_naming_the_row(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    state = SourceState()
    hour = datetime(2024, 3, 1, 13, tzinfo=UTC)
    state.weather.overrides[(59.91, 10.75, int(hour.timestamp()) // 3600)] = {"temperature_2m": 99.5}
    with running(state) as url:
        report = weather.run(
            settings, since=date(2024, 3, 1), until=date(2024, 3, 1), base_url=url, cities=CITIES
        )
    assert report.status == "failed"
    failed = [c for c in report.checks if not c.passed]
    assert [(c.name, c.dataset, c.observed, c.failed_rows) for c in failed] == [
        ("invalidValues:temperature_2m", "weather_hourly", 1, 1)
    ]
    assert len(failed[0].sample) == 1 and failed[0].sample[0].startswith(
        "city=Oslo, hour=2024-03-01 13:00:00"
    )
    assert {c.name for c in report.checks if c.dataset == "weather_hourly"} >= {
        "nullValues:city", "duplicateValues:city,hour", "invalidValues:relative_humidity_2m", "rowCount",
        "hours_contiguous_per_city",
    }  # fmt: skip


def test_sigkill_mid_backfill_then_rerun_is_complete_without_duplicates_or_gaps(tmp_path: Path) -> None:
    """kill -9 a 30-day backfill in a real subprocess; the re-run resumes from the committed cursor."""
    (tmp_path / "run").mkdir()
    cities = tmp_path / "cities.csv"
    cities.write_text(
        "name,latitude,longitude\n" + "".join(f"{c.name},{c.latitude},{c.longitude}\n" for c in CITIES)
    )
    env = {
        **os.environ,
        **FAST_RETRY_ENV,
        "DOTJOIN__INGEST__WINDOW_DAYS": "1",
        "DOTJOIN__INGEST__CONCURRENCY": "2",
    }
    env.pop("DOTJOIN_PROFILE", None)
    args = ["--since", "2024-01-01", "--until", "2024-01-30", "--cities", str(cities), "-o", "json"]
    state = SourceState(faults=FaultConfig(latency_s=0.1))
    with running(state) as url:
        cmd = [sys.executable, "-m", "dotjoin", "-q", "ingest", "weather", *args, "--base-url", url]
        proc = subprocess.Popen(
            cmd, cwd=tmp_path / "run", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while state.requests < 50 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        fetched_before_kill = state.requests
        settings = load_settings(profile="local", cwd=tmp_path / "run", env={**FAST_RETRY_ENV})
        with open_warehouse(settings) as wh:
            partial = wh.scalar("SELECT count(*) FROM weather_hourly")
            cursors = wh.query("SELECT scope, last_complete_day FROM ingest_state").to_pylist()
        assert 0 < partial < 3 * 30 * 24
        # the cursor never claims more than is committed: every covered day has its 24 hours
        for c in cursors:
            with open_warehouse(settings) as wh:
                n = wh.scalar(
                    "SELECT count(*) FROM weather_hourly WHERE city = $1 AND hour < $2",
                    [c["scope"], datetime(2024, 1, c["last_complete_day"].day + 1, tzinfo=UTC)],
                )
            assert n == 24 * c["last_complete_day"].day
        rerun = subprocess.run(
            [*cmd], cwd=tmp_path / "run", env=env, capture_output=True, text=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr
        refetched = state.requests - fetched_before_kill
    assert refetched < 3 * 30  # resumed after the cursor rather than starting over
    with open_warehouse(settings) as wh:
        total, distinct = (
            wh.query("SELECT count(*) AS n, count(DISTINCT (city, hour)) AS d FROM weather_hourly")
            .to_pylist()[0]
            .values()
        )
        per_city = wh.query(
            "SELECT city, count(*) AS n, min(hour) AS lo, max(hour) AS hi FROM weather_hourly GROUP BY city"
        ).to_pylist()
    assert total == distinct == 3 * 30 * 24
    assert all(r["n"] == 720 and (r["hi"] - r["lo"]).total_seconds() == 719 * 3600 for r in per_city)


def test_transit_same_days_twice_writes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path, DOTJOIN__INGEST__FEED="demo")
    with running(SourceState()) as url:
        first = transit.run(settings, since=date(2024, 2, 1), until=date(2024, 2, 2), base_url=url)
        _ok(first)
        before = _checksums(settings)
        second = transit.run(
            settings, since=date(2024, 2, 1), until=date(2024, 2, 2), base_url=url, refetch=True
        )
    _ok(second)
    assert (second.metrics["rows_inserted"], second.metrics["rows_updated"]) == (0, 0)
    assert _checksums(settings) == before
    assert {c.name for c in second.checks} >= {
        "arrivals_reference_known_trip_and_stop",
        "stop_sequences_increase",
    }


def test_the_cli_ingests_from_the_local_server(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dotjoin.cli.main import app

    with running(SourceState()) as url:
        assert httpx.get(f"{url}/health").json()["ok"] is True
        env = {"DOTJOIN__STATE_DIR": str(tmp_path / "state"), **FAST_RETRY_ENV}
        result = CliRunner().invoke(
            app, ["ingest", "weather", "--date", "2024-03-01", "--base-url", url, "-o", "json"], env=env
        )
    assert result.exit_code == 0, result.output
    assert '"status": "succeeded"' in result.output
