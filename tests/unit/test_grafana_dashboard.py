"""The Grafana dashboard of the payments detector (``docs/grafana/payments-fraud.json``).

Grafana is not run here: the tests check the JSON's shape (a dashboard exported for sharing, its one
datasource an ``__inputs`` entry) and that every metric and label its queries name is one the real
:class:`Monitor` exports, read from ``generate_latest`` of a monitor that counted one batch. Renaming a
metric in ``monitor.py`` without updating the dashboard fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dotjoin.pipelines.payments.detector import Alert
from dotjoin.pipelines.payments.monitor import Monitor

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "payments-fraud.json"
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
METRIC = re.compile(r"\bdotjoin_payments_\w+")
SELECTOR = re.compile(r"\b(dotjoin_payments_\w+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
TARGET_LABELS = {"job", "instance"}  # added by Prometheus at scrape time
# The families the detector had when the dashboard was written: each must be on it.
ON_DASHBOARD = {
    "dotjoin_payments_events_total",
    "dotjoin_payments_alerts_total",
    "dotjoin_payments_dead_letters_total",
    "dotjoin_payments_late_total",
    "dotjoin_payments_duplicates_total",
    "dotjoin_payments_consumer_lag_messages",
    "dotjoin_payments_alert_latency_seconds_bucket",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Sample name → its label names, as the detector's /metrics shows them after one batch."""
    monitor = Monitor(None)
    alert = Alert(
        event_id="e-1", card_id="c-1", merchant_id="m-1", event_time_ms=1_796_119_200_000, amount=950.0,
        score=0.93, anomaly=0.41, rules=("velocity",), models=("classifier",), explanation="test",
    )  # fmt: skip
    monitor.batch(scored=10, alerts=[alert], latencies_s=[0.03], dead_letters=1, late=1, duplicates=1, lag=5)
    text = generate_latest(monitor.registry).decode()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows hold their panels


def _queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL text of the dashboard: panel targets and template-variable queries."""
    queries = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        queries.append(query["query"] if isinstance(query, dict) else query or "")
        queries.append(var.get("definition", ""))
    return [q for q in queries if q]


def _unknown(queries: list[str], exported: dict[str, set[str]]) -> list[str]:
    """Metric names and label names of the queries that the exporter does not have."""
    problems = [f"metric {m}" for q in queries for m in METRIC.findall(q) if m not in exported]
    for q in queries:
        names = set(METRIC.findall(q)) & exported.keys()
        labels = set().union(TARGET_LABELS, *(exported[n] for n in names))
        used = {m for _, sel in SELECTOR.findall(q) for m in MATCHER.findall(sel)}
        used |= {g.strip() for group in GROUPING.findall(q) for g in group.split(",") if g.strip()}
        problems += [f"label {label} in {q}" for label in sorted(used - labels)]
    return problems


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["id"] is None  # an export for sharing: Grafana assigns the id on import
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs == {"DS_PROMETHEUS": inputs["DS_PROMETHEUS"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"

    panels = list(_panels(dashboard["panels"]))
    assert panels
    assert len({p["id"] for p in panels}) == len(panels)
    required = {r["id"] for r in dashboard["__requires"] if r["type"] == "panel"}
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["type"] in required, panel["title"]
        assert panel["title"] and panel["datasource"] == DS, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in {"s", "ops", "short", "percentunit"}, panel[
            "title"
        ]
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target["datasource"] == DS and target["expr"].strip(), panel["title"]

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"job", "instance"} <= variables.keys()
    assert all(v["datasource"] == DS for v in variables.values())
    assert '"${DS_PROMETHEUS}"' in DASHBOARD.read_text(encoding="utf-8")
    for panel in panels:
        for target in panel.get("targets", []):
            assert '$job"' in target["expr"] and '$instance"' in target["expr"], target["expr"]


def test_layout_fits_the_grid(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:  # top level; a collapsed row's panels are laid out on expand
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_metric_and_label_is_exported(dashboard: dict[str, Any], exported: dict[str, set[str]]) -> None:
    queries = _queries(dashboard)
    used = {m for q in queries for m in METRIC.findall(q)}
    assert ON_DASHBOARD - used == set()
    assert _unknown(queries, exported) == []


def test_a_renamed_metric_or_label_is_caught(exported: dict[str, set[str]]) -> None:
    assert "dotjoin_payments_events_total" in exported
    assert "dotjoin_payments_alert_latency_seconds_bucket" in exported
    assert "rule" in exported["dotjoin_payments_alerts_total"]
    assert _unknown(["sum(rate(dotjoin_payments_event_total[1m]))"], exported) == [
        "metric dotjoin_payments_event_total"
    ]
    assert _unknown(["rate(dotjoin_payments_alert_latency_seconds[1m])"], exported) == [
        "metric dotjoin_payments_alert_latency_seconds"  # the family name, not a sample: no suffix
    ]
    assert _unknown(['sum by (model) (dotjoin_payments_alerts_total{rule="velocity"})'], exported) == [
        'label model in sum by (model) (dotjoin_payments_alerts_total{rule="velocity"})'
    ]
