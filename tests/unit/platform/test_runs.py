from __future__ import annotations

import json

import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import NotFoundError
from dotjoin.platform.runs import RunStore, accounting_check, start_run


def test_accounting_check_balances_and_names_the_gap() -> None:
    assert accounting_check({"input": 5, "output": 3, "quarantined": 1, "duplicates": 1}).passed
    bad = accounting_check({"input": 5, "output": 3})
    assert not bad.passed
    assert bad.detail is not None and "2 unaccounted" in bad.detail


def test_run_report_written_to_runs_dir_and_report_path(local_settings: Settings, tmp_path) -> None:
    extra = tmp_path / "out" / "report.json"
    with start_run(
        "demo_pipe", local_settings, params={"x": 1}, report_path=extra, record_history=False
    ) as run:
        run.count(input=10, output=8, quarantined=1)
        run.count(duplicates=1)
        run.output("t", rows=8)
        run.check_accounting()
    report = run.report
    assert report.status == "succeeded"
    assert report.finished_at is not None and report.finished_at >= report.started_at
    on_disk = json.loads((local_settings.runs_dir / f"{report.run_id}.json").read_text())
    assert on_disk["counts"] == {"input": 10, "output": 8, "quarantined": 1, "duplicates": 1}
    assert on_disk["checks"][0]["name"] == "row_accounting" and on_disk["checks"][0]["passed"]
    assert json.loads(extra.read_text())["run_id"] == report.run_id
    for key in (
        "pipeline",
        "run_id",
        "profile",
        "status",
        "started_at",
        "finished_at",
        "params",
        "counts",
        "outputs",
        "checks",
        "metrics",
    ):
        assert key in on_disk


def test_failed_check_fails_the_run_and_exception_is_recorded(local_settings: Settings) -> None:
    with start_run("p", local_settings, record_history=False) as run:
        run.count(input=3, output=1)
        run.check_accounting()
    assert run.report.status == "failed"

    with pytest.raises(RuntimeError), start_run("p", local_settings, record_history=False) as run2:
        raise RuntimeError("boom")
    stored = RunStore(local_settings.runs_dir).get(run2.run_id)
    assert stored.status == "failed" and stored.error == "RuntimeError: boom"


def test_store_lists_newest_first_filters_and_resolves_prefixes(local_settings: Settings) -> None:
    ids = []
    for name in ("a", "b", "a"):
        with start_run(name, local_settings, record_history=False) as run:
            pass
        ids.append(run.run_id)
    store = RunStore(local_settings.runs_dir)
    assert [r.run_id for r in store.list()] == ids[::-1]
    assert {r.pipeline for r in store.list(pipeline="a")} == {"a"}
    assert store.get(ids[1][:-2]).run_id == ids[1]
    with pytest.raises(NotFoundError, match="no run"):
        store.get("zzz")


def test_history_table_in_the_warehouse(local_settings: Settings) -> None:
    from dotjoin.platform.warehouse import open_warehouse

    with start_run("hist", local_settings) as run:
        run.count(input=2, output=2)
    with open_warehouse(local_settings) as wh:
        row = wh.query("SELECT status, input_rows, report FROM dotjoin_runs WHERE run_id = $1", [run.run_id])
    assert row.to_pylist()[0]["status"] == "succeeded"
    assert row.to_pylist()[0]["input_rows"] == 2
    assert json.loads(row.to_pylist()[0]["report"])["run_id"] == run.run_id


def test_a_down_pushgateway_never_fails_the_run(
    local_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = local_settings.model_copy(
        update={
            "observability": local_settings.observability.model_copy(
                update={"pushgateway": f"127.0.0.1:{port}"}
            )
        }
    )
    with start_run("pushed", settings, record_history=False) as run:
        run.check("a", passed=True, dataset="t")
    assert run.report.status == "succeeded"
    assert "could not push its metrics to the Pushgateway" in caplog.text


def test_a_runs_checks_are_dq_results_rows(local_settings: Settings) -> None:
    from dotjoin.platform.warehouse import open_warehouse

    with start_run("dq", local_settings) as run:
        run.check("nullValues:id", passed=False, observed=2, expected="= 0", dataset="orders", failed_rows=2,
                  sample=["a", "b"], severity="warning")  # fmt: skip
        run.check("rowCount", passed=True, observed=10, expected="> 0", dataset="orders", partition="day=1")
    assert run.report.status == "succeeded"  # a failed warning does not fail the run
    with open_warehouse(local_settings) as wh:
        rows = wh.query(
            "SELECT * FROM dq_results WHERE run_id = $1 ORDER BY ordinal", [run.run_id]
        ).to_pylist()
    assert [(r["check_name"], r["dataset"], r["partition_key"], r["passed"], r["observed_value"],
             r["failed_rows"], json.loads(r["sample"]), r["threshold"], r["severity"]) for r in rows] == [
        ("nullValues:id", "orders", "", False, 2.0, 2, ["a", "b"], "= 0", "warning"),
        ("rowCount", "orders", "day=1", True, 10.0, None, [], "> 0", "error"),
    ]  # fmt: skip
