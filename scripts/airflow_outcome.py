"""Print how the newest run of a DAG ended, for ``scripts/airflow.sh test`` (``make airflow-test``).

    python scripts/airflow_outcome.py DAG_ID SINCE_ISO

Reads Airflow's metadata DB (the ``AIRFLOW_*`` environment that ``scripts/airflow.sh``
exports) and prints one line for the run and one per task instance::

    airflow-test: healthmate_backfill run manual__2026-12-06T07:07:57+00:00: failed
    airflow-test:   task replay: failed (try 1)

Exit status: 0 when the run's state is ``success``, 1 when it is anything else or when no
run of ``DAG_ID`` started at or after ``SINCE_ISO`` (the moment ``airflow dags test`` was
called) is recorded.
"""

from __future__ import annotations

import sys
from datetime import datetime


def main(dag_id: str, since: datetime) -> int:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.start_date >= since)
                              .order_by(DagRun.id.desc()).limit(1)).first()
        if run is None:
            print(f"airflow-test: {dag_id}: no run was recorded (did the DAG load? see above)")
            return 1
        print(f"airflow-test: {dag_id} run {run.run_id}: {run.state}")
        instances = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
            .order_by(TaskInstance.start_date, TaskInstance.task_id, TaskInstance.map_index)).all()
        for ti in instances:
            mapped = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
            print(f"airflow-test:   task {ti.task_id}{mapped}: {ti.state or 'not run'} (try {ti.try_number})")
        return 0 if run.state == "success" else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: airflow_outcome.py DAG_ID SINCE_ISO", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
