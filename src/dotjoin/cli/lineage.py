"""``dotjoin lineage export|send``: the runs' OpenLineage events, for Marquez or any OpenLineage consumer."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from dotjoin.cli.output import console

app = typer.Typer(
    help="Lineage: every run's OpenLineage events (what the /lineage page draws).", no_args_is_help=True
)
PipelineOption = Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every run on disk, not only each pipeline's latest.")]


def _events(pipeline: str | None, every: bool) -> list[dict]:
    from dotjoin.cli.main import STATE
    from dotjoin.platform.lineage import run_events
    from dotjoin.platform.runs.store import RunStore

    reports = RunStore(STATE.settings.runs_dir).list(pipeline=pipeline)  # newest first
    if not every:
        latest: dict[str, object] = {}
        reports = [r for r in reports if latest.setdefault(r.pipeline, r) is r]
    return [e for r in reversed(reports) for e in run_events(r, STATE.settings)]  # oldest first


@app.command()
def export(pipeline: PipelineOption = None, every: AllOption = False) -> None:
    """Print the OpenLineage run events (JSON lines, oldest first) of each pipeline's latest run.

    Example: dotjoin lineage export --all > events.jsonl
    """
    from dotjoin.platform.lineage import stored

    for event in _events(pipeline, every):
        sys.stdout.write(json.dumps(stored(event)) + "\n")


@app.command()
def send(
    url: Annotated[
        str, typer.Argument(help="The OpenLineage endpoint, e.g. http://127.0.0.1:5000/api/v1/lineage.")
    ],
    pipeline: PipelineOption = None,
    every: AllOption = False,
) -> None:
    """POST the events to an OpenLineage HTTP endpoint (Marquez's, DataHub's...); exit 1 unless all were
    taken. Runs send their own when [observability] openlineage_url is set; this sends the past ones.

    Example: dotjoin lineage send http://127.0.0.1:5000/api/v1/lineage --all
    """
    from dotjoin.cli.main import STATE
    from dotjoin.platform.lineage import send as post

    events = _events(pipeline, every)
    observability = STATE.settings.observability.model_copy(update={"openlineage_url": url})
    sent = post(events, STATE.settings.model_copy(update={"observability": observability}))
    console.print(f"{sent} of {len(events)} events sent to {url}", markup=False, highlight=False)
    if sent != len(events):
        raise typer.Exit(1)
