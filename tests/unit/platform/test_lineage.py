"""Lineage: a run's report as OpenLineage run events (with the check records as data-quality facets),
stored in ``lineage_events`` with the run's history, and the graph drawn from them."""

from __future__ import annotations

import json

from dotjoin.config import Settings
from dotjoin.platform.lineage import LINEAGE_TABLE, graph, run_events, run_uuid
from dotjoin.platform.runs import start_run
from dotjoin.platform.warehouse import open_warehouse
from tests.conftest import Receiver


def _run(settings: Settings, *, fail: bool = False) -> object:
    with start_run("shop", settings) as run:
        run.input("file:/data/orders.csv")
        run.output("orders", rows=3, dataset="table:orders")
        run.job("dbt.fact_orders", inputs=["table:orders"], outputs=["model:fact_orders"])
        run.check("nullValues:order_id", passed=not fail, observed=2 if fail else 0, expected="= 0",
                  dataset="orders", failed_rows=2 if fail else 0)  # fmt: skip
        run.check("rowCount", passed=True, observed=3, expected="> 0", dataset="orders")
        run.check_accounting()  # a check of the run itself: no dataset, not an assertion of one
    return run.report


def test_a_run_is_openlineage_events_with_its_checks_as_quality_facets(local_settings: Settings) -> None:
    report = _run(local_settings)
    main, dbt, checks = run_events(report, local_settings)  # type: ignore[arg-type]
    assert (
        main["schemaURL"].endswith("2-0-2/OpenLineage.json#/$defs/RunEvent")
        and main["eventType"] == "COMPLETE"
    )
    assert main["job"] == {"namespace": "dotjoin", "name": "dotjoin.shop", "facets": {}}
    assert main["run"]["runId"] == run_uuid(report.run_id)  # type: ignore[attr-defined]
    assert [(d["namespace"], d["name"]) for d in main["inputs"]] == [("file", "/data/orders.csv")]
    assert main["outputs"][0]["namespace"].startswith("duckdb://") and main["outputs"][0]["name"] == "orders"
    assert dbt["job"]["name"] == "dotjoin.shop.dbt.fact_orders"
    assert dbt["run"]["facets"]["parent"]["run"]["runId"] == main["run"]["runId"]
    assert [d["name"] for d in dbt["outputs"]] == ["fact_orders"]
    (checked,) = checks["inputs"]
    facets = checked["inputFacets"]
    assertions = facets["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["column"], a["success"], a["expected"], a["actual"]) for a in assertions] == [
        ("nullValues", "order_id", True, "= 0", "0"),
        ("rowCount", None, True, "> 0", "3"),
    ]
    assert facets["dataQualityMetrics"]["rowCount"] == 3
    assert facets["dataQualityMetrics"]["columnMetrics"] == {"order_id": {"nullCount": 0}}
    assert facets["dataQualityAssertions"]["_schemaURL"].endswith("DataQualityAssertionsDatasetFacet")


def test_events_are_stored_once_per_run_and_draw_the_graph(local_settings: Settings) -> None:
    first = _run(local_settings)
    second = _run(local_settings, fail=True)
    with open_warehouse(local_settings) as wh:
        rows = wh.query(f"SELECT * FROM {LINEAGE_TABLE} ORDER BY event_time DESC, run_id DESC").to_pylist()
    assert len(rows) == 6  # three events of each run
    assert {r["event_type"] for r in rows if r["run_id"] == second.run_id} == {"FAIL"}  # type: ignore[attr-defined]
    stored = json.loads(next(r["event"] for r in rows if r["job"] == "dotjoin.shop"))
    assert "dotjoin_ref" not in json.dumps(stored) and stored["producer"].startswith("urn:dotjoin:")
    drawn = graph(rows)
    assert {(e["source"], e["target"]) for e in drawn["edges"]} == {
        ("file:/data/orders.csv", "job:dotjoin.shop"), ("job:dotjoin.shop", "table:orders"),
        ("table:orders", "job:dotjoin.shop.dbt.fact_orders"),
        ("job:dotjoin.shop.dbt.fact_orders", "model:fact_orders"),
    }  # fmt: skip
    job = next(n for n in drawn["nodes"] if n["id"] == "job:dotjoin.shop")
    assert job["run_id"] == second.run_id != first.run_id  # type: ignore[attr-defined]  # the latest event


def test_a_run_posts_its_events_to_an_openlineage_endpoint(
    local_settings: Settings, receiver: Receiver
) -> None:
    settings = local_settings.model_copy(update={"observability": local_settings.observability.model_copy(
        update={"openlineage_url": receiver.url})})  # fmt: skip
    report = _run(settings)
    assert [e["job"]["name"] for e in receiver.posts] == [
        "dotjoin.shop", "dotjoin.shop.dbt.fact_orders", "dotjoin.shop.checks"
    ]  # fmt: skip
    assert receiver.posts[0]["run"]["runId"] == run_uuid(report.run_id)  # type: ignore[attr-defined]
    assert all("dotjoin_ref" not in json.dumps(e) for e in receiver.posts)
