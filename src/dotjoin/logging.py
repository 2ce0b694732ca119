"""Logging setup. Only the CLI (and test/benchmark harnesses) call :func:`configure`."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler


def configure(*, debug: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        # stderr: stdout belongs to results (`--output json` must stay parseable).
        handlers=[
            RichHandler(console=Console(stderr=True), show_path=debug, rich_tracebacks=debug, markup=False)
        ],
        force=True,
    )
    # Chatty third-party loggers stay at WARNING unless debugging.
    for name in ("httpx", "uvicorn.access", "pyiceberg", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
