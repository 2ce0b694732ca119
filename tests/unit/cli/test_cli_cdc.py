"""`dotjoin cdc` as a user meets it on the local profile: replay a recording, look at it, reconcile."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from dotjoin.simulate.cdc_recording import EVENTS, JOURNAL
from tests.unit.cli.test_cli import dotjoin


def test_replay_then_show_and_verify_errors(tmp_path: Path) -> None:
    assert dotjoin("cdc", "verify", cwd=tmp_path).returncode == 1  # nothing CDC'd yet: says so, exit 1
    done = dotjoin("cdc", "replay", str(EVENTS), "--journal", str(JOURNAL), "-o", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded" and report["counts"]["duplicates"] == 0
    again = json.loads(dotjoin("cdc", "replay", str(EVENTS), "-o", "json", cwd=tmp_path).stdout)
    assert again["counts"]["output"] == 0 and again["counts"]["duplicates"] == report["counts"]["output"]

    shown = dotjoin("cdc", "show", "cdc_demo.users", "--history", "--columns", "user_id,version,op",
                    "--limit", "0", "-o", "json", cwd=tmp_path)  # fmt: skip
    versions = json.loads(shown.stdout)
    assert set(versions[0]) == {"user_id", "version", "op"}
    with gzip.open(JOURNAL, "rt") as journal:
        journal_users = sum(1 for line in journal if '"cdc_demo.users"' in line)
    assert len(versions) == journal_users  # from empty tables: one version per journalled change

    missing = dotjoin("cdc", "show", "cdc_demo.nope", cwd=tmp_path)
    assert missing.returncode == 1 and "CDC'd tables: cdc_demo.inventory" in missing.stderr
    bad = dotjoin("cdc", "show", "cdc_demo.users", "--columns", "nope", cwd=tmp_path)
    assert bad.returncode == 2
