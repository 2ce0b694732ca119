"""The direct tree walk equals scikit-learn's own predict_proba, and anything else falls back to it."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from dotjoin.pipelines.features.trees import TOLERANCE, _library, probabilities


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3_000, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(scale=0.5, size=3_000) > 1.0).astype(int)
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take each node's learned side
    return x, y


def test_tree_walk_equals_predict_proba_on_unseen_rows() -> None:
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x[:2_000], y[:2_000])
    predict = probabilities(model, x[:4])
    assert predict.__qualname__.startswith("_tree_sum")  # the fast path was taken
    unseen = x[2_000:]
    assert np.abs(predict(unseen) - model.predict_proba(unseen)[:, 1]).max() <= TOLERANCE
    assert predict(np.full((1, 6), np.nan)).shape == (1,)


def test_other_models_fall_back_to_predict_proba() -> None:
    x, y = _data(1)
    rows = np.nan_to_num(x)
    model = LogisticRegression().fit(rows, y)
    predict = probabilities(model, rows[:4])
    assert predict.__qualname__.startswith("_library")
    assert np.array_equal(predict(rows[:50]), model.predict_proba(rows[:50])[:, 1])
    multiclass = HistGradientBoostingClassifier(max_iter=5).fit(x, (x[:, 0] > 0).astype(int) + (y * 2))
    assert probabilities(multiclass, x[:4]).__qualname__.startswith("_library")
    assert _library(model)(rows[:1]).shape == (1,)
