"""The flows as Apache Airflow 3 DAGs: ``build_dag(get_flow("stocks"))`` is all a file in ``dags/`` says.

Imported only inside Airflow's virtualenv (``make airflow``); Airflow itself is imported inside
:func:`build_dag`, so this module also loads (for doctests and type checks) where Airflow is absent.

Each :class:`~dotjoin.orchestration.steps.Step` becomes one task with the step's name. The task:

1. loads the settings of the project in ``DOTJOIN_HOME`` (the directory holding ``dotjoin.toml`` and
   ``.dotjoin/``; default: the working directory), profile from ``DOTJOIN_PROFILE``;
2. builds a :class:`~dotjoin.orchestration.steps.StepContext`: the logical date (UTC) as a date, the
   upstream steps' metadata pulled from XCom, ``attempt`` = try number, ``run_id`` = the DAG run's id,
   ``params`` = the DAG params (``base_url``) merged with the run's conf, unset ones left out;
3. calls :func:`~dotjoin.orchestration.steps.execute` — the code path the local runner uses — and
   returns the metadata, which Airflow stores as the task's XCom. A branch step is a branch task that
   returns the chosen task ids (downstream steps read ``{"chosen": [...]}`` as its metadata).

A daily flow's run for date ``D`` starts once ``D`` is over and has logical date ``D`` (a data-interval
timetable, UTC), so ``airflow backfill create --from-date D1 --to-date D2`` runs the dates ``D1..D2``, the
same dates ``dotjoin backfill`` runs.

Retries, delays (``retry_exponential_backoff`` = the step's ``backoff`` when it is above 1, capped by
``max_retry_delay``), timeouts, trigger rules and the owner come from the step; schedule, start date,
catchup, ``max_active_runs`` and tags from the flow. After the last try a task's ``on_failure_callback``
sends the same :class:`~dotjoin.orchestration.alerts.Alert` the local runner sends (``runtime="airflow"``).
A DuckDB warehouse has a single writer, so with it the DAG runs one task at a time (``max_active_tasks=1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotjoin.orchestration.alerts import Alert, send_alert
from dotjoin.orchestration.steps import Flow, Step, StepContext, execute, flow_params

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from dotjoin.config import Settings

HOME_ENV = "DOTJOIN_HOME"
#: DAG params every flow accepts; ``None`` = not set (the step sees no key, as under the local runner).
PARAMS: dict[str, str] = {
    "base_url": "one server for every source, e.g. `dotjoin sources serve` (unset: [ingest] base_url)",
}
TAGS = ("dotjoin",)
NON_CRON = ("@once", "@continuous")


def project_dir(env: Mapping[str, str] | None = None) -> Path:
    """The project directory the tasks load their settings from: ``$DOTJOIN_HOME``, else the cwd.

    >>> project_dir({"DOTJOIN_HOME": "/srv/dotjoin"})
    PosixPath('/srv/dotjoin')
    """
    env = os.environ if env is None else env
    home = env.get(HOME_ENV)
    return Path(home) if home else Path.cwd()


def task_settings() -> Settings:
    """The settings a task runs with (profile from ``DOTJOIN_PROFILE``, ``DOTJOIN__*`` overrides)."""
    from dotjoin.config import load_settings

    return load_settings(cwd=project_dir())


def as_date(value: Any) -> date:
    """Airflow's logical date (an aware datetime) as the UTC calendar date a step works on.

    >>> as_date(datetime(2024, 1, 31, 23, 0, tzinfo=UTC))
    datetime.date(2024, 1, 31)
    """
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def context_date(context: Mapping[str, Any]) -> date:
    """The run's logical date; runs without one (manual, asset-triggered) use ``run_after``."""
    logical = context.get("logical_date")
    if logical is None:
        dag_run = context.get("dag_run")
        logical = getattr(dag_run, "run_after", None) or datetime.now(UTC)
    return as_date(logical)


def run_params(context: Mapping[str, Any]) -> dict[str, Any]:
    """The DAG params overlaid with the run's conf; unset (None) values are left out.

    >>> class Run:
    ...     conf = {"base_url": "http://127.0.0.1:9"}
    >>> run_params({"params": {"base_url": None, "x": 1}, "dag_run": Run()})
    {'base_url': 'http://127.0.0.1:9', 'x': 1}
    """
    merged = dict(context.get("params") or {})
    merged.update(getattr(context.get("dag_run"), "conf", None) or {})
    return flow_params({k: v for k, v in merged.items() if v is not None})


def upstream_metadata(flow: Flow, step: Step, pull: Callable[[str], Any]) -> dict[str, dict[str, Any]]:
    """Each upstream step's metadata from its XCom (a branch's list of choices -> ``{"chosen": [...]}``).

    A skipped upstream pushed nothing and reads as ``{}``, as under the local runner.
    """
    metadata: dict[str, dict[str, Any]] = {}
    for name in step.upstream:
        value = pull(name)
        if flow.step(name).branch:
            chosen = [] if value is None else [value] if isinstance(value, str) else list(value)
            metadata[name] = {"chosen": chosen}
        else:
            metadata[name] = dict(value) if isinstance(value, Mapping) else {}
    return metadata


def make_callable(flow: Flow, step: Step) -> Callable[..., Any]:
    """The task's ``python_callable``: one try of ``step`` through :func:`steps.execute`."""

    def run_step(**context: Any) -> Any:
        ti = context["ti"]
        ctx = StepContext(
            flow=flow.name,
            step=step.name,
            logical_date=context_date(context),
            settings=task_settings(),
            upstream=upstream_metadata(flow, step, lambda name: ti.xcom_pull(task_ids=name)),
            attempt=int(ti.try_number or 1),
            run_id=str(context["dag_run"].run_id),
            params=run_params(context),
        )
        outcome = execute(flow, step, ctx)
        return outcome.chosen if step.branch else outcome.metadata

    run_step.__name__ = f"{flow.name}_{step.name}"
    run_step.__doc__ = step.doc or step.fn.__doc__
    return run_step


def error_text(error: BaseException | str | None) -> str:
    """One line naming the error (the alert's ``error``).

    >>> error_text(ValueError("bad\\nrow"))
    'ValueError: bad row'
    """
    if error is None:
        return "failed (no exception recorded)"
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return " ".join(text.split())


def make_alert_callback(flow: Flow) -> Callable[[Mapping[str, Any]], None]:
    """``on_failure_callback``: after the last try, the same alert the local runner sends."""

    def alert_on_failure(context: Mapping[str, Any]) -> None:
        ti = context["ti"]
        dag_run = context.get("dag_run")
        alert = Alert(
            flow=str(getattr(ti, "dag_id", flow.name)),
            step=str(ti.task_id),
            logical_date=context_date(context),
            error=error_text(context.get("exception")),
            attempts=int(ti.try_number or 1),
            run_id=str(getattr(dag_run, "run_id", "")),
            runtime="airflow",
        )
        send_alert(task_settings(), alert)

    return alert_on_failure


def task_arguments(step: Step) -> dict[str, Any]:
    """An operator's keyword arguments for the step's retry, timeout and trigger-rule policy.

    >>> from dotjoin.orchestration.steps import Step
    >>> args = task_arguments(Step("x", print, retries=3, retry_delay_s=2, backoff=3, timeout_s=60))
    >>> args["retries"], args["retry_delay"], args["retry_exponential_backoff"], args["execution_timeout"]
    (3, datetime.timedelta(seconds=2), 3.0, datetime.timedelta(seconds=60))
    """
    args: dict[str, Any] = {
        "task_id": step.name,
        "retries": step.retries,
        "retry_delay": timedelta(seconds=step.retry_delay_s),
        "max_retry_delay": timedelta(seconds=step.max_retry_delay_s),
        "execution_timeout": None if step.timeout_s is None else timedelta(seconds=step.timeout_s),
        "trigger_rule": step.trigger_rule,
        "doc_md": step.doc or (step.fn.__doc__ or "").strip() or None,
    }
    if step.backoff > 1:
        args["retry_exponential_backoff"] = float(step.backoff)
    return args


def build_dag(flow: Flow, *, settings: Settings | None = None) -> DAG:
    """The Airflow DAG of ``flow``: one task per step, the flow's schedule and run limits.

    Args:
        flow: the declaration (``get_flow(name)``).
        settings: decides ``max_active_tasks`` (1 for a DuckDB warehouse); default: :func:`task_settings`.
    """
    try:
        from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
        from airflow.sdk import DAG, CronDataIntervalTimetable, Param
    except ImportError as exc:  # pragma: no cover - only outside the Airflow venv
        from dotjoin.exceptions import TerminalError

        raise TerminalError(
            "apache-airflow is not installed in this environment; run `make airflow` and use .venv-airflow"
        ) from exc

    settings = settings or task_settings()
    single_writer = settings.warehouse.type == "duckdb"
    on_failure = make_alert_callback(flow)
    dag = DAG(
        dag_id=flow.name,
        description=flow.description,
        doc_md=f"**{flow.name}** — {flow.description}\n\nGenerated from `{flow.name}`'s step declarations.",
        # A run for date D starts after D's interval ends, its logical date is D: data-interval semantics,
        # explicitly (Airflow 3's default for a cron string is a trigger timetable: logical date = run time).
        schedule=(
            flow.schedule if flow.schedule in NON_CRON else CronDataIntervalTimetable(flow.schedule, "UTC")
        ),
        start_date=datetime(flow.start_date.year, flow.start_date.month, flow.start_date.day, tzinfo=UTC),
        catchup=flow.catchup,
        max_active_runs=flow.max_active_runs,
        max_active_tasks=1 if single_writer else 16,
        tags=sorted({*TAGS, *flow.tags}),
        params={name: Param(None, type=["null", "string"], description=doc) for name, doc in PARAMS.items()},
        default_args={"owner": flow.owner, "on_failure_callback": on_failure},
    )
    tasks: dict[str, Any] = {}
    for step in flow.order():
        operator = BranchPythonOperator if step.branch else PythonOperator
        tasks[step.name] = operator(
            dag=dag,
            python_callable=make_callable(flow, step),
            **task_arguments(step),
        )
        for name in step.upstream:
            tasks[name] >> tasks[step.name]
    return dag
