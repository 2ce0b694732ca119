"""The payments stream: :func:`generate` gives a :class:`Simulation`, an iterable of :class:`Emitted`
messages in emission order, deterministic for its arguments.

Payment event times are a Poisson process over ``[start, start + duration_s)`` at a mean rate of
``eps``, following the world's daily and weekly rhythm (flat over minutes, visible over hours): the
planned payments of :mod:`.fraud` plus legitimate ones drawn chunk by chunk (vectorised, about 50,000
a chunk). Ids follow event time. A message is emitted at its event time except for the stream's
defects (:class:`Defects`; counted in the manifest; not fraud, though a fraudulent payment can arrive
late or twice like any other): *out-of-order* payments are emitted 1-10 s after their event time,
*late* ones 1.2-5 times the allowed lateness after it (within the run: only payments early enough can
be late), *duplicates* are a payment sent again (same bytes, same ``event_id``) up to 5 s after the
first copy, and *malformed* messages are raw bytes that break the contract (cut-off JSON, a missing
field, ``"amount": "abc"``, a negative amount): extra messages, never labelled.

``eps`` is the rate of distinct payments; duplicates and malformed messages come on top.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import numpy.typing as npt

from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.payments.contract import CHANNELS, TYPOLOGIES, Label
from dotjoin.simulate.payments.fraud import LOOKALIKES, Plan, plan
from dotjoin.simulate.payments.rows import Rows
from dotjoin.simulate.payments.world import (
    Billing,
    World,
    build_world,
    city_rhythm,
    draw_customers,
    legit_rows,
    opaque_ids,
)

DefectKind = Literal[
    "duplicate", "out_of_order", "late", "bad_json", "missing_field", "amount_not_a_number", "negative_amount"
]
DEFECT_KINDS: tuple[DefectKind, ...] = get_args(DefectKind)
MALFORMED_KINDS: tuple[DefectKind, ...] = DEFECT_KINDS[3:]
CHUNK_EVENTS = 50_000
LATE_MIN, LATE_MAX = 1.2, 5.0  # a late message comes this many allowed latenesses after its event time
_MISSABLE = ("event_time", "card_id", "merchant_id", "amount", "currency", "channel")


@dataclass(frozen=True)
class Defects:
    """Rates (per distinct payment) of the stream's defects."""

    duplicate_rate: float = 0.002
    out_of_order_rate: float = 0.005
    late_rate: float = 0.001  # of the payments early enough in the run to arrive late before its end
    malformed_rate: float = 0.001
    allowed_lateness_s: float = 120.0  # late messages come more than this after their event time
    out_of_order_max_s: float = 10.0

    def check(self) -> None:
        for name in ("duplicate_rate", "out_of_order_rate", "late_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 0.2:
                raise ConfigError(f"defects.{name} must be within 0..0.2, not {getattr(self, name)}")
        if not 1.0 < self.out_of_order_max_s < self.allowed_lateness_s:
            raise ConfigError("defects: need 1 < out_of_order_max_s < allowed_lateness_s")


class Emitted(NamedTuple):
    """One message as the simulator sends it."""

    emit_ms: int  # when it is sent, on the simulated clock (epoch ms)
    key: bytes  # the card_id (the payments topic's key)
    value: bytes  # the message value, as sent
    event_id: str  # also for a malformed message (its value may have lost it)
    event_time_ms: int
    label: Label | None  # the ground truth of a fraudulent payment, with its first copy only
    defect: DefectKind | None
    lookalike: str | None  # the fraud.LOOKALIKES kind of a legitimate look-alike (first copy only)


def default_customers(eps: float, fraud_events: float, difficulty: float) -> int:
    """The world's size: a customer pays about once a minute (time is compressed: a real card pays a
    few times a day), so a 10-minute run gives each card a history and a burst of 5 stands out; and
    the fraud plan finds enough victims and look-alikes (some must be at night)."""
    return int(np.clip(max(eps * 60, 8 * (1 + difficulty) * fraud_events), 5_000, 2_000_000))


def to_epoch_ms(start: datetime) -> int:
    """Epoch milliseconds of ``start`` (a naive datetime is taken as UTC)."""
    aware = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


class Simulation:
    """A run: its world and fraud plan (built on construction), and its messages (on iteration)."""

    def __init__(
        self,
        *,
        seed: int,
        eps: float,
        duration_s: float,
        start: datetime,
        fraud_rate: float = 0.01,
        difficulty: float = 0.3,
        defects: Defects | None = None,
        customers: int | None = None,
        billing: Billing = "local",
    ) -> None:
        if eps <= 0 or duration_s <= 0:
            raise ConfigError(f"eps and duration_s must be positive, not {eps} and {duration_s}")
        if not 0.0 <= fraud_rate <= 0.5:
            raise ConfigError(f"fraud_rate must be within 0..0.5, not {fraud_rate}")
        if not 0.0 <= difficulty <= 1.0:
            raise ConfigError(f"difficulty must be within 0..1, not {difficulty}")
        self.defects = defects or Defects()
        self.defects.check()
        self.seed, self.eps, self.duration_s = seed, eps, duration_s
        self.fraud_rate, self.difficulty, self.billing = fraud_rate, difficulty, billing
        self.start_ms = to_epoch_ms(start)
        self.end_ms = self.start_ms + round(duration_s * 1000)
        self.events = round(eps * duration_s)
        self.customers = customers or default_customers(eps, self.events * fraud_rate, difficulty)
        self.world: World = build_world(seed, customers=self.customers, billing=billing)
        self.plan: Plan = plan(
            self.world,
            seed,
            t0=self.start_ms,
            t1=self.end_ms,
            events=self.events,
            fraud_rate=fraud_rate,
            difficulty=difficulty,
        )
        if len(self.plan.rows) > self.events:
            raise ConfigError(
                f"the fraud plan needs {len(self.plan.rows)} payments but the run has {self.events}: "
                "raise eps or duration_s, or lower fraud_rate or difficulty"
            )

    def parameters(self) -> dict[str, Any]:
        """The run's parameters, as the manifest records them."""
        return {
            "eps": self.eps,
            "duration_s": self.duration_s,
            "start": datetime.fromtimestamp(self.start_ms / 1000, UTC).isoformat().replace("+00:00", "Z"),
            "fraud_rate": self.fraud_rate,
            "difficulty": self.difficulty,
            "customers": self.world.customers,
            "cards": len(self.world.card_ids),
            "merchants": len(self.world.merchants),
            "billing": self.billing,
            "defects": asdict(self.defects),
        }

    def __iter__(self) -> Iterator[Emitted]:
        return _Stream(self).messages()


def generate(
    *,
    seed: int,
    eps: float,
    duration_s: float,
    start: datetime,
    fraud_rate: float = 0.01,
    difficulty: float = 0.3,
    defects: Defects | None = None,
    customers: int | None = None,
    billing: Billing = "local",
) -> Simulation:
    """A deterministic payments stream; iterate it for the messages in emission order.

    Args:
        seed: Everything follows from it: the world, the fraud plan, the stream.
        eps: Mean distinct payments per second of event time (duplicates and malformed on top).
        duration_s: Event times span ``[start, start + duration_s)``.
        start: The first event time (naive: UTC).
        fraud_rate: Share of the payments that are fraud (labelled), 0..0.5.
        difficulty: 0..1: shrinks each typology's signal and adds legitimate look-alikes (:mod:`.fraud`).
        defects: Rates of duplicates, out-of-order, late and malformed messages (:class:`Defects`).
        customers: The world's size; by default about ``eps * 60`` (a customer pays about once a minute).
            Runs with the same seed and customers share the world: an earlier ``start`` gives a history.
        billing: ``"local"``: each card bills in its home currency; ``"usd"``: every card in USD.

    Raises:
        ConfigError: A parameter out of range, or a fraud plan the world or the run cannot hold.

    >>> sim = generate(seed=1, eps=200, duration_s=60, start=datetime(2026, 12, 1, 10, tzinfo=UTC))
    >>> messages = list(sim)
    >>> sum(m.label is not None for m in messages) > 0, messages == list(sim)
    (True, True)
    """
    return Simulation(
        seed=seed,
        eps=eps,
        duration_s=duration_s,
        start=start,
        fraud_rate=fraud_rate,
        difficulty=difficulty,
        defects=defects,
        customers=customers,
        billing=billing,
    )


_LINE = (
    b'{"event_id":"%s","event_time":"%s","schema_version":1,"card_id":"%s","customer_id":"%s",'
    b'"merchant_id":"%s","amount":%r,"currency":"%s","channel":"%s","device_id":%s,'
    b'"latitude":%r,"longitude":%r,"country":"%s"}'
)  # Payment.to_json's layout, byte for byte
_CHANNELS = np.array([c.encode() for c in CHANNELS])


class _Stream:
    """One pass over a simulation's messages (the state of an iteration)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.seq = 0
        tag, self.id_salt = (
            np.random.default_rng([sim.seed, sim.start_ms, 4]).integers(0, 1 << 40, 2).tolist()
        )
        self.id_prefix = f"e{tag & 0xFFFFFF:06x}"  # runs of one world (other start times) never share ids
        w = sim.world
        self.currency = w.card_currency.astype("S3")

    def messages(self) -> Iterator[Emitted]:
        sim = self.sim
        rng = np.random.default_rng([sim.seed, 2])
        span = sim.end_ms - sim.start_ms
        chunk_ms = int(np.clip(CHUNK_EVENTS / sim.eps * 1000, 1000, 600_000))
        bounds = [*range(sim.start_ms, sim.end_ms, chunk_ms), sim.end_ms]
        w = sim.world
        people = np.bincount(w.current, weights=w.activity, minlength=len(w.city_lon))
        busy = [float(people @ city_rhythm((a + b) // 2, w.city_lon)) for a, b in itertools.pairwise(bounds)]
        share = np.diff(bounds) / span * np.array(busy)  # the world's daily and weekly rhythm
        counts = rng.multinomial(sim.events - len(sim.plan.rows), share / share.sum()).tolist()
        planned = sim.plan.rows
        cut = np.searchsorted(planned.t, bounds).tolist()
        carry: list[Emitted] = []
        for k, (a, b) in enumerate(itertools.pairwise(bounds)):
            crng = np.random.default_rng([sim.seed, 3, k])
            batch = self._chunk(crng, a, b, counts[k], planned.take(np.arange(cut[k], cut[k + 1])))
            ready = [m for m in carry if m.emit_ms < b]
            carry = [m for m in carry if m.emit_ms >= b]
            for m in batch:
                (ready if m.emit_ms < b else carry).append(m)
            ready.sort(key=itemgetter(0))
            yield from ready
        carry.sort(key=itemgetter(0))
        yield from carry

    def _chunk(self, rng: np.random.Generator, a: int, b: int, n: int, planned: Rows) -> list[Emitted]:
        sim, w, d = self.sim, self.sim.world, self.sim.defects
        bad_n = int(rng.binomial(n, d.malformed_rate)) if n else 0
        t = np.sort(rng.integers(a, b, n + bad_n))
        rows = legit_rows(w, rng, t, customers=draw_customers(w, rng, (a + b) // 2, n + bad_n))
        bad = np.zeros(n + bad_n + len(planned), dtype=bool)
        bad[rng.choice(n + bad_n, bad_n, replace=False)] = True
        rows = Rows.concat([rows, planned])
        order = np.argsort(rows.t, kind="stable")
        rows, bad = rows.take(order), bad[order]
        m = len(rows)
        ids = opaque_ids(self.id_prefix, np.arange(self.seq, self.seq + m, dtype=np.int64), self.id_salt)
        self.seq += m
        emit = rows.t.copy()
        defect = np.full(m, None, dtype=object)
        u = rng.random(m)
        behind = rng.integers(1000, int(d.out_of_order_max_s * 1000) + 1, m)
        ooo = ~bad & (u < d.out_of_order_rate) & (rows.t + behind < sim.end_ms)  # overtaken within the run
        lateness = d.allowed_lateness_s * 1000
        latest = np.minimum(LATE_MAX * lateness, sim.end_ms - rows.t)  # late copies arrive within the run
        late = ~bad & (u >= d.out_of_order_rate) & (u < d.out_of_order_rate + d.late_rate)
        late &= latest > LATE_MIN * lateness
        emit[ooo] += behind[ooo]
        low = LATE_MIN * lateness
        emit[late] += (low + rng.random(int(late.sum())) * (latest[late] - low)).astype(np.int64)
        defect[ooo], defect[late] = "out_of_order", "late"
        values = self._render(rows, ids)
        for i in np.flatnonzero(bad).tolist():
            kind = MALFORMED_KINDS[int(rng.integers(len(MALFORMED_KINDS)))]
            values[i] = _malform(values[i], kind, rng)
            defect[i] = kind
        labels: list[Label | None] = [None] * m
        scenarios = sim.plan.scenarios
        ids_list = ids.astype("U").tolist()
        for i in np.flatnonzero(rows.typ >= 0).tolist():
            labels[i] = Label(ids_list[i], TYPOLOGIES[rows.typ[i]], scenarios[rows.scen[i]].scenario_id)
        looks: list[str | None] = [None] * m
        for i in np.flatnonzero(rows.look >= 0).tolist():
            looks[i] = LOOKALIKES[rows.look[i]]
        keys = w.card_ids[rows.card].tolist()
        columns = (emit.tolist(), keys, values, ids_list, rows.t.tolist(), labels, defect.tolist(), looks)
        out = list(map(Emitted._make, zip(*columns, strict=True)))
        dup = ~bad & (rng.random(m) < d.duplicate_rate)
        delays = rng.integers(50, 5000, int(dup.sum())).tolist()
        for i, delay in zip(np.flatnonzero(dup).tolist(), delays, strict=True):
            e = out[i]
            out.append(e._replace(emit_ms=e.emit_ms + delay, label=None, defect="duplicate", lookalike=None))
        return out

    def _render(self, rows: Rows, ids: npt.NDArray[np.bytes_]) -> list[bytes]:
        w = self.sim.world
        times = np.datetime_as_string(rows.t.astype("datetime64[ms]"), unit="ms", timezone="UTC")
        columns = (
            ids.tolist(),
            times.astype("S24").tolist(),
            w.card_ids[rows.card].tolist(),
            w.customer_ids[w.card_customer[rows.card]].tolist(),
            w.m_ids[rows.merchant].tolist(),
            rows.amount.tolist(),
            self.currency[rows.card].tolist(),
            _CHANNELS[rows.channel].tolist(),
            rows.device.tolist(),
            rows.lat.tolist(),
            rows.lon.tolist(),
            rows.country.tolist(),
        )
        return [_LINE % values for values in zip(*columns, strict=True)]


def _malform(value: bytes, kind: DefectKind, rng: np.random.Generator) -> bytes:
    """``value`` broken the ``kind`` way."""
    if kind == "bad_json":
        return value[: int(rng.integers(1, len(value) - 1))]
    obj = json.loads(value)
    if kind == "missing_field":
        del obj[_MISSABLE[int(rng.integers(len(_MISSABLE)))]]
    elif kind == "amount_not_a_number":
        obj["amount"] = "abc"
    else:
        obj["amount"] = -obj["amount"]
    return json.dumps(obj, separators=(",", ":")).encode()
