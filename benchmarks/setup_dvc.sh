#!/usr/bin/env bash
# Create benchmarks/.venv-dvc with the current DVC from PyPI (idempotent).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-dvc"
PY="${PYTHON:-python3}"

if [ -x "$VENV/bin/dvc" ] && "$VENV/bin/python" -c "import dvc" >/dev/null 2>&1; then
    echo "dvc already installed in $VENV"
else
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # Plain `dvc`: the local remote (a folder) needs no extra such as dvc[s3].
    "$VENV/bin/python" -m pip install --quiet dvc
fi

# Print the version without DVC's anonymous usage report (data.py sets the same variable).
DVC_NO_ANALYTICS=1 "$VENV/bin/dvc" --version | sed 's/^/dvc /'
