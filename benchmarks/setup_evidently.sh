#!/usr/bin/env bash
# Create benchmarks/.venv-evidently with the newest Evidently 0.7.x from PyPI (idempotent).
# Issue 8 measured Evidently 0.7; EVIDENTLY_SPEC overrides the pin (e.g. EVIDENTLY_SPEC=evidently).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-evidently"
PY="${PYTHON:-python3}"
SPEC="${EVIDENTLY_SPEC:-evidently>=0.7,<0.8}"

if "$VENV/bin/python" -c "import evidently, pyarrow" >/dev/null 2>&1; then
    echo "evidently already installed in $VENV"
else
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # pandas<3: Evidently 0.7.23 does not cap pandas but imports a helper pandas 3 removed
    # (`pandas.core.dtypes.common.infer_dtype_from_object`), so it fails to import on pandas 3.
    # pyarrow: drift.py's worker reads the generated Parquet files with pandas, as loopml's does.
    "$VENV/bin/python" -m pip install --quiet "$SPEC" "pandas<3" pyarrow
fi

# No usage telemetry (drift.py sets the same variable when it runs Evidently).
DO_NOT_TRACK=1 "$VENV/bin/python" -c \
    "import evidently, pandas; print('evidently', evidently.__version__, 'pandas', pandas.__version__)"
