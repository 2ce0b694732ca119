"""Settings and profiles.

Precedence, highest first: environment (``DOTJOIN__SECTION__KEY``, ``DOTJOIN_PROFILE``) >
``.dotjoin/secrets.toml`` (written by ``dotjoin services up``, mode 600) > ``dotjoin.toml`` >
profile defaults.
``dotjoin.toml`` may hold ``[profiles.<name>.<section>]`` tables that apply only under that profile.

Example ``dotjoin.toml``::

    profile = "stack"
    [warehouse]
    port = 5433
    [profiles.local.lake]
    root = "/data/lake"

Every unknown key or profile is a :class:`ConfigError` that names the key and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, SecretStr, StringConstraints, ValidationError

from dotjoin.exceptions import ConfigError

Profile = Literal["local", "stack"]
PROFILES: tuple[str, ...] = get_args(Profile)
CONFIG_FILE = "dotjoin.toml"
ENV_PREFIX = "DOTJOIN__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresConnection(_Section):
    """Where the stack's PostgreSQL listens and who we are there (least privilege: not a superuser)."""

    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "dotjoin"
    user: str = "dotjoin"
    password: SecretStr | None = None

    def conninfo(self) -> str:
        """A libpq conninfo string; the password is passed separately, never logged."""
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user}"

    def sqlalchemy_url(self) -> str:
        from urllib.parse import quote

        secret = self.password.get_secret_value() if self.password else ""
        auth = f"{quote(self.user)}:{quote(secret)}" if secret else quote(self.user)
        return f"postgresql+psycopg2://{auth}@{self.host}:{self.port}/{self.dbname}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class WarehouseSettings(PostgresConnection):
    type: Literal["duckdb", "postgres"] = "duckdb"
    path: str = "warehouse.duckdb"  # DuckDB file, relative to state_dir
    # DuckDB's buffer memory cap, e.g. "1GB"; empty: DuckDB's default (80% of RAM)
    memory_limit: Annotated[str, StringConstraints(pattern=r"^$|^\d+(\.\d+)?\s*([KMGT]i?B|B)$")] = ""


class LakeSettings(_Section):
    """Iceberg tables under ``root``; the zones' plain files (landing files, DuckDB files) under ``files``.

    The stack's root is a bucket of the object store (``[objectstore]``), so PyIceberg, Spark, DuckDB and
    Trino share the tables; ``files`` stays a local directory (a DuckDB database is a local file).
    """

    root: str = "lake"  # relative to state_dir, or an absolute path, or s3://bucket/prefix
    files: str = ""  # plain files of the zones, relative to state_dir; empty: under a local root, else "lake"
    catalog: Literal["sqlite", "postgres"] = "sqlite"
    catalog_name: str = "dotjoin"


class ObjectStoreSettings(_Section):
    """The S3-compatible object store behind an ``s3://`` lake root (the stack: S3Proxy on loopback).

    ``secret_key`` is generated into ``.dotjoin/secrets.toml`` by ``dotjoin services up``.
    """

    endpoint: str = "http://127.0.0.1:9000"  # empty: AWS's own endpoints
    region: str = "us-east-1"
    access_key: str = "dotjoin"
    secret_key: SecretStr | None = None
    path_style: bool = True  # bucket in the path, not the host name (S3Proxy, MinIO)


class BusSettings(_Section):
    type: Literal["embedded", "kafka"] = "embedded"
    path: str = "bus"  # embedded log directory, relative to state_dir
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = 4


class RedisSettings(_Section):
    """The stack's Redis; ``password`` is generated into ``.dotjoin/secrets.toml`` by ``services up``."""

    host: str = "127.0.0.1"
    port: int = 6379
    password: SecretStr | None = None


class FeaturesSettings(_Section):
    """The feature store's online store: SQLite locally, Redis in the stack."""

    online: Literal["sqlite", "redis"] = "sqlite"
    online_path: str = "online.sqlite"  # the SQLite file, relative to state_dir
    mlflow_uri: str = ""  # MLflow tracking + registry; empty: sqlite:///<state_dir>/mlflow.db
    mlflow_username: str = "dotjoin"  # an http(s) mlflow_uri: the server's basic-auth user (services: admin)
    mlflow_password: SecretStr | None = None  # and its password (`services up mlflow` generates it)
    decision_threshold: float = 0.5  # a score at or above it: "review"
    fx_rates: str = ""  # scoring's exchange rates (CSV currency,units_per_usd), as the stream job's; "": USD
    score_rate_per_s: float = 1000.0  # each API key's sustained rate on POST /score
    score_burst: int = 2000  # and its burst
    champion_recheck_s: float = 10.0  # how often scoring looks the champion alias up again
    served_log: str = "features/served"  # every served vector as Parquet (relative to state_dir); "": off
    served_flush_s: float = 2.0  # how often the served log is written


class ServicesSettings(_Section):
    dir: str = "services"  # data, logs and pid files of `make services`, relative to state_dir
    enabled: tuple[str, ...] = (
        "postgres", "objectstore", "redis", "kafka", "connect", "trino", "mlflow", "airflow", "pushgateway",
        "prometheus",
    )  # fmt: skip
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    connect_port: int = 8083  # Kafka Connect's REST API (one distributed worker, Debezium's plugin)
    connect_heap: str = "384m"
    objectstore_heap: str = "256m"
    trino_port: int = 8090  # Trino's HTTP API (coordinator and worker in one process)
    trino_heap: str = "1G"
    trino_java_home: str = "/usr/lib/jvm/temurin-25-jdk-amd64"  # Trino 476 needs Java 22+
    mlflow_port: int = 5000  # the MLflow tracking server and model registry (PostgreSQL-backed)
    mlflow_db_password: SecretStr | None = None  # its metadata role's; generated by `services up`
    mlflow_secret_key: SecretStr | None = None  # ditto: the server's CSRF key
    # Apache Airflow 3 (api-server + scheduler + dag-processor, LocalExecutor), from .venv-airflow
    airflow_port: int = 8280  # api-server: UI, REST API and the tasks' execution API
    airflow_venv: str = ".venv-airflow"  # relative to the repository
    airflow_parallelism: int = 4  # task processes at once (LocalExecutor)
    airflow_schedules: bool = False  # cron runs; off: only backfills and triggered runs (no live sources)
    airflow_db_password: SecretStr | None = None  # generated into secrets.toml by `services up`
    airflow_jwt_secret: SecretStr | None = None  # ditto: signs the tasks' execution-API tokens
    airflow_secret_key: SecretStr | None = None  # ditto: [api] secret_key
    # Prometheus (Debian's 2.42) scraping `dotjoin serve`, the Pushgateway and the detector's endpoint
    prometheus_port: int = 9090
    prometheus_interval_s: int = 10  # scrape and rule evaluation interval
    prometheus_retention: str = "15d"
    pushgateway_port: int = 9091  # Debian's Pushgateway 1.5: the batch runs' metrics
    payments_metrics_port: int = 9108  # `payments detect --metrics-port`, scraped when it runs


class ObservabilitySettings(_Section):
    """Where runs send their metrics: the Pushgateway (stack) and the Prometheus the web app asks."""

    pushgateway: str = ""  # host:port; "": runs push nothing (their reports are on /metrics anyway)
    prometheus_url: str = ""  # e.g. http://127.0.0.1:9090; "": the web app shows no Prometheus alerts
    # An OpenLineage HTTP endpoint (Marquez: http://host:5000/api/v1/lineage) every run's events are POSTed
    # to, besides the lineage_events table; "": none. Its API key (Bearer), if it needs one.
    openlineage_url: str = ""
    openlineage_api_key: SecretStr | None = None
    openlineage_timeout_s: float = 5.0


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000


class IngestSettings(_Section):
    """API ingestion (``dotjoin ingest``): where the sources are and how hard to pull on them.

    ``base_url`` (or ``--base-url``) points every source at one server that serves the real paths,
    e.g. the local ``dotjoin sources serve``; empty means the real public services below.
    """

    base_url: str = ""
    weather_forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    weather_archive_url: str = "https://archive-api.open-meteo.com/v1/archive"
    gtfs_static_url: str = "https://www.bart.gov/dev/schedules/google_transit.zip"
    gtfs_rt_url: str = "https://api.bart.gov/gtfsrt/tripupdate.aspx"
    feed: str = "bart"  # name of the transit feed in the tables and the cursor
    cities_file: str = ""  # CSV name,latitude,longitude (relative to state_dir); empty: built-in list
    concurrency: int = 8
    rate_limit_per_s: float = 10.0  # per host; 0 = unlimited
    max_attempts: int = 6
    timeout_s: float = 30.0
    window_days: int = 31  # days per weather request
    stocks_url: str = "https://stooq.com/q/d/l/"  # daily quotes as CSV (Stooq's format)
    stock_symbols: tuple[str, ...] = ("aapl.us", "msft.us", "googl.us", "amzn.us", "spy.us")


class OrchestrationSettings(_Section):
    """The local runner and alerts (``dotjoin run`` / ``dotjoin backfill``; the Airflow DAGs alert too).

    ``alert_webhook_url`` receives Slack-compatible JSON for every failed step; it is a secret — set it
    in the environment (``DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL``) or ``.dotjoin/secrets.toml``.
    """

    state_path: str = "orchestration.sqlite"  # the runner's durable state, relative to state_dir
    alert_webhook_url: SecretStr | None = None
    alert_timeout_s: float = 5.0
    notify_success: bool = True  # the notify steps post a summary to the webhook too


#: A lower-case SQL name that needs no quoting (it also ends up in Debezium's config and topic names).
PlainName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


class CdcSettings(_Section):
    """Change data capture (``dotjoin cdc``): the source schema in the stack's PostgreSQL, and Debezium.

    ``replication_user`` is the connector's role: LOGIN REPLICATION, SELECT on the captured tables and
    write access to the heartbeat table only (``dotjoin services up`` creates it and generates its
    password into ``.dotjoin/secrets.toml``; the connector reads it from a file, never from its config).
    """

    source_schema: PlainName = "cdc_source"  # the captured tables, owned by the warehouse's role
    publication: PlainName = "dotjoin_cdc"
    slot: PlainName = "dotjoin_cdc"
    topic_prefix: PlainName = "cdc"  # change events go to <prefix>.<schema>.<table>
    connector: str = "dotjoin-cdc-source"
    replication_user: PlainName = "dotjoin_replicator"
    replication_password: SecretStr | None = None
    heartbeat_ms: int = 10_000  # the slot advances even when the captured tables are quiet


class Settings(_Section):
    profile: Profile = "local"
    state_dir: Path = Path(".dotjoin")
    warehouse: WarehouseSettings = WarehouseSettings()
    lake: LakeSettings = LakeSettings()
    objectstore: ObjectStoreSettings = ObjectStoreSettings()
    bus: BusSettings = BusSettings()
    redis: RedisSettings = RedisSettings()
    features: FeaturesSettings = FeaturesSettings()
    services: ServicesSettings = ServicesSettings()
    web: WebSettings = WebSettings()
    ingest: IngestSettings = IngestSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    cdc: CdcSettings = CdcSettings()
    observability: ObservabilitySettings = ObservabilitySettings()

    def resolve(self, relative: str) -> Path:
        """A path from the settings, anchored at ``state_dir`` unless absolute."""
        path = Path(relative)
        return path if path.is_absolute() else self.state_dir / path

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def postgres(self) -> PostgresConnection:
        """The stack's PostgreSQL connection (used by the warehouse, the Iceberg catalog, services)."""
        fields = PostgresConnection.model_fields
        return PostgresConnection(**{k: getattr(self.warehouse, k) for k in fields})


PROFILE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "local": {},
    "stack": {
        "warehouse": {"type": "postgres"},
        "lake": {"catalog": "postgres", "root": "s3://dotjoin/lake"},
        "bus": {"type": "kafka"},
        "features": {"online": "redis", "mlflow_uri": "http://127.0.0.1:5000"},
        "observability": {"pushgateway": "127.0.0.1:9091", "prometheus_url": "http://127.0.0.1:9090"},
    },
}

_SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "TOML files must be UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) == 1:
            layer[parts[0]] = value
        elif len(parts) == 2:
            layer.setdefault(parts[0], {})[parts[1]] = value
        else:
            raise ConfigError(f"unknown config key {'.'.join(parts)!r} (from environment variable {name})")
    return layer


def _merge(
    target: dict[str, Any], origins: dict[str, str], layer: Mapping[str, Any], source: str, prefix: str = ""
) -> None:
    """Merge ``layer`` into ``target``, remembering for each dotted key where its value came from."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _merge(target.setdefault(key, {}), origins, value, source, dotted + ".")
        else:
            target[key] = value
            origins[dotted] = source


def _origin(origins: Mapping[str, str], key: str) -> str:
    """Where ``key`` came from; for a table, where its first key came from (an env var, a file).

    >>> _origin({"nosuch.key": "environment variable DOTJOIN__NOSUCH__KEY"}, "nosuch")
    'environment variable DOTJOIN__NOSUCH__KEY'
    """
    if key in origins:
        return origins[key]
    return next((o for k, o in origins.items() if k.startswith(key + ".")), "defaults")


def _check_keys(merged: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    for key, value in merged.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {key!r} must be a table (from {_origin(origins, key)})")
            known = _SECTIONS[key].model_fields
            for sub in value:
                if sub not in known:
                    raise ConfigError(
                        f"unknown config key '{key}.{sub}' (from {_origin(origins, f'{key}.{sub}')}); "
                        f"known keys in [{key}]: {', '.join(sorted(known))}"
                    )
        elif key not in Settings.model_fields:
            raise ConfigError(
                f"unknown config key {key!r} (from {_origin(origins, key)}); "
                f"known: {', '.join(sorted(Settings.model_fields))}"
            )


def _key_env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "__").upper()


def load_settings(
    *,
    profile: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings for ``profile`` from defaults, ``dotjoin.toml``, secrets and the environment.

    Args:
        profile: explicit profile (a CLI ``--profile``); beats ``DOTJOIN_PROFILE`` and the file.
        cwd: the working directory holding ``dotjoin.toml`` and ``.dotjoin/`` (default: the process cwd).
        env: the environment to read (default: ``os.environ``).

    >>> load_settings(env={}, cwd=Path("/nonexistent")).warehouse.type
    'duckdb'
    >>> load_settings(profile="stack", env={}, cwd=Path("/nonexistent")).bus.type
    'kafka'
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    file_path = cwd / CONFIG_FILE
    file_layer = _read_toml(file_path) if file_path.is_file() else {}
    per_profile = file_layer.pop("profiles", {})

    chosen, chosen_from = "local", "default"
    if "profile" in file_layer:
        chosen, chosen_from = str(file_layer.pop("profile")), str(file_path)
    if env.get("DOTJOIN_PROFILE"):
        chosen, chosen_from = env["DOTJOIN_PROFILE"], "environment variable DOTJOIN_PROFILE"
    if profile:
        chosen, chosen_from = profile, "--profile"
    if chosen not in PROFILES:
        raise ConfigError(
            f"unknown profile {chosen!r} (from {chosen_from}); choose one of: {', '.join(PROFILES)}"
        )
    unknown_profiles = set(per_profile) - set(PROFILES)
    if unknown_profiles:
        raise ConfigError(
            f"unknown profile {sorted(unknown_profiles)[0]!r} in [profiles] of {file_path}; "
            f"choose one of: {', '.join(PROFILES)}"
        )

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    _merge(merged, origins, PROFILE_DEFAULTS[chosen], f"the {chosen} profile defaults")
    _merge(merged, origins, file_layer, str(file_path))
    _merge(merged, origins, per_profile.get(chosen, {}), f"[profiles.{chosen}] of {file_path}")
    env_layer = _env_layer(env)
    state_dir = Path(env_layer.get("state_dir") or file_layer.get("state_dir") or ".dotjoin")
    state_dir = state_dir if state_dir.is_absolute() else cwd / state_dir
    secrets_path = state_dir / "secrets.toml"
    if secrets_path.is_file():
        _merge(merged, origins, _read_toml(secrets_path), str(secrets_path))
    env_origins: dict[str, str] = {}
    _merge(merged, env_origins, env_layer, "environment")
    origins.update({key: f"environment variable {_key_env_name(key)}" for key in env_origins})
    _check_keys(merged, origins)
    merged["profile"] = chosen
    merged["state_dir"] = state_dir
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"config key {dotted!r} (from {origins.get(dotted, 'defaults')}): {err['msg']}"
        ) from exc
