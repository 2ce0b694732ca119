"""The pipelines ``dotjoin demo`` runs, in order. A new pipeline adds one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dotjoin.config import Settings
from dotjoin.platform.runs import RunReport


@dataclass(frozen=True)
class DemoStep:
    name: str
    description: str
    run: Callable[[Settings, Path], RunReport]  # (settings, scratch dir) -> report


def _selfcheck(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.selfcheck.pipeline import run

    return run(settings, events=10_000)


def _ingest_weather(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.api_ingest.demo import weather

    return weather(settings)


def _ingest_transit(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.api_ingest.demo import transit

    return transit(settings)


def _lakehouse(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.lakehouse.pipeline import run

    return run(settings, days=2, seed=7)


def _csv_etl(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.csv_etl.generator import generate
    from dotjoin.pipelines.csv_etl.pipeline import run

    generate("commits", rows=20_000, dirty_rate=0.05, seed=7, out=scratch / "commits")
    return run(settings, dataset="commits", input_path=scratch / "commits" / "commits.csv")


def _nightly(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.orchestration.registry import get_flow
    from dotjoin.orchestration.runner import run_date
    from dotjoin.pipelines.api_ingest.demo import DEMO_FAULTS
    from dotjoin.sources.app import SourceState, running

    with running(SourceState(faults=DEMO_FAULTS)) as url:
        return run_date(get_flow("nightly"), settings, date(2024, 3, 7), params={"base_url": url})


DEMO_STEPS: list[DemoStep] = [
    DemoStep("selfcheck", "bus -> warehouse -> lake round trip", _selfcheck),
    DemoStep(
        "csv_etl", "messy commits CSV (20,000 rows) -> cleaned, deduplicated table + quarantine", _csv_etl
    ),
    DemoStep("ingest_weather", "Open-Meteo API (local server, faults on) -> weather_hourly", _ingest_weather),
    DemoStep("ingest_transit", "GTFS + GTFS-realtime (local server, faults on) -> arrivals", _ingest_transit),
    DemoStep("lakehouse", "CSV + JSON sources -> raw -> staging Iceberg -> dbt marts (2 days)", _lakehouse),
    DemoStep("nightly", "the nightly flow for one date through the local runner", _nightly),
]
