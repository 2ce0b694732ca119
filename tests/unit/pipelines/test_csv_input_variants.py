"""`dotjoin etl csv` on the same export in other byte encodings and line endings loads the same rows.

Through the real CLI (a `dotjoin` process): the file comes from `dotjoin sample commits`, then is
re-encoded (UTF-16/32, with and without a byte-order mark) or given old-Mac CR-only line ends.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: the loaded values (not the audit columns: source file, run id, load time).
COLUMNS = (
    "repo, sha, author_name, author_email, authored_at, committer_name, committed_at, message, parents, "
)
COLUMNS += "additions, deletions, content_hash"


def dotjoin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")}
    return subprocess.run(
        [sys.executable, "-m", "dotjoin", *args], cwd=cwd, env={**env, "COLUMNS": "300"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A clean commits export (its text) and the rows a load of it writes."""
    root = tmp_path_factory.mktemp("utf8")
    made = dotjoin(
        "sample", "commits", "--rows", "40", "--dirty-rate", "0", "--seed", "3", "--out", "d", cwd=root
    )
    assert made.returncode == 0, made.stderr
    path = root / "d" / "commits.csv"
    return path.read_bytes().decode("utf-8"), _load(root, path)


def _load(root: Path, path: Path, *options: str) -> list[dict[str, Any]]:
    result = dotjoin("etl", "csv", "-d", "commits", "-i", str(path), *options, "-o", "json", cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "succeeded" and report["counts"]["input"] == 40, report
    rows = dotjoin("sql", f"SELECT {COLUMNS} FROM commits ORDER BY sha", "-o", "json", cwd=root)
    assert rows.returncode == 0, rows.stderr
    return list(json.loads(rows.stdout))


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("utf-16", lambda t: t.encode("utf-16-le").join([codecs.BOM_UTF16_LE, b""])),
        ("utf-16", lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be")),
        ("utf-16", lambda t: t.encode("utf-16-be")),  # no mark: the NUL bytes show the order
        ("utf-32", lambda t: codecs.BOM_UTF32_LE + t.encode("utf-32-le")),
    ],
    ids=["utf-16-bom-le", "utf-16-bom-be", "utf-16-no-bom-be", "utf-32-bom-le"],
)
def test_forced_utf16_and_utf32_load_the_same_rows(
    tmp_path: Path, export: tuple[str, list[dict[str, Any]]], encoding: str, data: Any
) -> None:
    text, expected = export
    path = tmp_path / "commits.csv"
    path.write_bytes(data(text))
    assert _load(tmp_path, path, "--encoding", encoding) == expected


def test_cr_only_line_endings_load_the_same_rows(
    tmp_path: Path, export: tuple[str, list[dict[str, Any]]]
) -> None:
    text, expected = export
    assert "\r" not in text
    path = tmp_path / "commits.csv"
    path.write_bytes(text.replace("\n", "\r").encode("utf-8"))
    assert _load(tmp_path, path) == expected
