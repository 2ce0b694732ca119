"""The `nightly` flow as an Airflow DAG (declared once in dotjoin.pipelines.nightly.flow)."""

from dotjoin.orchestration.airflow import build_dag
from dotjoin.orchestration.registry import get_flow

dag = build_dag(get_flow("nightly"))
