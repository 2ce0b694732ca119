"""The pipelines ``dotjoin demo`` runs, in order. A new pipeline adds one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


DEMO_STEPS: list[DemoStep] = [
    DemoStep("selfcheck", "bus -> warehouse -> lake round trip", _selfcheck),
    DemoStep("ingest_weather", "Open-Meteo API (local server, faults on) -> weather_hourly", _ingest_weather),
    DemoStep("ingest_transit", "GTFS + GTFS-realtime (local server, faults on) -> arrivals", _ingest_transit),
]
