"""PostgreSQL from the Debian package binaries, as our own cluster on 127.0.0.1.

The cluster lives in ``<services dir>/postgres/data``; its unix socket in ``.../postgres/run``. Auth:
the ``postgres`` superuser only over that socket (peer, for the OS users root and postgres); every
role over TCP with scram-sha-256; the superuser is rejected over TCP. ``up`` converges a plain login
role (``warehouse.user``, not a superuser) owning ``warehouse.dbname``. Its password comes from the
settings, or is generated once into ``secrets.toml``; only its SCRAM verifier is sent to the server.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dotjoin.exceptions import MissingDependencyError
from dotjoin.services import process
from dotjoin.services.base import Service, ServiceError
from dotjoin.services.secretfile import ensure_secret

logger = logging.getLogger(__name__)

OS_USER = "postgres"
SUPERUSER = "postgres"
APT_HINT = "apt-get install postgresql"
DEBIAN_ROOT = Path("/usr/lib/postgresql")


def find_bin_dir(major: str | None = None) -> Path:
    """The PostgreSQL ``bin`` directory: ``major``'s if given and present, else the newest installed."""
    versions = sorted(
        (p for p in DEBIAN_ROOT.glob("*/bin/postgres") if p.parts[-3].isdigit()),
        key=lambda p: int(p.parts[-3]),
    )
    for candidate in reversed(versions):
        if major is None or candidate.parts[-3] == major:
            return candidate.parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    if major is not None and versions:
        raise ServiceError(
            f"the PostgreSQL data directory needs PostgreSQL {major}, not installed: {APT_HINT}-{major}"
        )
    raise process.MissingBinaryError("PostgreSQL (initdb, postgres)", APT_HINT)


def render_conf(*, host: str, port: int, socket_dir: Path) -> str:
    """``dotjoin.conf``, included from ``postgresql.conf``; rewritten on every ``up``."""
    return f"""# Written by `dotjoin services up`; edits are overwritten.
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{socket_dir}'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
# logical decoding for CDC (Debezium)
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
shared_buffers = '128MB'
max_connections = 100
timezone = 'UTC'
log_timezone = 'UTC'
"""


def render_hba() -> str:
    """``pg_hba.conf``: superuser via the unix socket only, everyone else scram-sha-256 on loopback."""
    return f"""# Written by `dotjoin services up`; edits are overwritten.
# TYPE  DATABASE  USER         ADDRESS        METHOD
local   all       {SUPERUSER}                 peer map=admin
local   all       all                         scram-sha-256
host    all       {SUPERUSER}  127.0.0.1/32   reject
host    all       {SUPERUSER}  ::1/128        reject
host    all       all          127.0.0.1/32   scram-sha-256
host    all       all          ::1/128        scram-sha-256
"""


def render_ident(os_users: list[str]) -> str:
    """``pg_ident.conf``: which OS users may connect as the superuser over the socket."""
    lines = [f"admin  {user}  {SUPERUSER}" for user in dict.fromkeys(os_users)]
    return "# Written by `dotjoin services up`.\n" + "\n".join(lines) + "\n"


class PostgresService(Service):
    name: ClassVar[str] = "postgres"
    stop_signal: ClassVar[int] = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for every client

    @property
    def host(self) -> str:
        return self.settings.warehouse.host

    @property
    def port(self) -> int:
        return self.settings.warehouse.port

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _bin(self) -> Path:
        version_file = self.data_dir / "PG_VERSION"
        major = version_file.read_text().strip() if version_file.is_file() else None
        return find_bin_dir(major)

    def check_prerequisites(self) -> None:
        self._bin()
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("psycopg", "postgres") from exc
        if self._as_root:
            process.require_binary("runuser", "apt-get install util-linux")
            try:
                pwd.getpwnam(OS_USER)
            except KeyError as exc:
                raise ServiceError(f"OS user {OS_USER!r} is missing; reinstall it: {APT_HINT}") from exc

    def _run_as_owner(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", OS_USER, "--", *command] if self._as_root else command
        return subprocess.run(full, capture_output=True, text=True, check=False, timeout=120)

    def install(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(exist_ok=True)
            directory.chmod(0o700)
            if self._as_root:
                shutil.chown(directory, OS_USER, OS_USER)
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb()
        conf = self.data_dir / "postgresql.conf"
        include = "include = 'dotjoin.conf'"
        if include not in conf.read_text():
            with conf.open("a") as fh:
                fh.write(f"\n{include}\n")
        self._write(
            self.data_dir / "dotjoin.conf",
            render_conf(host=self.host, port=self.port, socket_dir=self.socket_dir),
        )
        self._write(self.data_dir / "pg_hba.conf", render_hba())
        os_users = ["root", OS_USER] if self._as_root else [pwd.getpwuid(os.geteuid()).pw_name]
        self._write(self.data_dir / "pg_ident.conf", render_ident(os_users))

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        if self._as_root:
            shutil.chown(path, OS_USER, OS_USER)

    def _initdb(self) -> None:
        if self._as_root and self._run_as_owner(["test", "-x", str(self.data_dir)]).returncode != 0:
            raise ServiceError(
                f"the {OS_USER} OS user cannot reach {self.data_dir}; set services.dir (or state_dir) to a "
                f"directory whose parents are world-executable"
            )
        if any(self.data_dir.iterdir()):
            logger.warning("removing the half-initialised data directory %s", self.data_dir)
            for child in self.data_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        initdb = str(find_bin_dir() / "initdb")
        result = self._run_as_owner(
            [initdb, "-D", str(self.data_dir), "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
             "--auth-local=peer", "--auth-host=scram-sha-256"]
        )  # fmt: skip
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:])
            raise ServiceError(f"initdb failed for {self.data_dir}:\n{tail}")
        logger.info("initialised a PostgreSQL cluster in %s", self.data_dir)

    def command(self) -> list[str]:
        return [str(self._bin() / "postgres"), "-D", str(self.data_dir)]

    def spawn_options(self) -> Mapping[str, Any]:
        options: dict[str, Any] = {"cwd": self.data_dir, "env": {"PGDATA": str(self.data_dir)}}
        if self._as_root:
            options["user"] = OS_USER
        return options

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname="postgres",
            connect_timeout=3, autocommit=True,
        )  # fmt: skip

    def probe(self) -> str:
        import psycopg

        if (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            conn = self._admin()
        else:  # not our cluster: ask as the application role over TCP
            pg = self.settings.postgres
            secret = pg.password.get_secret_value() if pg.password else None
            conn = psycopg.connect(pg.conninfo(), password=secret, connect_timeout=3)
        with conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"

    def after_start(self) -> None:
        """Converge the application role and database, and CDC's replication role; never print or log a
        password (generated once into secrets.toml unless the settings have one)."""
        from psycopg import sql

        wh, cdc = self.settings.warehouse, self.settings.cdc
        with self._admin() as conn:
            conn.execute("SET log_min_error_statement = panic")  # a failing DDL must not log its text
            self._role(conn, wh.user, wh.password, ("warehouse", "password"), "LOGIN NOSUPERUSER")
            # Debezium's connector: may stream WAL and log in, nothing else (grants: `dotjoin cdc setup`)
            self._role(conn, cdc.replication_user, cdc.replication_password, ("cdc", "replication_password"),
                       "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE")  # fmt: skip
            role, db = sql.Identifier(wh.user), sql.Identifier(wh.dbname)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [wh.dbname]).fetchone():
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, role))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, role))
        logger.debug("role %s owns database %s", wh.user, wh.dbname)

    def converge_service_database(self, role: str, database: str, password: str, *, needed_by: str) -> None:
        """A login role ``role`` (no superuser, CREATEDB or CREATEROLE) owning the database ``database``,
        ``CONNECT`` revoked from PUBLIC: a service's metadata store (Airflow's, MLflow's). Idempotent."""
        from psycopg import sql

        if not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            raise ServiceError(
                f"{needed_by} needs our PostgreSQL for its metadata database; start it first: "
                "dotjoin services up postgres"
            )
        with self._admin() as conn:
            conn.execute("SET log_min_error_statement = panic")  # a failing DDL must not log its text
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            verb = "ALTER ROLE {} WITH" if exists else "CREATE ROLE {}"
            conn.execute(
                sql.SQL(verb + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(verifier.decode())
                )
            )
            db, owner = sql.Identifier(database), sql.Identifier(role)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, owner))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, owner))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))

    def _role(self, conn: Any, user: str, password: Any, secret: tuple[str, str], attributes: str) -> None:
        """Create or alter ``user`` with ``attributes`` and its password (generated and stored under
        ``secret`` — section, key — when the settings have none); only the SCRAM verifier is sent."""
        from psycopg import sql

        current = password.get_secret_value() if password else None
        value = ensure_secret(self.settings.state_dir, *secret, current)
        verifier = conn.pgconn.encrypt_password(value.encode(), user.encode(), b"scram-sha-256")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
        verb = "ALTER ROLE {} WITH " if exists else "CREATE ROLE {} WITH "
        statement = sql.SQL(verb + attributes + " PASSWORD {}")  # attributes: our constants, not input
        conn.execute(statement.format(sql.Identifier(user), sql.Literal(verifier.decode())))
