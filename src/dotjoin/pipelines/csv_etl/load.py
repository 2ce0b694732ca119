"""Loading one file into the warehouse, all or nothing: rows, quarantine, duplicates and bookkeeping.

Everything a file writes happens inside one warehouse transaction (the caller's
``with wh.transaction():``), so readers see either the state before the file or the state after it,
and a crash (even ``kill -9``) in the middle leaves the previous state: PostgreSQL and DuckDB roll an
uncommitted transaction back. Two ways in, chosen per file at the start of the transaction:

* **direct** — the target table is empty: rows are bulk-loaded straight into it (binary COPY on
  PostgreSQL, Arrow scan on DuckDB), invisible to others until the commit. This is the fast first load.
* **merge** — the target has rows: rows are bulk-loaded into a temporary staging table, then merged on
  the natural key: ``UPDATE`` where the ``content_hash`` differs, ``INSERT`` where the key is new,
  nothing where the row is unchanged — so re-loading a file writes no row, and a later export that
  overlaps an earlier one writes only its new and changed rows.

Quarantine and duplicate records are staged the same way and merged on ``(source, line)``; entries of
the same source from an earlier load that the file no longer has are removed, so both tables describe
the latest load of every file. Before the commit the load verifies that every staged row is in the
target with its content hash, and the caller checks the row accounting.

Only the platform's warehouse adapter is used (``load_arrow`` for bulk loads, ``$n`` parameters);
the SQL is portable between DuckDB and PostgreSQL.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa

from dotjoin.platform.quality.quarantine import QUARANTINE_KEY, QUARANTINE_SCHEMA, QUARANTINE_TABLE
from dotjoin.platform.warehouse.base import Warehouse
from dotjoin.platform.warehouse.duckdb_backend import quote_identifier

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
PROVENANCE = ("source_file", "source_line", "loaded_at")
DUPLICATES_TABLE = "csv_etl_duplicates"
DUPLICATES_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("duplicate_of_line", pa.int64(), nullable=False),
        pa.field("natural_key", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)


@cache
def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql``.

    >>> sql_text("ddl_stores").startswith("CREATE TABLE IF NOT EXISTS stores")
    True
    """
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def create_tables(wh: Warehouse, names: tuple[str, ...]) -> None:
    """Create the pipeline's tables from ``sql/ddl_<name>.sql`` (idempotent) and the quarantine table."""
    for name in names:
        wh.execute(sql_text(f"ddl_{name}"))
    if not wh.table_exists(QUARANTINE_TABLE):  # the platform's table, created the platform's way
        wh.upsert(QUARANTINE_TABLE, QUARANTINE_SCHEMA.empty_table(), key=list(QUARANTINE_KEY))


@dataclass
class LoadResult:
    """What one file's load did to its target table.

    Attributes:
        mode: ``direct`` (first load into an empty table) or ``merge``.
        output: rows the file contributes (first occurrences of keys without defects).
        inserted: rows written with a new key.
        updated: existing rows rewritten because their content hash changed.
        unchanged: existing rows left as they were (same content).
        attributed_elsewhere: unchanged rows that an earlier load of another file wrote.
        verified: rows found in the target with this file's key and content hash before the commit.
        quarantine_written: quarantine entries inserted or changed.
        duplicates_written: duplicate entries inserted or changed.
    """

    mode: str
    output: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    attributed_elsewhere: int = 0
    verified: int = 0
    quarantine_written: int = 0
    duplicates_written: int = 0


def _match(key: tuple[str, ...], left: str = "t", right: str = "s") -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in key)


@dataclass
class FileLoad:
    """The writes of one source file into ``target``; call inside ``with wh.transaction():``.

    Args:
        wh: the warehouse (inside a transaction).
        target: the data table (created beforehand from its DDL).
        key: its natural key columns.
        columns: every column of the target, in order.
        dataset: ``commits`` or ``retail``.
        source: the source file as recorded (absolute path).
        pipeline: the quarantine's pipeline name.
    """

    wh: Warehouse
    target: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    dataset: str
    source: str
    pipeline: str
    result: LoadResult = field(init=False)
    _tag: str = field(init=False, default_factory=lambda: uuid.uuid4().hex[:10])
    _staged: int = field(init=False, default=0)
    _entries_direct: bool = field(init=False, default=False)
    _entries_written: list[int] = field(init=False, default_factory=lambda: [0, 0])
    _primary_key: tuple[str, tuple[str, ...]] | None = field(init=False, default=None)

    @property
    def stage(self) -> str:
        return f"csv_etl_stage_{self._tag}"

    @property
    def qstage(self) -> str:
        return f"csv_etl_qstage_{self._tag}"

    @property
    def dstage(self) -> str:
        return f"csv_etl_dstage_{self._tag}"

    def begin(self) -> str:
        """Lock the target against concurrent loads (PostgreSQL), choose the mode, create stages."""
        wh = self.wh
        if wh.dialect == "postgres":  # one loader per table at a time; readers are not blocked
            wh.execute(f"LOCK TABLE {self.target} IN SHARE ROW EXCLUSIVE MODE")
            wh.execute("SET LOCAL work_mem = '128MB'")  # hash joins of the merge stay in memory
        empty = not wh.scalar(f"SELECT EXISTS (SELECT 1 FROM {self.target})")
        self.result = LoadResult(mode="direct" if empty else "merge")
        if empty and wh.dialect == "postgres":
            self._drop_primary_key()
        if not empty:
            wh.execute(f"CREATE TEMP TABLE {self.stage} AS SELECT * FROM {self.target} WHERE 1 = 0")
        # A source never loaded before has no quarantine or duplicate entries to reconcile: write them
        # straight into their tables (still inside the transaction), like the rows of a direct load.
        self._entries_direct = not wh.scalar(
            f"SELECT EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} WHERE pipeline = $1 AND source = $2)"
            f" OR EXISTS (SELECT 1 FROM {DUPLICATES_TABLE} WHERE dataset = $3 AND source = $2)",
            [self.pipeline, self.source, self.dataset],
        )
        if not self._entries_direct:
            wh.execute(f"CREATE TEMP TABLE {self.qstage} AS SELECT * FROM {QUARANTINE_TABLE} WHERE 1 = 0")
            wh.execute(f"CREATE TEMP TABLE {self.dstage} AS SELECT * FROM {DUPLICATES_TABLE} WHERE 1 = 0")
        logger.debug("%s: %s load into %s", self.source, self.result.mode, self.target)
        return self.result.mode

    def rows(self, table: pa.Table) -> None:
        """Bulk-load a batch of clean rows (unique keys, provenance included)."""
        if not table.num_rows:
            return
        self.wh.load_arrow(self.target if self.result.mode == "direct" else self.stage, table)
        self._staged += table.num_rows

    def quarantine(self, table: pa.Table) -> None:
        """Stage a batch of quarantine entries (``QUARANTINE_SCHEMA``)."""
        if table.num_rows:
            self.wh.load_arrow(QUARANTINE_TABLE if self._entries_direct else self.qstage, table)
            self._entries_written[0] += table.num_rows

    def duplicates(self, table: pa.Table) -> None:
        """Stage a batch of duplicate entries (``DUPLICATES_SCHEMA``)."""
        if table.num_rows:
            self.wh.load_arrow(DUPLICATES_TABLE if self._entries_direct else self.dstage, table)
            self._entries_written[1] += table.num_rows

    def finish(self) -> LoadResult:
        """Merge what was staged, verify the target, drop the stages. Returns the counts."""
        wh, r = self.wh, self.result
        began = time.perf_counter()
        r.output = self._staged
        if r.mode == "direct":
            self._restore_primary_key()
            r.inserted = self._staged
            r.verified = int(wh.scalar(f"SELECT count(*) FROM {self.target}"))
        else:
            self._merge_rows()
            wh.execute(f"DROP TABLE {self.stage}")
        merged = time.perf_counter()
        if self._entries_direct:
            r.quarantine_written, r.duplicates_written = self._entries_written
        else:
            r.quarantine_written = self._merge_entries(
                QUARANTINE_TABLE, self.qstage, QUARANTINE_SCHEMA.names, QUARANTINE_KEY,
                ("reason", "detail", "raw"), ("pipeline", self.pipeline),
            )  # fmt: skip
            r.duplicates_written = self._merge_entries(
                DUPLICATES_TABLE, self.dstage, DUPLICATES_SCHEMA.names, ("dataset", "source", "line"),
                ("duplicate_of_line", "natural_key"), ("dataset", self.dataset),
            )  # fmt: skip
            wh.execute(f"DROP TABLE {self.qstage}")
            wh.execute(f"DROP TABLE {self.dstage}")
        logger.debug("%s: rows merged in %.2fs, quarantine and duplicates in %.2fs", self.source,
                     merged - began, time.perf_counter() - merged)  # fmt: skip
        return r

    def _drop_primary_key(self) -> None:
        """Drop the empty target's primary key for the direct load; :meth:`_restore_primary_key` adds it back.

        COPY into the commits table without its key took half the time (2.7 s against 5.5 s for 970k
        rows), and building the key once afterwards 1.0 s (docs/benchmarks.md). The key comes back in
        the same transaction, so a duplicate still fails the load and nothing is committed; others wait
        for the first load's commit (``ACCESS EXCLUSIVE``) instead of reading an empty table.
        """
        found = self.wh.query(
            "SELECT c.conname, array_to_string(array_agg(a.attname ORDER BY k.n), ',') AS columns"
            " FROM pg_constraint AS c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
            " WHERE c.conrelid = $1::regclass AND c.contype = 'p' GROUP BY c.conname",
            [self.target],
        ).to_pylist()
        if found:
            name = str(found[0]["conname"])
            self._primary_key = (name, tuple(str(found[0]["columns"]).split(",")))
            self.wh.execute(f"ALTER TABLE {self.target} DROP CONSTRAINT {quote_identifier(name)}")

    def _restore_primary_key(self) -> None:
        if self._primary_key is None:
            return
        name, columns = self._primary_key
        self.wh.execute(
            f"ALTER TABLE {self.target} ADD CONSTRAINT {quote_identifier(name)}"
            f" PRIMARY KEY ({', '.join(quote_identifier(c) for c in columns)})"
        )
        self._primary_key = None

    def _merge_rows(self) -> None:
        wh, r, t, s = self.wh, self.result, self.target, self.stage
        on = _match(self.key)
        wh.execute(f"ANALYZE {s}")
        wh.execute(f"ANALYZE {t}")  # a table loaded moments ago may have no statistics yet
        counts = wh.query(
            f"SELECT count(*) AS existing,"
            f" sum(CASE WHEN t.content_hash <> s.content_hash THEN 1 ELSE 0 END) AS changed,"
            f" sum(CASE WHEN t.content_hash = s.content_hash AND t.source_file <> s.source_file"
            f" THEN 1 ELSE 0 END) AS elsewhere"
            f" FROM {s} AS s JOIN {t} AS t ON {on}"
        ).to_pylist()[0]
        existing = int(counts["existing"] or 0)
        r.updated = int(counts["changed"] or 0)
        r.attributed_elsewhere = int(counts["elsewhere"] or 0)
        r.unchanged = existing - r.updated
        r.inserted = self._staged - existing
        values = [c for c in self.columns if c not in self.key]
        if r.updated:
            sets = ", ".join(f"{c} = s.{c}" for c in values)
            wh.execute(
                f"UPDATE {t} AS t SET {sets} FROM {s} AS s WHERE {on} AND t.content_hash <> s.content_hash"
            )
        if r.inserted:
            cols = ", ".join(self.columns)
            wh.execute(
                f"INSERT INTO {t} ({cols}) SELECT {', '.join('s.' + c for c in self.columns)} FROM {s} AS s"
                f" WHERE NOT EXISTS (SELECT 1 FROM {t} AS t WHERE {on})"
            )
        r.verified = int(
            wh.scalar(
                f"SELECT count(*) FROM {s} AS s JOIN {t} AS t ON {on} AND t.content_hash = s.content_hash"
            )
        )

    def _merge_entries(
        self,
        table: str,
        stage: str,
        columns: list[str],
        key: tuple[str, ...],
        compared: tuple[str, ...],
        scope: tuple[str, str],
    ) -> int:
        """Make ``table``'s entries of this source equal to ``stage``; returns the rows written."""
        wh = self.wh
        on = _match(key)
        scope_col, scope_value = scope
        # Without statistics PostgreSQL plans blind (a nested loop over two "tiny" tables): sample both.
        wh.execute(f"ANALYZE {stage}")
        wh.execute(f"ANALYZE {table}")
        wh.execute(
            f"DELETE FROM {table} WHERE {scope_col} = $1 AND source = $2 AND NOT EXISTS"
            f" (SELECT 1 FROM {stage} AS s WHERE {_match(key, table, 's')})",
            [scope_value, self.source],
        )
        differs = " OR ".join(f"t.{c} IS DISTINCT FROM s.{c}" for c in compared)
        changed = int(
            wh.scalar(f"SELECT count(*) FROM {stage} AS s JOIN {table} AS t ON {on} WHERE {differs}")
        )
        new = int(
            wh.scalar(
                f"SELECT count(*) FROM {stage} AS s WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {on})"
            )
        )
        if changed:
            sets = ", ".join(f"{c} = s.{c}" for c in columns if c not in key)
            wh.execute(f"UPDATE {table} AS t SET {sets} FROM {stage} AS s WHERE {on} AND ({differs})")
        if new:
            cols = ", ".join(columns)
            wh.execute(
                f"INSERT INTO {table} ({cols}) SELECT {', '.join('s.' + c for c in columns)}"
                f" FROM {stage} AS s"
                f" WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {on})"
            )
        return changed + new
