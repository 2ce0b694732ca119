"""Run reports, run history and metrics."""

from __future__ import annotations

from dotjoin.platform.runs.report import Check, Run, RunReport, accounting_check, start_run
from dotjoin.platform.runs.store import RunStore

__all__ = ["Check", "Run", "RunReport", "RunStore", "accounting_check", "start_run"]
