"""Deterministic Stooq daily quotes: ``GET /q/d/l/?s=<symbol>&d1=YYYYMMDD&d2=YYYYMMDD&i=d`` as CSV.

The answer has Stooq's shape: a ``Date,Open,High,Low,Close,Volume`` header and one row per trading day
of the range, or the body ``No data`` (status 200) when the range holds none — a weekend, a holiday, an
unknown symbol, a range before the series starts or after the last published day.

Each symbol's close is a mean-reverting random walk in log space whose step on a day is a hash of
(seed, symbol, day): a bar never depends on the requested range, so the same day always gives the same
bar. Prices have 2 decimals and always satisfy ``0 < low <= open, close <= high``; volume is an integer.
Trading days follow the NYSE calendar of :mod:`dotjoin.pipelines.stocks.trading_days`, as the real
service does for ``.us`` symbols.
"""

from __future__ import annotations

import hashlib
import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from dotjoin.pipelines.stocks.trading_days import is_trading_day
from dotjoin.simulate.sources.weather import mix64

HEADER = "Date,Open,High,Low,Close,Volume"
NO_DATA = b"No data"
SERIES_START = date(2000, 1, 3)  # the first trading day of 2000
DEFAULT_SYMBOLS = ("aapl.us", "msft.us", "googl.us", "amzn.us", "spy.us", "nvda.us", "meta.us", "tsla.us")
DAILY_SIGMA = 0.02  # half-width of the uniform daily log return
REVERSION = 0.002  # pull towards the symbol's base price, so 25 years of walk stay in a sane range


@dataclass(frozen=True)
class Bar:
    """One daily bar, already rounded as served."""

    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int

    def csv(self) -> str:
        """The CSV row.

        >>> Bar(date(2024, 1, 2), 10.0, 11.5, 9.25, 10.5, 1200).csv()
        '2024-01-02,10.00,11.50,9.25,10.50,1200'
        """
        prices = ",".join(f"{p:.2f}" for p in (self.open, self.high, self.low, self.close))
        return f"{self.day.isoformat()},{prices},{self.volume}"


def symbol_key(seed: int, symbol: str) -> int:
    """A 64-bit key of a symbol under ``seed`` (a stable digest: Python's ``hash`` is salted per process).

    >>> symbol_key(1, "AAPL.US") == symbol_key(1, "aapl.us") != symbol_key(2, "aapl.us")
    True
    """
    digest = hashlib.blake2b(symbol.lower().encode(), digest_size=8).digest()
    return mix64(mix64(seed & (2**64 - 1)) ^ int.from_bytes(digest, "big"))


def _unit(h: int, shift: int) -> float:
    return ((h >> shift) & 0xFFFF) / 0xFFFF


def next_bar(key: int, day: date, prev_log_close: float, base_log: float) -> tuple[Bar, float]:
    """The bar of ``day`` after a close of ``exp(prev_log_close)``, and the new (unrounded) log close.

    >>> bar, _ = next_bar(7, date(2024, 1, 2), math.log(100.0), math.log(100.0))
    >>> 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    True
    """
    h = mix64(key ^ day.toordinal())
    log_close = (
        prev_log_close + (_unit(h, 0) - 0.5) * 2 * DAILY_SIGMA - REVERSION * (prev_log_close - base_log)
    )
    open_ = round(math.exp(prev_log_close + (_unit(h, 16) - 0.5) * 0.01), 2)
    close = round(math.exp(log_close), 2)
    high = max(round(max(open_, close) * (1 + _unit(h, 32) * 0.015), 2), open_, close)
    low = max(min(round(min(open_, close) * (1 - _unit(h, 48) * 0.015), 2), open_, close), 0.01)
    base_volume = 1_000_000 * (1 + (key >> 16 & 0xFF) / 255 * 49)
    volume = int(base_volume * (0.5 + _unit(mix64(h), 0)))
    return Bar(day, open_, high, low, close, volume), log_close


@dataclass
class _Walk:
    days: list[date] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    log_close: float = 0.0


@dataclass
class StockSource:
    """The quotes of every listed symbol, with optional per-day row overrides (tests).

    Args:
        seed: changes every price.
        symbols: the listed symbols (lower case); any other answers ``No data``.
        start: the first day of every series.
        last_day: the last published day; None means today (UTC) — no bars from the future.
        overrides: ``(symbol, day) -> CSV line`` sent instead of the generated row, to simulate an
            upstream glitch (a garbled row) or correction.

    >>> src = StockSource(seed=1)
    >>> [b.csv() for b in src.bars("aapl.us", date(2024, 1, 5), date(2024, 1, 8))] == [
    ...     b.csv() for b in src.bars("aapl.us", date(2023, 6, 1), date(2024, 1, 8))][-2:]
    True
    >>> src.csv("aapl.us", date(2024, 1, 6), date(2024, 1, 7))
    b'No data'
    """

    seed: int = 42
    symbols: set[str] = field(default_factory=lambda: set(DEFAULT_SYMBOLS))
    start: date = SERIES_START
    last_day: date | None = None
    overrides: dict[tuple[str, date], str] = field(default_factory=dict)
    _walks: dict[str, _Walk] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _walk(self, symbol: str, until: date) -> _Walk:
        """The symbol's bars from ``start`` through ``until``, extended (and cached) on demand."""
        key = symbol_key(self.seed, symbol)
        base_log = math.log(20 + _unit(key, 0) * 480)
        with self._lock:
            walk = self._walks.setdefault(symbol, _Walk(log_close=base_log))
            day = walk.days[-1] + timedelta(days=1) if walk.days else self.start
            while day <= until:
                if is_trading_day(day):
                    bar, walk.log_close = next_bar(key, day, walk.log_close, base_log)
                    walk.days.append(day)
                    walk.bars.append(bar)
                day += timedelta(days=1)
            return walk

    def bars(self, symbol: str, d1: date, d2: date) -> list[Bar]:
        """The bars of ``symbol`` from ``d1`` to ``d2`` (inclusive); empty if it is not listed."""
        symbol = symbol.lower()
        last = self.last_day or datetime.now(UTC).date()
        d1, d2 = max(d1, self.start), min(d2, last)
        if symbol not in self.symbols or d2 < d1:
            return []
        walk = self._walk(symbol, d2)
        return walk.bars[bisect_left(walk.days, d1) : bisect_right(walk.days, d2)]

    def lines(self, symbol: str, d1: date, d2: date) -> list[str]:
        """The CSV rows (without header) served for the range, overrides applied."""
        symbol = symbol.lower()
        return [self.overrides.get((symbol, b.day), b.csv()) for b in self.bars(symbol, d1, d2)]

    def csv(self, symbol: str, d1: date, d2: date, row_order: Sequence[int] | None = None) -> bytes:
        """The response body; ``row_order`` (repeats allowed) is the fault injection's row order."""
        return render(self.lines(symbol, d1, d2), row_order)


def render(lines: Sequence[str], row_order: Sequence[int] | None = None) -> bytes:
    """Header + rows in ``row_order`` (default: as given), or ``No data``.

    >>> render(["2024-01-02,1.00,1.00,1.00,1.00,5"], [0, 0]).decode().splitlines()[1:]
    ['2024-01-02,1.00,1.00,1.00,1.00,5', '2024-01-02,1.00,1.00,1.00,1.00,5']
    >>> render([])
    b'No data'
    """
    if not lines:
        return NO_DATA
    order = range(len(lines)) if row_order is None else row_order
    return "\n".join([HEADER, *(lines[i] for i in order)]).encode() + b"\n"


def parse_day(value: str) -> date:
    """A ``YYYYMMDD`` request parameter (Stooq's ``d1``/``d2``).

    >>> parse_day("20240102")
    datetime.date(2024, 1, 2)
    """
    if len(value) != 8 or not value.isdigit():
        raise ValueError(f"want YYYYMMDD, got {value!r}")
    return date(int(value[:4]), int(value[4:6]), int(value[6:]))
