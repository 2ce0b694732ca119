"""Deterministic IoT source: one JSON-lines file per day of sensor messages.

Each message carries nested device metadata, an array of readings, optional fields (``battery`` and a
device ``location`` are sometimes missing) and numbers that are sometimes strings (``"21.5"``). From
``drift_day`` on, messages gain new fields — ``device.firmware`` and ``signal_dbm`` — the schema drift the
staging zone must absorb by evolving its table. Some messages are sent twice (at-least-once devices).
The ground truth counts readings and device-hours (per sensor) after de-duplication.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)

SENSORS = ("temperature", "humidity", "pressure")
SITES = ("plant-a", "plant-b", "warehouse-c")
MESSAGES_PER_HOUR = 4  # one message every quarter hour, at a random second in it


@dataclass
class IotTruth:
    """Readings and (device, hour, sensor) groups the hourly metrics mart must reproduce."""

    messages: int = 0
    readings: int = 0
    duplicate_messages: int = 0
    device_hours: set[tuple[str, str, str]] = field(default_factory=set)  # (device, hour iso, sensor)
    drifted_messages: int = 0


def _number(value: float, rng: random.Random) -> float | str:
    """A reading value, sent as a string one time in five (loose firmware).

    >>> _number(1.5, random.Random(0)) in (1.5, "1.5")
    True
    """
    return str(value) if rng.random() < 0.2 else value


def day_messages(
    day_index: int, day: date, rng: random.Random, *, devices: int, drift_day: int, truth: IotTruth
) -> list[str]:
    """The JSON lines of one day, advancing ``truth``."""
    lines: list[str] = []
    for d in range(1, devices + 1):
        device_id = f"dev-{d:03d}"
        for slot in range(24 * MESSAGES_PER_HOUR):
            hour, quarter = divmod(slot, MESSAGES_PER_HOUR)
            minute = quarter * 15 + rng.randrange(15)
            ts = datetime(day.year, day.month, day.day, hour, minute, rng.randrange(60))
            device: dict[str, object] = {
                "id": device_id,
                "site": SITES[d % len(SITES)],
                "model": f"TX{d % 3}",
            }
            if d % 4 != 0:  # optional nested object
                device["location"] = {"lat": round(38.7 + d / 100, 4), "lon": round(-9.1 - d / 100, 4)}
            sensors = SENSORS if d % 2 else SENSORS[:2]
            readings = [
                {"sensor": s, "value": _number(round(rng.gauss(20 + 10 * i, 3), 2), rng)}
                for i, s in enumerate(sensors)
            ]
            message: dict[str, object] = {"device": device, "ts": ts.isoformat() + "Z", "readings": readings}
            if rng.random() < 0.7:
                message["battery"] = rng.randint(5, 100)
            if day_index >= drift_day:
                device["firmware"] = f"2.{d % 4}.0"
                message["signal_dbm"] = -rng.randint(40, 95)
                truth.drifted_messages += 1
            line = json.dumps(message, separators=(",", ":"))
            lines.append(line)
            truth.messages += 1
            truth.readings += len(readings)
            truth.device_hours.update((device_id, ts.strftime("%Y-%m-%dT%H"), s) for s in sensors)
            if rng.random() < 0.02:
                lines.append(line)  # re-sent message
                truth.duplicate_messages += 1
    return lines


def generate(
    out_dir: Path,
    *,
    days: int,
    seed: int = 7,
    devices: int = 6,
    start: date = date(2026, 1, 1),
    drift_day: int | None = None,
) -> IotTruth:
    """Write ``iot_<YYYY-MM-DD>.jsonl`` for ``days`` days and return the ground truth.

    Args:
        out_dir: target directory (created if missing).
        days: number of daily files.
        seed: same seed, same bytes.
        devices: number of devices, each sending four messages an hour.
        start: the first day.
        drift_day: index of the first day with the new fields (default: the middle day).

    Example::

        truth = generate(Path("/tmp/iot"), days=4, seed=7)
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - deterministic test data, not security
    truth = IotTruth()
    drift = days // 2 if drift_day is None else drift_day
    for index in range(days):
        day = start + timedelta(days=index)
        lines = day_messages(index, day, rng, devices=devices, drift_day=drift, truth=truth)
        (out_dir / f"iot_{day.isoformat()}.jsonl").write_text("\n".join(lines) + "\n")
    logger.info("iot: %d days, %d messages into %s", days, truth.messages, out_dir)
    return truth
