"""The payments stream logic without a broker: windows, no look-ahead, event time, rules, models, replay.

Hand-computed cases check each feature and rule; the replay tests check against the simulator's own
ground truth (its labels and manifest), never against the detector's output.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest

from dotjoin.exceptions import ConfigError, DataError
from dotjoin.pipelines.payments.contract import Payment
from dotjoin.pipelines.payments.detector import Detector
from dotjoin.pipelines.payments.evaluate import quality
from dotjoin.pipelines.payments.features import FEATURES, FeatureState, MerchantInfo, haversine_km
from dotjoin.pipelines.payments.history import Reference, read_history, read_labels, read_recorded
from dotjoin.pipelines.payments.models import FraudModels, train
from dotjoin.pipelines.payments.offline import replay, train_models
from dotjoin.pipelines.payments.rules import load_rules, parse_rules
from dotjoin.simulate.payments.output import write_log
from dotjoin.simulate.payments.stream import generate

T0 = 1_796_119_200_000  # 2026-12-01T10:00Z
LISBON, MADRID_KM = (38.72, -9.14), 503


def pay(
    i: int, t_s: float, *, amount: float = 20.0, card: str = "c1", merchant: str = "m1", **kw: object
) -> Payment:
    fields: dict[str, object] = dict(
        event_id=f"e{i}", event_time_ms=T0 + int(t_s * 1000), card_id=card, customer_id="u1",
        merchant_id=merchant, amount=amount, currency="EUR", channel="pos", device_id=None,
        latitude=LISBON[0], longitude=LISBON[1], country="PT",
    )  # fmt: skip
    fields.update(kw)
    return Payment(**fields)  # type: ignore[arg-type]


def features_of(state: FeatureState, p: Payment) -> dict[str, float]:
    return dict(zip(FEATURES, state.observe(p), strict=True))


def test_windows_count_only_the_past_of_the_same_card() -> None:
    s = FeatureState({})
    for i, t in enumerate([0, 30, 50, 300, 3000]):
        features_of(s, pay(i, t, amount=2.0))
    features_of(s, pay(99, 10, card="c2"))  # another card: not counted
    f = features_of(s, pay(5, 3050, amount=2.0))
    # Before this event: 3000 is within 1 min; 3000 within 10 min; 0..3000 within the hour except none older
    assert (f["count_1m"], f["count_10m"], f["count_1h"]) == (1.0, 1.0, 5.0)
    assert f["small_count_10m"] == 1.0 and f["card_history"] == 5.0


def test_features_never_see_the_event_itself_or_later_ones() -> None:
    """No look-ahead: an event's features equal those computed with only earlier events known."""
    events = [pay(i, 40 * i, amount=10.0 + i) for i in range(6)]
    s = FeatureState({})
    seen = [features_of(s, e) for e in events]
    for k, e in enumerate(events):
        fresh = FeatureState({})
        for earlier in events[:k]:
            fresh.observe(earlier)
        assert features_of(fresh, e) == seen[k]
    late = FeatureState({})
    late.observe(events[3])  # a later event arrived first: it does not count for an earlier one
    assert features_of(late, events[1])["count_10m"] == 0.0


def test_amount_statistics_distance_and_speed() -> None:
    s = FeatureState({})
    for i in range(10):
        features_of(s, pay(i, i * 60, amount=20.0))
    f = features_of(s, pay(10, 660, amount=400.0, latitude=40.4168, longitude=-3.7038))  # Madrid
    assert f["amount_ratio"] == pytest.approx(20.0)
    assert f["amount_z"] > 4
    assert f["distance_km"] == pytest.approx(haversine_km(*LISBON, 40.4168, -3.7038))
    assert round(f["distance_km"]) == MADRID_KM
    assert f["speed_kmh"] == pytest.approx(MADRID_KM * 30, rel=0.01)  # 503 km in two minutes


def test_usd_rates_normalise_amounts() -> None:
    s = FeatureState({}, usd_rates={"JPY": 150.0})
    f = features_of(s, pay(1, 0, amount=300.0, currency="JPY"))
    assert f["amount"] == pytest.approx(2.0)


def test_new_device_needs_a_known_device_and_merchants_join() -> None:
    s = FeatureState({"m1": MerchantInfo("gift_cards", 0.8)})
    first = features_of(s, pay(1, 0, channel="ecom", device_id="d1"))
    assert first["new_device"] == 0.0 and first["risky_category"] == 1.0 and first["merchant_risk"] == 0.8
    assert features_of(s, pay(2, 60, channel="ecom", device_id="d1"))["new_device"] == 0.0
    assert features_of(s, pay(3, 120, channel="ecom", device_id="d2"))["new_device"] == 1.0
    assert features_of(s, pay(4, 180, merchant="unknown"))["merchant_risk"] == 0.5


def test_late_events_are_routed_and_duplicates_counted_never_scored_twice() -> None:
    d = Detector({}, rules=(), allowed_lateness_ms=60_000)
    batch = [pay(1, 0), pay(2, 200), pay(3, 100), pay(2, 200), pay(4, 130)]
    result = d.process(batch)
    # after e2 (t=200 s) the watermark is 140 s: e3 (100 s) and e4 (130 s) are late; e2 repeats once
    assert result.late == [2, 4] and result.duplicates == 1 and result.scored == 2
    assert [e for e, _ in result.risk] == ["e1", "e2"]
    assert d.counters.late == 2 and d.counters.duplicates == 1


def test_rules_fire_with_an_explanation_and_bad_rules_are_one_line_errors(tmp_path: Path) -> None:
    rules = parse_rules(
        {"rules": [{"name": "big", "when": {"amount": ">= 100", "card_history": ">= 2"}}]}, "x"
    )
    d = Detector({}, rules)
    result = d.process([pay(1, 0, amount=20.0), pay(2, 60, amount=20.0), pay(3, 120, amount=150.0)])
    assert [a.event_id for a in result.alerts] == ["e3"]
    assert result.alerts[0].explanation == "big: amount 150 >= 100, card_history 2 >= 2"
    with pytest.raises(ConfigError, match=r"x: rule r: condition 'about 3' for amount is not like '>= 3'"):
        parse_rules({"rules": [{"name": "r", "when": {"amount": "about 3"}}]}, "x")
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules: [", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.yaml: not valid YAML"):
        load_rules(bad)
    assert {r.name for r in load_rules()} >= {"card_testing_velocity", "impossible_travel"}


def test_models_learn_a_planted_signal_explain_it_and_refuse_thin_history(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(4000, len(FEATURES)))
    night = FEATURES.index("night")
    labels = rows[:, night] > 2.0  # fraud is exactly "night above 2"
    models = train(rows, labels, np.arange(len(rows)) * 1000, seed=1)
    assert models.report.validation["auc"] > 0.95
    (top,) = models.explain_rows(rows[labels][:1], top=1)
    assert top[0][0] == "night"
    models.save(tmp_path / "m.pickle")
    again = FraudModels.load(tmp_path / "m.pickle")
    assert np.array_equal(again.scores(rows[:50])[0], models.scores(rows[:50])[0])
    assert json.loads((tmp_path / "m.pickle.json").read_text())["rows"] == 4000
    with pytest.raises(DataError, match="too little history"):
        train(rows[:100], labels[:100], np.arange(100))
    with pytest.raises(ConfigError, match="no trained models"):
        FraudModels.load(tmp_path / "missing.pickle")


def test_the_forest_scores_as_scikit_learn_scores() -> None:
    """Our tree loop of the isolation forest against scikit-learn's own ``score_samples``, also with
    a feature subsample per tree and on rows far outside the training range."""
    from sklearn.ensemble import IsolationForest

    from dotjoin.pipelines.payments.models import _forest_scorer

    rng = np.random.default_rng(4)
    rows = rng.normal(size=(3000, 6))
    probe = np.vstack([rng.normal(size=(500, 6)), rng.normal(scale=50, size=(20, 6))])
    for max_features in (1.0, 0.5):
        forest = IsolationForest(n_estimators=30, max_features=max_features, random_state=0).fit(rows)
        assert np.allclose(_forest_scorer(forest)(probe), -forest.score_samples(probe), rtol=0, atol=1e-12)


def test_quality_counts_against_the_labels() -> None:
    q = quality(
        [("a", 0.9), ("b", 0.8), ("c", 0.1), ("d", 0.7)], {"a", "b"}, {"a", "d"}, {"a": "x", "d": "y"}
    )
    assert (q.true_positives, q.precision, q.recall) == (1, 0.5, 0.5)
    assert q.recall_by_typology == {"x": 1.0, "y": 0.0}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("payments")
    sim = generate(seed=5, eps=200, duration_s=240, start=datetime(2026, 11, 2, tzinfo=UTC))
    write_log(sim, out)
    return out


def test_replay_accounts_for_every_line_of_a_recorded_stream(recorded: Path) -> None:
    manifest = json.loads((recorded / "manifest.json").read_text())
    lines = sum(1 for line in (recorded / "events.jsonl").read_bytes().splitlines() if line.strip())
    history = read_recorded(recorded / "events.jsonl")
    labels = read_labels(recorded / "labels.jsonl")
    history.typologies, history.fraud = labels, [p.event_id in labels for p in history.payments]
    ref = Reference.read(recorded / "merchants.csv", recorded / "fx_rates.csv")
    out = replay(history, ref, load_rules(), None)
    c = out.counters
    assert c.scored + c.late + c.duplicates + len(out.dead_letters) == lines
    assert len(out.dead_letters) == manifest["counts"]["malformed"]
    assert all(":" in d.error for d in out.dead_letters)  # "<field>: <what>"
    assert c.duplicates + c.late >= manifest["counts"]["defects"]["duplicate"]  # a late copy is late
    assert out.quality is not None and out.quality.fraud == len({e for e in labels if e not in out.late})


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_training_on_one_day_and_scoring_the_next_beats_the_rules_alone(
    recorded: Path, tmp_path: Path
) -> None:
    history_dir = tmp_path / "history"
    write_log(generate(seed=5, eps=200, duration_s=240, start=datetime(2026, 11, 1, tzinfo=UTC)), history_dir)
    train_h = read_recorded(history_dir / "events.jsonl")
    train_labels = read_labels(history_dir / "labels.jsonl")
    train_h.fraud = [p.event_id in train_labels for p in train_h.payments]
    ref = Reference.read(history_dir / "merchants.csv", history_dir / "fx_rates.csv")
    models = train_models(train_h, ref, seed=1)
    test_h = read_recorded(recorded / "events.jsonl")
    labels = read_labels(recorded / "labels.jsonl")
    test_h.typologies, test_h.fraud = labels, [p.event_id in labels for p in test_h.payments]
    rules_only = replay(test_h, ref, load_rules(), None)
    both = replay(test_h, ref, load_rules(), models)
    assert rules_only.quality is not None and both.quality is not None
    assert both.quality.auc is not None and both.quality.auc > 0.95
    r, m = rules_only.quality, both.quality
    # 4-minute runs, one day of history: small samples (measured: docs/pipelines/payments-fraud.md)
    assert m.recall > 0.7 > r.recall and m.precision > 0.85
    assert f1(m.precision, m.recall) > f1(r.precision, r.recall)
    assert m.recall_by_typology["stealthy"] > r.recall_by_typology["stealthy"] == 0.0  # the model's catch
    assert all(a.explanation for a in both.alerts)


def test_a_warm_up_leaves_the_state_a_run_over_both_streams_leaves(recorded: Path, tmp_path: Path) -> None:
    earlier_dir = tmp_path / "earlier"
    write_log(generate(seed=5, eps=200, duration_s=120, start=datetime(2026, 11, 1, tzinfo=UTC)), earlier_dir)
    earlier = read_recorded(earlier_dir / "events.jsonl")
    later = read_recorded(recorded / "events.jsonl")
    ref = Reference.read(recorded / "merchants.csv", recorded / "fx_rates.csv")
    # The independent truth: one detector over both streams in order; the later stream's alerts.
    both = read_recorded(earlier_dir / "events.jsonl")
    both.payments += later.payments
    later_ids = {p.event_id for p in later.payments}
    whole = [a for a in replay(both, ref, load_rules(), None).alerts if a.event_id in later_ids]
    warmed = replay(later, ref, load_rules(), None, warm_up=earlier)
    assert warmed.alerts == whole and whole
    assert warmed.counters.scored + warmed.counters.late + warmed.counters.duplicates == len(later.payments)
    cold = replay(later, ref, load_rules(), None)
    assert cold.alerts != warmed.alerts  # the state matters: the warm-up is not a no-op


def test_a_labelled_csv_history_is_read_through_the_platform_reader(recorded: Path, tmp_path: Path) -> None:
    history = read_recorded(recorded / "events.jsonl")
    labels = read_labels(recorded / "labels.jsonl")
    rows = [p.as_dict() | {"is_fraud": int(p.event_id in labels)} for p in history.payments[:300]]
    csv_path = tmp_path / "history.csv"
    header = list(rows[0])
    lines = [",".join(header)] + [",".join("" if r[h] is None else str(r[h]) for h in header) for r in rows]
    lines.insert(5, "not,a,payment")  # a ragged row: quarantined with its line
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_history(csv_path)
    assert [p.event_id for p in got.payments] == [p.event_id for p in history.payments[:300]]
    assert got.fraud == [bool(r["is_fraud"]) for r in rows]
    assert [(r.line, r.error.split(":")[0]) for r in got.rejected] == [(6, "ragged_row")]
    same = [msgspec.structs.replace(p) for p in got.payments[:3]]
    assert same == history.payments[:3]


def test_the_monitor_counts_into_prometheus_and_writes_the_status(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from dotjoin.pipelines.payments.monitor import Monitor, read_status

    monitor = Monitor(tmp_path / "status.json")
    d = Detector({}, parse_rules({"rules": [{"name": "big", "when": {"amount": ">= 100"}}]}, "x"))
    result = d.process([pay(1, 0, amount=500.0), pay(2, 1, amount=5.0)])
    monitor.batch(scored=2, alerts=result.alerts, latencies_s=[0.03], dead_letters=1, late=0, duplicates=0)
    monitor.tick(now=time.time() + 2)
    text = generate_latest(monitor.registry).decode()
    assert "dotjoin_payments_events_total 2.0" in text
    assert 'dotjoin_payments_alerts_total{rule="big"} 1.0' in text
    assert 'dotjoin_payments_alert_latency_seconds_bucket{le="0.05"} 1.0' in text
    status = read_status(tmp_path / "status.json")
    assert status is not None and status["totals"]["dead_letters"] == 1
    assert status["latest_alerts"][0]["event_id"] == "e1" and status["points"][0]["p99_ms"] == 30.0
    assert read_status(tmp_path / "missing.json") is None


def test_the_monitor_scores_alerts_against_labels_in_either_arrival_order() -> None:
    from dotjoin.pipelines.payments.contract import TYPOLOGIES, Label
    from dotjoin.pipelines.payments.monitor import Monitor

    monitor = Monitor(None)
    assert monitor.quality() is None  # no labels: nothing to say
    d = Detector({}, parse_rules({"rules": [{"name": "big", "when": {"amount": ">= 100"}}]}, "x"))
    a, b = TYPOLOGIES[0], TYPOLOGIES[1]
    # e1 labelled before its alert, e3 after; e2 alerted but not fraud; e4 fraud, never alerted.
    monitor.labels([Label("e1", a, "s1").to_json(), b"{not json", Label("e4", b, "s2").to_json()])
    alerts = d.process([pay(1, 0, amount=500.0), pay(2, 1, amount=200.0), pay(3, 2, amount=300.0)]).alerts
    monitor.batch(scored=3, alerts=alerts, latencies_s=[], dead_letters=0, late=0, duplicates=0)
    monitor.labels([Label("e3", a, "s1").to_json(), Label("e1", a, "s1").to_json()])  # e1 again: once
    q = monitor.quality()
    assert q is not None
    assert (q["labelled"], q["alerted"]) == (3, 3)
    assert q["precision"] == pytest.approx(2 / 3) and q["recall"] == pytest.approx(2 / 3)
    assert q["recall_by_typology"] == {a: 1.0, b: 0.0}


def test_the_embedded_consumer_reports_its_lag(tmp_path: Path) -> None:
    from dotjoin.config import load_settings
    from dotjoin.platform.bus import open_bus

    bus = open_bus(load_settings(profile="local", cwd=tmp_path, env={}))
    bus.create_topic("t", partitions=2)
    with bus.producer() as producer:
        for i in range(100):
            producer.produce("t", b"v", key=str(i).encode())
    with bus.consumer("g", ["t"]) as consumer:
        assert consumer.lag() == 100
        got = consumer.consume(30, timeout=1)
        assert consumer.lag() == 100 - len(got)
        while more := consumer.consume(1000, timeout=0.2):
            got += more
        assert len(got) == 100 and consumer.lag() == 0
        with bus.producer() as producer:
            producer.produce("t", b"v", key=b"x")
        assert consumer.lag() == 1
        consumer.commit(got)
    with bus.consumer("g", ["t"]) as consumer:  # resumed from the committed offsets
        assert consumer.lag() == 1


def test_checkpoints_write_changed_cards_and_restore_the_exact_state(tmp_path: Path) -> None:
    from dotjoin.pipelines.payments import checkpoint
    from dotjoin.pipelines.payments.checkpoint import CheckpointStore
    from dotjoin.pipelines.payments.detector import encode_states

    rules = load_rules()
    live = Detector({}, rules)
    store = CheckpointStore(tmp_path / "cp", compact_every=3)
    events = [pay(i, 30 * i, amount=10.0 + i, card=f"c{i % 7}", device_id=None) for i in range(60)]
    checkpoint.CHUNK, chunk = 2, checkpoint.CHUNK  # several chunks a file
    try:
        for k in range(0, 60, 10):  # six deltas; compaction after the third and the sixth
            live.process(events[k : k + 10])
            changed, live.dirty = live.dirty, set()
            seq = store.advance()
            chunks = [encode_states(live.card_states(changed))]
            store.write(seq, chunks, {("payments", 0): k + 10}, asdict(live.counters))
            if store.compaction_due():
                if seq == 3:
                    store.compact(seq)  # in this process
                else:  # as the runner does it: a process of its own, from the files
                    assert store.start_compaction(seq).wait(timeout=60) == 0
    finally:
        checkpoint.CHUNK = chunk
    assert sorted(f.name for f in (tmp_path / "cp").glob("*.pickle")) == ["base-000000000006.pickle"]
    restored = Detector({}, rules)
    assert CheckpointStore(tmp_path / "cp").load(restored) == {("payments", 0): 60}
    assert restored.card_states() == live.card_states()
    assert restored.counters == live.counters
    more = [pay(100 + i, 2000 + 30 * i, card=f"c{i % 7}") for i in range(20)]
    assert restored.process(more).risk == live.process(more).risk
