"""Feast 0.67 over the feature store's computed rows, on real stores: the stack's PostgreSQL (offline store
and registry) and Redis (online store), and the local profile's files and SQLite.

Feast runs in its own virtualenv (``make feast``) through ``benchmarks/_feast_ops.py``. The truth is
dotjoin's: the online state computed in memory from the same payments (for what Feast serves online) and
the backfill (for what it retrieves point in time).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.features import feast_repo
from dotjoin.pipelines.features.backfill import as_tables, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import FEATURES, MINUTE_MS
from dotjoin.pipelines.features.online import OnlineFeatures
from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.simulate.payments.output import write_fx_rates, write_log
from dotjoin.simulate.payments.stream import generate
from tests.conftest import REPO_ROOT
from tests.unit.pipelines.test_features import agree
from tests.unit.pipelines.test_features import points as points_at

FEAST_PYTHON = REPO_ROOT / ".venv-feast" / "bin" / "python"
FEAST_OPS = REPO_ROOT / "benchmarks" / "_feast_ops.py"
TTL_MS = 60 * MINUTE_MS
VIEWS = {"card": "card_features", "merchant": "merchant_features"}
ALL = [f"{VIEWS[f.entity]}:{f.name}" for f in FEATURES]


def require_feast() -> None:
    """Skip without ``.venv-feast`` on a developer's machine; under CI it must be there (``make feast``)."""
    if FEAST_PYTHON.exists():
        return
    reason = f"{FEAST_PYTHON} is missing: Feast runs in its own virtualenv, make it with `make feast`"
    if os.environ.get("CI"):
        pytest.fail(reason + " and CI is set", pytrace=False)
    pytest.skip(reason)


def feast_ops(settings: Settings, repo: feast_repo.FeastRepo, ops: list[dict[str, Any]]) -> list[Any]:
    """Run ``ops`` in one Feast process; the repository's secrets go in its environment only."""
    env = {**os.environ, **feast_repo.feast_env(settings)}
    done = subprocess.run([str(FEAST_PYTHON), str(FEAST_OPS), str(repo.path)], input=json.dumps(ops),
                          capture_output=True, text=True, env=env, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return list(json.loads(done.stdout)["results"])


def _stream(tmp_path: Path) -> tuple[list[str], list[tuple[str, str, int, int]]]:
    """A small simulated stream ending a minute ago (materialize-incremental starts at now - TTL)."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=4)
    sim = generate(seed=13, eps=10, duration_s=180, start=start, customers=40)
    write_log(sim, tmp_path)
    rates = read_usd_rates(write_fx_rates(tmp_path / "fx.csv"))
    ids, rows, _ = distinct_rows(read_recorded(tmp_path / "events.jsonl").payments, rates)
    return ids, rows


def round_trip(settings: Settings, tmp_path: Path, project: str) -> None:
    """Generate → write the backfill's rows as the source → apply → materialize-incremental → online and
    historical reads → a push, each checked against dotjoin's own computations."""
    require_feast()
    repo = feast_repo.generate(settings, project=project, root=tmp_path / "repo", ttl_ms=TTL_MS)
    assert "${" in (repo.path / "feature_store.yaml").read_text() or repo.offline == "file"
    ids, rows = _stream(tmp_path)
    payments, points = as_tables(ids, rows)
    end = max(r[2] for r in rows) + 1  # "now" for the stream: every payment is before it
    cards, merchants = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
    snapshot = feast_repo.snapshot_points(cards, merchants, end)
    asked = pa.concat_tables([points.select(snapshot.column_names), snapshot])
    truth = backfill(payments, asked)
    written = feast_repo.write_source(settings, repo, feast_repo.source_tables(asked, truth))
    assert written["card"] >= len(cards) and written["merchant"] >= len(merchants)
    at_points = dict(zip(truth["point_id"].to_pylist(), truth.to_pylist(), strict=True))

    memory = OnlineFeatures()
    memory.add_all(rows)
    pairs = [
        (cards[i % len(cards)], merchants[i % len(merchants)]) for i in range(max(len(cards), len(merchants)))
    ]
    # Point in time: payments' own rows (exact); 1 ms after a card's last payment (Feast serves the row of
    # that payment, which leaves the payment itself out: stale); before any row (null); past the TTL (null).
    sample = [(n, rows[n]) for n in range(0, len(rows), max(1, len(rows) // 60))]
    last: dict[str, int] = {}
    for n, (card, _, t, _) in enumerate(rows):
        if t < end - 1 and (card not in last or rows[last[card]][2] < t):
            last[card] = n
    stale_at = list(last.values())[:10]
    stale = [rows[n] for n in stale_at]
    entities = [{"card_id": r[0], "merchant_id": r[1], "event_timestamp_ms": r[2]} for _, r in sample]
    entities += [{"card_id": c, "merchant_id": m, "event_timestamp_ms": t + 1} for c, m, t, _ in stale]
    first_t = min(r[2] for r in rows)
    entities += [
        {"card_id": cards[0], "merchant_id": merchants[0], "event_timestamp_ms": first_t - 1},
        {"card_id": cards[0], "merchant_id": merchants[0], "event_timestamp_ms": end + TTL_MS - 1_000},
        {"card_id": cards[0], "merchant_id": merchants[0], "event_timestamp_ms": end + TTL_MS + 1_000},
        {"card_id": "no-such-card", "merchant_id": merchants[0], "event_timestamp_ms": end},
    ]
    pushed_card = cards[0]
    later = OnlineFeatures()
    later.add_all([*rows, (pushed_card, merchants[0], end + 5_000, 123_456)])
    pushed = later.features_at(card_id=pushed_card, merchant_id=merchants[0], t=end + 10_000)
    card_names = [f.name for f in FEATURES if f.entity == "card"]
    push_row = {
        "card_id": pushed_card,
        "event_timestamp_ms": end + 10_000,
        **{n: pushed[n] for n in card_names},
    }
    online_entities = {"card_id": [c for c, _ in pairs], "merchant_id": [m for _, m in pairs]}
    try:
        applied, _, online, historical, _, after_push, _ = feast_ops(
            settings,
            repo,
            [
                {"op": "apply"},
                {"op": "materialize_incremental", "end_ms": int(time.time() * 1000)},
                {"op": "online", "features": ALL, "entities": online_entities},
                {"op": "historical", "features": ALL, "entities": entities},
                {"op": "push", "source": "card_push", "rows": [push_row], "to": "online"},
                {
                    "op": "online",
                    "features": ALL,
                    "entities": {"card_id": [pushed_card], "merchant_id": [merchants[0]]},
                },
                {"op": "teardown"},
            ],
        )
    finally:
        feast_repo.drop_source(settings, repo)
    assert applied == {"feature_views": sorted(VIEWS.values())}

    # Online: every entity's features as of the end of the stream, as dotjoin's streaming state has them.
    for i, (card, merchant) in enumerate(pairs):
        served = {f.name: online[f.name][i] for f in FEATURES}
        assert agree(served, memory.features_at(card_id=card, merchant_id=merchant, t=end)) == [], (
            card,
            merchant,
        )

    # Historical at the payments' own times: the backfill at those points, exactly.
    got_rows = {row["_row"]: row for row in historical}
    for k, (n, _) in enumerate(sample):
        expected = {key: v for key, v in at_points[ids[n]].items() if key != "point_id"}
        assert agree(got_rows[k], expected) == [], ids[n]
    # 1 ms after a card's last payment Feast still serves that payment's row, which leaves the payment out:
    # Feast returns the latest value, it does not slide a window.
    after = backfill(payments, points_at([(r[0], r[1], r[2] + 1) for r in stale])).to_pylist()
    card_only = {f.name for f in FEATURES if f.entity == "card"}
    for k, (n, truth_after) in enumerate(zip(stale_at, after, strict=True), start=len(sample)):
        at_payment = at_points[ids[n]]
        assert agree({**at_payment, **{c: got_rows[k][c] for c in card_only}}, at_payment) == [], ids[n]
        assert got_rows[k]["card_count_7d"] < truth_after["card_count_7d"], ids[n]
    before, within, expired, unknown = range(len(sample) + len(stale), len(entities))
    assert (
        agree(got_rows[within], memory.features_at(card_id=cards[0], merchant_id=merchants[0], t=end)) == []
    )
    assert all(got_rows[unknown][name] is None for name in card_only)
    assert got_rows[unknown]["merchant_count_7d"] == got_rows[within]["merchant_count_7d"]
    if repo.offline == "postgres":  # nothing at or before the time, or nothing within the TTL: nulls
        assert all(got_rows[before][name] is None for name in card_only)
        assert all(got_rows[expired][f.name] is None for f in FEATURES)
    else:  # Feast 0.67's file store drops such a row when the entity has rows elsewhere in time
        assert before not in got_rows and expired not in got_rows
        assert len(got_rows) == len(entities) - 2

    # A streaming write through the push source replaces the card's online row; the merchant's stays.
    served = {f.name: after_push[f.name][0] for f in FEATURES}
    expected = {**memory.features_at(card_id=pushed_card, merchant_id=merchants[0], t=end),
                **{n: pushed[n] for n in card_names}}  # fmt: skip
    assert agree(served, expected) == []
    assert served["card_count_7d"] == memory.features_at(card_id=pushed_card, merchant_id=merchants[0],
                                                         t=end)["card_count_7d"] + 1  # fmt: skip


@pytest.mark.postgres
@pytest.mark.redis
def test_feast_on_postgres_and_redis_serves_dotjoins_features(
    postgres: Settings, redis_service: Settings, unique_name: str, tmp_path: Path
) -> None:
    assert postgres.warehouse.type == "postgres" and postgres.features.online == "redis"
    round_trip(postgres, tmp_path, unique_name)
    with open_warehouse(postgres) as wh:  # torn down: nothing of the project left in the shared registry
        for table in ("projects", "feature_views", "entities", "feature_view_version_history"):
            left = wh.scalar(
                f"SELECT count(*) FROM {feast_repo.SCHEMA}.{table} WHERE project_id = $1", [unique_name]
            )
            assert left == 0, table
        assert not wh.table_exists(f"{feast_repo.SCHEMA}.{unique_name}_card_features")


@pytest.mark.slow
def test_feast_on_files_and_sqlite_serves_dotjoins_features(local_settings: Settings, tmp_path: Path) -> None:
    assert local_settings.warehouse.type == "duckdb" and local_settings.features.online == "sqlite"
    round_trip(local_settings, tmp_path, "dotjoin_local")
