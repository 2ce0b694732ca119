"""Run reports, run history and metrics."""

from __future__ import annotations

from dotjoin.platform.runs.report import Check, Run, RunReport, StepRecord, accounting_check, start_run
from dotjoin.platform.runs.store import RunStore

__all__ = ["Check", "Run", "RunReport", "RunStore", "StepRecord", "accounting_check", "start_run"]
