"""POST /score end to end at a fixed request rate, against `mlflow models serve` scoring the same model.

Setup (not timed): a simulated payments stream → `features stream` into the online store → `features
train` → promote → an API key; then `dotjoin serve` and `mlflow models serve` (the champion, MLflow's own
scoring server) run as processes on loopback. Both get the same open-loop load — requests sent at
``--rps`` on a fixed schedule for ``--seconds``, each timed from its scheduled send to its response, so a
slow server's queueing counts — from one asyncio client. dotjoin's requests fetch the card's and
merchant's features from the online store and score them; MLflow's carry the same feature vectors
(fetched beforehand), so its figure is the model stage alone; each rate runs both, one after the other.
The feature-fetch stage against Feast's feature server: benchmarks/feature_fetch.py.

Usage: .venv/bin/python benchmarks/score.py [--rps 100,500] [--seconds 20] [--online sqlite|redis]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _open_loop import free_port, open_loop, quantiles, wait_http

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def setup(state: Path, env: dict[str, str]) -> tuple[str, list[dict[str, Any]], list[list[float | None]]]:
    """Stream, online store, champion and key; the requests and their feature vectors."""
    from dotjoin.config import load_settings
    from dotjoin.pipelines.features.definitions import MODEL_FEATURES, request_features, usd_cents
    from dotjoin.pipelines.features.store import OnlineStore
    from dotjoin.pipelines.features.stream import NAMESPACE, run_stream
    from dotjoin.pipelines.features.train import backtest, promote, train_and_register, training_set
    from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
    from dotjoin.platform.api_keys import KeyRing
    from dotjoin.platform.bus import open_bus
    from dotjoin.platform.kv import open_kv
    from dotjoin.simulate.payments.output import produce, write_fx_rates, write_log
    from dotjoin.simulate.payments.stream import generate

    settings = load_settings(profile="local", cwd=state, env=env)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    sim = generate(seed=21, eps=200, duration_s=300, start=start, fraud_rate=0.02)
    write_log(sim, state / "pay")
    fx = write_fx_rates(state / "pay" / "fx.csv")
    with open_bus(settings).producer() as producer:
        produce(sim, producer, eps=0)
    rates = read_usd_rates(fx)
    run_stream(settings, usd_rates=rates, idle_exit=2.0)
    data = training_set(state / "pay" / "events.jsonl", state / "pay" / "labels.jsonl", fx)
    promote(settings, train_and_register(settings, data, backtest(data, folds=2), source="bench")["version"],
            min_auc=0.0)  # fmt: skip
    key = KeyRing(settings.state_dir).add("bench", ("score",))
    payments = read_recorded(state / "pay" / "events.jsonl").payments[::7][:5_000]
    at = start + dt.timedelta(seconds=301)
    now = int(at.timestamp() * 1000)
    requests = [
        {"event_id": p.event_id, "card_id": p.card_id, "merchant_id": p.merchant_id, "amount": p.amount,
         "currency": p.currency, "event_time": at.isoformat()}
        for p in payments
    ]  # fmt: skip
    with open_kv(settings, NAMESPACE) as kv:
        store = OnlineStore(kv)
        vectors = []
        for r in requests:  # the model's inputs, as POST /score computes them
            values = store.features_at(card_id=r["card_id"], merchant_id=r["merchant_id"], t=now)
            inputs = values | request_features(usd_cents(r["amount"], r["currency"], rates), values)
            vectors.append([inputs[name] for name in MODEL_FEATURES])
    return key, requests, vectors


def encoded(bodies: list[Any]) -> list[bytes]:
    return [json.dumps(body).encode() for body in bodies]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rps", default="100,500", help="request rates, comma-separated")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--online", choices=("sqlite", "redis"), default="sqlite")
    args = parser.parse_args()
    rates = [float(r) for r in args.rps.split(",")]
    env = {"DOTJOIN__FEATURES__SCORE_RATE_PER_S": "100000", "DOTJOIN__FEATURES__SCORE_BURST": "100000",
           "DOTJOIN__FEATURES__ONLINE": args.online, "MLFLOW_DISABLE_TELEMETRY": "true"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dotjoin-score-") as tmp:
        state = Path(tmp)
        if args.online == "redis":  # the stack's Redis and its password
            from dotjoin.config import load_settings

            secret = load_settings(profile="stack", cwd=REPO).redis.password
            env["DOTJOIN__REDIS__PASSWORD"] = secret.get_secret_value() if secret else ""
        env["DOTJOIN__FEATURES__FX_RATES"] = str(state / "pay" / "fx.csv")  # the stream job's rates
        started = time.perf_counter()
        key, requests, vectors = setup(state, env)
        print(f"setup {time.perf_counter() - started:.0f} s: {len(requests):,} distinct requests", flush=True)
        ours, theirs = free_port(), free_port()
        child_env = {**os.environ, **env, "PATH": f"{BIN}:{os.environ['PATH']}",
                     "MLFLOW_TRACKING_URI": f"sqlite:///{state / '.dotjoin' / 'mlflow.db'}"}  # fmt: skip
        quiet: dict[str, Any] = {"cwd": state, "env": child_env, "stdout": subprocess.DEVNULL,
                                 "stderr": subprocess.DEVNULL}  # fmt: skip
        champion = "models:/dotjoin-payments-features@champion"
        servers = [
            subprocess.Popen([str(BIN / "dotjoin"), "-q", "serve", "--port", str(ours)], **quiet),
            subprocess.Popen(
                [
                    str(BIN / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    champion,
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(theirs),
                ],
                **quiet,
            ),
        ]
        try:
            wait_http(f"http://127.0.0.1:{ours}/healthz")
            wait_http(f"http://127.0.0.1:{theirs}/ping")
            scoring = encoded(requests)
            warm, _ = asyncio.run(open_loop(f"http://127.0.0.1:{ours}/score", scoring, 50, 2,
                                            {"X-API-Key": key}))  # fmt: skip
            assert warm, "no warm-up responses"
            contenders = [
                ("dotjoin POST /score (features + model)", f"http://127.0.0.1:{ours}/score", scoring,
                 {"X-API-Key": key}),
                ("mlflow models serve (model only)", f"http://127.0.0.1:{theirs}/invocations",
                 encoded([{"inputs": [v]} for v in vectors]), {}),
            ]  # fmt: skip
            results: dict[float, list[dict[str, float]]] = {}
            for rps in rates:
                for label, url, bodies, headers in contenders:
                    latencies, errors = asyncio.run(open_loop(url, bodies, rps, args.seconds, headers))
                    if errors:
                        print(f"  {errors} of {len(latencies)} requests failed", flush=True)
                    q = quantiles(latencies)
                    results.setdefault(rps, []).append(q)
                    shown = ", ".join(f"{name} {q[name]:.2f} ms" for name in ("p50", "p95", "p99", "max"))
                    print(f"  {label}: {shown} at {rps:.0f} requests/s for {args.seconds:.0f} s", flush=True)
            metrics = httpx.get(f"http://127.0.0.1:{ours}/metrics").text
            total = {m.group(1) + m.group(2): float(m.group(3)) for m in re.finditer(
                r'^dotjoin_score_seconds_(sum|count)\{stage="(\w+)"\} (\S+)$', metrics, re.M)}  # fmt: skip
            stages = {stage: total[f"sum{stage}"] / total[f"count{stage}"] * 1e3
                      for stage in ("features", "model", "total")}  # fmt: skip
            print("  dotjoin's stages, mean over every request: "
                  + ", ".join(f"{stage} {ms:.3f} ms" for stage, ms in stages.items()))  # fmt: skip
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    for rps, (ours_q, theirs_q) in results.items():
        print(f"HEADLINE score at {rps:.0f}/s ({args.online}): dotjoin p99 {ours_q['p99']:.2f} ms end to end "
              f"(target 10 ms); mlflow models serve p99 {theirs_q['p99']:.2f} ms for the model alone: "
              f"{theirs_q['p99'] / ours_q['p99']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
