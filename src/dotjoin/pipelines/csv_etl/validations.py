"""SQL validations and analyses: the ``sql/check_<dataset>_*.sql`` and ``sql/analysis_<dataset>_*.sql`` files.

Each file starts with two comment lines::

    -- check: what it verifies        (or: -- analysis: what it shows)
    -- params: reference_time          (names of the values bound to $1, $2, ...; may be empty)

A check returns one row with ``observed`` and ``expected``; it passes when they are equal (most count
violating rows and expect 0). The SQL is portable: the same file runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dotjoin.exceptions import NotFoundError
from dotjoin.pipelines.csv_etl.load import SQL_DIR
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlFile:
    """One check or analysis: its name, description, parameter names and SQL text."""

    name: str
    description: str
    params: tuple[str, ...]
    sql: str

    @classmethod
    def read(cls, path: Path, prefix: str) -> SqlFile:
        """Parse a file of this module's format.

        >>> f = SqlFile.read(SQL_DIR / "check_commits_not_in_future.sql", "check_")
        >>> f.name, f.params
        ('commits_not_in_future', ('reference_time',))
        """
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        kind = prefix.rstrip("_")
        description = lines[0].removeprefix(f"-- {kind}:").strip() if lines else ""
        params: tuple[str, ...] = ()
        if len(lines) > 1 and lines[1].startswith("-- params:"):
            params = tuple(p.strip() for p in lines[1].removeprefix("-- params:").split(",") if p.strip())
        return cls(path.stem.removeprefix(prefix), description, params, text)

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[p] for p in self.params]


def sql_files(prefix: str, dataset: str) -> list[SqlFile]:
    """The checks (``prefix="check_"``) or analyses (``"analysis_"``) of ``dataset``, by name."""
    return [SqlFile.read(p, prefix) for p in sorted(SQL_DIR.glob(f"{prefix}{dataset}_*.sql"))]


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    observed: Any
    expected: Any
    description: str


def run_checks(
    connections: Sequence[Warehouse], dataset: str, values: Mapping[str, Any]
) -> list[CheckResult]:
    """Run every check of ``dataset``; ``values`` supplies the named parameters.

    With several connections (PostgreSQL) the checks run concurrently, each on the next free
    connection; DuckDB gets one connection. Results come back in file order.
    """
    checks = sql_files("check_", dataset)
    if len(connections) == 1:
        return [_run_check(connections[0], check, values) for check in checks]
    free: queue.Queue[Warehouse] = queue.Queue()
    for wh in connections:
        free.put(wh)

    def one(check: SqlFile) -> CheckResult:
        wh = free.get()
        try:
            return _run_check(wh, check, values)
        finally:
            free.put(wh)

    with ThreadPoolExecutor(len(connections), thread_name_prefix="csv-etl-check") as pool:
        return list(pool.map(one, checks))


def _run_check(wh: Warehouse, check: SqlFile, values: Mapping[str, Any]) -> CheckResult:
    row = wh.query(check.sql, check.bind(values)).to_pylist()
    observed = _plain(row[0]["observed"]) if row else None
    expected = _plain(row[0]["expected"]) if row else None
    logger.debug("check %s: observed %r, expected %r", check.name, observed, expected)
    return CheckResult(check.name, row != [] and observed == expected, observed, expected, check.description)


def _plain(value: Any) -> Any:
    """JSON-friendly numbers (Decimal → int or float) for the run report."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    return int(as_float) if as_float.is_integer() else as_float


def run_analysis(wh: Warehouse, dataset: str, name: str, values: Mapping[str, Any]) -> pa.Table:
    """Run the analysis ``name`` of ``dataset`` (e.g. ``commits_per_day`` or ``per_day``).

    Raises:
        NotFoundError: no such analysis (the message lists the available ones).
    """
    files = {f.name: f for f in sql_files("analysis_", dataset)}
    found = files.get(name) or files.get(f"{dataset}_{name}")
    if found is None:
        raise NotFoundError(f"no analysis {name!r} for {dataset}; choose one of: {', '.join(files)}")
    return wh.query(found.sql, found.bind(values))
