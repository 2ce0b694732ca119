"""The local Stooq endpoint ``/q/d/l/`` and the ``fail_first`` fault, over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from dotjoin.pipelines.stocks.trading_days import trading_days
from dotjoin.simulate.sources.app import FaultConfig, SourceState, running
from dotjoin.simulate.sources.stocks import HEADER, StockSource

HEADER_LINE = "Date,Open,High,Low,Close,Volume"


def _get(url: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/q/d/l/", params=params, timeout=10)


def test_a_week_of_quotes_has_stooqs_shape_and_one_row_per_trading_day() -> None:
    with running(SourceState()) as url:
        response = _get(url, s="aapl.us", d1="20240101", d2="20240107", i="d")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == HEADER_LINE == HEADER
    assert [ln.split(",")[0] for ln in lines[1:]] == [f"2024-01-0{d}" for d in (2, 3, 4, 5)]  # Jan 1: holiday
    for line in lines[1:]:
        _, o, h, lo, c, v = line.split(",")
        assert all(len(p.split(".")[1]) == 2 for p in (o, h, lo, c)), line
        assert 0 < float(lo) <= min(float(o), float(c)) <= max(float(o), float(c)) <= float(h), line
        assert v.isdigit() and int(v) > 0


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"s": "aapl.us", "d1": "20240106", "d2": "20240107"}, "weekend"),
        ({"s": "aapl.us", "d1": "20240329", "d2": "20240329"}, "Good Friday"),
        ({"s": "nosuch.us", "d1": "20240102", "d2": "20240105"}, "unknown symbol"),
        ({"s": "aapl.us", "d1": "19990104", "d2": "19991231"}, "before the series starts"),
        ({"s": "aapl.us", "d1": "20240105", "d2": "20240102"}, "d1 after d2"),
    ],
)
def test_no_rows_answers_no_data_with_200(params: dict[str, str], why: str) -> None:
    with running(SourceState()) as url:
        response = _get(url, i="d", **params)
    assert (response.status_code, response.text) == (200, "No data"), why


def test_a_bar_does_not_depend_on_the_requested_range_and_the_seed_changes_it() -> None:
    with running(SourceState()) as url:
        day = _get(url, s="msft.us", d1="20240315", d2="20240315").text.splitlines()[1]
        year = _get(url, s="MSFT.US", d1="20230101", d2="20241231").text.splitlines()
        again = _get(url, s="msft.us", d1="20240315", d2="20240315").text.splitlines()[1]
    assert day in year and day == again
    assert len(year) - 1 == len(trading_days(date(2023, 1, 1), date(2024, 12, 31)))
    other_seed = StockSource(seed=7).bars("msft.us", date(2024, 3, 15), date(2024, 3, 15))[0].csv()
    assert other_seed != day


def test_bars_exist_exactly_on_the_trading_days() -> None:
    source = StockSource(seed=3)
    start, end = date(2021, 1, 1), date(2025, 12, 31)
    assert [b.day for b in source.bars("spy.us", start, end)] == trading_days(start, end)


def test_no_bars_after_the_last_published_day() -> None:
    source = StockSource(last_day=date(2024, 1, 3))
    assert [b.day.day for b in source.bars("aapl.us", date(2024, 1, 1), date(2024, 1, 31))] == [2, 3]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"s": "aapl.us", "d1": "2024-01-02"}, "YYYYMMDD"), ({"s": "aapl.us", "i": "w"}, "i=d")],
)
def test_bad_parameters_are_a_400_naming_the_problem(params: dict[str, str], fragment: str) -> None:
    with running(SourceState()) as url:
        response = _get(url, **params)
    assert response.status_code == 400
    assert fragment in response.json()["reason"]


def test_overrides_replace_one_row_as_served() -> None:
    state = SourceState()
    state.stocks.overrides[("aapl.us", date(2024, 1, 3))] = "2024-01-03,garbled"
    with running(state) as url:
        lines = _get(url, s="aapl.us", d1="20240102", d2="20240104").text.splitlines()
    assert lines[2] == "2024-01-03,garbled" and len(lines) == 4


def test_dup_and_shuffle_faults_repeat_and_reorder_rows() -> None:
    state = SourceState(faults=FaultConfig(dup_rate=1.0, shuffle=True, seed=3))
    with running(state) as url:
        rows = _get(url, s="aapl.us", d1="20240102", d2="20240112").text.splitlines()[1:]
    clean = StockSource().lines("aapl.us", date(2024, 1, 2), date(2024, 1, 12))
    assert sorted(rows) == sorted(clean * 2)
    assert rows != sorted(rows)


def test_fail_first_answers_503_to_exactly_the_first_n_requests_but_never_to_health() -> None:
    state = SourceState(faults=FaultConfig(fail_first=3))
    with running(state) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        statuses = [_get(url, s="aapl.us", d1="20240102", d2="20240102").status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]
    assert state.injected == {"fail_first": 3}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_serve_fail_first(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotjoin", "sources", "serve", "--port", str(port), "--fail-first", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "dotjoin sources serve did not start"
                time.sleep(0.1)
        statuses = [_get(url, s="spy.us", d1="20240102", d2="20240102").status_code for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert statuses == [503, 503, 200]
