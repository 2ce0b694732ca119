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


def as_tables(ids: list[str], rows: list[Row], *, arrival: bool = False) -> tuple[pa.Table, pa.Table]:
    """The backfill's inputs for ``rows``: the payments, and the same payments as points named by ``ids``;
    with ``arrival``, their arrival order too (each point then sees only what arrived before it)."""
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    payments = pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, PAYMENTS_SCHEMA, strict=True)],
        schema=PAYMENTS_SCHEMA,
    )
    if arrival:
        payments = payments.append_column("arrival", pa.array(range(len(rows)), pa.int64()))
    points = payments.drop_columns(["cents"]).append_column("point_id", pa.array(ids, pa.string()))
    return payments, points


def _window(partition: str, lower: str) -> str:
    return f"(PARTITION BY {partition} ORDER BY t RANGE BETWEEN {lower} AND CURRENT ROW)"


def _before(aggregate: str, frame: str, partition: str = "k") -> str:
    """``aggregate`` over ``frame`` minus the row's peers (same millisecond): strictly before t."""
    peers = _window(partition, "CURRENT ROW")
    return f"coalesce({aggregate} OVER {frame}, 0) - coalesce({aggregate} OVER {peers}, 0)"


def _entity_sql(entity: Entity, *, as_known: bool) -> str:
    """One SELECT: every feature of ``entity`` per point (``point_id`` + the feature columns)."""
    raw, epochs, joins, features = [], [], [], []

    def known(column: str, missed: str) -> str:  # as known: minus the payments the point missed
        return f"({column} - coalesce(f.{missed}, 0))" if as_known else column

    for label, window in WINDOWS_MS.items():
        frame = _window("k", f"{window} PRECEDING")
        raw += [
            f"{_before('count(cents)', frame)} AS n_{label}",
            f"{_before('sum(cents)', frame)} AS s_{label}",
        ]
        count, total = known(f"w.n_{label}", f"n_{label}"), known(f"w.s_{label}", f"s_{label}")
        features += [
            f"{count} AS {entity}_count_{label}",
            f"{total}::BIGINT AS {entity}_sum_{label}",
            f"CASE WHEN {count} > 0 THEN {total}::DOUBLE / {count} END AS {entity}_mean_{label}",
        ]
    for n, (label, half_life) in enumerate(HALF_LIVES_MS.items()):
        span = EPOCH_HALF_LIVES * half_life
        epoch = f"k, t // {span}"
        running = _window(epoch, "UNBOUNDED PRECEDING")
        weight = f"pow(2.0, (t - (t // {span}) * {span}) / {half_life}.0)"
        weighted = f"CASE WHEN cents IS NOT NULL THEN {weight} END"
        raw += [
            f"{_before(f'sum({weighted})', running, epoch)} AS in_c{n}",
            f"{_before(f'sum(cents * {weight})', running, epoch)} AS in_s{n}",
        ]
        epochs.append(
            f"e{n} AS (SELECT k, t // {span} AS epoch, sum({weight}) AS c, sum(cents * {weight}) AS s "
            "FROM u WHERE cents IS NOT NULL GROUP BY ALL)"
        )
        joins.append(f"LEFT JOIN e{n} ON e{n}.k = w.k AND e{n}.epoch = w.t // {span} - 1")
        back = f"pow(2.0, ((w.t // {span}) * {span} - w.t) / {half_life}.0)"
        previous = f"pow(2.0, -{EPOCH_HALF_LIVES}.0)"
        dc = f"((w.in_c{n} + coalesce(e{n}.c, 0) * {previous}) * {back})"
        ds = f"((w.in_s{n} + coalesce(e{n}.s, 0) * {previous}) * {back})"
        if as_known:  # a point that missed a payment: summed directly (subtracting would cancel digits away)
            dc = f"CASE WHEN x.point_id IS NULL THEN {dc} ELSE x.c{n} END"
            ds = f"CASE WHEN x.point_id IS NULL THEN {ds} ELSE x.s{n} END"
        features += [
            f"{dc} AS {entity}_count_hl{label}",
            f"{ds} AS {entity}_sum_hl{label}",
            f"CASE WHEN {dc} > 0 THEN {ds} / {dc} END AS {entity}_mean_hl{label}",
        ]
    key, arrival = ENTITY_KEYS[entity], (", arrival AS a" if as_known else "")
    union = (
        f"u AS (SELECT {key} AS k, time_ms AS t, cents, NULL::VARCHAR AS point_id{arrival} FROM payments "
        f"UNION ALL SELECT {key}, time_ms, NULL::BIGINT, point_id{arrival} FROM points)"
    )
    ctes = [union, f"w AS (SELECT point_id, k, t, {', '.join(raw)} FROM u)", *epochs]
    if as_known:
        joins += ["LEFT JOIN f ON f.point_id = w.point_id", "LEFT JOIN x ON x.point_id = w.point_id"]
        ctes += _late_ctes()
    return (
        f"WITH {', '.join(ctes)} SELECT w.point_id, {', '.join(features)} "
        f"FROM w {' '.join(joins)} WHERE w.point_id IS NOT NULL"
    )


def _late_ctes() -> list[str]:
    """``late``: the payments that some earlier arrival of the entity (payment or point) is later than —
    the only ones a point can have missed; ``f``: per point that missed any, the windowed aggregates of
    the payments it missed (to subtract: integers, exact); ``x``: its decayed ones over the payments it
    knew, summed directly — few points, each joined with its entity's earlier payments."""
    ahead = "max(t) OVER (PARTITION BY k ORDER BY a ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    late = (
        f"late AS (SELECT k, t, cents, a FROM (SELECT *, {ahead} AS ahead FROM u) "
        "WHERE cents IS NOT NULL AND ahead > t)"
    )
    missed = []
    for label, window in WINDOWS_MS.items():
        inside = f"FILTER (l.t >= p.t - {window})"
        missed += [f"count(*) {inside} AS n_{label}", f"coalesce(sum(l.cents) {inside}, 0) AS s_{label}"]
    fix = (
        f"f AS (SELECT p.point_id, {', '.join(missed)} FROM u p JOIN late l ON l.k = p.k AND l.t < p.t "
        "AND l.a > p.a WHERE p.point_id IS NOT NULL GROUP BY p.point_id)"
    )
    sums = []
    for n, half_life in enumerate(HALF_LIVES_MS.values()):
        weight = f"pow(2.0, (l.t - p.t) / {half_life}.0)"
        sums += [f"coalesce(sum({weight}), 0) AS c{n}", f"coalesce(sum(l.cents * {weight}), 0) AS s{n}"]
    exact = (
        f"x AS (SELECT p.point_id, {', '.join(sums)} FROM u p LEFT JOIN u l ON l.k = p.k "
        "AND l.cents IS NOT NULL AND l.t < p.t AND l.a < p.a "
        "WHERE p.point_id IN (SELECT point_id FROM f) GROUP BY p.point_id)"
    )
    return [late, fix, exact]


def backfill(payments: pa.Table, points: pa.Table) -> pa.Table:
    """Every feature of each point (``point_id``, ``card_id``, ``merchant_id``, ``time_ms``) from the
    ``payments`` (``card_id``, ``merchant_id``, ``time_ms``, ``cents``); rows in ``points`` order, columns
    ``point_id`` then :data:`FEATURES`. Point ids must be unique.

    With an ``arrival`` column (any increasing order: offsets, ingest times) in both tables, each point
    sees only the payments that arrived before it — **as known** then, what a scoring call saw; without,
    every payment before its time — as happened.
    """
    as_known = "arrival" in payments.column_names and "arrival" in points.column_names
    extra = [pa.field("arrival", pa.int64())] if as_known else []
    payments_schema, points_schema = (
        pa.schema([*PAYMENTS_SCHEMA, *extra]),
        pa.schema([*POINTS_SCHEMA, *extra]),
    )
    with DuckDBWarehouse() as duck:
        duck.load_arrow("payments", payments.select(payments_schema.names).cast(payments_schema))
        ordered = points.select(points_schema.names).cast(points_schema)
        duck.load_arrow("points", ordered.append_column("ord", pa.array(range(len(ordered)), pa.int64())))
        card, merchant = _entity_sql("card", as_known=as_known), _entity_sql("merchant", as_known=as_known)
        names = ", ".join(f.name for f in FEATURES)
        return duck.query(
            f"SELECT p.point_id, {names} FROM points p JOIN ({card}) c USING (point_id) "
            f"JOIN ({merchant}) m USING (point_id) ORDER BY p.ord"
        )
