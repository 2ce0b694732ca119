"""The warehouse ABC: a SQL engine we bulk-load Arrow into and query back as Arrow.

Parameters use the ``$1, $2`` positional style on every backend (DuckDB natively, PostgreSQL through
psycopg's ``RawCursor``), so one SQL string runs on both. Table and column names are never interpolated
as text: backends quote them (psycopg ``sql.Identifier`` on PostgreSQL).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import pyarrow as pa

LoadMode = Literal["append", "replace"]


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int


class Warehouse(ABC):
    """One connection to a SQL warehouse. Use as a context manager; not thread-safe."""

    dialect: ClassVar[str]

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement with ``$n`` parameters; autocommits unless inside :meth:`transaction`."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a query with ``$n`` parameters and return the result as an Arrow table."""

    @abstractmethod
    def load_arrow(
        self, table: str, data: pa.Table | pa.RecordBatchReader, *, mode: LoadMode = "append"
    ) -> int:
        """Bulk-load Arrow data (PostgreSQL: binary COPY), creating the table from the schema if needed.

        ``mode="replace"`` swaps the whole table atomically. Returns the number of rows loaded.
        """

    @abstractmethod
    def upsert(self, table: str, data: pa.Table, *, key: Sequence[str]) -> UpsertResult:
        """Insert new rows and update changed rows on ``key``, atomically; idempotent on re-run.

        Rows whose non-key values are unchanged are neither inserted nor updated.
        """

    @abstractmethod
    def table_exists(self, table: str) -> bool:
        """Whether ``table`` (optionally ``schema.table``) exists."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group statements into one transaction: commit on success, roll back on error."""

    @abstractmethod
    def close(self) -> None: ...

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        result = self.query(sql, params)
        return result.column(0)[0].as_py() if result.num_rows else None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
