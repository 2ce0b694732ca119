"""``dotjoin features train|promote``: a point-in-time training set, a walk-forward backtest, MLflow.

The training set is the backfill **as known** at each payment's arrival (what scoring saw: no
look-ahead, no late payment the live model could not have had), labelled from the labels file. The
backtest is walk-forward in time: the payments are cut into ``folds + 1`` consecutive slices of equal
time; fold i trains on every slice before slice i and scores slice i (AUC, precision@k per fold). The
model finally trained on everything is logged to MLflow with its parameters, the backtest's metrics and
the training set's fingerprint (SHA-256 of its Arrow bytes), the features' medians (explanations) and
histograms (drift), and registered as a new version of
:data:`MODEL_NAME`. ``promote`` moves the ``champion`` alias to a version only if its backtest passed the
gate: a model that fails it is refused, whatever it is.

MLflow's tracking store is ``[features] mlflow_uri`` (a SQLite file locally), imported only here: it
takes seconds.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dotjoin.config import Settings
from dotjoin.exceptions import DataError, NotFoundError, TerminalError
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import (
    FEATURES,
    MODEL_FEATURES,
    REQUEST_FEATURES,
    request_features,
)
from dotjoin.pipelines.features.drift import DRIFT_ARTIFACT, reference_histograms
from dotjoin.pipelines.payments.evaluate import quality
from dotjoin.pipelines.payments.history import read_labels, read_recorded, read_usd_rates

logger = logging.getLogger(__name__)

MODEL_NAME = "dotjoin-payments-features"
CHAMPION = "champion"
REFERENCE_ARTIFACT = "reference.json"
GATE_METRIC = "backtest_auc_min"
# leaves of 50+ payments, shrunk: above the defaults (20, no L2) on every fold of the 15- and 30-minute
# streams backtested (docs/pipelines/feature-store.md), and above the isolation forest on each
PARAMS = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 50,
          "l2_regularization": 1.0, "random_state": 0}  # fmt: skip
# skops (MLflow's safe sklearn format) refuses types it cannot vet; this one is ours, trained here
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


@dataclass
class TrainingSet:
    event_ids: list[str]
    times: np.ndarray  # event time, ms
    features: pa.Table  # the FEATURES columns, as known at each payment's arrival
    fraud: np.ndarray  # bool
    cents: np.ndarray  # each payment's own amount, US cents

    def matrix(self) -> np.ndarray:
        """The model's columns (:data:`MODEL_FEATURES`): the aggregates, then the request features."""
        aggregates = self.features.select([f.name for f in FEATURES]).to_pylist()
        request = [
            list(request_features(int(c), row).values())
            for c, row in zip(self.cents, aggregates, strict=True)
        ]
        return np.column_stack(
            [*(np.asarray(self.features.column(f.name).to_numpy(zero_copy_only=False), dtype=np.float64)
               for f in FEATURES),
             np.asarray(request, dtype=np.float64).reshape(len(aggregates), len(REQUEST_FEATURES))]
        )  # fmt: skip

    def fingerprint(self) -> str:
        sink = io.BytesIO()
        table = self.features.append_column("cents", pa.array(self.cents)).append_column(
            "fraud", pa.array(self.fraud)
        )
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return hashlib.sha256(sink.getvalue()).hexdigest()


def training_set(events: Path, labels: Path, fx: Path | None) -> TrainingSet:
    """The recorded stream's payments (duplicates dropped) with their features as known and labels."""
    history = read_recorded(events)
    fraud_ids = set(read_labels(labels))
    ids, rows, _ = distinct_rows(history.payments, read_usd_rates(fx) if fx is not None else {})
    if not rows:
        raise DataError(f"{events}: no payments to train on")
    features = backfill(*as_tables(ids, rows, arrival=True)).drop_columns(["point_id"])
    return TrainingSet(
        event_ids=ids,
        times=np.asarray([r[2] for r in rows], dtype=np.int64),
        features=features,
        fraud=np.fromiter((i in fraud_ids for i in ids), dtype=bool, count=len(ids)),
        cents=np.asarray([r[3] for r in rows], dtype=np.int64),
    )


def reference_values(data: TrainingSet) -> dict[str, float]:
    """Each feature's median over the training set (where it has a value): what an explanation replaces
    a feature with to see how much the score moves."""
    x = data.matrix()
    out = {}
    for n, name in enumerate(MODEL_FEATURES):
        present = x[:, n][~np.isnan(x[:, n])]
        out[name] = float(np.median(present)) if present.size else 0.0
    return out


@dataclass
class Backtest:
    folds: list[dict[str, Any]] = field(default_factory=list)  # per fold: slice bounds, rows, AUC, p@k

    @property
    def auc_min(self) -> float:
        aucs = [f["auc"] for f in self.folds if f["auc"] is not None]
        return min(aucs) if aucs else 0.0


def _model() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**PARAMS)


def backtest(data: TrainingSet, *, folds: int = 4, k: int = 50) -> Backtest:
    """Walk forward over ``folds + 1`` equal time slices: train before each slice, score it."""
    edges = np.linspace(data.times.min(), data.times.max() + 1, folds + 2).astype(np.int64)
    x, result = data.matrix(), Backtest()
    for n in range(1, folds + 1):
        train = data.times < edges[n]
        test = (data.times >= edges[n]) & (data.times < edges[n + 1])
        if data.fraud[train].sum() == 0 or not test.any():
            raise DataError(f"backtest fold {n}: no fraud to learn from before it, or no payments in it; "
                            "use a longer labelled stream or fewer --folds")  # fmt: skip
        model = _model().fit(x[train], data.fraud[train])
        scores = model.predict_proba(x[test])[:, 1]
        ids = [i for i, keep in zip(data.event_ids, test, strict=True) if keep]
        fraud = {i for i, f in zip(ids, data.fraud[test], strict=True) if f}
        q = quality(list(zip(ids, scores.tolist(), strict=True)), set(), fraud, ks=(k,))
        result.folds.append({"fold": n, "from_ms": int(edges[n]), "to_ms": int(edges[n + 1]),
                             "rows": int(test.sum()), "fraud": len(fraud), "auc": q.auc,
                             f"precision_at_{k}": q.precision_at_k.get(k)})  # fmt: skip
    return result


def add_forest_baseline(
    tested: Backtest, events: Path, labels: Path, fx: Path | None, merchants: Path
) -> None:
    """The streaming fraud detector's isolation forest — its own features (merchant reference data
    joined), its settings, fitted on the legitimate payments before each fold — scored on the same folds:
    ``auc_isolation_forest`` (and precision@k) beside each fold's own."""
    from sklearn.ensemble import IsolationForest

    from dotjoin.pipelines.payments.history import Reference
    from dotjoin.pipelines.payments.offline import category_typicals, training_rows

    history = read_recorded(events)
    fraud_ids = set(read_labels(labels))
    history.fraud = [p.event_id in fraud_ids for p in history.payments]
    reference = Reference.read(merchants, fx)
    first = tested.folds[0]["from_ms"]  # category medians from before every fold: no look-ahead
    typicals = category_typicals(history, reference, before_share=_share_before(history, first))
    rows, fraud, times = training_rows(history, reference, typicals)
    for fold in tested.folds:
        fit = (times < fold["from_ms"]) & ~fraud.astype(bool)
        test = (times >= fold["from_ms"]) & (times < fold["to_ms"])
        forest = IsolationForest(n_estimators=50, random_state=0).fit(rows[fit])
        anomaly = -forest.score_samples(rows[test])  # higher: more anomalous, as the detector reads it
        ids = [str(n) for n in np.flatnonzero(test)]
        positives = {i for i, f in zip(ids, fraud[test], strict=True) if f}
        k = next(int(name.removeprefix("precision_at_")) for name in fold if name.startswith("precision_at_"))
        q = quality(list(zip(ids, anomaly.tolist(), strict=True)), set(), positives, ks=(k,))
        fold["auc_isolation_forest"] = q.auc
        fold[f"precision_at_{k}_isolation_forest"] = q.precision_at_k.get(k)


def _share_before(history: Any, moment_ms: int) -> float:
    times = [p.event_time_ms for p in history.payments]
    return sum(t < moment_ms for t in times) / max(len(times), 1)


def open_mlflow(settings: Settings) -> Any:
    """The ``mlflow`` module, pointed at ``[features] mlflow_uri`` (tracking and registry)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no calls home from a data platform
    with warnings.catch_warnings():  # its own modules warn about their own type hints on import
        warnings.filterwarnings("ignore", message=".*type hint is inferred as AnyType", category=UserWarning)
        import mlflow
        import mlflow.pyfunc
        import mlflow.sklearn

    uri = settings.features.mlflow_uri or f"sqlite:///{settings.resolve('mlflow.db').absolute()}"
    if uri.startswith(("http://", "https://")) and settings.features.mlflow_password is not None:
        # the server's basic auth: MLflow's client reads its credentials from these variables only
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.features.mlflow_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.features.mlflow_password.get_secret_value()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow


def train_and_register(
    settings: Settings, data: TrainingSet, tested: Backtest, *, source: str
) -> dict[str, Any]:
    """Train on everything, log the run and register a new model version; what was logged."""
    mlflow = open_mlflow(settings)
    artifacts = settings.resolve("mlartifacts").absolute()
    if mlflow.get_experiment_by_name(MODEL_NAME) is None:
        mlflow.create_experiment(MODEL_NAME, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(MODEL_NAME)
    model = _model().fit(data.matrix(), data.fraud)
    fingerprint = data.fingerprint()
    with mlflow.start_run() as run:
        mlflow.log_params({**PARAMS, "features": len(MODEL_FEATURES), "rows": len(data.event_ids),
                           "fraud": int(data.fraud.sum()), "source": source})  # fmt: skip
        mlflow.set_tag("dataset_sha256", fingerprint)
        for fold in tested.folds:
            for name, value in fold.items():
                if name.startswith(("auc", "precision")) and value is not None:
                    mlflow.log_metric(f"backtest_{name}", value, step=fold["fold"])
        mlflow.log_metric(GATE_METRIC, tested.auc_min)
        mlflow.log_dict(reference_values(data), REFERENCE_ARTIFACT)
        mlflow.log_dict(reference_histograms(data.matrix()[:, : len(FEATURES)]), DRIFT_ARTIFACT)
        sample = data.matrix()[:5]
        signature = mlflow.models.infer_signature(sample, model.predict_proba(sample))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL_NAME,
                                        skops_trusted_types=TRUSTED_TYPES, signature=signature)  # fmt: skip
    version = str(info.registered_model_version)
    return {"run_id": run.info.run_id, "model": MODEL_NAME, "version": version, "dataset_sha256": fingerprint,
            GATE_METRIC: tested.auc_min}  # fmt: skip


def promote(settings: Settings, version: str, *, min_auc: float) -> dict[str, Any]:
    """Point the ``champion`` alias at ``version`` if its backtest's worst fold AUC reaches ``min_auc``.

    Raises:
        NotFoundError: no such version.
        TerminalError: the version failed the gate (the alias is left where it was).
    """
    mlflow = open_mlflow(settings)
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        found = client.get_model_version(MODEL_NAME, version)
    except MlflowException:
        raise NotFoundError(
            f"no version {version} of model {MODEL_NAME}; `dotjoin features train` makes one"
        ) from None
    metrics = client.get_run(found.run_id).data.metrics
    auc = metrics.get(GATE_METRIC)
    if auc is None or auc < min_auc:
        shown = "missing" if auc is None else f"{auc:.4f}"
        raise TerminalError(f"version {version} of {MODEL_NAME} not promoted: its backtest's worst fold AUC "
                            f"is {shown}, the gate is {min_auc}")  # fmt: skip
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    return {"model": MODEL_NAME, "alias": CHAMPION, "version": version, GATE_METRIC: auc}


def drift_references(settings: Settings, versions: list[str]) -> dict[str, dict[str, Any]]:
    """The frozen training histograms of each model version that has them (older versions do not)."""
    mlflow = open_mlflow(settings)
    client = mlflow.MlflowClient()
    out = {}
    for version in versions:
        try:
            run_id = client.get_model_version(MODEL_NAME, version).run_id
            out[version] = mlflow.artifacts.load_dict(f"runs:/{run_id}/{DRIFT_ARTIFACT}")
        except Exception as exc:  # MlflowException, OSError: no such version or artifact
            logger.warning("model version %s has no drift reference: %s", version, exc)
    return out


def run_train(
    settings: Settings,
    events: Path,
    labels: Path,
    *,
    fx: Path | None,
    folds: int = 4,
    merchants: Path | None = None,
) -> Any:
    """``dotjoin features train``: training set → backtest → MLflow run and model version; the run report.
    With ``merchants`` (the detector's reference data), the streaming detector's isolation forest is
    backtested on the same folds, and the check is that the new model beats it on every fold."""
    from dotjoin.platform.runs.report import start_run

    params = {"events": str(events), "labels": str(labels), "folds": folds,
              "merchants": str(merchants) if merchants else None}  # fmt: skip
    with start_run("features_train", settings, params=params) as run:
        data = training_set(events, labels, fx)
        run.count(input=len(data.event_ids), output=len(data.event_ids))
        tested = backtest(data, folds=folds)
        if merchants is not None:
            add_forest_baseline(tested, events, labels, fx, merchants)
        for fold in tested.folds:
            for name in ("auc", "precision_at_50"):
                if fold.get(name) is not None:
                    run.metric(f"fold{fold['fold']}_{name}", fold[name])
        logged = train_and_register(settings, data, tested, source=str(events))
        run.metric(GATE_METRIC, tested.auc_min)
        run.report.params.update({k: v for k, v in logged.items() if k != GATE_METRIC})
        detail = "; ".join(f"fold {f['fold']}: AUC {f['auc']}" for f in tested.folds)
        run.check("backtest folds scored", passed=len(tested.folds) == folds, observed=len(tested.folds),
                  expected=folds, detail=detail)  # fmt: skip
        if merchants is not None:
            for fold in tested.folds:
                run.metric(f"fold{fold['fold']}_auc_isolation_forest", fold["auc_isolation_forest"] or 0.0)
            pairs = [(f["fold"], f["auc"] or 0.0, f["auc_isolation_forest"] or 0.0) for f in tested.folds]
            wins = [ours > theirs for _, ours, theirs in pairs]
            run.check(
                "beats the streaming detector's isolation forest (AUC, every fold)", passed=all(wins),
                observed=sum(wins), expected=len(wins),
                detail="; ".join(f"fold {n}: {ours:.3f} vs {theirs:.3f}" for n, ours, theirs in pairs),
            )  # fmt: skip
    return run.report
