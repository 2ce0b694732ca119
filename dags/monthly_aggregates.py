"""The `monthly_aggregates` flow as an Airflow DAG (declared once in its pipeline's flow.py)."""

from dotjoin.orchestration.airflow import build_dag
from dotjoin.orchestration.registry import get_flow

dag = build_dag(get_flow("monthly_aggregates"))
