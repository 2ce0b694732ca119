"""The Airflow stack service without Airflow: config, secrets, the missing-venv error, the supervisor."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dotjoin.config import load_settings
from dotjoin.services.airflow import AirflowService, render_cfg, supervise
from dotjoin.services.base import ServiceError


def _service(tmp_path: Path, **env: str) -> AirflowService:
    return AirflowService(load_settings(profile="stack", cwd=tmp_path, env=env))


def test_config_is_loopback_local_executor_and_holds_no_secret(tmp_path: Path) -> None:
    secret = "s3cr3t-value"
    service = _service(
        tmp_path,
        DOTJOIN__SERVICES__AIRFLOW_DB_PASSWORD=secret,
        DOTJOIN__SERVICES__AIRFLOW_JWT_SECRET=secret + "j",
        DOTJOIN__SERVICES__AIRFLOW_SECRET_KEY=secret + "k",
    )
    cfg = render_cfg(
        dags_folder=tmp_path, host=service.host, port=service.port, parallelism=2, schedules=False
    )
    assert "executor = LocalExecutor" in cfg and "load_examples = False" in cfg
    assert "host = 127.0.0.1" in cfg and "execution_api_server_url = http://127.0.0.1:8280/execution/" in cfg
    assert "use_job_schedule = False" in cfg
    assert secret not in cfg
    env = service.environment()
    assert secret in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:5432/airflow")
    assert env["AIRFLOW_HOME"] == str(service.home) and env["DOTJOIN_PROFILE"] in ("stack", "local")


def test_a_missing_virtualenv_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    service = _service(tmp_path, DOTJOIN__SERVICES__AIRFLOW_VENV=str(tmp_path / "nope"))
    with pytest.raises(ServiceError, match=r"^the Airflow virtualenv .*nope is missing; run `make airflow`$"):
        service.check_prerequisites()


def test_secrets_missing_before_the_first_up_say_so(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="airflow_db_password is not set"):
        _service(tmp_path).environment()


def test_the_supervisor_stops_every_component_when_one_exits(tmp_path: Path) -> None:
    fake = tmp_path / "airflow"
    marker = tmp_path / "survivors"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = scheduler ]; then sleep 1; exit 3; fi\n'  # the others trap TERM first
        f"trap 'echo $1 >> {marker}; exit 0' TERM\nwhile :; do sleep 0.1; done\n"
    )
    fake.chmod(0o755)
    began = time.monotonic()
    assert supervise(str(fake)) == 1
    assert time.monotonic() - began < 30
    assert sorted(marker.read_text().split()) == ["api-server", "dag-processor"]
