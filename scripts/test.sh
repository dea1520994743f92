#!/usr/bin/env bash
# Start the stack if it is not running, run the whole suite, stop only what this started.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
started_here=0
if ! bash scripts/stack.sh status | grep -q '^kafka: running'; then
  started_here=1
fi
bash scripts/stack.sh up || { echo "stack failed to start" >&2; exit 1; }
"$PY" -m pytest "$@"
rc=$?
if [ "$started_here" = 1 ]; then
  bash scripts/stack.sh down
fi
exit $rc
