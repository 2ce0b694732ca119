"""The Spark detector as a real process for the crash test: ``run_spark`` on one topic, then exit.

``--every S``: a micro-batch every S seconds of at most ``--max-offsets`` messages, until killed;
without it, read what the topic holds and stop. Settings come from the stack profile (``--cwd``) and
the ``DOTJOIN__*`` environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dotjoin.config import load_settings
from dotjoin.pipelines.payments.history import Reference
from dotjoin.pipelines.payments.spark_job import run_spark


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--cwd", "--topic", "--table", "--lake-table", "--checkpoint", "--merchants", "--fx"):
        parser.add_argument(name, required=True)
    parser.add_argument("--every", type=float)
    parser.add_argument("--max-offsets", type=int)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k.startswith("DOTJOIN__")}
    settings = load_settings(profile="stack", cwd=Path(args.cwd), env=env)
    run_spark(
        settings,
        reference=Reference.read(Path(args.merchants), Path(args.fx)),
        topic=args.topic,
        table=args.table,
        lake_table=args.lake_table,
        checkpoint=Path(args.checkpoint),
        trigger="available_now" if args.every is None else args.every,
        max_offsets_per_trigger=args.max_offsets,
    )


if __name__ == "__main__":
    main()
