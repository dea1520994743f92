"""Airflow DAG file: one DAG per enabled HealthMate ETL job (logic in batch.airflow_dags)."""

from batch.airflow_dags import build_job_dags

globals().update(build_job_dags())
