"""Headless Chromium (the Debian ``chromium`` package) driven from the command line, no extra packages.

``--dump-dom`` prints the DOM after the page has loaded; ``--screenshot`` writes a PNG. Each call is one
short-lived browser with its own profile directory, so runs never share state.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


def require_chromium() -> str:
    """The chromium binary, or a skip (a failure under ``DOTJOIN_REQUIRE_SERVICES=1``)."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path:
        return path
    reason = "headless Chromium is not installed (apt-get install chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(reason + " and DOTJOIN_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


class Chromium:
    """One headless browser binary plus a scratch directory for its profiles."""

    def __init__(self, binary: str, workdir: Path, *, timeout_s: float = 30.0) -> None:
        self.binary = binary
        self.workdir = workdir
        self.timeout_s = timeout_s
        self._runs = 0

    def _run(self, *args: str) -> str:
        self._runs += 1
        profile = self.workdir / f"profile-{self._runs}"
        cmd = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        # a session of its own, so a hung browser is ended with all its helper processes
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},
        )
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(
                f"chromium did not finish within {self.timeout_s}s: {' '.join(cmd)}"
            ) from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-5:]
            raise AssertionError(f"chromium exited with {proc.returncode}: {' | '.join(tail)}")
        return out.decode()

    def dump_dom(self, url: str) -> str:
        """The serialized DOM of ``url`` after load."""
        return self._run("--dump-dom", url)

    def screenshot(self, url: str, path: Path, *, width: int = 1280, height: int = 900) -> Path:
        """A PNG of the viewport at ``width`` x ``height``."""
        self._run(f"--screenshot={path}", f"--window-size={width},{height}", url)
        return path
