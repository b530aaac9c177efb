"""Input examples as JSON: a frame as columns, rows and dtypes; an array as dtype and nested
lists. Missing values become null, bytes base64, datetimes ISO 8601."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from loopml.errors import IntegrityError

__all__ = ["EXAMPLE_FILE", "example_from_json", "example_to_json"]

EXAMPLE_FILE = "input_example.json"


def _plain(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return value


def example_to_json(example: Any) -> dict[str, Any]:
    """The JSON form of a normalised example (a DataFrame or a numpy array)."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        rows = [[_plain(v) for v in row] for row in example.itertuples(index=False, name=None)]
        return {
            "type": "dataframe",
            "columns": [str(c) for c in example.columns],
            "dtypes": [str(d) for d in example.dtypes.tolist()],
            "data": rows,
        }
    arr = np.asarray(example)
    flat = [_plain(v) for v in arr.reshape(-1).tolist()]
    nested = np.array(flat, dtype=object).reshape(arr.shape).tolist() if arr.size else []
    return {"type": "ndarray", "dtype": str(arr.dtype), "shape": list(arr.shape), "data": nested}


def example_from_json(data: dict[str, Any]) -> Any:
    """Rebuild an example (numeric, boolean and string dtypes restored) from its JSON form."""
    import numpy as np
    import pandas as pd

    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "dataframe":
        frame = pd.DataFrame(data["data"], columns=data["columns"])
        for column, dtype in zip(data["columns"], data.get("dtypes", []), strict=False):
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):
                continue  # datetimes and bytes stay as their JSON text
        return frame
    if kind == "ndarray":
        values = np.array(data["data"], dtype=object).reshape(data.get("shape", -1))
        try:
            return values.astype(data["dtype"])
        except (TypeError, ValueError):
            return values
    raise IntegrityError("the model's input example is not a dataframe or ndarray in JSON form")
