"""Jinja filters that format run-report values for people.

>>> fmt_int(1234567)
'1,234,567'
>>> fmt_duration(0.0421), fmt_duration(3.5), fmt_duration(125), fmt_duration(None)
('42 ms', '3.50 s', '2 min 5 s', '—')
>>> fmt_value({"b": 1}), fmt_value(None), fmt_value(2024), fmt_value(True)
('{"b": 1}', '—', '2024', 'true')
>>> fmt_metadata({"rows": 5, "path": "raw/x.csv"}), fmt_metadata({})
('rows=5, path=raw/x.csv', '—')
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment

DASH = "—"


def fmt_int(value: int | None) -> str:
    """An integer with thousands separators; a dash for ``None``."""
    return DASH if value is None else f"{value:,}"


def fmt_duration(seconds: float | None) -> str:
    """A short human duration: ``42 ms``, ``3.50 s``, ``2 min 5 s``, ``1 h 2 min``."""
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def fmt_time(value: datetime | None, *, utc_suffix: bool = True) -> str:
    """A timestamp in UTC, to the second (naive timestamps are taken as UTC)."""
    if value is None:
        return DASH
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}" + (" UTC" if utc_suffix else "")


def fmt_epoch(seconds: float | None) -> str:
    """Epoch seconds as a UTC timestamp (the detector's status file).

    >>> fmt_epoch(0)
    '1970-01-01 00:00:00 UTC'
    """
    return DASH if seconds is None else fmt_time(datetime.fromtimestamp(float(seconds), UTC))


def fmt_value(value: Any) -> str:
    """A check's observed/expected value or a param: JSON for structures, plain text for scalars."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)


def fmt_metadata(metadata: dict[str, Any] | None, limit: int = 160) -> str:
    """A step's metadata as ``key=value, ...``, cut at ``limit`` characters (the JSON has all of it)."""
    if not metadata:
        return DASH
    text = ", ".join(f"{k}={fmt_value(v)}" for k, v in metadata.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def install(env: Environment) -> None:
    """Register the filters on a Jinja environment."""
    env.filters.update(
        fmt_int=fmt_int,
        fmt_duration=fmt_duration,
        fmt_time=fmt_time,
        fmt_epoch=fmt_epoch,
        fmt_value=fmt_value,
        fmt_metadata=fmt_metadata,
    )
