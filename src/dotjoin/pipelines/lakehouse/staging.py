"""The staging zone: typed, de-duplicated, flattened Iceberg tables, hidden-partitioned by event day.

One raw file feeds one day of one table. :func:`load_file` parses it (:mod:`.parse`), evolves the table
when the file brings new columns (union by name: old rows read them as null), and replaces exactly that
day — delete the day + append, one Iceberg commit — so re-loading a day is idempotent and leaves the
other days untouched. Rejected records go to the quarantine with their reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from dotjoin.pipelines.lakehouse.parse import CSV_SPECS, IOT_KEY, Parsed, parse_csv, parse_iot
from dotjoin.pipelines.lakehouse.raw import ManifestEntry
from dotjoin.platform.lake import Lake, PartitionField
from dotjoin.platform.quality.quarantine import Quarantine

logger = logging.getLogger(__name__)

ZONE = "staging"
IOT_TABLE = "iot_readings"
#: staging table -> the event-time column its hidden ``day()`` partition derives from
EVENT_COLUMNS: dict[str, str] = {
    **{entity: spec.event_column for entity, spec in CSV_SPECS.items()},
    IOT_TABLE: "reading_ts",
}
KEYS: dict[str, tuple[str, ...]] = {
    **{entity: spec.key for entity, spec in CSV_SPECS.items()},
    IOT_TABLE: IOT_KEY,
}


@dataclass(frozen=True)
class DayLoad:
    table: str  # staging.<name>
    day: date
    parsed: Parsed
    added_columns: list[str]


def day_filter(column: str, day: date) -> str:
    """The PyIceberg filter selecting one event day (it prunes to that day's partition).

    >>> day_filter("ts", date(2026, 1, 3))
    "ts >= '2026-01-03T00:00:00' and ts < '2026-01-04T00:00:00'"
    """
    start, end = day.isoformat(), (day + timedelta(days=1)).isoformat()
    return f"{column} >= '{start}T00:00:00' and {column} < '{end}T00:00:00'"


def entity_of(file_name: str) -> str:
    """The staging table a raw file feeds: ``order_items_2026-01-01.csv`` -> ``order_items``.

    >>> entity_of("order_items_2026-01-01.csv"), entity_of("iot_2026-01-01.jsonl")
    ('order_items', 'iot_readings')
    """
    stem = file_name.rsplit("_", 1)[0]
    return IOT_TABLE if stem == "iot" else stem


def load_file(lake: Lake, raw_zone: Path, entry: ManifestEntry, quarantine: Quarantine) -> DayLoad:
    """Parse one landed raw file and replace its day in the staging table."""
    path = raw_zone / entry.file
    day = date.fromisoformat(entry.ingest_date)
    loaded_at = datetime.fromisoformat(entry.landed_at)
    entity = entity_of(path.name)
    data = path.read_bytes()
    if entity == IOT_TABLE:
        parsed = parse_iot(data, day=day, source_file=entry.file, loaded_at=loaded_at)
    else:
        parsed = parse_csv(data, CSV_SPECS[entity], day=day, source_file=entry.file, loaded_at=loaded_at)
    for reject in parsed.rejects:
        quarantine.reject(
            source=f"raw/{entry.file}",
            position=reject.position,
            reason=reject.reason,
            detail=reject.detail,
            raw=reject.raw,
        )
    name = f"{ZONE}.{entity}"
    event = EVENT_COLUMNS[entity]
    lake.create_table(name, parsed.table.schema, partition_by=[PartitionField(event, "day")])
    added = lake.evolve(name, parsed.table.schema)
    if added:
        logger.info("schema drift: %s gained column(s) %s from %s", name, ", ".join(added), entry.file)
    lake.replace(name, parsed.table, row_filter=day_filter(event, day))
    logger.info(
        "staged %s %s: %d rows, %d duplicates, %d quarantined",
        name,
        day,
        parsed.table.num_rows,
        parsed.duplicates,
        len(parsed.rejects),
    )
    return DayLoad(table=name, day=day, parsed=parsed, added_columns=added)
