"""API ingestion when the source never answers usefully, or the input cannot work: a real `dotjoin`
process, one error line, exit 1, no retry storm and no stray tracebacks.

Sources here: a dead port, a tiny local server answering 200 with HTML, bad JSON or an empty body, and
the real local source server (`dotjoin sources serve --fail-rate 1`) answering only 5xx.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

FAST = {"DOTJOIN__INGEST__MAX_ATTEMPTS": "2", "DOTJOIN__INGEST__RATE_LIMIT_PER_S": "0"}
CITIES = "name,latitude,longitude\nOslo,59.91,10.75\nLima,-12.05,-77.04\n"


def dotjoin(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    env.update(FAST, COLUMNS="300")
    return subprocess.run(
        [sys.executable, "-m", "dotjoin", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _weather(tmp_path: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cities = tmp_path / "cities.csv"
    cities.write_text(CITIES)
    return dotjoin(
        "ingest", "weather", "--since", "2024-01-01", "--until", "2024-01-02", "--cities", str(cities),
        "--base-url", base_url, *extra, cwd=tmp_path,
    )  # fmt: skip


def _assert_one_summary_line(result: subprocess.CompletedProcess[str], first_error: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in _lines(result.stderr) if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ingest weather: all 2 requests failed; first error: "), errors[0]
    assert first_error in errors[0] and errors[0].endswith("(see ingest_errors)")
    assert len(_lines(result.stderr)) <= 3, result.stderr  # the error, and one log line per failure kind
    assert "Traceback" not in result.stderr and "Task exception" not in result.stderr


def _ingest_errors(tmp_path: Path) -> int:
    counted = dotjoin("sql", "SELECT count(*) AS n FROM ingest_errors", "-o", "json", cwd=tmp_path)
    assert counted.returncode == 0, counted.stderr
    return int(json.loads(counted.stdout)[0]["n"])


def test_a_dead_port_ends_in_one_summary_line_and_every_attempt_is_recorded(tmp_path: Path) -> None:
    result = _weather(tmp_path, f"http://127.0.0.1:{_free_port()}")
    _assert_one_summary_line(result, "ConnectError")
    assert _ingest_errors(tmp_path) == 2 * 2  # two requests, two attempts each


BODIES = {
    "html": (b"<html><body>Down for maintenance</body></html>", "text/html"),
    "bad_json": (b'{"latitude": 59.9, "hourly": {"time": [', "application/json"),
    "empty": (b"", "application/json"),
}


@dataclass
class Answers:
    """A local server that answers every GET with 200 and ``body`` (of type ``content_type``)."""

    url: str = ""
    body: bytes = b""
    content_type: str = "application/json"


@pytest.fixture
def answers() -> Iterator[Answers]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", answers.content_type)
            self.send_header("Content-Length", str(len(answers.body)))
            self.end_headers()
            self.wfile.write(answers.body)

        def log_message(self, format: str, *args: Any) -> None:
            """No access log in the test output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    answers.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield answers
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("kind", "first_error"),
    [
        ("html", "a text/html answer, not Open-Meteo JSON"),
        ("bad_json", "not valid JSON"),
        ("empty", "an empty body"),
    ],
)
def test_useless_200_answers_end_in_one_summary_line(
    tmp_path: Path, answers: Answers, kind: str, first_error: str
) -> None:
    answers.body, answers.content_type = BODIES[kind]
    _assert_one_summary_line(_weather(tmp_path, answers.url), first_error)


def test_a_source_server_answering_only_5xx_ends_in_one_summary_line(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    server = subprocess.Popen(
        [sys.executable, "-m", "dotjoin", "sources", "serve", "--port", str(port), "--fail-rate", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass  # not listening yet: poll again until the deadline
            assert time.monotonic() < deadline and server.poll() is None, "source server did not start"
            time.sleep(0.1)
        result = _weather(tmp_path, url)
    finally:
        server.terminate()
        server.wait(timeout=10)
    _assert_one_summary_line(result, "last: HTTP 50")
    assert _ingest_errors(tmp_path) == 2 * 2


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("ftp://x", "scheme 'ftp' is not http or https"),
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:99999", "port 99999 is not in 1..65535"),
        ("http://bad host", "is not a host name or address"),
    ],
)
def test_a_base_url_that_can_never_work_is_refused_up_front(
    tmp_path: Path, base_url: str, problem: str
) -> None:
    started = time.monotonic()
    result = _weather(tmp_path, base_url)
    assert result.returncode == 1
    lines = _lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: --base-url {base_url!r}: "), result.stderr
    assert problem in lines[0]
    assert time.monotonic() - started < 30  # no retries
    assert not (tmp_path / ".dotjoin" / "runs").exists()  # refused before a run started


def test_a_configured_source_url_that_can_never_work_is_not_retried(tmp_path: Path) -> None:
    cities = tmp_path / "cities.csv"
    cities.write_text(CITIES)
    (tmp_path / "dotjoin.toml").write_text('[ingest]\nweather_archive_url = "http://[::1/v1/archive"\n')
    result = dotjoin(
        "ingest", "weather", "--since", "2024-01-01", "--until", "2024-01-02", "--cities", str(cities),
        cwd=tmp_path,
    )  # fmt: skip
    _assert_one_summary_line(result, "not a valid URL")
    assert _ingest_errors(tmp_path) == 2  # one attempt per request: a retry cannot fix the URL


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--since", "2024-01-01", "--until", "2030-01-01"), "--until 2030-01-01"),
        (("--date", "2099-01-01"), "--date 2099-01-01"),
        (("--since", "2099-01-01"), "--since 2099-01-01"),
    ],
)
def test_future_days_are_refused_naming_the_option(
    tmp_path: Path, args: tuple[str, ...], option: str
) -> None:
    result = dotjoin("ingest", "weather", *args, "--base-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 1
    assert _lines(result.stderr) == [_lines(result.stderr)[0]] and option in result.stderr, result.stderr
    assert "in the future" in result.stderr
    assert not (tmp_path / ".dotjoin" / "warehouse.duckdb").exists()  # no cursor can claim those days


def test_fetching_today_does_not_move_the_cursor_onto_it(tmp_path: Path, answers: Answers) -> None:
    """Today is not over (its hours may still change): the next cron run must fetch it again."""
    today = datetime.now(UTC).date()
    midnight = datetime(today.year, today.month, today.day)
    hours = [(midnight + timedelta(hours=h)).isoformat(timespec="minutes") for h in range(24)]
    answers.body = json.dumps(
        {
            "latitude": 59.91, "longitude": 10.75, "utc_offset_seconds": 0, "timezone": "GMT",
            "hourly_units": {"time": "iso8601"},
            "hourly": {"time": hours, "temperature_2m": [1.0] * 24, "relative_humidity_2m": [50] * 24,
                       "precipitation": [0.0] * 24, "wind_speed_10m": [3.0] * 24},
        }
    ).encode()  # fmt: skip
    cities = tmp_path / "cities.csv"
    cities.write_text("name,latitude,longitude\nOslo,59.91,10.75\n")
    result = dotjoin(
        "ingest", "weather", "--date", today.isoformat(), "--cities", str(cities),
        "--base-url", answers.url, "-o", "json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["output"] == 24
    state = dotjoin("sql", "SELECT last_complete_day FROM ingest_state", "-o", "json", cwd=tmp_path)
    assert json.loads(state.stdout) == []
