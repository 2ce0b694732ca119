"""Process plumbing shared by every service: pid files, detached spawn, graceful stop, readiness waits.

A pid file holds the pid, the process start time (field 22 of ``/proc/<pid>/stat``) and the address
the process was started for.
The start time tells our process apart from an unrelated one that later reused the pid, so
:func:`read_live_pid` never reports, and :func:`stop_process` never signals, a stranger.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from dotjoin.exceptions import TerminalError

logger = logging.getLogger(__name__)

# Popen objects of children spawned by this process, kept so they are reaped (no zombies, no
# "subprocess still running" ResourceWarning when they are garbage collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class MissingBinaryError(TerminalError):
    """A program a service needs is not installed; the message names the package that provides it."""

    def __init__(self, program: str, install: str) -> None:
        super().__init__(f"{program} not found; install it with: {install}")


def require_binary(program: str, install: str) -> str:
    """The absolute path of ``program`` (a name on PATH or a path), or :class:`MissingBinaryError`.

    >>> require_binary("sh", "apt-get install dash").endswith("/sh")
    True
    """
    found = shutil.which(program)
    if found is None:
        raise MissingBinaryError(program, install)
    return found


def java(home: str | None = None) -> str:
    """The ``java`` of ``home`` (a JDK directory), else of ``$JAVA_HOME``, else the one on the PATH."""
    for jdk in (home, os.environ.get("JAVA_HOME")):
        if jdk and (Path(jdk) / "bin" / "java").is_file():
            return str(Path(jdk) / "bin" / "java")
    return require_binary("java", "apt-get install openjdk-17-jre-headless")


def jvm(
    heap: str,
    *,
    classpath: str,
    log4j2: Path | None = None,
    java_home: str | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """A JVM command line up to the main class: heap capped, G1 with short pauses, headless, then
    ``options`` (``-D…`` and the like)."""
    command = [java(java_home), f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    command.append("-Djava.awt.headless=true")
    if log4j2 is not None:
        command.append(f"-Dlog4j2.configurationFile={log4j2}")
    return [*command, *options, "-cp", classpath]


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_time = fields[0], fields[19]
    if state in ("Z", "X"):
        _reap(pid)
        return None
    return start_time


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def write_pid_file(pid_file: Path, pid: int, address: str = "") -> None:
    start = process_start_time(pid) or ""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n{start}\n{address}\n")


def pid_file_address(pid_file: Path) -> str | None:
    """The address recorded in ``pid_file`` (None when absent)."""
    try:
        lines = pid_file.read_text().split()
    except FileNotFoundError:
        return None
    return lines[2] if len(lines) > 2 else None


def read_live_pid(pid_file: Path, *, clean: bool = True) -> int | None:
    """The pid in ``pid_file`` if that process is still the one we started; a stale file is removed.

    Args:
        pid_file: the pid file to read.
        clean: remove a stale pid file (callers holding the service lock); False for read-only status.
    """
    try:
        lines = pid_file.read_text().split()
    except FileNotFoundError:
        return None
    pid = int(lines[0]) if lines and lines[0].isdigit() else None
    recorded = lines[1] if len(lines) > 1 else None
    if pid is not None and (current := process_start_time(pid)) is not None and current == recorded:
        return pid
    if clean:
        logger.info("removing stale pid file %s (pid %s is gone or not ours)", pid_file, pid)
        pid_file.unlink(missing_ok=True)
    return None


def spawn(
    command: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    address: str = "",
) -> int:
    """Start ``command`` in its own session, detached from the terminal; output appends to ``log_file``.

    Args:
        command: the program and its arguments (it must stay in the foreground).
        log_file: stdout and stderr of the process are appended here.
        pid_file: written with the pid and start time once the process exists.
        cwd: working directory of the process.
        env: extra environment variables on top of ours.
        user: run as this OS user (we are root and the program refuses root, e.g. PostgreSQL).
        address: the host:port the process serves, recorded in the pid file.

    Returns:
        The pid of the new process.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log_file.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== dotjoin: starting at {stamp}: {command[0]}\n".encode())
        log.flush()
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs = {"user": user, "group": user, "extra_groups": []}
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
            close_fds=True,
            **kwargs,  # type: ignore[call-overload]
        )
    _CHILDREN[child.pid] = child
    write_pid_file(pid_file, child.pid, address)
    logger.debug("spawned %s as pid %s (log %s)", command[0], child.pid, log_file)
    return child.pid


def stop_process(pid: int, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Stop ``pid`` gracefully with ``sig``; after ``timeout`` seconds kill its whole process group.

    Returns:
        True if it stopped on ``sig``, False if it had to be killed.
    """
    start = process_start_time(pid)
    if start is None:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if wait_for(lambda: process_start_time(pid) != start, timeout=timeout):
        return True
    logger.warning(
        "pid %s ignored %s for %.0fs; killing its process group", pid, signal.Signals(sig).name, timeout
    )
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_start_time(pid) != start, timeout=10.0)
    return False


def wait_for(condition: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 1.0)


def log_tail(log_file: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of ``log_file`` (empty when it does not exist)."""
    try:
        with log_file.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (two concurrent ``up`` runs start one process)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str | None:
    """A short description (``pid 123 (postgres)``) of the process listening on TCP ``port``, if known."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    try:
        out = subprocess.run(
            [ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # users:(("redis-server",pid=4242,fd=6))
    marker = out.find('users:(("')
    if marker < 0:
        return None
    name, _, rest = out[marker + 9 :].partition('"')
    pid = rest.partition("pid=")[2].partition(",")[0]
    return f"pid {pid} ({name})" if pid else name
