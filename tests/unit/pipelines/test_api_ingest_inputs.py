"""What API ingestion refuses before any request: bad cities files, future days, unusable base URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from dotjoin.config import IngestSettings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.api_ingest.common import check_base_url, check_not_future, parse_cities

HEADER = "name,latitude,longitude\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "c.csv: no cities: the file is empty"),
        (HEADER, "c.csv: no cities after the header"),
        ("\ufeff" + HEADER + "\n\n", "c.csv: no cities after the header"),
        ("city,lat,lon\nOslo,59.9,10.7\n", "c.csv:1: the header lacks name, latitude, longitude"),
        (HEADER + "Oslo,999,10.75\n", "c.csv:2: latitude 999 is not in -90..90"),
        (HEADER + "Oslo,59.91,10.75\nLima,-12.05,-181\n", "c.csv:3: longitude -181 is not in -180..180"),
        (HEADER + "Oslo,nan,10.75\n", "c.csv:2: latitude nan is not in -90..90"),
        (HEADER + "Oslo,north,10.75\n", "c.csv:2: latitude 'north' is not a number"),
        (HEADER + "Oslo,59.91\n", "c.csv:2: longitude is empty"),
        (HEADER + " ,59.91,10.75\n", "c.csv:2: name is empty"),
        (HEADER + "Oslo,59.91,10.75\nOslo,60,11\n", "c.csv:3: name 'Oslo' repeats line 2"),
        # physical lines: after blank lines and a quoted name that spans two
        (HEADER + "\n\nOslo,999,10.75\n", "c.csv:4: latitude 999 is not in -90..90"),
        (HEADER + '"New\nYork",40.7,-74\nLima,-12.05,-181\n', "c.csv:4: longitude -181 is not in"),
        (HEADER + "Oslo,59.91,10.75,9\n", "c.csv:2: ragged_row: 4 field(s), expected 3"),
        ("\n" + HEADER.replace("latitude", "lat"), "c.csv:2: the header lacks latitude"),
    ],
)
def test_a_bad_cities_file_is_one_error_naming_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_cities(text, "c.csv")
    assert str(err.value).startswith(message), str(err.value)


def test_good_cities_keep_their_order_and_edges_of_the_ranges() -> None:
    text = "\ufefflongitude,name,latitude\n180,Date Line,-90\n-180, Pole ,90\n"
    assert [(c.name, c.latitude, c.longitude) for c in parse_cities(text, "c.csv")] == [
        ("Date Line", -90.0, 180.0),
        ("Pole", 90.0, -180.0),
    ]


def test_days_after_today_are_refused_naming_the_option() -> None:
    today = date(2026, 1, 1)
    check_not_future(date(2025, 12, 1), today, today=today)
    with pytest.raises(
        ConfigError, match=r"^--until 2030-01-01 is in the future \(today is 2026-01-01 UTC\)"
    ):
        check_not_future(date(2025, 12, 1), date(2030, 1, 1), today=today)
    with pytest.raises(ConfigError, match=r"^--date 2026-01-02 is in the future"):
        check_not_future(date(2026, 1, 2), None, today=today, options=("--date", "--date"))


def test_a_base_url_is_checked_naming_where_it_came_from() -> None:
    check_base_url(IngestSettings(), None)
    check_base_url(IngestSettings(), "https://127.0.0.1:8765/")
    with pytest.raises(ConfigError, match=r"^--base-url 'http://\[::1': not a valid URL"):
        check_base_url(IngestSettings(), "http://[::1")
    with pytest.raises(ConfigError, match=r"^\[ingest\] base_url 'ftp://x': scheme 'ftp'"):
        check_base_url(IngestSettings(base_url="ftp://x"), None)


def test_the_cli_refuses_a_bad_cities_file_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    for name, text, message in [
        ("bad[1].csv", HEADER + "Oslo,999,10.75\n", "bad[1].csv:2: latitude 999 is not in -90..90"),
        ("empty.csv", "", "empty.csv: no cities"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "dotjoin", "ingest", "weather", "--date", "2024-01-01", "--cities", name,
             "--base-url", "http://127.0.0.1:9"],
            cwd=tmp_path, env={**env, "COLUMNS": "300"}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {message}"), lines[0]
    assert not (tmp_path / ".dotjoin" / "runs").exists()  # refused before a run started
