#!/usr/bin/env bash
# Build the docs (strict), start the stack if it is not running, run the whole suite, stop only
# what this started.
# The secure stack (scripts/secure_stack.sh: SASL_SSL Kafka, TLS-only PostgreSQL) is started
# too, for tests/secure, unless HEALTHMATE_TEST_SECURE=0.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# The docs site first, before anything starts: a broken link or anchor, a page left out of the
# nav or a setting without a description fails the run here.
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict -d .stack/site \
  || { echo "docs build failed: mkdocs build --strict (see above)" >&2; exit 1; }
started_here=0
# Status first, then grep: with pipefail, grep -q closing the pipe early would fail the test.
if ! grep -q '^kafka *running' <<<"$(bash scripts/stack.sh status)"; then
  started_here=1
fi
bash scripts/stack.sh up || { echo "stack failed to start" >&2; exit 1; }
secure_started_here=0
if [ "${HEALTHMATE_TEST_SECURE:-1}" != 0 ]; then
  if ! grep -q '^kafka *running' <<<"$(bash scripts/secure_stack.sh status)"; then
    secure_started_here=1
  fi
  PYTHON="$PY" bash scripts/secure_stack.sh up || { echo "secure stack failed to start" >&2; exit 1; }
fi
"$PY" -m pytest "$@"
rc=$?
if [ "$secure_started_here" = 1 ]; then
  bash scripts/secure_stack.sh down
fi
if [ "$started_here" = 1 ]; then
  bash scripts/stack.sh down
fi
exit $rc
