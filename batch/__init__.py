"""Batch: ETL jobs, replays of topic ranges, lineage, and the Airflow glue.

The public async API (what the web layer calls) is :mod:`batch.api`.
"""
