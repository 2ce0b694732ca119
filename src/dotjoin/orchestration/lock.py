"""One runner per flow: an exclusive ``flock`` on ``<state dir>/locks/<flow>.lock``.

The kernel drops the lock when the holder exits, however it exits (kill -9 included), so a stale lock
file never blocks the next run. The holder's pid is written into the file for the error message.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from dotjoin.exceptions import TransientError

if TYPE_CHECKING:
    from dotjoin.config import Settings

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class FlowLockedError(TransientError):
    """Another runner holds the flow's lock; retrying after it finishes will work."""


def lock_path(settings: Settings, flow: str) -> Path:
    if not _SAFE_NAME.fullmatch(flow):
        raise ValueError(f"flow name {flow!r} cannot name a lock file")
    return settings.resolve(settings.orchestration.state_path).parent / "locks" / f"{flow}.lock"


@contextmanager
def flow_lock(settings: Settings, flow: str) -> Iterator[Path]:
    """Hold ``flow``'s lock for the block; another holder is a :class:`FlowLockedError` at once."""
    path = lock_path(settings, flow)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise FlowLockedError(
                f"flow {flow} is already being run by another runner (pid {holder}, lock {path}); "
                "wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
