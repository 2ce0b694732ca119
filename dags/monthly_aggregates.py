"""The `monthly_aggregates` flow as an Airflow DAG (declared once in its pipeline's flow.py)."""

from dotjoin.cli.registry import get_flow
from dotjoin.orchestration.airflow import build_dag

dag = build_dag(get_flow("monthly_aggregates"))
