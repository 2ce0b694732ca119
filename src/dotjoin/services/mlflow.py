"""The MLflow tracking server and model registry as a stack service (``mlflow server``, one worker).

* Backend store (runs, the model registry, aliases): the database ``mlflow`` in our PostgreSQL, owned by
  the login role ``mlflow`` (least privilege, like Airflow's); its URI reaches the server only as the
  environment variable ``MLFLOW_BACKEND_STORE_URI`` (never on a command line ``ps`` shows).
* Artifacts (models, the features' reference histograms): ``<services dir>/mlflow/artifacts``, served by
  the server itself (``--serve-artifacts``): clients need no filesystem or object-store access.
* Auth: MLflow's ``basic-auth`` app — every API call needs a user; the admin (``[features]
  mlflow_username``, ``dotjoin``) and its password (generated once into ``.dotjoin/secrets.toml`` as
  ``features.mlflow_password``) are what the platform uses (``open_mlflow`` in the features' train
  module); its user store is a SQLite file here, its CSRF key another generated secret.
* Loopback only; the stack profile points ``[features] mlflow_uri`` at it.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from dotjoin.services.base import Service, ServiceError
from dotjoin.services.secretfile import ensure_secret

ROLE = "mlflow"
DATABASE = "mlflow"


class MlflowService(Service):
    name: ClassVar[str] = "mlflow"
    start_timeout: ClassVar[float] = 120.0  # the first start creates the schema (alembic migrations)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.services.mlflow_port

    @property
    def mlflow_bin(self) -> Path:
        import sys

        return Path(sys.executable).with_name("mlflow")

    @property
    def auth_config(self) -> Path:
        return self.home / "basic_auth.ini"

    @property
    def admin(self) -> str:
        return self.settings.features.mlflow_username

    def _secret(self, key: str) -> str:
        current = getattr(self.settings.services, key)
        value = current.get_secret_value() if current else None
        return ensure_secret(self.settings.state_dir, "services", key, value)

    def _db_password(self) -> str:
        return self._secret("mlflow_db_password")

    def admin_password(self) -> str:
        current = self.settings.features.mlflow_password
        value = current.get_secret_value() if current else None
        return ensure_secret(self.settings.state_dir, "features", "mlflow_password", value)

    def check_prerequisites(self) -> None:
        if not self.mlflow_bin.is_file():
            raise ServiceError(
                f"mlflow is not installed beside {self.mlflow_bin.parent}/python; run `make venv`"
            )

    def install(self) -> None:
        from dotjoin.services.postgres import PostgresService

        (self.home / "artifacts").mkdir(parents=True, exist_ok=True)
        PostgresService(self.settings).converge_service_database(
            ROLE, DATABASE, self._db_password(), needed_by="mlflow"
        )
        self.auth_config.write_text(
            "# Written by `dotjoin services up mlflow`; the admin's password comes from the environment.\n"
            "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{self.home / 'basic_auth.db'}\n"
            f"admin_username = {self.admin}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "grant_default_workspace_access = false\n"
        )

    def command(self) -> list[str]:
        return [
            str(self.mlflow_bin), "server", "--app-name", "basic-auth",
            "--artifacts-destination", (self.home / "artifacts").as_uri(), "--serve-artifacts",
            "--host", self.host, "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip

    def spawn_options(self) -> Mapping[str, Any]:
        wh = self.settings.warehouse
        password = quote(self._db_password(), safe="")
        return {
            "cwd": self.home,
            "env": {
                "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg://{ROLE}:{password}@{wh.host}:{wh.port}/{DATABASE}",
                "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config),
                "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password(),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": self._secret("mlflow_secret_key"),
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "MALLOC_ARENA_MAX": "2",
            },
        }

    def probe(self) -> str:
        """The server answers an authenticated registry call; its version."""
        self._get("/api/2.0/mlflow/registered-models/search?max_results=1")
        return self._get("/version").decode().strip() or "?"

    def _get(self, path: str) -> bytes:
        token = base64.b64encode(f"{self.admin}:{self.admin_password()}".encode()).decode()
        request = urllib.request.Request(
            f"http://{self.host}:{self.port}{path}", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - our own loopback URL
            return bytes(response.read())
