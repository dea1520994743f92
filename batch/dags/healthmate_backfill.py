"""Airflow DAG file: the manual healthmate_backfill DAG (logic in batch.airflow_dags)."""

from batch.airflow_dags import backfill_dag

dag = backfill_dag()
