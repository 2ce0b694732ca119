"""Drift: frozen training histograms against sliding windows of served vectors (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from dotjoin.pipelines.features.definitions import FEATURES
from dotjoin.pipelines.features.drift import ks, proportions, psi, reference_histograms, windows
from dotjoin.pipelines.features.served import SERVED_SCHEMA

MINUTE_MS = 60_000


def test_bins_are_nulls_then_right_closed_intervals_on_the_edges() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    assert proportions(values, np.array([2.0, 3.0])).tolist() == pytest.approx([0.2, 0.4, 0.2, 0.2])


def test_psi_and_ks_by_hand() -> None:
    reference, served = np.array([0.0, 0.5, 0.5]), np.array([0.0, 0.25, 0.75])
    # the empty null bin is floored at 1e-4 on both sides: it adds nothing
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(reference, served) == pytest.approx(expected) == pytest.approx(0.2747, abs=1e-4)
    assert ks(reference, served) == pytest.approx(0.25)
    assert psi(reference, reference) == 0.0


def _served(matrix: np.ndarray, at_ms: np.ndarray, version: str = "1") -> pa.Table:
    n = matrix.shape[0]
    head = {"event_id": [f"e{i}" for i in range(n)], "card_id": ["c"] * n, "merchant_id": ["m"] * n,
            "time_ms": at_ms, "served_at_ms": at_ms, "model_version": [version] * n, "score": [0.5] * n,
            "offsets": ["{}"] * n}  # fmt: skip
    columns = {**head, **{f.name: matrix[:, k] for k, f in enumerate(FEATURES)}}
    return pa.Table.from_pydict(columns, schema=SERVED_SCHEMA)


def test_a_shift_in_served_traffic_drifts_only_the_windows_it_is_in() -> None:
    rng = np.random.default_rng(3)
    trained = rng.normal(size=(20_000, len(FEATURES)))
    trained[rng.random(trained.shape) < 0.1] = np.nan  # nulls are a bin of their own
    reference = reference_histograms(trained)
    assert all(len(r["shares"]) == len(r["edges"]) + 2 == 11 for r in reference.values())

    # 15 minutes of traffic, 40 vectors a second; from minute 10, card_sum_1h moves by one standard deviation
    at = np.arange(0, 15 * MINUTE_MS, 25, dtype=np.int64)
    live = rng.normal(size=(at.size, len(FEATURES)))
    live[rng.random(live.shape) < 0.1] = np.nan
    shifted = [f.name for f in FEATURES].index("card_sum_1h")
    live[at >= 10 * MINUTE_MS, shifted] += 1.0
    found = windows(
        _served(live, at), {"1": reference}, window_ms=5 * MINUTE_MS, step_ms=MINUTE_MS, min_rows=100
    )
    assert [w.end_ms // MINUTE_MS for w in found] == list(range(5, 16))
    before, after = found[:6], found[-1]  # windows ending by minute 10 hold none of the shift
    assert all(max(w.psi.values()) < 0.1 for w in before)  # sampling noise on 12,000 rows
    assert after.worst[0] == "card_sum_1h" and after.worst[1] > 0.2
    assert sorted(after.psi.values())[-2] < 0.1  # the others did not move
    assert after.ks["card_sum_1h"] > 0.25  # one standard deviation: 0.38 on the 90% that is not null


def test_too_few_vectors_make_no_window_and_versions_use_their_own_reference() -> None:
    rng = np.random.default_rng(4)
    reference = reference_histograms(rng.normal(size=(5_000, len(FEATURES))))
    at = np.arange(0, 2 * MINUTE_MS, 1_000, dtype=np.int64)  # 120 vectors
    served = _served(rng.normal(size=(at.size, len(FEATURES))), at, version="2")
    assert windows(served, {"2": reference}, window_ms=MINUTE_MS, step_ms=MINUTE_MS, min_rows=100) == []
    assert windows(served, {"1": reference}, window_ms=MINUTE_MS, step_ms=MINUTE_MS, min_rows=10) == []
    assert len(windows(served, {"2": reference}, window_ms=MINUTE_MS, step_ms=MINUTE_MS, min_rows=10)) == 2
