"""The batch computation: every feature as of any set of (card, merchant, time) points, in SQL on DuckDB.

Independent of the streaming state (:mod:`dotjoin.pipelines.features.online`) on purpose: the parity
check compares two computations of one definition, not one computation with itself.

* **Windowed**: the payments and the points in one time-ordered union per entity; a window frame
  ``RANGE BETWEEN w PRECEDING AND CURRENT ROW`` covers ``[t - w, t]``, and subtracting the frame of the
  row's peers (same millisecond) leaves ``[t - w, t)`` — strictly before t. The points carry no amount,
  so they count for nothing. Integer cents: exact.
* **Decayed**: ``sum(cents * 2 ** ((time - t) / h))`` cannot be one window aggregate (the weight depends
  on the row asked about), and ``2 ** (time / h)`` overflows a double after 1,024 half-lives. So time is
  cut into epochs of 512 half-lives: within its epoch a payment weighs ``2 ** ((time - epoch_start) / h)``
  (at most 2**512), a running sum over the epoch gives the part of t's own epoch, and the previous
  epoch's total, decayed by another 2**-512, the rest; anything older weighs under 2**-512 relative —
  below a double's precision.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from dotjoin.pipelines.features.definitions import (
    ENTITY_KEYS,
    FEATURES,
    HALF_LIVES_MS,
    WINDOWS_MS,
    Entity,
    usd_cents,
)
from dotjoin.pipelines.payments.contract import Payment
from dotjoin.platform.warehouse.duckdb_backend import DuckDBWarehouse

EPOCH_HALF_LIVES = 512
PAYMENTS_SCHEMA = pa.schema(
    [("card_id", pa.string()), ("merchant_id", pa.string()), ("time_ms", pa.int64()), ("cents", pa.int64())]
)
POINTS_SCHEMA = pa.schema(
    [
        ("point_id", pa.string()),
        ("card_id", pa.string()),
        ("merchant_id", pa.string()),
        ("time_ms", pa.int64()),
    ]
)


Row = tuple[str, str, int, int]  # card_id, merchant_id, time_ms, cents


def distinct_rows(
    payments: Iterable[Payment], usd_rates: dict[str, float]
) -> tuple[list[str], list[Row], int]:
    """The payments' event ids and rows in arrival order, duplicates (a repeated ``event_id``) dropped —
    the first arrival counts — and how many were."""
    seen: set[str] = set()
    ids: list[str] = []
    rows: list[Row] = []
    duplicates = 0
    for p in payments:
        if p.event_id in seen:
            duplicates += 1
            continue
        seen.add(p.event_id)
        ids.append(p.event_id)
        rows.append((p.card_id, p.merchant_id, p.event_time_ms, usd_cents(p.amount, p.currency, usd_rates)))
    return ids, rows, duplicates


def as_tables(ids: list[str], rows: list[Row]) -> tuple[pa.Table, pa.Table]:
    """The backfill's inputs for ``rows``: the payments, and the same payments as points named by ``ids``."""
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    payments = pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, PAYMENTS_SCHEMA, strict=True)],
        schema=PAYMENTS_SCHEMA,
    )
    points = payments.drop_columns(["cents"]).append_column("point_id", pa.array(ids, pa.string()))
    return payments, points


def _entity_sql(entity: Entity) -> str:
    """One SELECT: every feature of ``entity`` per point (``point_id`` + the feature columns)."""
    key = ENTITY_KEYS[entity]
    peers = "(PARTITION BY k ORDER BY t RANGE BETWEEN CURRENT ROW AND CURRENT ROW)"
    columns = []
    for label, window in WINDOWS_MS.items():
        frame = f"(PARTITION BY k ORDER BY t RANGE BETWEEN {window} PRECEDING AND CURRENT ROW)"
        count = f"(count(cents) OVER {frame} - count(cents) OVER {peers})"
        total = f"(coalesce(sum(cents) OVER {frame}, 0) - coalesce(sum(cents) OVER {peers}, 0))"
        columns += [
            f"{count} AS {entity}_count_{label}",
            f"{total}::BIGINT AS {entity}_sum_{label}",
            f"CASE WHEN {count} > 0 THEN {total}::DOUBLE / {count} END AS {entity}_mean_{label}",
        ]
    decay_columns, decay_joins, epoch_ctes = [], [], []
    for n, (label, half_life) in enumerate(HALF_LIVES_MS.items()):
        span = EPOCH_HALF_LIVES * half_life
        epoch_peers = f"(PARTITION BY k, t // {span} ORDER BY t RANGE BETWEEN CURRENT ROW AND CURRENT ROW)"
        running = (
            f"(PARTITION BY k, t // {span} ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        )
        weight = f"pow(2.0, (t - (t // {span}) * {span}) / {half_life}.0)"
        for what, value in (
            ("c", f"CASE WHEN cents IS NOT NULL THEN {weight} END"),
            ("s", f"cents * {weight}"),
        ):
            columns += [
                f"coalesce(sum({value}) OVER {running}, 0) - coalesce(sum({value}) OVER {epoch_peers}, 0) "
                f"AS in_{what}{n}"
            ]
        epoch_ctes.append(
            f"e{n} AS (SELECT k, t // {span} AS epoch, sum({weight}) AS c, sum(cents * {weight}) AS s "
            f"FROM u WHERE cents IS NOT NULL GROUP BY ALL)"
        )
        decay_joins.append(f"LEFT JOIN e{n} ON e{n}.k = w.k AND e{n}.epoch = w.t // {span} - 1")
        back = f"pow(2.0, ((w.t // {span}) * {span} - w.t) / {half_life}.0)"
        previous = f"pow(2.0, -{EPOCH_HALF_LIVES}.0)"
        dc = f"((w.in_c{n} + coalesce(e{n}.c, 0) * {previous}) * {back})"
        ds = f"((w.in_s{n} + coalesce(e{n}.s, 0) * {previous}) * {back})"
        decay_columns += [
            f"{dc} AS {entity}_count_hl{label}",
            f"{ds} AS {entity}_sum_hl{label}",
            f"CASE WHEN {dc} > 0 THEN {ds} / {dc} END AS {entity}_mean_hl{label}",
        ]
    windowed = [c.rsplit(" AS ", 1)[1] for c in columns if not c.rsplit(" AS ", 1)[1].startswith("in_")]
    return (
        f"WITH u AS (SELECT {key} AS k, time_ms AS t, cents, NULL::VARCHAR AS point_id FROM payments "
        f"UNION ALL SELECT {key}, time_ms, NULL::BIGINT, point_id FROM points), "
        f"w AS (SELECT point_id, k, t, {', '.join(columns)} FROM u), {', '.join(epoch_ctes)} "
        f"SELECT w.point_id, {', '.join('w.' + c for c in windowed)}, {', '.join(decay_columns)} "
        f"FROM w {' '.join(decay_joins)} WHERE w.point_id IS NOT NULL"
    )


def backfill(payments: pa.Table, points: pa.Table) -> pa.Table:
    """Every feature of each point (``point_id``, ``card_id``, ``merchant_id``, ``time_ms``) from the
    ``payments`` (``card_id``, ``merchant_id``, ``time_ms``, ``cents``); rows in ``points`` order, columns
    ``point_id`` then :data:`FEATURES`. Point ids must be unique.
    """
    with DuckDBWarehouse() as duck:
        duck.load_arrow("payments", payments.select(PAYMENTS_SCHEMA.names).cast(PAYMENTS_SCHEMA))
        ordered = points.select(POINTS_SCHEMA.names).cast(POINTS_SCHEMA)
        duck.load_arrow("points", ordered.append_column("ord", pa.array(range(len(ordered)), pa.int64())))
        card, merchant = _entity_sql("card"), _entity_sql("merchant")
        names = ", ".join(f.name for f in FEATURES)
        return duck.query(
            f"SELECT p.point_id, {names} FROM points p JOIN ({card}) c USING (point_id) "
            f"JOIN ({merchant}) m USING (point_id) ORDER BY p.ord"
        )
