"""Daily and monthly weather aggregates, each a partition replaced in one transaction.

Both are computed from ``weather_hourly`` (UTC hours) with the same SQL on DuckDB and PostgreSQL.
Means and sums are cast to fixed-point decimals so that a re-run — whatever order the engine adds
floats in — gives byte-identical rows, which is what makes backfills checkable by checksum.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from dotjoin.platform.warehouse.base import Warehouse

DAILY, MONTHLY = "weather_daily", "weather_monthly"

_MEASURES = """
    count(*) AS hours,
    min(temperature_2m) AS temperature_min,
    max(temperature_2m) AS temperature_max,
    CAST(avg(temperature_2m) AS DECIMAL(8, 3)) AS temperature_mean,
    CAST(sum(precipitation) AS DECIMAL(10, 3)) AS precipitation_mm,
    max(wind_speed_10m) AS wind_max
"""
_MEASURE_COLUMNS = """
    hours INTEGER NOT NULL,
    temperature_min DOUBLE PRECISION,
    temperature_max DOUBLE PRECISION,
    temperature_mean DECIMAL(8, 3),
    precipitation_mm DECIMAL(10, 3),
    wind_max DOUBLE PRECISION
"""
DDL = {
    DAILY: f"CREATE TABLE IF NOT EXISTS {DAILY} (city VARCHAR NOT NULL, day DATE NOT NULL,"
    f" {_MEASURE_COLUMNS}, PRIMARY KEY (city, day))",
    MONTHLY: f"CREATE TABLE IF NOT EXISTS {MONTHLY} (city VARCHAR NOT NULL, month DATE NOT NULL,"
    f" days INTEGER NOT NULL, {_MEASURE_COLUMNS}, PRIMARY KEY (city, month))",
}


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def month_bounds(day: date) -> tuple[date, date]:
    """First and last day of ``day``'s month.

    >>> month_bounds(date(2024, 2, 10))
    (datetime.date(2024, 2, 1), datetime.date(2024, 2, 29))
    """
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def is_month_end(day: date) -> bool:
    """
    >>> is_month_end(date(2024, 2, 29)), is_month_end(date(2024, 2, 28))
    (True, False)
    """
    return (day + timedelta(days=1)).day == 1


def build_daily(wh: Warehouse, day: date, cities: Sequence[str]) -> int:
    """Replace ``day``'s rows of weather_daily for ``cities``; returns the number of cities aggregated."""
    wh.execute(DDL[DAILY])
    names = list(cities)
    with wh.transaction():
        wh.execute(f"DELETE FROM {DAILY} WHERE day = $1 AND city = ANY($2)", [day, names])
        wh.execute(
            f"INSERT INTO {DAILY} SELECT city, CAST($1 AS DATE) AS day, {_MEASURES} FROM weather_hourly"
            " WHERE hour >= $2 AND hour < $3 AND city = ANY($4) GROUP BY city",
            [day, _utc(day), _utc(day + timedelta(days=1)), names],
        )
        return int(wh.scalar(f"SELECT count(*) FROM {DAILY} WHERE day = $1 AND city = ANY($2)", [day, names]))


def build_monthly(wh: Warehouse, day: date, cities: Sequence[str]) -> tuple[int, int]:
    """Replace the month of ``day`` in weather_monthly for ``cities``.

    Returns (cities aggregated, the fewest hours any of them has in the month).
    """
    first, last = month_bounds(day)
    wh.execute(DDL[MONTHLY])
    names = list(cities)
    scope = "month = $1 AND city = ANY($2)"
    with wh.transaction():
        wh.execute(f"DELETE FROM {MONTHLY} WHERE {scope}", [first, names])
        wh.execute(
            f"INSERT INTO {MONTHLY} SELECT city, CAST($1 AS DATE) AS month,"
            " CAST(floor(count(*) / 24.0) AS INTEGER) AS days,"
            f" {_MEASURES} FROM weather_hourly"
            " WHERE hour >= $2 AND hour < $3 AND city = ANY($4) GROUP BY city",
            [first, _utc(first), _utc(last + timedelta(days=1)), names],
        )
        got = int(wh.scalar(f"SELECT count(*) FROM {MONTHLY} WHERE {scope}", [first, names]))
        min_hours = int(wh.scalar(f"SELECT min(hours) FROM {MONTHLY} WHERE {scope}", [first, names]) or 0)
    return got, min_hours
