"""A pure parser of GTFS-realtime FeedMessages into arrival rows keyed by (trip, stop, service date).

TripUpdates become arrivals; other entities (vehicle positions, alerts) are counted and skipped.
Repeated entities (the same stop-time update twice) are counted as duplicates; two different updates
for one key are conflicts, reported for quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from dotjoin.exceptions import DataError


class RealtimeFormatError(DataError):
    """The bytes are not a GTFS-realtime FeedMessage."""


@dataclass
class RealtimeParse:
    version: str
    timestamp: datetime | None
    arrivals: list[dict[str, Any]] = field(default_factory=list)
    updates: int = 0  # stop-time updates read (the input count)
    duplicates: int = 0
    conflicts: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail)
    other_entities: dict[str, int] = field(default_factory=dict)


def parse_feed_message(data: bytes) -> gtfs_realtime_pb2.FeedMessage:
    """Decode a FeedMessage or raise :class:`RealtimeFormatError`.

    >>> try:
    ...     parse_feed_message(b"not protobuf")
    ... except RealtimeFormatError as exc:
    ...     print(str(exc)[:34])
    not a GTFS-realtime FeedMessage: E
    """
    message = gtfs_realtime_pb2.FeedMessage()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise RealtimeFormatError(f"not a GTFS-realtime FeedMessage: {exc}") from exc
    if not message.HasField("header"):
        raise RealtimeFormatError("not a GTFS-realtime FeedMessage: no header")
    return message


def _service_date(text: str, fallback: date | None) -> date | None:
    if text:
        return datetime.strptime(text, "%Y%m%d").date()
    return fallback


def parse_trip_updates(
    data: bytes,
    *,
    feed: str,
    default_date: date | None = None,
    stop_of: dict[tuple[str, int], str] | None = None,
) -> RealtimeParse:
    """Arrival rows of every TripUpdate in ``data``.

    Args:
        data: a serialized FeedMessage.
        feed: the feed name stored with each row.
        default_date: service date for trips without ``start_date`` (default: the header's UTC date).
        stop_of: ``(trip_id, stop_sequence) -> stop_id`` from the static feed, for updates that give
            only a stop sequence.
    """
    message = parse_feed_message(data)
    header_ts = datetime.fromtimestamp(message.header.timestamp, tz=UTC) if message.header.timestamp else None
    fallback = default_date or (header_ts.date() if header_ts else None)
    out = RealtimeParse(version=message.header.gtfs_realtime_version, timestamp=header_ts)
    seen: dict[tuple[str, str, date], dict[str, Any]] = {}
    for entity in message.entity:
        if not entity.HasField("trip_update"):
            kind = next((k for k in ("vehicle", "alert") if entity.HasField(k)), "other")
            out.other_entities[kind] = out.other_entities.get(kind, 0) + 1
            continue
        update = entity.trip_update
        trip_id = update.trip.trip_id
        try:
            service_date = _service_date(update.trip.start_date, fallback)
        except ValueError:
            out.rejected.append(("bad_start_date", f"trip {trip_id}: start_date {update.trip.start_date!r}"))
            continue
        for stu in update.stop_time_update:
            out.updates += 1
            seq = stu.stop_sequence if stu.HasField("stop_sequence") else None
            stop_id = stu.stop_id or (stop_of or {}).get((trip_id, seq if seq is not None else -1), "")
            if not trip_id or not stop_id or service_date is None:
                out.rejected.append(("incomplete_update", f"trip {trip_id!r} stop {stop_id!r} seq {seq}"))
                continue
            event = stu.arrival if stu.HasField("arrival") else stu.departure
            row = {
                "feed": feed,
                "trip_id": trip_id,
                "stop_id": stop_id,
                "service_date": service_date,
                "stop_sequence": seq,
                "arrival_time": datetime.fromtimestamp(event.time, tz=UTC) if event.time else None,
                "delay_s": event.delay if event.HasField("delay") else None,
            }
            key = (trip_id, stop_id, service_date)
            previous = seen.get(key)
            if previous is None:
                seen[key] = row
            elif previous == row:
                out.duplicates += 1
            else:
                out.conflicts.append((row, f"conflicts with an earlier update for {key}"))
    out.arrivals = [seen[k] for k in sorted(seen, key=lambda k: (k[2], k[0], k[1]))]
    return out
