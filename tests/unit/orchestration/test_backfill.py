"""Backfills: the dates run by default, with ``only_failed`` and with ``force``; failures do not stop them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dotjoin.config import Settings
from dotjoin.exceptions import DotjoinError
from dotjoin.orchestration.runner import backfill, run_date
from dotjoin.orchestration.state import RunState
from dotjoin.orchestration.steps import Flow, Step, StepContext

D1 = date(2024, 2, 27)
DAYS = [D1 + timedelta(days=n) for n in range(5)]  # 27, 28, 29 (leap day), Mar 1, Mar 2


class Toy:
    """A two-step flow whose ``load`` fails on the dates in ``bad``; counts every call."""

    def __init__(self, name: str, bad: set[date] | None = None) -> None:
        self.bad = bad or set()
        self.calls: list[tuple[str, date]] = []
        self.flow = Flow(
            name,
            "toy",
            (Step("extract", self.extract), Step("load", self.load, upstream=("extract",), retries=0)),
            D1,
        )

    def extract(self, ctx: StepContext) -> dict[str, str]:
        self.calls.append(("extract", ctx.logical_date))
        return {"day": ctx.logical_date.isoformat()}

    def load(self, ctx: StepContext) -> None:
        self.calls.append(("load", ctx.logical_date))
        if ctx.logical_date in self.bad:
            raise RuntimeError(f"no data for {ctx.logical_date}")

    def loaded(self) -> list[date]:
        return [d for step, d in self.calls if step == "load"]


def test_default_runs_every_date_not_yet_succeeded_and_failures_do_not_stop_it(
    local_settings: Settings,
) -> None:
    toy = Toy("bf_default", bad={DAYS[2]})
    run_date(toy.flow, local_settings, DAYS[1])  # already green
    toy.calls.clear()
    progress: list[tuple[int, int, date]] = []

    result = backfill(toy.flow, local_settings, DAYS[0], DAYS[-1], progress=lambda *a: progress.append(a))

    assert result.ran == [DAYS[0], DAYS[2], DAYS[3], DAYS[4]]
    assert result.skipped == [DAYS[1]]
    assert result.failed == [DAYS[2]]
    assert result.succeeded == [DAYS[0], DAYS[3], DAYS[4]]
    assert toy.loaded() == result.ran
    assert progress == [(n + 1, 5, d) for n, d in enumerate(DAYS)]
    assert result.outcomes[1].reason == "already succeeded"
    assert set(result.reports) == set(result.ran)
    assert result.reports[DAYS[2]].status == "failed"
    assert {r.params["logical_date"] for r in result.reports.values()} == {d.isoformat() for d in result.ran}

    toy.bad.clear()
    toy.calls.clear()
    resumed = backfill(toy.flow, local_settings, DAYS[0], DAYS[-1])
    assert resumed.ran == [DAYS[2]] and resumed.succeeded == [DAYS[2]]
    assert toy.calls == [("load", DAYS[2])]  # its extract succeeded before: reused, not re-run


def test_only_failed_runs_only_failed_dates(local_settings: Settings) -> None:
    toy = Toy("bf_only_failed", bad={DAYS[1], DAYS[3]})
    for day in DAYS[:4]:
        run_date(toy.flow, local_settings, day)  # DAYS[4] never ran
    toy.bad = {DAYS[3]}
    toy.calls.clear()

    result = backfill(toy.flow, local_settings, DAYS[0], DAYS[-1], only_failed=True)

    assert result.ran == [DAYS[1], DAYS[3]]
    assert (result.succeeded, result.failed) == ([DAYS[1]], [DAYS[3]])
    assert [o.reason for o in result.outcomes if o.status == "skipped"] == [
        "already succeeded",
        "already succeeded",
        "never run",
    ]
    assert toy.calls == [("load", DAYS[1]), ("load", DAYS[3])]


def test_force_reruns_every_date_and_every_step(local_settings: Settings) -> None:
    toy = Toy("bf_force")
    backfill(toy.flow, local_settings, DAYS[0], DAYS[2])
    toy.calls.clear()

    result = backfill(toy.flow, local_settings, DAYS[0], DAYS[2], force=True)

    assert result.ran == DAYS[:3] and result.skipped == []
    assert len(toy.calls) == 6
    assert not any(s.reused for r in result.reports.values() for s in r.steps)
    with RunState.open(local_settings) as state:
        assert len(state.tries("bf_force", DAYS[0])) == 4  # two runs of two steps


def test_end_before_start_is_one_line(local_settings: Settings) -> None:
    with pytest.raises(
        DotjoinError, match=r"^backfill of bf_bad: the end 2024-02-27 is before the start 2024-02-28$"
    ):
        backfill(Toy("bf_bad").flow, local_settings, DAYS[1], DAYS[0])
