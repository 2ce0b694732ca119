"""What the benchmarks share: the baselines' clients (DuckDB's postgres extension, psql, ADBC) and timing.

Not a benchmark itself (``run.py`` skips files starting with ``_``). The comparison tools live in the
``bench`` extra, installed next to the lock for the benchmark only::

    .venv/bin/uv pip install duckdb-extension-postgres-scanner==1.5.5 adbc-driver-postgresql==1.13.0

A missing tool skips its contender with that command in the message; it never fails the run.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dotjoin.config import PostgresConnection

INSTALL = "install it with: .venv/bin/uv pip install {wheel}"
POSTGRES_SCANNER = "duckdb-extension-postgres-scanner"
ADBC = "adbc-driver-postgresql==1.13.0"


class MissingToolError(RuntimeError):
    """A baseline's package or binary is not installed (the message says how to install it)."""


class EnoughRunsError(Exception):
    """Raised by a contender that will not run again (one run took longer than its budget)."""


def machine() -> str:
    """One line for the figures' provenance: date, CPUs, RAM, kernel."""
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass  # no /proc (not Linux): the line says 0 GiB rather than failing the benchmark
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {mem_kib / 2**20:.0f} GiB RAM,"
        f" {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def headline(benchmark: str, text: str) -> None:
    """The line ``run.py`` repeats at the end of the whole run."""
    print(f"HEADLINE {benchmark}: {text}", flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW TARGET"


def rounds(repeat: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Every contender ``repeat`` times, round-robin (noise on a shared machine hits each side alike).

    A contender returns its own elapsed seconds (so it can leave its untimed preparation out). One that
    raises :class:`MissingToolError` is reported once and dropped; one that raises
    :class:`EnoughRunsError` keeps the runs it has (fewer: the caller prints the count).
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    live = dict(contenders)
    for _ in range(repeat):
        for name, run in list(live.items()):
            try:
                times[name].append(run())
            except MissingToolError as exc:
                print(f"  {name}: skipped, {exc}", flush=True)
                del live[name], times[name]
            except EnoughRunsError:
                del live[name]
    return times


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def runs_text(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


# -- DuckDB's postgres extension ----------------------------------------------------------------------


def postgres_scanner_path() -> str:
    """The postgres extension binary of the installed duckdb version (loads offline)."""
    import duckdb

    wheel = f"{POSTGRES_SCANNER}=={duckdb.__version__}"
    spec = importlib.util.find_spec("duckdb_extension_postgres_scanner")
    if spec is None or not spec.submodule_search_locations:
        raise MissingToolError(f"{wheel} is not installed; {INSTALL.format(wheel=wheel)}")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "extensions" / f"v{duckdb.__version__}" / "postgres_scanner.duckdb_extension"
    if not path.exists():
        raise MissingToolError(f"{path} is missing; {INSTALL.format(wheel=wheel)}")
    return str(path)


@contextmanager
def pg_password_env(pg: PostgresConnection) -> Iterator[None]:
    """``PGPASSWORD`` for libpq-based clients in this process (never on a command line or in SQL)."""
    before = os.environ.get("PGPASSWORD")
    if pg.password is not None:
        os.environ["PGPASSWORD"] = pg.password.get_secret_value()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = before


def duckdb_attached(pg: PostgresConnection) -> Any:
    """An in-memory DuckDB connection with PostgreSQL attached as ``pg`` (caller holds pg_password_env)."""
    import duckdb

    path = postgres_scanner_path()
    con = duckdb.connect()
    con.execute(f"LOAD '{path}'")
    con.execute(f"ATTACH '{pg.conninfo()}' AS pg (TYPE postgres)")
    return con


# -- psql and ADBC ------------------------------------------------------------------------------------


def psql(pg: PostgresConnection, command: str) -> None:
    """Run one psql command (``\\copy ...``); the password goes through the child's environment only."""
    env = dict(os.environ)
    if pg.password is not None:
        env["PGPASSWORD"] = pg.password.get_secret_value()
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", str(pg.port)]
    args += ["-U", pg.user, "-d", pg.dbname, "-c", command]
    try:
        subprocess.run(args, env=env, check=True)
    except FileNotFoundError as exc:
        raise MissingToolError(
            "psql is not on PATH; install it with: apt-get install postgresql-client"
        ) from exc


def adbc_connect(pg: PostgresConnection) -> Any:
    """An ADBC DB-API connection to PostgreSQL (caller holds pg_password_env: libpq reads PGPASSWORD)."""
    try:
        from adbc_driver_postgresql import dbapi
    except ImportError as exc:
        raise MissingToolError(f"{ADBC} is not installed; {INSTALL.format(wheel=ADBC)}") from exc
    return dbapi.connect(f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.dbname}")


def peak_rss_child(code: str, *args: str, cwd: Path) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its last stdout line (JSON) plus ``peak_rss_mib``.

    The child's own ``VmHWM`` (``/proc/self/status``, reset at exec) is its peak RSS; ``getrusage`` of
    children would also count the parent's image from before the exec.
    """
    import json
    import sys

    epilogue = (
        "\nimport json as _j"
        "\n_s = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())"
        "\nprint(_j.dumps({**RESULT, 'peak_rss_kib': int(_s['VmHWM'].split()[0])}))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code + epilogue, *args], capture_output=True, text=True, cwd=cwd, check=False
    )
    if child.returncode != 0:
        raise SystemExit(f"child failed: {child.stderr.strip().splitlines()[-3:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = int(result.pop("peak_rss_kib")) / 1024
    return result
