"""Benchmark: backfill hourly weather for N cities x D days from the local source server.

Three contenders on the same data, served by one `dotjoin sources serve` subprocess:

* **dotjoin** — ``dotjoin.pipelines.api_ingest.weather.run``: concurrent requests, bulk hashed upsert
  into DuckDB, cursor per city, run report (the real pipeline, checks included);
* **naive** (the baseline the ratio is against) — sequential requests, one ``INSERT ... ON CONFLICT``
  per row into DuckDB, the way a first cron script does it;
* **dlt** — ``dlt.pipeline(destination="duckdb")`` with ``write_disposition="merge"`` on
  ``(city, hour)``, run in its own virtualenv (``DLT_PYTHON``, default /tmp/dltvenv/bin/python) because
  dlt is not in our lock; skipped with a message when that interpreter is missing.

Usage: .venv/bin/python benchmarks/api_ingest.py [--cities 100] [--days 365]
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


def ours(url: str, cities: list[City], days: int, root: Path) -> tuple[float, int, dict[str, float]]:
    env = {"DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0", "DOTJOIN__INGEST__CONCURRENCY": "8"}
    settings = load_settings(profile="local", cwd=root, env=env)
    t0 = time.perf_counter()
    report = weather.run(
        settings, since=START, until=START + timedelta(days=days - 1), base_url=url, cities=cities
    )
    elapsed = time.perf_counter() - t0
    assert report.status == "succeeded", report.checks
    return elapsed, int(report.metrics["rows_inserted"]), report.metrics


DLT_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from datetime import date, timedelta
    import dlt, httpx
    url, cities, days, db = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    window = int(sys.argv[5])
    start = date(2023, 1, 1)

    @dlt.resource(name="weather_hourly", write_disposition="merge", primary_key=["city", "hour"])
    def hourly():
        with httpx.Client(timeout=60) as client:
            for name, lat, lon in cities:
                d = 0
                while d < days:
                    a, b = start + timedelta(days=d), start + timedelta(days=min(days, d + window) - 1)
                    doc = client.get(url + "/v1/archive", params={"latitude": lat, "longitude": lon,
                        "hourly": "temperature_2m,relative_humidity_2m,precipitation,wind_speed_10m",
                        "start_date": a.isoformat(), "end_date": b.isoformat(), "timezone": "GMT"}).json()
                    h = doc["hourly"]
                    yield [{"city": name, "hour": t + "Z", **{k: h[k][i] for k in h if k != "time"}}
                           for i, t in enumerate(h["time"])]
                    d += window

    pipe = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.duckdb(db), dataset_name="bench",
                        pipelines_dir=db + ".dlt")
    t0 = time.perf_counter()
    info = pipe.run(hourly())
    elapsed = time.perf_counter() - t0
    import duckdb
    n = duckdb.connect(db).execute("SELECT count(*) FROM bench.weather_hourly").fetchone()[0]
    print(json.dumps({"seconds": elapsed, "rows": n, "dlt": dlt.__version__}))
""")


def run_dlt(url: str, cities: list[City], days: int, db: Path) -> dict[str, object] | str:
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
    )
    if out.returncode != 0:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cities", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
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
    proc, url = _server()
    try:
        with tempfile.TemporaryDirectory(prefix="dj-bench-api-") as tmp:
            root = Path(tmp)
            print(
                f"backfill {args.cities} cities x {args.days} days = {expected:,} hourly rows "
                f"({WINDOW_DAYS}-day requests) from {url}",
                flush=True,
            )
            t_ours, n_ours, metrics = ours(url, cities, args.days, root / "ours")
            print(
                f"dotjoin : {t_ours:8.2f} s  {n_ours:,} rows  {n_ours / t_ours:,.0f} rows/s "
                f"({int(metrics['http_attempts'])} requests)",
                flush=True,
            )
            naive_cities = cities[: max(1, min(args.naive_cities, len(cities)))]
            t_naive, n_naive = naive(url, naive_cities, args.days, root / "naive.duckdb")
            print(
                f"naive   : {t_naive:8.2f} s  {n_naive:,} rows  {n_naive / t_naive:,.0f} rows/s "
                f"({len(naive_cities)} of {len(cities)} cities, same days)",
                flush=True,
            )
            dlt_result = run_dlt(url, cities, args.days, root / "dlt.duckdb")
            if isinstance(dlt_result, dict):
                t_dlt = float(dlt_result["seconds"])  # type: ignore[arg-type]
                print(
                    f"dlt {dlt_result['dlt']}: {t_dlt:8.2f} s  {dlt_result['rows']:,} rows  "
                    f"{int(dlt_result['rows']) / t_dlt:,.0f} rows/s  (merge into DuckDB)",
                    flush=True,
                )  # type: ignore[call-overload]
            else:
                t_dlt = None
                print(f"dlt     : {dlt_result}")
            assert n_ours == expected and n_naive == len(naive_cities) * args.days * 24
            ratio = (n_ours / t_ours) / (n_naive / t_naive)
            print(f"ratio vs naive baseline: {ratio:.1f}x faster in rows/s (target >= 10x)")
            if t_dlt is not None:
                print(f"ratio vs dlt merge     : {t_dlt / t_ours:.1f}x faster")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
