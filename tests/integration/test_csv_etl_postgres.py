"""The CSV ETL on real PostgreSQL (stack profile): the same row-for-row acceptance as on DuckDB, re-runs,
overlapping exports, and a kill -9 in the middle of a binary COPY followed by a re-run.

The pipeline's tables have fixed names, so each test starts them empty (see ``reset``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dotjoin.config import Settings
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.csv_etl.generator import generate
from tests.e2e.test_csv_etl import (
    assert_kill_then_rerun_equals_clean_run,
    assert_matches_manifest,
    assert_overlap_loads_only_new_rows,
    assert_rerun_writes_nothing,
    load,
    reset,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres: Settings, tmp_path: Path) -> Settings:
    """Stack settings with a fresh state directory (run reports) and empty pipeline tables."""
    settings = postgres.model_copy(update={"state_dir": tmp_path / "state"})
    reset(settings)
    return settings


@pytest.mark.parametrize(
    ("dataset", "rows", "dirty_rate", "seed"),
    [
        ("commits", 6000, 0.05, 2),
        ("commits", 4000, 0.7, 5),
        ("retail", 6000, 0.05, 2),
        ("retail", 4000, 0.7, 5),
    ],
)
def test_loaded_tables_and_quarantine_match_the_manifest_on_postgres(
    pg: Settings, tmp_path: Path, dataset: str, rows: int, dirty_rate: float, seed: int
) -> None:
    head = generate(dataset, rows=rows, dirty_rate=dirty_rate, seed=seed, out=tmp_path / "in")
    report = load(pg, tmp_path / "in", head)
    assert_matches_manifest(pg, tmp_path / "in", head, report)
    assert report.profile == "stack" and report.metrics["direct_load"] == 1.0
    assert_rerun_writes_nothing(pg, tmp_path / "in", head)


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_an_overlapping_export_loads_only_its_new_rows_on_postgres(
    pg: Settings, tmp_path: Path, dataset: str
) -> None:
    assert_overlap_loads_only_new_rows(pg, tmp_path, dataset)


def test_postgres_and_duckdb_load_the_same_rows(
    pg: Settings, local_settings: Settings, tmp_path: Path
) -> None:
    from tests.e2e.test_csv_etl import state

    head = generate("retail", rows=3000, dirty_rate=0.4, seed=12, out=tmp_path / "in")
    load(pg, tmp_path / "in", head)
    load(local_settings, tmp_path / "in", head)
    assert state(pg, "retail") == state(local_settings, "retail")


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_kill_9_mid_copy_then_rerun_ends_like_an_uninterrupted_run_on_postgres(
    pg: Settings, local_settings: Settings, tmp_path: Path, dataset: str
) -> None:
    # The uninterrupted reference run goes to DuckDB: same rows, and PostgreSQL's tables stay the killed
    # run's. state() compares business content, which is the same on both engines (the test above).
    assert_kill_then_rerun_equals_clean_run(pg, local_settings, tmp_path, dataset)
    with open_warehouse(pg) as wh:  # the killed transaction left no staging table or lock behind
        assert wh.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'csv_etl_%stage%'") == 0


def test_a_direct_load_builds_the_primary_key_after_the_rows_and_it_is_enforced(
    pg: Settings, tmp_path: Path
) -> None:
    """The direct load drops the empty table's key and re-adds it in the same transaction: afterwards
    the key exists with its columns, and a second row with a loaded key is refused by PostgreSQL."""
    head = generate("commits", rows=500, dirty_rate=0.0, seed=3, out=tmp_path / "in")
    report = load(pg, tmp_path / "in", head)
    assert report.metrics["direct_load"] == 1.0
    with open_warehouse(pg) as wh:
        key = (
            wh.query(
                "SELECT a.attname FROM pg_constraint AS c JOIN pg_attribute AS a"
                " ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
                " WHERE c.conrelid = 'commits'::regclass AND c.contype = 'p' ORDER BY a.attnum"
            )
            .column("attname")
            .to_pylist()
        )
        assert key == ["repo", "sha"]
        with pytest.raises(Exception, match="duplicate key"):
            wh.execute("INSERT INTO commits SELECT * FROM commits LIMIT 1")
