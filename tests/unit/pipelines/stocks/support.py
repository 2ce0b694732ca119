"""Running the stocks steps by hand, as a runtime would: one StepContext per step, metadata passed along."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from dotjoin.config import Settings
from dotjoin.orchestration.steps import StepContext, execute
from dotjoin.pipelines.stocks.flow import FLOW
from dotjoin.pipelines.stocks.load import TABLE, partition_checksum
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.sources.stocks import StockSource

SYMBOLS = ("aapl.us", "msft.us", "spy.us")
Metadata = dict[str, dict[str, Any]]


def stock_settings(
    base: Settings,
    *,
    symbols: tuple[str, ...] = SYMBOLS,
    max_attempts: int = 10,
    state_dir: Path | None = None,
) -> Settings:
    """``base`` with our symbols and a fast-retrying client (no client-side rate limit)."""
    ingest = base.ingest.model_copy(
        update={"stock_symbols": symbols, "rate_limit_per_s": 0.0, "max_attempts": max_attempts}
    )
    update: dict[str, Any] = {"ingest": ingest}
    if state_dir is not None:
        update["state_dir"] = state_dir
    return base.model_copy(update=update)


def run_step(name: str, settings: Settings, day: date, url: str, done: Metadata) -> dict[str, Any]:
    """One step through ``execute`` (the runtimes' code path, which validates the metadata)."""
    step = FLOW.step(name)
    ctx = StepContext(
        flow=FLOW.name,
        step=name,
        logical_date=day,
        settings=settings,
        upstream={u: done[u] for u in step.upstream},
        run_id=f"test-{day}",
        params={"base_url": url},
    )
    done[name] = execute(FLOW, step, ctx).metadata
    return done[name]


def run_steps(settings: Settings, day: date, url: str, *, until: str = "notify") -> Metadata:
    """The flow's steps in order up to and including ``until``; their metadata by step name."""
    done: Metadata = {}
    for step in FLOW.order():
        run_step(step.name, settings, day, url, done)
        if step.name == until:
            break
    return done


def partition(settings: Settings, day: date) -> list[dict[str, Any]]:
    with open_warehouse(settings) as wh:
        table = wh.query(
            f"SELECT symbol, trade_date, open, high, low, close, volume FROM {TABLE} "
            "WHERE trade_date = $1 ORDER BY symbol",
            [day],
        )
    return table.to_pylist()


def checksum(settings: Settings, day: date) -> str:
    with open_warehouse(settings) as wh:
        return partition_checksum(wh, day)


def expected(source: StockSource, symbols: tuple[str, ...], day: date) -> list[dict[str, Any]]:
    """What the source's generator says the partition must hold."""
    return [
        {
            "symbol": s,
            "trade_date": day,
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
        }
        for s in sorted(symbols)
        for b in source.bars(s, day, day)
    ]


def quarantined(settings: Settings, day: date) -> list[dict[str, Any]]:
    with open_warehouse(settings) as wh:
        if not wh.table_exists("quarantine"):
            return []
        table = wh.query(
            "SELECT source, position, reason, detail, raw FROM quarantine "
            "WHERE pipeline = 'stocks' AND starts_with(source, $1) ORDER BY source, position",
            [f"stocks/trade_date={day}/"],
        )
    return table.to_pylist()
