"""Where a simulation goes: a recorded log in a directory, or the bus; and its ground-truth manifest.

A recorded log (:func:`write_log`)::

    events.jsonl    one message value per line, in emission order (malformed ones as sent)
    labels.jsonl    one payment_label.v1 per fraudulent payment, in emission order
    merchants.csv   the merchants reference table (contract.MERCHANT_COLUMNS)
    manifest.json   seed, parameters, counts per typology and per defect, event ids per typology and
                    per defect, the scenarios (:class:`PaymentsManifest`)

On the bus (:func:`produce`): ``payments`` keyed by card_id, labels on ``payments.labels`` (same key),
paced to ``eps`` payments a second on the wall clock, or as fast as the bus takes them with ``eps=0``.
"""

from __future__ import annotations

import csv
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.payments.contract import MERCHANT_COLUMNS, TOPIC_LABELS, TOPIC_PAYMENTS, TYPOLOGIES
from dotjoin.platform.bus.base import Producer
from dotjoin.simulate.payments.fraud import LOOKALIKES
from dotjoin.simulate.payments.geo import CURRENCIES
from dotjoin.simulate.payments.stream import DEFECT_KINDS, MALFORMED_KINDS, Emitted, Simulation

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
LABELS_FILE = "labels.jsonl"
MERCHANTS_FILE = "merchants.csv"
FX_FILE = "fx_rates.csv"  # currency,units_per_usd: the detector normalises amounts with it
MANIFEST_FILE = "manifest.json"
_WRITE_BATCH = 4096


class ScenarioTruth(BaseModel):
    scenario_id: str
    typology: str
    events: int
    cards: list[str]
    merchants: list[str]
    start: str  # first and last event time of its fraudulent payments (RFC 3339)
    end: str


class Counts(BaseModel):
    messages: int = 0  # everything sent: payments, duplicates, malformed
    events: int = 0  # distinct payments that meet the contract
    legitimate: int = 0
    fraud: int = 0
    by_typology: dict[str, int] = Field(default_factory=dict)
    scenarios_by_typology: dict[str, int] = Field(default_factory=dict)
    defects: dict[str, int] = Field(default_factory=dict)  # per kind of DEFECT_KINDS
    malformed: int = 0  # all malformed kinds together
    lookalikes: dict[str, int] = Field(default_factory=dict)  # legitimate payments imitating a typology


class PaymentsManifest(BaseModel):
    generator: str = "dotjoin.simulate.payments"
    contract: dict[str, int] = Field(default_factory=lambda: {"payment_event": 1, "payment_label": 1})
    seed: int
    parameters: dict[str, Any]
    counts: Counts
    fraud_share: float  # fraud / events
    event_ids: dict[str, list[str]]  # per typology
    defect_event_ids: dict[str, list[str]]  # per defect kind (a malformed message's intended id)
    lookalike_event_ids: dict[str, list[str]]  # legitimate payments imitating a typology, per kind
    scenarios: list[ScenarioTruth]

    @classmethod
    def read(cls, directory: Path) -> PaymentsManifest:
        return cls.model_validate_json((directory / MANIFEST_FILE).read_text(encoding="utf-8"))


class Tally:
    """Counts what was actually emitted, message by message."""

    def __init__(self) -> None:
        self.messages = 0
        self.events = 0
        self.defects: Counter[str] = Counter()
        self.event_ids: defaultdict[str, list[str]] = defaultdict(list)
        self.defect_ids: defaultdict[str, list[str]] = defaultdict(list)
        self.lookalike_ids: defaultdict[str, list[str]] = defaultdict(list)

    def add(self, m: Emitted) -> None:
        self.messages += 1
        if m.defect is not None:
            self.defects[m.defect] += 1
            self.defect_ids[m.defect].append(m.event_id)
        if m.defect is None or m.defect == "out_of_order" or m.defect == "late":
            self.events += 1
        if m.label is not None:
            self.event_ids[m.label.typology].append(m.event_id)
        elif m.lookalike is not None:
            self.lookalike_ids[m.lookalike].append(m.event_id)

    def manifest(self, sim: Simulation) -> PaymentsManifest:
        by_typology: dict[str, int] = {t: len(self.event_ids.get(t, [])) for t in TYPOLOGIES}
        fraud = sum(by_typology.values())
        scenarios = sim.plan.scenarios
        counts = Counts(
            messages=self.messages,
            events=self.events,
            legitimate=self.events - fraud,
            fraud=fraud,
            by_typology=by_typology,
            scenarios_by_typology={t: sum(s.typology == t for s in scenarios) for t in TYPOLOGIES},
            defects={k: self.defects.get(k, 0) for k in DEFECT_KINDS},
            malformed=sum(self.defects.get(k, 0) for k in MALFORMED_KINDS),
            lookalikes={k: len(self.lookalike_ids.get(k, [])) for k in LOOKALIKES},
        )
        return PaymentsManifest(
            seed=sim.seed,
            parameters=sim.parameters(),
            counts=counts,
            fraud_share=fraud / self.events if self.events else 0.0,
            event_ids={t: self.event_ids.get(t, []) for t in TYPOLOGIES},
            defect_event_ids={k: self.defect_ids.get(k, []) for k in DEFECT_KINDS},
            lookalike_event_ids={k: self.lookalike_ids.get(k, []) for k in LOOKALIKES},
            scenarios=[
                ScenarioTruth(
                    scenario_id=s.scenario_id,
                    typology=s.typology,
                    events=s.events,
                    cards=s.cards,
                    merchants=s.merchants,
                    start=_iso(s.start_ms),
                    end=_iso(s.end_ms),
                )
                for s in scenarios
            ],
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_merchants(sim: Simulation, path: Path) -> Path:
    """The merchants reference table as CSV (columns: ``contract.MERCHANT_COLUMNS``)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MERCHANT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(m.to_row() for m in sim.world.merchants)
    return path


def write_fx_rates(path: Path) -> Path:
    """The simulator's fixed exchange rates as CSV (``currency,units_per_usd``)."""
    lines = ["currency,units_per_usd", *(f"{c},{rate!r}" for c, (rate, _) in sorted(CURRENCIES.items()))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_log(sim: Simulation, directory: Path) -> PaymentsManifest:
    """Record the whole stream in ``directory`` (see the module docstring); ``manifest.json`` comes last."""
    directory.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    events: list[bytes] = []
    labels: list[bytes] = []
    with (directory / EVENTS_FILE).open("wb") as ev, (directory / LABELS_FILE).open("wb") as lab:
        for m in sim:
            tally.add(m)
            events.append(m.value)
            if m.label is not None:
                labels.append(m.label.to_json())
            if len(events) >= _WRITE_BATCH:
                ev.write(b"\n".join(events) + b"\n")
                events.clear()
                if labels:
                    lab.write(b"\n".join(labels) + b"\n")
                    labels.clear()
        if events:
            ev.write(b"\n".join(events) + b"\n")
        if labels:
            lab.write(b"\n".join(labels) + b"\n")
    write_merchants(sim, directory / MERCHANTS_FILE)
    write_fx_rates(directory / FX_FILE)
    manifest = tally.manifest(sim)
    part = directory / (MANIFEST_FILE + ".part")
    part.write_text(manifest.model_dump_json(), encoding="utf-8")
    part.replace(directory / MANIFEST_FILE)
    logger.info("recorded %d messages (%d payments) in %s", tally.messages, tally.events, directory)
    return manifest


def produce(
    sim: Simulation,
    producer: Producer,
    *,
    eps: float | None = None,
    flush_interval_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PaymentsManifest:
    """Send the stream: payments to ``payments`` keyed by card_id, labels to ``payments.labels``.

    Args:
        sim: The simulation.
        producer: A bus producer (:meth:`dotjoin.platform.bus.base.Bus.producer`); flushed at the end.
        eps: Payments a second on the wall clock; the stream's own rate when None (real time), as fast
            as possible when 0. Paced sends keep the simulated emission times' rhythm (bursts, defects).
        flush_interval_s: While paced, flush this often, so consumers see messages promptly.
    """
    rate = sim.eps if eps is None else eps
    if rate < 0:
        raise ConfigError(f"eps must be >= 0, not {rate}")
    speed = rate / sim.eps if rate else 0.0
    tally = Tally()
    wall0 = clock()
    first: int | None = None
    next_flush = wall0 + flush_interval_s
    for m in sim:
        if speed:
            first = m.emit_ms if first is None else first
            now = clock()
            if now >= next_flush:
                producer.flush()
                next_flush = now + flush_interval_s
            ahead = wall0 + (m.emit_ms - first) / 1000 / speed - now
            if ahead > 0.002:
                sleep(ahead)
        producer.produce(TOPIC_PAYMENTS, m.value, key=m.key)
        if m.label is not None:
            producer.produce(TOPIC_LABELS, m.label.to_json(), key=m.key)
        tally.add(m)
    producer.flush()
    return tally.manifest(sim)
