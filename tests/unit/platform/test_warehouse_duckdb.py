"""What only the DuckDB warehouse does: its file under the state directory, ``:memory:``, 1-byte integers,
its memory cap.

The behaviour both engines share (types, parameters, quoting, loads, upserts, transactions, errors) is in
``tests/integration/test_warehouse_contract.py``, which runs on DuckDB without any service.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse


def test_factory_creates_the_file_under_state_dir(local_settings: Settings) -> None:
    with open_warehouse(local_settings) as wh:
        assert isinstance(wh, DuckDBWarehouse)
        wh.execute("CREATE TABLE t (x INTEGER)")
    assert (local_settings.state_dir / "warehouse.duckdb").is_file()


def test_memory_database(tmp_path: Path) -> None:
    settings = load_settings(profile="local", cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__PATH": ":memory:"})
    with open_warehouse(settings) as wh:
        assert wh.scalar("SELECT $1 * 2", [21]) == 42
    assert not list(tmp_path.rglob("*.duckdb"))


def test_int8_round_trips(local_settings: Settings) -> None:
    # PostgreSQL has no 1-byte integer (int8 widens to smallint there); DuckDB keeps TINYINT.
    data = pa.table({"i8": pa.array([1, None, -128], pa.int8())})
    with open_warehouse(local_settings) as wh:
        assert wh.load_arrow("typed", data) == 3
        back = wh.query("SELECT * FROM typed ORDER BY i8 NULLS LAST")
    assert back.schema == data.schema
    assert back.to_pylist() == data.take([2, 0, 1]).to_pylist()  # ordered by i8: -128, 1, NULL


def test_memory_limit_caps_duckdb_and_a_bad_value_names_the_key(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__MEMORY_LIMIT": "512MB"})
    with open_warehouse(settings) as wh:
        assert wh.scalar("SELECT current_setting('memory_limit')") == "488.2 MiB"  # 512 MB in MiB
    with pytest.raises(ConfigError, match=r"warehouse\.memory_limit.*DOTJOIN__WAREHOUSE__MEMORY_LIMIT"):
        load_settings(cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__MEMORY_LIMIT": "lots"})
