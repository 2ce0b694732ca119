"""A local-runner backfill, run as a real process by the crash tests.

The toy flow ``prepare -> slow -> finish`` runs for ``--start``..``--end``. ``slow`` prints one JSON line
when it starts (``{"event": "slow", "date": ..., "attempt": ...}``) and, on the ``--hang-on`` date, blocks
for a minute so a test can ``kill -9`` the process mid-date. After each date a ``date`` line; at the end a
``done`` line with the dates run, skipped and failed. A :class:`DotjoinError` (e.g. the flow's lock is
held) prints an ``error`` line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from dotjoin.config import load_settings
from dotjoin.exceptions import DotjoinError
from dotjoin.orchestration.runner import backfill
from dotjoin.orchestration.steps import Flow, Step, StepContext


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


def make_flow(name: str, hang_on: date | None, slow_s: float) -> Flow:
    def prepare(ctx: StepContext) -> dict[str, str]:
        return {"day": ctx.logical_date.isoformat()}

    def slow(ctx: StepContext) -> dict[str, Any]:
        emit("slow", date=ctx.logical_date, attempt=ctx.attempt, run_id=ctx.run_id)
        time.sleep(60 if ctx.logical_date == hang_on else slow_s)
        return {"prepared": ctx.get("prepare", "day")}

    return Flow(
        name,
        "crash-test flow",
        (
            Step("prepare", prepare),
            Step("slow", slow, upstream=("prepare",), timeout_s=120),
            Step("finish", lambda ctx: {"ok": True}, upstream=("slow",)),
        ),
        date(2024, 1, 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cwd", required=True, type=Path)
    parser.add_argument("--flow", required=True)
    parser.add_argument("--start", required=True, type=date.fromisoformat)
    parser.add_argument("--end", required=True, type=date.fromisoformat)
    parser.add_argument("--hang-on", type=date.fromisoformat)
    parser.add_argument("--slow-s", type=float, default=0.05)
    args = parser.parse_args(argv)

    settings = load_settings(profile="local", cwd=args.cwd, env={})
    flow = make_flow(args.flow, args.hang_on, args.slow_s)
    try:
        result = backfill(
            flow, settings, args.start, args.end, progress=lambda done, total, day: emit("date", date=day)
        )
    except DotjoinError as exc:
        emit("error", message=str(exc))
        return 2
    emit("done", ran=result.ran, skipped=result.skipped, failed=result.failed)
    return 0 if not result.failed else 1


if __name__ == "__main__":
    sys.exit(main())
