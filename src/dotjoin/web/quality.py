"""What the quality, dataset and lineage pages show, computed from the run reports on disk.

The check records are the reports' (:class:`~dotjoin.platform.runs.report.Check`), the lineage is the
reports' OpenLineage events (:func:`dotjoin.platform.lineage.run_events`), so the pages read the same
files as the run history, never the warehouse (which a pipeline may hold locked).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from dotjoin.config import Settings
from dotjoin.platform.lineage import graph, run_events
from dotjoin.platform.runs.report import Check, RunReport
from dotjoin.web.series import LineChart, line_chart

HISTORY = 30  # runs per dataset in the pass-rate strip


@dataclass
class Result:
    """One check result with the run that made it."""

    check: Check
    run: RunReport


@dataclass
class DatasetQuality:
    """A dataset's latest results and its pass rate per run, oldest first."""

    name: str
    latest: list[Result] = field(default_factory=list)
    history: list[tuple[RunReport, int, int]] = field(default_factory=list)  # (run, passed, total)

    @property
    def failing(self) -> list[Result]:
        return [r for r in self.latest if not r.check.passed]

    @property
    def last_checked(self) -> RunReport | None:
        return max((r.run for r in self.latest), key=lambda r: r.started_at, default=None)

    @property
    def passed(self) -> int:
        return sum(r.check.passed for r in self.latest)


def datasets(reports: list[RunReport]) -> list[DatasetQuality]:
    """Every checked dataset (reports newest first), failing ones first, then by name."""
    found: dict[str, DatasetQuality] = {}
    seen: set[tuple[str, str, str]] = set()
    for report in reports:
        per_dataset: dict[str, list[Check]] = defaultdict(list)
        for check in report.checks:
            if check.dataset:
                per_dataset[check.dataset].append(check)
        for name, checks in per_dataset.items():
            q = found.setdefault(name, DatasetQuality(name))
            if len(q.history) < HISTORY:
                q.history.insert(0, (report, sum(c.passed for c in checks), len(checks)))
            for check in checks:
                key = (name, check.name, check.partition or "")
                if key not in seen:
                    seen.add(key)
                    q.latest.append(Result(check, report))
    return sorted(found.values(), key=lambda q: (not q.failing, q.name))


def volume_chart(reports: list[RunReport], name: str) -> LineChart:
    """Rows per run of a dataset: its ``rowCount`` check where it has one, else the rows a run wrote."""
    points = []
    for report in reversed(reports):  # oldest first
        rows = next((c.observed for c in report.checks if c.dataset == name and c.name == "rowCount"), None)
        if rows is None:
            rows = next((o.rows for o in report.outputs if _short(o.dataset) == name or o.name == name), None)
        if isinstance(rows, int | float):
            points.append({"t": report.started_at.timestamp(), "rows": float(rows)})
    return line_chart(f"{name}: rows per run", points, [("rows", "rows")])


def freshness(results: list[Result]) -> list[Result]:
    return [r for r in results if r.check.name.startswith("latency:")]


def _short(reference: str | None) -> str | None:
    """A reference's dataset name as checks name it (``table:orders`` → ``orders``)."""
    if reference is None:
        return None
    name = reference.partition(":")[2]
    return name.rsplit(".", 1)[-1] if reference.startswith("model:") else name


# -- lineage ---------------------------------------------------------------------------------------------

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 210.0, 34.0, 70.0, 14.0, 10.0


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # a reference's kind (table, lake, model, topic, kv, file, api) or "job"
    label: str
    x: float
    y: float
    href: str | None
    status: str | None  # a dataset: "failing" / "passing" / None (never checked); a job: its last event


@dataclass(frozen=True)
class Edge:
    path: str  # SVG path data


@dataclass(frozen=True)
class LineageView:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    graph_edges: list[dict[str, str]]  # source → target ids, as :func:`dotjoin.platform.lineage.graph`


def lineage(reports: list[RunReport], settings: Settings, quality: list[DatasetQuality]) -> LineageView:
    """The lineage graph of the latest run of every pipeline, laid out left to right by depth."""
    latest: dict[str, RunReport] = {}
    for report in reports:
        if report.status != "running":
            latest.setdefault(report.pipeline, report)
    rows = []
    for report in latest.values():
        for event in run_events(report, settings):
            refs = {side: [d["dotjoin_ref"] for d in event[side]] for side in ("inputs", "outputs")}
            rows.append({"job": event["job"]["name"], "run_id": report.run_id, "pipeline": report.pipeline,
                         "event_type": event["eventType"], "inputs": _json(refs["inputs"]),
                         "outputs": _json(refs["outputs"])})  # fmt: skip
    drawn = graph(rows)
    status = {q.name: ("failing" if q.failing else "passing") for q in quality}
    return _layout(drawn["nodes"], drawn["edges"], status)


def _json(values: list[str]) -> str:
    return json.dumps(values)


def _layout(nodes: list[dict[str, Any]], edges: list[dict[str, str]], status: dict[str, str]) -> LineageView:
    parents: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        parents[e["target"]].append(e["source"])
    depth: dict[str, int] = {}

    def level(node: str, trail: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            ups = [p for p in parents[node] if p not in trail]
            depth[node] = 1 + max((level(p, trail | {node}) for p in ups), default=-1)
        return depth[node]

    columns: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for n in sorted(nodes, key=lambda n: n["id"]):
        columns[level(n["id"])].append(n)
    placed: dict[str, Node] = {}
    row_of: dict[str, float] = {}
    for col, members in sorted(columns.items()):
        # each node next to the mean row of its parents (fewer crossings), the first column by name
        def rank(n: dict[str, Any]) -> tuple[float, str]:
            ups = [row_of[p] for p in parents[n["id"]] if p in row_of]
            return (sum(ups) / len(ups) if ups else float("inf"), n["id"])

        row = -1.0
        for n in sorted(members, key=rank) if col else members:
            wanted = rank(n)[0]  # level with its parents where there is room, else the next free row
            row = max(row + 1, wanted if wanted != float("inf") else row + 1)
            row_of[n["id"]] = row
            x, y = PAD + col * (NODE_W + COL_GAP), PAD + row * (NODE_H + ROW_GAP)
            if n["kind"] == "job":
                href, state, label = (
                    f"/runs/{n['run_id']}",
                    n["status"].lower(),
                    n["name"].removeprefix("dotjoin."),
                )
            else:
                short = _short(n["id"]) or n["name"]
                href, state, label = f"/datasets/{short}", status.get(short), n["name"]
            placed[n["id"]] = Node(n["id"], n["kind"], label, x, y, href, state)
    drawn = []
    for e in edges:
        a, b = placed[e["source"]], placed[e["target"]]
        x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2
        mid = (x1 + x2) / 2
        drawn.append(Edge(f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"))
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + COL_GAP)
    height = PAD * 2 + (max(row_of.values(), default=0) + 1) * (NODE_H + ROW_GAP)
    return LineageView(list(placed.values()), drawn, width, height, edges)
