#!/usr/bin/env bash
# Create benchmarks/.venv-mlflow with the current MLflow from PyPI (idempotent).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-mlflow"
PY="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import mlflow" >/dev/null 2>&1; then
    echo "mlflow already installed in $VENV"
else
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    if ! "$VENV/bin/python" -m pip install --quiet mlflow; then
        # Fallback: the skinny client plus what `mlflow server` needs.
        echo "full mlflow failed to install; falling back to mlflow-skinny" >&2
        "$VENV/bin/python" -m pip install --quiet mlflow-skinny sqlalchemy alembic \
            flask gunicorn uvicorn fastapi pandas
    fi
fi

# `mlflow models serve` (serving.py) runs uvicorn + FastAPI and loads scikit-learn models saved
# with skops: full mlflow brings all four, the skinny fallback does not.
if ! "$VENV/bin/python" -c "import uvicorn, fastapi, sklearn, skops" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet uvicorn fastapi scikit-learn skops
fi

"$VENV/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__)"
