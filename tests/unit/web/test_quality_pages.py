"""/quality, /datasets/{name}, /lineage and /api/lineage, from run reports written here by hand."""

from __future__ import annotations

from datetime import timedelta

from dotjoin.platform.runs.report import Check, Job, Output
from tests.unit.web.support import T0, SaveReport, TestClient, elements, text


def _history(save_report: SaveReport) -> None:
    for n, nulls in enumerate((0, 0, 3)):  # the third run finds 3 null keys
        save_report(
            pipeline="shop", started_at=T0 + timedelta(hours=n),
            inputs=["file:/in/orders.csv"],
            outputs=[Output(name="orders", rows=100 + n, dataset="table:orders")],
            jobs=[Job(name="dbt.fact_orders", inputs=["table:orders"], outputs=["model:fact_orders"])],
            checks=[
                Check(name="nullValues:order_id", passed=nulls == 0, observed=nulls, expected="= 0",
                      dataset="orders", failed_rows=nulls, sample=["None"] * min(nulls, 1)),
                Check(name="rowCount", passed=True, observed=100 + n, expected="> 0", dataset="orders"),
                Check(name="dbt:unique_fact_orders_id", passed=True, observed=0, expected="= 0",
                      dataset="fact_orders"),
                Check(name="latency:ordered_at", passed=True, observed=120.0, expected="<= 3600 s",
                      dataset="fact_orders"),
            ],
        )  # fmt: skip


def test_the_quality_page_lists_datasets_their_history_and_the_failing_checks(
    client: TestClient, save_report: SaveReport
) -> None:
    _history(save_report)
    page = client.get("/quality")
    assert page.status_code == 200
    rows = text(page.text)
    assert "orders 1 / 2" in rows and "fact_orders 2 / 2" in rows
    strips = elements(page.text, "rect")
    assert [r["fill"] for r in strips[:3]] == ["#2f9e44", "#2f9e44", "#f08c00"]  # orders, oldest first
    failing = page.text[page.text.index("Failing checks") : page.text.index("<h2>Freshness")]
    assert "nullValues:order_id" in failing and "rowCount" not in text(failing)
    assert "3" in text(failing) and "None" in text(failing)
    freshness = text(page.text[page.text.index("<h2>Freshness") :])
    assert "fact_orders latency:ordered_at 120.0 <= 3600 s passed" in freshness


def test_a_dataset_page_shows_its_checks_freshness_and_volume(
    client: TestClient, save_report: SaveReport
) -> None:
    _history(save_report)
    page = client.get("/datasets/fact_orders")
    assert page.status_code == 200
    shown = text(page.text)
    assert "dbt:unique_fact_orders_id" in shown and "model:fact_orders" in shown
    assert "latency:ordered_at: newest row 120.0 s old" in shown
    orders = client.get("/datasets/orders")
    assert elements(orders.text, "polyline", class_="line")  # rows per run
    assert client.get("/datasets/nothing").status_code == 404


def test_the_lineage_page_and_api_draw_every_read_and_write(
    client: TestClient, save_report: SaveReport
) -> None:
    _history(save_report)
    graph = client.get("/api/lineage").json()
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {
        ("file:/in/orders.csv", "job:dotjoin.shop"), ("job:dotjoin.shop", "table:orders"),
        ("table:orders", "job:dotjoin.shop.dbt.fact_orders"),
        ("job:dotjoin.shop.dbt.fact_orders", "model:fact_orders"),
    }  # fmt: skip
    status = {n["id"]: n["status"] for n in graph["nodes"]}
    assert status["table:orders"] == "failing" and status["model:fact_orders"] == "passing"
    page = client.get("/lineage")
    links = [a["href"] for a in elements(page.text, "a")]
    assert "/datasets/orders" in links and "/datasets/fact_orders" in links
    assert any(h.startswith("/runs/shop-") for h in links)
    assert len(elements(page.text, "path", class_="edge")) == 4
