"""Issue 12's acceptance run: a randomized workload for ``--minutes`` on the real engines, with the applier
SIGKILLed and the Kafka Connect worker killed and restarted at random moments and a column added
mid-stream; then `cdc verify` (source tables and the journal vs the lake) and the history queries on DuckDB
and Trino, which must answer identically.

Needs `make services` (PostgreSQL, the object store, Kafka, Kafka Connect, Trino). Captures its own schema
(slot, topics, connector, change logs), removed at the end unless ``--keep``. Prints the seed: the same seed
replays the same transactions. Exit 1 on any mismatch.

Usage: .venv/bin/python scripts/cdc_acceptance.py [--minutes 10] [--tps 40] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dotjoin.config import Settings, load_settings
from dotjoin.pipelines.cdc import connector, history_queries, source
from dotjoin.pipelines.cdc.tables import cdc_tables
from dotjoin.pipelines.cdc.verify import verify
from dotjoin.platform.lake import open_lake
from dotjoin.services import process
from dotjoin.services.connect import ConnectService
from dotjoin.simulate.cdc_workload import populate

REPO = Path(__file__).resolve().parents[1]


def cli(settings: Settings, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ}
    for key, value in settings.cdc.model_dump(include={"source_schema", "topic_prefix"}).items():
        env[f"DOTJOIN__CDC__{key.upper()}"] = value
    command = [sys.executable, "-m", "dotjoin", "--profile", "stack", "-q", "cdc", *args]
    return subprocess.Popen(command, cwd=REPO, env=env, **popen)


def applier(settings: Settings) -> subprocess.Popen[bytes]:
    return cli(settings, "apply", "--batch-seconds", "0.5", "--idle-exit", "60", "--group",
               f"accept-{settings.cdc.source_schema}", stdout=subprocess.DEVNULL)  # fmt: skip


def kill_connect(settings: Settings) -> None:
    worker = ConnectService(settings)
    pid = worker.our_pid()
    if pid is None:
        raise SystemExit("Kafka Connect is not one of ours: start it with `dotjoin services up connect`")
    os.kill(pid, signal.SIGKILL)
    worker.pid_file.unlink(missing_ok=True)
    process.wait_for(lambda: not process.port_open(worker.host, worker.port), timeout=30, interval=0.2)
    worker.ensure_up()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tps", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1, 1_000_000))
    parser.add_argument("--keep", action="store_true", help="Leave the capture in place.")
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible schedule, not a secret
    seconds = args.minutes * 60
    kill_applier_at, kill_connect_at, add_column_at = (rng.uniform(0.15, 0.85) * seconds for _ in range(3))
    print(f"seed {args.seed}: {args.minutes:g} min at {args.tps:g} tps; applier SIGKILL at "
          f"{kill_applier_at:.0f} s, Connect killed at {kill_connect_at:.0f} s, column added at "
          f"{add_column_at:.0f} s", flush=True)  # fmt: skip
    base = load_settings(profile="stack")
    token = uuid.uuid4().hex[:6]
    names = {
        "source_schema": f"accept_{token}",
        "publication": f"pub_accept_{token}",
        "slot": f"slot_accept_{token}",
        "topic_prefix": f"accept{token}",
        "connector": f"accept-{token}",
    }
    settings = base.model_copy(update={"cdc": base.cdc.model_copy(update=names)})
    journal = Path(tempfile.mkdtemp(prefix="cdc-accept-")) / "journal.jsonl"
    failures: list[str] = []
    source.setup(settings)
    try:
        populate(settings, users=2_000, skus=200, seed=args.seed)
        connector.register(settings)
        connector.wait_running(settings, timeout_s=90)
        began = time.monotonic()
        load = cli(settings, "workload", "--tps", str(args.tps), "--duration", str(seconds), "--seed",
                   str(args.seed), "--journal", str(journal), stdout=subprocess.DEVNULL)  # fmt: skip
        apply = applier(settings)
        events = sorted([(kill_applier_at, "kill applier"), (kill_connect_at, "kill connect"),
                         (add_column_at, "add column")])  # fmt: skip
        for at, what in events:
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            print(f"  {time.monotonic() - began:5.0f} s: {what}", flush=True)
            if what == "kill applier":
                apply.send_signal(signal.SIGKILL)
                apply.wait(10)
                apply = applier(settings)
            elif what == "kill connect":
                kill_connect(settings)
            else:
                with source.connect(settings) as conn:
                    conn.execute(f"ALTER TABLE {names['source_schema']}.users ADD COLUMN referrer text")
        if load.wait(timeout=seconds + 120) != 0:
            raise SystemExit("the workload failed")
        apply.wait(timeout=600)
        with open_lake(settings) as lake:
            tables = sorted(
                t.source for t in cdc_tables(lake) if t.source.startswith(names["source_schema"] + ".")
            )
            for verdict in verify(settings, lake, tables, journal):
                row = verdict.as_dict()
                print(f"  verify {row['table']}: {row['source_rows']:,} source rows, {row['lake_rows']:,} "
                      f"lake rows, {row['mismatches']} mismatches, {row['history_checked']:,} history "
                      f"versions checked, {len(row['history_mismatches'])} history mismatches",
                      flush=True)  # fmt: skip
                if (
                    row["mismatches"]
                    or row["history_mismatches"]
                    or row["source_digest"] != row["lake_digest"]
                ):
                    failures.append(f"verify {row['table']}")
            changes = [json.loads(line) for line in journal.open()]
            last = {c["key"][0]: c["op"] for c in changes if c["table"].endswith(".users")}
            user_id = next(k for k, op in last.items() if op != "d")
            now = dt.datetime.now(dt.UTC).isoformat()
            asked = {"changes_per_day": {}, "current_inventory": {},
                     "user_as_of": {"user_id": str(user_id), "as_of": now}}  # fmt: skip
            for name, values in asked.items():
                on_duckdb = history_queries.run(lake, settings, name, values, engine="duckdb").to_pylist()
                on_trino = history_queries.run(lake, settings, name, values, engine="trino").to_pylist()
                same = on_duckdb == on_trino
                print(f"  {name}: {len(on_duckdb):,} rows on DuckDB, {len(on_trino):,} on Trino, "
                      f"{'identical' if same else 'DIFFERENT'}", flush=True)  # fmt: skip
                if not same or not on_duckdb:
                    failures.append(name)
        print(
            f"{len(changes):,} journalled changes in {time.monotonic() - began:.0f} s; "
            f"{'FAILED: ' + ', '.join(failures) if failures else 'all checks passed'}",
            flush=True,
        )
    finally:
        if not args.keep:
            connector.remove(settings, drop_slot=True, timeout_s=60)
            with source.connect(settings) as conn:
                conn.execute(f"DROP PUBLICATION IF EXISTS {names['publication']}")
                conn.execute(f"DROP SCHEMA IF EXISTS {names['source_schema']} CASCADE")
            with open_lake(settings) as lake:
                for table in lake.list_tables("raw"):
                    if table.startswith(f"raw.{names['source_schema']}_"):
                        lake.drop_table(table)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
