"""The flows by name. A new orchestrated pipeline adds one line here (and a thin file in ``dags/``)."""

from __future__ import annotations

from importlib import import_module

from dotjoin.exceptions import NotFoundError
from dotjoin.orchestration.steps import Flow

#: name -> "module:attribute" of its :class:`Flow`, imported on first use (each pulls in its pipeline)
FLOWS: dict[str, str] = {
    "nightly": "dotjoin.pipelines.nightly.flow:FLOW",
    "stocks": "dotjoin.pipelines.stocks.flow:FLOW",
    "monthly_aggregates": "dotjoin.pipelines.monthly_aggregates.flow:FLOW",
}


def get_flow(name: str) -> Flow:
    """The flow called ``name``; an unknown name is one error line listing the known ones."""
    target = FLOWS.get(name)
    if target is None:
        raise NotFoundError(f"unknown pipeline {name!r}; orchestrated pipelines: {', '.join(sorted(FLOWS))}")
    module, _, attr = target.partition(":")
    flow = getattr(import_module(module), attr)
    if not isinstance(flow, Flow):
        raise TypeError(f"{target} is not a Flow")
    return flow
