#!/usr/bin/env bash
# Create benchmarks/.venv-prefect with the newest Prefect 3.x from PyPI, for pipelines.py
# (idempotent). PREFECT_SPEC overrides the pin (e.g. PREFECT_SPEC='prefect==3.4.0').
# pandas and pyarrow: the pipeline's steps pass small DataFrames, as loopml's do; pandas is
# pinned to the version in the interpreter that runs loopml (if it has one), so both tools run
# the same step bodies on the same pandas.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-prefect"
PY="${PYTHON:-python3}"
SPEC="${PREFECT_SPEC:-prefect>=3,<4}"

if "$VENV/bin/python" -c "import prefect, pandas, pyarrow" >/dev/null 2>&1; then
    echo "prefect already installed in $VENV"
else
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    WANT="$("$PY" -c "import pandas; print(pandas.__version__)" 2>/dev/null || true)"
    if ! "$VENV/bin/python" -m pip install --quiet "$SPEC" "pandas${WANT:+==$WANT}" pyarrow; then
        echo "pandas==$WANT did not install next to $SPEC; taking the newest pandas" >&2
        "$VENV/bin/python" -m pip install --quiet "$SPEC" pandas pyarrow
    fi
fi

# No usage telemetry (pipelines.py sets the same variables when it runs Prefect).
DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false "$VENV/bin/python" -c \
    "import prefect, pandas; print('prefect', prefect.__version__, '| pandas', pandas.__version__)"
