"""The local runner's durable state: one SQLite file (``[orchestration] state_path``) in WAL mode.

Three tables, all keyed by flow and logical date:

- ``flow_runs``  — the latest run of each (flow, date): status, run id, and the runner's pid plus its
  process start time, so a run left ``running`` by a process that is gone (or whose pid was reused)
  counts as failed: :attr:`FlowRun.effective_status`.
- ``step_states`` — each step's latest status, tries in the run that set it, metadata JSON, error.
- ``step_tries``  — one row per try of a step (an audit trail: which run tried what, and when).

Every write is one short ``BEGIN IMMEDIATE`` transaction, so several processes (runners of other
flows, ``dotjoin flows``, the web app) share the file; a writer waits ``busy_timeout`` for another.
``synchronous=NORMAL`` under WAL: a commit survives the process being killed (-9), not a power cut,
and costs no fsync — the runner commits twice per try.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from dotjoin.exceptions import DotjoinError, TransientError
from dotjoin.platform.runs.report import StepRecord, StepStatus

if TYPE_CHECKING:
    from types import TracebackType

    from dotjoin.config import Settings

FlowRunStatus = Literal["running", "succeeded", "failed"]
TryStatus = Literal["running", "succeeded", "failed"]
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_runs (
    flow TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    pid INTEGER NOT NULL,
    pid_started TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    PRIMARY KEY (flow, logical_date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_states (
    flow TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    step TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({step_statuses})),
    attempts INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (flow, logical_date, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_tries (
    flow TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    step TEXT NOT NULL,
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    traceback TEXT,
    PRIMARY KEY (flow, logical_date, step, run_id, attempt)
) WITHOUT ROWID;
""".replace("{step_statuses}", ", ".join(f"'{s}'" for s in get_args(StepStatus)))
CRASHED = "the runner process died during this try"
_CLOSE_RUNNING = tuple(
    f"UPDATE {table} SET status = 'failed', error = coalesce(error, ?), finished_at = ? "
    "WHERE flow = ? AND logical_date = ? AND run_id = ? AND status = 'running'"
    for table in ("step_states", "step_tries")
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def process_start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from ``/proc``); None where unknown or gone.

    Together with the pid it names one process: a pid reused by a later process has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if fields[0] == "Z":  # a zombie has exited; only its exit status is left to collect
        return None
    return fields[19]


def process_alive(pid: int, started: str | None) -> bool:
    """True if the process ``pid`` that started at ``started`` still runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    if started is None:
        return True  # no /proc where it ran: the pid is all we can check
    return process_start_time(pid) == started


@dataclass(frozen=True)
class FlowRun:
    flow: str
    logical_date: date
    run_id: str
    status: FlowRunStatus
    pid: int
    pid_started: str | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None

    @property
    def crashed(self) -> bool:
        """Left ``running`` by a runner process that no longer exists."""
        return self.status == "running" and not process_alive(self.pid, self.pid_started)

    @property
    def effective_status(self) -> FlowRunStatus:
        """The status, with a crashed run counted as failed."""
        return "failed" if self.crashed else self.status


@dataclass(frozen=True)
class StepState:
    step: str
    run_id: str
    status: StepStatus
    attempts: int
    metadata: dict[str, Any]
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    def record(self, *, reused: bool = False) -> StepRecord:
        return StepRecord(
            name=self.step,
            status=self.status,
            attempts=self.attempts,
            started_at=self.started_at,
            finished_at=self.finished_at,
            metadata=self.metadata,
            error=self.error,
            reused=reused,
        )


@dataclass(frozen=True)
class StepTry:
    step: str
    run_id: str
    attempt: int
    status: TryStatus
    pid: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class RunState:
    """One connection to the state file; open it per run (``with RunState.open(settings) as state``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                with self._write() as db:  # executescript() would commit early: one statement at a time
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise DotjoinError(f"orchestration state {path}: cannot open: {exc}") from exc

    @classmethod
    def open(cls, settings: Settings) -> RunState:
        return cls(settings.resolve(settings.orchestration.state_path))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunState:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransientError(f"orchestration state {self.path} is busy: {exc}") from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise DotjoinError(f"orchestration state {self.path}: {exc}") from exc

    # -- reads ---------------------------------------------------------------------------------------

    def flow_runs(self, flow: str, start: date | None = None, end: date | None = None) -> dict[date, FlowRun]:
        """The latest run of each logical date of ``flow`` (between ``start`` and ``end``, inclusive)."""
        rows = self._read(
            "SELECT * FROM flow_runs WHERE flow = ? AND logical_date BETWEEN ? AND ? ORDER BY logical_date",
            (flow, (start or date.min).isoformat(), (end or date.max).isoformat()),
        )
        runs = [
            FlowRun(
                flow=r["flow"],
                logical_date=date.fromisoformat(r["logical_date"]),
                run_id=r["run_id"],
                status=r["status"],
                pid=r["pid"],
                pid_started=r["pid_started"],
                started_at=datetime.fromisoformat(r["started_at"]),
                finished_at=_ts(r["finished_at"]),
                error=r["error"],
            )
            for r in rows
        ]
        return {run.logical_date: run for run in runs}

    def flow_run(self, flow: str, logical_date: date) -> FlowRun | None:
        return self.flow_runs(flow, logical_date, logical_date).get(logical_date)

    def steps(self, flow: str, logical_date: date) -> dict[str, StepState]:
        rows = self._read(
            "SELECT * FROM step_states WHERE flow = ? AND logical_date = ?", (flow, logical_date.isoformat())
        )
        return {
            r["step"]: StepState(
                step=r["step"],
                run_id=r["run_id"],
                status=r["status"],
                attempts=r["attempts"],
                metadata=json.loads(r["metadata"]),
                error=r["error"],
                started_at=_ts(r["started_at"]),
                finished_at=_ts(r["finished_at"]),
            )
            for r in rows
        }

    def tries(self, flow: str, logical_date: date, step: str | None = None) -> list[StepTry]:
        """Every try of the date's steps (of ``step`` only, if given), oldest first."""
        rows = self._read(
            "SELECT * FROM step_tries WHERE flow = ? AND logical_date = ? AND (? IS NULL OR step = ?) "
            "ORDER BY started_at, attempt",
            (flow, logical_date.isoformat(), step, step),
        )
        return [
            StepTry(
                step=r["step"],
                run_id=r["run_id"],
                attempt=r["attempt"],
                status=r["status"],
                pid=r["pid"],
                started_at=datetime.fromisoformat(r["started_at"]),
                finished_at=_ts(r["finished_at"]),
                error=r["error"],
            )
            for r in rows
        ]

    # -- writes --------------------------------------------------------------------------------------

    def begin_run(self, flow: str, logical_date: date, run_id: str, *, reset: bool = False) -> None:
        """Record this process as running the date; ``reset`` forgets the date's step states (``force``).

        Tries a crashed run left ``running`` are closed as failed first: nobody will finish them.
        """
        day, pid = logical_date.isoformat(), os.getpid()
        with self._write() as db:
            db.execute(
                "UPDATE step_tries SET status = 'failed', error = ?, finished_at = ? "
                "WHERE flow = ? AND logical_date = ? AND status = 'running'",
                (CRASHED, _now(), flow, day),
            )
            if reset:
                db.execute("DELETE FROM step_states WHERE flow = ? AND logical_date = ?", (flow, day))
            db.execute(
                "INSERT INTO flow_runs (flow, logical_date, run_id, status, pid, pid_started, started_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?) "
                "ON CONFLICT (flow, logical_date) DO UPDATE SET run_id = excluded.run_id, "
                "status = 'running', pid = excluded.pid, pid_started = excluded.pid_started, "
                "started_at = excluded.started_at, finished_at = NULL, error = NULL",
                (flow, day, run_id, pid, process_start_time(pid), _now()),
            )

    def finish_run(
        self, flow: str, logical_date: date, run_id: str, status: FlowRunStatus, error: str | None = None
    ) -> None:
        """Close the run; steps and tries it left ``running`` (it was interrupted) become failed."""
        day, now = logical_date.isoformat(), _now()
        with self._write() as db:
            if status != "succeeded":
                for sql in _CLOSE_RUNNING:
                    db.execute(sql, (error, now, flow, day, run_id))
            db.execute(
                "UPDATE flow_runs SET status = ?, finished_at = ?, error = ? "
                "WHERE flow = ? AND logical_date = ? AND run_id = ?",
                (status, now, error, flow, day, run_id),
            )

    def start_try(self, flow: str, logical_date: date, step: str, run_id: str, attempt: int) -> datetime:
        """Mark the step running and insert its try, before the step is called; returns the start time."""
        started = datetime.now(UTC)
        day, at = logical_date.isoformat(), started.isoformat()
        with self._write() as db:
            db.execute(
                "INSERT INTO step_tries (flow, logical_date, step, run_id, attempt, status, pid, started_at) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                (flow, day, step, run_id, attempt, os.getpid(), at),
            )
            self._upsert_step(db, flow, day, step, run_id, status="running", attempts=attempt, started_at=at)
        return started

    def finish_try(
        self,
        flow: str,
        logical_date: date,
        step: str,
        run_id: str,
        attempt: int,
        *,
        started_at: datetime,
        status: Literal["succeeded", "failed"],
        metadata: dict[str, Any] | None = None,
        error: str | None = None,
        traceback: str | None = None,
        final: bool = True,
    ) -> datetime:
        """Close the try; the step's state takes its outcome (a failed, non-final try leaves it running)."""
        finished = datetime.now(UTC)
        day, at = logical_date.isoformat(), finished.isoformat()
        with self._write() as db:
            db.execute(
                "UPDATE step_tries SET status = ?, finished_at = ?, error = ?, traceback = ? "
                "WHERE flow = ? AND logical_date = ? AND step = ? AND run_id = ? AND attempt = ?",
                (status, at, error, traceback, flow, day, step, run_id, attempt),
            )
            self._upsert_step(
                db,
                flow,
                day,
                step,
                run_id,
                status=status if final else "running",
                attempts=attempt,
                metadata=metadata,
                error=error,
                started_at=started_at.isoformat(),
                finished_at=at if final else None,
            )
        return finished

    def set_step(self, flow: str, logical_date: date, step: str, run_id: str, status: StepStatus) -> None:
        """Record a step the run decided not to call (skipped, upstream_failed)."""
        with self._write() as db:
            self._upsert_step(db, flow, logical_date.isoformat(), step, run_id, status=status)

    @staticmethod
    def _upsert_step(
        db: sqlite3.Connection,
        flow: str,
        day: str,
        step: str,
        run_id: str,
        *,
        status: StepStatus,
        attempts: int = 0,
        metadata: dict[str, Any] | None = None,
        error: str | None = None,
        started_at: str | None = None,
        finished_at: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO step_states (flow, logical_date, step, run_id, status, attempts, metadata, error, "
            "started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (flow, logical_date, step) DO UPDATE SET run_id = excluded.run_id, "
            "status = excluded.status, attempts = excluded.attempts, metadata = excluded.metadata, "
            "error = excluded.error, started_at = excluded.started_at, finished_at = excluded.finished_at",
            (
                flow,
                day,
                step,
                run_id,
                status,
                attempts,
                json.dumps(metadata or {}),
                error,
                started_at,
                finished_at,
            ),
        )
