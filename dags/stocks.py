"""The `stocks` flow as an Airflow DAG (declared once in dotjoin.pipelines.stocks.flow)."""

from dotjoin.cli.registry import get_flow
from dotjoin.orchestration.airflow import build_dag

dag = build_dag(get_flow("stocks"))
