"""The CDC connector's configuration and the Connect worker's, without a server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.cdc.connector import connector_config, password_file, write_password_file
from dotjoin.pipelines.cdc.source import captured_tables, heartbeat_query
from dotjoin.services.connect import render_worker_properties


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    env = {"DOTJOIN__CDC__REPLICATION_PASSWORD": "s3:c=r\\et"}
    return load_settings(profile="stack", cwd=tmp_path, env=env)


def test_the_connector_config_names_the_password_file_never_the_password(settings: Settings) -> None:
    config = connector_config(settings, Path("/run/secrets/cdc.properties"))
    assert config["database.password"] == "${file:/run/secrets/cdc.properties:password}"
    assert "s3:c=r" not in str(config)
    assert config["database.user"] == "dotjoin_replicator" and config["plugin.name"] == "pgoutput"
    assert config["publication.autocreate.mode"] == "disabled"  # the tables' owner made it
    # include lists are regular expressions: the dot between schema and table is literal
    tables = captured_tables(settings)
    assert config["table.include.list"].split(",") == [t.replace(".", "\\.") for t in tables]
    assert "cdc_source.debezium_heartbeat" in captured_tables(settings)  # published, so the slot advances
    assert config["heartbeat.action.query"] == heartbeat_query(settings)
    assert heartbeat_query(settings).startswith('INSERT INTO "cdc_source"."debezium_heartbeat"')


def test_the_password_file_is_private_and_escaped_for_java_properties(settings: Settings) -> None:
    path = write_password_file(settings)
    assert path == password_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "password=s3\\:c\\=r\\\\et\n"


def test_no_replication_password_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(profile="stack", cwd=tmp_path, env={})
    assert settings.cdc.replication_password is None
    with pytest.raises(ConfigError, match="services up postgres"):
        write_password_file(settings)


def test_the_worker_is_distributed_on_loopback_with_file_secrets(tmp_path: Path) -> None:
    props = render_worker_properties(
        bootstrap_servers="127.0.0.1:9092", host="127.0.0.1", port=8083,
        plugin_path=tmp_path / "plugins", secrets_dir=tmp_path / "s",
    )  # fmt: skip
    lines = dict(line.split("=", 1) for line in props.splitlines() if line and not line.startswith("#"))
    assert lines["listeners"] == "http://127.0.0.1:8083"
    assert lines["config.storage.topic"] == "dotjoin.connect.configs"
    assert lines["config.providers.file.param.allowed.paths"] == str(tmp_path / "s")
    assert lines["value.converter.schemas.enable"] == "true"


def test_names_that_reach_sql_and_debezium_must_be_plain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cdc\.source_schema"):
        load_settings(cwd=tmp_path, env={"DOTJOIN__CDC__SOURCE_SCHEMA": 'x"; DROP TABLE y; --'})
