"""The CDC history queries on DuckDB over the recorded Debezium stream, checked against its journal
(what the workload did to the source, written by the workload, not read back from the lake)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError, DataError, NotFoundError
from dotjoin.pipelines.cdc import history_queries
from dotjoin.pipelines.cdc.pipeline import replay
from dotjoin.pipelines.cdc.tables import history
from dotjoin.platform.lake import Lake, open_lake
from dotjoin.simulate.cdc_recording import EVENTS, JOURNAL


@pytest.fixture
def demo(local_settings: Settings) -> Settings:
    """The recording replayed into a fresh local lake; the settings' source schema is the recording's."""
    cdc = local_settings.cdc.model_copy(update={"source_schema": "cdc_demo"})
    settings = local_settings.model_copy(update={"cdc": cdc})
    assert replay(settings, EVENTS, journal=JOURNAL).status == "succeeded"
    return settings


def journal() -> list[dict[str, Any]]:
    with gzip.open(JOURNAL, "rt") as fh:
        return [json.loads(line) for line in fh]


def final_rows(table: str) -> dict[Any, dict[str, Any]]:
    """The source table's end state, by applying the journal's changes in order."""
    rows: dict[Any, dict[str, Any]] = {}
    for change in journal():
        if change["table"] == table:
            key = tuple(change["key"])
            if change["op"] == "d":
                rows.pop(key, None)
            else:
                rows[key] = change["row"]
    return rows


def run(lake: Lake, settings: Settings, name: str, **values: Any) -> list[dict[str, Any]]:
    return history_queries.run(lake, settings, name, values).to_pylist()


def test_current_inventory_is_the_journals_end_state(demo: Settings) -> None:
    rows = final_rows("cdc_demo.inventory")
    expected = [
        {"sku": r["sku"], "name": r["name"], "quantity": r["quantity"], "price": Decimal(r["price"]),
         "stock_value": r["quantity"] * Decimal(r["price"])}
        for _, r in sorted(rows.items())
    ]  # fmt: skip
    with open_lake(demo) as lake:
        assert run(lake, demo, "current_inventory") == expected


def test_changes_per_day_count_the_journals_changes(demo: Settings) -> None:
    ops = {"c": "inserts", "u": "updates", "d": "deletes"}
    expected = Counter((c["table"].partition(".")[2], ops[c["op"]]) for c in journal())
    with open_lake(demo) as lake:
        got = run(lake, demo, "changes_per_day")
    counted: Counter[tuple[str, str]] = Counter()
    for row in got:
        assert row["versions"] == sum(row[k] for k in ("snapshot_reads", "inserts", "updates", "deletes"))
        for kind in ops.values():
            counted[(row["source_table"], kind)] += row[kind]
    assert +counted == expected


def test_a_users_state_as_of_each_version(demo: Settings) -> None:
    users = [c for c in journal() if c["table"] == "cdc_demo.users"]
    deleted = {c["key"][0] for c in users if c["op"] == "d"}  # (a delete-and-reinsert shares a commit time)
    user_id = next(c["key"][0] for c in users if c["op"] == "u" and c["key"][0] not in deleted)
    journalled = [c["row"] for c in users if c["key"] == [user_id]]
    with open_lake(demo) as lake:
        versions = [v for v in history(lake, "cdc_demo.users").to_pylist() if v["user_id"] == user_id]
        assert len(versions) == len(journalled) >= 2
        for version, row in zip(versions, journalled, strict=True):
            got = run(lake, demo, "user_as_of", user_id=str(user_id), as_of=version["valid_from"].isoformat())
            assert len(got) == 1 and got[0]["version"] == version["version"]
            assert {k: got[0][k] for k in ("email", "full_name", "tier")} == {
                k: row[k] for k in ("email", "full_name", "tier")
            }
        before = versions[0]["valid_from"].replace(year=2000).isoformat()
        assert run(lake, demo, "user_as_of", user_id=str(user_id), as_of=before) == []


def test_bad_names_parameters_and_engines_are_clear_errors(demo: Settings) -> None:
    with open_lake(demo) as lake:
        with pytest.raises(NotFoundError, match="no CDC query 'nope'; there are: changes_per_day"):
            run(lake, demo, "nope")
        with pytest.raises(DataError, match=r"missing \['as_of'\].*it takes user_id \(bigint\), as_of"):
            run(lake, demo, "user_as_of", user_id="1")
        with pytest.raises(DataError, match="parameter as_of: 'yesterday' is not a timestamptz"):
            run(lake, demo, "user_as_of", user_id="1", as_of="yesterday")
        with pytest.raises(ConfigError, match="Trino reads the stack's lake"):
            history_queries.run(lake, demo, "current_inventory", {}, engine="trino")


def test_a_query_of_tables_never_cdcd_says_so(local_settings: Settings) -> None:
    with (
        open_lake(local_settings) as lake,
        pytest.raises(NotFoundError, match="no change log in the lake for"),
    ):
        run(lake, local_settings, "current_inventory")
