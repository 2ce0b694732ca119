"""The one exception hierarchy of dotjoin.

Every error a user can cause or fix derives from :class:`DotjoinError`; the CLI prints its message as
one red line and exits 1. :class:`TransientError` says a retry may help, :class:`TerminalError` that it won't.
Third-party errors are translated at the adapter boundary with ``raise XError(...) from exc``.
"""

from __future__ import annotations


class DotjoinError(Exception):
    """Root of every dotjoin error. The message is meant for the user: one line, actionable."""


class TransientError(DotjoinError):
    """A failure that may succeed when retried (network blip, broker leader change, 429/503)."""


class TerminalError(DotjoinError):
    """A failure that will fail again the same way until someone changes something."""


class ConfigError(TerminalError):
    """Bad configuration: unknown key or profile, wrong type. Names the key and where it came from."""


class ServiceUnavailableError(TransientError):
    """A service (PostgreSQL, Kafka, Redis, ...) is not reachable. Names it and how to start it."""

    def __init__(self, service: str, address: str, detail: str = "") -> None:
        self.service = service
        self.address = address
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"{service} is not reachable at {address}{extra}; start it with `make services` "
            f"(or `dotjoin services up`)"
        )


class MissingDependencyError(TerminalError):
    """An optional Python dependency is not installed; the message carries the pip command."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed; install it with: pip install 'dotjoin[{extra}]'")


class DataError(TerminalError):
    """Bad input data that cannot be quarantined record by record (unreadable file, wrong schema)."""


class NotFoundError(TerminalError):
    """A named thing (run, table, topic) does not exist."""
