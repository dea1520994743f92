#!/usr/bin/env bash
# `make run`: topics + schema, a demo producer in the background, the worker in the
# foreground. Ctrl-C stops both; the producer is stopped by its recorded pid.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HEALTHMATE_DEV_MODE=${HEALTHMATE_DEV_MODE:-true}
# Least privilege by default: the schema owner (healthmate) only migrates (`streams setup`,
# which also grants the runtime role what it needs); the worker and its API run as the
# runtime role (healthmate_app, created by scripts/stack.sh), which owns nothing: it cannot
# TRUNCATE, ALTER, disable a trigger of, or delete from audit_log. Give both DSNs to override.
PG_PORT=${HEALTHMATE_PG_PORT:-5432}
OWNER_DSN=${HEALTHMATE_PG_MIGRATION_DSN:-postgresql://healthmate:healthmate@127.0.0.1:$PG_PORT/healthmate}
export HEALTHMATE_PG_DSN=${HEALTHMATE_PG_DSN:-postgresql://healthmate_app:healthmate_app@127.0.0.1:$PG_PORT/healthmate}
unset HEALTHMATE_PG_MIGRATION_DSN
mkdir -p .stack/pids .stack/logs
HEALTHMATE_PG_MIGRATION_DSN="$OWNER_DSN" "$PY" -m streams setup
"$PY" -m streams produce --rate "${DEMO_RATE:-20}" --count "${DEMO_COUNT:-100000}" \
  --bad-ratio 0.05 --batch-size 1 >.stack/logs/demo-producer.log 2>&1 &
echo $! > .stack/pids/demo-producer.pid
stop_producer() {
  local pid
  pid=$(cat .stack/pids/demo-producer.pid 2>/dev/null || true)
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -f .stack/pids/demo-producer.pid
}
trap stop_producer EXIT
echo "demo producer: pid $(cat .stack/pids/demo-producer.pid), log .stack/logs/demo-producer.log"
echo "worker: http://127.0.0.1:${HEALTHMATE_WEB_PORT:-6066}/health  (Ctrl-C to stop)"
"$PY" -m streams worker
