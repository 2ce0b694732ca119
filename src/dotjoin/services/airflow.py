"""Apache Airflow 3 as a stack service: api-server, scheduler and dag-processor from ``.venv-airflow``.

One service, one process tree: ``python -m dotjoin.services.airflow_cli supervise`` (by the Airflow venv's
interpreter) starts the three components and stops them together; any one exiting stops the others, so
``status`` never shows half an Airflow. The LocalExecutor runs tasks inside the scheduler's process tree;
tasks talk to the api-server's execution API on 127.0.0.1 with JWTs signed by a shared secret.

* ``AIRFLOW_HOME`` = ``<services dir>/airflow`` (``airflow.cfg`` without secrets, logs); DAGs: ``dags/``.
* Metadata database: ``airflow`` in our PostgreSQL, owned by the login role ``airflow`` (not a superuser,
  no CREATEDB, ``CONNECT`` revoked from PUBLIC). Its password, the JWT secret and the API secret key are
  generated once into ``.dotjoin/secrets.toml`` and reach Airflow only as environment variables.
* ``airflow db migrate`` runs on install when the schema is missing or Airflow's version changed.
* Loopback only; no log server (``--skip-serve-logs``: logs are local files), no example DAGs, one API
  worker, ``services.airflow_parallelism`` task processes. Cron runs are off unless
  ``services.airflow_schedules`` (our machines reach no live source): backfills and triggered runs run.

The Airflow CLI against this instance: ``.venv-airflow/bin/python -m dotjoin.services.airflow_cli <args>``
(e.g. ``backfill create --dag-id stocks --from-date 2024-01-30 --to-date 2024-02-01``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from dotjoin.services.base import Service, ServiceError
from dotjoin.services.secretfile import store_secret

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DAGS_FOLDER = REPO_ROOT / "dags"
ROLE = "airflow"
DATABASE = "airflow"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
MISSING_VENV = "the Airflow virtualenv {venv} is missing; run `make airflow`"


def render_cfg(*, dags_folder: Path, host: str, port: int, parallelism: int, schedules: bool) -> str:
    """``airflow.cfg``: everything but the secrets (those come from the environment)."""
    return f"""# Written by `dotjoin services up`; edits are overwritten. Secrets come from the environment.
[core]
dags_folder = {dags_folder}
executor = LocalExecutor
load_examples = False
parallelism = {parallelism}
dags_are_paused_at_creation = True
execution_api_server_url = http://{host}:{port}/execution/
default_timezone = utc

[database]
load_default_connections = False

[api]
host = {host}
port = {port}
workers = 1
expose_config = False

[scheduler]
use_job_schedule = {schedules}
enable_health_check = False

[dag_processor]
parsing_processes = 1
refresh_interval = 60
min_file_process_interval = 120

[logging]
logging_level = INFO
colored_console_log = False
"""


class AirflowService(Service):
    name: ClassVar[str] = "airflow"
    start_timeout: ClassVar[float] = 180.0
    stop_timeout: ClassVar[float] = 60.0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.services.airflow_port

    @property
    def venv(self) -> Path:
        path = Path(self.settings.services.airflow_venv)
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def airflow_bin(self) -> Path:
        return self.venv / "bin" / "airflow"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def cfg_file(self) -> Path:
        return self.home / "airflow.cfg"

    @property
    def migrated_stamp(self) -> Path:
        return self.home / ".migrated"

    # -- install ------------------------------------------------------------------------------------
    def check_prerequisites(self) -> None:
        if not self.airflow_bin.is_file():
            raise ServiceError(MISSING_VENV.format(venv=self.venv))

    def install(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.cfg_file.write_text(
            render_cfg(
                dags_folder=DAGS_FOLDER,
                host=self.host,
                port=self.port,
                parallelism=self.settings.services.airflow_parallelism,
                schedules=self.settings.services.airflow_schedules,
            )
        )
        self._generate_secrets()
        self.converge_database()
        self.migrate()

    def _generate_secrets(self) -> None:
        """Generate the missing secrets once into ``secrets.toml`` and reload the settings."""
        svc = self.settings.services
        missing = [
            key
            for key in ("airflow_db_password", "airflow_jwt_secret", "airflow_secret_key")
            if getattr(svc, key) is None
        ]
        if not missing:
            return
        for key in missing:
            store_secret(self.settings.state_dir, "services", key, secrets.token_urlsafe(32))
        stored = self._secrets_file()
        updated = svc.model_copy(update={key: stored[key] for key in missing})
        self.settings = self.settings.model_copy(update={"services": updated})

    def _secrets_file(self) -> dict[str, Any]:
        from pydantic import SecretStr

        with (self.settings.state_dir / "secrets.toml").open("rb") as fh:
            section = tomllib.load(fh).get("services", {})
        return {k: SecretStr(str(v)) for k, v in section.items()}

    def converge_database(self) -> None:
        """The login role ``airflow`` (least privilege) owning the database ``airflow``. Idempotent."""
        from dotjoin.services.postgres import PostgresService

        PostgresService(self.settings).converge_service_database(
            ROLE, DATABASE, self._secret("airflow_db_password"), needed_by="airflow"
        )

    def _schema_present(self) -> bool:
        import psycopg

        from dotjoin.services.postgres import SUPERUSER, PostgresService

        pg = PostgresService(self.settings)
        with psycopg.connect(
            host=str(pg.socket_dir), port=pg.port, user=SUPERUSER, dbname=DATABASE, connect_timeout=3
        ) as conn:
            row = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def airflow_version(self) -> str:
        """The apache-airflow-core version installed in the venv (from its dist-info directory)."""
        for info in sorted(self.venv.glob("lib/python*/site-packages/apache_airflow_core-*.dist-info")):
            return info.name.removeprefix("apache_airflow_core-").removesuffix(".dist-info")
        return "?"

    def migrate(self) -> None:
        """``airflow db migrate`` unless this Airflow version already migrated an existing schema."""
        version = self.airflow_version()
        stamp = self.migrated_stamp.read_text().strip() if self.migrated_stamp.is_file() else None
        if stamp == version and self._schema_present():
            return
        logger.info("migrating the Airflow %s metadata database (first run only)", version)
        result = self.cli(["db", "migrate"], timeout=900)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:])
            raise ServiceError(f"airflow db migrate failed:\n{tail}")
        self.migrated_stamp.write_text(version + "\n")

    # -- run ------------------------------------------------------------------------------------------
    def _secret(self, key: str) -> str:
        value = getattr(self.settings.services, key)
        if value is None:
            raise ServiceError(
                f"services.{key} is not set; run `dotjoin services up airflow` once to generate it"
            )
        return str(value.get_secret_value())

    def sql_alchemy_conn(self) -> str:
        wh = self.settings.warehouse
        password = quote(self._secret("airflow_db_password"), safe="")
        return f"postgresql+psycopg2://{ROLE}:{password}@{wh.host}:{wh.port}/{DATABASE}"

    def environment(self) -> dict[str, str]:
        """What every Airflow process of this instance needs: its home, the secrets, where the project is."""
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_CONFIG": str(self.cfg_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn(),
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("airflow_jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": self._secret("airflow_secret_key"),
            # the tasks: the stack profile of this project (settings from dotjoin.toml + .dotjoin/)
            "DOTJOIN_HOME": str(Path.cwd()),
            "DOTJOIN__STATE_DIR": str(self.settings.state_dir.absolute()),
            "DOTJOIN_PROFILE": os.environ.get("DOTJOIN_PROFILE") or "stack",
            "MALLOC_ARENA_MAX": "2",  # fewer malloc arenas: far less resident memory per process
            "PYTHONUNBUFFERED": "1",
        }

    def cli(self, args: Sequence[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this instance; output captured (it may quote the config).

        Airflow settings of the calling environment (``AIRFLOW*``) are dropped: this instance's apply.
        """
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        return subprocess.run(
            [str(self.airflow_bin), *args],
            env={**inherited, **self.environment()},
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd=self.home,
        )

    def command(self) -> list[str]:
        return [str(self.python), "-m", "dotjoin.services.airflow_cli", "supervise"]

    def spawn_options(self) -> Mapping[str, Any]:
        return {"cwd": self.home, "env": self.environment()}

    def probe(self) -> str:
        """All components healthy (api-server answers, scheduler and dag-processor heartbeat); the version."""
        base = f"http://{self.host}:{self.port}/api/v2"
        health = _get_json(f"{base}/monitor/health")
        sick = [
            part
            for part in ("metadatabase", "scheduler", "dag_processor")
            if (health.get(part) or {}).get("status") != "healthy"
        ]
        if sick:
            raise ConnectionError(f"airflow components not healthy yet: {', '.join(sick)}")
        return str(_get_json(f"{base}/version").get("version", "?"))


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own loopback URL
        return dict(json.loads(response.read()))


# -- the supervisor: runs inside .venv-airflow --------------------------------------------------------------
def supervise(airflow: str, components: Sequence[str] = COMPONENTS) -> int:
    """Run the Airflow components until a signal arrives or one of them exits; then stop all of them."""
    args = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--workers", "1"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
    }
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in components:
            children[name] = subprocess.Popen([airflow, *args[name]])
        exited = _watch(children, lambda: stopping)
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if exited is not None else 0


def _watch(children: Mapping[str, subprocess.Popen[bytes]], stopping: Callable[[], bool]) -> str | None:
    """Wait until asked to stop (None) or a component exits (its name)."""
    while not stopping():
        time.sleep(0.5)
        for name, child in children.items():
            if child.poll() is not None:
                print(f"dotjoin: airflow {name} exited ({child.returncode}); stopping the others", flush=True)
                return name
    return None


def _stop_all(children: Mapping[str, subprocess.Popen[bytes]], timeout: float = 45.0) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: Sequence[str]) -> int:
    """``supervise`` (the service's foreground command) or any Airflow CLI command against this instance."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    if list(argv[:1]) == ["supervise"]:
        return supervise(airflow)
    from dotjoin.config import load_settings

    service = AirflowService(load_settings(profile="stack"))
    try:
        env = {**os.environ, **service.environment()}
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    os.execve(airflow, [airflow, *argv], env)  # noqa: S606 - replaces this process with the Airflow CLI
    return 0  # pragma: no cover
