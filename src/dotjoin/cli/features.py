"""``dotjoin features list|backfill|parity|stream|get``: the feature store's definitions, its two
computations, and the online store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dotjoin.cli.output import OutputOption, emit_report, emit_rows

if TYPE_CHECKING:
    from dotjoin.platform.runs import RunReport

app = typer.Typer(
    help="Feature store: per-card and per-merchant aggregates, computed online (streaming) and offline "
    "(backfill), with their parity proven.\n\n"
    "Example: dotjoin payments simulate --out data/pay --eps 100 --duration 1800 && "
    "dotjoin features parity data/pay/events.jsonl --fx data/pay/fx_rates.csv",
    no_args_is_help=True,
)

HistoryArgument = Annotated[
    Path, typer.Argument(help="A recorded payments stream (JSON lines of message values).")
]
FxOption = Annotated[
    Path | None,
    typer.Option(
        "--fx", help="Exchange rates (CSV: currency,units_per_usd); default: fx_rates.csv beside the stream."
    ),
]


def _fx(history: Path, fx: Path | None) -> Path | None:
    beside = history.parent / "fx_rates.csv"
    return fx if fx is not None else (beside if beside.is_file() else None)


@app.command("list")
def list_features(output: OutputOption = "table") -> None:
    """The declared features: entity, aggregate, window or half-life, and whether parity is exact.

    Example: dotjoin features list --output json
    """
    from dotjoin.pipelines.features.definitions import FEATURES

    def span(ms: int | None) -> str:
        if ms is None:
            return ""
        for unit, size in (("d", 86_400_000), ("h", 3_600_000)):
            if ms % size == 0:
                return f"{ms // size}{unit}"
        return f"{ms // 60_000}m"

    rows = [
        {"feature": f.name, "entity": f.entity, "aggregate": f.function, "window": span(f.window_ms),
         "half_life": span(f.half_life_ms), "parity": "exact" if f.deterministic else "within 1e-9"}
        for f in FEATURES
    ]  # fmt: skip
    emit_rows(rows, output=output, title=f"{len(rows)} features")


@app.command()
def backfill(
    history: HistoryArgument,
    out: Annotated[Path, typer.Option("--out", help="Parquet file: event_id + every feature.")],
    fx: FxOption = None,
    as_known: Annotated[
        bool, typer.Option("--as-known", help="Only the payments that arrived before each one (file order).")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Every feature of every payment as of its own time (payments strictly before it), on DuckDB; with
    --as-known, only the payments that had arrived before it (what scoring saw: train on these).

    Example: dotjoin features backfill data/pay/events.jsonl --out data/pay/features.parquet
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.pipeline import run_backfill

    report = run_backfill(_settings(), history, fx=_fx(history, fx), out=out, as_known=as_known)
    emit_report(report, output, _backfill_summary)


def _backfill_summary(report: RunReport) -> str:
    c, m = report.counts, report.metrics
    return (f"{c.get('output', 0):,} payments' features in {m.get('backfill_s', 0):.1f} s; "
            f"{c.get('duplicates', 0):,} duplicates dropped, "
            f"{c.get('quarantined', 0):,} messages quarantined")  # fmt: skip


@app.command()
def parity(history: HistoryArgument, fx: FxOption = None, output: OutputOption = "table") -> None:
    """Replay a stream through the streaming state (scoring each payment before it joins), backfill the
    same points as known at their arrival, and compare: exit 1 on any difference.

    Example: dotjoin features parity data/pay/events.jsonl
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.pipeline import run_parity

    report = run_parity(_settings(), history, fx=_fx(history, fx))
    emit_report(report, output, _parity_summary)


def _parity_summary(report: RunReport) -> str:
    m = {k: int(v) for k, v in report.metrics.items() if k != "max_decay_relative_diff"}
    return (
        f"{report.counts.get('output', 0):,} points: {m.get('agreeing', 0):,} agree with the backfill as "
        f"known at arrival, {m.get('mismatched', 0):,} mismatched (largest decayed difference "
        f"{report.metrics.get('max_decay_relative_diff', 0):.1e} relative); {m.get('late_affected', 0):,} "
        f"missed a late payment, {m.get('late_differing', 0):,} of them differ from the as-happened backfill"
    )


@app.command("served-parity")
def served_parity(
    fx: Annotated[
        Path | None, typer.Option("--fx", help="Exchange rates (CSV: currency,units_per_usd).")
    ] = None,
    topic: Annotated[
        str, typer.Option("--topic", help="The payments topic the stream job reads.")
    ] = "payments",
    output: OutputOption = "table",
) -> None:
    """Recompute every feature vector POST /score served (the served-feature log) from the payments topic,
    as known at serving, and compare: exit 1 on any difference.

    Example: dotjoin features served-parity --fx data/pay/fx.csv
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.pipeline import run_served_parity

    report = run_served_parity(_settings(), fx=fx, topic=topic)
    emit_report(report, output, _served_summary)


def _served_summary(report: RunReport) -> str:
    m = {k: int(v) for k, v in report.metrics.items() if k not in ("max_decay_relative_diff", "parity_s")}
    return (
        f"{report.counts.get('input', 0):,} served vectors: {m.get('agreeing', 0):,} agree with the "
        f"backfill as known at serving, {m.get('mismatched', 0):,} mismatched; {m.get('stale', 0):,} "
        f"differ from it as happened (served before the stream job had the payments just before them)"
    )


@app.command()
def drift(
    window: Annotated[float, typer.Option("--window", help="Window of serving time, seconds.")] = 300.0,
    step: Annotated[float, typer.Option("--step", help="A window ends every this many seconds.")] = 60.0,
    min_rows: Annotated[int, typer.Option("--min-rows", help="Fewer served vectors: no window.")] = 200,
    threshold: Annotated[float, typer.Option("--threshold", help="PSI at or above it: drifted.")] = 0.2,
    output: OutputOption = "table",
) -> None:
    """PSI and KS of every feature in served traffic (the served-feature log) against the histograms its
    model was trained on, over sliding windows: exit 1 when a feature of the latest window drifted.

    Example: dotjoin features drift --window 300 --step 60   (then open /features in dotjoin serve)
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.pipeline import run_drift

    report = run_drift(_settings(), window_s=window, step_s=step, min_rows=min_rows, threshold=threshold)
    emit_report(report, output, _drift_summary)


def _drift_summary(report: RunReport) -> str:
    psi = {k.removeprefix("psi_"): v for k, v in report.metrics.items() if k.startswith("psi_")}
    if not psi:
        return f"{report.counts.get('input', 0):,} served vectors: too few for a window, nothing compared"
    worst = max(psi, key=psi.__getitem__)
    return (
        f"{int(report.metrics.get('windows', 0)):,} windows over {report.counts.get('input', 0):,} served "
        f"vectors; latest window's worst feature {worst} PSI {psi[worst]:.3f}"
    )


@app.command()
def stream(
    fx: Annotated[
        Path | None, typer.Option("--fx", help="Exchange rates (CSV: currency,units_per_usd); default: none.")
    ] = None,
    group: Annotated[str, typer.Option("--group", help="Consumer group.")] = "dotjoin-features",
    idle_exit: Annotated[
        float, typer.Option("--idle-exit", help="Stop after this many idle seconds (0: run until stopped).")
    ] = 10.0,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            "-e",
            help="embedded (in process) or spark (Spark Structured Streaming; stack profile).",
        ),
    ] = "embedded",
    output: OutputOption = "table",
) -> None:
    """Consume the payments topic into the online store (SQLite locally, Redis in the stack profile):
    every card's and merchant's state, exactly once.

    With --engine spark the same states are computed by Spark (its checkpoint under
    <state>/features/spark-checkpoint; needs pyspark, Java 17+ and Maven): it reads what the topic holds
    and stops, or with --idle-exit 0 runs a micro-batch every second until stopped.

    Example: dotjoin payments simulate --out pay --duration 60 --to-bus && dotjoin features stream
    --fx pay/fx_rates.csv
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.payments.history import read_usd_rates

    if engine not in ("embedded", "spark"):
        raise typer.BadParameter(f"must be embedded or spark, not {engine!r}", param_hint="--engine")
    rates = read_usd_rates(fx) if fx is not None else {}
    if engine == "spark":
        from dotjoin.pipelines.features.spark_stream import run_spark_stream

        report = run_spark_stream(
            _settings(), usd_rates=rates, trigger=1.0 if not idle_exit else "available_now"
        )
    else:
        from dotjoin.pipelines.features.stream import run_stream

        report = run_stream(_settings(), usd_rates=rates, group=group, idle_exit=idle_exit or None)
    emit_report(report, output, _stream_summary)


def _stream_summary(report: RunReport) -> str:
    c = report.counts
    return (
        f"{c.get('output', 0):,} payments into the online store in {report.metrics.get('seconds', 0):.1f} s; "
        f"{c.get('duplicates', 0):,} duplicates, {c.get('quarantined', 0):,} quarantined"
    )


@app.command()
def get(
    card: Annotated[str, typer.Option("--card", help="Card id.")],
    merchant: Annotated[str, typer.Option("--merchant", help="Merchant id.")],
    at: Annotated[
        str | None, typer.Option("--at", help="As of this time (ISO 8601, UTC; epoch ms also); default: now.")
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Every feature of a card and a merchant as of a time, from the online store (what scoring reads).

    Example: dotjoin features get --card card-000042 --merchant merch-0007 --at 2026-01-01T00:30:00
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.store import OnlineStore
    from dotjoin.pipelines.features.stream import NAMESPACE
    from dotjoin.platform.kv import open_kv

    t = _epoch_ms(at)
    with open_kv(_settings(), NAMESPACE) as kv:
        values = OnlineStore(kv).features_at(card_id=card, merchant_id=merchant, t=t)
    rows = [{"feature": name, "value": value} for name, value in values.items()]
    emit_rows(rows, output=output, title=f"card {card}, merchant {merchant} as of {t} ms", json_data=values)


def _epoch_ms(at: str | None) -> int:
    from datetime import UTC, datetime

    if at is None:
        return int(datetime.now(UTC).timestamp() * 1000)
    if at.isdigit():
        return int(at)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise typer.BadParameter(
            f"{at!r} is not an ISO 8601 time or epoch milliseconds", param_hint="--at"
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


@app.command()
def train(
    events: HistoryArgument,
    labels: Annotated[Path, typer.Option("--labels", help="Labels file (JSON lines: event_id, typology).")],
    fx: FxOption = None,
    folds: Annotated[int, typer.Option("--folds", min=1, help="Walk-forward backtest folds.")] = 4,
    merchants: Annotated[
        Path | None,
        typer.Option(
            "--merchants",
            help="Merchants CSV: backtest the streaming detector's isolation forest "
            "on the same folds (default: merchants.csv beside the stream, if there).",
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Train the fraud model on point-in-time features (as known at each payment's arrival), backtest it
    walk-forward in time (against the streaming detector's isolation forest when the merchants file is
    there), and register it in MLflow with its metrics and the dataset's fingerprint.

    Example: dotjoin features train data/pay/events.jsonl --labels data/pay/labels.jsonl
    """
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.train import run_train

    beside = events.parent / "merchants.csv"
    merchants = merchants if merchants is not None else (beside if beside.is_file() else None)
    report = run_train(_settings(), events, labels, fx=_fx(events, fx), folds=folds, merchants=merchants)
    emit_report(report, output, _train_summary)


def _train_summary(report: RunReport) -> str:
    p, m = report.params, report.metrics
    aucs = ", ".join(f"{v:.3f}" for k, v in sorted(m.items()) if k.endswith("_auc"))
    forest = ", ".join(f"{v:.3f}" for k, v in sorted(m.items()) if k.endswith("_auc_isolation_forest"))
    return (f"{p.get('model')} version {p.get('version')} registered (MLflow run {p.get('run_id')}); "
            f"backtest AUC per fold {aucs}; worst {m.get('backtest_auc_min', 0):.3f}"
            + (f"; the streaming detector's isolation forest {forest}" if forest else ""))  # fmt: skip


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The model version to make the champion.")],
    min_auc: Annotated[
        float, typer.Option("--min-auc", help="Gate: the backtest's worst fold AUC must reach this.")
    ] = 0.7,
    output: OutputOption = "table",
) -> None:
    """Point the model's `champion` alias at VERSION, if its backtest passed the gate (else exit 1).

    Example: dotjoin features promote 3 --min-auc 0.75
    """
    from dotjoin.cli.output import emit_json
    from dotjoin.cli.payments import _settings
    from dotjoin.pipelines.features.train import promote as promote_version

    done = promote_version(_settings(), version, min_auc=min_auc)
    if output == "json":
        emit_json(done)
        return
    typer.echo(f"{done['model']} version {done['version']} is the {done['alias']} "
               f"(backtest worst fold AUC {done['backtest_auc_min']:.3f} >= {min_auc})")  # fmt: skip
