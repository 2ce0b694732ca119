"""The Feast repository generated from the feature definitions, and its source rows (no Feast needed: the
Feast round trips are in tests/integration/test_features_feast.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.features import feast_repo
from dotjoin.pipelines.features.backfill import backfill
from dotjoin.pipelines.features.definitions import ENTITY_KEYS, FEATURES, MINUTE_MS
from tests.unit.pipelines.test_features import T0, payments


def _stack(tmp_path: Path, password: str = "s3cr3t-pg", redis: str = "s3cr3t-redis") -> Settings:
    env = {"DOTJOIN__WAREHOUSE__PASSWORD": password, "DOTJOIN__REDIS__PASSWORD": redis}
    return load_settings(profile="stack", cwd=tmp_path, env=env)


def test_the_definitions_declare_every_feature_once_in_its_entitys_view(
    local_settings: Settings, tmp_path: Path
) -> None:
    repo = feast_repo.generate(local_settings, project="p", root=tmp_path / "repo")
    text = (repo.path / feast_repo.DEFINITIONS_FILE).read_text()
    compile(text, feast_repo.DEFINITIONS_FILE, "exec")
    for f in FEATURES:
        assert text.count(f'Field(name="{f.name}"') == 1
    for entity, key in ENTITY_KEYS.items():
        assert f'join_keys=["{key}"]' in text and f'PushSource(name="{entity}_push"' in text
        assert f'FileSource(name="{entity}_source"' in text
    yaml = (repo.path / "feature_store.yaml").read_text()
    assert "type: file" in yaml and "type: sqlite" in yaml and "registry_type: file" in yaml


def test_the_stack_repository_names_its_secrets_and_never_holds_them(tmp_path: Path) -> None:
    settings = _stack(tmp_path, password="p@ss/word")
    repo = feast_repo.generate(settings, project="p", root=tmp_path / "repo")
    written = "".join(p.read_text() for p in repo.path.iterdir() if p.is_file())
    assert "p@ss" not in written and "s3cr3t-redis" not in written
    yaml = (repo.path / "feature_store.yaml").read_text()
    assert "registry_type: sql" in yaml and "type: postgres" in yaml and "sslmode: disable" in yaml
    assert (
        "password: '${DOTJOIN_FEAST_PG_PASSWORD}'" in yaml
        and "password=${DOTJOIN_FEAST_REDIS_PASSWORD}" in yaml
    )
    assert "PostgreSQLSource" in (repo.path / feast_repo.DEFINITIONS_FILE).read_text()
    env = feast_repo.feast_env(settings)
    assert (
        env[feast_repo.PG_PASSWORD_ENV] == "p@ss/word"
        and env[feast_repo.PG_PASSWORD_URL_ENV] == "p%40ss%2Fword"
    )
    assert env[feast_repo.REDIS_PASSWORD_ENV] == "s3cr3t-redis"


def test_a_secret_the_config_cannot_carry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot carry"):
        feast_repo.generate(_stack(tmp_path, redis="a,b"), project="p", root=tmp_path / "repo")
    with pytest.raises(ConfigError, match="project"):
        feast_repo.generate(_stack(tmp_path), project="Bad-Name", root=tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_source_rows_are_the_backfill_per_entity_and_time_stamped_in_utc() -> None:
    # Two payments of card c in one millisecond: one row (equal features: strictly before t).
    history = [("c", "m", T0, 100), ("c", "n", T0, 200), ("c", "m", T0 + MINUTE_MS, 50)]
    points = pa.table({"point_id": ["a", "b", "c"], "card_id": ["c", "c", "c"],
                       "merchant_id": ["m", "n", "m"], "time_ms": [T0, T0, T0 + MINUTE_MS]})  # fmt: skip
    tables = feast_repo.source_tables(points, backfill(payments(history), points))
    card = tables["card"].to_pylist()
    assert [r["card_count_10m"] for r in card] == [0, 2] and card[1]["card_sum_10m"] == 300
    assert card[0]["event_timestamp"].timestamp() * 1000 == T0 and card[0]["card_mean_10m"] is None
    assert [(r["merchant_id"], r["merchant_count_7d"]) for r in tables["merchant"].to_pylist()] == [
        ("m", 0),
        ("m", 1),
        ("n", 0),
    ]
    assert tables["card"].column_names == ["card_id", "event_timestamp", *(f.name for f in FEATURES
                                                                          if f.entity == "card")]  # fmt: skip


def test_a_snapshot_asks_every_card_and_merchant(local_settings: Settings, tmp_path: Path) -> None:
    snap = feast_repo.snapshot_points(["c1", "c2", "c3"], ["m1"], T0)
    assert snap["card_id"].to_pylist() == ["c1", "c2", "c3"] and set(snap["merchant_id"].to_pylist()) == {
        "m1"
    }
    repo = feast_repo.generate(local_settings, project="p", root=tmp_path / "repo")
    tables = feast_repo.source_tables(snap, backfill(payments([("c1", "m1", T0 - 1, 5)]), snap))
    assert feast_repo.write_source(local_settings, repo, tables) == {"card": 3, "merchant": 1}
    assert all(Path(p).exists() for p in repo.sources.values())
    feast_repo.drop_source(local_settings, repo)
    assert not any(Path(p).exists() for p in repo.sources.values())
