"""Benchmark: backfill hourly weather for N cities x D days from the local source server.

Three contenders on the same data, served by one `dotjoin sources serve` subprocess:

* **dotjoin** — ``dotjoin.pipelines.api_ingest.weather.run``: concurrent requests, bulk hashed upsert
  into DuckDB, cursor per city, run report (the real pipeline, checks included);
* **naive** (the baseline the ratio is against) — sequential requests, one ``INSERT ... ON CONFLICT``
  per row into DuckDB, the way a first cron script does it;
* **dlt** (the headline ratio) — ``dlt.pipeline(destination="duckdb")`` with ``write_disposition="merge"``
  on ``(city, hour)``; its requests run on dlt's own parallel extraction (a ``parallelized`` transformer,
  ``EXTRACT__WORKERS`` threads) at the **same concurrency** as dotjoin's ``[ingest] concurrency``, each
  level in turn (default 1 and 8). It runs in its own virtualenv (``DLT_PYTHON``, default
  /tmp/dltvenv/bin/python) because dlt is not in our lock; skipped with a message when it is missing.

dotjoin and dlt run ``--repeat`` times each, round-robin; the best run of each counts. The naive
baseline runs once on ``--naive-cities`` (it is ~100x slower; its ratio compares rows/s).

Usage: .venv/bin/python benchmarks/api_ingest.py [--cities 100] [--days 365] [--repeat 3] [--concurrency 1,8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
from _baselines import headline, machine

from dotjoin.config import load_settings
from dotjoin.pipelines.api_ingest import weather
from dotjoin.pipelines.api_ingest.common import City, windows
from dotjoin.pipelines.api_ingest.openmeteo import VARIABLES, normalise, parse_json

START = date(2023, 1, 1)
WINDOW_DAYS = 31


def _cities(n: int) -> list[City]:
    return [
        City(f"city{i:03d}", round(-60 + (i * 7.3) % 120, 4), round(-170 + (i * 13.7) % 340, 4))
        for i in range(n)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotjoin", "sources", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the source server did not start")


def _params(city: City, start: date, end: date) -> dict[str, str]:
    return {
        "latitude": str(city.latitude),
        "longitude": str(city.longitude),
        "hourly": ",".join(VARIABLES),
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "timezone": "GMT",
    }


def naive(url: str, cities: list[City], days: int, db: Path) -> tuple[float, int]:
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE weather_hourly (city VARCHAR, hour TIMESTAMPTZ, temperature_2m DOUBLE, "
        "relative_humidity_2m DOUBLE, precipitation DOUBLE, wind_speed_10m DOUBLE, PRIMARY KEY (city, hour))"
    )
    sql = (
        "INSERT INTO weather_hourly VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (city, hour) DO UPDATE SET "
        "temperature_2m = excluded.temperature_2m, relative_humidity_2m = excluded.relative_humidity_2m, "
        "precipitation = excluded.precipitation, wind_speed_10m = excluded.wind_speed_10m"
    )
    t0 = time.perf_counter()
    rows = 0
    with httpx.Client(timeout=60) as client:
        for city in cities:
            for start, end in windows([START + timedelta(days=d) for d in range(days)], WINDOW_DAYS):
                doc = parse_json(client.get(f"{url}/v1/archive", params=_params(city, start, end)).content)[0]
                for row in normalise(doc, city.name).rows:
                    con.execute(sql, [row["city"], row["hour"], *(row[v] for v in VARIABLES)])
                    rows += 1
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed, rows


def ours(
    url: str, cities: list[City], days: int, root: Path, concurrency: int
) -> tuple[float, int, dict[str, float]]:
    env = {"DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0", "DOTJOIN__INGEST__CONCURRENCY": str(concurrency)}
    settings = load_settings(profile="local", cwd=root, env=env)
    t0 = time.perf_counter()
    report = weather.run(
        settings, since=START, until=START + timedelta(days=days - 1), base_url=url, cities=cities
    )
    elapsed = time.perf_counter() - t0
    assert report.status == "succeeded", report.checks
    return elapsed, int(report.metrics["rows_inserted"]), report.metrics


DLT_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from datetime import date, timedelta
    import dlt, httpx
    url, cities, db = sys.argv[1], json.loads(sys.argv[2]), sys.argv[4]
    days, window = int(sys.argv[3]), int(sys.argv[5])
    workers = int(os.environ["EXTRACT__WORKERS"])
    start = date(2023, 1, 1)
    client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=workers))

    @dlt.resource(selected=False)
    def requests():
        for name, lat, lon in cities:
            for d in range(0, days, window):
                a, b = start + timedelta(days=d), start + timedelta(days=min(days, d + window) - 1)
                yield name, lat, lon, a.isoformat(), b.isoformat()

    # dlt's way to fetch in parallel: a transformer run on the extract thread pool (EXTRACT__WORKERS).
    @dlt.transformer(name="weather_hourly", write_disposition="merge", primary_key=["city", "hour"],
                     parallelized=True)
    def hourly(task):
        name, lat, lon, a, b = task
        doc = client.get(url + "/v1/archive", params={"latitude": lat, "longitude": lon,
            "hourly": "temperature_2m,relative_humidity_2m,precipitation,wind_speed_10m",
            "start_date": a, "end_date": b, "timezone": "GMT"}).json()
        h = doc["hourly"]
        return [{"city": name, "hour": t + "Z", **{k: h[k][i] for k in h if k != "time"}}
                for i, t in enumerate(h["time"])]

    pipe = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.duckdb(db), dataset_name="bench",
                        pipelines_dir=db + ".dlt")
    t0 = time.perf_counter()
    pipe.run(requests() | hourly)
    elapsed = time.perf_counter() - t0
    import duckdb
    n = duckdb.connect(db).execute("SELECT count(*) FROM bench.weather_hourly").fetchone()[0]
    print(json.dumps({"seconds": elapsed, "rows": n, "dlt": dlt.__version__}))
""")


def run_dlt(url: str, cities: list[City], days: int, db: Path, workers: int) -> dict[str, object] | str:
    python = os.environ.get("DLT_PYTHON", "/tmp/dltvenv/bin/python")
    if not Path(python).exists():
        return (
            f"skipped: no dlt interpreter at {python} (python -m venv /tmp/dltvenv && "
            "/tmp/dltvenv/bin/pip install 'dlt[duckdb]' duckdb==1.5.5 httpx)"
        )
    payload = json.dumps([[c.name, c.latitude, c.longitude] for c in cities])
    out = subprocess.run(
        [python, "-c", DLT_SCRIPT, url, payload, str(days), str(db), str(WINDOW_DAYS)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "EXTRACT__WORKERS": str(workers), "RUNTIME__LOG_LEVEL": "WARNING"},
    )
    if out.returncode != 0:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cities", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender, round-robin")
    parser.add_argument(
        "--concurrency",
        default="1,8",
        help="comma-separated request concurrencies; dotjoin and dlt run at each (dlt: EXTRACT__WORKERS)",
    )
    parser.add_argument(
        "--naive-cities",
        type=int,
        default=10,
        help="cities the naive baseline backfills (it runs ~1 ms per row: the full set takes ~20 min); "
        "the ratio compares rows/s",
    )
    args = parser.parse_args()
    cities = _cities(args.cities)
    expected = args.cities * args.days * 24
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    proc, url = _server()
    best: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="dj-bench-api-") as tmp:
            root = Path(tmp)
            print(machine())
            print(
                f"backfill {args.cities} cities x {args.days} days = {expected:,} hourly rows "
                f"({WINDOW_DAYS}-day requests) from {url}; {args.repeat} rounds, round-robin",
                flush=True,
            )
            naive_cities = cities[: max(1, min(args.naive_cities, len(cities)))]
            t_naive, n_naive = naive(url, naive_cities, args.days, root / "naive.duckdb")
            assert n_naive == len(naive_cities) * args.days * 24
            print(
                f"naive (1 request at a time, row-by-row upsert): {t_naive:.2f} s {n_naive:,} rows "
                f"{n_naive / t_naive:,.0f} rows/s ({len(naive_cities)} of {len(cities)} cities, run once)",
                flush=True,
            )
            for r in range(args.repeat):
                for c in levels:
                    t_ours, n_ours, metrics = ours(url, cities, args.days, root / f"ours-{r}-{c}", c)
                    assert n_ours == expected, (n_ours, expected)
                    print(
                        f"  round {r + 1} dotjoin c={c}: {t_ours:7.2f} s  {n_ours:,} rows "
                        f"{n_ours / t_ours:,.0f} rows/s ({int(metrics['http_attempts'])} requests)",
                        flush=True,
                    )
                    best[f"dotjoin c={c}"] = min(best.get(f"dotjoin c={c}", 1e9), t_ours)
                    got = run_dlt(url, cities, args.days, root / f"dlt-{r}-{c}.duckdb", c)
                    if isinstance(got, str):
                        print(f"  dlt: {got}")
                        continue
                    t_dlt = float(got["seconds"])  # type: ignore[arg-type]
                    assert int(got["rows"]) == expected, got  # type: ignore[call-overload]
                    print(
                        f"  round {r + 1} dlt {got['dlt']} c={c}: {t_dlt:7.2f} s  {got['rows']:,} rows "
                        f"{expected / t_dlt:,.0f} rows/s (merge into DuckDB)",
                        flush=True,
                    )
                    best[f"dlt c={c}"] = min(best.get(f"dlt c={c}", 1e9), t_dlt)
            print("best of each:")
            for name, t in best.items():
                print(f"  {name:14s} {t:7.2f} s  {expected / t:,.0f} rows/s")
            for c in levels:
                ours_t = best[f"dotjoin c={c}"]
                ratio_naive = (expected / ours_t) / (n_naive / t_naive)
                print(f"concurrency {c}: dotjoin {ratio_naive:.1f}x the naive baseline's rows/s")
                if f"dlt c={c}" in best:
                    ratio = best[f"dlt c={c}"] / ours_t
                    headline(
                        "api_ingest",
                        f"concurrency {c}: dotjoin {ours_t:.2f} s vs dlt {best[f'dlt c={c}']:.2f} s = "
                        f"{ratio:.2f}x dlt's speed (best of {args.repeat})",
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
