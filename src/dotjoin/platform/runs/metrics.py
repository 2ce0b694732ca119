"""Prometheus metrics derived from the run reports, read afresh on every scrape.

The reports on disk are the source of truth, so the collector keeps no state of its own: a scrape lists
``<state_dir>/runs/*.json`` (small files) and turns them into metric families. Exposed:

- ``dotjoin_runs_total{pipeline,status}``: run reports on disk.
- ``dotjoin_run_rows{pipeline,kind}``: the latest run's counts (input, output, quarantined, duplicates...).
- ``dotjoin_run_output_rows{pipeline,output}``: rows the latest run wrote per output.
- ``dotjoin_run_duration_seconds{pipeline}``: the latest finished run's wall time.
- ``dotjoin_run_checks_failed{pipeline}``: failed checks of the latest run.
- ``dotjoin_run_metric{pipeline,metric}``: the latest run's own metrics (``rows_per_s``...).
- ``dotjoin_last_run_timestamp_seconds{pipeline,status}``: when the latest run of each status ended
  (started, while still running); ``time() - dotjoin_last_run_timestamp_seconds{status="succeeded"}``
  is the freshness alert.

And the checks (the latest result of each check of each dataset and partition, whichever run made it;
labels ``dataset``, ``check``, ``partition``, ``severity``, ``pipeline``; ``dataset=""`` is a check of the
run itself, such as its row accounting):

- ``dq_check_passed``: 1 or 0.
- ``dq_observed_value``: the observed value, when it is a number.
- ``dq_failed_rows``: failing rows, for checks that count them.
- ``dq_check_duration_seconds``: how long the check took.
- ``dq_check_timestamp_seconds``: when its run finished.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dotjoin.platform.quality.results import numeric
from dotjoin.platform.runs.report import Check, RunReport
from dotjoin.platform.runs.store import RunStore

PUSH_JOB = "dotjoin_runs"  # the Pushgateway job every run pushes under (grouped by pipeline)
__all__ = ["CONTENT_TYPE_LATEST", "RunReportCollector", "metrics_registry", "render_metrics"]


def _latest(reports: Iterable[RunReport], *, by: tuple[str, ...]) -> dict[tuple[str, ...], RunReport]:
    """The newest report per key (``by`` names report attributes), reports given newest first."""
    latest: dict[tuple[str, ...], RunReport] = {}
    for report in reports:
        latest.setdefault(tuple(str(getattr(report, attr)) for attr in by), report)
    return latest


class RunReportCollector:
    """A custom collector (``prometheus_client`` Collector protocol) over a :class:`RunStore`, or over
    given reports (a run pushing its own to the Pushgateway)."""

    def __init__(self, store: RunStore | None = None, reports: list[RunReport] | None = None) -> None:
        self.store, self.reports = store, reports

    def describe(self) -> list[Metric]:
        """Nothing up front: the families depend on the reports present at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        reports = self.store.list() if self.store is not None else list(self.reports or [])  # newest first
        yield self._runs_total(reports)
        latest = _latest(reports, by=("pipeline",))
        yield from self._latest_run([latest[key] for key in sorted(latest)])
        yield self._last_run_timestamp(reports)
        yield from self._checks(reports)

    @staticmethod
    def _runs_total(reports: list[RunReport]) -> Metric:
        family = CounterMetricFamily(
            "dotjoin_runs", "Run reports on disk, by pipeline and status.", labels=["pipeline", "status"]
        )
        for (pipeline, status), n in sorted(Counter((r.pipeline, r.status) for r in reports).items()):
            family.add_metric([pipeline, status], n)
        return family

    @staticmethod
    def _latest_run(latest: list[RunReport]) -> Iterator[Metric]:
        rows = GaugeMetricFamily(
            "dotjoin_run_rows", "Row counts of the latest run, by kind.", labels=["pipeline", "kind"]
        )
        outputs = GaugeMetricFamily(
            "dotjoin_run_output_rows", "Rows the latest run wrote, by output.", labels=["pipeline", "output"]
        )
        duration = GaugeMetricFamily(
            "dotjoin_run_duration_seconds",
            "Wall-clock duration of the latest run (absent while it is running).",
            labels=["pipeline"],
            unit="seconds",
        )
        failed = GaugeMetricFamily(
            "dotjoin_run_checks_failed", "Failed checks of the latest run.", labels=["pipeline"]
        )
        metric = GaugeMetricFamily(
            "dotjoin_run_metric", "The latest run's own metrics.", labels=["pipeline", "metric"]
        )
        for report in latest:
            for kind, count in sorted(report.counts.items()):
                rows.add_metric([report.pipeline, kind], count)
            for output in report.outputs:
                outputs.add_metric([report.pipeline, output.name], output.rows)
            if report.duration_s is not None:
                duration.add_metric([report.pipeline], report.duration_s)
            failed.add_metric([report.pipeline], report.checks_failed)
            for name, value in sorted(report.metrics.items()):
                metric.add_metric([report.pipeline, name], value)
        yield from (rows, outputs, duration, failed, metric)

    @staticmethod
    def _last_run_timestamp(reports: list[RunReport]) -> Metric:
        family = GaugeMetricFamily(
            "dotjoin_last_run_timestamp_seconds",
            "Unix time the latest run of each pipeline and status finished (started, if still running).",
            labels=["pipeline", "status"],
            unit="seconds",
        )
        for (pipeline, status), report in sorted(_latest(reports, by=("pipeline", "status")).items()):
            family.add_metric([pipeline, status], (report.finished_at or report.started_at).timestamp())
        return family

    @staticmethod
    def _checks(reports: list[RunReport]) -> Iterator[Metric]:
        labels = ["dataset", "check", "partition", "severity", "pipeline"]
        passed = GaugeMetricFamily(
            "dq_check_passed", "1 if the latest result of the check passed.", labels=labels
        )
        observed = GaugeMetricFamily("dq_observed_value", "The check's observed value.", labels=labels)
        failed = GaugeMetricFamily("dq_failed_rows", "Rows failing the check.", labels=labels)
        duration = GaugeMetricFamily(
            "dq_check_duration_seconds", "How long the check took.", labels=labels, unit="seconds"
        )
        stamp = GaugeMetricFamily(
            "dq_check_timestamp_seconds", "Unix time the check's run finished.", labels=labels, unit="seconds"
        )
        latest: dict[tuple[str, str, str], tuple[RunReport, Check]] = {}
        for report in reports:  # newest first: the first result of a check is its latest
            for check in report.checks:
                latest.setdefault((check.dataset or "", check.name, check.partition or ""), (report, check))
        for (dataset, name, partition), (report, check) in sorted(latest.items()):
            values = [dataset, name, partition, check.severity, report.pipeline]
            passed.add_metric(values, 1.0 if check.passed else 0.0)
            if (number := numeric(check.observed)) is not None:
                observed.add_metric(values, number)
            if check.failed_rows is not None:
                failed.add_metric(values, check.failed_rows)
            if check.duration_s is not None:
                duration.add_metric(values, check.duration_s)
            stamp.add_metric(values, (report.finished_at or report.started_at).timestamp())
        yield from (passed, observed, failed, duration, stamp)


def metrics_registry(store: RunStore) -> CollectorRegistry:
    """A registry holding only the run-report collector (no process metrics: output is deterministic)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunReportCollector(store))
    return registry


def push_report(gateway: str, report: RunReport, *, timeout_s: float = 3.0) -> None:
    """Push one run's metrics to the Pushgateway at ``gateway`` (``host:port``), grouped by pipeline:
    each push replaces that pipeline's previous one, so the gateway holds every pipeline's latest run."""
    from prometheus_client import push_to_gateway

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunReportCollector(reports=[report]))
    group = {"pipeline": report.pipeline}
    push_to_gateway(gateway, job=PUSH_JOB, registry=registry, grouping_key=group, timeout=timeout_s)


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``; serve it as :data:`CONTENT_TYPE_LATEST`."""
    return generate_latest(registry)
