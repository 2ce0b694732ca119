"""POST /score on the local profile: the stream job's online store, a champion trained and promoted in
MLflow, the API's auth, validation, rate limit and metrics, and a promotion served without a restart."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from dotjoin.config import load_settings
from dotjoin.platform.api_keys import KeyRing
from dotjoin.web.app import create_app
from tests.unit.web.support import TestClient

pytestmark = pytest.mark.slow


def test_score_serves_the_champion_behind_keys_and_limits(tmp_path: Path) -> None:
    from dotjoin.pipelines.features.pipeline import run_drift, run_served_parity
    from dotjoin.pipelines.features.stream import run_stream
    from dotjoin.pipelines.features.train import backtest, promote, train_and_register, training_set
    from dotjoin.pipelines.payments.history import read_usd_rates
    from dotjoin.platform.bus import open_bus
    from dotjoin.simulate.payments.output import produce, write_fx_rates, write_log
    from dotjoin.simulate.payments.stream import generate

    env = {"DOTJOIN__FEATURES__SCORE_BURST": "12", "DOTJOIN__FEATURES__SCORE_RATE_PER_S": "0.01",
           "DOTJOIN__FEATURES__CHAMPION_RECHECK_S": "0"}  # fmt: skip
    settings = load_settings(profile="local", cwd=tmp_path, env=env)
    sim = generate(
        seed=9, eps=100, duration_s=240, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), fraud_rate=0.02
    )
    write_log(sim, tmp_path / "pay")
    fx = write_fx_rates(tmp_path / "pay" / "fx.csv")
    with open_bus(settings).producer() as producer:
        produce(sim, producer, eps=0)
    assert run_stream(settings, usd_rates=read_usd_rates(fx), idle_exit=1.0).status == "succeeded"
    data = training_set(tmp_path / "pay" / "events.jsonl", tmp_path / "pay" / "labels.jsonl", fx)
    tested = backtest(data, folds=2)
    first = train_and_register(settings, data, tested, source="test")

    ring = KeyRing(settings.state_dir)
    key, other = ring.add("svc", ("score",)), ring.add("reader", ("read",))
    client = TestClient(create_app(settings))
    client.__enter__()  # the app's lifespan: its end flushes the served-feature log
    body = {"event_id": "e1", "card_id": "card-x", "merchant_id": "merch-x", "amount": 12.5,
            "currency": "EUR", "event_time": "2026-01-01T00:04:00"}  # fmt: skip
    assert client.post("/score", json=body).status_code == 401
    assert client.post("/score", json=body, headers={"X-API-Key": "dj_wrong"}).status_code == 403
    assert client.post("/score", json=body, headers={"X-API-Key": other}).status_code == 403  # no score scope
    no_champion = client.post("/score", json=body, headers={"X-API-Key": key})
    assert no_champion.status_code == 503 and "champion" in no_champion.json()["detail"]

    promote(settings, first["version"], min_auc=0.0)
    bad = client.post("/score", json={**body, "amount": "lots"}, headers={"X-API-Key": key})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "amount"]
    card, merchant = _busy_pair(tmp_path / "pay" / "events.jsonl")
    scored = client.post(
        "/score", json={**body, "card_id": card, "merchant_id": merchant}, headers={"X-API-Key": key}
    )
    assert scored.status_code == 200, scored.text
    answer = scored.json()
    assert 0.0 <= answer["score"] <= 1.0 and answer["decision"] in ("approve", "review")
    assert answer["model_version"] == first["version"] and len(answer["contributions"]) == 3
    assert set(answer["timings_ms"]) == {"features", "model", "total"}

    second = train_and_register(settings, data, tested, source="test")
    promote(settings, second["version"], min_auc=0.0)  # served without a restart, once the recheck ran
    served = []
    for _ in range(8):  # the first request after a promotion still gets the old model, never a wait
        again = client.post("/score", json=body, headers={"X-API-Key": key})
        assert again.status_code == 200, again.text
        served.append(again.json()["model_version"])
        if served[-1] == second["version"]:
            break
        time.sleep(0.25)
    assert served[-1] == second["version"] and set(served) <= {first["version"], second["version"]}

    statuses = [client.post("/score", json=body, headers={"X-API-Key": key}).status_code for _ in range(12)]
    limited = client.post("/score", json=body, headers={"X-API-Key": key})  # the burst of 12 is spent
    assert set(statuses) <= {200, 429} and limited.status_code == 429 and "Retry-After" in limited.headers
    metrics = client.get("/metrics").text
    scored_count = 1 + len(served) + statuses.count(200)
    assert f'dotjoin_score_seconds_count{{stage="total"}} {scored_count}.0' in metrics
    schema = client.get("/api/openapi.json").json()
    assert "/score" in schema["paths"]
    client.__exit__(None, None, None)

    # every served vector was logged, and the job recomputing them from the topic finds no difference
    parity = run_served_parity(settings, fx=fx)
    assert parity.counts["input"] == scored_count and parity.status == "succeeded"
    assert parity.checks[-1].passed and parity.metrics["mismatched"] == 0

    # and drift against the histograms frozen at training: one window per model version served
    drift = run_drift(settings, window_s=3600, min_rows=1)
    assert drift.metrics["windows"] == 2 and sum(k.startswith("psi_") for k in drift.metrics) == 36
    assert drift.checks[-1].name.startswith("no feature drifted")
    assert settings.resolve("features/drift.json").is_file()


def _busy_pair(events: Path) -> tuple[str, str]:
    from collections import Counter

    from dotjoin.pipelines.payments.history import read_recorded

    payments = read_recorded(events).payments
    card = Counter(p.card_id for p in payments).most_common(1)[0][0]
    return card, next(p.merchant_id for p in payments if p.card_id == card)
