#!/usr/bin/env bash
# The test command: lint, type-check (strict on schema/ and extractors/), then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
"$PY" -m ruff check .
"$PY" -m mypy
"$PY" -m pytest -q "$@"
