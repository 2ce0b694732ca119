"""Helpers for the web app tests: the TestClient import, report defaults, and an HTML scanner."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser

from dotjoin.platform.runs.report import RunReport

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what we ship, and it works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = ["DEFAULT_COUNTS", "T0", "SaveReport", "TestClient", "elements", "text"]

T0 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
DEFAULT_COUNTS = {"input": 100, "output": 90, "quarantined": 7, "duplicates": 3}
SaveReport = Callable[..., RunReport]


class _Collector(HTMLParser):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == self.tag:
            self.found.append({name: value or "" for name, value in attrs})

    handle_startendtag = handle_starttag


def elements(html: str, tag: str, **match: str) -> list[dict[str, str]]:
    """Attributes of every ``tag`` element whose attributes include ``match`` (``class_`` for class)."""
    parser = _Collector(tag)
    parser.feed(html)
    wanted = {k.rstrip("_"): v for k, v in match.items()}
    return [a for a in parser.found if all(a.get(k) == v for k, v in wanted.items())]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def text(html: str) -> str:
    """The visible text of a page (no <title>s, SVG titles included), whitespace collapsed."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())
