"""The ``Service`` ABC: one natively started, loopback-only engine of the stack.

A service lives in ``<state_dir>/<services.dir>/<name>/``: its data, its rendered config, its log
(``<name>.log``) and our pid file (``<name>.pid``). A subclass says how to install itself
(idempotently), which foreground command runs it, and how to probe readiness and version; this base
class does the rest (spawn detached, wait for readiness with the log tail on failure, stop only what
we started).

Adding a service: a module with a ``Service`` subclass, and one line in ``SERVICES`` in
``dotjoin/services/__init__.py``.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from dotjoin.config import Settings
from dotjoin.exceptions import TerminalError
from dotjoin.services import process

logger = logging.getLogger(__name__)

State = Literal["up", "not ready", "down"]


class ServiceError(TerminalError):
    """A service could not be installed, started or stopped; the message says why and what to do."""


class PortInUseError(ServiceError):
    """The port a service needs is taken by a process we did not start."""


class ServiceStartError(ServiceError):
    """The service process exited or did not become ready in time; the message quotes its log."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServiceStatus:
    """What ``dotjoin services status`` shows for one service."""

    service: str
    address: str
    state: State
    version: str | None = None
    pid: str | None = None  # our pid, "external" for a process we did not start, None when down
    log: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Service(ABC):
    """One engine of the stack, started natively on 127.0.0.1.

    Args:
        settings: the dotjoin settings (ports, state directory, heap sizes, credentials).
    """

    name: ClassVar[str]
    #: The signal that makes the process shut down cleanly (PostgreSQL: SIGINT = fast shutdown).
    stop_signal: ClassVar[int] = signal.SIGTERM
    start_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 30.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- where things live ------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return (self.settings.resolve(self.settings.services.dir) / self.name).absolute()

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    @abstractmethod
    def host(self) -> str: ...

    @property
    @abstractmethod
    def port(self) -> int: ...

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- what a subclass provides -----------------------------------------------------------------
    @abstractmethod
    def check_prerequisites(self) -> None:
        """Raise :class:`~dotjoin.services.process.MissingBinaryError` naming the package to install."""

    @abstractmethod
    def install(self) -> None:
        """Prepare everything the first start needs (dirs, config, data init, jars). Idempotent."""

    @abstractmethod
    def command(self) -> list[str]:
        """The foreground command that runs the service."""

    @abstractmethod
    def probe(self) -> str:
        """Check the service answers real requests; return its version. Raise any exception if not."""

    def spawn_options(self) -> Mapping[str, Any]:
        """Extra keyword arguments for :func:`~dotjoin.services.process.spawn` (cwd, env, user)."""
        return {"cwd": self.home}

    def after_start(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Converge state inside the running service (roles, databases). Runs on every ``up``. Idempotent."""

    # -- lifecycle ----------------------------------------------------------------------------------
    def our_pid(self) -> int | None:
        """The pid of the process we started, if it is still running (a stale pid file is removed)."""
        return process.read_live_pid(self.pid_file)

    def version(self) -> str | None:
        """The running service's version, or None when it does not answer."""
        try:
            return self.probe()
        except Exception as exc:  # any failure means "not ready": the probe talks to a live server
            logger.debug("%s probe failed: %s", self.name, exc)
            return None

    def is_up(self) -> bool:
        """Whether the port accepts connections and the readiness probe passes."""
        return process.port_open(self.host, self.port) and self.version() is not None

    def status(self) -> ServiceStatus:
        pid = process.read_live_pid(self.pid_file, clean=False)  # read-only: no lock held
        listening = process.port_open(self.host, self.port)
        version = self.version() if listening else None
        state: State = "up" if version else "not ready" if (listening or pid) else "down"
        shown_pid = str(pid) if pid else "external" if listening else None
        log = str(self.log_file) if self.log_file.exists() else None
        return ServiceStatus(self.name, self.address, state, version, shown_pid, log)

    @property
    def lock_file(self) -> Path:
        return self.home / f".{self.name}.lock"

    def ensure_up(self) -> bool:
        """Start the service unless it already runs; converge its state either way.

        Returns:
            True if this call started it, False if it was already running.
        """
        if not is_loopback(self.host):
            raise ServiceError(f"{self.name}: refusing to listen on {self.host}; services bind loopback only")
        with process.locked(self.lock_file):
            return self._ensure_up_locked()

    def _ensure_up_locked(self) -> bool:
        pid = self.our_pid()
        recorded = process.pid_file_address(self.pid_file) if pid else None
        if recorded and recorded != self.address:
            raise ServiceError(
                f"{self.name} runs on {recorded} (pid {pid}), but the settings now say {self.address}; "
                f"restart it: dotjoin services down {self.name} && dotjoin services up {self.name}"
            )
        if pid is None and process.port_open(self.host, self.port):
            owner = process.port_owner(self.port) or "another process"
            raise PortInUseError(
                f"{self.name}: {self.address} is already taken by {owner}, which `dotjoin services` did not "
                f"start; stop it, or choose another port in dotjoin.toml / DOTJOIN__ environment variables"
            )
        started = False
        if pid is None:
            self.check_prerequisites()
            self.install()
            pid = self.start()
            started = True
        self.wait_ready(pid)
        self.after_start()
        return started

    def start(self) -> int:
        """Spawn the service detached (it outlives the CLI) and record its pid."""
        self.home.mkdir(parents=True, exist_ok=True)
        return process.spawn(
            self.command(),
            log_file=self.log_file,
            pid_file=self.pid_file,
            address=self.address,
            **self.spawn_options(),
        )

    def wait_ready(self, pid: int, timeout: float | None = None) -> str:
        """Wait until the probe passes; fail early, quoting the log, if the process dies."""
        timeout = self.start_timeout if timeout is None else timeout
        began = time.monotonic()
        alive = process.process_start_time(pid) is not None
        version: str | None = None

        def ready() -> bool:
            nonlocal alive, version
            alive = process.process_start_time(pid) is not None
            version = self.version() if alive and process.port_open(self.host, self.port) else None
            return version is not None or not alive

        process.wait_for(ready, timeout=timeout, interval=0.2)
        if version is not None:
            logger.debug("%s ready after %.1fs", self.name, time.monotonic() - began)
            return version
        what = "exited during startup" if not alive else f"was not ready within {timeout:.0f}s"
        if not alive:
            self.pid_file.unlink(missing_ok=True)
        tail = process.log_tail(self.log_file)
        raise ServiceStartError(f"{self.name} {what}; see {self.log_file}. Last lines:\n{tail}")

    def stop(self) -> bool:
        """Stop the process we started (never an external one). Returns False if nothing of ours ran."""
        if not self.home.is_dir():
            return False
        with process.locked(self.lock_file):
            pid = self.our_pid()
            if pid is None:
                return False
            process.stop_process(pid, sig=self.stop_signal, timeout=self.stop_timeout)
            self.pid_file.unlink(missing_ok=True)
            return True
