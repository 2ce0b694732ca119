"""The local runner on toy flows: order, metadata, retries, timeouts, trigger rules, alerts, resuming."""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.orchestration.lock import FlowLockedError, flow_lock
from dotjoin.orchestration.runner import run_date, was_skipped
from dotjoin.orchestration.state import RunState
from dotjoin.orchestration.steps import Flow, Step, StepContext, StepFailed
from dotjoin.platform.runs import RunReport, RunStore
from tests.unit.orchestration.conftest import FakeSleep, Receiver

DAY = date(2024, 3, 7)
START = date(2024, 1, 1)


def flow(name: str, *steps: Step) -> Flow:
    return Flow(name, "a toy flow", steps, START)


def statuses(report: RunReport) -> dict[str, str]:
    return {s.name: s.status for s in report.steps}


def test_steps_run_in_order_and_pass_metadata_by_reference(local_settings: Settings, tmp_path: Path) -> None:
    seen: list[StepContext] = []

    def extract(ctx: StepContext) -> dict[str, Any]:
        seen.append(ctx)
        path = tmp_path / f"extract-{ctx.logical_date}.json"
        path.write_text(json.dumps([1, 2, 3]))  # the data stays in a file; only its path moves on
        return {"path": str(path), "rows": 3}

    def load(ctx: StepContext) -> dict[str, Any]:
        seen.append(ctx)
        rows = json.loads(Path(ctx.get("extract", "path")).read_text())
        ctx.upstream["extract"]["rows"] = -1  # type: ignore[index]  # a step's scribbles stay its own
        return {"loaded": len(rows), "base_url": ctx.params["base_url"]}

    def audit(ctx: StepContext) -> None:
        seen.append(ctx)
        assert ctx.get("extract", "rows") == 3

    toy = flow(
        "meta",
        Step("audit", audit, upstream=("load", "extract")),
        Step("load", load, upstream=("extract",)),
        Step("extract", extract),
    )
    report = run_date(toy, local_settings, DAY, params={"base_url": "http://127.0.0.1:9"})

    assert report.status == "succeeded", report
    assert [s.name for s in report.steps] == ["extract", "load", "audit"]
    assert [c.step for c in seen] == ["extract", "load", "audit"]
    assert {(c.logical_date, c.attempt, c.run_id, c.flow) for c in seen} == {(DAY, 1, report.run_id, "meta")}
    assert report.steps[1].metadata == {"loaded": 3, "base_url": "http://127.0.0.1:9"}
    assert report.steps[2].metadata == {}  # None is no metadata
    assert report.params == {
        "logical_date": "2024-03-07",
        "runtime": "local",
        "base_url": "http://127.0.0.1:9",
    }
    stored = RunStore(local_settings.runs_dir).get(report.run_id)
    assert [(s.name, s.status, s.attempts) for s in stored.steps] == [
        ("extract", "succeeded", 1),
        ("load", "succeeded", 1),
        ("audit", "succeeded", 1),
    ]
    with RunState.open(local_settings) as state:
        assert state.steps("meta", DAY)["extract"].metadata["rows"] == 3
        assert state.flow_run("meta", DAY).status == "succeeded"  # type: ignore[union-attr]


def test_retries_wait_the_backoff_and_a_recovered_step_sends_no_alert(
    alerting_settings: Settings, receiver: Receiver, fake_sleep: FakeSleep
) -> None:
    attempts: list[int] = []

    def flaky(ctx: StepContext) -> dict[str, int]:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError(f"blip {ctx.attempt}")
        return {"attempt": ctx.attempt}

    step = Step("flaky", flaky, retries=4, retry_delay_s=2, backoff=3, max_retry_delay_s=10)
    report = run_date(flow("flaky", step), alerting_settings, DAY, sleep=fake_sleep)

    assert report.status == "succeeded"
    assert attempts == [1, 2, 3]
    assert fake_sleep.delays == [2.0, 6.0]
    assert (report.steps[0].attempts, report.steps[0].metadata) == (3, {"attempt": 3})
    with RunState.open(alerting_settings) as state:
        tries = state.tries("flaky", DAY, "flaky")
    assert [(t.attempt, t.status, t.error) for t in tries] == [
        (1, "failed", "ConnectionError: blip 1"),
        (2, "failed", "ConnectionError: blip 2"),
        (3, "succeeded", None),
    ]
    assert receiver.posts == []


def test_last_failed_try_alerts_once_and_fails_the_downstream_steps(
    alerting_settings: Settings, receiver: Receiver, fake_sleep: FakeSleep
) -> None:
    calls: list[int] = []

    def broken(ctx: StepContext) -> None:
        calls.append(ctx.attempt)
        raise StepFailed(f"2 rows with high < low on {ctx.logical_date}")

    toy = flow(
        "alerting",
        Step("check", broken, retries=2, retry_delay_s=1, backoff=1),
        Step("publish", lambda ctx: None, upstream=("check",)),
        Step("cleanup", lambda ctx: None, upstream=("publish",), trigger_rule="none_failed"),
        Step("independent", lambda ctx: {"ok": True}),
    )
    report = run_date(toy, alerting_settings, DAY, sleep=fake_sleep)

    assert calls == [1, 2, 3] and fake_sleep.delays == [1.0, 1.0]
    assert report.status == "failed"
    assert statuses(report) == {
        "check": "failed",
        "publish": "upstream_failed",
        "cleanup": "upstream_failed",
        "independent": "succeeded",
    }
    assert (
        report.error
        == "FlowRunFailedError: step check failed: StepFailed: 2 rows with high < low on 2024-03-07"
    )
    assert RunStore(alerting_settings.runs_dir).get(report.run_id).status == "failed"
    (post,) = receiver.posts
    machine = post["dotjoin"]
    assert (machine["dag"], machine["task"], machine["date"], machine["attempts"]) == (
        "alerting",
        "check",
        "2024-03-07",
        3,
    )
    assert machine["error"] == "StepFailed: 2 rows with high < low on 2024-03-07"
    assert (machine["runtime"], machine["run_id"]) == ("local", report.run_id)
    assert "alerting.check failed for 2024-03-07 after 3 attempt(s)" in post["text"]


def test_timeout_interrupts_a_step_on_the_main_thread_and_off_it(
    local_settings: Settings, fake_sleep: FakeSleep
) -> None:
    def stuck(ctx: StepContext) -> None:
        time.sleep(30)

    def busy(ctx: StepContext) -> None:
        while True:  # pure Python: what the watchdog fallback can interrupt
            sum(range(1000))

    toy = flow(
        "timeouts",
        Step("stuck", stuck, timeout_s=0.2, retries=1),  # SIGALRM interrupts even a blocking sleep
        Step("busy", busy, timeout_s=0.2, retries=0),
    )
    t0 = time.monotonic()
    report = run_date(toy, local_settings, DAY, sleep=fake_sleep)
    assert time.monotonic() - t0 < 5
    assert statuses(report) == {"stuck": "failed", "busy": "failed"}
    assert report.steps[0].attempts == 2
    assert report.steps[0].error == "StepTimeoutError: step timeouts.stuck timed out after 0.2 s"

    # off the main thread (no signals): a watchdog interrupts Python code, like the busy loop
    spinning = flow("spinning", Step("busy", busy, timeout_s=0.2, retries=1))
    results: list[RunReport] = []
    worker = threading.Thread(
        target=lambda: results.append(run_date(spinning, local_settings, DAY, sleep=fake_sleep))
    )
    worker.start()
    worker.join(timeout=20)
    (threaded,) = results
    assert (threaded.steps[0].attempts, threaded.steps[0].error) == (
        2,
        "StepTimeoutError: step spinning.busy timed out after 0.2 s",
    )


def test_branch_skips_what_it_did_not_choose_and_trigger_rules_follow_airflow(
    local_settings: Settings,
) -> None:
    seen: dict[str, StepContext] = {}

    def record(ctx: StepContext) -> dict[str, str]:
        seen[ctx.step] = ctx
        return {"by": ctx.step}

    toy = flow(
        "branchy",
        Step("pick", lambda ctx: "weekday" if ctx.logical_date.weekday() < 5 else "weekend", branch=True),
        Step("weekday", record, upstream=("pick",)),
        Step("weekend", record, upstream=("pick",)),
        Step("after_weekend", record, upstream=("weekend",)),
        Step("join", record, upstream=("weekday", "weekend"), trigger_rule="none_failed"),
        Step("strict_join", record, upstream=("weekday", "weekend")),
    )
    report = run_date(toy, local_settings, DAY)  # a Thursday

    assert report.status == "succeeded"
    assert statuses(report) == {
        "pick": "succeeded",
        "weekday": "succeeded",
        "weekend": "skipped",
        "after_weekend": "skipped",
        "join": "succeeded",
        "strict_join": "skipped",
    }
    assert report.steps[0].metadata == {"chosen": ["weekday"]}
    assert dict(seen["join"].upstream) == {"weekday": {"by": "weekday"}, "weekend": {}}
    assert seen["join"].get("weekend", "by", "none") == "none"
    with RunState.open(local_settings) as state:
        assert state.steps("branchy", DAY)["weekend"].status == "skipped"


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (
            Step("rows", lambda ctx: [1, 2], retries=0),
            "DataError: step rows returned list; a step returns a dict of small metadata or None",
        ),
        (
            Step("rows", lambda ctx: {"big": "x" * 70_000}, retries=0),
            "DataError: step rows returned 70011 bytes of metadata (limit 65536); "
            "pass a path or a table name instead of the data",
        ),
        (
            Step("rows", lambda ctx: "nowhere", branch=True, retries=0),
            "DataError: branch rows chose ['nowhere']; it may choose among its downstream steps: next",
        ),
        (Step("rows", lambda ctx: {"day": ctx.logical_date}, retries=0), None),  # a date is JSON (as text)
        (
            Step("rows", lambda ctx: int("twelve\nrows"), retries=0),
            "ValueError: invalid literal for int() with base 10: 'twelve\\nrows'",
        ),
    ],
)
def test_invalid_return_values_fail_the_step_with_one_line(
    local_settings: Settings, step: Step, error: str | None
) -> None:
    toy = flow("returns", step, Step("next", lambda ctx: None, upstream=("rows",)))
    report = run_date(toy, local_settings, DAY)
    assert report.steps[0].error == error
    assert report.status == ("succeeded" if error is None else "failed")
    if error is not None:
        assert "\n" not in (report.error or "")


def test_a_succeeded_date_is_not_run_again_unless_forced(local_settings: Settings) -> None:
    calls: list[str] = []
    toy = flow("once", Step("a", lambda ctx: calls.append(ctx.run_id) or {"n": len(calls)}))

    first = run_date(toy, local_settings, DAY)
    again = run_date(toy, local_settings, DAY)
    assert calls == [first.run_id]
    assert was_skipped(again) and not was_skipped(first)
    assert (again.run_id, again.status) == (first.run_id, "succeeded")
    assert [(s.name, s.reused, s.metadata) for s in again.steps] == [("a", True, {"n": 1})]
    assert len(RunStore(local_settings.runs_dir).list()) == 1  # nothing ran, nothing new recorded

    forced = run_date(toy, local_settings, DAY, force=True)
    assert calls == [first.run_id, forced.run_id] and forced.run_id != first.run_id
    assert forced.params["force"] is True
    assert [(s.reused, s.metadata) for s in forced.steps] == [(False, {"n": 2})]


def test_a_failed_run_resumes_only_its_failed_and_missing_steps(local_settings: Settings) -> None:
    calls: list[str] = []
    broken = {"load": True}

    def extract(ctx: StepContext) -> dict[str, Any]:
        calls.append("extract")
        return {"path": f"raw/{ctx.logical_date}.csv"}

    def load(ctx: StepContext) -> dict[str, Any]:
        calls.append("load")
        if broken["load"]:
            raise RuntimeError("warehouse down")
        return {"from": ctx.get("extract", "path")}

    toy = flow(
        "resume",
        Step("extract", extract),
        Step("load", load, upstream=("extract",), retries=0),
        Step("report", lambda ctx: calls.append("report") or {"rows": 1}, upstream=("load",)),
    )
    first = run_date(toy, local_settings, DAY)
    assert statuses(first) == {"extract": "succeeded", "load": "failed", "report": "upstream_failed"}

    broken["load"] = False
    second = run_date(toy, local_settings, DAY)
    assert second.status == "succeeded"
    assert calls == ["extract", "load", "load", "report"]  # extract was not run again
    reused = {s.name: s.reused for s in second.steps}
    assert reused == {"extract": True, "load": False, "report": False}
    assert second.steps[1].metadata == {"from": "raw/2024-03-07.csv"}  # stored metadata fed the re-run
    with RunState.open(local_settings) as state:
        assert [(t.step, t.run_id) for t in state.tries("resume", DAY)] == [
            ("extract", first.run_id),
            ("load", first.run_id),
            ("load", second.run_id),
            ("report", second.run_id),
        ]


def test_an_interrupted_run_is_not_left_running(local_settings: Settings) -> None:
    def interrupted(ctx: StepContext) -> None:
        raise KeyboardInterrupt

    toy = flow("interrupted", Step("a", lambda ctx: None), Step("b", interrupted, upstream=("a",)))
    with pytest.raises(KeyboardInterrupt):
        run_date(toy, local_settings, DAY)
    with RunState.open(local_settings) as state:
        run = state.flow_run("interrupted", DAY)
        assert run is not None and (run.status, run.error) == ("failed", "KeyboardInterrupt:")
        assert {n: s.status for n, s in state.steps("interrupted", DAY).items()} == {
            "a": "succeeded",
            "b": "failed",
        }
    (report,) = RunStore(local_settings.runs_dir).list()
    assert report.status == "failed" and [s.name for s in report.steps] == ["a"]


def test_a_second_runner_of_the_same_flow_is_refused(local_settings: Settings) -> None:
    toy = flow("locked", Step("a", lambda ctx: None))
    with flow_lock(local_settings, "locked"), pytest.raises(FlowLockedError) as caught:
        run_date(toy, local_settings, DAY)
    message = str(caught.value)
    assert "flow locked is already being run by another runner" in message and "\n" not in message
    assert run_date(toy, local_settings, DAY).status == "succeeded"  # released with the holder


def test_per_task_overhead_is_small(local_settings: Settings) -> None:
    steps = [Step(f"s{i}", lambda ctx: None, upstream=(f"s{i - 1}",) if i else ()) for i in range(60)]
    report = run_date(flow("overhead", *steps), local_settings, DAY)
    starts = [s.started_at for s in report.steps if s.started_at is not None]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 59
    assert statistics.median(gaps) < 0.05  # everything between two no-op steps: state writes included
