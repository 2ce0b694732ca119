"""Orchestration: pipelines declare their steps once; the local runner and Apache Airflow both run them.

It never imports a pipeline: the flows by name live at the entry layer (:mod:`dotjoin.cli.registry`).

- :mod:`.steps`    — the declaration (:class:`Step`, :class:`Flow`) and what a step receives
- :mod:`.runner`   — the local runner: retries, timeouts, durable state, backfills that resume
- :mod:`.alerts`   — failure alerts: a log line and a Slack-compatible JSON webhook
- :mod:`.airflow`  — the same declarations as Airflow 3 DAGs (imported only inside Airflow's venv)
"""

from dotjoin.orchestration.steps import Flow, Step, StepContext, StepFailed

__all__ = ["Flow", "Step", "StepContext", "StepFailed"]
