"""``dotjoin quality check|results`` on the hand-counted case of tests/unit/platform/quality_case.py."""

from __future__ import annotations

import json
from pathlib import Path

from dotjoin.config import load_settings
from dotjoin.platform.warehouse import open_warehouse
from tests.unit.cli.test_cli import dotjoin
from tests.unit.platform import quality_case as case


def test_check_fails_naming_each_broken_rule_and_results_list_them(tmp_path: Path) -> None:
    with open_warehouse(load_settings(profile="local", cwd=tmp_path, env={})) as wh:
        wh.load_arrow("orders", case.ORDERS)
        wh.load_arrow("customers", case.CUSTOMERS)
    contract = tmp_path / "orders.yaml"
    contract.write_text(case.CONTRACT.replace("{customers}", "customers"))
    done = dotjoin("quality", "check", str(contract), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "8 of 10 checks failed:" in done.stdout  # as counted by hand in quality_case.EXPECTED
    assert "relationship:customer_id on orders: 2, expected = 0 (e.g. c8; c9)" in done.stdout
    assert "Traceback" not in done.stderr
    failing = dotjoin("quality", "results", "--failing", "-o", "json", cwd=tmp_path)
    assert failing.returncode == 1
    rows = json.loads(failing.stdout)
    assert {r["check"] for r in rows} == {name for name, (ok, *_) in case.EXPECTED.items() if not ok}
    assert all(r["dataset"] == "orders" for r in rows)
    bad = dotjoin("quality", "check", str(contract), "--partition", "status", cwd=tmp_path)
    assert bad.returncode == 2 and "COLUMN=VALUE" in bad.stderr
