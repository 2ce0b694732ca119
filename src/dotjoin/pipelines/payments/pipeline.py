"""The payments pipelines as runs: train, replay (score a recorded stream) and detect (the live runner).

Each writes a run report. Row accounting of a replay or a live run:
``input (messages) == output (scored + late, routed) + quarantined (dead letters) + duplicates``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import start_http_server

from dotjoin.config import Settings
from dotjoin.pipelines.payments.contract import TOPIC_LABELS
from dotjoin.pipelines.payments.detector import Detector
from dotjoin.pipelines.payments.history import History, Reference, read_history, read_labels, read_recorded
from dotjoin.pipelines.payments.models import FraudModels
from dotjoin.pipelines.payments.monitor import Monitor
from dotjoin.pipelines.payments.offline import Replay, replay, save_alerts, train_models
from dotjoin.pipelines.payments.rules import load_rules
from dotjoin.pipelines.payments.runner import Runner
from dotjoin.pipelines.payments.sinks import ALERTS_CONTRACT, AlertLake, alerts_lineage
from dotjoin.platform.bus import open_bus
from dotjoin.platform.quality.checks import check_table
from dotjoin.platform.runs import RunReport, start_run
from dotjoin.platform.warehouse import open_warehouse

logger = logging.getLogger(__name__)

MODELS_PATH = "models/payments.pickle"  # under the state directory
STATUS_PATH = "payments/status.json"  # the live detector's status, read by the /payments page
CHECKPOINT_DIR = "payments/checkpoint"  # the live detector's state and offsets (runner.CheckpointStore)


def default_models(settings: Settings) -> Path:
    return settings.resolve(MODELS_PATH)


def _labelled(history: History, labels: Path | None) -> History:
    if labels is not None:
        typologies = read_labels(labels)
        history.typologies = typologies
        history.fraud = [p.event_id in typologies for p in history.payments]
    return history


def _history(path: Path, labels: Path | None) -> History:
    """A recorded stream (``.jsonl`` of message values) or any labelled history file."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        recorded = read_recorded(path)
        if recorded.payments or not recorded.rejected:
            return _labelled(recorded, labels)
    return read_history(path, labels)


def train(
    settings: Settings,
    history_path: Path,
    *,
    reference: Reference,
    labels: Path | None = None,
    models_path: Path | None = None,
    validation_share: float = 0.2,
    seed: int = 0,
) -> tuple[RunReport, Path]:
    """Fit the models on a labelled history (time split) and save them (``models_path``)."""
    target = models_path or default_models(settings)
    params = {"history": str(history_path), "labels": str(labels) if labels else None, "models": str(target)}
    with start_run("payments_train", settings, params=params) as run:
        history = _history(history_path, labels)
        models = train_models(history, reference, validation_share=validation_share, seed=seed)
        models.save(target)
        r = models.report
        run.count(input=len(history.payments) + len(history.rejected), output=r.rows,
                  quarantined=len(history.rejected), duplicates=len(history.payments) - r.rows)  # fmt: skip
        run.check_accounting()
        for name, value in r.validation.items():
            run.metric(f"validation_{name}", value)
        run.metric("fraud_rows", r.fraud_rows)
        run.output("models", rows=r.rows, location=str(target))
    return run.report, target


def replay_file(
    settings: Settings,
    path: Path,
    *,
    reference: Reference,
    labels: Path | None = None,
    models_path: Path | None = None,
    rules_path: Path | None = None,
    rules_only: bool = False,
    alerts_out: Path | None = None,
    warm_up: Path | None = None,
) -> tuple[RunReport, Replay]:
    """Score a recorded stream with the trained models (unless ``rules_only``) and the rules; with
    ``warm_up``, from the detector state an earlier stream leaves (see :func:`.offline.replay`)."""
    models = None if rules_only else FraudModels.load(models_path or default_models(settings))
    params = {"input": str(path), "rules_only": rules_only, "labels": str(labels) if labels else None,
              "warm_up": str(warm_up) if warm_up else None}  # fmt: skip
    with start_run("payments_replay", settings, params=params) as run:
        history = _history(path, labels)
        earlier = _history(warm_up, None) if warm_up is not None else None
        out = replay(history, reference, load_rules(rules_path), models, warm_up=earlier)
        c = out.counters
        run.count(input=c.scored + c.late + c.duplicates + len(out.dead_letters), output=c.scored + c.late,
                  quarantined=len(out.dead_letters), duplicates=c.duplicates)  # fmt: skip
        run.check_accounting()
        run.metric("events_per_s", round(out.events_per_s, 1))
        run.metric("late", c.late)
        run.metric("alerts", c.alerts)
        for rule, n in sorted(c.by_rule.items()):
            run.metric(f"alerts_{rule}", n)
        if out.quality is not None:
            q = out.quality
            for name in ("precision", "recall", "auc"):
                value = getattr(q, name)
                if value is not None:
                    run.metric(name, value)
            for k, value in q.precision_at_k.items():
                run.metric(f"precision_at_{k}", value)
            for typology, value in q.recall_by_typology.items():
                run.metric(f"recall_{typology}", value)
        if alerts_out is not None:
            save_alerts(out.alerts, alerts_out)
            run.output("alerts", rows=len(out.alerts), location=str(alerts_out))
    return run.report, out


def detect(
    settings: Settings,
    *,
    reference: Reference,
    models_path: Path | None = None,
    rules_path: Path | None = None,
    rules_only: bool = False,
    idle_s: float | None = None,
    max_s: float | None = None,
    metrics_port: int | None = None,
    checkpoint: Path | None = None,
) -> RunReport:
    """Run the embedded runner on the profile's bus until the topic is idle ``idle_s`` (or ``max_s``);
    with ``metrics_port``, Prometheus metrics on http://127.0.0.1:<port>/metrics meanwhile.
    ``checkpoint``: the runner's state directory (default ``<state>/payments/checkpoint``)."""
    models = None if rules_only else FraudModels.load(models_path or default_models(settings))
    detector = Detector(reference.merchants, load_rules(rules_path), models, usd_rates=reference.usd_rates)
    with start_run("payments_detect", settings, params={"rules_only": rules_only}) as run:
        bus = open_bus(settings)
        with open_warehouse(settings) as wh:
            monitor = Monitor(settings.resolve(STATUS_PATH))
            if metrics_port is not None:
                start_http_server(metrics_port, addr="127.0.0.1", registry=monitor.registry)
            lake = AlertLake(settings)
            state = checkpoint or settings.resolve(CHECKPOINT_DIR)
            runner = Runner(bus, wh, detector, checkpoint=state, monitor=monitor, lake=lake,
                            labels_topic=TOPIC_LABELS)  # fmt: skip
            try:
                stats = runner.run(idle_s=idle_s, max_s=max_s)
            finally:
                lake.close()
            check_table(run, wh, ALERTS_CONTRACT)
        run.count(input=stats.consumed, output=stats.consumed - stats.dead_letters - stats.duplicates,
                  quarantined=stats.dead_letters, duplicates=stats.duplicates)  # fmt: skip
        run.check_accounting()
        run.metric("alerts", stats.alerts)
        run.metric("late", stats.late)
        run.metric("checkpoints", stats.checkpoints)
        alerts_lineage(run, stats.alerts)
        quality = monitor.quality()
        if quality is not None:  # against the labels topic, when a labelled source feeds it
            for name in ("precision", "recall"):
                if quality[name] is not None:
                    run.metric(name, quality[name])
    return run.report
