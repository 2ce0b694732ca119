"""``dotjoin features backfill|parity|served-parity|drift``: the feature store's batch runs.

Both read the stream as the live consumer parses it (contract violations go to the report's quarantine
count with their line), drop duplicate ``event_id`` s (first arrival counts) and convert amounts to US
cents with the exchange-rate file, so every input message is accounted for.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dotjoin.config import Settings
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.drift import DRIFT_STATUS, PSI_ALERT, dumps, status, windows
from dotjoin.pipelines.features.parity import check_parity
from dotjoin.pipelines.features.served import read_served, served_parity
from dotjoin.pipelines.payments.contract import TOPIC_PAYMENTS
from dotjoin.pipelines.payments.history import History, read_recorded, read_usd_rates
from dotjoin.platform.runs.report import Run, start_run

logger = logging.getLogger(__name__)


def _read(run: Run, path: Path, fx: Path | None) -> tuple[History, dict[str, float]]:
    history = read_recorded(path)
    run.count(input=len(history.payments) + len(history.rejected), quarantined=len(history.rejected))
    return history, read_usd_rates(fx) if fx is not None else {}


def run_backfill(
    settings: Settings, path: Path, *, fx: Path | None, out: Path, as_known: bool = False
) -> Any:
    """Every feature of every payment of the stream as of its own time, to Parquet at ``out``; with
    ``as_known``, over the payments that arrived before it (the file's order is the arrival order)."""
    params = {"history": str(path), "out": str(out), "as_known": as_known}
    with start_run("features_backfill", settings, params=params) as run:
        history, rates = _read(run, path, fx)
        ids, rows, duplicates = distinct_rows(history.payments, rates)
        run.count(duplicates=duplicates)
        started = time.perf_counter()
        features = backfill(*as_tables(ids, rows, arrival=as_known))
        run.metric("backfill_s", time.perf_counter() - started)
        features = features.rename_columns(["event_id", *(f.name for f in FEATURES)])
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        pq.write_table(features, partial)
        partial.replace(out)  # readers never see half a file
        run.count(output=features.num_rows)
        run.output("payment features", rows=features.num_rows, location=str(out))
        run.check_accounting()
    return run.report


def run_parity(settings: Settings, path: Path, *, fx: Path | None) -> Any:
    """Replay the stream online (as served) and backfill the same points: the parity report as checks."""
    with start_run("features_parity", settings, params={"history": str(path)}) as run:
        history, rates = _read(run, path, fx)
        started = time.perf_counter()
        report = check_parity(history.payments, rates)
        run.metric("parity_s", time.perf_counter() - started)
        run.count(output=report.points, duplicates=report.duplicates)
        for name in ("agreeing", "late_affected", "late_differing", "mismatched"):
            run.metric(name, getattr(report, name))
        run.metric("max_decay_relative_diff", report.max_decay_relative_diff)
        run.check_accounting()
        run.check(
            "online = offline (as known at arrival)", passed=report.mismatched == 0,
            observed=report.mismatched, expected=0,
            detail=f"{report.agreeing:,} of {report.points:,} points agree (windowed exactly, decayed within "
            f"1e-9); {report.late_affected:,} missed a late payment, {report.late_differing:,} of them "
            "differ from the as-happened backfill"
            + (f"; first mismatches: {' | '.join(report.examples)}" if report.examples else ""),
        )  # fmt: skip
    return run.report


def run_served_parity(settings: Settings, *, fx: Path | None, topic: str = TOPIC_PAYMENTS) -> Any:
    """Recompute every logged served vector from the payments topic, as known at serving: 0 differences."""
    directory = settings.resolve(settings.features.served_log or "features/served")
    with start_run(
        "features_served_parity", settings, params={"served_log": str(directory), "topic": topic}
    ) as run:
        served = read_served(directory)
        run.count(input=served.num_rows)
        started = time.perf_counter()
        report = served_parity(settings, served, read_usd_rates(fx) if fx is not None else {}, topic=topic)
        run.metric("parity_s", time.perf_counter() - started)
        run.count(output=report.agreeing + report.mismatched)
        for name in ("agreeing", "mismatched", "stale", "states", "payments", "duplicates", "quarantined"):
            run.metric(name, getattr(report, name))
        run.metric("max_decay_relative_diff", report.max_decay_relative_diff)
        run.check_accounting()
        run.check(
            "served = offline (as known at serving)", passed=report.mismatched == 0,
            observed=report.mismatched, expected=0,
            detail=f"{report.agreeing:,} of {report.vectors:,} served vectors agree with the backfill over "
            f"the payments their state held (windowed exactly, decayed within 1e-9), from {report.states:,} "
            f"states; {report.stale:,} differ from the backfill as happened (payments before them the stream "
            f"job had not applied yet)"
            + (f"; first mismatches: {' | '.join(report.examples)}" if report.examples else ""),
        )  # fmt: skip
    return run.report


def run_drift(
    settings: Settings,
    *,
    window_s: float = 300.0,
    step_s: float = 60.0,
    min_rows: int = 200,
    threshold: float = PSI_ALERT,
) -> Any:
    """PSI/KS of every feature over sliding windows of served traffic against each model version's
    training histograms; the latest window of the newest version is the alert: a failed check."""
    directory = settings.resolve(settings.features.served_log or "features/served")
    params = {"served_log": str(directory), "window_s": window_s, "step_s": step_s, "min_rows": min_rows,
              "threshold": threshold}  # fmt: skip
    with start_run("features_drift", settings, params=params) as run:
        from dotjoin.pipelines.features.train import drift_references

        served = read_served(directory)
        versions = sorted(set(served.column("model_version").to_pylist()), key=_version_order)
        references = drift_references(settings, versions)
        compared = sum(v in references for v in served.column("model_version").to_pylist())
        run.count(input=served.num_rows, output=compared, quarantined=served.num_rows - compared)
        found = windows(served, references, window_ms=int(window_s * 1000), step_ms=int(step_s * 1000),
                        min_rows=min_rows)  # fmt: skip
        run.metric("windows", len(found))
        out = settings.resolve(DRIFT_STATUS)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(dumps(status(found, threshold)))
        partial.replace(out)
        run.output("drift windows", rows=len(found), location=str(out))
        run.check_accounting()
        if not found:
            logger.warning(
                "drift: no window of %s s held %d served vectors; nothing compared", window_s, min_rows
            )
            return run.report
        latest = max(found, key=lambda w: (_version_order(w.model_version), w.end_ms))
        for name, value in latest.psi.items():
            run.metric(f"psi_{name}", value)
        drifted = sorted((v, k) for k, v in latest.psi.items() if v >= threshold)[::-1]
        run.check(
            f"no feature drifted (PSI < {threshold}, latest window)", passed=not drifted,
            observed=round(latest.worst[1], 4), expected=f"< {threshold}",
            detail=f"model {latest.model_version}, {latest.rows:,} vectors served in the {window_s:.0f} s to "
            f"{latest.end_ms}: " + (", ".join(f"{k} PSI {v:.3f}" for v, k in drifted) if drifted
                                    else f"worst {latest.worst[0]} PSI {latest.worst[1]:.3f}"),
        )  # fmt: skip
    return run.report


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)
