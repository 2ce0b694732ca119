"""The run report: one JSON document per run of any pipeline, proving that nothing was lost.

Typical use inside a pipeline::

    with start_run("csv_etl", settings, params={"input": path}) as run:
        run.count(input=1000, output=960, quarantined=30, duplicates=10)
        run.output("commits", rows=960)
        run.check_accounting()          # input == output + quarantined + duplicates
    report = run.report                 # written to .dotjoin/runs/ and the warehouse history
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from dotjoin.config import Settings

logger = logging.getLogger(__name__)

RunStatus = Literal["running", "succeeded", "failed"]
ACCOUNTING_CHECK = "row_accounting"


Severity = Literal["error", "warning"]


class Check(BaseModel):
    """One check's result: the platform's one quality record (the run report's, ``dq_results``' row,
    the ``dq_*`` metrics', the lineage event's assertion)."""

    name: str
    passed: bool
    observed: Any = None  # the measured value (rows failing, a count, an age in seconds...)
    expected: Any = None  # the threshold, as the check states it ("= 0", ">= 1", "<= 3600"...)
    detail: str | None = None
    dataset: str | None = None  # the table or topic checked; None: the run itself
    partition: str | None = None  # ``column=value`` when one partition was checked
    severity: Severity = "error"  # a failed warning does not fail the run
    failed_rows: int | None = None
    sample: list[str] = Field(default_factory=list)  # a few failing rows' keys
    duration_s: float | None = None


class Output(BaseModel):
    name: str
    rows: int
    location: str | None = None
    dataset: str | None = None  # its lineage reference (``table:commits``...): see dotjoin.platform.lineage


class Job(BaseModel):
    """A step inside a run with its own lineage (a dbt model): what it read and wrote, as references."""

    name: str
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)


StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "upstream_failed"]


class StepRecord(BaseModel):
    """One step of an orchestrated run (``dotjoin run``): what it did, how often it was tried."""

    name: str
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)  # what it passed downstream
    error: str | None = None
    reused: bool = False  # succeeded in an earlier run of the same date; not run again

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunReport(BaseModel):
    pipeline: str
    run_id: str
    profile: str
    status: RunStatus = "running"
    started_at: datetime
    finished_at: datetime | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)  # lineage references of what the run read
    outputs: list[Output] = Field(default_factory=list)
    jobs: list[Job] = Field(default_factory=list)  # steps with lineage of their own (dbt models)
    checks: list[Check] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    steps: list[StepRecord] = Field(default_factory=list)  # orchestrated runs only
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def checks_failed(self) -> int:
        """Failed checks of severity error (what fails the run)."""
        return sum(not c.passed and c.severity == "error" for c in self.checks)


def accounting_check(counts: Mapping[str, int]) -> Check:
    """``input == output + quarantined + duplicates``, as a check (missing terms count as 0).

    >>> accounting_check({"input": 10, "output": 7, "quarantined": 2, "duplicates": 1}).passed
    True
    >>> accounting_check({"input": 10, "output": 7}).detail
    'input 10 != output 7 + quarantined 0 + duplicates 0 (3 unaccounted)'
    """
    terms = {k: int(counts.get(k, 0)) for k in ("input", "output", "quarantined", "duplicates")}
    accounted = terms["output"] + terms["quarantined"] + terms["duplicates"]
    passed = terms["input"] == accounted
    detail = None
    if not passed:
        detail = (
            f"input {terms['input']} != output {terms['output']} + quarantined {terms['quarantined']}"
            f" + duplicates {terms['duplicates']} ({terms['input'] - accounted} unaccounted)"
        )
    return Check(
        name=ACCOUNTING_CHECK, passed=passed, observed=accounted, expected=terms["input"], detail=detail
    )


class Run:
    """A run in progress: pipelines record counts, outputs, checks and metrics on it."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self._t0 = time.perf_counter()

    @property
    def run_id(self) -> str:
        return self.report.run_id

    def count(self, **counts: int) -> None:
        """Add to the named counters (``input``, ``output``, ``quarantined``, ``duplicates``, ...)."""
        for name, value in counts.items():
            self.report.counts[name] = self.report.counts.get(name, 0) + int(value)

    def input(self, dataset: str) -> None:
        """Record a dataset the run read, as a lineage reference (``file:/data/commits.csv``,
        ``api:https://api.open-meteo.com/v1/forecast``, ``topic:payments``...)."""
        if dataset not in self.report.inputs:
            self.report.inputs.append(dataset)

    def output(
        self, name: str, *, rows: int, location: str | None = None, dataset: str | None = None
    ) -> None:
        """Record what the run wrote; ``dataset`` (a lineage reference) puts it in the lineage graph."""
        self.report.outputs.append(Output(name=name, rows=rows, location=location, dataset=dataset))

    def job(self, name: str, *, inputs: list[str], outputs: list[str]) -> None:
        """Record a step of the run with its own lineage (a dbt model and what it selects from)."""
        self.report.jobs.append(Job(name=name, inputs=inputs, outputs=outputs))

    def check(
        self,
        name: str,
        *,
        passed: bool,
        observed: Any = None,
        expected: Any = None,
        detail: str | None = None,
        **record: Any,
    ) -> Check:
        """Record a check's result (``record``: the other :class:`Check` fields, ``dataset``...)."""
        return self.record(
            Check(name=name, passed=passed, observed=observed, expected=expected, detail=detail, **record)
        )

    def record(self, check: Check) -> Check:
        """Record a result built elsewhere (:func:`dotjoin.platform.quality.checks.run_checks`)."""
        self.report.checks.append(check)
        if not check.passed:
            where = f" on {check.dataset}" if check.dataset else ""
            logger.warning("check %s%s failed (%s): observed %r, expected %r", check.name, where,
                           check.severity, check.observed, check.expected)  # fmt: skip
        return check

    def check_accounting(self) -> Check:
        """The one-line proof that nothing was lost: ``input == output + quarantined + duplicates``."""
        check = accounting_check(self.report.counts)
        self.report.checks.append(check)
        return check

    def metric(self, name: str, value: float) -> None:
        self.report.metrics[name] = float(value)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._t0


def new_run_id(pipeline: str) -> str:
    """Sortable by time, unique: ``<pipeline>-<utc timestamp>-<random>``."""
    return f"{pipeline}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@contextmanager
def start_run(
    pipeline: str,
    settings: Settings,
    *,
    params: Mapping[str, Any] | None = None,
    report_path: Path | None = None,
    record_history: bool = True,
) -> Iterator[Run]:
    """Open a run; on exit mark it succeeded (or failed, re-raising), then persist the report.

    The report goes to ``<state_dir>/runs/<run_id>.json``, to ``report_path`` if given, and to the
    ``dotjoin_runs`` history table in the profile's warehouse. A failed history write is logged, never
    allowed to hide the run's own outcome.
    """
    from dotjoin.platform.runs.store import RunStore

    run = Run(
        RunReport(
            pipeline=pipeline,
            run_id=new_run_id(pipeline),
            profile=settings.profile,
            started_at=datetime.now(UTC),
            params=dict(params or {}),
        )
    )
    try:
        yield run
    except BaseException as exc:
        run.report.status = "failed"
        run.report.error = f"{type(exc).__name__}: {exc}"
        raise
    else:
        run.report.status = "failed" if run.report.checks_failed else "succeeded"
    finally:
        run.report.finished_at = datetime.now(UTC)
        run.report.metrics.setdefault("duration_s", round(run.elapsed_s, 6))
        store = RunStore(settings.runs_dir)
        store.save(run.report)
        if report_path is not None:
            store.save_to(run.report, report_path)
        if record_history:
            _record_history(settings, run.report)
        if settings.observability.pushgateway:
            _push(settings.observability.pushgateway, run.report)
        if settings.observability.openlineage_url:
            _send_lineage(settings, run.report)


def _record_history(settings: Settings, report: RunReport) -> None:
    from dotjoin.exceptions import DotjoinError
    from dotjoin.platform.runs.history import record

    try:
        record(settings, report)
    except DotjoinError as exc:
        logger.warning("run %s: could not write the run history table: %s", report.run_id, exc)


def _push(gateway: str, report: RunReport) -> None:
    from dotjoin.platform.runs.metrics import push_report

    try:
        push_report(gateway, report)
    except OSError as exc:  # urllib's URLError is one: a gateway that is down never fails the run
        logger.warning(
            "run %s: could not push its metrics to the Pushgateway at %s: %s", report.run_id, gateway, exc
        )


def _send_lineage(settings: Settings, report: RunReport) -> None:
    from dotjoin.platform.lineage import run_events, send

    send(run_events(report, settings), settings)
