#!/usr/bin/env bash
# benchmarks/.venv-mlflow (setup_mlflow.sh) plus Optuna and its MLflow callback, for tuning.py.
# Optuna is pinned to the version in the interpreter that runs loopml (if it has one), so both
# tools drive the same Optuna. Idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-mlflow"
PY="${PYTHON:-python3}"

bash "$HERE/setup_mlflow.sh"

if ! "$VENV/bin/python" -c "import optuna, optuna_integration.mlflow" >/dev/null 2>&1; then
    WANT="$("$PY" -c "import optuna; print(optuna.__version__)" 2>/dev/null || true)"
    "$VENV/bin/python" -m pip install --quiet "optuna${WANT:+==$WANT}" "optuna-integration[mlflow]"
fi

"$VENV/bin/python" -c "import optuna, optuna_integration as oi; \
print('optuna', optuna.__version__, '| optuna-integration', oi.__version__)"
