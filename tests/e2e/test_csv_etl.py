"""The CSV ETL end to end on the local profile (DuckDB): generated messy files in, tables that match the
generator's manifest row for row out; re-runs, overlapping exports, a kill -9 mid-load, bad input.

The helpers here are shared with tests/integration/test_csv_etl_postgres.py (same assertions on
PostgreSQL).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import DotjoinError
from dotjoin.pipelines.csv_etl.pipeline import run
from dotjoin.platform.runs import RunReport
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.platform.warehouse.base import Warehouse
from dotjoin.simulate.csv_etl.generator import generate
from dotjoin.simulate.csv_etl.manifest import Manifest, iter_records

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = ("commits", "sales", "stores", "products", "fx_rates", "csv_etl_duplicates", "csv_etl_loads")
KEY_SQL = {
    "commits": "SELECT repo || '/' || sha AS k, source_line AS line FROM commits WHERE source_file = $1",
    "retail": "SELECT invoice_id || '/' || CAST(line_no AS VARCHAR) AS k, source_line AS line FROM sales"
    " WHERE source_file = $1",
}
TOTALS_SQL = {
    "commits": "SELECT sum(additions) AS additions, sum(deletions) AS deletions,"
    " sum(CASE WHEN is_merge THEN 1 ELSE 0 END) AS merge_commits, count(*) AS commits FROM commits",
    "retail": "SELECT sum(amount_usd) AS revenue_usd, sum(quantity) AS quantity, count(*) AS lines"
    " FROM sales",
}
# Business content of every table a load writes (no load times), for before/after comparisons.
STATE_SQL = {
    "commits": "SELECT repo, sha, author_name, author_email, authored_at, committer_name, committed_at,"
    " message,"
    " parents, parent_count, is_merge, additions, deletions, content_hash, source_file, source_line"
    " FROM commits ORDER BY repo, sha",
    "retail": "SELECT invoice_id, line_no, sold_at, store_code, sku, customer_id, customer_imputed, quantity,"
    " unit_price, currency, currency_imputed, discount, fx_rate, amount_usd, content_hash, source_line"
    " FROM sales ORDER BY invoice_id, line_no",
    "quarantine": "SELECT source, position, reason, detail, raw FROM quarantine WHERE pipeline = 'csv_etl'"
    " ORDER BY source, position",
    "duplicates": "SELECT dataset, source, line, duplicate_of_line, natural_key FROM csv_etl_duplicates"
    " ORDER BY dataset, source, line",
}


def reset(settings: Settings) -> None:
    """Start from empty pipeline tables (on PostgreSQL they are shared between tests)."""
    with open_warehouse(settings) as wh:
        for table in TABLES:
            wh.execute(f"DROP TABLE IF EXISTS {table}")
        if wh.table_exists("quarantine"):
            wh.execute("DELETE FROM quarantine WHERE pipeline = 'csv_etl'")


def load(settings: Settings, directory: Path, head: Manifest) -> RunReport:
    return run(settings, dataset=head.dataset, input_path=directory / head.files[0], reference_time=NOW)


def _cents(value: Any) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def assert_matches_manifest(settings: Settings, directory: Path, head: Manifest, report: RunReport) -> None:
    """The loaded table, quarantine and duplicates of the file equal the manifest, row for row."""
    dataset, exp = head.dataset, head.expected
    source = str((directory / head.files[0]).resolve())
    assert report.status == "succeeded", [c for c in report.checks if not c.passed]
    assert report.counts == {
        "input": exp.input,
        "output": exp.output,
        "quarantined": exp.quarantined,
        "duplicates": exp.duplicates,
    }
    assert {
        k.split(".", 1)[1]: int(v) for k, v in report.metrics.items() if k.startswith("quarantined.")
    } == (exp.quarantined_by_reason)
    truth = list(iter_records(directory))
    with open_warehouse(settings) as wh:
        loaded = {(r["k"], r["line"]) for r in wh.query(KEY_SQL[dataset], [source]).to_pylist()}
        quarantine = {
            (int(r["position"]), r["reason"])
            for r in wh.query(
                "SELECT position, reason FROM quarantine WHERE pipeline = 'csv_etl' AND source = $1", [source]
            ).to_pylist()
        }
        duplicates = {
            (r["line"], r["duplicate_of_line"], r["natural_key"])
            for r in wh.query(
                "SELECT line, duplicate_of_line, natural_key FROM csv_etl_duplicates WHERE source = $1",
                [source],
            ).to_pylist()
        }
        totals = wh.query(TOTALS_SQL[dataset]).to_pylist()[0]
        imputed = _imputed(wh, dataset)
    assert loaded == {(t.key, t.line) for t in truth if t.fate == "load"}
    assert quarantine == {(t.line, t.reason) for t in truth if t.fate == "quarantine"}
    assert duplicates == {(t.line, t.duplicate_of_line, t.key) for t in truth if t.fate == "duplicate"}
    assert {k: _cents(v) for k, v in totals.items()} == exp.totals
    if dataset == "retail":
        assert imputed == {(t.key, tuple(sorted(t.imputed))) for t in truth if t.fate == "load" and t.imputed}


def _imputed(wh: Warehouse, dataset: str) -> set[tuple[str, tuple[str, ...]]]:
    if dataset != "retail":
        return set()
    rows = wh.query(
        "SELECT invoice_id || '/' || CAST(line_no AS VARCHAR) AS k, customer_imputed, currency_imputed"
        " FROM sales"
        " WHERE customer_imputed OR currency_imputed"
    ).to_pylist()
    return {
        (
            r["k"],
            tuple(
                n
                for n, f in (("currency", r["currency_imputed"]), ("customer_id", r["customer_imputed"]))
                if f
            ),
        )
        for r in rows
    }


def state(settings: Settings, dataset: str) -> dict[str, str]:
    """A checksum of each table's business content (what a reader of the warehouse sees)."""
    out = {}
    with open_warehouse(settings) as wh:
        for name in (dataset, "quarantine", "duplicates"):
            rows = wh.query(STATE_SQL[name]).to_pylist()
            digest = hashlib.sha256()
            for row in rows:
                digest.update(repr(sorted((k, _norm(v)) for k, v in row.items() if k != "source")).encode())
            out[name] = f"{len(rows)}:{digest.hexdigest()[:16]}"
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def assert_rerun_writes_nothing(settings: Settings, directory: Path, head: Manifest) -> None:
    before = state(settings, _table(head))
    again = load(settings, directory, head)
    assert again.status == "succeeded"
    exp = head.expected
    assert again.counts == {
        "input": exp.input, "output": exp.output, "quarantined": exp.quarantined, "duplicates": exp.duplicates
    }  # fmt: skip
    written = {
        k: again.metrics[k]
        for k in ("rows_written", "rows_inserted", "rows_updated", "quarantine_written", "duplicates_written")
    }
    assert written == dict.fromkeys(written, 0.0)
    assert again.metrics["rows_unchanged"] == head.expected.output
    assert state(settings, _table(head)) == before


def _table(head: Manifest) -> str:
    return "commits" if head.dataset == "commits" else "retail"


def assert_overlap_loads_only_new_rows(settings: Settings, tmp: Path, dataset: str) -> None:
    first = generate(dataset, rows=3000, dirty_rate=0.2, seed=21, out=tmp / "a")
    later = generate(
        dataset, rows=2500, dirty_rate=0.3, seed=22, out=tmp / "b", overlap_from=tmp / "a", overlap_share=0.4
    )
    assert later.expected.already_loaded > 0
    assert load(settings, tmp / "a", first).status == "succeeded"
    report = load(settings, tmp / "b", later)
    assert report.status == "succeeded"
    assert report.metrics["rows_inserted"] == later.expected.output - later.expected.already_loaded
    assert report.metrics["rows_updated"] == 0
    assert report.metrics["rows_unchanged"] == later.expected.already_loaded
    with open_warehouse(settings) as wh:
        totals = wh.query(TOTALS_SQL[dataset]).to_pylist()[0]
    expected = {k: first.expected.totals[k] + later.expected.new_totals[k] for k in first.expected.totals}
    assert {k: _cents(v) for k, v in totals.items()} == pytest.approx(expected, abs=0.011)


KILL_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from datetime import datetime, UTC
    from pathlib import Path
    from dotjoin.config import load_settings
    from dotjoin.pipelines.csv_etl.pipeline import run
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    logging.getLogger("dotjoin.pipelines.csv_etl.pipeline").setLevel(logging.DEBUG)
    settings = load_settings(profile=sys.argv[1]).model_copy(update={"state_dir": Path(sys.argv[2])})
    run(settings, dataset=sys.argv[3], input_path=Path(sys.argv[4]), block_bytes=int(sys.argv[5]),
        reference_time=datetime(2026, 1, 1, tzinfo=UTC))
    print("finished", flush=True)
    """
)


def kill_mid_load(settings: Settings, dataset: str, path: Path, *, after_chunks: int = 3) -> None:
    """Run the pipeline in a child process and SIGKILL it once it has written ``after_chunks`` chunks."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # DOTJOIN__* (if any) reach the child as for the parent
    command = [
        sys.executable,
        "-c",
        KILL_SCRIPT,
        settings.profile,
        str(settings.state_dir),
        dataset,
        str(path),
        str(64 << 10),
    ]
    written = 0
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=REPO_ROOT
    ) as child:
        assert child.stderr is not None
        deadline = time.monotonic() + 120
        tail: list[str] = []
        for line in child.stderr:
            tail = [*tail[-20:], line]
            written += "(uncommitted)" in line
            if written >= after_chunks or time.monotonic() > deadline:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert written >= after_chunks, (
        "the pipeline finished or failed before it was killed mid-load: " + "".join(tail)
    )
    assert child.returncode == -signal.SIGKILL


def assert_kill_then_rerun_equals_clean_run(
    settings: Settings, clean: Settings, tmp: Path, dataset: str
) -> None:
    head = generate(dataset, rows=20_000, dirty_rate=0.3, seed=31, out=tmp / "in")
    path = tmp / "in" / head.files[0]
    reset(settings)
    kill_mid_load(settings, dataset, path)
    with open_warehouse(settings) as wh:  # nothing of the killed load is visible
        target = "commits" if dataset == "commits" else "sales"
        assert not wh.table_exists(target) or wh.scalar(f"SELECT count(*) FROM {target}") == 0
    resumed = load(settings, tmp / "in", head)
    assert_matches_manifest(settings, tmp / "in", head, resumed)
    after_kill = state(settings, _table(head))
    reset(clean)
    load(clean, tmp / "in", head)
    assert state(clean, _table(head)) == after_kill


# -- tests on DuckDB ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "rows", "dirty_rate", "seed"),
    [
        ("commits", 4000, 0.0, 1),
        ("commits", 6000, 0.05, 2),
        ("commits", 5000, 0.6, 3),
        ("commits", 3000, 1.0, 4),
        ("retail", 4000, 0.0, 1),
        ("retail", 6000, 0.05, 2),
        ("retail", 5000, 0.6, 3),
        ("retail", 3000, 1.0, 4),
    ],
)
def test_loaded_tables_and_quarantine_match_the_manifest(
    local_settings: Settings, tmp_path: Path, dataset: str, rows: int, dirty_rate: float, seed: int
) -> None:
    head = generate(dataset, rows=rows, dirty_rate=dirty_rate, seed=seed, out=tmp_path / "in")
    report = load(local_settings, tmp_path / "in", head)
    assert_matches_manifest(local_settings, tmp_path / "in", head, report)
    assert report.metrics["direct_load"] == 1.0
    assert_rerun_writes_nothing(local_settings, tmp_path / "in", head)


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_an_overlapping_export_loads_only_its_new_rows(
    local_settings: Settings, tmp_path: Path, dataset: str
) -> None:
    assert_overlap_loads_only_new_rows(local_settings, tmp_path, dataset)


def test_a_changed_row_is_updated_by_its_content_hash(local_settings: Settings, tmp_path: Path) -> None:
    head = generate("commits", rows=500, dirty_rate=0.0, seed=9, out=tmp_path / "in")
    path = tmp_path / "in" / "commits.csv"
    load(local_settings, tmp_path / "in", head)
    lines = path.read_text().split("\n")
    fields = lines[10].split(",")
    fields[-1] = str(int(fields[-1]) + 1)  # deletions of line 11
    lines[10] = ",".join(fields)
    path.write_text("\n".join(lines))
    report = load(local_settings, tmp_path / "in", head)
    assert (report.metrics["rows_updated"], report.metrics["rows_inserted"]) == (1.0, 0.0)
    with open_warehouse(local_settings) as wh:
        assert wh.scalar("SELECT deletions FROM commits WHERE source_line = 11") == int(fields[-1])


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_kill_9_mid_load_then_rerun_ends_like_an_uninterrupted_run(
    local_settings: Settings, tmp_path: Path, dataset: str
) -> None:
    clean = local_settings.model_copy(update={"state_dir": tmp_path / "clean"})
    assert_kill_then_rerun_equals_clean_run(local_settings, clean, tmp_path, dataset)


def test_run_report_and_history(local_settings: Settings, tmp_path: Path) -> None:
    head = generate("retail", rows=1500, dirty_rate=0.3, seed=5, out=tmp_path / "in")
    report = run(local_settings, dataset="retail", input_path=tmp_path / "in", reference_time=NOW,
                 report_path=tmp_path / "report.json")  # fmt: skip
    assert RunReport.model_validate_json((tmp_path / "report.json").read_text()).run_id == report.run_id
    names = {c.name for c in report.checks}
    assert len(names - {"row_accounting"}) >= 5 and all(c.passed for c in report.checks)
    assert report.params["detected_delimiter"] == "," and report.metrics["encoding_confidence"] > 0.5
    with open_warehouse(local_settings) as wh:
        assert wh.scalar("SELECT status FROM dotjoin_runs WHERE run_id = $1", [report.run_id]) == "succeeded"
        loads = wh.query("SELECT records, output_rows FROM csv_etl_loads").to_pylist()
    assert loads == [{"records": head.expected.input, "output_rows": head.expected.output}]


# -- the CLI: one-line errors, JSON, analyses ----------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``dotjoin <args>`` in a child process, with the etl commands registered if main.py does not yet."""
    code = (
        "from dotjoin.cli import etl, main\n"
        "if not any(g.name == 'etl' for g in main.app.registered_groups):\n"
        "    main.app.add_typer(etl.app, name='etl')\n"
        "main.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTJOIN")} | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str, tuple[str, ...]]]:
    good = generate("commits", rows=20, dirty_rate=0.0, seed=1, out=tmp / "good")
    text = (tmp / "good" / good.files[0]).read_text()
    files = {
        "empty.csv": b"",
        "header_only.csv": text.split("\n")[0].encode() + b"\n",
        "binary.csv": bytes(range(256)) * 40,
        "columns.csv": b"repo,sha,author\nx,y,z\n",
        "ragged_everywhere.csv": text.replace(",", ";").encode(),
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    return {
        "missing file": (tmp / "nope.csv", "nope.csv: no such file", ()),
        "empty file": (tmp / "empty.csv", "empty.csv is empty", ()),
        "header only": (tmp / "header_only.csv", "no data records after the header (line 1)", ()),
        "binary file": (tmp / "binary.csv", "binary.csv looks like a binary file", ()),
        "unknown column set": (tmp / "columns.csv", "missing author_name, author_email", ()),
        "wrong delimiter": (tmp / "good" / "commits.csv", "wrong delimiter ';'", ("--delimiter", ";")),
        "semicolons read with a comma": (
            tmp / "ragged_everywhere.csv",
            "wrong delimiter ','",
            ("--delimiter", ","),
        ),
    }


def test_bad_input_gives_one_red_line_naming_the_file_and_writes_nothing(
    local_settings: Settings, tmp_path: Path
) -> None:
    for what, (path, message, extra) in _bad_inputs(tmp_path).items():
        result = cli("etl", "csv", "--dataset", "commits", "--input", str(path), *extra, cwd=tmp_path)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, (what, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (
            what,
            result.stderr,
        )
        assert "Traceback" not in result.stderr and path.name in lines[0], what
    with open_warehouse(local_settings.model_copy(update={"state_dir": tmp_path / ".dotjoin"})) as wh:
        assert not wh.table_exists("commits") or wh.scalar("SELECT count(*) FROM commits") == 0


def test_bad_input_errors_are_dotjoin_errors(local_settings: Settings, tmp_path: Path) -> None:
    for what, (path, message, extra) in _bad_inputs(tmp_path).items():
        kwargs = {"delimiter": extra[1]} if extra else {}
        with pytest.raises(DotjoinError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run(local_settings, dataset="commits", input_path=path, **kwargs)  # type: ignore[arg-type]
        assert what


def test_cli_json_report_and_analyses(tmp_path: Path) -> None:
    generate("commits", rows=2000, dirty_rate=0.2, seed=3, out=tmp_path / "in")
    result = cli("etl", "csv", "-d", "commits", "-i", str(tmp_path / "in" / "commits.csv"),
                 "--reference-time", "2026-01-01T00:00:00", "--output", "json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["status"] == "succeeded" and report["counts"]["input"] == 2000
    analyses = cli("etl", "csv-report", "-d", "commits", "-o", "json", cwd=tmp_path)
    assert analyses.returncode == 0, analyses.stderr
    tables = json.loads(analyses.stdout)
    assert set(tables) == {"commits_merge_ratio", "commits_per_day", "commits_top_repos"}
    assert sum(r["commits"] for r in tables["commits_per_day"]) == report["counts"]["output"]
    assert len(tables["commits_top_repos"]) == 10
    missing = cli("etl", "csv-report", "-d", "retail", cwd=tmp_path)
    assert missing.returncode == 1 and "no sales table" in missing.stderr
