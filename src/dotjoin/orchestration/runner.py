"""The local runner: one flow, one logical date at a time, with retries, timeouts and durable state.

``run_date`` runs a flow's steps in ``flow.order()``. Each try of a step is recorded in the state file
(:mod:`.state`) before and after the step is called; a failed try is retried ``step.retries`` times
after ``step.retry_delay(n)`` seconds; after the last one the step is ``failed`` and an alert goes out.
Trigger rules and branches follow Airflow: ``all_success`` steps run when every upstream succeeded
(a failed upstream makes them ``upstream_failed``, a skipped one ``skipped``); ``none_failed`` steps run
unless an upstream failed; a branch skips the downstream steps it did not choose.

Resuming is the default: a date whose run succeeded is not run again, and a date whose run failed (or
whose runner died) reuses the steps that succeeded — only failed or missing work runs. ``force``
ignores both. ``backfill`` does this for a range of dates, one run report per date run.

Example::

    report = run_date(get_flow("stocks"), settings, date(2024, 3, 7), params={"base_url": url})
    result = backfill(get_flow("stocks"), settings, date(2024, 3, 1), date(2024, 3, 7))
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from dotjoin.exceptions import DotjoinError
from dotjoin.orchestration.alerts import Alert, send_alert
from dotjoin.orchestration.lock import flow_lock
from dotjoin.orchestration.state import FlowRun, RunState, StepState
from dotjoin.orchestration.steps import Flow, Step, StepContext, execute, flow_params
from dotjoin.orchestration.timeout import call_with_timeout
from dotjoin.platform.runs.report import RunReport, StepRecord, StepStatus, start_run

if TYPE_CHECKING:
    from dotjoin.config import Settings

logger = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Progress = Callable[[int, int, date], None]
#: ``report.params[SKIPPED]`` holds why ``run_date`` did not run the date (see :func:`was_skipped`)
SKIPPED = "skipped"
ALREADY_SUCCEEDED = "already succeeded"
MAX_ERROR_CHARS = 2000


class FlowRunFailedError(DotjoinError):
    """A step of the run failed (raised inside the run report's block so the report is marked failed)."""


def was_skipped(report: RunReport) -> bool:
    """True if ``run_date`` returned an earlier successful run instead of running the date again."""
    return SKIPPED in report.params


def run_date(
    flow: Flow,
    settings: Settings,
    logical_date: date,
    *,
    params: Mapping[str, Any] | None = None,
    force: bool = False,
    sleep: Sleep = time.sleep,
) -> RunReport:
    """Run ``flow`` for one logical date and return its run report.

    Args:
        flow: the flow to run.
        settings: the loaded settings (state file, alerts, everything the steps use).
        logical_date: the date (partition) the steps work on.
        params: runtime parameters every step sees as ``ctx.params`` (e.g. ``base_url``).
        force: run the date even if it succeeded, and re-run steps that succeeded before.
        sleep: waits between retries (tests pass a fake).

    Returns:
        The run's report (status ``failed`` if a step failed). A date that already succeeded is not
        run: the earlier run's steps come back as ``reused`` and :func:`was_skipped` is true.

    Raises:
        FlowLockedError: another runner is running this flow.
    """
    with flow_lock(settings, flow.name), RunState.open(settings) as state:
        return _run_one(flow, settings, state, logical_date, params=params, force=force, sleep=sleep)


@dataclass(frozen=True)
class DateOutcome:
    logical_date: date
    status: Literal["succeeded", "failed", "skipped"]
    report: RunReport | None = None  # None when the date was not run
    reason: str = ""  # why a date was skipped


@dataclass
class BackfillResult:
    flow: str
    start: date
    end: date
    outcomes: list[DateOutcome] = field(default_factory=list)

    def _dates(self, *statuses: str) -> list[date]:
        return [o.logical_date for o in self.outcomes if o.status in statuses]

    @property
    def ran(self) -> list[date]:
        return self._dates("succeeded", "failed")

    @property
    def skipped(self) -> list[date]:
        return self._dates("skipped")

    @property
    def succeeded(self) -> list[date]:
        return self._dates("succeeded")

    @property
    def failed(self) -> list[date]:
        return self._dates("failed")

    @property
    def reports(self) -> dict[date, RunReport]:
        return {o.logical_date: o.report for o in self.outcomes if o.report is not None}


def backfill(
    flow: Flow,
    settings: Settings,
    start: date,
    end: date,
    *,
    only_failed: bool = False,
    force: bool = False,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    sleep: Sleep = time.sleep,
) -> BackfillResult:
    """Run ``flow`` for every date from ``start`` to ``end`` (inclusive), oldest first.

    By default every date without a successful run is run (never run, failed, or its runner died);
    ``only_failed`` runs only dates whose run failed or died; ``force`` runs every selected date from
    scratch, succeeded ones included. A failed date does not stop the backfill. Failed dates resume:
    their steps that succeeded are reused, so green work is never redone (unless ``force``).

    Args:
        progress: called after each date as ``progress(done, total, logical_date)``.
    """
    if end < start:
        raise DotjoinError(f"backfill of {flow.name}: the end {end} is before the start {start}")
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    result = BackfillResult(flow.name, start, end)
    with flow_lock(settings, flow.name), RunState.open(settings) as state:
        known = state.flow_runs(flow.name, start, end)
        for done, day in enumerate(days, start=1):
            reason = _skip_reason(known.get(day), only_failed=only_failed, force=force)
            if reason:
                result.outcomes.append(DateOutcome(day, "skipped", reason=reason))
            else:
                report = _run_one(flow, settings, state, day, params=params, force=force, sleep=sleep)
                ok = report.status == "succeeded"
                result.outcomes.append(DateOutcome(day, "succeeded" if ok else "failed", report))
            if progress is not None:
                progress(done, len(days), day)
    return result


def _skip_reason(previous: FlowRun | None, *, only_failed: bool, force: bool) -> str:
    """Why a backfill leaves a date alone ('' to run it)."""
    status = None if previous is None else previous.effective_status
    if only_failed and status != "failed":
        return "never run" if status is None else ALREADY_SUCCEEDED if status == "succeeded" else status
    if status == "succeeded" and not force:
        return ALREADY_SUCCEEDED
    if status == "running":  # a live runner holding no lock here: one on another machine
        return "running elsewhere"
    return ""


def _run_one(
    flow: Flow,
    settings: Settings,
    state: RunState,
    day: date,
    *,
    params: Mapping[str, Any] | None,
    force: bool,
    sleep: Sleep,
) -> RunReport:
    """One date, under the flow's lock: resume, run the steps, close the state, return the report."""
    previous = state.flow_run(flow.name, day)
    if previous is not None and previous.status == "succeeded" and not force:
        return _already_succeeded(flow, settings, state, previous)
    step_params = flow_params(params)
    report_params: dict[str, Any] = {"logical_date": day.isoformat(), "runtime": "local"}
    report_params.update((k, v) for k, v in step_params.items() if k not in report_params)
    if force:
        report_params["force"] = True
    records: list[StepRecord] = []
    try:
        with start_run(flow.name, settings, params=report_params) as run:
            try:
                state.begin_run(flow.name, day, run.run_id, reset=force)
                prior = {} if force else state.steps(flow.name, day)
                _run_steps(_Run(flow, settings, state, day, run.run_id, step_params, sleep), prior, records)
            except BaseException as exc:  # interrupted (Ctrl-C, a state error): leave no run "running"
                run.report.steps = records
                with contextlib.suppress(Exception):  # the state may be what failed; keep the real error
                    state.finish_run(flow.name, day, run.run_id, "failed", _one_line(exc))
                raise
            run.report.steps = records
            failed = [r for r in records if r.status == "failed"]
            error = "; ".join(f"step {r.name} failed: {r.error}" for r in failed) or None
            ran = [r for r in records if r.status != "skipped"]
            run.check(
                "steps_succeeded",
                passed=not failed,
                observed=sum(r.status == "succeeded" for r in ran),
                expected=len(ran),
                detail=error,
            )
            state.finish_run(flow.name, day, run.run_id, "failed" if failed else "succeeded", error)
            if error:
                raise FlowRunFailedError(error)
    except FlowRunFailedError:
        pass  # start_run has marked the report failed and saved it
    logger.info("%s %s: %s (run %s)", flow.name, day, run.report.status, run.run_id)
    return run.report


@dataclass(frozen=True)
class _Run:
    """What every step of one flow run shares."""

    flow: Flow
    settings: Settings
    state: RunState
    day: date
    run_id: str
    params: dict[str, Any]
    sleep: Sleep


def _run_steps(run: _Run, prior: Mapping[str, StepState], records: list[StepRecord]) -> None:
    """Decide, reuse or run each step in order, appending its record to ``records`` as it finishes."""
    done: dict[str, StepRecord] = {}
    for step in run.flow.order():
        verdict = _verdict(run.flow, step, done)
        previous = prior.get(step.name)
        if verdict != "run":
            record = StepRecord(name=step.name, status=verdict)
            run.state.set_step(run.flow.name, run.day, step.name, run.run_id, verdict)
        elif previous is not None and previous.status == "succeeded":
            record = previous.record(reused=True)  # green in an earlier run of this date
        else:
            # a copy per step (a step cannot change what another sees); a skipped upstream reads as {}
            upstream = {
                u: copy.deepcopy(done[u].metadata) if done[u].status == "succeeded" else {}
                for u in step.upstream
            }
            record = _run_step(run, step, upstream)
        done[step.name] = record
        records.append(record)


def _verdict(
    flow: Flow, step: Step, done: Mapping[str, StepRecord]
) -> Literal["run", "skipped", "upstream_failed"]:
    """Airflow's trigger rules over the upstream steps' final states."""
    upstream = [done[u] for u in step.upstream]
    for up in upstream:
        chosen = up.metadata.get("chosen", []) if up.status == "succeeded" else [step.name]
        if flow.step(up.name).branch and step.name not in chosen:
            return "skipped"  # a branch skips every downstream step it did not choose
    statuses: set[StepStatus] = {u.status for u in upstream}
    if statuses & {"failed", "upstream_failed"}:
        return "upstream_failed"
    if step.trigger_rule == "all_success" and "skipped" in statuses:
        return "skipped"
    return "run"


def _run_step(run: _Run, step: Step, upstream: dict[str, dict[str, Any]]) -> StepRecord:
    """Try the step up to ``retries + 1`` times; alert after the last failed try."""
    flow, name = run.flow.name, step.name
    finish = partial(run.state.finish_try, flow, run.day, name, run.run_id)
    record = StepRecord(name=name, status="running")
    for attempt in range(1, step.retries + 2):
        ctx = StepContext(
            flow=flow,
            step=name,
            logical_date=run.day,
            settings=run.settings,
            upstream=upstream,
            attempt=attempt,
            run_id=run.run_id,
            params=run.params,
        )
        started = run.state.start_try(flow, run.day, name, run.run_id, attempt)
        record.started_at, record.attempts = record.started_at or started, attempt
        final = attempt > step.retries
        try:
            outcome = call_with_timeout(
                partial(execute, run.flow, step, ctx), step.timeout_s, f"step {flow}.{name}"
            )
        except Exception as exc:  # every failed try is retried; BaseException (Ctrl-C) ends the run
            record.error = _one_line(exc)
            tb = traceback.format_exc()
            record.finished_at = finish(
                attempt,
                started_at=record.started_at,
                status="failed",
                error=record.error,
                traceback=tb,
                final=final,
            )
            if final:
                break
            delay = step.retry_delay(attempt)
            logger.warning(
                "%s.%s %s: try %d of %d failed (%s); retrying in %.1f s",
                *(flow, name, run.day, attempt, step.retries + 1, record.error, delay),
            )
            run.sleep(delay)
        else:
            record.finished_at = finish(
                attempt, started_at=record.started_at, status="succeeded", metadata=outcome.metadata
            )
            record.status, record.metadata, record.error = "succeeded", outcome.metadata, None
            return record
    record.status = "failed"
    send_alert(run.settings, Alert(flow, name, run.day, record.error or "", record.attempts, run.run_id))
    return record


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, capped (the alert, the report and the CLI show it)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _already_succeeded(flow: Flow, settings: Settings, state: RunState, previous: FlowRun) -> RunReport:
    """The earlier successful run of the date, as a report (not saved again: nothing ran)."""
    stored = state.steps(flow.name, previous.logical_date)
    return RunReport(
        pipeline=flow.name,
        run_id=previous.run_id,
        profile=settings.profile,
        status="succeeded",
        started_at=previous.started_at,
        finished_at=previous.finished_at or datetime.now(UTC),
        params={
            "logical_date": previous.logical_date.isoformat(),
            "runtime": "local",
            SKIPPED: f"{ALREADY_SUCCEEDED}; force (--force) runs it again",
        },
        steps=[
            stored[s.name].record(reused=True) if s.name in stored else StepRecord(name=s.name)
            for s in flow.order()
        ],
    )
