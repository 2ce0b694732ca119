"""What both ingestion pipelines share: endpoints, the HTTP client, cities, day planning."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from dotjoin.config import IngestSettings, Settings
from dotjoin.exceptions import ConfigError, DotjoinError
from dotjoin.platform.files import DelimitedReader, InputFileError, RawReject
from dotjoin.platform.files.dialect import STRICT_CSV
from dotjoin.platform.http import FailedRequest, ResilientClient, RetryPolicy, url_problem

T = TypeVar("T")

#: (done, total, label) -> None; the CLI draws a progress bar with it.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class City:
    name: str
    latitude: float
    longitude: float


BUILTIN_CITIES: tuple[City, ...] = (
    City("Berlin", 52.52, 13.41),
    City("Paris", 48.8566, 2.3522),
    City("London", 51.5072, -0.1276),
    City("Madrid", 40.4168, -3.7038),
    City("New York", 40.7128, -74.006),
    City("Tokyo", 35.6762, 139.6503),
    City("Sydney", -33.8688, 151.2093),
    City("São Paulo", -23.5505, -46.6333),
    City("Cairo", 30.0444, 31.2357),
    City("Mumbai", 19.076, 72.8777),
)


@dataclass(frozen=True)
class Endpoints:
    forecast: str
    archive: str
    gtfs_static: str
    gtfs_rt: str


class AllRequestsFailedError(DotjoinError):
    """Every request of a run failed: nothing was fetched (the message has the first error)."""


def check_base_url(cfg: IngestSettings, base_url: str | None) -> None:
    """Refuse a base URL that can never work, naming where it came from (before any request).

    >>> check_base_url(IngestSettings(), "http://127.0.0.1:8765")
    >>> check_base_url(IngestSettings(), "ftp://x")
    Traceback (most recent call last):
    dotjoin.exceptions.ConfigError: --base-url 'ftp://x': scheme 'ftp' is not http or https
    """
    url, origin = (base_url, "--base-url") if base_url else (cfg.base_url, "[ingest] base_url")
    if url:
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(f"{origin} {url!r}: {problem}")


def check_not_future(
    since: date | None,
    until: date | None,
    *,
    today: date | None = None,
    options: tuple[str, str] = ("--since", "--until"),
) -> None:
    """Refuse days after today (UTC): no source has them yet, and a cursor must never claim them.

    >>> check_not_future(date(2024, 1, 1), date(2030, 1, 1), today=date(2026, 1, 1))
    Traceback (most recent call last):
    dotjoin.exceptions.ConfigError: --until 2030-01-01 is in the future (today is 2026-01-01 UTC)
    """
    today = today or datetime.now(UTC).date()
    for option, day in zip(options, (since, until), strict=True):
        if day is not None and day > today:
            raise ConfigError(f"{option} {day} is in the future (today is {today} UTC)")


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` that, when one awaitable fails, cancels and awaits the others before raising
    (no task outlives the client it uses, no "Task exception was never retrieved")."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def endpoints(cfg: IngestSettings, base_url: str | None = None) -> Endpoints:
    """The four source URLs: all under ``base_url`` (or ``[ingest] base_url``) if set, else the real ones.

    >>> endpoints(IngestSettings(), "http://127.0.0.1:8765/").archive
    'http://127.0.0.1:8765/v1/archive'
    >>> endpoints(IngestSettings()).forecast
    'https://api.open-meteo.com/v1/forecast'
    """
    base = (base_url or cfg.base_url).rstrip("/")
    if base:
        return Endpoints(
            f"{base}/v1/forecast",
            f"{base}/v1/archive",
            f"{base}/gtfs/static.zip",
            f"{base}/gtfs-rt/trip-updates",
        )
    return Endpoints(cfg.weather_forecast_url, cfg.weather_archive_url, cfg.gtfs_static_url, cfg.gtfs_rt_url)


def client(cfg: IngestSettings, source: str, failures: list[FailedRequest]) -> ResilientClient:
    """A resilient client configured from ``[ingest]`` that appends every failed attempt to ``failures``."""
    return ResilientClient(
        source=source,
        policy=RetryPolicy(max_attempts=cfg.max_attempts, timeout_s=cfg.timeout_s),
        rate_per_host=cfg.rate_limit_per_s,
        burst=max(1, cfg.concurrency),
        concurrency=cfg.concurrency,
        on_failure=failures.append,
    )


CITY_COLUMNS = ("name", "latitude", "longitude")
_RANGES = {"latitude": 90.0, "longitude": 180.0}


def _coordinate(row: dict[str, str], field: str, where: str) -> float:
    text = row[field].strip()
    if not text:
        raise ConfigError(f"{where}: {field} is empty")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {field} {text!r} is not a number") from None
    limit = _RANGES[field]
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise ConfigError(f"{where}: {field} {text} is not in -{limit:g}..{limit:g}")
    return value


def parse_cities(text: str, origin: str) -> list[City]:
    """Cities from CSV with a ``name,latitude,longitude`` header: at least one, names unique, latitude in
    -90..90 and longitude in -180..180. A bad file or row is one :class:`ConfigError` naming the file,
    the line and the field.

    >>> parse_cities("name,latitude,longitude\\nOslo,59.91,10.75\\n", "x")
    [City(name='Oslo', latitude=59.91, longitude=10.75)]
    >>> parse_cities("name,latitude,longitude\\nOslo,999,10.75\\n", "c.csv")
    Traceback (most recent call last):
    dotjoin.exceptions.ConfigError: c.csv:2: latitude 999 is not in -90..90
    """
    try:
        with DelimitedReader(
            Path(origin), data=text.lstrip("\ufeff").encode(), options=STRICT_CSV, encoding="utf-8"
        ) as reader:
            chunks = list(reader)  # a small file; read first, so that the header's line is known
    except InputFileError as exc:
        raise ConfigError(str(exc)) from exc
    header = list(reader.header_fields)
    if not header:
        raise ConfigError(f"{origin}: no cities: the file is empty (want a header {','.join(CITY_COLUMNS)})")
    missing = [c for c in CITY_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"{origin}:{reader.header_line}: the header lacks {', '.join(missing)} (want "
            f"{','.join(CITY_COLUMNS)}, got {','.join(header)})"
        )
    cities: list[City] = []
    seen: dict[str, int] = {}
    for chunk in chunks:
        bad = chunk.rejected[0] if chunk.rejected else None  # sorted by line
        for line, row in zip(
            chunk.line.tolist(), chunk.table.select(list(CITY_COLUMNS)).to_pylist(), strict=True
        ):
            if bad is not None and bad.line < line:
                raise _refused(origin, bad)
            where = f"{origin}:{line}"
            name = row["name"].strip()
            if not name:
                raise ConfigError(f"{where}: name is empty")
            if name in seen:
                raise ConfigError(
                    f"{where}: name {name!r} repeats line {seen[name]} (city names must be unique)"
                )
            seen[name] = line
            cities.append(
                City(name, _coordinate(row, "latitude", where), _coordinate(row, "longitude", where))
            )
        if bad is not None:
            raise _refused(origin, bad)
    if not cities:
        raise ConfigError(
            f"{origin}: no cities after the header (want one {','.join(CITY_COLUMNS)} per line)"
        )
    return cities


def _refused(origin: str, reject: RawReject) -> ConfigError:
    """A row the reader rejected (more fields than the header, a NUL byte) as the file's one error."""
    return ConfigError(f"{origin}:{reject.line}: {reject.reason}: {reject.detail}")


def load_cities(settings: Settings, path: Path | None = None) -> list[City]:
    """Cities from ``path``, else ``[ingest] cities_file``, else the built-in list."""
    if path is None and settings.ingest.cities_file:
        path = settings.resolve(settings.ingest.cities_file)
    if path is None:
        return list(BUILTIN_CITIES)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the cities file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte offset {exc.start})") from exc
    return parse_cities(text, str(path))


def days(start: date, end: date) -> Iterator[date]:
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


def windows(todo: list[date], max_days: int) -> list[tuple[date, date]]:
    """Group sorted days into contiguous windows of at most ``max_days``.

    >>> d = [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 5)]
    >>> [(a.day, b.day) for a, b in windows(d, 2)]
    [(1, 2), (3, 3), (5, 5)]
    """
    out: list[tuple[date, date]] = []
    for day in sorted(todo):
        if out and (day - out[-1][1]).days == 1 and (day - out[-1][0]).days < max_days:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def plan_days(
    *,
    since: date | None,
    until: date | None,
    state: tuple[date, date] | None,
    yesterday: date,
    refetch: bool,
) -> list[date]:
    """The days to fetch for one city or feed.

    * no dates: from the day after the cursor (or yesterday, first time) up to yesterday;
    * a range: its days, minus those the cursor says are complete, unless ``refetch``.

    >>> s = (date(2024, 1, 1), date(2024, 1, 3))
    >>> y = date(2025, 1, 1)
    >>> plan_days(since=date(2024, 1, 2), until=date(2024, 1, 5), state=s, yesterday=y, refetch=False)
    [datetime.date(2024, 1, 4), datetime.date(2024, 1, 5)]
    >>> len(plan_days(since=None, until=None, state=s, yesterday=date(2024, 1, 6), refetch=False))
    3
    """
    if since is None and until is None:
        first = state[1] + timedelta(days=1) if state else yesterday
        return list(days(first, yesterday))
    start = since if since is not None else until
    end = until if until is not None else since
    assert start is not None and end is not None
    if end < start:
        raise ConfigError(f"--until {end} is before --since {start}")
    todo = list(days(start, end))
    if state and not refetch:
        todo = [d for d in todo if not state[0] <= d <= state[1]]
    return todo
