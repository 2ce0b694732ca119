from __future__ import annotations

from pathlib import Path

import pytest

from dotjoin.config import load_settings
from dotjoin.exceptions import ConfigError


def test_defaults_are_the_local_profile(tmp_path: Path) -> None:
    s = load_settings(cwd=tmp_path, env={})
    assert s.profile == "local"
    assert (s.warehouse.type, s.lake.catalog, s.bus.type) == ("duckdb", "sqlite", "embedded")
    assert s.state_dir == tmp_path / ".dotjoin"
    assert s.resolve(s.warehouse.path) == tmp_path / ".dotjoin" / "warehouse.duckdb"


def test_stack_profile_switches_every_engine(tmp_path: Path) -> None:
    s = load_settings(cwd=tmp_path, env={"DOTJOIN_PROFILE": "stack"})
    assert (s.warehouse.type, s.lake.catalog, s.bus.type) == ("postgres", "postgres", "kafka")


def test_precedence_env_over_file_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "dotjoin.toml").write_text(
        'profile = "stack"\n[warehouse]\nport = 6000\ndbname = "fromfile"\n'
        "[profiles.stack.web]\nport = 9001\n[profiles.local.web]\nport = 9002\n"
    )
    s = load_settings(cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__PORT": "7000"})
    assert s.profile == "stack"
    assert s.warehouse.port == 7000  # env beats file
    assert s.warehouse.dbname == "fromfile"  # file beats default
    assert s.web.port == 9001  # the active profile's table applies, the other's does not
    assert load_settings(cwd=tmp_path, env={}, profile="local").web.port == 9002


def test_secrets_file_is_a_layer_below_env(tmp_path: Path) -> None:
    (tmp_path / ".dotjoin").mkdir()
    (tmp_path / ".dotjoin" / "secrets.toml").write_text('[warehouse]\npassword = "s3cret"\n')
    s = load_settings(cwd=tmp_path, env={})
    assert s.warehouse.password is not None
    assert s.warehouse.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    s2 = load_settings(cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__PASSWORD": "fromenv"})
    assert s2.warehouse.password is not None and s2.warehouse.password.get_secret_value() == "fromenv"


def test_unknown_env_key_names_the_key_and_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"warehouse\.urll.*DOTJOIN__WAREHOUSE__URLL.*known keys"):
        load_settings(cwd=tmp_path, env={"DOTJOIN__WAREHOUSE__URLL": "x"})


def test_unknown_file_key_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dotjoin.toml").write_text("[lake]\nroot_dir = 'x'\n")
    with pytest.raises(ConfigError, match=r"lake\.root_dir.*dotjoin\.toml"):
        load_settings(cwd=tmp_path, env={})


def test_unknown_section_and_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'nope'"):
        load_settings(cwd=tmp_path, env={"DOTJOIN__NOPE__X": "1"})
    with pytest.raises(ConfigError, match=r"unknown profile 'prod'.*DOTJOIN_PROFILE.*local, stack"):
        load_settings(cwd=tmp_path, env={"DOTJOIN_PROFILE": "prod"})
    with pytest.raises(ConfigError, match=r"unknown profile 'qa'.*--profile"):
        load_settings(cwd=tmp_path, env={}, profile="qa")


def test_bad_value_names_key_and_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'bus\.partitions'.*DOTJOIN__BUS__PARTITIONS.*integer"):
        load_settings(cwd=tmp_path, env={"DOTJOIN__BUS__PARTITIONS": "many"})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dotjoin.toml").write_text("[warehouse\n")
    with pytest.raises(ConfigError, match=r"dotjoin\.toml: not valid TOML"):
        load_settings(cwd=tmp_path, env={})


def test_unknown_section_names_the_variable_or_file_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'nosuch' \(from environment variable DOTJOIN__NOSUCH__KEY\)"):
        load_settings(cwd=tmp_path, env={"DOTJOIN__NOSUCH__KEY": "1"})
    (tmp_path / "dotjoin.toml").write_text("[nosuch]\nkey = 1\n")
    with pytest.raises(ConfigError, match=r"'nosuch' \(from .*dotjoin\.toml\)") as err:
        load_settings(cwd=tmp_path, env={})
    assert "?" not in str(err.value)


def test_a_config_file_that_is_not_utf8_is_one_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dotjoin.toml"
    path.write_bytes("[warehouse]\nport = 5433  # café\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"dotjoin\.toml: not UTF-8 text \(byte 0xe9 at offset \d+\)"):
        load_settings(cwd=tmp_path, env={})
    secrets = tmp_path / ".dotjoin" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_bytes(b"\xff\xfe")
    path.write_text("")
    with pytest.raises(ConfigError, match=r"secrets\.toml: not UTF-8 text"):
        load_settings(cwd=tmp_path, env={})
