"""``dotjoin payments simulate|train|replay|detect``: the streaming fraud detector and its simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dotjoin.cli.output import OutputOption, check_format, console, emit_json, emit_report, lit

if TYPE_CHECKING:
    from dotjoin.config import Settings
    from dotjoin.pipelines.payments.history import Reference
    from dotjoin.platform.runs import RunReport

app = typer.Typer(
    help="Realtime payments fraud detection: simulate a stream, train, replay, detect.\n\n"
    "Example: dotjoin payments simulate --out data/pay --eps 500 --duration 600 && "
    "dotjoin payments train --history data/pay/events.jsonl --labels data/pay/labels.jsonl "
    "--merchants data/pay/merchants.csv",
    no_args_is_help=True,
)

MerchantsOption = Annotated[
    Path | None,
    typer.Option("--merchants", help="Merchants reference table (CSV: merchant_id,name,category,...,risk)."),
]
FxOption = Annotated[
    Path | None,
    typer.Option(
        "--fx", help="Exchange rates (CSV: currency,units_per_usd); default: fx_rates.csv beside --merchants."
    ),
]
LabelsOption = Annotated[
    Path | None, typer.Option("--labels", help="Labels file (JSON lines: event_id, typology, scenario_id).")
]
ModelsOption = Annotated[
    Path | None, typer.Option("--models", help="Models file; default: <state>/models/payments.pickle.")
]
RulesOnlyOption = Annotated[
    bool, typer.Option("--rules-only", help="Score with the rules alone (no models).")
]
RulesOption = Annotated[
    Path | None, typer.Option("--rules", help="Rules file (YAML); default: the shipped rules.")
]


def _reference(merchants: Path | None, fx: Path | None) -> Reference:
    from dotjoin.pipelines.payments.history import Reference

    if fx is None and merchants is not None and (merchants.parent / "fx_rates.csv").is_file():
        fx = merchants.parent / "fx_rates.csv"
    return Reference.read(merchants, fx)


def _settings() -> Settings:
    from dotjoin.cli.main import STATE

    return STATE.settings


@app.command()
def simulate(
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory for events.jsonl, labels.jsonl, merchants.csv, manifest.json."),
    ],
    eps: Annotated[float, typer.Option("--eps", min=1, help="Payments per second (mean).")] = 500,
    duration: Annotated[float, typer.Option("--duration", min=1, help="Seconds of stream.")] = 600,
    seed: Annotated[int, typer.Option("--seed", help="Same seed and arguments, same bytes.")] = 1,
    fraud_rate: Annotated[
        float, typer.Option("--fraud-rate", min=0, max=0.5, help="Share of fraud payments.")
    ] = 0.01,
    difficulty: Annotated[
        float,
        typer.Option("--difficulty", min=0, max=1, help="0 = fraud stands out, 1 = hardest to separate."),
    ] = 0.3,
    start: Annotated[
        datetime | None, typer.Option("--start", help="Event time of the first payment (UTC); default: now.")
    ] = None,
    to_bus: Annotated[
        bool, typer.Option("--to-bus", help="Also send the stream to the profile's bus, paced to --eps.")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Write a labelled payments stream (six fraud typologies, look-alikes, stream defects) to files.

    Example: dotjoin payments simulate --out data/pay --eps 1000 --duration 600 --difficulty 0.5
    """
    from dotjoin.simulate.payments.output import produce, write_log
    from dotjoin.simulate.payments.stream import generate

    fmt = check_format(output)
    begin = (start or datetime.now(UTC)).replace(tzinfo=(start.tzinfo if start and start.tzinfo else UTC))
    sim = generate(
        seed=seed, eps=eps, duration_s=duration, start=begin, fraud_rate=fraud_rate, difficulty=difficulty
    )
    manifest = write_log(sim, out)
    if to_bus:
        from dotjoin.platform.bus import open_bus

        bus = open_bus(_settings())
        with bus.producer() as producer:
            produce(sim, producer, eps=eps)
    counts = manifest.counts
    if fmt == "json":
        emit_json(
            manifest.model_dump(exclude={"event_ids", "defect_event_ids", "lookalike_event_ids", "scenarios"})
        )
        return
    console.print(
        lit(
            f"wrote {counts.messages:,} messages ({counts.events:,} payments, {counts.fraud:,} fraud, "
            f"{counts.malformed:,} malformed) to {out}"
        ),
        highlight=False,
    )
    for typology, n in sorted(counts.by_typology.items()):
        console.print(lit(f"  {typology:22s} {n:7,} payments"), highlight=False)


@app.command()
def train(
    history: Annotated[
        Path, typer.Option("--history", help="Labelled payments: JSON lines, CSV or Parquet.")
    ],
    merchants: MerchantsOption = None,
    fx: FxOption = None,
    labels: LabelsOption = None,
    models: ModelsOption = None,
    validation_share: Annotated[
        float,
        typer.Option("--validation-share", min=0.05, max=0.5, help="Latest share of the history held out."),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    output: OutputOption = "table",
) -> None:
    """Fit the classifier and the isolation forest on a labelled history (time split, no look-ahead).

    The label is an is_fraud column (1/0, true/false) or a --labels file. Features are computed by the
    same code the live detector runs, in event order.

    Example: dotjoin payments train --history pay/events.jsonl --labels pay/labels.jsonl
    --merchants pay/merchants.csv
    """
    from dotjoin.pipelines.payments.pipeline import train as run_train

    report, path = run_train(
        _settings(), history, reference=_reference(merchants, fx), labels=labels, models_path=models,
        validation_share=validation_share, seed=seed,
    )  # fmt: skip
    emit_report(report, output, lambda r: _train_summary(r, path))


def _train_summary(report: RunReport, path: Path) -> str:
    m = report.metrics
    return (
        f"trained on {report.counts.get('output', 0):,} payments ({int(m.get('fraud_rows', 0)):,} fraud); "
        f"validation AUC {m.get('validation_auc', float('nan')):.4f}, "
        f"precision {m.get('validation_precision', 0):.3f}, "
        f"recall {m.get('validation_recall', 0):.3f}; saved {path}"
    )


@app.command()
def replay(
    events: Annotated[
        Path, typer.Argument(help="A recorded stream (JSON lines of message values) or a history file.")
    ],
    merchants: MerchantsOption = None,
    fx: FxOption = None,
    labels: LabelsOption = None,
    models: ModelsOption = None,
    rules: RulesOption = None,
    rules_only: RulesOnlyOption = False,
    alerts: Annotated[
        Path | None, typer.Option("--alerts", help="Write the alerts here (JSON lines).")
    ] = None,
    warm_up: Annotated[
        Path | None,
        typer.Option(
            "--warm-up",
            help="An earlier stream (e.g. the training history) that builds the per-card state first, "
            "as a detector that ran over it holds; nothing of it is scored.",
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Score a recorded stream; with labels, report precision, recall, AUC, precision@k per typology.

    Example: dotjoin payments replay pay/live/events.jsonl --labels pay/live/labels.jsonl
    --merchants pay/live/merchants.csv --warm-up pay/hist/events.jsonl
    """
    from dotjoin.pipelines.payments.pipeline import replay_file

    report, _ = replay_file(
        _settings(), events, reference=_reference(merchants, fx), labels=labels, models_path=models,
        rules_path=rules, rules_only=rules_only, alerts_out=alerts, warm_up=warm_up,
    )  # fmt: skip
    emit_report(report, output, _replay_summary)


def _replay_summary(report: RunReport) -> str:
    m = report.metrics
    text = (
        f"scored {report.counts.get('output', 0):,} payments at {m.get('events_per_s', 0):,.0f}/s: "
        f"{int(m.get('alerts', 0)):,} alerts, {report.counts.get('quarantined', 0):,} dead letters, "
        f"{int(m.get('late', 0)):,} late, {report.counts.get('duplicates', 0):,} duplicates"
    )
    if "precision" in m:
        auc = m.get("auc")
        text += f"; precision {m['precision']:.3f}, recall {m['recall']:.3f}" + (
            f", AUC {auc:.4f}" if auc else ""
        )
        per = {k.removeprefix("recall_"): v for k, v in m.items() if k.startswith("recall_")}
        text += "\nrecall by typology: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(per.items()))
    return text


@app.command()
def detect(
    merchants: MerchantsOption = None,
    fx: FxOption = None,
    models: ModelsOption = None,
    rules: RulesOption = None,
    rules_only: RulesOnlyOption = False,
    idle: Annotated[
        float | None, typer.Option("--idle", help="Stop after this many seconds without a message.")
    ] = None,
    max_seconds: Annotated[float | None, typer.Option("--max-seconds", help="Stop after this long.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help="Serve Prometheus metrics on 127.0.0.1:PORT."),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Consume the payments topic of the profile's bus, alert into payment_alerts and the alerts topic.

    Restartable: state and offsets are checkpointed together, so a kill -9 and a restart leave the
    alerts table exactly as an uninterrupted run. The live dashboard is the /payments page of
    `dotjoin serve`.

    Example: dotjoin payments detect --merchants pay/merchants.csv --idle 10
    """
    from dotjoin.pipelines.payments.pipeline import detect as run_detect

    report = run_detect(
        _settings(), reference=_reference(merchants, fx), models_path=models, rules_path=rules,
        rules_only=rules_only, idle_s=idle, max_s=max_seconds, metrics_port=metrics_port,
    )  # fmt: skip
    emit_report(report, output, _detect_summary)


def _detect_summary(r: RunReport) -> str:
    text = (
        f"consumed {r.counts.get('input', 0):,} messages: {int(r.metrics.get('alerts', 0)):,} alerts, "
        f"{r.counts.get('quarantined', 0):,} dead letters, {int(r.metrics.get('late', 0)):,} late"
    )
    if "spark_start_s" in r.metrics:
        text += f" (Spark start {r.metrics['spark_start_s']} s, query {r.metrics.get('query_s', 0)} s)"
    return text


@app.command("spark-detect")
def spark_detect(
    merchants: MerchantsOption = None,
    fx: FxOption = None,
    models: ModelsOption = None,
    rules: RulesOption = None,
    rules_only: RulesOnlyOption = False,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            min=0.1,
            help="Live: a micro-batch every so many seconds (default: read what the topic holds, then stop).",
        ),
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", help="Live: stop after this long.")
    ] = None,
    output: OutputOption = "table",
) -> None:
    """The detector on Spark Structured Streaming: the stack's Kafka topic, state per card, alerts into
    payment_alerts (upserted by event id) and the alerts topic; the same alerts as `payments detect`.

    Restartable from the Spark checkpoint (<state>/payments/spark-checkpoint). Needs pyspark
    (pip install 'dotjoin[spark]'), Java 17+ and Maven (the Kafka connector jars, fetched once).

    Example: dotjoin --profile stack payments spark-detect --merchants pay/merchants.csv
    """
    from dotjoin.pipelines.payments.spark_job import detect_spark

    report = detect_spark(
        _settings(), reference=_reference(merchants, fx), models_path=models, rules_path=rules,
        rules_only=rules_only, trigger="available_now" if every is None else every, max_s=max_seconds,
    )  # fmt: skip
    emit_report(report, output, _detect_summary)
