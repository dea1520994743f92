#!/usr/bin/env bash
# `make run`: topics + schema, a demo producer in the background, the worker in the
# foreground. Ctrl-C stops both; the producer is stopped by its recorded pid.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HEALTHMATE_DEV_MODE=${HEALTHMATE_DEV_MODE:-true}
mkdir -p .stack/pids .stack/logs
"$PY" -m streams setup
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
