"""Steps more than one flow shares: ingestion of one logical date, and the success notification.

Each wraps a pipeline's ``run`` for one day and turns its report into step metadata (the child run's id
and counts — never the rows). A child run that failed (a failed check, an unfetched city) fails the step,
so the runtime retries it and, after the last try, alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dotjoin.orchestration.alerts import notify
from dotjoin.orchestration.steps import StepContext, StepFailed
from dotjoin.platform.runs import RunReport


def summary(report: RunReport) -> dict[str, Any]:
    """A child run as step metadata; raises :class:`StepFailed` when the run did not succeed."""
    if report.status != "succeeded":
        failed = [f"{c.name} ({c.detail})" if c.detail else c.name for c in report.checks if not c.passed]
        why = report.error or f"checks failed: {'; '.join(failed)}"[:1000]
        raise StepFailed(f"{report.pipeline} run {report.run_id} {report.status}: {why}")
    return {
        "run_id": report.run_id,
        "rows_in": report.counts.get("input", 0),
        "rows_out": report.counts.get("output", 0),
        "quarantined": report.counts.get("quarantined", 0),
    }


def ingest_weather(ctx: StepContext) -> dict[str, Any]:
    """Hourly weather of every configured city for the logical date (re-fetched: a rerun corrects it)."""
    from dotjoin.pipelines.api_ingest import weather

    day = ctx.logical_date
    return summary(weather.run(ctx.settings, since=day, until=day, base_url=ctx.params.get("base_url")))


def ingest_transit(ctx: StepContext) -> dict[str, Any]:
    """The transit feed's static tables and the arrivals of the logical date."""
    from dotjoin.pipelines.api_ingest import transit

    day = ctx.logical_date
    return summary(transit.run(ctx.settings, since=day, until=day, base_url=ctx.params.get("base_url")))


def notify_step(describe: Callable[[StepContext], str]) -> Callable[[StepContext], dict[str, Any]]:
    """A ``notify`` step: posts ``describe(ctx)`` (built from the upstream metadata) when enabled."""

    def notify_done(ctx: StepContext) -> dict[str, Any]:
        """Post a summary of the run to the log and the webhook."""
        if not ctx.settings.orchestration.notify_success:
            return {"notified": False}
        text = describe(ctx)
        return {"notified": notify(ctx.settings, ctx.flow, ctx.logical_date, text), "text": text}

    return notify_done
