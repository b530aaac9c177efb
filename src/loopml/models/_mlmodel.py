"""MLflow's model format (the ``MLmodel`` YAML file), both ways.

Saving a ``sklearn``, ``xgboost`` or ``lightgbm`` model also writes an ``MLmodel`` naming the
file loopml wrote, so ``mlflow.pyfunc.load_model`` and the flavor's own ``load_model`` read it.
Only what MLflow's loaders read is written: the ``python_function`` section (its
``loader_module``, the model file, the Python version), the flavor's section, and the signature
in MLflow's JSON-in-YAML form (loopml's column types and tensor dtypes are MLflow's names).
``model_uuid``, ``utc_time_created`` and ``mlflow_version`` are optional to MLflow and left out;
so is ``saved_input_example_info``: loopml's ``input_example.json`` is not in MLflow's layout.

Loading reads a folder holding an ``MLmodel`` and no loopml manifest (a model the ``mlflow``
client saved) when its flavor is ``sklearn``: pickle, cloudpickle or skops. Nothing vouches for
such a folder, so ``load_model`` asks for ``trusted=True`` before it gets here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loopml.errors import IntegrityError, InvalidInput
from loopml.models._manifest import MANIFEST, child
from loopml.models._schema import ColSpec, Signature, TensorSpec

__all__ = [
    "MLMODEL",
    "NOT_LOOPML",
    "is_mlflow_model",
    "read_mlmodel",
    "read_unverified",
    "signature_from_mlflow",
    "signature_to_mlflow",
    "write_mlmodel",
]

MLMODEL = "MLmodel"
NOT_LOOPML = (
    "this model was not saved by loopml; pass trusted=True to load it, only if you trust where "
    "it came from (loading unpickles Python objects, which can run code)"
)
# MLflow's sklearn serialization formats; a missing key means pickle (MLflow's own default).
_FORMATS = ("cloudpickle", "pickle", "skops")


# -- writing -----------------------------------------------------------------------------------
def _flavor_sections(
    flavor: str, model: Any, info: dict[str, Any], versions: dict[str, str]
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """The ``python_function`` keys and MLflow's section for a loopml flavor (None: no MLmodel)."""
    file = info["file"]
    cls = type(model)
    if flavor == "sklearn":
        return (
            "mlflow.sklearn",
            {"model_path": file, "predict_fn": "predict"},
            {
                "pickled_model": file,
                "serialization_format": info["serialization"],
                "sklearn_version": versions.get("sklearn"),
            },
        )
    if flavor == "xgboost":
        return (
            "mlflow.xgboost",
            {"data": file},
            {
                "data": file,
                "model_class": f"{cls.__module__}.{cls.__qualname__}",
                "model_format": file.rpartition(".")[2],
                "xgb_version": versions.get("xgboost"),
            },
        )
    if flavor == "lightgbm":
        section: dict[str, Any] = {
            "data": file,
            "model_class": f"{cls.__module__}.{cls.__qualname__}",  # lightgbm.basic.Booster
            "lgb_version": versions.get("lightgbm"),
        }
        if info["serialization"] != "lightgbm-text":
            section["serialization_format"] = info["serialization"]
        return "mlflow.lightgbm", {"data": file}, section
    return None


def write_mlmodel(
    directory: Path,
    flavor: str,
    model: Any,
    info: dict[str, Any],
    signature: Signature | None,
    versions: dict[str, str],
) -> bool:
    """Write ``MLmodel`` for the flavors MLflow loads from loopml's files; whether one was."""
    import yaml

    sections = _flavor_sections(flavor, model, info, versions)
    if sections is None:
        return False
    loader, pyfunc_keys, section = sections
    python_function = {
        "loader_module": loader,
        **pyfunc_keys,
        "python_version": versions["python"],
    }
    doc: dict[str, Any] = {"flavors": {"python_function": python_function, flavor: section}}
    if signature is not None:
        doc["signature"] = signature_to_mlflow(signature)
    text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
    (directory / MLMODEL).write_text(text, encoding="utf-8")
    return True


def _spec_to_mlflow(spec: ColSpec | TensorSpec) -> dict[str, Any]:
    if isinstance(spec, TensorSpec):
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": spec.dtype, "shape": list(spec.shape)},
        }
        if spec.name is not None:
            out["name"] = spec.name
        return out
    return {"type": spec.type, "name": spec.name, "required": True}


def signature_to_mlflow(signature: Signature) -> dict[str, Any]:
    """MLflow's ``signature`` entry: each side a JSON string of specs."""
    outputs = signature.outputs
    return {
        "inputs": json.dumps([_spec_to_mlflow(s) for s in signature.inputs]),
        "outputs": None if outputs is None else json.dumps([_spec_to_mlflow(s) for s in outputs]),
        "params": None,
    }


# -- reading -----------------------------------------------------------------------------------
def _spec_from_mlflow(entry: Any) -> ColSpec | TensorSpec | None:
    if not isinstance(entry, Mapping):
        return None
    try:
        if entry.get("type") == "tensor":
            tensor = entry.get("tensor-spec")
            # MLflow's "object" tensors hold anything; loopml's "str" only strings.
            if not isinstance(tensor, Mapping) or tensor.get("dtype") in ("object", None):
                return None
            return TensorSpec(tensor["dtype"], tuple(tensor.get("shape", ())), entry.get("name"))
        # Unnamed columns, optional columns and MLflow's array/object/map/any types have no
        # loopml equivalent.
        if entry.get("required", True) is not True or not isinstance(entry.get("type"), str):
            return None
        return ColSpec(entry.get("name"), entry["type"])  # type: ignore[arg-type]
    except (InvalidInput, TypeError, ValueError):
        return None


def _specs_from_mlflow(text: Any) -> list[ColSpec | TensorSpec] | None:
    if not isinstance(text, str):
        return None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(entries, list) or not entries:
        return None
    specs = [_spec_from_mlflow(e) for e in entries]
    return None if any(s is None for s in specs) else specs  # type: ignore[return-value]


def signature_from_mlflow(raw: Any) -> Signature | None:
    """loopml's reading of an MLmodel ``signature``; None when its inputs have no faithful
    loopml form (outputs that have none are dropped)."""
    if not isinstance(raw, Mapping):
        return None
    inputs = _specs_from_mlflow(raw.get("inputs"))
    if inputs is None:
        return None
    for outputs in (_specs_from_mlflow(raw.get("outputs")), None):
        try:
            return Signature(inputs, outputs)
        except InvalidInput:
            continue
    return None


def is_mlflow_model(names: Iterable[str]) -> bool:
    """Whether a folder holding these file names is an MLflow model and not a loopml one."""
    found = {name.rsplit("/", 1)[-1] for name in names}
    return MLMODEL in found and MANIFEST not in found


def read_mlmodel(directory: Path, uri: str) -> tuple[dict[str, Any], str]:
    """A manifest-shaped description of the MLflow model in ``directory`` and the SHA-256 of
    its ``MLmodel`` (which stands in for the manifest digest; no store recorded it).

    Raises:
        InvalidInput: the model has no ``sklearn`` flavor, or an unknown serialization format.
        IntegrityError: the ``MLmodel`` is not a YAML mapping, or names a file outside the model.
    """
    import yaml

    data = (directory / MLMODEL).read_bytes()
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise IntegrityError(f"the {MLMODEL} file of {uri} is not valid YAML: {exc}") from exc
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    if not isinstance(flavors, dict):
        raise IntegrityError(f"the {MLMODEL} file of {uri} has no 'flavors' mapping")
    conf = flavors.get("sklearn")
    if not isinstance(conf, dict):
        raise InvalidInput(
            f"{uri} is an MLflow model with flavors {', '.join(map(str, flavors)) or 'none'}; "
            "loopml loads MLflow models of the sklearn flavor only (serialization_format "
            f"{', '.join(_FORMATS)}): load it with mlflow, or save it with loopml.models"
        )
    fmt = conf.get("serialization_format") or "pickle"
    if fmt not in _FORMATS:
        raise InvalidInput(
            f"{uri} is an MLflow sklearn model serialized as {fmt!r}; loopml reads "
            f"{', '.join(_FORMATS)}"
        )
    file = conf.get("pickled_model")
    if not isinstance(file, str):
        raise IntegrityError(f"the {MLMODEL} file of {uri} names no sklearn 'pickled_model'")
    child(directory, file)  # IntegrityError when it names a path outside the folder
    model: dict[str, Any] = {"file": file, "serialization": fmt}
    if fmt == "skops":
        trusted = conf.get("skops_trusted_types")
        model["trusted_types"] = [str(t) for t in trusted] if isinstance(trusted, list) else None
    pyfunc = flavors.get("python_function")
    versions = {
        "python": pyfunc.get("python_version") if isinstance(pyfunc, dict) else None,
        "sklearn": conf.get("sklearn_version"),
        "mlflow": doc.get("mlflow_version"),
    }
    signature = signature_from_mlflow(doc.get("signature"))
    manifest = {
        "format": "mlflow",
        "flavor": "sklearn",
        "model": model,
        "versions": {k: str(v) for k, v in versions.items() if v},
        "signature": None if signature is None else signature.to_dict(),
        "input_example": None,
        "onnx": {
            "available": False,
            "reason": "the model was saved by MLflow, which keeps no ONNX copy",
        },
        "mlmodel": doc,
    }
    return manifest, hashlib.sha256(data).hexdigest()


def read_unverified(directory: Path, rel: str) -> bytes:
    """The bytes of a file an MLmodel names (no hash to check them against)."""
    path = child(directory, rel)
    if not path.is_file():
        raise IntegrityError(f"model file {rel!r} named in {MLMODEL} is missing")
    return path.read_bytes()
