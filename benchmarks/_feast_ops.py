"""Feast operations on a generated repository, run with ``.venv-feast/bin/python`` (``make feast``).

The platform never imports Feast (its pins clash with the platform's and ``import feast`` takes seconds):
the tests and ``benchmarks/feature_fetch.py`` run this script as a process. It never imports dotjoin.
The repository comes from :mod:`dotjoin.pipelines.features.feast_repo`; its ``${...}`` secrets come in
the environment.

Reads a JSON list of operations on stdin, runs them in order in one process (one import of Feast) and
prints one JSON object on stdout: ``{"import_s": ..., "results": [...]}``, one result per operation.
Feast's own prints go to stderr. Times are epoch milliseconds (UTC). No warning filters: with
``-W always`` these operations raise none of Feast's (only psycopg's ResourceWarning for connections
Feast leaves open, which Python hides by default); the process is not under pytest's ``error`` filter.

* ``{"op": "apply"}`` — what ``feast apply`` does (``apply_total``): registers the entities, sources and
  views, creates the online tables;
* ``{"op": "materialize_incremental", "end_ms": T}`` — ``feast materialize-incremental``: each view's
  newest source row per entity up to T, into the online store;
* ``{"op": "online", "features": [...], "entities": {"card_id": [...], ...}}`` — ``get_online_features``:
  ``{"feature name": [values]}`` (the entity keys, then the features by their own names);
* ``{"op": "historical", "features": [...], "entities": [{"card_id": ..., "event_timestamp_ms": T,
  ...}]}`` — ``get_historical_features`` (point in time: per view the newest row at or before T within
  its TTL), rows in the entities' order with ``_row``, the entity row's index (Feast 0.67's file store
  leaves out an entity row whose entity has source rows, none of them within the window);
* ``{"op": "push", "source": "card_push", "rows": [{..., "event_timestamp_ms": T}], "to": "online"}`` —
  a streaming write through a push source (``online``, ``offline`` or ``online_and_offline``);
* ``{"op": "teardown"}`` — the project's online tables and its registry entries, its feature-view version
  history included (not ``FeatureStore.teardown``, which deletes *every* project of a shared registry).

Usage: .venv-feast/bin/python benchmarks/_feast_ops.py REPO_DIR < ops.json
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars to Python, NaN (pandas' missing) to null."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if "event_timestamp_ms" in frame:
        frame["event_timestamp"] = pd.to_datetime(frame.pop("event_timestamp_ms"), unit="ms", utc=True)
    return frame


def run(store: Any, op: dict[str, Any]) -> Any:
    from datetime import UTC, datetime

    kind = op["op"]
    if kind == "apply":
        from feast.repo_config import load_repo_config
        from feast.repo_operations import apply_total, cli_check_repo

        path, yaml = Path(store.repo_path), Path(store.repo_path) / "feature_store.yaml"
        cli_check_repo(path, yaml)  # as the CLI: the repository's directory on sys.path
        apply_total(load_repo_config(path, yaml), path, skip_source_validation=False)
        store.refresh_registry()
        return {"feature_views": sorted(v.name for v in store.list_feature_views())}
    if kind == "materialize_incremental":
        end = datetime.fromtimestamp(op["end_ms"] / 1000, tz=UTC)
        store.materialize_incremental(end_date=end)
        return {"end": end.isoformat()}
    if kind == "online":
        got = store.get_online_features(features=op["features"], entity_rows=_rows(op["entities"]))
        return {k: [_plain(v) for v in values] for k, values in got.to_dict().items()}
    if kind == "historical":
        entities = _frame(op["entities"])
        entities["_row"] = range(len(entities))
        frame = store.get_historical_features(entity_df=entities, features=op["features"]).to_df()
        frame = frame.sort_values("_row").drop(columns=["event_timestamp"])
        return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    if kind == "push":
        from feast.data_source import PushMode

        store.push(op["source"], _frame(op["rows"]), to=PushMode[op.get("to", "online").upper()])
        return {"pushed": len(op["rows"])}
    if kind == "teardown":
        views, entities = store.list_feature_views(), store.list_entities()
        store._get_provider().teardown_infra(store.project, views, entities)
        store.registry.delete_project(store.project)
        _forget_versions(store)
        return {"project": store.project}
    raise SystemExit(f"unknown operation {kind!r}")


def _forget_versions(store: Any) -> None:
    """The SQL registry's feature-view version history of the project: Feast 0.67's ``delete_project``
    leaves it, and applying the same project name again then fails on its primary key."""
    from feast.infra.registry import sql

    if isinstance(store.registry, sql.SqlRegistry):
        table = sql.feature_view_version_history
        with store.registry.write_engine.begin() as conn:
            conn.execute(table.delete().where(table.c.project_id == store.project))


def _rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def main() -> None:
    repo = Path(sys.argv[1]).resolve()
    ops = json.load(sys.stdin)
    results = []
    with contextlib.redirect_stdout(sys.stderr):  # Feast prints progress to stdout: keep stdout JSON
        started = time.perf_counter()
        from feast import FeatureStore

        import_s = time.perf_counter() - started
        store = FeatureStore(repo_path=str(repo))
        for op in ops:
            results.append(run(store, op))
    print(json.dumps({"import_s": import_s, "results": results}))


if __name__ == "__main__":
    main()
