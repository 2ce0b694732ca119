"""The payments simulator: deterministic, its manifest counts what its files hold, every typology leaves
its signal, the stream defects are what they claim, and it reaches the bus.

The checks recompute what they assert from the recorded files (own haversine, own solar hour, own
counting); the simulator's world is read only for what no file carries (a card's typical amount, a
customer's devices and home).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.payments.contract import (
    PAYMENT_FIELDS,
    TOPIC_LABELS,
    TOPIC_PAYMENTS,
    TYPOLOGIES,
    ContractError,
    Label,
    Payment,
    parse_label,
    parse_payment,
)
from dotjoin.platform.bus.base import Producer
from dotjoin.platform.bus.embedded import EmbeddedBus
from dotjoin.simulate.payments import Defects, PaymentsManifest, Simulation, generate, produce, write_log
from dotjoin.simulate.payments.fraud import LOOKALIKES, Signal
from dotjoin.simulate.payments.geo import CITIES, round_unit, to_usd
from dotjoin.simulate.payments.stream import MALFORMED_KINDS

START = datetime(2026, 12, 1, 10, tzinfo=UTC)  # a Tuesday: night in the Americas, day in Asia
MINUTE = 60_000


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def solar(ms: int, lon: float) -> float:
    return (ms / 3_600_000 + lon / 15.0) % 24


@dataclass
class Log:
    """A recorded log, read back independently of the simulator."""

    sim: Simulation
    directory: Path
    manifest: PaymentsManifest
    lines: list[bytes]
    first: dict[str, Payment] = field(default_factory=dict)  # event_id -> the payment (first copy)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (line, event_id)
    rejected: list[tuple[int, ContractError]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    merchants: dict[str, dict[str, str]] = field(default_factory=dict)
    lag_ms: dict[str, int] = field(default_factory=dict)  # first copy: max event time seen before - its own

    def fraud(self, typology: str) -> list[Payment]:
        return [self.first[x.event_id] for x in self.labels if x.typology == typology]

    def by_scenario(self, typology: str) -> dict[str, list[Payment]]:
        out: defaultdict[str, list[Payment]] = defaultdict(list)
        for x in self.labels:
            if x.typology == typology:
                out[x.scenario_id].append(self.first[x.event_id])
        return {k: sorted(v, key=lambda p: p.event_time_ms) for k, v in out.items()}

    def card_history(self) -> dict[str, list[Payment]]:
        out: defaultdict[str, list[Payment]] = defaultdict(list)
        for p in self.first.values():
            out[p.card_id].append(p)
        return {k: sorted(v, key=lambda p: p.event_time_ms) for k, v in out.items()}

    def card(self, card_id: str) -> int:
        return self._cards[card_id]

    def typical(self, card_id: str) -> float:
        return float(self.sim.world.typical[self.card(card_id)])

    def own_devices(self, card_id: str) -> set[str]:
        w = self.sim.world
        c = int(w.card_customer[self.card(card_id)])
        start, count = int(w.device_start[c]), int(w.device_count[c])
        return {d.decode().strip('"') for d in w.device_frag[start : start + count].tolist()}

    def __post_init__(self) -> None:
        self._cards = {c.decode(): i for i, c in enumerate(self.sim.world.card_ids.tolist())}


def record(directory: Path, **kw: Any) -> Log:
    sim = generate(start=START, **kw)
    manifest = write_log(sim, directory)
    lines = (directory / "events.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    log = Log(sim, directory, manifest, lines[:-1])
    newest = -(2**62)
    for number, line in enumerate(log.lines):
        try:
            p = parse_payment(line)
        except ContractError as exc:
            log.rejected.append((number, exc))
            continue
        if p.event_id in log.first:
            assert log.first[p.event_id].to_json() == line, "a duplicate is the same message"
            log.duplicates.append((number, p.event_id))
            continue
        log.first[p.event_id] = p
        log.lag_ms[p.event_id] = max(0, newest - p.event_time_ms)
        newest = max(newest, p.event_time_ms)
    log.labels = [parse_label(x) for x in (directory / "labels.jsonl").read_bytes().splitlines()]
    with (directory / "merchants.csv").open(encoding="utf-8", newline="") as fh:
        log.merchants = {row["merchant_id"]: row for row in csv.DictReader(fh)}
    return log


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Log:
    """The default difficulty (0.3): signals shrunk a little, look-alikes present."""
    return record(tmp_path_factory.mktemp("payments-run"), seed=11, eps=1000, duration_s=180)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Log:
    """Difficulty 0: the typologies' signals exactly as documented."""
    return record(tmp_path_factory.mktemp("payments-plain"), seed=12, eps=500, duration_s=180, difficulty=0.0)


def _bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_deterministic_per_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_log(generate(seed=seed, eps=300, duration_s=30, start=START), tmp_path / name)
    a, b, c = _bytes(tmp_path / "a"), _bytes(tmp_path / "b"), _bytes(tmp_path / "c")
    assert a == b
    assert set(a) == {"events.jsonl", "labels.jsonl", "merchants.csv", "fx_rates.csv", "manifest.json"}
    assert a["events.jsonl"] != c["events.jsonl"] and a["labels.jsonl"] != c["labels.jsonl"]


@pytest.mark.parametrize("log", ["run", "plain"])
def test_manifest_counts_equal_what_the_files_hold(log: str, request: pytest.FixtureRequest) -> None:
    r: Log = request.getfixturevalue(log)
    m = r.manifest
    c = m.counts
    assert c.messages == len(r.lines)
    assert c.events == len(r.first) == r.sim.events
    assert c.defects["duplicate"] == len(r.duplicates)
    assert c.malformed == len(r.rejected) == sum(c.defects[k] for k in MALFORMED_KINDS) > 0
    assert {e.field for _, e in r.rejected} <= {*PAYMENT_FIELDS, "value"}, "each names the field"
    assert c.fraud == len(r.labels) and c.legitimate == c.events - c.fraud
    assert c.by_typology == {t: sum(x.typology == t for x in r.labels) for t in TYPOLOGIES}
    assert {t: set(ids) for t, ids in m.event_ids.items()} == {
        t: {x.event_id for x in r.labels if x.typology == t} for t in TYPOLOGIES
    }
    assert c.scenarios_by_typology == {
        t: len({x.scenario_id for x in r.labels if x.typology == t}) for t in TYPOLOGIES
    }
    assert {s.scenario_id: s.events for s in m.scenarios} == Counter(x.scenario_id for x in r.labels)
    assert set(m.defect_event_ids["duplicate"]) == {i for _, i in r.duplicates}
    # Out-of-order and late counted from the file alone: how far each payment is behind the newest
    # event time already sent (in order: 0; a few seconds: out of order; beyond the lateness: late).
    lateness_ms = r.sim.defects.allowed_lateness_s * 1000
    assert c.defects["late"] == sum(lag > lateness_ms for lag in r.lag_ms.values()) > 0
    assert c.defects["out_of_order"] == sum(0 < lag <= lateness_ms for lag in r.lag_ms.values()) > 0
    assert set(m.defect_event_ids["late"]) == {i for i, lag in r.lag_ms.items() if lag > lateness_ms}
    assert c.lookalikes == {k: len(v) for k, v in m.lookalike_event_ids.items()}
    assert len(r.merchants) == m.parameters["merchants"]
    assert PaymentsManifest.read(r.directory) == m


def test_fraud_share_matches_fraud_rate_and_every_typology_is_present(run: Log, plain: Log) -> None:
    for r in (run, plain):
        c = r.manifest.counts
        assert abs(c.fraud / c.events - 0.01) < 0.001
        assert r.manifest.fraud_share == c.fraud / c.events
        assert all(c.by_typology[t] > 0 and c.scenarios_by_typology[t] > 0 for t in TYPOLOGIES)
        labelled = {x.event_id for x in r.labels}
        assert labelled <= set(r.first), "every label names a valid payment"
    share = generate(seed=1, eps=1000, duration_s=60, start=START, fraud_rate=0.04).plan.rows
    assert abs((share.typ >= 0).sum() / 60_000 - 0.04) < 0.004


@pytest.mark.parametrize("log", ["run", "plain"])
def test_card_testing_is_a_burst_of_tiny_online_charges_on_one_card(
    log: str, request: pytest.FixtureRequest
) -> None:
    r: Log = request.getfixturevalue(log)
    window = Signal(r.sim.difficulty).card_testing_window_ms
    for burst in r.by_scenario("card_testing").values():
        assert len(burst) >= 5 and burst[-1].event_time_ms - burst[0].event_time_ms <= window
        assert len({p.card_id for p in burst}) == 1 and {p.channel for p in burst} == {"ecom"}
        assert all(0.45 <= to_usd(p.amount, p.currency) <= 5.00 for p in burst)
        assert not {p.device_id for p in burst} & r.own_devices(burst[0].card_id)
    assert window == pytest.approx(2 * MINUTE if log == "plain" else 2 * MINUTE + 0.3 * 8 * MINUTE)


@pytest.mark.parametrize("log", ["run", "plain"])
def test_account_takeover_is_impossible_travel_on_a_new_device(
    log: str, request: pytest.FixtureRequest
) -> None:
    r: Log = request.getfixturevalue(log)
    history = r.card_history()
    low, high = Signal(r.sim.difficulty).takeover_factor
    for p in r.fraud("account_takeover"):
        events = history[p.card_id]
        assert events.index(p) > 0, "the card paid before"
        before = events[events.index(p) - 1]
        assert before.event_time_ms < p.event_time_ms
        distance = km(before.latitude, before.longitude, p.latitude, p.longitude)
        hours = (p.event_time_ms - before.event_time_ms) / 3_600_000
        assert distance > 1000 and distance / hours > 1000  # km/h: faster than any flight
        assert p.channel == "ecom" and p.device_id not in r.own_devices(p.card_id)
        assert low * 0.99 <= p.amount / r.typical(p.card_id) <= high * 1.01
    assert (low, high) == pytest.approx((5, 20) if log == "plain" else (4.4, 16.4))


@pytest.mark.parametrize("log", ["run", "plain"])
def test_collusion_ring_repeats_round_amounts_among_its_merchants_and_cards(
    log: str, request: pytest.FixtureRequest
) -> None:
    r: Log = request.getfixturevalue(log)
    truth = {s.scenario_id: s for s in r.manifest.scenarios}
    near = Signal(r.sim.difficulty).near_round_share
    for scenario_id, events in r.by_scenario("merchant_collusion").items():
        merchants, cards = {p.merchant_id for p in events}, {p.card_id for p in events}
        assert 3 <= len(merchants) <= 5 and 10 <= len(cards) <= 30 and len(events) >= 10
        assert merchants <= set(truth[scenario_id].merchants) and cards <= set(truth[scenario_id].cards)
        assert len({r.merchants[m]["country"] for m in merchants}) == 1, "the ring is local"
        is_round = [p.amount % (100 * round_unit(p.currency)) == 0 for p in events]
        assert sum(is_round) / len(events) >= 1 - near - 0.1
        assert max(Counter(p.amount for p in events).values()) >= 2, "amounts repeat"
    if log == "plain":
        assert all(p.amount % (100 * round_unit(p.currency)) == 0 for p in r.fraud("merchant_collusion"))


@pytest.mark.parametrize("log", ["run", "plain"])
def test_compromised_terminal_charges_many_cards_again_minutes_after_their_purchase(
    log: str, request: pytest.FixtureRequest
) -> None:
    r: Log = request.getfixturevalue(log)
    history, labelled = r.card_history(), {x.event_id for x in r.labels}
    for events in r.by_scenario("compromised_terminal").values():
        assert len({p.merchant_id for p in events}) == 1
        assert len({p.card_id for p in events}) == len(events) >= 5, "many distinct cards, once each"
        for p in events:
            earlier = [
                q
                for q in history[p.card_id]
                if q.merchant_id == p.merchant_id
                and q.event_id not in labelled
                and q.event_time_ms < p.event_time_ms
            ]
            assert any(
                MINUTE <= p.event_time_ms - q.event_time_ms <= 5 * MINUTE and q.amount != p.amount
                for q in earlier
            ), "a legitimate purchase at the terminal 1-5 minutes before"
            assert p.channel == "pos" and p.device_id is None


@pytest.mark.parametrize("log", ["run", "plain"])
def test_high_amount_is_one_big_charge_at_an_everyday_merchant(
    log: str, request: pytest.FixtureRequest
) -> None:
    r: Log = request.getfixturevalue(log)
    low, high = Signal(r.sim.difficulty).high_factor
    for scenario in r.by_scenario("high_amount").values():
        (p,) = scenario
        assert low * 0.99 <= p.amount / r.typical(p.card_id) <= high * 1.01
        category = r.merchants[p.merchant_id]["category"]
        assert category in {"grocery", "restaurants", "fuel", "pharmacy", "clothing", "marketplace"}
        assert p.device_id is None or p.device_id in r.own_devices(p.card_id)
    assert (low, high) == pytest.approx((10, 50) if log == "plain" else (8.5, 41))


@pytest.mark.parametrize("log", ["run", "plain"])
def test_stealthy_is_moderate_amounts_at_risky_merchants_at_night_from_a_new_device(
    log: str, request: pytest.FixtureRequest
) -> None:
    r: Log = request.getfixturevalue(log)
    low, high = Signal(r.sim.difficulty).stealthy_factor
    world = r.sim.world
    for p in r.fraud("stealthy"):
        ratio = p.amount / r.typical(p.card_id)
        assert low * 0.99 <= ratio <= high * 1.01 <= 3.1, "under a plain 'x times typical' threshold"
        assert r.merchants[p.merchant_id]["category"] in {"gift_cards", "crypto_exchange", "digital_goods"}
        assert solar(p.event_time_ms, p.longitude) < 5
        assert p.channel == "ecom" and p.device_id not in r.own_devices(p.card_id)
        home = CITIES[int(world.home[world.card_customer[r.card(p.card_id)]])]
        assert km(home.latitude, home.longitude, p.latitude, p.longitude) < 50, "at home: no geo signal"
    assert (low, high) == pytest.approx((2.0, 3.0) if log == "plain" else (1.85, 3.0))


def test_lookalikes_come_with_difficulty_and_are_legitimate(run: Log, plain: Log) -> None:
    assert plain.manifest.counts.lookalikes == dict.fromkeys(LOOKALIKES, 0)
    assert all(run.manifest.counts.lookalikes[k] > 0 for k in LOOKALIKES)
    labelled = {x.event_id for x in run.labels}
    ids = run.manifest.lookalike_event_ids
    assert not labelled & {i for v in ids.values() for i in v}
    # A far look-alike: a legitimate traveller paying online from another continent on a new phone.
    history = run.card_history()
    for event_id in ids["new_device_far"]:
        p = run.first[event_id]
        events = history[p.card_id]
        assert events.index(p) > 0, "the traveller paid at home shortly before"
        before = events[events.index(p) - 1]
        assert km(before.latitude, before.longitude, p.latitude, p.longitude) > 1000
        assert p.device_id not in run.own_devices(p.card_id)


def test_payments_of_a_card_are_consistent(run: Log) -> None:
    world = run.sim.world
    looks = {i for v in run.manifest.lookalike_event_ids.values() for i in v}
    labelled = {x.event_id for x in run.labels}
    ratios: list[float] = []
    for card_id, events in run.card_history().items():
        assert len({(p.customer_id, p.currency) for p in events}) == 1
        customer = int(world.card_customer[run.card(card_id)])
        where = CITIES[int(world.current[customer])]
        for p in events:
            shop = run.merchants[p.merchant_id]
            if p.channel != "ecom":
                assert p.device_id is None and p.country == shop["country"]
                assert (p.latitude, p.longitude) == (float(shop["latitude"]), float(shop["longitude"]))
            if p.event_id in labelled or p.event_id in looks:
                continue
            assert km(where.latitude, where.longitude, p.latitude, p.longitude) < 60, "paid where they are"
            if p.channel == "ecom":
                assert p.device_id in run.own_devices(card_id)
        ordinary = [p.amount for p in events if p.event_id not in labelled and p.event_id not in looks]
        if len(ordinary) >= 8:
            ratios.append(statistics.median(ordinary) / run.typical(card_id))
    assert len(ratios) > 500 and 0.8 < statistics.median(ratios) < 1.25, "'typical' is the card's median"


def test_daily_rhythm_people_pay_less_at_night(run: Log) -> None:
    """At 10:00 UTC it is night in the Americas and afternoon in Asia: per customer, night-time cities
    pay several times less."""
    world = run.sim.world
    people = Counter(int(c) for c in world.current)
    paid = Counter(int(world.current[world.card_customer[run.card(p.card_id)]]) for p in run.first.values())
    mid = (run.sim.start_ms + run.sim.end_ms) // 2
    night = [i for i, c in enumerate(CITIES) if 1 <= solar(mid, c.longitude) < 5]
    day = [i for i, c in enumerate(CITIES) if 10 <= solar(mid, c.longitude) < 20]
    assert night and day

    def rate(cities: list[int]) -> float:
        return sum(paid[i] for i in cities) / sum(people[i] for i in cities)

    assert rate(night) < 0.3 * rate(day)


def test_event_times_follow_the_world_s_day_and_week() -> None:
    """Over a week, the world's payments peak when Asia and Europe are awake and dip on weekends."""
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    sim = generate(seed=8, eps=0.3, duration_s=7 * 86400, start=monday, fraud_rate=0.0)
    by_hour: Counter[int] = Counter()
    by_day: Counter[int] = Counter()
    for m in sim:
        if m.defect is None:
            hours = (m.event_time_ms - sim.start_ms) // 3_600_000
            by_hour[hours % 24] += 1
            by_day[hours // 24] += 1
    assert max(by_hour.values()) > 1.3 * min(by_hour.values())
    assert max(by_hour, key=by_hour.__getitem__) in range(6, 16)  # UTC: Asian afternoon, European day
    weekdays, weekend = sum(by_day[d] for d in range(5)) / 5, (by_day[5] + by_day[6]) / 2
    assert weekend < 0.97 * weekdays


def test_stream_defects_are_what_they_claim() -> None:
    sim = generate(seed=4, eps=500, duration_s=300, start=START)
    lateness, ooo_max = sim.defects.allowed_lateness_s * 1000, sim.defects.out_of_order_max_s * 1000
    seen: set[str] = set()
    previous_emit = 0
    kinds: Counter[str | None] = Counter()
    for m in sim:
        kinds[m.defect] += 1
        assert m.emit_ms >= previous_emit, "emission order"
        previous_emit = m.emit_ms
        lag = m.emit_ms - m.event_time_ms
        if m.defect == "late":
            assert lag > lateness
        elif m.defect == "out_of_order":
            assert 1000 <= lag <= ooo_max
        elif m.defect == "duplicate":
            assert m.event_id in seen and m.label is None
        elif m.defect in MALFORMED_KINDS:
            assert m.label is None and m.lookalike is None
            with pytest.raises(ContractError) as caught:
                parse_payment(m.value)
            assert caught.value.field in {*PAYMENT_FIELDS, "value"}
        else:
            assert lag == 0
        if m.defect not in MALFORMED_KINDS:
            seen.add(m.event_id)
    assert all(kinds[k] > 0 for k in ("late", "out_of_order", "duplicate", *MALFORMED_KINDS))
    quiet = Defects(duplicate_rate=0, out_of_order_rate=0, late_rate=0, malformed_rate=0)
    assert {m.defect for m in generate(seed=4, eps=500, duration_s=20, start=START, defects=quiet)} == {None}
    noisy = Defects(duplicate_rate=0.05, malformed_rate=0.05)
    counts = Counter(m.defect for m in generate(seed=4, eps=500, duration_s=20, start=START, defects=noisy))
    assert 0.04 < counts["duplicate"] / 10_000 < 0.06
    assert 0.04 < sum(counts[k] for k in MALFORMED_KINDS) / 10_000 < 0.06


def test_every_non_malformed_event_validates_against_the_json_schema() -> None:
    def decimal(text: str | bytes) -> Any:
        return json.loads(text, parse_float=Decimal)

    text = (
        files("dotjoin.pipelines.payments").joinpath("contract", "payment_event.v1.schema.json").read_text()
    )
    events = jsonschema.Draft202012Validator(decimal(text))
    text = (
        files("dotjoin.pipelines.payments").joinpath("contract", "payment_label.v1.schema.json").read_text()
    )
    labels = jsonschema.Draft202012Validator(decimal(text))
    checked = 0
    for m in generate(seed=9, eps=200, duration_s=50, start=START, difficulty=1.0):
        if m.defect == "bad_json":
            with pytest.raises(ValueError):
                decimal(m.value)
            continue
        if m.defect in MALFORMED_KINDS:
            assert not events.is_valid(decimal(m.value))
            continue
        errors = [e.message for e in events.iter_errors(decimal(m.value))]
        assert errors == [], m.value
        if m.label is not None:
            assert labels.is_valid(decimal(m.label.to_json()))
        checked += 1
    assert checked >= 10_000


def test_bad_parameters_are_refused() -> None:
    for kw in ({"fraud_rate": 0.9}, {"difficulty": 1.5}, {"eps": 0}, {"defects": Defects(late_rate=0.5)}):
        with pytest.raises(ConfigError):
            generate(**{"seed": 1, "eps": 100, "duration_s": 10, "start": START, **kw})  # type: ignore[arg-type]


def test_produce_sends_payments_keyed_by_card_and_labels_to_their_topic(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus")
    sim = generate(seed=6, eps=200, duration_s=20, start=START, fraud_rate=0.03)
    with bus.producer() as producer:
        manifest = produce(sim, producer, eps=0)
    got: dict[str, list[Any]] = {}
    with bus.consumer("test", [TOPIC_PAYMENTS, TOPIC_LABELS]) as consumer:
        while batch := consumer.consume(10_000, timeout=0.5):
            for message in batch:
                got.setdefault(message.topic, []).append(message)
    payments, labels = got[TOPIC_PAYMENTS], got[TOPIC_LABELS]
    assert len(payments) == manifest.counts.messages and len(labels) == manifest.counts.fraud > 0
    card_of = {}
    for message in payments:
        try:
            p = parse_payment(message.value)
        except ContractError:
            continue
        assert message.key == p.card_id.encode()
        card_of[p.event_id] = p.card_id
    for message in labels:
        assert message.key is not None
        assert card_of[parse_label(message.value).event_id] == message.key.decode()


class _Recorder(Producer):
    def __init__(self) -> None:
        self.sent = 0
        self.flushes = 0

    def produce(self, topic: str, value: bytes, *, key: bytes | None = None, headers: Any = None) -> None:
        self.sent += 1

    def flush(self, timeout: float = 30.0) -> None:
        self.flushes += 1


def test_produce_paces_to_eps_on_the_wall_clock() -> None:
    """A virtual clock: ``produce`` sleeps so that messages leave at their simulated emission times
    (scaled by ``eps`` / the stream's rate), flushing every 0.1 s meanwhile."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    sim = generate(seed=6, eps=400, duration_s=10, start=START)
    emitted = [m.emit_ms for m in sim]
    span = (emitted[-1] - emitted[0]) / 1000
    recorder = _Recorder()
    manifest = produce(sim, recorder, clock=lambda: now[0], sleep=sleep)
    assert recorder.sent == manifest.counts.messages + manifest.counts.fraud
    assert 10 <= span < 16 and span - 0.01 < now[0] <= span
    assert recorder.flushes >= 90
    now[0] = 0.0
    produce(sim, _Recorder(), eps=4000, clock=lambda: now[0], sleep=sleep)
    assert span / 10 - 0.01 < now[0] <= span / 10
    now[0] = 0.0
    produce(sim, _Recorder(), eps=0, clock=lambda: now[0], sleep=sleep)
    assert now[0] == 0.0
