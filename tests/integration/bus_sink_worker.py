"""A stream sink, run as a real process by the crash tests: bus → warehouse upsert → commit.

Each batch is upserted into ``--table`` keyed by the message id, and only then are its offsets
committed. One JSON line per batch goes to stdout (``received``, ``inserted``, ``updated``, ``rows``),
so a test can SIGKILL the process between the sink write and the commit. The process exits 0 once the
table holds ``--expect`` rows, 3 when ``--deadline`` passes first.

Settings come from ``load_settings(profile=--profile, cwd=--cwd)`` and the ``DOTJOIN__*`` environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pyarrow as pa

from dotjoin.config import load_settings
from dotjoin.platform.bus import Message, open_bus
from dotjoin.platform.warehouse import open_warehouse


def to_rows(batch: list[Message]) -> pa.Table:
    """The batch as sink rows, the last delivery of an id winning (an upsert takes each key once)."""
    latest: dict[str, Message] = {}
    for m in batch:
        latest[json.loads(m.value)["id"]] = m
    messages = list(latest.values())
    return pa.table(
        {
            "id": pa.array(list(latest), pa.string()),
            "seq": pa.array([json.loads(m.value)["seq"] for m in messages], pa.int64()),
            "payload": pa.array([m.value.decode() for m in messages], pa.string()),
            "src_partition": pa.array([m.partition for m in messages], pa.int32()),
            "src_offset": pa.array([m.offset for m in messages], pa.int64()),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--cwd", required=True, type=Path)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--expect", required=True, type=int)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--commit-delay", type=float, default=0.0, help="seconds between sink and commit")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args(argv)

    settings = load_settings(profile=args.profile, cwd=args.cwd)
    deadline = time.monotonic() + args.deadline
    with (
        open_warehouse(settings) as warehouse,
        open_bus(settings).consumer(args.group, [args.topic]) as consumer,
    ):
        rows = 0
        while rows < args.expect:
            if time.monotonic() > deadline:
                print(json.dumps({"event": "deadline", "rows": rows}), flush=True)
                return 3
            batch = consumer.consume(args.batch, timeout=0.5)
            if not batch:
                continue
            result = warehouse.upsert(args.table, to_rows(batch), key=["id"])
            rows = int(warehouse.scalar(f"SELECT count(*) FROM {args.table}"))
            event = {
                "received": len(batch),
                "inserted": result.inserted,
                "updated": result.updated,
                "rows": rows,
            }
            print(json.dumps({"event": "sunk", **event}), flush=True)
            time.sleep(args.commit_delay)
            consumer.commit(batch)  # only after the sink write: a crash before this line re-delivers
            print(json.dumps({"event": "committed", "received": len(batch)}), flush=True)
    print(json.dumps({"event": "done", "rows": rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
