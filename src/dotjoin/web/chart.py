"""Geometry of the row-accounting chart: a stacked horizontal bar drawn server-side as inline SVG.

The template ``_accounting_chart.html`` only places what this module computes, so the arithmetic (and the
proportionality of the segments) is plain Python and unit-testable.

>>> chart = accounting_chart({"input": 10, "output": 7, "quarantined": 2, "duplicates": 1})
>>> [(s.kind, s.count, s.width) for s in chart.segments]
[('output', 7, 392.0), ('quarantined', 2, 112.0), ('duplicates', 1, 56.0)]
>>> chart.balanced
True
>>> accounting_chart({"output": 3}) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

ACCOUNTED_KINDS: tuple[str, ...] = ("output", "quarantined", "duplicates")
COLOURS: dict[str, str] = {
    "input": "#868e96",
    "output": "#2f9e44",
    "quarantined": "#e8590c",
    "duplicates": "#1971c2",
    "unaccounted": "#e03131",
}

WIDTH = 720.0
BAR_X = 110.0
BAR_WIDTH = 560.0
BAR_HEIGHT = 24.0
INPUT_Y = 8.0
ACCOUNTED_Y = INPUT_Y + BAR_HEIGHT + 14.0
LEGEND_TOP = ACCOUNTED_Y + BAR_HEIGHT + 24.0
LEGEND_STEP = 20.0
_CHAR_PX = 7.2  # average advance of a 12px system-font digit, to decide whether a label fits


@dataclass(frozen=True)
class Segment:
    """One coloured piece of a bar."""

    kind: str
    count: int
    x: float
    width: float
    share: float  # of the input count; 0 when the input is 0

    @property
    def colour(self) -> str:
        return COLOURS[self.kind]

    @property
    def label(self) -> str:
        return f"{self.count:,}"

    @property
    def label_fits(self) -> bool:
        """Whether the count can be written inside the segment."""
        return self.width >= len(self.label) * _CHAR_PX + 10

    @property
    def percent(self) -> str:
        return f"{self.share * 100:.1f}%"


@dataclass(frozen=True)
class AccountingChart:
    """``input`` against ``output + quarantined + duplicates`` on one common scale."""

    input: Segment
    segments: tuple[Segment, ...]  # the accounted kinds with a non-zero count, left to right
    legend: tuple[Segment, ...]  # every accounted kind, plus the gap when the books don't balance
    accounted: int

    @property
    def balanced(self) -> bool:
        return self.input.count == self.accounted

    @property
    def unaccounted(self) -> int:
        """Rows of input that no output, quarantine or duplicate explains (negative: over-counted)."""
        return self.input.count - self.accounted

    @property
    def input_end(self) -> float:
        """Where the input bar ends: the mark the accounted bar must reach exactly."""
        return self.input.x + self.input.width

    @property
    def height(self) -> float:
        return LEGEND_TOP + LEGEND_STEP * len(self.legend)

    width: ClassVar[float] = WIDTH
    bar_x: ClassVar[float] = BAR_X
    bar_height: ClassVar[float] = BAR_HEIGHT
    input_y: ClassVar[float] = INPUT_Y
    accounted_y: ClassVar[float] = ACCOUNTED_Y
    legend_top: ClassVar[float] = LEGEND_TOP
    legend_step: ClassVar[float] = LEGEND_STEP

    @property
    def summary(self) -> str:
        """A one-line text alternative for screen readers."""
        parts = ", ".join(f"{s.kind} {s.count:,}" for s in self.legend if s.kind != "unaccounted")
        verdict = "balanced" if self.balanced else f"{self.unaccounted:,} rows unaccounted"
        return f"Row accounting: input {self.input.count:,}; {parts}; {verdict}."


def accounting_chart(counts: Mapping[str, int], *, bar_width: float = BAR_WIDTH) -> AccountingChart | None:
    """Lay out the row-accounting bar for a run's counts, or ``None`` when the run has no input count.

    Both bars share one scale, the larger of ``input`` and the accounted sum, so an over-count shows as
    an accounted bar longer than the input bar, and an under-count as an ``unaccounted`` gap.

    Args:
        counts: the run report's counts; missing accounted kinds count as 0.
        bar_width: the width in SVG units of the longer bar.

    Returns:
        The chart geometry; ``None`` if ``counts`` has no ``input`` (accounting does not apply).
    """
    if "input" not in counts:
        return None
    total = int(counts["input"])
    values = {kind: int(counts.get(kind, 0)) for kind in ACCOUNTED_KINDS}
    accounted = sum(values.values())
    scale = max(total, accounted)

    def width(count: int) -> float:
        return round(bar_width * count / scale, 3) if scale else 0.0

    def share(count: int) -> float:
        return count / total if total else 0.0

    legend: list[Segment] = []
    x = BAR_X
    for kind, count in values.items():
        legend.append(Segment(kind, count, x, width(count), share(count)))
        x += width(count)
    if total > accounted:
        gap = total - accounted
        legend.append(Segment("unaccounted", gap, x, width(gap), share(gap)))
    return AccountingChart(
        input=Segment("input", total, BAR_X, width(total), 1.0 if total else 0.0),
        segments=tuple(s for s in legend if s.count > 0),
        legend=tuple(legend),
        accounted=accounted,
    )
