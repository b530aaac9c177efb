"""``save_model``: write a model directory with its manifest, signature, example, requirements
and, where conversion is exact enough, an ONNX copy."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from loopml.errors import AlreadyExists, InvalidInput
from loopml.models._flavors import DISTRIBUTIONS, library_versions, resolve_flavor
from loopml.models._manifest import FORMAT_VERSION, write_manifest
from loopml.models._schema import Signature

__all__ = ["REQUIREMENTS_FILE", "save_model"]

REQUIREMENTS_FILE = "requirements.txt"


def _signature(signature: Any) -> Signature | None:
    if signature is None or isinstance(signature, Signature):
        return signature
    if isinstance(signature, Mapping):
        return Signature.from_dict(signature)
    raise InvalidInput(f"signature must be a loopml.models.Signature, got {type(signature)}")


def _requirements(given: Any, versions: dict[str, str]) -> list[str]:
    if given is None:
        return [f"{DISTRIBUTIONS.get(k, k)}=={v}" for k, v in versions.items() if k != "python"]
    if isinstance(given, str | os.PathLike):
        path = Path(given)
        if not path.is_file():
            raise InvalidInput(f"pip_requirements file {str(given)!r} does not exist")
        lines = path.read_text().splitlines()
        return [s for line in lines if (s := line.split("#", 1)[0].strip())]
    if isinstance(given, Sequence) and all(isinstance(r, str) for r in given):
        return [r.strip() for r in given if r.strip()]
    raise InvalidInput("pip_requirements must be a list of requirement strings or a file path")


def _empty_target(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(f"{target} exists and is not an empty folder; save to a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | str | os.PathLike[str] | None = None,
    artifacts: dict[str, str] | None = None,
    onnx: bool | Literal["auto"] = "auto",
    features: Any = None,
) -> dict[str, Any]:
    """Package a model into a new folder at ``path``, described by ``loopml-model.json``.

    A sklearn, xgboost or lightgbm model's folder also holds an MLflow ``MLmodel`` naming the
    same model file, so ``mlflow.pyfunc.load_model`` loads it too.

    Args:
        model: a scikit-learn estimator or Pipeline, an XGBoost or LightGBM model or Booster, an
            ``onnx.ModelProto`` or ``.onnx`` path, a ``PythonModel``, or any object with predict.
        flavor: force a flavor (sklearn, xgboost, lightgbm, onnx, pyfunc) instead of detecting.
        signature: the model's inputs and outputs; inferred from ``input_example`` when absent
            (outputs by running the model on it).
        input_example: a few rows of input: DataFrame, dict of columns, records, or an array.
        pip_requirements: requirement strings or a requirements file; default: the libraries in
            use, pinned.
        artifacts: for python-function models, name → local file or folder to package.
        onnx: "auto" keeps an ONNX copy when conversion matches the model on the example;
            True makes a failed conversion an error; False skips conversion.
        features: the online features the model reads (a feature service, its name, or a
            list of ``view:feature``): the inference server then fetches them by entity key.

    Returns:
        The manifest as written (its SHA-256, the model's digest, is ``manifest_digest(path)``).

    Raises:
        InvalidInput: unknown flavor, a model without predict, an example that does not fit the
            signature or that the model cannot predict, or no ONNX copy with ``onnx=True``.
        AlreadyExists: ``path`` exists and is not an empty folder.
    """
    if onnx not in ("auto", True, False):
        raise InvalidInput(f"onnx must be 'auto', True or False, got {onnx!r}")
    target = _empty_target(path)
    chosen = resolve_flavor(model, flavor)
    if artifacts and chosen.name != "pyfunc":
        raise InvalidInput(f"artifacts are packaged only with pyfunc models, not {chosen.name}")
    sig = _signature(signature)
    feature_refs = _feature_refs(features)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        manifest = _write(
            chosen, model, staging, sig, input_example, pip_requirements, artifacts, onnx
        )
        if feature_refs is not None:
            manifest["features"] = feature_refs
            write_manifest(staging, manifest)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _feature_refs(features: Any) -> dict[str, Any] | None:
    """``{"service": name}`` or ``{"refs": [...]}`` for ``save_model(features=...)``."""
    if features is None:
        return None
    name = getattr(features, "name", None)
    if name is not None and hasattr(features, "features"):  # a FeatureService
        return {"service": str(name)}
    if isinstance(features, str):
        if ":" in features:
            return {"refs": [features]}
        return {"service": features}
    if (
        isinstance(features, (list, tuple))
        and features
        and all(isinstance(f, str) and f.count(":") == 1 for f in features)
    ):
        return {"refs": list(features)}
    raise InvalidInput(
        "features must be a feature service (or its name) or a list of 'view:feature'"
    )


def _write(
    chosen: Any,
    model: Any,
    staging: Path,
    sig: Signature | None,
    input_example: Any,
    pip_requirements: Any,
    artifacts: dict[str, str] | None,
    onnx: bool | str,
) -> dict[str, Any]:
    from loopml.models._enforce import InputAdapter
    from loopml.models._example import EXAMPLE_FILE, example_to_json
    from loopml.models._mlmodel import write_mlmodel
    from loopml.models._onnx import ONNX_FILE, build_onnx_copy, onnx_versions
    from loopml.models._schema import as_frame_or_array, infer_output_schema, infer_schema

    info = chosen.save(model, staging, artifacts=artifacts)
    # A python model is called through a fresh copy, so its load_context runs on packaged files
    # and never mutates the caller's object.
    native = model
    if chosen.name == "pyfunc":
        native = chosen.load(staging, info, lambda rel: (staging / rel).read_bytes())
    calls = chosen.wrap(native, staging, info)

    example = None if input_example is None else as_frame_or_array(input_example)
    given = sig is not None
    if sig is None:
        sig = chosen.default_signature(model)
    if example is not None:
        if sig is not None:
            example = InputAdapter(sig)(example)
        try:
            output = calls.predict(example)
        except Exception as exc:
            raise InvalidInput(
                f"the model failed to predict its input_example: {type(exc).__name__}: {exc}"
            ) from exc
        if not given:
            inputs = infer_schema(example) if sig is None else sig.inputs
            sig = Signature(inputs, infer_output_schema(output))

    versions = {"python": platform.python_version()}
    versions.update(library_versions(["loopml", "numpy", "pandas", *chosen.libraries]))
    if chosen.name == "onnx":
        onnx_info: dict[str, Any] = {"available": True, "file": ONNX_FILE, "source": "flavor"}
    elif onnx is False:
        onnx_info = {"available": False, "reason": "ONNX conversion was turned off (onnx=False)"}
    else:
        onnx_info = build_onnx_copy(chosen, native, calls, example, staging)
        if onnx is True and not onnx_info["available"]:
            raise InvalidInput(f"no ONNX copy of the model: {onnx_info['reason']}")
    if onnx_info["available"]:
        versions.update(onnx_versions())
        converter = onnx_info.get("converter", "").partition(" ")[0]
        versions.update(library_versions([converter]) if converter else {})

    example_json = None
    if example is not None:
        example_json = example_to_json(example)
        text = json.dumps(example_json, sort_keys=True, default=str)
        (staging / EXAMPLE_FILE).write_text(text + "\n")
    requirements = _requirements(
        pip_requirements,
        {k: v for k, v in versions.items() if k not in ("skl2onnx", "onnxmltools")},
    )
    (staging / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in requirements))
    # MLflow's descriptor of the same files, hashed in the manifest like any other file.
    write_mlmodel(staging, chosen.name, native, info, sig, versions)

    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "flavor": chosen.name,
        "model": info,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "versions": versions,
        "signature": None if sig is None else sig.to_dict(),
        "input_example": None if example_json is None else {"file": EXAMPLE_FILE, **example_json},
        "requirements": requirements,
        "requirements_file": REQUIREMENTS_FILE,
        "onnx": onnx_info,
    }
    write_manifest(staging, manifest)
    return manifest
