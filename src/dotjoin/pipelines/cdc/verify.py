"""``dotjoin cdc verify``: the reconciliation oracle — the source's tables against the lake's current state,
and (given the workload's journal) the SCD type 2 history against the ordered change log.

Current state: every source row and every lake row, keyed by the primary key, compared value by value
(canonical forms: instants in UTC, decimals normalised) — counts, an order-independent digest of each
side (sha256 over the sorted canonical rows), and the keys missing from the lake, extra in it, or
different. The source side is read from PostgreSQL itself, never from anything the applier wrote.

History: the journal (one line per committed row change, in commit order, written by the workload as it
committed) against the history's versions of each key, op by op and value by value on the columns the
journal knows. Snapshot reads (``op = 'r'``) are rows that existed before the journal began; they are
not in it and are left out of this comparison.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from dotjoin.config import Settings
from dotjoin.pipelines.cdc.pipeline import open_text
from dotjoin.pipelines.cdc.tables import CdcTable, cdc_table, current_state, history
from dotjoin.platform import postgres
from dotjoin.platform.lake import Lake
from dotjoin.platform.postgres import sql

SAMPLE = 5  # keys named per kind of mismatch


@dataclass
class TableVerdict:
    table: str
    source_rows: int = 0
    lake_rows: int = 0
    source_digest: str = ""
    lake_digest: str = ""
    missing: list[Any] = field(default_factory=list)  # in the source, not in the lake
    extra: list[Any] = field(default_factory=list)  # in the lake, not in the source
    different: list[Any] = field(default_factory=list)
    history_checked: int = 0
    history_mismatches: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.different) + len(self.history_mismatches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "source_rows": self.source_rows, "lake_rows": self.lake_rows,
            "source_digest": self.source_digest, "lake_digest": self.lake_digest,
            "missing": len(self.missing), "extra": len(self.extra), "different": len(self.different),
            "sample": {"missing": self.missing[:SAMPLE], "extra": self.extra[:SAMPLE],
                       "different": self.different[:SAMPLE]},
            "history_checked": self.history_checked, "history_mismatches": self.history_mismatches[:SAMPLE],
            "mismatches": self.mismatches,
        }  # fmt: skip


def canonical(value: Any) -> Any:
    """One form per value whatever engine produced it: UTC ISO instants, normalised decimals, hex bytes.

    >>> canonical(Decimal("12.50")) == canonical(Decimal("12.5"))
    True
    """
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def verify_table(
    settings: Settings, lake: Lake, source: str, journal: Sequence[dict[str, Any]] = ()
) -> TableVerdict:
    """Compare ``source`` (``schema.table``) in PostgreSQL with its lake tables."""
    table = cdc_table(lake, source)
    verdict = TableVerdict(source)
    schema, name = source.split(".", 1)
    with postgres.connect(settings.postgres) as conn:
        cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, name)))
        names = [c.name for c in cursor.description or ()]
        source_rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    _compare(verdict, source_rows, current_state(lake, source).to_pylist(), table.key, sorted(names))
    if journal:
        _check_history(lake, table, journal, verdict)
    return verdict


def verify_journal(lake: Lake, source: str, journal: Sequence[dict[str, Any]]) -> TableVerdict:
    """Compare the lake's tables of ``source`` with a journal alone (no database: a replayed recording):
    the current state against the journal's last state of each key, the history against its changes."""
    table = cdc_table(lake, source)
    verdict = TableVerdict(source)
    final: dict[Any, dict[str, Any]] = {}
    for entry in journal:
        key = _key_of(entry["row"], table.key)
        if entry["op"] == "d":
            final.pop(key, None)
        else:
            final[key] = entry["row"]
    columns = sorted({c for row in final.values() for c in row} & set(table.current_columns))
    kinds = {f.name: f.type for f in history(lake, source).schema}
    expected = [{c: _typed(row.get(c), kinds.get(c)) for c in columns} for row in final.values()]
    _compare(verdict, expected, current_state(lake, source).to_pylist(), table.key, columns)
    _check_history(lake, table, journal, verdict)
    return verdict


def verify(
    settings: Settings, lake: Lake, tables: Sequence[str], journal: Path | None = None
) -> list[TableVerdict]:
    """:func:`verify_table` for each of ``tables``; the journal's entries are split by table."""
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in load_journal(journal) if journal is not None else ():
        entries[entry["table"]].append(entry)
    return [verify_table(settings, lake, t, entries.get(t, ())) for t in tables]


def load_journal(path: Path) -> list[dict[str, Any]]:
    """A workload journal's entries in commit order (``.gz`` read as gzip)."""
    with open_text(path) as handle:
        return [msgspec.json.decode(line) for line in handle if line.strip()]


def _compare(
    verdict: TableVerdict,
    source_rows: list[dict[str, Any]],
    lake_rows: list[dict[str, Any]],
    key: Sequence[str],
    columns: list[str],
) -> None:
    src = _keyed(source_rows, key, columns)
    dst = _keyed(lake_rows, key, columns)
    verdict.source_rows, verdict.lake_rows = len(src), len(dst)
    verdict.source_digest, verdict.lake_digest = _digest(src), _digest(dst)
    verdict.missing = sorted((k for k in src if k not in dst), key=repr)
    verdict.extra = sorted((k for k in dst if k not in src), key=repr)
    verdict.different = sorted((k for k in src if k in dst and src[k] != dst[k]), key=repr)


def _keyed(rows: list[dict[str, Any]], key: Sequence[str], columns: list[str]) -> dict[Any, tuple[Any, ...]]:
    out = {}
    for row in rows:
        k = tuple(canonical(row.get(c)) for c in key)
        out[k[0] if len(k) == 1 else k] = tuple(canonical(row.get(c)) for c in columns)
    return out


def _digest(rows: dict[Any, tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for row in sorted(repr(r) for r in rows.values()):
        h.update(row.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def _check_history(
    lake: Lake, table: CdcTable, journal: Sequence[dict[str, Any]], verdict: TableVerdict
) -> None:
    versions = history(lake, table.source)
    types = {f.name: f.type for f in versions.schema}
    got: dict[Any, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for row in versions.to_pylist():
        if row["op"] != "r":
            got[_key_of(row, table.key)].append((row["op"], row))
    expected: dict[Any, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for entry in journal:
        row = {c: _typed(v, types.get(c)) for c, v in entry["row"].items() if c in types}
        expected[_key_of(row, table.key)].append((entry["op"], row))
    verdict.history_checked = sum(map(len, expected.values()))
    for key in sorted(set(expected) | set(got), key=repr):
        want, have = expected.get(key, []), got.get(key, [])
        if len(want) != len(have):
            verdict.history_mismatches.append(
                f"{key}: {len(want)} changes in the journal, {len(have)} versions"
            )
            continue
        for n, ((op, row), (hop, hrow)) in enumerate(zip(want, have, strict=True), 1):
            bad = [c for c in row if canonical(row[c]) != canonical(hrow.get(c))]
            if op != hop or bad:
                verdict.history_mismatches.append(f"{key} version {n}: {op} vs {hop}, columns {bad}")
                break


def _key_of(row: dict[str, Any], key: Sequence[str]) -> Any:
    k = tuple(canonical(row.get(c)) for c in key)
    return k[0] if len(k) == 1 else k


def _typed(value: Any, kind: pa.DataType | None) -> Any:
    """A journal value (JSON: instants and decimals as text) as the lake column's type."""
    if value is None or kind is None or not isinstance(value, str):
        return value
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return value
    return pa.array([value]).cast(kind)[0].as_py()
