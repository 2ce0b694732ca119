"""The curated zone: the dbt project at ``dbt/`` run in-process (``dbtRunner``) on DuckDB or PostgreSQL.

How the staging Iceberg tables reach dbt:

* ``local`` target (dbt-duckdb): views ``lake_staging.<table>`` over ``iceberg_scan('<metadata.json>')``
  in ``<lake>/curated/lakehouse.duckdb``; the ``iceberg``/``avro`` extension wheels are loaded by path in
  an ``on-run-start`` hook (offline). DuckDB then prunes Iceberg files itself.
* ``stack`` target (dbt-postgres): each staging table is scanned through PyIceberg and bulk-loaded by binary
  COPY into ``<schema>_lake.<table>`` (atomic replace) before the build.

Every build records, per mart, the staging files and bytes it scanned against the tables' totals (from
the Iceberg scan plan) — the figures ``dotjoin lake cost`` prices.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError, DataError, MissingDependencyError
from dotjoin.platform.lake import Lake, ScanPlan, duckdb_views
from dotjoin.platform.warehouse import open_warehouse

logger = logging.getLogger(__name__)

Target = Literal["local", "stack"]
MARTS = ("fact_orders", "dim_customers", "dim_products", "iot_hourly_metrics", "iot_device_health")
DUCKDB_FILE = "lakehouse.duckdb"
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def dbt_project_dir() -> Path:
    """The dbt project: ``$DOTJOIN_DBT_PROJECT_DIR`` or ``dbt/`` at the repository root."""
    configured = os.environ.get("DOTJOIN_DBT_PROJECT_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[4] / "dbt"
    if not (path / "dbt_project.yml").exists():
        raise ConfigError(f"no dbt project at {path}; set DOTJOIN_DBT_PROJECT_DIR to the repo's dbt/ folder")
    return path


def duckdb_path(lake: Lake) -> Path:
    """Where the local target's DuckDB database lives: the curated zone of the lake."""
    return Path(lake.zone_path("curated")) / DUCKDB_FILE


@dataclass
class DbtOutcome:
    command: str
    success: bool
    elapsed_s: float
    statuses: dict[str, int] = field(default_factory=dict)  # status -> node count
    failures: list[str] = field(default_factory=list)  # "unique_id: message"
    timings: dict[str, float] = field(default_factory=dict)  # unique_id -> seconds
    tests: list[DbtTest] = field(default_factory=list)  # the data tests' results, in run order


@dataclass(frozen=True)
class DbtTest:
    """One dbt data test's result: what :func:`test_checks` turns into the platform's check records."""

    name: str  # the test's node name (unique_orders_order_id...)
    model: str | None  # the model (or source table) it tests
    status: str  # pass, fail, warn, error, skipped
    failures: int | None  # failing rows, as dbt counts them
    severity: str  # error or warn (its config)
    seconds: float
    message: str | None


@contextlib.contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass(frozen=True)
class DbtContext:
    """Everything one dbt invocation needs: target, env (connection, never logged), vars, paths."""

    target: Target
    env: dict[str, str]
    vars: dict[str, Any]
    work_dir: Path  # target/ and logs/ go here, never into the repository

    def invoke(self, command: str, *args: str) -> DbtOutcome:
        """Run ``dbt <command>`` in-process and summarise its node results."""
        try:
            from dbt.cli.main import dbtRunner
        except ModuleNotFoundError as exc:
            raise MissingDependencyError("dbt-core", "dbt") from exc
        project = dbt_project_dir()
        argv = [
            *command.split(),
            "--project-dir", str(project),
            "--profiles-dir", str(project),
            "--target", self.target,
            "--target-path", str(self.work_dir / "target"),
            "--log-path", str(self.work_dir / "logs"),
            "--vars", json.dumps(self.vars),
            "--quiet",
            *args,
        ]  # fmt: skip
        t0 = time.perf_counter()
        env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **self.env}
        with _env(env):
            result = dbtRunner().invoke(argv)
        outcome = DbtOutcome(command, bool(result.success), time.perf_counter() - t0)
        for node in getattr(result.result, "results", None) or []:
            status = str(getattr(node.status, "value", node.status))
            uid = getattr(getattr(node, "node", None), "unique_id", None) or str(
                getattr(node, "unique_id", "?")
            )
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            outcome.timings[uid] = float(getattr(node, "execution_time", 0.0) or 0.0)
            if status in ("error", "fail", "runtime error"):
                outcome.failures.append(f"{uid}: {getattr(node, 'message', '')}")
            if uid.startswith("test."):
                outcome.tests.append(_test_result(node, status))
        if result.exception is not None:
            outcome.failures.append(f"dbt {command}: {result.exception}")
        logger.info("dbt %s: %s in %.1fs", command, outcome.statuses, outcome.elapsed_s)
        return outcome

    def manifest(self) -> dict[str, Any]:
        path = self.work_dir / "target" / "manifest.json"
        return json.loads(path.read_text()) if path.exists() else {}


def _test_result(result: Any, status: str) -> DbtTest:
    node = result.node
    attached = getattr(node, "attached_node", None) or next(iter(node.depends_on.nodes), None)
    config = getattr(node, "config", None)
    return DbtTest(
        name=node.name,
        model=attached.rsplit(".", 1)[-1] if attached else None,
        status=status,
        failures=getattr(result, "failures", None),
        severity=str(getattr(config, "severity", "error")).lower(),
        seconds=float(getattr(result, "execution_time", 0.0) or 0.0),
        message=getattr(result, "message", None),
    )


def model_lineage(run: Any, manifest: dict[str, Any]) -> None:
    """Each dbt model as a job of ``run``: the models and staging tables it selects from → the model
    (from the manifest's ``depends_on``; a source table is the staging table of the same name)."""
    nodes = manifest.get("nodes", {})
    sources = manifest.get("sources", {})

    def reference(uid: str) -> str | None:
        if uid in sources:
            return f"lake:staging.{sources[uid]['name']}"
        node = nodes.get(uid)
        return (
            f"model:{node['name']}" if node and node.get("resource_type") in ("model", "snapshot") else None
        )

    for _, node in sorted(nodes.items()):
        if node.get("resource_type") not in ("model", "snapshot"):
            continue
        inputs = [r for d in node.get("depends_on", {}).get("nodes", []) if (r := reference(d))]
        run.job(f"dbt.{node['name']}", inputs=inputs, outputs=[f"model:{node['name']}"])


def test_checks(run: Any, outcome: DbtOutcome) -> None:
    """Each dbt data test of ``outcome`` as one check record on ``run`` (dataset: the model it tests)."""
    for t in outcome.tests:
        if t.status == "skipped":
            continue
        run.check(
            f"dbt:{t.name}", passed=t.status == "pass",  # a warn-severity test that finds rows: "warn"
            observed=t.failures, expected="= 0", detail=None if t.status == "pass" else t.message,
            dataset=t.model, severity="warning" if t.severity == "warn" else "error", failed_rows=t.failures,
            duration_s=round(t.seconds, 6),
        )  # fmt: skip


def publish_sources(
    settings: Settings, lake: Lake, tables: Sequence[str], *, target: Target, schema: str | None = None
) -> DbtContext:
    """Make the staging tables readable by dbt and return the invocation context for ``target``.

    Args:
        settings: settings of the run (``state_dir``; ``postgres`` for the stack target).
        lake: the lake holding ``staging.<table>`` Iceberg tables.
        tables: staging table names (without the zone).
        target: ``local`` (DuckDB views over iceberg_scan) or ``stack`` (COPY into PostgreSQL).
        schema: the dbt schema on PostgreSQL (default ``lakehouse``); sources go to ``<schema>_lake``.
    """
    work = settings.resolve("dbt") / target
    if target == "local":
        if lake.store is not None:  # dbt-duckdb's connections would need the object store's secret
            raise ConfigError(f"the local dbt target reads a local lake; [lake] root is {lake.root}: "
                              "use the stack target (PostgreSQL)")  # fmt: skip
        database = duckdb_path(lake)
        metadata = {t: lake.metadata_location(f"staging.{t}") for t in tables}
        duckdb_views.create_iceberg_views(database, "lake_staging", metadata)
        return DbtContext(
            target="local",
            env={"DOTJOIN_LAKEHOUSE_DUCKDB": str(database)},
            vars={"lake_schema": "lake_staging", "duckdb_extensions": duckdb_views.extension_paths()},
            work_dir=work,
        )
    schema = schema or "lakehouse"
    if not _SCHEMA.match(schema):
        raise DataError(f"bad PostgreSQL schema name {schema!r}: lower-case letters, digits, underscores")
    lake_schema = f"{schema}_lake"
    with open_warehouse(settings) as wh:
        if wh.dialect != "postgres":
            raise ConfigError("the stack dbt target needs [warehouse] type = 'postgres'")
        wh.execute(f"CREATE SCHEMA IF NOT EXISTS {lake_schema}")
        for table in tables:
            rows = wh.load_arrow(f"{lake_schema}.{table}", lake.scan(f"staging.{table}"), mode="replace")
            logger.info("loaded %d rows of staging.%s into PostgreSQL %s.%s", rows, table, lake_schema, table)
    pg = settings.postgres
    password = pg.password.get_secret_value() if pg.password is not None else ""
    env = {
        "DOTJOIN__WAREHOUSE__HOST": pg.host,
        "DOTJOIN__WAREHOUSE__PORT": str(pg.port),
        "DOTJOIN__WAREHOUSE__USER": pg.user,
        "DOTJOIN__WAREHOUSE__DBNAME": pg.dbname,
        "DOTJOIN__WAREHOUSE__PASSWORD": password,
        "DOTJOIN_LAKEHOUSE_SCHEMA": schema,
    }
    return DbtContext(target="stack", env=env, vars={"lake_schema": lake_schema}, work_dir=work)


def mart_sources(manifest: Mapping[str, Any], mart: str) -> set[str]:
    """The source tables a mart reads, transitively, from a dbt manifest's ``parent_map``.

    >>> pm = {"model.dotjoin.m": ["model.dotjoin.s"], "model.dotjoin.s": ["source.dotjoin.iot.readings"]}
    >>> sorted(mart_sources({"parent_map": pm}, "m"))
    ['readings']
    """
    parents: Mapping[str, list[str]] = manifest.get("parent_map", {})
    found: set[str] = set()
    stack = [f"model.dotjoin.{mart}"]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.startswith("source."):
            found.add(node.rsplit(".", 1)[-1])
        stack.extend(parents.get(node, []))
    return found


def scan_per_mart(
    manifest: Mapping[str, Any],
    plans: Mapping[str, ScanPlan],
    *,
    overrides: Mapping[str, Mapping[str, ScanPlan]] | None = None,
) -> dict[str, dict[str, int]]:
    """Files and bytes each mart's build scanned in the staging zone, and the totals of those tables.

    ``plans`` are full scans per source table; ``overrides[mart][table]`` replaces one with the pruned
    plan of an incremental build.
    """
    stats: dict[str, dict[str, int]] = {}
    for mart in MARTS:
        mine = {**plans, **(overrides or {}).get(mart, {})}
        sources = [mine[s] for s in sorted(mart_sources(manifest, mart)) if s in mine]
        stats[mart] = {
            "files": sum(len(p.files) for p in sources),
            "bytes": sum(p.bytes for p in sources),
            "total_files": sum(p.total_files for p in sources),
            "total_bytes": sum(p.total_bytes for p in sources),
        }
    return stats


def mart_exists(settings: Settings, lake: Lake, ctx: DbtContext, mart: str) -> bool:
    """Whether ``mart`` was built before (an incremental model then only processes new days)."""
    schema = "main" if ctx.target == "local" else ctx.env["DOTJOIN_LAKEHOUSE_SCHEMA"]
    sql = (
        "SELECT count(*) AS n FROM information_schema.tables "
        f"WHERE table_schema = '{schema}' AND table_name = '{mart}'"
    )
    return bool(query_marts(settings, lake, ctx, sql)[0]["n"])


def query_marts(settings: Settings, lake: Lake, ctx: DbtContext, sql: str) -> list[dict[str, Any]]:
    """Run ``sql`` (``{schema}`` is replaced by the marts' schema) on the target; rows as dicts."""
    if ctx.target == "local":
        return duckdb_views.query(duckdb_path(lake), sql.format(schema="main")).to_pylist()
    with open_warehouse(settings) as wh:
        return wh.query(sql.format(schema=ctx.env["DOTJOIN_LAKEHOUSE_SCHEMA"])).to_pylist()
