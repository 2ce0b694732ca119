"""``dotjoin features backfill|parity|served-parity``: the feature store's batch runs.

Both read the stream as the live consumer parses it (contract violations go to the report's quarantine
count with their line), drop duplicate ``event_id`` s (first arrival counts) and convert amounts to US
cents with the exchange-rate file, so every input message is accounted for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dotjoin.config import Settings
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.parity import check_parity
from dotjoin.pipelines.features.served import read_served, served_parity
from dotjoin.pipelines.payments.contract import TOPIC_PAYMENTS
from dotjoin.pipelines.payments.history import History, read_recorded, read_usd_rates
from dotjoin.platform.runs.report import Run, start_run


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
