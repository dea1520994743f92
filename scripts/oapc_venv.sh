#!/usr/bin/env bash
# A throwaway venv with openapi-python-client 0.29.1 (tests/web/test_generated_client.py).
# Separate from .venv: its pins (httpx<0.29, typer<0.28) conflict with ours.
# Usage: bash scripts/oapc_venv.sh   -> prints the venv's python; idempotent.
# OAPC_WHEEL_DIR (optional): a folder holding the wheel, used before the package index.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.stack/oapc/venv"
VERSION="0.29.1"
if [[ -x "$VENV/bin/openapi-python-client" ]] && "$VENV/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('openapi-python-client') != '$VERSION')"; then
  echo "$VENV/bin/python"; exit 0
fi
rm -rf "$VENV"
"${PYTHON_BOOT:-python3.11}" -m venv "$VENV" >&2
args=()
if [[ -n "${OAPC_WHEEL_DIR:-}" && -d "$OAPC_WHEEL_DIR" ]]; then args+=(--find-links "$OAPC_WHEEL_DIR"); fi
"$VENV/bin/python" -m pip install -q ${args[@]+"${args[@]}"} "openapi-python-client==$VERSION" >&2
echo "$VENV/bin/python"
