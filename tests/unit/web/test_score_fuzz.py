"""POST /score fuzzed from its own OpenAPI schema (Schemathesis): whatever the body, the answer is one of
the documented responses, in the documented shape, and never a server error."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from dotjoin.config import load_settings
from dotjoin.platform.api_keys import KeyRing
from dotjoin.web.app import create_app

pytestmark = pytest.mark.slow


STATE = Path(tempfile.mkdtemp(prefix="dotjoin-fuzz-"))  # the app reads its state lazily: filled below
ENV = {"DOTJOIN__FEATURES__SCORE_BURST": "100000", "DOTJOIN__FEATURES__SCORE_RATE_PER_S": "100000"}
CONFIG = load_settings(profile="local", cwd=STATE, env=ENV)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app(CONFIG)).include(path="/score")


@pytest.fixture(scope="module")
def key() -> Iterator[str]:
    """A streamed online store, a promoted champion and a scoring key in the app's state."""
    from dotjoin.pipelines.features.stream import run_stream
    from dotjoin.pipelines.features.train import backtest, promote, train_and_register, training_set
    from dotjoin.platform.bus import open_bus
    from dotjoin.simulate.payments.output import produce, write_log
    from dotjoin.simulate.payments.stream import generate

    sim = generate(
        seed=4, eps=100, duration_s=180, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), fraud_rate=0.03
    )
    write_log(sim, STATE / "pay")
    with open_bus(CONFIG).producer() as producer:
        produce(sim, producer, eps=0)
    run_stream(CONFIG, usd_rates={}, idle_exit=1.0)
    data = training_set(STATE / "pay" / "events.jsonl", STATE / "pay" / "labels.jsonl", None)
    promote(
        CONFIG, train_and_register(CONFIG, data, backtest(data, folds=1), source="fuzz")["version"], min_auc=0
    )
    yield KeyRing(CONFIG.state_dir).add("fuzz", ("score",))
    shutil.rmtree(STATE, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_score_answers_every_body_as_documented(case: Any, key: str) -> None:
    case.call_and_validate(headers={"X-API-Key": key})
