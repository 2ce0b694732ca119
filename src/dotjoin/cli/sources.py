"""``dotjoin sources serve``: local Open-Meteo / GTFS / GTFS-realtime / Stooq server with fault injection."""

from __future__ import annotations

from typing import Annotated

import typer

from dotjoin.cli.output import console

app = typer.Typer(
    help="Local stand-ins for the public APIs that `dotjoin ingest` and the stocks flow read "
    "(no internet needed).\n\n"
    "Example: dotjoin sources serve --port 8765 --fail-rate 0.1 --rate-limit 50 --shuffle-pages",
    no_args_is_help=True,
)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the data (same seed, same bytes).")] = 42,
    fail_first: Annotated[
        int,
        typer.Option(
            "--fail-first", help="The first N requests (not /health) answer 503: a deterministic outage."
        ),
    ] = 0,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", help="Share of requests answered 500/503.")
    ] = 0.0,
    rate_limit: Annotated[
        float, typer.Option("--rate-limit", help="Requests/s before answering 429 + Retry-After (0: off).")
    ] = 0.0,
    retry_after: Annotated[int, typer.Option("--retry-after", help="Retry-After seconds of a 429.")] = 1,
    latency: Annotated[float, typer.Option("--latency", help="Seconds added to every answer.")] = 0.0,
    dup_pages: Annotated[
        float,
        typer.Option(
            "--dup-pages", help="Chance each page (weather day / feed entity / quote row) is sent twice."
        ),
    ] = 0.0,
    shuffle_pages: Annotated[bool, typer.Option("--shuffle-pages", help="Send pages out of order.")] = False,
    truncate_rate: Annotated[float, typer.Option("--truncate-rate", help="Share of bodies cut short.")] = 0.0,
    fault_seed: Annotated[int, typer.Option("--fault-seed", help="Seed of the fault draws.")] = 1,
) -> None:
    """Serve /v1/forecast, /v1/archive, /gtfs/static.zip, /gtfs-rt/trip-updates and /q/d/l/ until Ctrl-C.

    Example: dotjoin sources serve --fail-rate 0.1 --rate-limit 50 --shuffle-pages &
             dotjoin ingest weather --date 2024-03-01 --base-url http://127.0.0.1:8765
             curl 'http://127.0.0.1:8765/q/d/l/?s=aapl.us&d1=20240102&d2=20240105&i=d'
    """
    from dotjoin.simulate.sources.app import FaultConfig, SourceState
    from dotjoin.simulate.sources.app import serve as run_server
    from dotjoin.simulate.sources.stocks import StockSource
    from dotjoin.simulate.sources.transit import TransitSource
    from dotjoin.simulate.sources.weather import WeatherSource

    faults = FaultConfig(
        fail_rate=fail_rate,
        rate_limit=rate_limit,
        retry_after_s=retry_after,
        latency_s=latency,
        dup_rate=dup_pages,
        shuffle=shuffle_pages,
        truncate_rate=truncate_rate,
        fail_first=fail_first,
        seed=fault_seed,
    )
    state = SourceState(
        weather=WeatherSource(seed), transit=TransitSource(seed), stocks=StockSource(seed), faults=faults
    )
    console.print(f"serving local sources on http://{host}:{port} (seed {seed}); Ctrl-C stops", markup=False)
    run_server(state, host=host, port=port)
