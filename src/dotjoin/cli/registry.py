"""The entry layer's registries: the orchestrated flows by name, and the pipelines ``dotjoin demo`` runs.

They live here, above ``pipelines/`` and ``orchestration/``, because they wire those together: a pipeline
declares its flow with :mod:`dotjoin.orchestration.steps`, and orchestration never imports a pipeline
(``tests/unit/test_architecture.py``). ``dotjoin run|backfill|flows`` and the files in ``dags/`` look
flows up here. A new orchestrated pipeline adds one line to :data:`FLOWS` (and a thin file in ``dags/``);
a new pipeline in the demo adds one line to :data:`DEMO_STEPS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import import_module
from pathlib import Path

from dotjoin.config import Settings
from dotjoin.exceptions import NotFoundError
from dotjoin.orchestration.steps import Flow
from dotjoin.platform.runs import RunReport

#: name -> "module:attribute" of its :class:`Flow` (or of a function returning it), imported on first use
FLOWS: dict[str, str] = {
    "nightly": "dotjoin.cli.registry:nightly_flow",
    "stocks": "dotjoin.pipelines.stocks.flow:FLOW",
    "monthly_aggregates": "dotjoin.pipelines.monthly_aggregates.flow:FLOW",
}


def get_flow(name: str) -> Flow:
    """The flow called ``name``; an unknown name is one error line listing the known ones."""
    target = FLOWS.get(name)
    if target is None:
        raise NotFoundError(f"unknown pipeline {name!r}; orchestrated pipelines: {', '.join(sorted(FLOWS))}")
    return _load(target)


def nightly_flow() -> Flow:
    """The nightly flow on the simulated shop: the stand-in for the shop's and the IoT fleet's exports."""
    from dotjoin.pipelines.nightly.flow import build_flow
    from dotjoin.simulate.lakehouse.shop import nightly_exports

    return build_flow(nightly_exports)


@cache
def _load(target: str) -> Flow:
    module, _, attr = target.partition(":")
    flow = getattr(import_module(module), attr)
    if callable(flow) and not isinstance(flow, Flow):
        flow = flow()
    if not isinstance(flow, Flow):
        raise TypeError(f"{target} is not a Flow")
    return flow


@dataclass(frozen=True)
class DemoStep:
    name: str
    description: str
    run: Callable[[Settings, Path], RunReport]  # (settings, scratch dir) -> report


DEMO_SINCE, DEMO_UNTIL = date(2024, 3, 1), date(2024, 3, 7)


def _selfcheck(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.selfcheck.pipeline import run

    return run(settings, events=10_000)


def _ingest_weather(settings: Settings, scratch: Path) -> RunReport:
    """A week of hourly weather for the built-in cities, from the local source server with faults on."""
    from dotjoin.pipelines.api_ingest.weather import run
    from dotjoin.simulate.sources.app import DEMO_FAULTS, SourceState, running

    with running(SourceState(faults=DEMO_FAULTS)) as url:
        return run(settings, since=DEMO_SINCE, until=DEMO_UNTIL, base_url=url, refetch=True)


def _ingest_transit(settings: Settings, scratch: Path) -> RunReport:
    """The demo agency's feed and a week of arrivals, from the local source server with faults on."""
    from dotjoin.pipelines.api_ingest.transit import run
    from dotjoin.simulate.sources.app import DEMO_FAULTS, SourceState, running

    with running(SourceState(faults=DEMO_FAULTS)) as url:
        return run(settings, since=DEMO_SINCE, until=DEMO_UNTIL, base_url=url, refetch=True)


def _lakehouse(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.lakehouse.pipeline import run
    from dotjoin.simulate.lakehouse.shop import GeneratedShop

    return run(settings, source=GeneratedShop(days=2, seed=7))


def _csv_etl(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.pipelines.csv_etl.pipeline import run
    from dotjoin.simulate.csv_etl.generator import generate

    generate("commits", rows=20_000, dirty_rate=0.05, seed=7, out=scratch / "commits")
    return run(settings, dataset="commits", input_path=scratch / "commits" / "commits.csv")


def _nightly(settings: Settings, scratch: Path) -> RunReport:
    from dotjoin.orchestration.runner import run_date
    from dotjoin.simulate.sources.app import DEMO_FAULTS, SourceState, running

    with running(SourceState(faults=DEMO_FAULTS)) as url:
        return run_date(get_flow("nightly"), settings, date(2024, 3, 7), params={"base_url": url})


def _payments(settings: Settings, scratch: Path) -> RunReport:
    """Train on a simulated labelled day, then score the next day's stream from the bus.

    The detector starts from a fresh state in ``scratch`` each time, and reads only the messages this
    run sends (the group's committed offsets), so a repeated demo raises the same alerts again.
    """
    from datetime import UTC, datetime, timedelta

    from dotjoin.pipelines.payments.history import Reference
    from dotjoin.pipelines.payments.pipeline import detect, train
    from dotjoin.platform.bus import open_bus
    from dotjoin.simulate.payments.output import (
        EVENTS_FILE,
        FX_FILE,
        LABELS_FILE,
        MERCHANTS_FILE,
        produce,
        write_log,
    )
    from dotjoin.simulate.payments.stream import generate

    start = datetime(2026, 11, 2, tzinfo=UTC)
    history = scratch / "history"
    write_log(generate(seed=7, eps=200, duration_s=300, start=start - timedelta(days=1)), history)
    reference = Reference.read(history / MERCHANTS_FILE, history / FX_FILE)
    _, models = train(settings, history / EVENTS_FILE, reference=reference, labels=history / LABELS_FILE,
                      models_path=scratch / "models.pickle")  # fmt: skip
    with open_bus(settings).producer() as producer:
        produce(generate(seed=7, eps=200, duration_s=120, start=start), producer, eps=0)
    idle_s = 1.5 if settings.bus.type == "embedded" else 10.0  # a Kafka group's first join takes seconds
    return detect(
        settings, reference=reference, models_path=models, idle_s=idle_s, checkpoint=scratch / "checkpoint"
    )


def _cdc(settings: Settings, scratch: Path) -> RunReport:
    """A real Debezium recording replayed into Iceberg change logs, reconciled with its workload journal."""
    from dotjoin.pipelines.cdc.pipeline import replay
    from dotjoin.simulate.cdc_recording import EVENTS, JOURNAL

    return replay(settings, EVENTS, journal=JOURNAL)


def _features(settings: Settings, scratch: Path) -> RunReport:
    """Two minutes of the payments stream: the streaming state against the backfill as known, every point."""
    from datetime import UTC, datetime

    from dotjoin.pipelines.features.pipeline import run_parity
    from dotjoin.simulate.payments.output import EVENTS_FILE, FX_FILE, write_log
    from dotjoin.simulate.payments.stream import generate

    stream = scratch / "features"
    write_log(generate(seed=8, eps=100, duration_s=120, start=datetime(2026, 11, 3, tzinfo=UTC)), stream)
    return run_parity(settings, stream / EVENTS_FILE, fx=stream / FX_FILE)


def _features_score(settings: Settings, scratch: Path) -> RunReport:
    """Six labelled minutes of payments: the stream job fills the online store; train, backtest and
    register in MLflow; promote past the gate; score 500 of them through the champion (each served vector
    logged); recompute every served vector offline from the topic."""
    from datetime import UTC, datetime

    from dotjoin.pipelines.features.pipeline import run_served_parity
    from dotjoin.pipelines.features.scoring import Scorer
    from dotjoin.pipelines.features.stream import run_stream
    from dotjoin.pipelines.features.train import promote, run_train
    from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
    from dotjoin.platform.bus import open_bus
    from dotjoin.simulate.payments.output import (
        EVENTS_FILE,
        FX_FILE,
        LABELS_FILE,
        MERCHANTS_FILE,
        produce,
        write_log,
    )
    from dotjoin.simulate.payments.stream import generate

    stream = scratch / "features-score"
    sim = generate(seed=12, eps=100, duration_s=360, start=datetime(2026, 11, 4, tzinfo=UTC), fraud_rate=0.02)
    write_log(sim, stream)
    with open_bus(settings).producer() as producer:
        produce(sim, producer, eps=0)
    fx = stream / FX_FILE
    run_stream(settings, usd_rates=read_usd_rates(fx), idle_exit=1.0)
    trained = run_train(settings, stream / EVENTS_FILE, stream / LABELS_FILE, fx=fx, folds=2,
                        merchants=stream / MERCHANTS_FILE)  # fmt: skip
    promote(settings, str(trained.params["version"]), min_auc=0.7)
    serving = settings.model_copy(
        update={"features": settings.features.model_copy(update={"fx_rates": str(fx)})}
    )
    scorer = Scorer(serving)
    try:
        for p in read_recorded(stream / EVENTS_FILE).payments[-500:]:
            scorer.score(event_id=p.event_id, card_id=p.card_id, merchant_id=p.merchant_id,
                         t=p.event_time_ms, amount=p.amount, currency=p.currency)  # fmt: skip
    finally:
        scorer.close()  # flushes the served-feature log
    return run_served_parity(settings, fx=fx)


DEMO_STEPS: list[DemoStep] = [
    DemoStep("selfcheck", "bus -> warehouse -> lake round trip", _selfcheck),
    DemoStep(
        "csv_etl", "messy commits CSV (20,000 rows) -> cleaned, deduplicated table + quarantine", _csv_etl
    ),
    DemoStep("ingest_weather", "Open-Meteo API (local server, faults on) -> weather_hourly", _ingest_weather),
    DemoStep("ingest_transit", "GTFS + GTFS-realtime (local server, faults on) -> arrivals", _ingest_transit),
    DemoStep("lakehouse", "CSV + JSON sources -> raw -> staging Iceberg -> dbt marts (2 days)", _lakehouse),
    DemoStep("nightly", "the nightly flow for one date through the local runner", _nightly),
    DemoStep(
        "payments_detect",
        "payments stream (24,000 events, 6 fraud typologies) -> train, then detect with alerts",
        _payments,
    ),
    DemoStep("cdc_replay", "a recorded Debezium stream -> Iceberg change logs, current state + SCD2", _cdc),
    DemoStep("features_parity", "payments stream (12,000 events) -> 36 features online = offline", _features),
    DemoStep(
        "features_served_parity",
        "payments stream -> online store; train + backtest -> MLflow champion; score 500; served = offline",
        _features_score,
    ),
]
