"""The row-accounting chart geometry."""

from __future__ import annotations

import pytest

from dotjoin.web.chart import BAR_WIDTH, accounting_chart


def test_balanced_segments_fill_the_input_bar_in_proportion() -> None:
    chart = accounting_chart({"input": 1000, "output": 960, "quarantined": 30, "duplicates": 10})
    assert chart is not None and chart.balanced and chart.unaccounted == 0
    assert chart.input.width == BAR_WIDTH
    assert [(s.kind, s.width) for s in chart.segments] == [
        ("output", pytest.approx(BAR_WIDTH * 0.96)),
        ("quarantined", pytest.approx(BAR_WIDTH * 0.03)),
        ("duplicates", pytest.approx(BAR_WIDTH * 0.01)),
    ]
    xs = [s.x for s in chart.segments]
    assert xs == sorted(xs) and xs[0] == chart.input.x
    assert chart.segments[1].x == pytest.approx(chart.segments[0].x + chart.segments[0].width)
    assert [s.percent for s in chart.legend] == ["96.0%", "3.0%", "1.0%"]


def test_missing_rows_become_an_unaccounted_segment() -> None:
    chart = accounting_chart({"input": 100, "output": 50})
    assert chart is not None and not chart.balanced and chart.unaccounted == 50
    assert [s.kind for s in chart.segments] == ["output", "unaccounted"]
    assert [s.kind for s in chart.legend] == ["output", "quarantined", "duplicates", "unaccounted"]
    assert chart.segments[1].width == pytest.approx(BAR_WIDTH / 2)
    assert "50 rows unaccounted" in chart.summary


def test_over_count_shrinks_the_input_bar() -> None:
    chart = accounting_chart({"input": 50, "output": 100})
    assert chart is not None and chart.unaccounted == -50
    assert chart.input.width == pytest.approx(BAR_WIDTH / 2)
    assert chart.segments[0].width == pytest.approx(BAR_WIDTH)
    assert chart.input_end == pytest.approx(chart.input.x + BAR_WIDTH / 2)


def test_zero_rows_and_no_input() -> None:
    empty = accounting_chart({"input": 0})
    assert empty is not None and empty.balanced and empty.segments == ()
    assert empty.input.width == 0
    assert accounting_chart({"output": 3}) is None


def test_labels_only_where_they_fit() -> None:
    chart = accounting_chart({"input": 1_000_000, "output": 999_000, "quarantined": 1_000})
    assert chart is not None
    output, quarantined = chart.segments
    assert output.label == "999,000" and output.label_fits
    assert not quarantined.label_fits
