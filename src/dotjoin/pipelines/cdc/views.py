"""The current state and the SCD type 2 history of a CDC'd table, as SQL over its change log.

Merge-on-read: both are window queries over the append-only log (:mod:`dotjoin.pipelines.cdc.applier`),
in the SQL that DuckDB and Trino share (no ``QUALIFY``), so the same text runs on either engine.

* **current**: per key the newest version (largest ``_pos``) unless it is a delete; columns dropped in the
  source are left out.
* **history**: one row per version, in ``_pos`` order per key: ``valid_from`` is the change's source commit
  time, ``valid_to`` the next version's (``NULL`` while current), ``is_current``, ``op`` and ``is_deleted``
  (a delete is a version too — the key did not exist from then on, as dbt's ``hard_deletes: new_record``
  records it). A snapshot read (``op = 'r'``) whose values equal the key's previous version is not a new
  version: a restarted or repeated snapshot re-reads rows it already has. As-of queries use the half-open
  interval ``valid_from <= t < coalesce(valid_to, …)``, so two changes in one transaction (same commit
  time) leave one visible version.
"""

from __future__ import annotations

from collections.abc import Sequence


def quote(name: str) -> str:
    """A SQL identifier, double-quoted (DuckDB and Trino).

    >>> quote('user"id')
    '"user""id"'
    """
    return '"' + name.replace('"', '""') + '"'


def current_sql(log: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """The current state of the table whose change log is the relation ``log`` (already quoted)."""
    keys = ", ".join(map(quote, key))
    cols = ", ".join(map(quote, columns))
    return (
        f"SELECT {cols} FROM ("
        f"SELECT {cols}, _op, row_number() OVER (PARTITION BY {keys} ORDER BY _pos DESC) AS _rn FROM {log}"
        f") AS versions WHERE _rn = 1 AND _op <> 'd'"
    )


def history_sql(log: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """The SCD type 2 history of the table whose change log is ``log``: ``columns`` plus ``version``, ``op``,
    ``is_deleted``, ``valid_from``, ``valid_to``, ``is_current``, ``lsn``, ``tx_id``."""
    keys = ", ".join(map(quote, key))
    cols = ", ".join(map(quote, columns))
    per_key = f"PARTITION BY {keys} ORDER BY _pos"
    return (
        f"WITH ordered AS (SELECT {cols}, _op, _pos, _lsn, _tx_id, _commit_ts, _row_hash, "
        f"lag(_op) OVER ({per_key}) AS _prev_op, lag(_row_hash) OVER ({per_key}) AS _prev_hash FROM {log}), "
        "versions AS (SELECT * FROM ordered WHERE NOT (_op = 'r' AND _prev_op IS NOT NULL "
        "AND _prev_op <> 'd' AND _prev_hash = _row_hash)) "
        f"SELECT {cols}, CAST(row_number() OVER ({per_key}) AS bigint) AS version, _op AS op, "
        "_op = 'd' AS is_deleted, _commit_ts AS valid_from, "
        f"lead(_commit_ts) OVER ({per_key}) AS valid_to, "
        f"(lead(_pos) OVER ({per_key}) IS NULL AND _op <> 'd') AS is_current, "
        "_lsn AS lsn, _tx_id AS tx_id FROM versions"
    )
