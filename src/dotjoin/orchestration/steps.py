"""Step declarations: one description of a pipeline's steps feeds both runtimes.

A flow is a DAG of steps for one logical date (the partition). A step is a plain function of a
:class:`StepContext` that returns small JSON metadata (row counts, paths, run ids — never the data);
downstream steps read it from ``ctx.upstream``. The local runner stores it in its state database, Airflow
in XCom. A branch step returns the names of the downstream steps to follow; the others are skipped.

Example::

    def fetch(ctx: StepContext) -> dict[str, Any]:
        path = land_prices(ctx.settings, ctx.logical_date)
        return {"path": str(path), "rows": 5}

    FLOW = Flow(
        name="stocks",
        description="daily prices -> raw -> warehouse -> quality -> notify",
        start_date=date(2024, 1, 1),
        steps=(
            Step("fetch", fetch, retries=3),
            Step("load", load, upstream=("fetch",)),
        ),
    )

Steps must be idempotent per logical date: running a date again replaces that date's outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from dotjoin.exceptions import DotjoinError

if TYPE_CHECKING:
    from dotjoin.config import Settings

#: Airflow's names: ``all_success`` runs when every upstream succeeded (a skipped upstream skips it);
#: ``none_failed`` runs unless an upstream failed (joins after a branch).
TriggerRule = Literal["all_success", "none_failed"]
MAX_METADATA_BYTES = 64 * 1024


class StepFailed(DotjoinError):
    """A step's own verdict that its date is not good (e.g. a quality check failed): retried, then alerted."""


@dataclass(frozen=True)
class StepContext:
    """What a step receives. ``upstream`` maps each upstream step's name to the metadata it returned."""

    flow: str
    step: str
    logical_date: date
    settings: Settings
    upstream: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    attempt: int = 1  # 1 on the first try
    run_id: str = ""  # the runtime's id of this flow run (local run id or Airflow dag_run.run_id)
    params: Mapping[str, Any] = field(default_factory=dict)  # runtime parameters, e.g. base_url

    def get(self, step: str, key: str, default: Any = None) -> Any:
        """One value an upstream step returned (``default`` if it returned none, e.g. was skipped)."""
        return self.upstream.get(step, {}).get(key, default)


StepFn = Callable[[StepContext], Any]


@dataclass(frozen=True)
class Step:
    """One task. Retries wait ``retry_delay_s * backoff ** (n - 1)`` (capped) before try ``n + 1``."""

    name: str
    fn: StepFn
    upstream: tuple[str, ...] = ()
    retries: int = 2
    retry_delay_s: float = 5.0
    backoff: float = 2.0  # 1.0 = constant delay
    max_retry_delay_s: float = 300.0
    timeout_s: float | None = 3600.0
    branch: bool = False  # fn returns the names of the downstream steps to follow
    trigger_rule: TriggerRule = "all_success"
    doc: str = ""

    @property
    def summary(self) -> str:
        """One line saying what the step does: ``doc``, else its function's docstring's first line."""
        text = (self.doc or self.fn.__doc__ or "").strip()
        return text.splitlines()[0] if text else ""

    def retry_delay(self, failed_attempt: int) -> float:
        """Seconds to wait after try ``failed_attempt`` failed.

        >>> s = Step("x", print, retry_delay_s=2, backoff=3, max_retry_delay_s=10)
        >>> [s.retry_delay(n) for n in (1, 2, 3)]
        [2.0, 6.0, 10.0]
        """
        return float(min(self.retry_delay_s * self.backoff ** (failed_attempt - 1), self.max_retry_delay_s))


@dataclass(frozen=True)
class Flow:
    """A pipeline's steps for one logical date, plus how a scheduler should run it."""

    name: str
    description: str
    steps: tuple[Step, ...]
    start_date: date
    schedule: str = "@daily"
    owner: str = "data-platform"
    max_active_runs: int = 1
    catchup: bool = False
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"flow {self.name}: step names repeat: {', '.join(dupes)}")
        for s in self.steps:
            missing = [u for u in s.upstream if u not in names]
            if missing:
                raise ValueError(f"flow {self.name}: step {s.name} depends on unknown {', '.join(missing)}")
        self.order()  # raises on a cycle

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"flow {self.name} has no step {name!r}")

    def downstream(self, name: str) -> list[str]:
        """Steps that list ``name`` as an upstream, in declaration order."""
        return [s.name for s in self.steps if name in s.upstream]

    def order(self) -> list[Step]:
        """The steps in a dependency order (declaration order among ready steps).

        >>> f = Flow("f", "", (Step("b", print, upstream=("a",)), Step("a", print)), date(2024, 1, 1))
        >>> [s.name for s in f.order()]
        ['a', 'b']
        """
        done: list[str] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if all(u in done for u in s.upstream)]
            if not ready:
                cycle = ", ".join(s.name for s in pending)
                raise ValueError(f"flow {self.name}: steps form a cycle: {cycle}")
            done.append(ready[0].name)
            pending.remove(ready[0])
        return [self.step(n) for n in done]


def check_metadata(step: str, value: Any) -> dict[str, Any]:
    """A step's return value as the small JSON object passed downstream (``None`` -> ``{}``).

    Refuses what is not metadata: a non-dict, something JSON cannot hold, or more than 64 KiB —
    data moves through the warehouse and the lake, never through the orchestrator.

    >>> check_metadata("load", {"rows": 3})
    {'rows': 3}
    >>> check_metadata("load", [1, 2])
    Traceback (most recent call last):
    ...
    dotjoin.exceptions.DataError: step load returned list; a step returns a dict of small metadata or None
    """
    from dotjoin.exceptions import DataError

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DataError(
            f"step {step} returned {type(value).__name__}; a step returns a dict of small metadata or None"
        )
    try:
        text = json.dumps(dict(value), default=str)
    except (TypeError, ValueError) as exc:
        raise DataError(f"step {step} returned metadata JSON cannot hold: {exc}") from exc
    if len(text) > MAX_METADATA_BYTES:
        raise DataError(
            f"step {step} returned {len(text)} bytes of metadata (limit {MAX_METADATA_BYTES}); "
            "pass a path or a table name instead of the data"
        )
    return dict(json.loads(text))


def branch_targets(flow: Flow, step: Step, value: Any) -> list[str]:
    """Validate a branch step's return: names of its own downstream steps (a str is one name)."""
    from dotjoin.exceptions import DataError

    chosen = [value] if isinstance(value, str) else list(value or [])
    allowed = flow.downstream(step.name)
    wrong = [c for c in chosen if c not in allowed]
    if wrong or not all(isinstance(c, str) for c in chosen):
        raise DataError(
            f"branch {step.name} chose {wrong or chosen}; it may choose among its downstream steps: "
            f"{', '.join(allowed)}"
        )
    return chosen


def flow_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Runtime params as plain JSON (what both runtimes pass to every step)."""
    return dict(json.loads(json.dumps(dict(params or {}), default=str)))


@dataclass(frozen=True)
class StepOutcome:
    """What one successful try of a step produced: its metadata, and for a branch the steps it chose."""

    metadata: dict[str, Any]
    chosen: list[str] | None = None  # branch steps only


def execute(flow: Flow, step: Step, ctx: StepContext) -> StepOutcome:
    """Call the step once and validate what it returned — the one code path both runtimes use.

    A branch's metadata is ``{"chosen": [...]}``. Exceptions propagate: retrying is the runtime's job.
    """
    value = step.fn(ctx)
    if step.branch:
        chosen = branch_targets(flow, step, value)
        return StepOutcome({"chosen": chosen}, chosen)
    return StepOutcome(check_metadata(step.name, value))
