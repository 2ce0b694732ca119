"""The ``dotjoin demo`` steps: ingest from the local source server with faults switched on."""

from __future__ import annotations

from datetime import date

from dotjoin.config import Settings
from dotjoin.platform.runs import RunReport
from dotjoin.sources.app import FaultConfig, SourceState, running

DEMO_SINCE, DEMO_UNTIL = date(2024, 3, 1), date(2024, 3, 7)
#: 10% 5xx, 429 bursts, duplicated and out-of-order pages, a few truncated bodies.
DEMO_FAULTS = FaultConfig(fail_rate=0.1, rate_limit=100, dup_rate=0.2, shuffle=True, truncate_rate=0.02)


def weather(settings: Settings) -> RunReport:
    """A week of hourly weather for the built-in cities."""
    from dotjoin.pipelines.api_ingest.weather import run

    with running(SourceState(faults=DEMO_FAULTS)) as url:
        return run(settings, since=DEMO_SINCE, until=DEMO_UNTIL, base_url=url, refetch=True)


def transit(settings: Settings) -> RunReport:
    """The demo agency's feed and a week of arrivals."""
    from dotjoin.pipelines.api_ingest.transit import run

    with running(SourceState(faults=DEMO_FAULTS)) as url:
        return run(settings, since=DEMO_SINCE, until=DEMO_UNTIL, base_url=url, refetch=True)
