"""Deterministic Open-Meteo responses: ``/v1/forecast`` and ``/v1/archive``, JSON (iso8601/unixtime).

A value depends only on (seed, latitude, longitude, hour), never on the request window, so asking for
the same hour twice, in any window, gives the same number: the property idempotent ingestion relies on.
The shape copies the real API (see ``../shared/data/open_meteo/outputformat_01_json.json``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

#: hourly variable -> unit, as Open-Meteo names them.
VARIABLES: dict[str, str] = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "precipitation": "mm",
    "wind_speed_10m": "km/h",
}
MASK64 = (1 << 64) - 1
HOURS_PER_PAGE = 24


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer.

    >>> mix64(1) != mix64(2)
    True
    >>> mix64(12345) == mix64(12345)
    True
    """
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def location_key(seed: int, latitude: float, longitude: float) -> int:
    """A 64-bit key of a location under ``seed`` (coordinates at 1e-4 degree).

    >>> location_key(1, 52.52, 13.41) == location_key(1, 52.52000001, 13.41)
    True
    """
    return mix64(
        mix64(seed & MASK64) ^ (round(latitude * 10_000) & MASK64) * 31 ^ round(longitude * 10_000) & MASK64
    )


def hourly_values(loc_key: int, latitude: float, epoch_hour: int) -> tuple[float, float, float, float]:
    """Temperature, humidity, precipitation and wind of one location-hour; deterministic.

    >>> hourly_values(7, 52.5, 480_000) == hourly_values(7, 52.5, 480_000)
    True
    >>> t, rh, p, w = hourly_values(7, 52.5, 480_000)
    >>> 0 <= rh <= 100 and p >= 0 and w >= 0
    True
    """
    h = mix64(loc_key ^ epoch_hour)
    day_of_year = (epoch_hour // 24) % 365
    hour_of_day = epoch_hour % 24
    seasonal = -math.cos(2 * math.pi * (day_of_year - 15) / 365) * (0.2 * abs(latitude))
    diurnal = -math.cos(2 * math.pi * (hour_of_day - 3) / 24) * 4.0
    base = 27.0 - 0.45 * abs(latitude)
    noise = ((h & 0xFFFF) / 0xFFFF - 0.5) * 3.0
    temperature = round(base + seasonal + diurnal + noise, 1)
    humidity = float(round(40 + ((h >> 16) & 0xFF) / 255 * 60))
    rain_draw = (h >> 24) & 0xFF
    precipitation = round((rain_draw - 200) / 20, 1) if rain_draw > 200 else 0.0
    wind = round(((h >> 32) & 0xFFFF) / 0xFFFF * 30.0, 1)
    return temperature, humidity, precipitation, wind


@dataclass
class WeatherSource:
    """The deterministic weather of every location, with optional per-hour overrides (tests).

    Args:
        seed: changes every value.
        overrides: ``(latitude, longitude, epoch_hour) -> {variable: value}`` replacing generated values,
            to simulate an upstream correction of one hour.
    """

    seed: int = 42
    overrides: dict[tuple[float, float, int], dict[str, float]] = field(default_factory=dict)

    def hours(
        self, latitude: float, longitude: float, start: date, end: date, variables: Sequence[str]
    ) -> list[tuple[int, dict[str, float]]]:
        """``(epoch_hour, {variable: value})`` for every UTC hour of ``start..end`` (inclusive days)."""
        key = location_key(self.seed, latitude, longitude)
        first = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) // 3600
        last = int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp()) // 3600 + 23
        out = []
        for hour in range(first, last + 1):
            values = dict(zip(VARIABLES, hourly_values(key, latitude, hour), strict=True))
            values.update(self.overrides.get((latitude, longitude, hour), {}))
            out.append((hour, {v: values[v] for v in variables}))
        return out


def _format_time(epoch_hour: int, offset_s: int, unixtime: bool) -> str | int:
    if unixtime:
        return epoch_hour * 3600
    local = datetime.fromtimestamp(epoch_hour * 3600 + offset_s, tz=UTC)
    return local.strftime("%Y-%m-%dT%H:%M")


def build_response(
    source: WeatherSource,
    *,
    latitude: float,
    longitude: float,
    start: date,
    end: date,
    variables: Sequence[str],
    unixtime: bool = False,
    page_order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """One location's Open-Meteo JSON document.

    ``page_order`` lists day-pages (24 hours each) in the order to emit them, repeats included; the
    server's fault injection uses it for duplicated and out-of-order pages. ``None`` means in order.

    >>> doc = build_response(WeatherSource(1), latitude=52.52, longitude=13.41, start=date(2024, 1, 1),
    ...                      end=date(2024, 1, 1), variables=["temperature_2m"])
    >>> doc["hourly"]["time"][:2], len(doc["hourly"]["temperature_2m"]), doc["hourly_units"]["time"]
    (['2024-01-01T00:00', '2024-01-01T01:00'], 24, 'iso8601')
    """
    hours = source.hours(latitude, longitude, start, end, variables)
    pages = [hours[i : i + HOURS_PER_PAGE] for i in range(0, len(hours), HOURS_PER_PAGE)]
    order = range(len(pages)) if page_order is None else page_order
    emitted = [row for p in order for row in pages[p]]
    hourly: dict[str, list[Any]] = {"time": [_format_time(h, 0, unixtime) for h, _ in emitted]}
    for var in variables:
        hourly[var] = [values[var] for _, values in emitted]
    elevation = float(mix64(location_key(source.seed, latitude, longitude)) % 800)
    return {
        "latitude": round(latitude, 4),
        "longitude": round(longitude, 4),
        "generationtime_ms": 0.5,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "timezone_abbreviation": "GMT",
        "elevation": elevation,
        "hourly_units": {
            "time": "unixtime" if unixtime else "iso8601",
            **{v: VARIABLES[v] for v in variables},
        },
        "hourly": hourly,
    }


def faulty_page_order(n_pages: int, rng: random.Random, *, dup_rate: float, shuffle: bool) -> list[int]:
    """Page indexes with each page repeated with probability ``dup_rate`` and, if ``shuffle``, permuted.

    >>> faulty_page_order(3, random.Random(0), dup_rate=0.0, shuffle=False)
    [0, 1, 2]
    >>> sorted(set(faulty_page_order(5, random.Random(1), dup_rate=0.5, shuffle=True)))
    [0, 1, 2, 3, 4]
    """
    order = [p for p in range(n_pages) for _ in range(2 if rng.random() < dup_rate else 1)]
    if shuffle:
        rng.shuffle(order)
    return order


def parse_dates(params: Mapping[str, str], today: date) -> tuple[date, date]:
    """``start_date``/``end_date`` (YYYY-MM-DD), or ``past_days`` back from ``today`` (forecast default).

    >>> parse_dates({"start_date": "2024-01-01", "end_date": "2024-01-03"}, date(2025, 1, 1))
    (datetime.date(2024, 1, 1), datetime.date(2024, 1, 3))
    >>> parse_dates({}, date(2025, 1, 10))
    (datetime.date(2025, 1, 10), datetime.date(2025, 1, 16))
    """
    if "start_date" in params or "end_date" in params:
        start = date.fromisoformat(params["start_date"])
        end = date.fromisoformat(params["end_date"])
        if end < start:
            raise ValueError(f"end_date {end} is before start_date {start}")
        return start, end
    past = int(params.get("past_days", 0))
    return today - timedelta(days=past), today + timedelta(days=6)
