"""The feature store's two computations of one definition: hand-made cases, then each other."""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

import pyarrow as pa
import pytest

from dotjoin.config import Settings
from dotjoin.pipelines.features.backfill import backfill
from dotjoin.pipelines.features.definitions import DAY_MS, DECAY_TOLERANCE, FEATURES, HOUR_MS, MINUTE_MS
from dotjoin.pipelines.features.online import KEEP_MS, OnlineFeatures

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def payments(rows: list[tuple[str, str, int, int]]) -> pa.Table:
    card, merchant, time_ms, cents = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.table({"card_id": list(card), "merchant_id": list(merchant), "time_ms": list(time_ms),
                     "cents": list(cents)})  # fmt: skip


def points(rows: list[tuple[str, str, int]]) -> pa.Table:
    return pa.table({"point_id": [str(n) for n in range(len(rows))], "card_id": [r[0] for r in rows],
                     "merchant_id": [r[1] for r in rows], "time_ms": [r[2] for r in rows]})  # fmt: skip


def both(history: list[tuple[str, str, int, int]], at: list[tuple[str, str, int]]) -> list[tuple[dict, dict]]:
    """(online, offline) feature dicts per point."""
    online = OnlineFeatures()
    online.add_all(history)
    offline = backfill(payments(history), points(at)).to_pylist()
    return [
        (online.features_at(card_id=c, merchant_id=m, t=t), {k: v for k, v in row.items() if k != "point_id"})
        for (c, m, t), row in zip(at, offline, strict=True)
    ]


def agree(online: dict, offline: dict) -> list[str]:
    """Names of the features the two computations disagree on (deterministic: exactly; decayed: 1e-9)."""
    bad = []
    for f in FEATURES:
        a, b = online[f.name], offline[f.name]
        if f.deterministic or a is None or b is None:
            if a != b:
                bad.append(f"{f.name}: online {a!r} offline {b!r}")
        elif not math.isclose(a, b, rel_tol=DECAY_TOLERANCE, abs_tol=DECAY_TOLERANCE):
            bad.append(f"{f.name}: online {a!r} offline {b!r}")
    return bad


def test_windows_count_the_payments_strictly_before_t_and_at_least_t_minus_w() -> None:
    history = [("c", "m", T0, 100), ("c", "m", T0 + 5 * MINUTE_MS, 250), ("c", "m", T0 + 10 * MINUTE_MS, 50)]
    at = [("c", "m", T0 + 10 * MINUTE_MS), ("c", "m", T0 + 10 * MINUTE_MS + 1), ("c", "m", T0)]
    for online, offline in both(history, at)[:1]:
        # [t - 10 min, t): the first payment is exactly 10 min before t (in), the third is at t (out)
        for values in (online, offline):
            assert (values["card_count_10m"], values["card_sum_10m"], values["card_mean_10m"]) == (
                2,
                350,
                175.0,
            )
    later, first = both(history, at)[1:]
    for values in later:  # one ms later the first payment has left the 10-minute window; the third is in
        assert (values["card_count_10m"], values["card_sum_10m"], values["card_count_1h"]) == (2, 300, 3)
    for values in first:  # nothing before the first payment: counts and sums 0, means null
        assert (values["card_count_7d"], values["card_sum_7d"], values["card_mean_7d"]) == (0, 0, None)
        assert values["merchant_count_hl1h"] == 0 and values["merchant_mean_hl24h"] is None


def test_as_known_leaves_out_what_arrived_after_the_point() -> None:
    # Arrival order: B (t=10 min), the point (t=20 min), then A (t=5 min, late). As happened, the point
    # sees A and B; as known at its arrival, only B.
    from dotjoin.pipelines.features.backfill import as_tables

    b, point, a = (
        ("c", "m", T0 + 10 * MINUTE_MS, 200),
        ("c", "m", T0 + 20 * MINUTE_MS, 1),
        ("c", "m", T0 + 5 * MINUTE_MS, 100),
    )
    arrival = [b, point, a]
    known = backfill(*as_tables(["b", "p", "a"], arrival, arrival=True)).to_pylist()[1]
    happened = backfill(*as_tables(["b", "p", "a"], arrival)).to_pylist()[1]
    assert (known["card_count_1h"], known["card_sum_1h"]) == (1, 200)
    assert (happened["card_count_1h"], happened["card_sum_1h"]) == (2, 300)
    assert known["card_sum_hl1h"] == pytest.approx(200 * 2 ** (-10 / 60), rel=1e-12)
    assert happened["card_sum_hl1h"] == pytest.approx(
        200 * 2 ** (-10 / 60) + 100 * 2 ** (-15 / 60), rel=1e-12
    )


def test_decay_halves_a_payment_per_half_life() -> None:
    history = [("c", "m", T0, 1_000)]
    pairs = both(history, [("c", "m", T0 + HOUR_MS), ("c", "m", T0 + DAY_MS)])
    for hours, (online, offline) in zip((1, 24), pairs, strict=True):
        for values in (online, offline):
            assert values["card_sum_hl1h"] == pytest.approx(1_000 * 2**-hours, rel=1e-12)
            assert values["card_count_hl24h"] == pytest.approx(2 ** -(hours / 24), rel=1e-12)
            assert values["card_mean_hl1h"] == pytest.approx(1_000.0, rel=1e-12)


def test_decay_spans_epochs_without_overflow() -> None:
    # 700 hourly half-lives apart: the backfill's epochs are 512 half-lives long; 2 ** 700 would not overflow
    # a double, but 2 ** (t / h) over an absolute time would.
    history = [("c", "m", T0, 1_000), ("c", "m", T0 + 700 * HOUR_MS, 10)]
    ((online, offline),) = both(history, [("c", "m", T0 + 700 * HOUR_MS + HOUR_MS)])
    expected = 1_000 * 2.0**-701 + 10 * 0.5
    assert online["card_sum_hl1h"] == pytest.approx(expected, rel=1e-12)
    assert offline["card_sum_hl1h"] == pytest.approx(expected, rel=1e-12)


def test_arrival_order_does_not_matter_online() -> None:
    rng = random.Random(7)
    # 20 days: in either order, payments leave the lists for the folds (KEEP_MS is 7 days and an hour)
    history = [("c", "m", T0 + rng.randrange(0, 20 * DAY_MS), rng.randrange(1, 10_000)) for _ in range(400)]
    shuffled = history[:]
    rng.shuffle(shuffled)
    a, b = OnlineFeatures(), OnlineFeatures()
    a.add_all(sorted(history, key=lambda r: r[2]))
    b.add_all(shuffled)
    t = T0 + 20 * DAY_MS
    fa, fb = (
        a.features_at(card_id="c", merchant_id="m", t=t),
        b.features_at(card_id="c", merchant_id="m", t=t),
    )
    assert agree(fa, fb) == []
    assert fa["card_count_7d"] > 0 and a.entities["card"]["c"].folded.anchor is not None


def test_streaming_and_backfill_agree_on_a_random_stream_with_late_payments() -> None:
    # 20 days of payments over few cards and merchants (so windows hold many), some arriving up to 50 min
    # late; each payment scored online as it arrives (its own features, before it is added), then the same
    # points backfilled as known at arrival: every windowed feature equal, every decayed one within 1e-9.
    # As happened (late payments included) they must differ exactly where a late payment was missed.
    from dotjoin.pipelines.features.backfill import as_tables
    from dotjoin.pipelines.features.parity import late_affected

    rng = random.Random(11)
    rows, t = [], T0
    for _ in range(3_000):
        t += rng.randrange(0, 20 * MINUTE_MS)
        rows.append((f"c{rng.randrange(8)}", f"m{rng.randrange(3)}", t, rng.randrange(1, 50_000)))
    arrival = sorted(rows, key=lambda r: r[2] + rng.choice([0, 0, 0, rng.randrange(0, 50 * MINUTE_MS)]))
    online, served = OnlineFeatures(), []
    for card, merchant, time_ms, cents in arrival:
        served.append(online.features_at(card_id=card, merchant_id=merchant, t=time_ms))
        online.add(card_id=card, merchant_id=merchant, time_ms=time_ms, cents=cents)
    assert KEEP_MS > 7 * DAY_MS
    ids = [str(n) for n in range(len(arrival))]
    known = backfill(*as_tables(ids, arrival, arrival=True)).to_pylist()
    happened = backfill(*as_tables(ids, arrival)).to_pylist()
    affected = late_affected([r[:3] for r in arrival])
    for n, (mine, as_known, as_happened) in enumerate(zip(served, known, happened, strict=True)):
        assert agree(mine, {k: v for k, v in as_known.items() if k != "point_id"}) == [], arrival[n]
        if not affected[n]:
            assert agree(mine, {k: v for k, v in as_happened.items() if k != "point_id"}) == []
    differing = sum(bool(agree(m, h)) for m, h, a in zip(served, happened, affected, strict=True) if a)
    assert sum(affected) > 0 and differing > 0  # late payments exist, and as happened sees them


def test_parity_on_the_simulated_payments_stream(tmp_path: Path) -> None:
    # The payments simulator's stream (out-of-order, late and duplicate messages included), replayed as
    # served: every point agrees with the backfill as known; the late payments' effect is counted.
    from dotjoin.pipelines.features.parity import check_parity
    from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
    from dotjoin.simulate.payments.output import write_fx_rates, write_log
    from dotjoin.simulate.payments.stream import generate

    sim = generate(seed=3, eps=100, duration_s=180, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    write_log(sim, tmp_path)
    history = read_recorded(tmp_path / "events.jsonl")
    report = check_parity(history.payments, read_usd_rates(write_fx_rates(tmp_path / "fx.csv")))
    assert report.mismatched == 0, report.examples
    assert report.duplicates > 0 and report.late_affected > 0 and report.late_differing > 0
    assert report.payments == report.points + report.duplicates
    assert report.points == report.agreeing + report.mismatched


def test_the_stream_job_fills_the_online_store_exactly_once(local_settings: Settings, tmp_path: Path) -> None:
    # The simulator's stream on the embedded bus → `features stream` → the SQLite online store; then every
    # card's and merchant's features as of after the stream equal the backfill of the recorded messages.
    # A second run under a new group re-reads every message and applies none (the stored offsets).
    from dotjoin.pipelines.features.backfill import as_tables, distinct_rows
    from dotjoin.pipelines.features.store import OnlineStore
    from dotjoin.pipelines.features.stream import NAMESPACE, run_stream
    from dotjoin.pipelines.payments.history import read_recorded, read_usd_rates
    from dotjoin.platform.bus import open_bus
    from dotjoin.platform.kv import open_kv
    from dotjoin.simulate.payments.output import produce, write_fx_rates, write_log
    from dotjoin.simulate.payments.stream import generate

    sim = generate(seed=4, eps=40, duration_s=90, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    write_log(sim, tmp_path)
    rates = read_usd_rates(write_fx_rates(tmp_path / "fx.csv"))
    with open_bus(local_settings).producer() as producer:
        produce(sim, producer, eps=0)
    first = run_stream(local_settings, usd_rates=rates, idle_exit=1.0)
    assert first.status == "succeeded", [c for c in first.checks if not c.passed]
    assert first.counts["quarantined"] > 0 and first.counts["duplicates"] > 0

    ids, rows, _ = distinct_rows(read_recorded(tmp_path / "events.jsonl").payments, rates)
    assert first.counts["output"] == len(rows)
    end = max(r[2] for r in rows) + 1
    pairs = sorted({(r[0], r[1]) for r in rows})[:300]
    at = [(card, merchant, end) for card, merchant in pairs]
    truth = backfill(as_tables(ids, rows)[0], points(at))
    with open_kv(local_settings, NAMESPACE) as kv:
        store = OnlineStore(kv)
        for (card, merchant, t), expected in zip(at, truth.to_pylist(), strict=True):
            got = store.features_at(card_id=card, merchant_id=merchant, t=t)
            assert agree(got, {k: v for k, v in expected.items() if k != "point_id"}) == [], (card, merchant)

    again = run_stream(local_settings, usd_rates=rates, group="another", idle_exit=1.0)
    assert again.counts["output"] == 0 and again.counts["duplicates"] == again.counts["input"] > 0
