"""Run reports on disk: ``<state_dir>/runs/<run_id>.json``, the source the CLI and web app read.

Files, not the warehouse, so that reading history never contends with a pipeline holding the DuckDB
write lock; the warehouse's ``dotjoin_runs`` table is the same history for SQL users.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dotjoin.exceptions import NotFoundError
from dotjoin.platform.runs.report import RunReport


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, report: RunReport) -> Path:
        path = self.directory / f"{report.run_id}.json"
        self.save_to(report, path)
        return path

    @staticmethod
    def save_to(report: RunReport, path: Path) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a report."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(report.model_dump_json(indent=2) + "\n")
        os.replace(tmp, path)

    def list(self, *, pipeline: str | None = None, limit: int | None = None) -> list[RunReport]:
        """Reports, newest first."""
        if not self.directory.is_dir():
            return []
        reports = []
        for path in self.directory.glob("*.json"):
            try:
                report = RunReport.model_validate(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # a foreign or half-written file is not a run
            if pipeline is None or report.pipeline == pipeline:
                reports.append(report)
        reports.sort(key=lambda r: r.started_at, reverse=True)
        return reports[:limit] if limit else reports

    def get(self, run_id: str) -> RunReport:
        path = self.directory / f"{run_id}.json"
        if path.is_file():
            return RunReport.model_validate(json.loads(path.read_text()))
        matches = [r for r in self.list() if r.run_id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFoundError(f"no run {run_id!r} in {self.directory} (see `dotjoin runs list`)")
        raise NotFoundError(f"run id prefix {run_id!r} is ambiguous: {len(matches)} runs match")
