"""A step's ``timeout_s``, enforced in the runner's process.

On the main thread (the CLI) a ``SIGALRM`` interval timer raises :class:`StepTimeoutError` inside the
step, as Airflow's task runner does; the signal also interrupts a blocking ``sleep`` or socket read.

Elsewhere (a runner started from a worker thread, where signals cannot be handled) a watchdog thread
injects the same exception into the step's thread (``PyThreadState_SetAsyncExc``). That interrupts
Python code at its next bytecode, but a call blocked inside C (a socket read without a timeout) only
sees it when the call returns — give network calls their own timeouts (the HTTP client does).
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from dotjoin.exceptions import TransientError

T = TypeVar("T")


class StepTimeoutError(TransientError):
    """A step ran longer than its ``timeout_s`` (retried like any other failure)."""


def call_with_timeout(fn: Callable[[], T], seconds: float | None, what: str) -> T:
    """``fn()``, interrupted with :class:`StepTimeoutError` after ``seconds`` (None: no limit)."""
    if seconds is None or seconds <= 0:
        return fn()
    message = f"{what} timed out after {seconds:g} s"
    if hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
        return _with_alarm(fn, seconds, message)
    return _with_watchdog(fn, seconds, message)


def _with_alarm(fn: Callable[[], T], seconds: float, message: str) -> T:
    def on_alarm(signum: int, frame: object) -> None:
        raise StepTimeoutError(message)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    pending, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    t0 = time.monotonic()
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if pending:  # someone else's timer (e.g. pytest-timeout) was set: give it its remaining time
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - t0), 0.001))


def _with_watchdog(fn: Callable[[], T], seconds: float, message: str) -> T:
    target = ctypes.c_ulong(threading.get_ident())
    guard = threading.Lock()
    running, fired = [True], [False]

    def fire() -> None:
        with guard:
            if running[0]:
                fired[0] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(StepTimeoutError))

    watchdog = threading.Timer(seconds, fire)
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            result = fn()
        except StepTimeoutError:
            if not fired[0]:
                raise  # the step's own, not ours
        finally:
            with guard:
                running[0] = False
                if fired[0]:  # a pending, undelivered injection must not hit the runner's code later
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)
            watchdog.cancel()
    except StepTimeoutError:
        if not fired[0]:
            raise
    if fired[0]:
        raise StepTimeoutError(message)
    return result
