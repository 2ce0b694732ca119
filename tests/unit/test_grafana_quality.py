"""The Grafana dashboard of data quality (``docs/grafana/quality.json``): a dashboard exported for sharing,
whose every metric and label is one the run-report collector really exports (read from its exposition
of a report with checks): renaming a dq_* family or label without the dashboard fails here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dotjoin.platform.runs.metrics import RunReportCollector
from dotjoin.platform.runs.report import Check, RunReport

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "quality.json"
METRIC = re.compile(r"\b((?:dq|dotjoin)_\w+)")
SELECTOR = re.compile(r"\b((?:dq|dotjoin)_\w+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
TARGET_LABELS = {"job", "instance"}


def _exported() -> dict[str, set[str]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    report = RunReport(pipeline="p", run_id="p-1", profile="local", status="failed", started_at=t0,
                       finished_at=t0 + timedelta(seconds=3),
                       checks=[Check(name="latency:at", passed=False, observed=7200.0, dataset="t",
                                     failed_rows=2, duration_s=0.1)])  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunReportCollector(reports=[report]))
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_every_query_names_what_the_collector_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["id"] is None and dashboard["uid"] == "dotjoin-quality"
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"]]
    exported = _exported()
    problems = [f"metric {m}" for q in queries for m in METRIC.findall(q) if m not in exported]
    for q in queries:
        labels = set().union(TARGET_LABELS, *(exported.get(n, set()) for n in METRIC.findall(q)))
        used = {m for _, sel in SELECTOR.findall(q) for m in MATCHER.findall(sel)}
        used |= {g.strip() for group in GROUPING.findall(q) for g in group.split(",") if g.strip()}
        problems += [f"label {label} in {q}" for label in sorted(used - labels)]
    assert problems == []
    assert {"dq_check_passed", "dq_failed_rows", "dq_observed_value", "dq_check_duration_seconds"} <= {
        m for q in queries for m in METRIC.findall(q)
    }
