"""Step ``fetch_prices``: one Stooq CSV per symbol for the logical date, landed byte-for-byte.

Files go to ``<lake>/raw/stocks/trade_date=YYYY-MM-DD/<symbol>.csv``. All symbols are fetched first
(concurrently, through the resilient client: retries, backoff, Retry-After, rate limit); only when
every one succeeded are the files written, each to a temporary name then renamed, so a reader never sees
half a file and a failed try leaves the previous landing untouched. A rerun replaces the files, and a
file of a symbol no longer configured is removed, so the directory always holds exactly this run's
symbols. Unlike the immutable raw zone of ``lakehouse`` (export files named by date, landed once), a
date's quotes are re-fetchable: rerunning a date is how a corrected upstream bar is picked up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from dotjoin.config import IngestSettings, Settings
from dotjoin.exceptions import ConfigError
from dotjoin.orchestration.steps import StepContext
from dotjoin.pipelines.api_ingest.common import client
from dotjoin.pipelines.stocks.parse import COLUMNS, NO_DATA
from dotjoin.platform.http import BodyError, FailedRequest, Response
from dotjoin.platform.lake import open_lake

logger = logging.getLogger(__name__)

SOURCE = "stocks"
RAW_SOURCE = "stocks"  # the folder under the raw zone
STOOQ_PATH = "/q/d/l/"
_SYMBOL = re.compile(r"^[a-z0-9^][a-z0-9^._-]*$")  # also keeps a symbol a safe file name
_HEADER = ",".join(COLUMNS).lower()


def stocks_url(cfg: IngestSettings, base_url: str | None = None) -> str:
    """The quotes URL: ``<base_url>/q/d/l/`` when a base URL is set (argument or ``[ingest] base_url``).

    >>> stocks_url(IngestSettings(), "http://127.0.0.1:8765/")
    'http://127.0.0.1:8765/q/d/l/'
    >>> stocks_url(IngestSettings())
    'https://stooq.com/q/d/l/'
    """
    base = (base_url or cfg.base_url).rstrip("/")
    return f"{base}{STOOQ_PATH}" if base else cfg.stocks_url


def symbols(cfg: IngestSettings) -> list[str]:
    """``[ingest] stock_symbols``, lower-cased, de-duplicated in order, each a safe file name.

    >>> symbols(IngestSettings(stock_symbols=("AAPL.US", "spy.us", "aapl.us")))
    ['aapl.us', 'spy.us']
    """
    out: list[str] = []
    for raw in cfg.stock_symbols:
        symbol = raw.strip().lower()
        if not _SYMBOL.match(symbol):
            raise ConfigError(
                f"[ingest] stock_symbols: {raw!r} is not a symbol (letters, digits, ^ . _ -; e.g. aapl.us)"
            )
        if symbol not in out:
            out.append(symbol)
    if not out:
        raise ConfigError("[ingest] stock_symbols is empty; list at least one symbol, e.g. aapl.us")
    return out


def raw_dir(settings: Settings, day: date) -> Path:
    """``<lake files>/raw/stocks/trade_date=YYYY-MM-DD`` (raw files are plain local files)."""
    with open_lake(settings) as lake:
        zone = lake.zone_path("raw")
    return Path(zone) / RAW_SOURCE / f"trade_date={day.isoformat()}"


def accept(response: Response) -> bytes:
    """The body if it is a Stooq answer (its CSV header, or ``No data``); else retry (:class:`BodyError`).

    A 200 that is neither — an HTML error page, "Exceeded the daily hits limit" — is retried, then fails
    the step: landing it would turn an outage into a silently empty date.
    """
    body = response.content
    first = body.split(b"\n", 1)[0].strip().lstrip(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    if first.lower().replace(" ", "") == _HEADER or body.strip() == NO_DATA.encode():
        return body
    raise BodyError(f"not a Stooq CSV: starts {body[:60]!r}")


async def _fetch_all(url: str, wanted: list[str], day: date, cfg: IngestSettings) -> tuple[list[bytes], int]:
    failures: list[FailedRequest] = []
    stamp = f"{day:%Y%m%d}"
    async with client(cfg, SOURCE, failures) as http:
        bodies = await asyncio.gather(
            *(
                http.get(url, params={"s": s, "d1": stamp, "d2": stamp, "i": "d"}, parse=accept)
                for s in wanted
            )
        )
    return list(bodies), len(failures)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_prices(ctx: StepContext) -> dict[str, Any]:
    """Fetch the logical date's bar of every symbol and land the answers in the raw zone.

    Raises:
        RetriesExhaustedError: a symbol failed every attempt (5xx, 429, dropped connections, bodies
            that are not Stooq CSV); the runtime retries the step.
        HttpStatusError: the source answered a status a retry will not fix (e.g. 404: wrong URL).
    """
    settings, day = ctx.settings, ctx.logical_date
    wanted = symbols(settings.ingest)
    url = stocks_url(settings.ingest, ctx.params.get("base_url"))
    bodies, failed_attempts = asyncio.run(_fetch_all(url, wanted, day, settings.ingest))
    target = raw_dir(settings, day)
    target.mkdir(parents=True, exist_ok=True)
    for symbol, body in zip(wanted, bodies, strict=True):
        write_atomic(target / f"{symbol}.csv", body)
    for stale in sorted(target.glob("*.csv")):
        if stale.name[: -len(".csv")] not in wanted:
            logger.info("removing %s: %s is no longer in [ingest] stock_symbols", stale, stale.stem)
            stale.unlink()
    rows = sum(max(0, len([ln for ln in b.splitlines() if ln.strip()]) - 1) for b in bodies)
    logger.info("landed %d stocks files for %s in %s (%d data lines)", len(wanted), day, target, rows)
    return {
        "raw_dir": str(target),
        "trade_date": day.isoformat(),
        "files": len(wanted),
        "bytes": sum(len(b) for b in bodies),
        "symbols": wanted,
        "data_lines": rows,
        "failed_attempts": failed_attempts,
    }
