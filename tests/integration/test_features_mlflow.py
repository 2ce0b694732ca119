"""Training, the registry and serving on the stack's MLflow server: PostgreSQL-backed, basic auth."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import TerminalError
from dotjoin.pipelines.features.scoring import Scorer
from dotjoin.pipelines.features.train import (
    MODEL_NAME,
    backtest,
    promote,
    train_and_register,
    training_set,
)
from dotjoin.platform.kv import open_kv
from dotjoin.services.mlflow import DATABASE
from dotjoin.services.postgres import SUPERUSER, PostgresService
from dotjoin.simulate.payments.output import write_fx_rates, write_log
from dotjoin.simulate.payments.stream import generate

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]


def test_a_model_trained_promoted_and_served_through_the_server(
    mlflow_service: Settings, tmp_path: Path, unique_name: str
) -> None:
    settings = mlflow_service
    assert settings.features.mlflow_uri.startswith("http://127.0.0.1:")
    url = f"{settings.features.mlflow_uri}/api/2.0/mlflow/registered-models/search"
    with pytest.raises(urllib.error.HTTPError) as refused:  # no credentials: nothing is revealed
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 401

    sim = generate(
        seed=31, eps=100, duration_s=240, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), fraud_rate=0.03
    )
    write_log(sim, tmp_path)
    data = training_set(
        tmp_path / "events.jsonl", tmp_path / "labels.jsonl", write_fx_rates(tmp_path / "fx.csv")
    )
    tested = backtest(data, folds=2)
    logged = train_and_register(settings, data, tested, source=unique_name)

    # the version is in the server's PostgreSQL database, with the training set's fingerprint
    pg = PostgresService(settings)
    with psycopg.connect(host=str(pg.socket_dir), port=pg.port, user=SUPERUSER, dbname=DATABASE) as conn:
        row = conn.execute(
            "SELECT t.value FROM model_versions v JOIN tags t ON t.run_uuid = v.run_id "
            "WHERE v.name = %s AND v.version = %s AND t.key = 'dataset_sha256'",
            [MODEL_NAME, int(logged["version"])],
        ).fetchone()
    assert row is not None and row[0] == data.fingerprint() == logged["dataset_sha256"]

    with pytest.raises(TerminalError, match="not promoted"):  # a model that fails the gate is refused
        promote(settings, logged["version"], min_auc=1.01)
    promote(settings, logged["version"], min_auc=0.0)

    # served from the server's registry and artifact store (the online store here: an empty namespace)
    with open_kv(settings, f"{unique_name}-features") as kv:
        scorer = Scorer(settings, kv=kv)
        if scorer.served is not None:  # no served-feature log from a test
            scorer.served.close()
            scorer.served = None
        scored = scorer.score(
            event_id="e1",
            card_id="c",
            merchant_id="m",
            t=int(data.times.max()) + 1,
            amount=25.0,
            currency="USD",
        )
    assert scored.model_version == logged["version"] and 0.0 <= scored.score <= 1.0
