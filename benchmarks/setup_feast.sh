#!/usr/bin/env bash
# Create benchmarks/.venv-feast with the current Feast from PyPI (idempotent).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-feast"
PY="${PYTHON:-python3}"

if [ -x "$VENV/bin/feast" ] && "$VENV/bin/python" -c "import feast" >/dev/null 2>&1; then
    echo "feast already installed in $VENV"
else
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # Plain `feast`: the file offline store (pandas/dask) and the SQLite online store need no
    # extra; `feast serve` runs on the FastAPI/uvicorn it installs.
    "$VENV/bin/python" -m pip install --quiet feast
fi

# Print the version without Feast's usage telemetry (features.py sets the same variable).
FEAST_USAGE=False "$VENV/bin/python" -c "import feast; print('feast', feast.__version__)"
