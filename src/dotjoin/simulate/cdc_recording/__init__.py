"""A real Debezium 3.6.1 recording: the change topics of the CDC workload (seed 42, 80 transactions, from
empty tables) as ``kcat -J`` lines, and the workload's journal of the same run — what ``dotjoin demo`` and
the unit tests replay without PostgreSQL, Kafka or Connect. Re-record with ``scripts/record_cdc.py``."""

from pathlib import Path

HERE = Path(__file__).parent
EVENTS = HERE / "events.jsonl.gz"
JOURNAL = HERE / "journal.jsonl.gz"
TABLES = ("cdc_demo.inventory", "cdc_demo.inventory_movements", "cdc_demo.users")
