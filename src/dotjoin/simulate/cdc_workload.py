"""The CDC source's workload: a paced, seeded stream of OLTP transactions on the captured tables.

Every kind of change a CDC pipeline must get right, in one mix: inserts, updates (some leaving a TOASTed
``bio`` unchanged, so Debezium sends its unavailable-value placeholder), TOASTed updates, deletes, a
delete then re-insert of one key in one transaction, primary-key updates, and multi-table transactions
(a stock movement: ``inventory`` updated and ``inventory_movements`` inserted together).

One connection, one transaction at a time: the commit order is the generation order, so the **journal**
(``--journal FILE``: one JSON line per row change, in commit order, with the values written) is an
independent truth for the change log and the history. It knows only the columns it wrote: a column added
by someone else (the schema-evolution test) is not in it. Columns dropped by someone else are noticed
(undefined column → the column list is re-read and the transaction retried).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import msgspec

from dotjoin.config import Settings
from dotjoin.platform import postgres
from dotjoin.platform.postgres import sql

logger = logging.getLogger(__name__)

COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "BR")
TIERS = ("basic", "silver", "gold", "platinum")
WAREHOUSES = ("ams", "fra", "lon", "nyc")
REASONS = ("sale", "restock", "return", "damage", "audit")
#: Transaction kinds and their weights.
MIX: dict[str, int] = {
    "insert_user": 14, "update_user": 24, "update_bio": 3, "delete_user": 4, "reinsert_user": 2,
    "move_user_key": 2, "stock_movement": 30, "insert_sku": 6, "update_price": 9, "delete_sku": 2,
    "movement_only": 4,
}  # fmt: skip
TOAST_BYTES = 9000  # > 2 kB after compression: stored out of line (random text does not compress)


@dataclass
class WorkloadReport:
    transactions: int = 0
    changes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        tps = self.transactions / self.seconds if self.seconds else 0.0
        return {"transactions": self.transactions, "changes": self.changes, "kinds": dict(self.kinds),
                "retries": self.retries, "seconds": round(self.seconds, 3),
                "transactions_per_s": round(tps, 1)}  # fmt: skip


class Workload:
    """Generates and runs the transactions; ``journal`` receives one JSON line per committed row change;
    ``burst`` movements go into each stock transaction (1: one)."""

    def __init__(
        self, settings: Settings, *, seed: int = 0, journal: IO[str] | None = None, burst: int = 1
    ) -> None:
        self.schema = settings.cdc.source_schema
        self.conn = postgres.connect(settings.postgres)
        self.conn.prepare_threshold = None  # a prepared plan breaks when a column's type changes under us
        self.rng = random.Random(seed)  # noqa: S311 - a synthetic workload, not crypto
        self.journal = journal
        self.burst = burst  # movements per stock transaction: more changes per commit at high rates
        self.columns: dict[str, list[str]] = {}
        self._refresh_columns()
        self.users = [r[0] for r in self.conn.execute(self._q("SELECT user_id FROM {t}", "users"))]
        self.skus = [r[0] for r in self.conn.execute(self._q("SELECT sku FROM {t}", "inventory"))]
        self.next_user = max(self.users, default=0) + 1
        self.next_sku = len(self.skus) + 1
        self._pending: list[dict[str, Any]] = []

    def close(self) -> None:
        self.conn.close()

    # -- running ------------------------------------------------------------------------------------

    def run(
        self, *, tps: float, duration: float, progress: Callable[[int, int, str], None] | None = None
    ) -> WorkloadReport:
        """Run ``tps`` transactions a second for ``duration`` seconds (paced; when behind, flat out)."""
        report = WorkloadReport()
        total = int(tps * duration)
        started = time.perf_counter()
        for n in range(total):
            wait = started + n / tps - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
            report.changes += self.transaction(kind, report)
            report.kinds[kind] += 1
            report.transactions += 1
            if progress and n % 100 == 0:
                progress(n, total, f"{report.changes:,} changes")
        report.seconds = time.perf_counter() - started
        return report

    def transaction(self, kind: str, report: WorkloadReport | None = None) -> int:
        """Run one transaction of ``kind``; the number of row changes it committed."""
        for attempt in range(3):
            self._pending = []
            try:
                with self.conn.transaction():
                    getattr(self, "_" + kind)()
            except Exception as exc:  # psycopg's UndefinedColumn: a column was dropped under us
                if getattr(exc, "sqlstate", None) != "42703" or attempt == 2:
                    raise
                logger.info("workload: %s; re-reading the columns", str(exc).splitlines()[0])
                self._refresh_columns()
                if report is not None:
                    report.retries += 1
                continue
            self._commit_journal()
            return len(self._pending)
        return 0

    # -- the transaction kinds -----------------------------------------------------------------------

    def _insert_user(self) -> None:
        self._insert("users", self._new_user(self._take_user_id()))

    def _update_user(self) -> None:
        if not self.users:
            return self._insert_user()
        user = self.rng.choice(self.users)
        change = {"tier": self.rng.choice(TIERS), "email": self._email(user)}
        self._update("users", "user_id", user, {**change, "updated_at": _now()})
        return None

    def _update_bio(self) -> None:
        if not self.users:
            return self._insert_user()
        self._update(
            "users", "user_id", self.rng.choice(self.users), {"bio": self._bio(), "updated_at": _now()}
        )
        return None

    def _delete_user(self) -> None:
        if len(self.users) < 2:
            return self._insert_user()
        user = self.users.pop(self.rng.randrange(len(self.users)))
        self._delete("users", "user_id", user)
        return None

    def _reinsert_user(self) -> None:
        if not self.users:
            return self._insert_user()
        user = self.rng.choice(self.users)
        self._delete("users", "user_id", user)
        self._insert("users", self._new_user(user))
        return None

    def _move_user_key(self) -> None:
        if not self.users:
            return self._insert_user()
        index = self.rng.randrange(len(self.users))
        old, new = self.users[index], self._take_user_id()
        self.users[index] = new
        self.users.pop()  # _take_user_id appended it
        cursor = self.conn.execute(
            self._q("UPDATE {t} SET user_id = %s WHERE user_id = %s RETURNING *", "users"), [new, old]
        )
        self._note("users", "d", [old], {"user_id": old})
        self._note("users", "c", [new], _returned(cursor))
        return None

    def _stock_movement(self) -> None:
        if not self.skus:
            return self._insert_sku()
        sku = self.rng.choice(self.skus)
        deltas = [self.rng.choice((-3, -2, -1, -1, 1, 2, 5, 10)) for _ in range(self.burst)]
        qty = self.conn.execute(
            self._q("SELECT quantity FROM {t} WHERE sku = %s FOR UPDATE", "inventory"), [sku]
        ).fetchone()
        total = sum(deltas)
        self._update(
            "inventory", "sku", sku, {"quantity": int(qty[0]) + total if qty else total, "updated_at": _now()}
        )
        self._movements(sku, deltas)
        return None

    def _movement_only(self) -> None:
        if not self.skus:
            return self._insert_sku()
        self._movements(self.rng.choice(self.skus), [self.rng.choice((-1, 1)) for _ in range(self.burst)])
        return None

    def _insert_sku(self) -> None:
        sku = f"SKU-{self.next_sku:06d}"
        self.next_sku += 1
        self.skus.append(sku)
        row = {"sku": sku, "name": f"item {self._word(6)}", "warehouse": self.rng.choice(WAREHOUSES),
               "quantity": self.rng.randrange(0, 500), "price": _price(self.rng),
               "updated_at": _now()}  # fmt: skip
        self._insert("inventory", row)

    def _update_price(self) -> None:
        if not self.skus:
            return self._insert_sku()
        self._update(
            "inventory", "sku", self.rng.choice(self.skus), {"price": _price(self.rng), "updated_at": _now()}
        )
        return None

    def _delete_sku(self) -> None:
        if len(self.skus) < 2:
            return self._insert_sku()
        self._delete("inventory", "sku", self.skus.pop(self.rng.randrange(len(self.skus))))
        return None

    # -- statements --------------------------------------------------------------------------------

    def _movements(self, sku: str, deltas: list[int]) -> None:
        """``len(deltas)`` movement rows in one statement (one round trip, however many)."""
        columns = [
            c for c in ("sku", "delta", "reason", "moved_at") if c in self.columns["inventory_movements"]
        ]
        rows = [
            {"sku": sku, "delta": d, "reason": self.rng.choice(REASONS), "moved_at": _now()} for d in deltas
        ]
        one = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(columns)))
        statement = sql.SQL("INSERT INTO {t} ({c}) VALUES {v} RETURNING *").format(
            t=sql.Identifier(self.schema, "inventory_movements"),
            c=sql.SQL(", ").join(map(sql.Identifier, columns)), v=sql.SQL(", ").join([one] * len(rows)),
        )  # fmt: skip
        cursor = self.conn.execute(statement, [row[c] for row in rows for c in columns])
        names = [c.name for c in cursor.description or ()]
        for returned in cursor.fetchall():
            row = dict(zip(names, returned, strict=True))
            self._note("inventory_movements", "c", [row["movement_id"]], row)

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        row = {c: v for c, v in row.items() if c in self.columns[table]}
        names = sql.SQL(", ").join(map(sql.Identifier, row))
        marks = sql.SQL(", ").join(sql.Placeholder() * len(row))
        statement = sql.SQL("INSERT INTO {t} ({c}) VALUES ({v})").format(
            t=sql.Identifier(self.schema, table), c=names, v=marks
        )
        self.conn.execute(statement, list(row.values()))
        self._note(table, "c", [row["user_id" if table == "users" else "sku"]], row)

    def _update(self, table: str, key: str, value: Any, change: dict[str, Any]) -> None:
        change = {c: v for c, v in change.items() if c in self.columns[table]}
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in change)
        statement = sql.SQL("UPDATE {t} SET {s} WHERE {k} = %s RETURNING *").format(
            t=sql.Identifier(self.schema, table), s=sets, k=sql.Identifier(key)
        )
        cursor = self.conn.execute(statement, [*change.values(), value])
        if cursor.rowcount:
            self._note(table, "u", [value], _returned(cursor))

    def _delete(self, table: str, key: str, value: Any) -> None:
        statement = sql.SQL("DELETE FROM {t} WHERE {k} = %s").format(
            t=sql.Identifier(self.schema, table), k=sql.Identifier(key)
        )
        if self.conn.execute(statement, [value]).rowcount:
            self._note(table, "d", [value], {key: value})

    # -- helpers -----------------------------------------------------------------------------------

    def _q(self, text: str, table: str) -> sql.Composed:
        return sql.SQL(text).format(t=sql.Identifier(self.schema, table))

    def _refresh_columns(self) -> None:
        rows = self.conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "ORDER BY table_name, ordinal_position",
            [self.schema],
        ).fetchall()
        self.columns = {}
        for table, column in rows:
            self.columns.setdefault(table, []).append(column)

    def _take_user_id(self) -> int:
        user = self.next_user
        self.next_user += 1
        self.users.append(user)
        return user

    def _new_user(self, user: int) -> dict[str, Any]:
        now = _now()
        bio = self._bio() if self.rng.random() < 0.15 else f"user {user}"
        name = f"{self._word(5).title()} {self._word(7).title()}"
        return {"user_id": user, "email": self._email(user), "full_name": name,
                "country": self.rng.choice(COUNTRIES), "tier": self.rng.choice(TIERS), "bio": bio,
                "created_at": now, "updated_at": now}  # fmt: skip

    def _email(self, user: int) -> str:
        return f"{self._word(6)}.{user}@example.org"

    def _bio(self) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits + " ", k=TOAST_BYTES))

    def _word(self, n: int) -> str:
        return "".join(self.rng.choices(string.ascii_lowercase, k=n))

    def _note(self, table: str, op: str, key: list[Any], row: dict[str, Any]) -> None:
        self._pending.append({"table": f"{self.schema}.{table}", "op": op, "key": key, "row": row})

    def _commit_journal(self) -> None:
        if self.journal is not None:
            for entry in self._pending:
                self.journal.write(_encode(entry).decode() + "\n")


def populate(settings: Settings, *, users: int, skus: int = 0, seed: int = 0) -> int:
    """Bulk-load ``users`` users (and ``skus`` inventory rows) with COPY: what an initial snapshot reads."""
    rng = random.Random(seed)  # noqa: S311 - synthetic rows, not crypto
    schema = settings.cdc.source_schema
    with postgres.connect(settings.postgres) as conn:
        start = (conn.execute(sql.SQL("SELECT coalesce(max(user_id), 0) FROM {}").format(
            sql.Identifier(schema, "users"))).fetchone() or (0,))[0] + 1  # fmt: skip
        columns = ("user_id", "email", "full_name", "country", "tier", "bio")
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(schema, "users"), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with conn.cursor() as cursor, cursor.copy(copy) as writer:
            for user in range(start, start + users):
                writer.write_row((user, f"u{user}@example.org", f"User {user}", rng.choice(COUNTRIES),
                                  rng.choice(TIERS), f"user {user}"))  # fmt: skip
        if skus:
            copy = sql.SQL("COPY {} (sku, name, warehouse, quantity, price) FROM STDIN").format(
                sql.Identifier(schema, "inventory")
            )
            with conn.cursor() as cursor, cursor.copy(copy) as writer:
                for n in range(1, skus + 1):
                    writer.write_row((f"SKU-{n:06d}", f"item {n}", rng.choice(WAREHOUSES), rng.randrange(500),
                                      _price(rng)))  # fmt: skip
    return users + skus


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _price(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(100, 100_000)) / 100


def _returned(cursor: Any) -> dict[str, Any]:
    """The row a ``RETURNING *`` statement returned, by column name."""
    row = cursor.fetchone()
    return dict(zip([c.name for c in cursor.description], row, strict=True)) if row else {}


_encode = msgspec.json.Encoder().encode  # datetimes as ISO 8601, decimals as strings
