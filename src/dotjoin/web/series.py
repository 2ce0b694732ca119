"""Geometry of the dashboard's line charts (inline SVG, drawn server-side: no script, no CDN).

>>> c = line_chart("x", [{"t": 0, "v": 0.0}, {"t": 1, "v": 10.0}, {"t": 2, "v": 5.0}], [("v", "v")])
>>> c.lines[0].points, c.top
('56.0,150.0 388.0,24.0 720.0,87.0', 10.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 720.0, 170.0, 56.0, 24.0, 20.0
PALETTE = ("#1971c2", "#e8590c", "#c92a2a", "#2f9e44")


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str  # SVG polyline "x,y x,y ..."
    last: float | None


@dataclass(frozen=True)
class LineChart:
    title: str
    lines: tuple[Line, ...]
    top: float  # the value at the top of the plot
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    plot_top: float = TOP

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM


def line_chart(
    title: str, points: Sequence[Mapping[str, float]], series: Sequence[tuple[str, str]]
) -> LineChart:
    """One chart of ``series`` (label, key) over ``points`` (dicts with ``t`` and the keys), scaled to fit."""
    values = [float(p[k]) for p in points for _, k in series if k in p]
    top = max(values, default=0.0) or 1.0
    times = [float(p["t"]) for p in points]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = (t1 - t0) or 1.0
    plot_h = HEIGHT - TOP - BOTTOM
    lines = []
    for i, (label, key) in enumerate(series):
        xy = [
            f"{LEFT + (float(p['t']) - t0) / span * (WIDTH - LEFT):.1f},"
            f"{TOP + plot_h * (1 - float(p[key]) / top):.1f}"
            for p in points
            if key in p
        ]
        last = next((float(p[key]) for p in reversed(points) if key in p), None)
        lines.append(Line(label, PALETTE[i % len(PALETTE)], " ".join(xy), last))
    return LineChart(title, tuple(lines), top)


def drift_view(drift: Mapping[str, Any], *, top: int = 4) -> dict[str, Any]:
    """The drift page's parts from the drift status: the newest model's windows, a chart of PSI over time
    for the ``top`` features that drifted most in the latest window (and the alert line), and every
    feature's latest PSI and KS, worst first."""
    windows = drift["windows"]
    if not windows:
        return {"latest": None, "chart": None, "rows": []}
    newest = max(windows, key=lambda w: (len(w["model_version"]), w["model_version"], w["end_ms"]))
    mine = [w for w in windows if w["model_version"] == newest["model_version"]]
    latest = mine[-1]
    worst = sorted(latest["psi"], key=latest["psi"].__getitem__, reverse=True)
    points = [{"t": w["end_ms"] / 1000, "alert": drift["threshold"], **w["psi"]} for w in mine]
    series = [(name, name) for name in worst[:top]] + [(f"alert {drift['threshold']}", "alert")]
    chart = line_chart(f"PSI per window, model {newest['model_version']}", points, series)
    scale = max([drift["threshold"] * 2, *latest["psi"].values()])
    rows = [{"feature": name, "psi": latest["psi"][name], "ks": latest["ks"][name],
             "width": round(100 * latest["psi"][name] / scale, 1),
             "drifted": latest["psi"][name] >= drift["threshold"]} for name in worst]  # fmt: skip
    return {"latest": latest, "chart": chart, "rows": rows}
