"""Every served feature vector, logged, and recomputed offline: parity on live traffic.

:class:`ServedLog` keeps what each ``POST /score`` served — the transaction's card, merchant and time, the
36 feature values, the score and model version, and the **consumer offsets the online state was built
to** (read in the same atomic read as the two entities: :meth:`OnlineStore.snapshot`) — and writes it to
Parquet files under ``[features] served_log`` every ``served_flush_s`` seconds, off the request path.

:func:`served_parity` recomputes each logged vector in the batch backfill from the payments topic itself,
as known at serving: a payment was in the state a vector was served from exactly when its offset is below
the offsets logged with it. The stream job commits in order, so the logged offset maps form a chain; a
payment's arrival is the first map that includes it, which turns the backfill's as-known mode (one
arrival order) into an exact recomputation. The as-happened backfill (every payment before t) shows the
freshness skew: vectors served before the stream job had the payments just before them.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dotjoin.config import Settings
from dotjoin.exceptions import DataError
from dotjoin.pipelines.features.backfill import PAYMENTS_SCHEMA, POINTS_SCHEMA, backfill, distinct_rows
from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.parity import differences
from dotjoin.pipelines.payments.contract import TOPIC_PAYMENTS, ContractError, Payment, parse_payment
from dotjoin.platform.bus import open_bus

logger = logging.getLogger(__name__)

SERVED_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("card_id", pa.string()),
        ("merchant_id", pa.string()),
        ("time_ms", pa.int64()),
        ("served_at_ms", pa.int64()),
        ("model_version", pa.string()),
        ("score", pa.float64()),
        ("offsets", pa.string()),  # JSON: topic:partition -> next offset, as the state was built to
        *[(f.name, pa.float64()) for f in FEATURES],
    ]
)


class ServedLog:
    """Served vectors buffered in memory and written as Parquet files by a background thread."""

    def __init__(self, directory: Path, *, flush_s: float = 2.0) -> None:
        self.directory = directory
        self.flush_s = flush_s
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._files = 0
        self._thread = threading.Thread(target=self._run, name="served-log", daemon=True)
        self._thread.start()

    def record(
        self,
        *,
        event_id: str,
        card_id: str,
        merchant_id: str,
        time_ms: int,
        model_version: str,
        score: float,
        offsets: dict[str, int],
        values: dict[str, float | int | None],
    ) -> None:
        now = int(time.time() * 1000)
        row = (event_id, card_id, merchant_id, time_ms, now, model_version, score, offsets, *values.values())
        with self._lock:
            self._rows.append(row)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except OSError as exc:  # a full disk must not take scoring down; the rows stay buffered
                logger.error("served-feature log: cannot write to %s: %s", self.directory, exc)

    def flush(self) -> Path | None:
        """Write what is buffered to a new file (none when nothing is); returns its path."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return None
        columns = [list(c) for c in zip(*rows, strict=True)]
        columns[7] = [json.dumps(o, sort_keys=True) for o in columns[7]]
        table = pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SERVED_SCHEMA, strict=True)],
            schema=SERVED_SCHEMA,
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files += 1
        path = self.directory / f"served-{rows[0][4]}-{os.getpid()}-{self._files:06d}.parquet"
        partial = path.with_name(path.name + ".partial")
        try:
            pq.write_table(table, partial)
        except OSError:
            with self._lock:
                self._rows[:0] = rows
            raise
        partial.replace(path)  # readers never see half a file
        return path

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()


def read_served(directory: Path) -> pa.Table:
    """Every logged vector under ``directory``, in serving order."""
    files = sorted(directory.glob("served-*.parquet"))
    if not files:
        raise DataError(f"{directory}: no served-feature logs yet (POST /score writes them)")
    table = pa.concat_tables(pq.read_table(f, schema=SERVED_SCHEMA) for f in files)
    return table.sort_by([("served_at_ms", "ascending")])


@dataclass
class ServedParity:
    """Counts reconcile: vectors = agreeing + mismatched; payments = used + duplicates + quarantined."""

    vectors: int = 0
    agreeing: int = 0  # served = recomputed as known at serving
    mismatched: int = 0  # served != recomputed: a bug in one of the two computations
    stale: int = 0  # served != as happened: the stream job had not yet applied a payment before t
    payments: int = 0  # messages read back from the topic
    duplicates: int = 0
    quarantined: int = 0
    states: int = 0  # distinct online states (offset maps) the vectors were served from
    max_decay_relative_diff: float = 0.0
    examples: list[str] = field(default_factory=list)


def _topic_payments(
    settings: Settings, topic: str, idle_s: float
) -> Iterator[tuple[str, int, Payment | None]]:
    """Every message of ``topic`` from the start, as ``(topic:partition, offset, payment or None)``."""
    with open_bus(settings).consumer(f"dotjoin-served-parity-{uuid.uuid4().hex}", [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            messages = consumer.consume(5_000, timeout=0.5)
            if messages:
                last = time.monotonic()
            for m in messages:
                try:
                    payment: Payment | None = parse_payment(m.value)
                except ContractError:
                    payment = None
                yield f"{m.topic}:{m.partition}", m.offset, payment


def served_parity(
    settings: Settings,
    served: pa.Table,
    usd_rates: dict[str, float],
    *,
    topic: str = TOPIC_PAYMENTS,
    idle_s: float = 2.0,
    examples: int = 5,
) -> ServedParity:
    """Recompute every vector of ``served`` from ``topic`` as known at serving, and compare."""
    report = ServedParity(vectors=served.num_rows)
    logged = served.column("offsets").to_pylist()
    chain = sorted({o for o in logged}, key=lambda o: sum(json.loads(o).values()))
    report.states = len(chain)
    maps = [json.loads(o) for o in chain]
    rank = {o: n for n, o in enumerate(chain, start=1)}
    streams = {s for m in maps for s in m}
    for earlier, later in itertools.pairwise(maps):
        if any(earlier.get(s, 0) > later.get(s, 0) for s in streams):
            raise DataError(
                f"served offsets are not a chain ({earlier} then {later}): one stream job per store"
            )
    by_stream = {s: [m.get(s, 0) for m in maps] for s in streams}
    # a payment's arrival: 2r - 1 for the first state r that holds it (never held: after every state);
    # a vector's: 2r for its state r — so it sees exactly the payments with arrival below its own
    arrivals: list[int] = []
    payments: list[Payment] = []
    for stream, offset, payment in _topic_payments(settings, topic, idle_s):
        report.payments += 1
        if payment is None:
            report.quarantined += 1
            continue
        held = by_stream.get(stream)  # per state, the next offset: the first above this one holds it
        first = bisect.bisect_right(held, offset) if held is not None else len(maps)
        arrivals.append(2 * (first + 1) - 1)
        payments.append(payment)
    order = sorted(range(len(payments)), key=arrivals.__getitem__)  # the first arrival of a duplicate counts
    ids, rows, report.duplicates = distinct_rows((payments[n] for n in order), usd_rates)
    first_arrival: dict[str, int] = {}
    for n in order:
        first_arrival.setdefault(payments[n].event_id, arrivals[n])
    known_payments = _payments_table(rows, [first_arrival[i] for i in ids])
    points = pa.Table.from_arrays(
        [pa.array([str(n) for n in range(served.num_rows)], pa.string()), served.column("card_id"),
         served.column("merchant_id"), served.column("time_ms"),
         pa.array([2 * rank[o] for o in logged], pa.int64())],
        schema=pa.schema([*POINTS_SCHEMA, pa.field("arrival", pa.int64())]),
    )  # fmt: skip
    known = backfill(known_payments, points).to_pylist()
    happened = backfill(
        known_payments.drop_columns(["arrival"]), points.drop_columns(["arrival"])
    ).to_pylist()
    vectors = served.select([f.name for f in FEATURES]).to_pylist()
    for n, (mine, truth, after_all) in enumerate(zip(vectors, known, happened, strict=True)):
        bad, worst = differences(mine, truth)
        report.max_decay_relative_diff = max(report.max_decay_relative_diff, worst)
        if bad:
            report.mismatched += 1
            if len(report.examples) < examples:
                row = served.slice(n, 1).to_pylist()[0]
                report.examples.append(
                    f"event {row['event_id']} served at {row['served_at_ms']}: {'; '.join(bad[:3])}"
                )
        else:
            report.agreeing += 1
        report.stale += bool(differences(mine, after_all)[0])
    return report


def _payments_table(rows: list[tuple[str, str, int, int]], arrivals: list[int]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, PAYMENTS_SCHEMA, strict=True)]
    return pa.Table.from_arrays(
        [*arrays, pa.array(arrivals, pa.int64())],
        schema=pa.schema([*PAYMENTS_SCHEMA, pa.field("arrival", pa.int64())]),
    )
