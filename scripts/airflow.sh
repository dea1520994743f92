#!/usr/bin/env bash
# Airflow on the local stack in two commands (see docs/how-to/batch-jobs.md, "Airflow"):
#
#   scripts/airflow.sh prepare              make airflow: AIRFLOW_HOME, db migrate, reserialize, dags list
#   scripts/airflow.sh test DAG [PARAMS]    make airflow-test DAG=... PARAMS='{...}': airflow dags test, then
#                                           the run's final state and each task's; exit 1 unless it succeeded
#
# AIRFLOW_HOME is $HEALTHMATE_AIRFLOW_HOME (default .stack/airflow): SQLite metadata DB, no
# example DAGs, dags_folder = batch/dags. The HEALTHMATE_* settings of this shell are
# exported to Airflow; on the local stack without a pseudonym key the development
# configuration is used, as `make run` does. The settings are checked (and Kafka and
# PostgreSQL reached) before Airflow starts, so a mistake is one line, exit 2 or 3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
AIRFLOW="$(dirname "$PY")/airflow"
if [[ ! -x "$AIRFLOW" ]]; then
  echo "healthmate: no Airflow at $AIRFLOW: run \`make venv\` (it installs the airflow extra)" >&2
  exit 2
fi
HOME_DIR=${HEALTHMATE_AIRFLOW_HOME:-.stack/airflow}
mkdir -p "$HOME_DIR"
export AIRFLOW_HOME
AIRFLOW_HOME="$(cd "$HOME_DIR" && pwd)"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/batch/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__LOGGING__LOGGING_LEVEL=${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The CLIs' own check (streams/cli.py): settings complete, Kafka and PostgreSQL reachable,
# development configuration only on the local stack (announced on stderr).
set +e
mode=$("$PY" -c 'from streams.cli import load_settings, preflight
from streams.config import cli_settings
preflight(load_settings())
print("dev" if cli_settings()[1] else "configured")')
rc=$?
set -e
((rc == 0)) || exit "$rc"
if [[ "$mode" == dev ]]; then export HEALTHMATE_DEV_MODE=true; fi

case "${1:-}" in
  prepare)
    "$AIRFLOW" db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1 \
      || { tail -n 20 "$AIRFLOW_HOME/migrate.log" >&2; exit 1; }
    echo "airflow: AIRFLOW_HOME=$AIRFLOW_HOME (metadata DB migrated; log $AIRFLOW_HOME/migrate.log)"
    "$AIRFLOW" dags reserialize >"$AIRFLOW_HOME/reserialize.log" 2>&1 || true
    # Airflow logs on stdout too: the JSON answer is the last line.
    errors=$("$AIRFLOW" dags list-import-errors -o json 2>/dev/null | tail -n 1)
    if [[ "$errors" != "[]" ]]; then
      echo "airflow: DAG import errors:" >&2
      "$PY" -c 'import json, sys
for e in json.loads(sys.argv[1]):
    print("  %s: %s" % (e.get("filename"), (str(e.get("error") or "").strip().splitlines() or [""])[-1]))' "$errors" >&2
      exit 1
    fi
    echo "airflow: DAGs (trigger one with make airflow-test DAG=... PARAMS='{...}'):"
    "$AIRFLOW" dags list -o json 2>/dev/null | tail -n 1 \
      | "$PY" -c 'import json, sys
for d in json.loads(sys.stdin.read()): print("  " + d["dag_id"])'
    ;;
  test)
    dag=${2:?usage: scripts/airflow.sh test DAG [PARAMS_JSON]}
    params=${3:-"{}"}
    # Airflow prints the task logs but no verdict: after the run, the run's final state and
    # each task's (scripts/airflow_outcome.py, from the metadata DB); the exit status is
    # non-zero unless the run succeeded, whatever `airflow dags test` itself returned.
    since=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
    set +e
    "$AIRFLOW" dags test "$dag" -c "$params"
    test_rc=$?
    "$PY" scripts/airflow_outcome.py "$dag" "$since" 2>/dev/null
    outcome_rc=$?
    set -e
    if ((outcome_rc != 0)); then exit 1; fi
    exit "$test_rc"
    ;;
  *)
    echo "usage: scripts/airflow.sh prepare | test DAG [PARAMS_JSON]" >&2
    exit 2
    ;;
esac
