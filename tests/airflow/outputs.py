"""The outputs of a flow for a range of dates, as engine-independent checksums.

The same query runs on DuckDB (local profile) and PostgreSQL (stack); rows are normalised (floats and
decimals rounded to 6 places, timestamps in UTC ISO form), sorted and hashed, so the local runner's
DuckDB and Airflow's PostgreSQL can be compared value for value. Load timestamps and run ids are left out:
they differ between any two runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from dotjoin.config import Settings
from dotjoin.platform.warehouse import open_warehouse

HOURLY = "city, hour, temperature_2m, relative_humidity_2m, precipitation, wind_speed_10m"


def queries(flow: str, first: date, last: date, cities: Sequence[str]) -> dict[str, tuple[str, list[Any]]]:
    """``{table: (sql, params)}``: what ``flow`` writes for ``first..last`` (and their months)."""
    lo = datetime.combine(first, time(), UTC)
    hi = datetime.combine(last + timedelta(days=1), time(), UTC)
    names = list(cities)
    hourly = (
        f"SELECT {HOURLY} FROM weather_hourly WHERE hour >= $1 AND hour < $2 AND city = ANY($3)",
        [lo, hi, names],
    )
    if flow == "monthly_aggregates":
        return {
            "weather_hourly": hourly,
            "weather_daily": (
                "SELECT * FROM weather_daily WHERE day BETWEEN $1 AND $2 AND city = ANY($3)",
                [first, last, names],
            ),
            "weather_monthly": (
                "SELECT * FROM weather_monthly WHERE month BETWEEN $1 AND $2 AND city = ANY($3)",
                [first.replace(day=1), last, names],
            ),
        }
    if flow == "stocks":
        return {
            "stock_prices_daily": (
                "SELECT symbol, trade_date, open, high, low, close, volume, content_hash "
                "FROM stock_prices_daily WHERE trade_date BETWEEN $1 AND $2",
                [first, last],
            )
        }
    if flow == "nightly":
        return {
            "weather_hourly": hourly,
            "arrivals": (
                "SELECT feed, trip_id, stop_id, service_date, stop_sequence, arrival_time, delay_s "
                "FROM arrivals WHERE service_date BETWEEN $1 AND $2",
                [first, last],
            ),
        }
    raise KeyError(flow)


def _normal(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        return round(float(value), 6)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def checksums(
    settings: Settings, flow: str, first: date, last: date, cities: Sequence[str]
) -> dict[str, str]:
    """``{table: "<rows>:<sha256 prefix>"}`` of the flow's outputs for the dates."""
    out: dict[str, str] = {}
    with open_warehouse(settings) as wh:
        for table, (sql, params) in queries(flow, first, last, cities).items():
            rows = sorted(
                json.dumps([_normal(v) for v in row.values()], default=str)
                for row in wh.query(sql, params).to_pylist()
            )
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            out[table] = f"{len(rows)}:{digest}"
    return out
