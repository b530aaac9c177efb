"""How step outputs travel: small JSON values inline, DataFrames as Parquet, arrays as ``.npy``,
models through ``loopml.models``, anything else pickled — all in the artifact store.

Every stored output is a reference (a JSON object) with a content hash; the hash feeds the cache
key of the steps that read it. Pickles are only ever read back from loopml's own artifact store.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import tempfile
from pathlib import Path
from typing import Any

import orjson

from loopml.errors import InvalidInput
from loopml.store import ArtifactStore

__all__ = ["INLINE_LIMIT", "load_value", "ref_exists", "save_value"]

INLINE_LIMIT = 64 * 1024  # JSON values up to this size live in the database row
_MODEL_LIBRARIES = frozenset({"sklearn", "xgboost", "lightgbm"})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_model(value: Any) -> bool:
    from loopml.models import PythonModel

    if isinstance(value, PythonModel):
        return True
    root = type(value).__module__.split(".")[0]
    return root in _MODEL_LIBRARIES and hasattr(value, "predict")


_PLAIN = (type(None), bool, int, float, str)


def _plain_json(value: Any, depth: int = 0) -> bool:
    """Exactly JSON types (no subclasses: an IntEnum or a defaultdict would come back changed),
    string keys, finite numbers."""
    kind = type(value)
    if kind in _PLAIN:
        return kind is not float or math.isfinite(value)
    if depth > 64:
        return False
    if kind is list:
        return all(_plain_json(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def _json_bytes(value: Any) -> bytes | None:
    if not _plain_json(value):
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits
        return None


def _parquet(frame: Any) -> bytes | None:
    """A DataFrame as Parquet (its index kept), or None when Parquet cannot hold it exactly."""
    import pyarrow as pa

    if not all(type(c) is str for c in frame.columns) or frame.columns.has_duplicates:
        return None
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=None)
    except (pa.ArrowException, ValueError, TypeError):
        return None  # mixed-type object columns and the like: pickled instead
    return buf.getvalue()


def save_value(value: Any, store: ArtifactStore, path: str) -> dict[str, Any]:
    """Store one output under ``path`` (a folder in ``store``); returns its reference."""
    import numpy as np
    import pandas as pd

    text = _json_bytes(value)
    if text is not None:
        if len(text) <= INLINE_LIMIT:
            return {"kind": "json", "value": orjson.loads(text), "hash": _sha(text)}
        store.put_bytes(text, f"{path}/value.json")
        return {"kind": "json_file", "uri": f"{path}/value.json", "hash": _sha(text)}
    data = _parquet(value) if type(value) is pd.DataFrame else None
    if data is not None:
        store.put_bytes(data, f"{path}/data.parquet")
        return {
            "kind": "dataframe",
            "uri": f"{path}/data.parquet",
            "hash": _sha(data),
            "rows": len(value),
            "columns": [str(c) for c in value.columns][:100],
        }
    if isinstance(value, np.ndarray) and value.dtype != object:
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        data = buf.getvalue()
        store.put_bytes(data, f"{path}/array.npy")
        return {"kind": "ndarray", "uri": f"{path}/array.npy", "hash": _sha(data)}
    if _is_model(value):
        from loopml.models import manifest_digest, save_model

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            save_model(value, folder, onnx=False)
            digest = manifest_digest(folder)
            manifest = orjson.loads((folder / "loopml-model.json").read_bytes())
            store.put_dir(folder, f"{path}/model")
        # the cache sees the model's own files; the manifest (with its save time) is verified
        files = manifest.get("files", {})
        own = {f: files.get(f) for f in manifest.get("model", {}).get("files", sorted(files))}
        content = _sha(orjson.dumps(own, option=orjson.OPT_SORT_KEYS))
        return {"kind": "model", "uri": f"{path}/model", "hash": content, "digest": digest}
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the step's bad output
        raise InvalidInput(
            f"cannot store a {type(value).__name__} output: it is not JSON, a DataFrame, an "
            f"array or a model, and pickling it failed ({exc})"
        ) from None
    store.put_bytes(data, f"{path}/value.pkl")
    return {"kind": "pickle", "uri": f"{path}/value.pkl", "hash": _sha(data)}


def ref_exists(ref: dict[str, Any], store: ArtifactStore) -> bool:
    """Whether the reference's data is still in the store."""
    if ref.get("kind") == "json":
        return True
    uri = str(ref.get("uri", ""))
    if ref.get("kind") == "model":
        return store.exists(f"{uri}/loopml-model.json")
    return bool(uri) and store.exists(uri)


def load_value(ref: dict[str, Any], store: ArtifactStore) -> Any:
    """Read an output back from its reference."""
    kind = ref.get("kind")
    if kind == "json":
        return ref.get("value")
    uri = str(ref["uri"])
    if kind == "json_file":
        return orjson.loads(store.read_bytes(uri))
    if kind == "dataframe":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(store.read_bytes(uri)))
    if kind == "ndarray":
        import numpy as np

        return np.load(io.BytesIO(store.read_bytes(uri)), allow_pickle=False)
    if kind == "model":
        from loopml.models import load_model

        with tempfile.TemporaryDirectory() as tmp:
            store.get_dir(uri, tmp)
            if _digest(tmp) != ref.get("digest", ref["hash"]):
                raise InvalidInput(f"the stored model at {uri} does not match its recorded hash")
            return load_model(tmp, flavor="native", trusted=True)
    if kind == "pickle":
        data = store.read_bytes(uri)
        if _sha(data) != ref["hash"]:
            raise InvalidInput(f"the stored value at {uri} does not match its recorded hash")
        return pickle.loads(data)  # noqa: S301 - written by loopml, hash checked
    raise InvalidInput(f"unknown output kind {kind!r}")


def _digest(folder: str) -> str:
    from loopml.models import manifest_digest

    return manifest_digest(folder)
