"""Lineage: every run as OpenLineage run events, stored in the warehouse, and the graph they draw.

A pipeline names what it read and wrote with **references** — ``table:commits`` (the profile's
warehouse), ``lake:staging.orders`` (the lake's Iceberg catalog), ``model:fact_orders`` (a dbt model),
``topic:payments`` (the bus), ``kv:features`` (the online store), ``file:/data/commits.csv``,
``api:https://api.open-meteo.com/v1/forecast`` — on its run (``run.input``, ``run.output(...,
dataset=)``, ``run.job`` for steps with lineage of their own, such as dbt models). When the run ends,
:func:`run_events` turns its report into OpenLineage 2-0-2 ``RunEvent`` s (COMPLETE or FAIL):

* the run's own job (``dotjoin.<pipeline>``) with its inputs and outputs;
* one event per step job (``dotjoin.<pipeline>.<step>``) with a ``parent`` run facet;
* if it checked anything, a ``dotjoin.<pipeline>.checks`` job whose inputs are the datasets checked,
  each with the ``dataQualityAssertions`` facet (every check: name, success, column, severity,
  expected, actual) and ``dataQualityMetrics`` (row count, null counts) — the check records again.

The events are rows of ``lineage_events`` (upserted by run and job: recording a run again changes
nothing), written with the run's history. :func:`graph` reads the latest event of every job and returns
the datasets and jobs as nodes, read/write as edges.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dotjoin import __version__
from dotjoin.platform.runs.report import Check, RunReport

if TYPE_CHECKING:
    from dotjoin.config import Settings

logger = logging.getLogger(__name__)
LINEAGE_TABLE = "lineage_events"
LINEAGE_KEY = ["run_uuid", "job"]
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = f"urn:dotjoin:{__version__}"
JOB_NAMESPACE = "dotjoin"
_FACETS = "https://openlineage.io/spec/facets"
LINEAGE_SCHEMA = pa.schema(
    [
        pa.field("run_uuid", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),
        pa.field("run_id", pa.string()),  # dotjoin's run id
        pa.field("pipeline", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("event_time", pa.timestamp("us", tz="UTC")),
        pa.field("inputs", pa.string()),  # JSON list of references
        pa.field("outputs", pa.string()),
        pa.field("event", pa.string()),  # the OpenLineage event, JSON
    ]
)


def run_uuid(run_id: str, job: str = "") -> str:
    """The OpenLineage runId (a UUID) of a dotjoin run, or of one of its step jobs: stable per run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dotjoin:{run_id}:{job}"))


def dataset(reference: str, settings: Settings) -> dict[str, str]:
    """A reference's OpenLineage ``namespace`` and ``name`` (its naming conventions where they have one).

    >>> from pathlib import Path
    >>> from dotjoin.config import load_settings
    >>> s = load_settings(profile="stack", env={}, cwd=Path("/nonexistent"))
    >>> dataset("table:commits", s), dataset("topic:payments", s)["namespace"]
    ({'namespace': 'postgres://127.0.0.1:5432', 'name': 'dotjoin.public.commits'}, 'kafka://127.0.0.1:9092')
    >>> dataset("api:https://api.open-meteo.com/v1/forecast", s)
    {'namespace': 'https://api.open-meteo.com', 'name': '/v1/forecast'}
    """
    kind, _, name = reference.partition(":")
    if kind == "table":
        w = settings.warehouse
        if w.type == "postgres":
            qualified = name if "." in name else f"public.{name}"
            return {"namespace": f"postgres://{w.host}:{w.port}", "name": f"{w.dbname}.{qualified}"}
        return {"namespace": f"duckdb://{settings.resolve(w.path).absolute()}", "name": name}
    if kind in ("lake", "model"):
        return {"namespace": f"iceberg://{settings.lake.root}" if kind == "lake" else "dbt", "name": name}
    if kind == "topic":
        bus = settings.bus
        where = f"kafka://{bus.bootstrap_servers.split(',')[0]}" if bus.type == "kafka" else "dotjoin-bus"
        return {"namespace": where, "name": name}
    if kind == "kv":
        online = settings.features.online
        where = f"redis://{settings.redis.host}:{settings.redis.port}" if online == "redis" else "sqlite"
        return {"namespace": where, "name": name}
    if kind == "api":
        scheme, _, rest = name.partition("://")
        host, _, path = rest.partition("/")
        return {"namespace": f"{scheme}://{host}", "name": f"/{path}"}
    return {"namespace": "file", "name": name}


def run_events(report: RunReport, settings: Settings) -> list[dict[str, Any]]:
    """The report's OpenLineage run events (see the module docstring); none for a run still running."""
    if report.status == "running":
        return []
    event_type = "COMPLETE" if report.status == "succeeded" else "FAIL"
    main = f"{JOB_NAMESPACE}.{report.pipeline}"
    outputs = [o.dataset for o in report.outputs if o.dataset]
    events = [_event(report, main, event_type, report.inputs, outputs, settings)]
    parent = {"parent": _facet("ParentRunFacet", "1-1-0", run={"runId": run_uuid(report.run_id)},
                               job={"namespace": JOB_NAMESPACE, "name": main})}  # fmt: skip
    for job in report.jobs:
        events.append(
            _event(report, f"{main}.{job.name}", event_type, job.inputs, job.outputs, settings, parent)
        )
    checked = [c for c in report.checks if c.dataset]
    if checked:
        events.append(_checks_event(report, f"{main}.checks", event_type, checked, settings, parent))
    return events


def _facet(name: str, version: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{_FACETS}/{version}/{name}.json#/$defs/{name}", **fields}


def _event(
    report: RunReport,
    job: str,
    event_type: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    settings: Settings,
    run_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    sub = job.removeprefix(f"{JOB_NAMESPACE}.{report.pipeline}").lstrip(".")
    return {
        "eventType": event_type,
        "eventTime": _time(report.finished_at or report.started_at),
        "producer": PRODUCER,
        "schemaURL": SPEC,
        "run": {"runId": run_uuid(report.run_id, sub), "facets": run_facets or {}},
        "job": {"namespace": JOB_NAMESPACE, "name": job, "facets": {}},
        "inputs": [{**dataset(r, settings), "facets": {}, "dotjoin_ref": r} for r in inputs],
        "outputs": [{**dataset(r, settings), "facets": {}, "dotjoin_ref": r} for r in outputs],
    }


def _checks_event(
    report: RunReport,
    job: str,
    event_type: str,
    checks: list[Check],
    settings: Settings,
    parent: dict[str, Any],
) -> dict[str, Any]:
    by_dataset: dict[str, list[Check]] = {}
    for c in checks:
        by_dataset.setdefault(c.dataset or "", []).append(c)
    event = _event(report, job, event_type, [], [], settings, parent)
    for name, mine in by_dataset.items():
        reference = name if ":" in name else f"table:{name}"
        assertions = [_assertion(c) for c in mine]
        facets = {"dataQualityAssertions": _facet(_ASSERTIONS, "1-1-0", assertions=assertions)}
        rows = next((c.observed for c in mine if c.name == "rowCount"), None)
        nulls = {
            column: {"nullCount": int(c.observed)}
            for c in mine
            if c.name.startswith("nullValues:") and (column := _column(c)) and isinstance(c.observed, int)
        }
        if rows is not None or nulls:
            facets["dataQualityMetrics"] = _facet(_METRICS, "1-0-2", rowCount=rows, columnMetrics=nulls)
        entry = {
            **dataset(reference, settings),
            "inputFacets": facets,
            "facets": {},
            "dotjoin_ref": reference,
        }
        event["inputs"].append(entry)
    return event


_ASSERTIONS, _METRICS = "DataQualityAssertionsDatasetFacet", "DataQualityMetricsInputDatasetFacet"
_COLUMN_CHECKS = (
    "nullValues",
    "invalidValues",
    "missingValues",
    "duplicateValues",
    "relationship",
    "latency",
)


def _assertion(c: Check) -> dict[str, Any]:
    """One check as a ``dataQualityAssertions`` entry (its kind, success, column, threshold, value)."""
    return {
        "assertion": c.name.partition(":")[0],
        "success": c.passed,
        "name": c.name,
        "column": _column(c),
        "severity": c.severity,
        "expected": None if c.expected is None else str(c.expected),
        "actual": None if c.observed is None else json.dumps(c.observed, default=str),
    }


def _column(check: Check) -> str | None:
    """The column a contract check names (``nullValues:order_id`` → ``order_id``), if one."""
    kind, _, rest = check.name.partition(":")
    return rest if rest and "," not in rest and kind in _COLUMN_CHECKS else None


def _time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def event_rows(report: RunReport, settings: Settings) -> pa.Table:
    """The report's events as ``lineage_events`` rows."""
    at = report.finished_at or report.started_at
    return pa.Table.from_pylist(
        [
            {
                "run_uuid": e["run"]["runId"],
                "job": e["job"]["name"],
                "run_id": report.run_id,
                "pipeline": report.pipeline,
                "event_type": e["eventType"],
                "event_time": at,
                "inputs": json.dumps([d["dotjoin_ref"] for d in e["inputs"]]),
                "outputs": json.dumps([d["dotjoin_ref"] for d in e["outputs"]]),
                "event": json.dumps(stored(e)),
            }
            for e in run_events(report, settings)
        ],
        schema=LINEAGE_SCHEMA,
    )


def send(events: list[dict[str, Any]], settings: Settings) -> int:
    """POST each event to ``[observability] openlineage_url`` (the OpenLineage HTTP transport, as Marquez
    takes it); the number the endpoint accepted. Best effort: an unreachable endpoint or a refusal is one
    warning line, never an error (the events are in ``lineage_events`` either way)."""
    import httpx

    cfg = settings.observability
    key = cfg.openlineage_api_key.get_secret_value() if cfg.openlineage_api_key else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    sent = 0
    try:
        with httpx.Client(timeout=cfg.openlineage_timeout_s, headers=headers) as client:
            for event in events:
                response = client.post(cfg.openlineage_url, json=stored(event))
                if response.status_code >= 300:
                    logger.warning("OpenLineage endpoint answered HTTP %s for %s", response.status_code,
                                   event["job"]["name"])  # fmt: skip
                    continue
                sent += 1
    except httpx.HTTPError as exc:
        logger.warning("OpenLineage endpoint %s unreachable: %s", cfg.openlineage_url, type(exc).__name__)
    return sent


def stored(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the spec has it: our references kept out."""
    return {
        **event,
        "inputs": [_plain(d) for d in event["inputs"]],
        "outputs": [_plain(d) for d in event["outputs"]],
    }


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """A dataset of an event as the spec has it (our reference kept out of the stored JSON)."""
    return {k: v for k, v in d.items() if k != "dotjoin_ref"}


def graph(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The lineage graph from ``lineage_events`` rows (newest first): the latest event of every job.

    Returns ``{"nodes": [{id, kind, name, job?...}], "edges": [{source, target}]}``: a dataset node's id
    is its reference, a job node's id ``job:<name>``; edges go dataset → job (read) and job → dataset.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["job"], row)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    for job, row in sorted(latest.items()):
        inputs, outputs = json.loads(row["inputs"]), json.loads(row["outputs"])
        if job.endswith(".checks") or not (inputs or outputs):
            continue  # a check job reads what it checks: not a data flow; a job with no datasets: no flow
        jid = f"job:{job}"
        nodes[jid] = {"id": jid, "kind": "job", "name": job, "run_id": row["run_id"],
                      "pipeline": row["pipeline"], "status": row["event_type"]}  # fmt: skip
        for ref in inputs:
            nodes.setdefault(ref, _dataset_node(ref))
            edges.append({"source": ref, "target": jid})
        for ref in outputs:
            nodes.setdefault(ref, _dataset_node(ref))
            edges.append({"source": jid, "target": ref})
    return {"nodes": list(nodes.values()), "edges": edges}


def _dataset_node(reference: str) -> dict[str, Any]:
    kind, _, name = reference.partition(":")
    return {"id": reference, "kind": kind, "name": name}
