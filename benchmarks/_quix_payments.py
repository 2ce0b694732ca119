"""The payments benchmark's peer on Quix Streams: the velocity and amount-spike rules as a Quix app.

Run by ``benchmarks/payments_stream.py`` with ``.venv-quix/bin/python`` (``make quix``); it never
imports dotjoin (Quix Streams pins confluent-kafka < 2.13 and an older pydantic, so it lives in its own
virtualenv). It computes, per card (the topic's key), what the detector's two rules of
``src/dotjoin/pipelines/payments/rules.yaml`` need, with the same semantics as ``features.py`` and
``detector.py``:

* **parse** (``apply``): the JSON value, with the checks that reject the simulator's malformed messages
  (bad JSON, a missing field, a negative or non-numeric amount); the amount in US dollars; the
  message's Kafka timestamp (CreateTime: when the producer sent it) is kept for the latency;
* **card state** (``apply(stateful=True)``, Quix's ``State``): the detector's event-time clock per card
  (an event more than 120 s behind the card's newest is late and dropped; an event id seen within the
  horizon is a duplicate and dropped) and Welford's running mean / variance of ``log1p(amount in USD)``:
  ``amount_ratio`` (amount against the card's typical one), ``amount_z`` and the category ratio
  (amount against its merchant category's typical one, learned at training time). **amount_spike**
  alerts when ``category_ratio >= 8 and amount_ratio >= 5``;
* **card_testing_velocity** (``sliding_window`` on event time, Quix's windowing): the small payments
  (<= 5 USD) of the card in the last 10 minutes, counted in a sliding window of 599,999 ms (Quix's
  windows include both ends: [t - 599,999, t] is the detector's (t - 10 min, t]); it alerts when the
  payment itself is small and online and the window holds ``>= 4`` small payments before it. Only the
  window that ends at the current message is read (``Latest()`` is the message itself, checked by its
  offset): the later windows an out-of-order message updates are other messages' windows.

Thresholds and reference data come from ``--reference`` (JSON written by the harness from the rules,
the merchants table, the exchange rates and the trained category typicals). Alerts (JSON, one per rule
that fired) go to ``--alerts`` with ``sent_ms`` (the source message's timestamp) and ``alerted_ms``
(wall clock when the alert is handed to Quix's producer). Progress goes to stdout as JSON lines
(``{"t": <epoch s>, "processed": <messages>}``) at most every 0.05 s and when ``--expect`` messages have
been processed, after which the app stops (or on SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime
from typing import Any

import orjson
from quixstreams import Application, State, message_context
from quixstreams.dataframe.windows import Count, Latest

FIELDS = frozenset(
    {"event_id", "event_time", "schema_version", "card_id", "customer_id", "merchant_id", "amount",
     "currency", "channel", "device_id", "latitude", "longitude", "country"}
)  # fmt: skip
LATENESS_MS = 120_000  # the detector's DEFAULT_LATENESS_MS
WINDOW_MS = 600_000 - 1  # 10 minutes, both ends included
MAX_AMOUNT = 1e12
_SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds (the stream repeats them)


def event_ms(text: object) -> int | None:
    """Epoch milliseconds of ``YYYY-MM-DDTHH:MM:SS.mmmZ``; None if it is not that."""
    if type(text) is not str or len(text) != 24 or text[19] != "." or text[23] != "Z":
        return None
    head, millis = text[:19], text[20:23]
    seconds = _SECONDS.get(head)
    if seconds is None:
        try:
            seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
        except ValueError:
            return None
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        _SECONDS[head] = seconds
    return seconds * 1000 + int(millis) if millis.isdigit() else None


class Job:
    """The app's steps over the reference data and the rules' thresholds (``--reference``)."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.usd_rates: dict[str, float] = reference["usd_rates"]
        self.category_of: dict[str, str] = reference["merchant_category"]
        self.category_usd: dict[str, float] = reference["category_usd"]
        rules = reference["rules"]
        self.small_usd = float(rules["small_usd"])  # what counts in the velocity window
        self.velocity_count = int(rules["velocity_small_count_10m"])
        self.velocity_amount = float(rules["velocity_amount"])
        self.spike_category = float(rules["spike_category_ratio"])
        self.spike_amount = float(rules["spike_amount_ratio"])

    def parse(self, value: bytes, key: bytes, timestamp: int, headers: Any) -> dict[str, Any] | None:
        """A payment's fields the rules need, or None for a message that breaks the contract."""
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if type(obj) is not dict or obj.keys() != FIELDS:
            return None
        amount, t = obj["amount"], event_ms(obj["event_time"])
        if type(amount) not in (int, float) or not 0 < amount < MAX_AMOUNT or t is None:
            return None
        usd = amount / self.usd_rates.get(obj["currency"], 1.0)
        return {
            "id": obj["event_id"], "t": t, "usd": usd, "ecom": obj["channel"] == "ecom",
            "category": self.category_of.get(obj["merchant_id"], "unknown"), "sent_ms": timestamp,
            "offset": message_context().offset,
        }  # fmt: skip

    def card(self, v: dict[str, Any], state: State) -> dict[str, Any] | None:
        """The card's clock (late, duplicate) and amount statistics; None for a dropped event."""
        t = v["t"]
        max_ms, ids = state.get("clock") or (t, {})
        if t < max_ms - LATENESS_MS or v["id"] in ids:
            return None  # late (its windows have closed) or a duplicate
        ids[v["id"]] = t
        if t > max_ms:
            max_ms = t
            if len(ids) > 8:
                ids = {e: ts for e, ts in ids.items() if ts >= t - 2 * LATENESS_MS}
        state.set("clock", (max_ms, ids))
        n, mean, m2 = state.get("amounts") or (0, 0.0, 0.0)
        log_amount = math.log1p(v["usd"])
        if n >= 2:
            z = (log_amount - mean) / max(math.sqrt(m2 / (n - 1)), 0.25)
            ratio = v["usd"] / math.expm1(mean) if mean > 0 else 1.0
        else:
            z, ratio = 0.0, 1.0
        n += 1
        delta = log_amount - mean
        mean += delta / n
        state.set("amounts", (n, mean, m2 + delta * (log_amount - mean)))
        typical = self.category_usd.get(v["category"])
        category_ratio = v["usd"] / typical if typical else 1.0
        v["z"], v["amount_ratio"], v["category_ratio"] = z, ratio, category_ratio
        v["spike"] = category_ratio >= self.spike_category and ratio >= self.spike_amount
        return v

    def is_velocity(self, window: dict[str, Any]) -> bool:
        """The window ending at this message, which is small and online, holds enough small ones."""
        last = window["last"]
        return (
            last["offset"] == message_context().offset
            and last["ecom"]
            and last["usd"] <= self.velocity_amount
            and window["count"] - 1 >= self.velocity_count
        )


def alert(rule: str, v: dict[str, Any], **detail: Any) -> dict[str, Any]:
    return {"event_id": v["id"], "rule": rule, "event_time_ms": v["t"], "sent_ms": v["sent_ms"],
            "alerted_ms": time.time() * 1000, **detail}  # fmt: skip


class Progress:
    """``on_message_processed``: counts messages, prints JSON lines, stops the app at ``expect``."""

    def __init__(self, expect: int) -> None:
        self.expect, self.processed, self.last = expect, 0, 0.0
        self.app: Application | None = None

    def __call__(self, topic: str, partition: int, offset: int) -> None:
        self.processed += 1
        now = time.time()
        done = self.expect and self.processed >= self.expect
        if done or now - self.last >= 0.05:
            self.last = now
            print(json.dumps({"t": now, "processed": self.processed}), flush=True)
            if done and self.app is not None:
                self.app.stop()


def build(args: argparse.Namespace, job: Job, progress: Progress) -> Application:
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
        on_message_processed=progress,
    )
    payments = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    alerts = app.topic(args.alerts, value_serializer="json", key_serializer="bytes")
    sdf = app.dataframe(payments)
    sdf = sdf.apply(job.parse, metadata=True).filter(lambda v: v is not None)
    sdf = sdf.apply(job.card, stateful=True).filter(lambda v: v is not None)
    sdf = sdf.set_timestamp(lambda v, key, ts, headers: v["t"])  # windows on event time
    # Branch 1: amount_spike, decided by the card step.
    spikes = sdf.filter(lambda v: v["spike"])
    spikes.apply(lambda v: alert("amount_spike", v, amount_ratio=v["amount_ratio"], z=v["z"])).to_topic(
        alerts
    )
    # Branch 2: card_testing_velocity over a sliding window of the card's small payments.
    small = sdf.filter(lambda v: v["usd"] <= job.small_usd)
    windows = small.sliding_window(WINDOW_MS, grace_ms=LATENESS_MS, on_late=lambda *a, **k: False)
    velocity = windows.agg(count=Count(), last=Latest()).current().filter(job.is_velocity)
    velocity.apply(lambda w: alert("card_testing_velocity", w["last"], small_10m=w["count"] - 1)).to_topic(
        alerts
    )
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--broker", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--alerts", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--reference", required=True, help="JSON: rates, merchants, categories, rules")
    parser.add_argument("--expect", type=int, default=0, help="stop after this many messages (0: never)")
    parser.add_argument("--commit-interval", type=float, default=2.0)
    args = parser.parse_args()
    with open(args.reference, encoding="utf-8") as fh:
        job = Job(json.load(fh))
    progress = Progress(args.expect)
    app = build(args, job, progress)
    progress.app = app
    app.run()
    print(json.dumps({"t": time.time(), "processed": progress.processed, "done": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
