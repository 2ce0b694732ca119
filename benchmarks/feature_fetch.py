"""Online feature fetch: Feast's feature server (`feast serve`) against dotjoin's online store, same features.

Issue 13's feature-fetch baseline. Setup (not timed), on the stack's services: a simulated payments stream
(ending a minute ago) → dotjoin's per-entity states into Redis (``OnlineStore``, its own namespace) and,
for Feast, the backfill of every card and merchant as of the stream's end → the Feast source table in
PostgreSQL → ``apply`` → ``materialize-incremental`` into the same Redis (its own project). Before timing,
Feast's answers for a sample of entities are checked against dotjoin's (all 36 features).

Then each contender gets the same open-loop load — request n due at n / rps, for ``--seconds``, latency
from its due time to its answer, so queueing counts — over the same card/merchant pairs:

* ``feast serve`` — ``POST /get-online-features`` for the 36 features of one card and one merchant, over
  HTTP on loopback (``.venv-feast``: gunicorn with one uvicorn worker, access log off, ``--max-requests
  0`` so the worker is not recycled mid-run), from an aiohttp client;
* ``dotjoin in process`` — ``OnlineStore.features_at`` (one ``MGET`` of two keys, every feature evaluated
  at the time asked) called in this process: **no HTTP**, so not like for like with the above;
* ``dotjoin over HTTP`` — the same call behind a bare FastAPI route (benchmark-only; uvicorn, one
  worker, uvloop and httptools), from the same client: like for like with ``feast serve``.

The ``/score`` route's own feature-fetch stage is reported by ``benchmarks/score.py``.

Usage: .venv/bin/python benchmarks/feature_fetch.py [--rps 100,300] [--seconds 20]   (needs make feast,
       make services: PostgreSQL and Redis)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _baselines import headline, machine
from _open_loop import free_port, open_loop, quantiles, wait_http

from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.features import feast_repo
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.online import OnlineFeatures
from dotjoin.pipelines.features.store import OnlineStore
from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
from dotjoin.platform.kv import open_kv
from dotjoin.simulate.payments.output import write_fx_rates, write_log
from dotjoin.simulate.payments.stream import generate

REPO = Path(__file__).resolve().parents[1]
FEAST_BIN = REPO / ".venv-feast" / "bin"
FEAST_OPS = Path(__file__).with_name("_feast_ops.py")
VIEWS = {"card": "card_features", "merchant": "merchant_features"}
REFS = [f"{VIEWS[f.entity]}:{f.name}" for f in FEATURES]
DOTJOIN_APP = textwrap.dedent("""
    import os
    from fastapi import FastAPI
    from dotjoin.config import load_settings
    from dotjoin.pipelines.features.store import OnlineStore
    from dotjoin.platform.kv import open_kv

    store = OnlineStore(open_kv(load_settings(profile="stack"), os.environ["BENCH_NAMESPACE"]))
    app = FastAPI()

    @app.post("/features")
    async def features(body: dict) -> dict:
        return store.features_at(card_id=body["card_id"], merchant_id=body["merchant_id"], t=body["t"])
""")


def feast_ops(settings: Settings, repo: feast_repo.FeastRepo, ops: list[dict[str, Any]]) -> list[Any]:
    env = {**os.environ, **feast_repo.feast_env(settings)}
    done = subprocess.run([str(FEAST_BIN / "python"), str(FEAST_OPS), str(repo.path)], input=json.dumps(ops),
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"Feast failed:\n{done.stderr[-3000:]}")
    return list(json.loads(done.stdout)["results"])


def setup(
    settings: Settings, tmp: Path, namespace: str, repo: feast_repo.FeastRepo
) -> tuple[list[tuple[str, str]], int]:
    """Both stores filled from one stream; the (card, merchant) pairs to ask and the time to ask at."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    sim = generate(seed=17, eps=100, duration_s=120, start=start)
    write_log(sim, tmp)
    rates = read_usd_rates(write_fx_rates(tmp / "fx.csv"))
    ids, rows, _ = distinct_rows(read_recorded(tmp / "events.jsonl").payments, rates)
    end = max(r[2] for r in rows) + 1
    state = OnlineFeatures()
    state.add_all(rows)
    with open_kv(settings, namespace) as kv:
        OnlineStore(kv).save({(e, i): h for e, table in state.entities.items() for i, h in table.items()}, {})
    cards, merchants = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
    snapshot = feast_repo.snapshot_points(cards, merchants, end)
    payments = as_tables(ids, rows)[0]
    feast_repo.write_source(settings, repo, feast_repo.source_tables(snapshot, backfill(payments, snapshot)))
    started = time.perf_counter()
    feast_ops(
        settings,
        repo,
        [{"op": "apply"}, {"op": "materialize_incremental", "end_ms": int(time.time() * 1000)}],
    )
    print(f"  Feast apply + materialize-incremental: {time.perf_counter() - started:.1f} s "
          f"({len(cards):,} cards, {len(merchants):,} merchants)", flush=True)  # fmt: skip
    pairs = list(dict.fromkeys((r[0], r[1]) for r in rows))[:2_000]
    return pairs, end


def _feast_values(body: dict[str, Any]) -> dict[str, Any]:
    if "metadata" not in body:
        raise SystemExit(f"feast serve answered {str(body)[:500]}")
    names = body["metadata"]["feature_names"]
    return {n: r["values"][0] for n, r in zip(names, body["results"], strict=True) if n in _NAMES}


_NAMES = {f.name for f in FEATURES}


def in_process_load(
    store: OnlineStore, pairs: list[tuple[str, str]], t: int, rps: float, seconds: float
) -> list[float]:
    """The same schedule, calling ``features_at`` in this thread."""
    total, latencies = int(rps * seconds), []
    t0 = time.perf_counter()
    for n in range(total):
        due = t0 + n / rps
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        card, merchant = pairs[n % len(pairs)]
        store.features_at(card_id=card, merchant_id=merchant, t=t)
        latencies.append(time.perf_counter() - due)
    return latencies


def start_servers(
    settings: Settings, repo: feast_repo.FeastRepo, tmp: Path, namespace: str
) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """``feast serve`` on the repository and the bare dotjoin route; their URLs once both answer."""
    feast_port, ours_port = free_port(), free_port()
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    feast = [str(FEAST_BIN / "feast"), "serve", "-h", "127.0.0.1", "-p", str(feast_port), "--no-access-log",
             "--workers", "1", "--max-requests", "0"]  # fmt: skip
    (tmp / "fetch_app.py").write_text(DOTJOIN_APP)
    ours = [sys.executable, "-m", "uvicorn", "fetch_app:app", "--host", "127.0.0.1", "--port", str(ours_port),
            "--no-access-log", "--app-dir", str(tmp), "--loop", "uvloop", "--http", "httptools"]  # fmt: skip
    servers = [
        subprocess.Popen(feast, cwd=repo.path, env={**os.environ, **feast_repo.feast_env(settings)}, **quiet),
        subprocess.Popen(ours, cwd=REPO, env={**os.environ, "BENCH_NAMESPACE": namespace}, **quiet),
    ]
    wait_http(f"http://127.0.0.1:{feast_port}/health")
    wait_http(f"http://127.0.0.1:{ours_port}/docs")
    return (
        servers,
        f"http://127.0.0.1:{feast_port}/get-online-features",
        f"http://127.0.0.1:{ours_port}/features",
    )


def check_parity(
    store: OnlineStore, url: str, pairs: list[tuple[str, str]], bodies: list[bytes], t: int
) -> int:
    """Feast's answers equal dotjoin's for the first 200 pairs (all 36 features), or the run stops."""
    checked = 0
    for (card, merchant), body in list(zip(pairs, bodies, strict=True))[:200]:
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
        theirs = _feast_values(answer.json())
        ours = store.features_at(card_id=card, merchant_id=merchant, t=t)
        bad = [n for n in ours if not _same(ours[n], theirs[n])]
        if bad:
            raise SystemExit(f"Feast and dotjoin disagree for {card}/{merchant}: {bad[:5]}")
        checked += 1
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rps", default="100,300", help="request rates, comma-separated")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    rates, seconds = [float(r) for r in args.rps.split(",")], args.seconds
    if not (FEAST_BIN / "feast").exists():
        raise SystemExit("no .venv-feast: make feast")
    print(machine(), flush=True)
    settings = load_settings(profile="stack", cwd=REPO)
    name = f"bench_fetch_{uuid.uuid4().hex[:8]}"  # dotjoin's Redis namespace and Feast's project
    results: dict[float, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dotjoin-fetch-") as tmp:
        repo = feast_repo.generate(settings, project=name, root=Path(tmp) / "repo")
        servers: list[subprocess.Popen[bytes]] = []
        try:
            pairs, end = setup(settings, Path(tmp), name, repo)
            servers, feast_url, ours_url = start_servers(settings, repo, Path(tmp), name)
            theirs = [{"features": REFS, "entities": {"card_id": [c], "merchant_id": [m]}} for c, m in pairs]
            ours = [{"card_id": c, "merchant_id": m, "t": end} for c, m in pairs]
            bodies = {
                "feast serve (HTTP)": (feast_url, [json.dumps(b).encode() for b in theirs]),
                "dotjoin over HTTP": (ours_url, [json.dumps(b).encode() for b in ours]),
            }
            with open_kv(settings, name) as kv:
                store = OnlineStore(kv)
                checked = check_parity(store, feast_url, pairs, bodies["feast serve (HTTP)"][1], end)
                print(
                    f"  parity: {checked} entity pairs x 36 features equal (windowed exactly, decayed 1e-9)"
                )
                for url, payloads in bodies.values():  # warm-up
                    asyncio.run(open_loop(url, payloads, 50, 2))
                for rps in rates:
                    row = results.setdefault(rps, {})
                    for label in (*bodies, "dotjoin in process"):
                        if label in bodies:
                            latencies, errors = asyncio.run(open_loop(*bodies[label], rps, seconds))
                        else:
                            latencies, errors = in_process_load(store, pairs, end, rps, seconds), 0
                        q = row[label] = quantiles(latencies)
                        shown = ", ".join(f"{k} {q[k]:.3f} ms" for k in ("p50", "p95", "p99", "max"))
                        failed = f", {errors} failed" if errors else ""
                        print(f"  {label}: {shown} at {rps:.0f}/s for {seconds:.0f} s "
                              f"({len(latencies):,} requests{failed})", flush=True)  # fmt: skip
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
            try:
                feast_ops(settings, repo, [{"op": "teardown"}])
            except SystemExit as exc:  # nothing applied yet: nothing to tear down
                print(f"  teardown: {str(exc).splitlines()[-1]}", flush=True)
            feast_repo.drop_source(settings, repo)
            _drop_namespace(settings, name)
    for rps, row in results.items():
        feast, http, local = row["feast serve (HTTP)"], row["dotjoin over HTTP"], row["dotjoin in process"]
        headline(
            "feature_fetch",
            f"at {rps:.0f}/s: feast serve p50/p99 {feast['p50']:.2f}/{feast['p99']:.2f} ms; dotjoin over "
            f"HTTP {http['p50']:.2f}/{http['p99']:.2f} ms ({feast['p99'] / http['p99']:.1f}x at p99); "
            f"dotjoin in process {local['p50']:.3f}/{local['p99']:.3f} ms "
            f"({feast['p99'] / local['p99']:.0f}x, no HTTP)",
        )


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, int):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a))


def _drop_namespace(settings: Settings, namespace: str) -> None:
    """The benchmark's keys in the stack's Redis (the platform's store has no delete)."""
    import redis

    secret = settings.redis.password
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port,
                         password=secret.get_secret_value() if secret else None)  # fmt: skip
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


if __name__ == "__main__":
    main()
