"""The A/B analysis benchmark's data: unit-level exposure rows of a 3-variant experiment.

One Parquet file per size, drawn from a fixed seed (NumPy and pyarrow only):

- ``unit`` int64: 0..rows-1, shuffled (one row per unit);
- ``variant`` string: ``control``, ``a``, ``b``, assigned by a seeded permutation so that the
  split is exactly equal (up to one unit) and the sample-ratio check has nothing to flag;
- ``converted`` int64 0/1: 10% in control and b, 10.5% in a (+0.5 point);
- ``revenue_pre`` float64: the pre-period covariate, gamma(shape 2, scale 5) (mean 10);
- ``revenue`` float64: 0.7 * revenue_pre + gamma(shape 1, scale 3) (mean 10, correlation with
  revenue_pre 0.85, so CUPED removes about 73% of its variance), times 1.002 in b (+0.2%).

Row groups of 1,000,000 rows, Snappy compression (pyarrow's default). Imported by
``abtest.py`` (``describe``) and ``_abtest_worker.py`` (``generate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SEED = 20261209
VARIANTS = ("control", "a", "b")
BASE_RATE = 0.10
CONVERSION_LIFT = {"a": 0.005}  # absolute, in points of probability
REVENUE_LIFT = {"b": 0.002}  # relative
PRE_SHAPE, PRE_SCALE = 2.0, 5.0
SLOPE = 0.7
NOISE_SHAPE, NOISE_SCALE = 1.0, 3.0
ROW_GROUP = 1_000_000
CHUNK = 1_000_000  # rows drawn and written at a time (bounded memory at any size)


def describe() -> dict[str, Any]:
    """What the data is, for the results file and for ``--reuse`` checks."""
    return {
        "seed": SEED,
        "variants": list(VARIANTS),
        "base_rate": BASE_RATE,
        "conversion_lift": CONVERSION_LIFT,
        "revenue_lift": REVENUE_LIFT,
        "revenue_pre": f"gamma({PRE_SHAPE}, {PRE_SCALE})",
        "revenue": f"{SLOPE} * revenue_pre + gamma({NOISE_SHAPE}, {NOISE_SCALE})",
        "row_group": ROW_GROUP,
    }


def generate(path: Path, rows: int) -> dict[str, Any]:
    """Write ``rows`` rows to ``path``; return the file's size and the Arrow table's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([SEED, rows])
    codes = np.arange(rows) % len(VARIANTS)
    rng.shuffle(codes)
    units = rng.permutation(rows).astype(np.int64)
    names = pa.array(VARIANTS, pa.string())
    schema = pa.schema(
        [
            ("unit", pa.int64()),
            ("variant", pa.string()),
            ("converted", pa.int64()),
            ("revenue", pa.float64()),
            ("revenue_pre", pa.float64()),
        ]
    )
    rate = np.full(len(VARIANTS), BASE_RATE)
    lift = np.ones(len(VARIANTS))
    for k, name in enumerate(VARIANTS):
        rate[k] += CONVERSION_LIFT.get(name, 0.0)
        lift[k] += REVENUE_LIFT.get(name, 0.0)
    arrow_bytes = 0
    counts = np.zeros(len(VARIANTS), dtype=np.int64)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, CHUNK):
            code = codes[start : start + CHUNK]
            n = len(code)
            pre = rng.gamma(PRE_SHAPE, PRE_SCALE, n)
            revenue = (SLOPE * pre + rng.gamma(NOISE_SHAPE, NOISE_SCALE, n)) * lift[code]
            converted = (rng.random(n) < rate[code]).astype(np.int64)
            table = pa.table(
                [
                    pa.array(units[start : start + CHUNK]),
                    names.take(pa.array(code)),
                    pa.array(converted),
                    pa.array(revenue),
                    pa.array(pre),
                ],
                schema=schema,
            )
            arrow_bytes += table.nbytes
            counts += np.bincount(code, minlength=len(VARIANTS))
            writer.write_table(table, row_group_size=ROW_GROUP)
    return {
        "path": str(path),
        "rows": rows,
        "file_bytes": path.stat().st_size,
        "arrow_bytes": arrow_bytes,
        "units": dict(zip(VARIANTS, counts.tolist(), strict=True)),
    }
