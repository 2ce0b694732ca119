"""The /features page: the latest parity runs and the drift windows, drawn from what the jobs wrote."""

from __future__ import annotations

import json

from dotjoin.config import Settings
from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.drift import DRIFT_STATUS
from dotjoin.platform.runs.report import Check
from tests.unit.web.support import SaveReport, TestClient, elements, text


def test_empty_page_says_what_to_run(client: TestClient) -> None:
    page = client.get("/features")
    assert page.status_code == 200
    shown = text(page.text)
    assert "not run yet" in shown and "dotjoin features drift" in shown


def test_parity_runs_and_drift_windows(
    client: TestClient, save_report: SaveReport, local_settings: Settings
) -> None:
    check = Check(name="served = offline (as known at serving)", passed=False, observed=2, expected=0,
                  detail="118 of 120 served vectors agree")  # fmt: skip
    served = save_report(
        pipeline="features_served_parity", counts={"input": 120, "output": 120}, checks=[check]
    )
    psi = {f.name: 0.01 for f in FEATURES}
    windows = [
        {"model_version": "3", "start_ms": n * 60_000, "end_ms": (n + 5) * 60_000, "rows": 500,
         "psi": {**psi, "card_sum_1h": 0.05 * n}, "ks": {f.name: 0.02 for f in FEATURES}}
        for n in range(6)
    ]  # fmt: skip
    older = {**windows[0], "model_version": "2", "psi": {**psi, "merchant_count_7d": 0.9}}
    path = local_settings.resolve(DRIFT_STATUS)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"computed_at": 0, "threshold": 0.2, "windows": [older, *windows]}))

    page = client.get("/features")
    assert page.status_code == 200
    shown = text(page.text)
    assert "118 of 120 served vectors agree" in shown and "features_parity not run yet" in shown
    assert any(a["href"] == f"/runs/{served.run_id}" for a in elements(page.text, "a"))
    assert "model 3, 500 vectors" in shown  # the newest model's windows; version 2's drift is history
    rows = [r for r in elements(page.text, "tr", class_="drifted")]
    assert len(rows) == 1 and shown.index("card_sum_1h 0.25") < shown.index("merchant_count_7d")
    lines = {p["data-series"] for p in elements(page.text, "polyline")}
    assert {"card_sum_1h", "alert 0.2"} <= lines and len(lines) == 5
