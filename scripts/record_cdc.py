"""Record a real Debezium event file and its workload journal (the demo's and the unit tests' CDC input).

Needs `make services` (PostgreSQL, Kafka, Kafka Connect). Captures a fresh schema ``cdc_demo`` from
empty tables, runs the seeded workload with its journal, reads every change topic from the start and
writes the records as ``kcat -J`` lines (topic, partition, offset, key, payload), gzipped, then removes
the capture. Usage: .venv/bin/python scripts/record_cdc.py [--transactions 80] [--seed 42]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from dotjoin.config import load_settings
from dotjoin.pipelines.cdc import connector, source
from dotjoin.simulate.cdc_workload import Workload

OUT = Path(__file__).resolve().parents[1] / "src" / "dotjoin" / "simulate" / "cdc_recording"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=80)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    base = load_settings(profile="stack")
    names = {"source_schema": "cdc_demo", "publication": "pub_cdc_demo", "slot": "slot_cdc_demo",
             "topic_prefix": "cdcdemo", "connector": "cdc-demo-recorder"}  # fmt: skip
    settings = base.model_copy(update={"cdc": base.cdc.model_copy(update=names)})
    source.setup(settings)
    connector.register(settings)
    connector.wait_running(settings, timeout_s=90)
    journal = io.StringIO()
    load = Workload(settings, seed=args.seed, journal=journal)
    try:
        load.run(tps=20, duration=args.transactions / 20)
    finally:
        load.close()
    expected = journal.getvalue().count("\n")
    records = _read(settings, source.topics(settings), expected)
    OUT.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT / "events.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    with gzip.open(OUT / "journal.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(journal.getvalue())
    connector.remove(settings, drop_slot=True)
    with source.connect(settings) as conn:
        conn.execute("DROP PUBLICATION IF EXISTS pub_cdc_demo")
        conn.execute("DROP SCHEMA cdc_demo CASCADE")
    print(f"{len(records)} records ({expected} journalled changes) in {OUT}")


def _read(settings, topics, expected: int) -> list[dict]:  # type: ignore[no-untyped-def]
    consumer = Consumer({"bootstrap.servers": settings.bus.bootstrap_servers, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe(topics)
    out: list[dict] = []
    changes, deadline = 0, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                if changes >= expected:
                    break
                continue
            if m.error():
                continue
            value = m.value()
            changes += value is not None
            out.append({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                        "key": m.key().decode() if m.key() else None,
                        "payload": value.decode() if value is not None else None})  # fmt: skip
    finally:
        consumer.close()
    return out


if __name__ == "__main__":
    main()
