"""Drift: each feature's distribution in served traffic against the one its model was trained on.

At training, each feature's distribution is frozen as a **histogram**, not the rows: edges at the
training set's deciles (ties merged) and the share of values in each bin, the nulls a bin of their own
(:func:`reference_histograms`, logged with the model as ``drift_reference.json``). Served vectors (the
served-feature log) are binned on those edges over sliding windows of serving time, and compared:

* **PSI** (population stability index) ``sum((served - ref) * ln(served / ref))`` over the bins, shares
  floored at 1e-4 so an empty bin is finite; the usual reading: below 0.1 stable, 0.1 to 0.2 moderate,
  above :data:`PSI_ALERT` (0.2) significant: the alert;
* **KS** on the bins: the largest gap between the two cumulative shares — the two-sample KS statistic
  evaluated at the reference's edges only, so a lower bound of the exact one.

Work per window is one ``searchsorted`` per feature over the window's rows: the reference is never
re-read (Evidently's cost on millions of rows is re-scanning it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from dotjoin.pipelines.features.definitions import FEATURES

DRIFT_ARTIFACT = "drift_reference.json"
DRIFT_STATUS = "features/drift.json"  # what the /features page draws, relative to state_dir
BINS = 10
PSI_ALERT = 0.2
FLOOR = 1e-4


def proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The shares of ``values`` per bin: ``[null, (-inf, e0], (e0, e1], ..., (e_last, inf)]``."""
    nulls = np.isnan(values)
    bins = np.bincount(np.searchsorted(edges, values[~nulls], side="left"), minlength=edges.size + 1)
    return np.concatenate([[nulls.sum()], bins]) / max(values.size, 1)


def reference_histograms(matrix: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per feature (the columns of ``matrix``, in :data:`FEATURES` order): decile edges and bin shares."""
    out = {}
    for n, feature in enumerate(FEATURES):
        column = matrix[:, n]
        present = column[~np.isnan(column)]
        cuts = np.linspace(0, 1, BINS + 1)[1:-1]
        edges = np.unique(np.quantile(present, cuts)) if present.size else np.array([])
        out[feature.name] = {"edges": edges.tolist(), "shares": proportions(column, edges).tolist(),
                             "rows": int(column.size)}  # fmt: skip
    return out


def psi(reference: np.ndarray, served: np.ndarray) -> float:
    r, s = np.maximum(reference, FLOOR), np.maximum(served, FLOOR)
    return float(np.sum((s - r) * np.log(s / r)))


def ks(reference: np.ndarray, served: np.ndarray) -> float:
    return float(np.max(np.abs(np.cumsum(served) - np.cumsum(reference))))


@dataclass
class Window:
    model_version: str
    start_ms: int
    end_ms: int
    rows: int
    psi: dict[str, float]
    ks: dict[str, float]

    @property
    def worst(self) -> tuple[str, float]:
        name = max(self.psi, key=self.psi.__getitem__)
        return name, self.psi[name]


def windows(
    served: pa.Table,
    references: dict[str, dict[str, dict[str, Any]]],
    *,
    window_ms: int,
    step_ms: int,
    min_rows: int,
) -> list[Window]:
    """PSI and KS per feature over sliding windows of serving time (``window_ms`` wide, every
    ``step_ms``), per model version against its own reference; windows with fewer than ``min_rows``
    vectors are left out (PSI on a few rows is noise)."""
    out = []
    versions = served.column("model_version").to_numpy(zero_copy_only=False)
    at = served.column("served_at_ms").to_numpy()
    matrix = np.column_stack(
        [np.asarray(served.column(f.name).to_numpy(zero_copy_only=False), dtype=np.float64) for f in FEATURES]
    )
    for version, reference in references.items():
        mine = versions == version
        if not mine.any():
            continue
        times, rows = at[mine], matrix[mine]
        edges = {f.name: np.asarray(reference[f.name]["edges"], dtype=np.float64) for f in FEATURES}
        shares = {f.name: np.asarray(reference[f.name]["shares"]) for f in FEATURES}
        first, last = int(times.min()), int(times.max())
        end = first + window_ms
        while True:
            inside = (times >= end - window_ms) & (times < end)
            if inside.sum() >= min_rows:
                now = {f.name: proportions(rows[inside, n], edges[f.name]) for n, f in enumerate(FEATURES)}
                out.append(Window(version, end - window_ms, end, int(inside.sum()),
                                  {k: psi(shares[k], v) for k, v in now.items()},
                                  {k: ks(shares[k], v) for k, v in now.items()}))  # fmt: skip
            if end > last:
                break
            end += step_ms
    return out


def status(found: list[Window], threshold: float) -> dict[str, Any]:
    """What the drift page draws: every window's PSI per feature, the threshold, when."""
    return {
        "computed_at": time.time(),
        "threshold": threshold,
        "windows": [
            {"model_version": w.model_version, "start_ms": w.start_ms, "end_ms": w.end_ms, "rows": w.rows,
             "psi": w.psi, "ks": w.ks}
            for w in found
        ],
    }  # fmt: skip


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, allow_nan=False, sort_keys=True)
