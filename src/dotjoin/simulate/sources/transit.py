"""A deterministic transit agency: a GTFS static zip and GTFS-realtime TripUpdates per service date.

The feed (stops, routes, trips, stop_times, calendar) depends only on the seed; a trip's delays on a
date depend only on (seed, trip, stop sequence, date). Times are in the agency timezone, UTC.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from google.transit import gtfs_realtime_pb2

from dotjoin.simulate.sources.weather import mix64

AGENCY_ID = "DJT"
SERVICE_ID = "DAILY"
FIXED_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


@dataclass
class TransitSource:
    """The agency: ``routes`` routes x ``trips_per_route`` trips, each visiting ``stops_per_trip`` stops.

    Args:
        seed: changes the network and the delays.
        delay_overrides: ``(trip_id, stop_sequence, service_date) -> delay seconds`` (tests).
    """

    seed: int = 42
    n_stops: int = 24
    routes: int = 4
    trips_per_route: int = 6
    stops_per_trip: int = 8
    delay_overrides: dict[tuple[str, int, date], int] = field(default_factory=dict)

    def _rng(self) -> random.Random:
        return random.Random(self.seed)  # noqa: S311 - synthetic data, not crypto

    def tables(self) -> dict[str, list[dict[str, str]]]:
        """The GTFS tables as rows of strings, ready to write as CSV."""
        rng = self._rng()
        stops = [
            {
                "stop_id": f"S{i:03d}",
                "stop_name": f"Stop {i}",
                "stop_lat": f"{48.0 + rng.random():.6f}",
                "stop_lon": f"{2.0 + rng.random():.6f}",
            }
            for i in range(self.n_stops)
        ]
        routes, trips, stop_times = [], [], []
        for r in range(self.routes):
            route_id = f"R{r}"
            routes.append(
                {
                    "route_id": route_id,
                    "agency_id": AGENCY_ID,
                    "route_short_name": str(r + 1),
                    "route_long_name": f"Line {r + 1}",
                    "route_type": "3",
                }
            )
            path = rng.sample(range(self.n_stops), self.stops_per_trip)
            for t in range(self.trips_per_route):
                trip_id = f"{route_id}T{t:02d}"
                trips.append(
                    {"route_id": route_id, "service_id": SERVICE_ID, "trip_id": trip_id, "direction_id": "0"}
                )
                minute = 6 * 60 + t * 45 + r * 7
                for seq, stop in enumerate(path, start=1):
                    clock = f"{minute // 60:02d}:{minute % 60:02d}:00"
                    stop_times.append(
                        {
                            "trip_id": trip_id,
                            "arrival_time": clock,
                            "departure_time": clock,
                            "stop_id": f"S{stop:03d}",
                            "stop_sequence": str(seq),
                        }
                    )
                    minute += 3 + rng.randrange(5)
        return {
            "agency": [
                {
                    "agency_id": AGENCY_ID,
                    "agency_name": "dotjoin Transit",
                    "agency_url": "https://example.invalid",
                    "agency_timezone": "UTC",
                }
            ],
            "stops": stops,
            "routes": routes,
            "trips": trips,
            "stop_times": stop_times,
            "calendar": [
                {
                    "service_id": SERVICE_ID,
                    **dict.fromkeys(
                        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), "1"
                    ),
                    "start_date": "20200101",
                    "end_date": "20351231",
                }
            ],
        }

    def static_zip(self) -> bytes:
        """The GTFS zip; byte-for-byte the same for the same seed (fixed member timestamps)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, rows in self.tables().items():
                text = io.StringIO()
                writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
                zf.writestr(zipfile.ZipInfo(f"{name}.txt", FIXED_ZIP_TIME), text.getvalue())
        return buf.getvalue()

    def delay(self, trip_id: str, sequence: int, service_date: date) -> int:
        """Delay in seconds (-60..+600) of a trip at a stop on a date."""
        override = self.delay_overrides.get((trip_id, sequence, service_date))
        if override is not None:
            return override
        h = mix64(self.seed ^ mix64(hash_text(trip_id)) ^ (sequence << 20) ^ service_date.toordinal())
        return int(h % 661) - 60

    def trip_updates(self, service_date: date, *, entity_order: Sequence[int] | None = None) -> bytes:
        """A GTFS-realtime FeedMessage of TripUpdates for every trip on ``service_date``.

        ``entity_order`` lists entity indexes to emit (repeats and permutations: fault injection).
        """
        tables = self.tables()
        by_trip: dict[str, list[dict[str, str]]] = {}
        for st in tables["stop_times"]:
            by_trip.setdefault(st["trip_id"], []).append(st)
        midnight = int(
            datetime(service_date.year, service_date.month, service_date.day, tzinfo=UTC).timestamp()
        )
        feed = gtfs_realtime_pb2.FeedMessage()
        feed.header.gtfs_realtime_version = "2.0"
        feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
        feed.header.timestamp = midnight + 86_400
        entities = []
        for trip in tables["trips"]:
            entity = gtfs_realtime_pb2.FeedEntity()
            entity.id = f"{trip['trip_id']}-{service_date:%Y%m%d}"
            update = entity.trip_update
            update.trip.trip_id = trip["trip_id"]
            update.trip.route_id = trip["route_id"]
            update.trip.start_date = f"{service_date:%Y%m%d}"
            for st in by_trip[trip["trip_id"]]:
                seq = int(st["stop_sequence"])
                h, m, s = (int(x) for x in st["arrival_time"].split(":"))
                delay = self.delay(trip["trip_id"], seq, service_date)
                stu = update.stop_time_update.add()
                stu.stop_sequence = seq
                stu.stop_id = st["stop_id"]
                stu.arrival.delay = delay
                stu.arrival.time = midnight + h * 3600 + m * 60 + s + delay
            entities.append(entity)
        order = range(len(entities)) if entity_order is None else entity_order
        for i in order:
            feed.entity.append(entities[i])
        return feed.SerializeToString()

    def trip_count(self) -> int:
        return self.routes * self.trips_per_route


def hash_text(text: str) -> int:
    """A stable 64-bit integer of a string (Python's ``hash`` is salted per process).

    >>> hash_text("R0T01") == hash_text("R0T01")
    True
    """
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & ((1 << 64) - 1)
    return value
