"""The Airflow suite: runs in Airflow's own virtualenv (``make test-airflow``), never in the main one.

The main venv has no Airflow, so there this directory is not collected at all. Here, Airflow is configured
before anything imports it: a throwaway ``AIRFLOW_HOME`` with a SQLite metadata database (what
``dag.test()`` needs), and a DAG folder holding the repository's DAG files (symlinked) plus the small test
DAGs the tests write. The stack test talks to the real service instead (``make services``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_DAGS = REPO_ROOT / "dags"

if importlib.util.find_spec("airflow") is None:
    # the main venv (`make test` runs this suite separately, in .venv-airflow)
    collect_ignore_glob = ["*"]
else:
    HOME = Path(tempfile.mkdtemp(prefix="dj-airflow-test-"))
    DAGS = HOME / "dags"
    DAGS.mkdir()
    for dag_file in sorted(REPO_DAGS.glob("*.py")):
        (DAGS / dag_file.name).symlink_to(dag_file)
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        del os.environ[key]  # a developer's own Airflow settings must not leak into the tests
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "airflow: needs Apache Airflow (runs in .venv-airflow)")
    # Airflow's in-process execution API imports starlette's TestClient, which warns about httpx
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = globals().get("HOME")
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The test metadata database, migrated once per session (``airflow db migrate``, ~5 s)."""
    from airflow.utils.db import initdb

    initdb()
    return HOME


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    """The folder ``dag.test()`` syncs from: the repository's DAG files plus the tests' own."""
    return DAGS
