"""``dotjoin sql --output csv``: RFC 4180 CSV on stdout that reads back to the same values."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path


def sql_bytes(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    return subprocess.run(
        [sys.executable, "-m", "dotjoin", "sql", *args], cwd=cwd, env=env, capture_output=True, timeout=120
    )


def test_sql_csv_round_trips_commas_quotes_newlines_brackets_and_null(tmp_path: Path) -> None:
    tricky = 'dependabot[bot], "the" bot\nsecond line [/]'
    query = "SELECT $1 AS \"author,[name]\", NULL AS missing, 42 AS n UNION ALL SELECT 'plain', 'x', 7"
    result = sql_bytes(query, "-P", tricky, "--output", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode("utf-8")
    assert text.startswith('"author,[name]",missing,n\r\n') and text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["author,[name]", "missing", "n"], [tricky, "", "42"], ["plain", "x", "7"]]


def test_sql_csv_of_no_rows_is_the_header_and_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    empty = sql_bytes("SELECT 1 AS a, 2 AS b WHERE false", "-o", "csv", cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout == b"a,b\r\n", empty.stderr
    bad = sql_bytes("SELECT 1", "-o", "xml", cwd=tmp_path)
    assert bad.returncode == 2 and b"table, json or csv" in bad.stderr
