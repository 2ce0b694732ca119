"""``dotjoin features stream``: the payments topic → every card's and merchant's state in the online store.

The embedded runtime; :mod:`.spark_stream` is the same job on Spark Structured Streaming. Each batch of
messages is parsed as the live consumer parses it (a contract violation is counted as quarantined and
logged with its ``topic:partition:offset``), de-duplicated by ``event_id`` against each entity's recent
ids, added to the entities' histories, and written back with the consumer offsets in one
atomic ``put_many``; Kafka offsets are committed after it. A batch re-delivered after a crash is at or
below the stored offsets and skipped, so the state counts every payment once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dotjoin.config import Settings
from dotjoin.pipelines.features.definitions import Entity, usd_cents
from dotjoin.pipelines.features.online import EntityHistory
from dotjoin.pipelines.features.store import OnlineStore
from dotjoin.pipelines.payments.contract import TOPIC_PAYMENTS, ContractError, Payment, parse_payment
from dotjoin.platform.bus import open_bus
from dotjoin.platform.kv import open_kv
from dotjoin.platform.runs.report import Run, start_run

logger = logging.getLogger(__name__)
NAMESPACE = "features"


def run_stream(
    settings: Settings,
    *,
    usd_rates: dict[str, float],
    topic: str = TOPIC_PAYMENTS,
    group: str = "dotjoin-features",
    batch_size: int = 5_000,
    idle_exit: float | None = 10.0,
    max_seconds: float | None = None,
    namespace: str = NAMESPACE,
) -> Any:
    """Consume ``topic`` into the online store (its keys under ``namespace``) until it is idle ``idle_exit``
    seconds (None: forever) or ``max_seconds`` passed; the run report reconciles every message."""
    params = {"topic": topic, "group": group, "batch_size": batch_size, "namespace": namespace}
    with (
        start_run("features_stream", settings, params=params) as run,
        open_kv(settings, namespace) as kv,
        open_bus(settings).consumer(group, [topic]) as consumer,
    ):
        store = OnlineStore(kv)
        started = last = time.monotonic()
        while max_seconds is None or time.monotonic() - started < max_seconds:
            messages = consumer.consume(batch_size, timeout=1.0)
            if not messages:
                if idle_exit is not None and time.monotonic() - last >= idle_exit:
                    break
                continue
            last = time.monotonic()
            _apply(run, store, messages, usd_rates)
            consumer.commit(messages)  # after the store's write: a crash in between re-delivers, skipped
        run.check_accounting()
        run.metric("seconds", time.monotonic() - started)
        run.input(f"topic:{topic}")
        run.output("online store", rows=run.report.counts.get("output", 0), dataset=f"kv:{namespace}")
    return run.report


def _apply(run: Run, store: OnlineStore, messages: list[Any], usd_rates: dict[str, float]) -> None:
    applied = store.offsets()
    fresh: list[Payment] = []
    redelivered = quarantined = 0
    for m in messages:
        if m.offset < applied.get(f"{m.topic}:{m.partition}", 0):
            redelivered += 1
            continue
        try:
            fresh.append(parse_payment(m.value))
        except ContractError as exc:
            quarantined += 1
            if quarantined <= 3:  # the first few name their place; the run report counts them all
                logger.warning("features: %s:%s:%s: %s", m.topic, m.partition, m.offset, exc)
    keys: list[tuple[Entity, str]] = []
    for p in fresh:
        keys += [("card", p.card_id), ("merchant", p.merchant_id)]
    histories: dict[tuple[Entity, str], EntityHistory] = store.histories(keys)
    repeated = 0
    for p in fresh:  # each entity de-duplicates on its own: what Spark, grouping by entity, can do too
        cents = usd_cents(p.amount, p.currency, usd_rates)
        if not histories[("card", p.card_id)].record(p.event_id, p.event_time_ms, cents):
            repeated += 1
        histories[("merchant", p.merchant_id)].record(p.event_id, p.event_time_ms, cents)
    offsets = dict(applied)
    for m in messages:
        stream = f"{m.topic}:{m.partition}"
        offsets[stream] = max(offsets.get(stream, 0), m.offset + 1)
    store.save(histories, offsets)
    run.count(input=len(messages), output=len(fresh) - repeated, duplicates=redelivered + repeated,
              quarantined=quarantined)  # fmt: skip
