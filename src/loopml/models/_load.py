"""``load_model``: fetch a model by URI, check it against the digest its store recorded, verify
every file's hash, and return a ``LoadedModel`` (or the native object). A folder MLflow saved
(an ``MLmodel``, no loopml manifest) is read too, with ``trusted=True``: nothing vouches for it."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from loopml.errors import IntegrityError, InvalidInput, InvalidState, NotFound
from loopml.models._flavors import FLAVORS, get_flavor, library_versions
from loopml.models._loaded import LoadedModel
from loopml.models._manifest import MANIFEST, read_manifest, read_verified, verify_files
from loopml.models._mlmodel import NOT_LOOPML, is_mlflow_model, read_mlmodel, read_unverified
from loopml.models._schema import Signature
from loopml.models._uri import ModelRef, parse_model_uri

__all__ = [
    "DIGEST_TAG",
    "FLAVOR_TAG",
    "Fetched",
    "fetch_model",
    "load_model",
    "pin_model_uri",
    "resolve_version",
]

_log = logging.getLogger("loopml.models")
DIGEST_TAG = "loopml.model_digest."
FLAVOR_TAG = "loopml.model_flavor."
RUNTIMES = ("auto", "onnx", "native")


def resolve_version(registry: Any, ref: ModelRef) -> Any:
    """The ``ModelVersion`` a ``models:/`` URI names."""
    name = ref.name
    if ref.ref == "version":
        return registry.get_model_version(name, ref.value)
    if ref.ref == "alias":
        return registry.get_model_version_by_alias(name, ref.value)
    stages = None if ref.ref == "latest" else [ref.value]
    found = registry.get_latest_versions(name, stages)
    if not found:
        where = "no versions" if ref.ref == "latest" else f"no version in stage {ref.value}"
        raise NotFound(f"registered model {name!r} has {where}")
    return max(found, key=lambda v: int(v.version))


def pin_model_uri(uri: str) -> str:
    """``models:/name@alias`` (or a stage, or latest) as the version it names now,
    ``models:/name/3``; any other URI as given.

    Raises:
        NotFound: the model, alias or stage does not exist.
    """
    ref = parse_model_uri(uri)
    if ref.kind != "models" or ref.ref == "version":
        return uri
    from loopml.registry import get_registry

    version = resolve_version(get_registry(), ref)
    return f"models:/{ref.name}/{version.version}"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A model's local folder, the digest its store recorded (None for local folders), where
    it came from, and the temporary download to remove afterwards (None for local folders)."""

    folder: Path
    expected: str | None
    metadata: dict[str, Any]
    temporary: Path | None


def _download(into: Any) -> tuple[Path, Path]:
    tmp = Path(tempfile.mkdtemp(prefix="loopml-model-"))
    try:
        return Path(into(tmp)), tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fetch_model(ref: ModelRef, *, trusted: bool) -> Fetched:
    """The local copy of the model a parsed URI names, and what its store recorded."""
    untrusted = (
        "; pass trusted=True to load it anyway, only if you trust where it came from (loading "
        "unpickles Python objects, which can run code)"
    )
    if ref.kind == "local":
        if not trusted:
            if is_mlflow_model(os.listdir(str(ref.local))):
                raise InvalidInput(
                    f"model at local path {ref.uri!r} is an MLflow model: {NOT_LOOPML}"
                )
            raise InvalidInput(
                f"model at local path {ref.uri!r} has no digest recorded by a store" + untrusted
            )
        local: dict[str, Any] = {"model_uri": ref.uri, "local_path": str(ref.local)}
        return Fetched(Path(str(ref.local)), None, local, None)
    if ref.kind == "runs":
        from loopml.tracking import get_store

        run_id, path = str(ref.run_id), str(ref.path)
        store = get_store()
        expected = store.get_run(run_id).data.tags.get(DIGEST_TAG + path)
        if expected is None and not trusted:
            if is_mlflow_model(f.path for f in store.list_artifacts(run_id, path)):
                raise InvalidInput(f"model {ref.uri} is an MLflow model: {NOT_LOOPML}")
            raise InvalidInput(
                f"run {run_id} has no tag {DIGEST_TAG}{path} (the digest log_model records), so "
                "the model cannot be verified" + untrusted
            )
        folder, tmp = _download(partial(store.download_artifacts, run_id, path))
        run_meta = {"model_uri": ref.uri, "run_id": run_id, "artifact_path": path}
        return Fetched(folder, expected, dict(run_meta), tmp)
    from loopml.registry import ModelVersionStatus, get_registry

    registry = get_registry()
    version = resolve_version(registry, ref)
    if version.status != ModelVersionStatus.READY:
        raise InvalidState(
            f"model {version.name!r} version {version.version} is {version.status}"
            + (f": {version.status_message}" if version.status_message else "")
        )
    if version.manifest_digest is None and not trusted:
        listing = registry.list_version_artifacts(version.name, version.version)
        if is_mlflow_model(f.path for f in listing):
            raise InvalidInput(
                f"model {version.name!r} version {version.version} is an MLflow model: "
                + NOT_LOOPML
            )
        raise InvalidInput(
            f"model {version.name!r} version {version.version} has no manifest digest in the "
            "registry, so it cannot be verified" + untrusted
        )
    folder, tmp = _download(partial(registry.download_version, version.name, version.version))
    meta: dict[str, Any] = {
        "model_uri": ref.uri,
        "name": version.name,
        "version": version.version,
        "aliases": list(version.aliases),
        "current_stage": version.current_stage,
        "run_id": version.run_id,
        "source": version.source,
    }
    return Fetched(folder, version.manifest_digest, meta, tmp)


def _warn_versions(manifest: dict[str, Any], libraries: tuple[str, ...]) -> None:
    recorded = manifest.get("versions") or {}
    installed = library_versions(list(libraries))
    for lib, version in installed.items():
        saved = recorded.get(lib)
        if saved and saved != version:
            _log.warning(
                "model was saved with %s %s; %s is installed, so predictions may differ",
                lib,
                saved,
                version,
            )


def load_model(
    model_uri: str | os.PathLike[str],
    *,
    runtime: Literal["auto", "onnx", "native"] = "auto",
    flavor: str | None = None,
    trusted: bool = False,
    extra_columns: Literal["error", "drop"] = "error",
) -> Any:
    """Load a model by URI, verified against the digest its store recorded.

    Args:
        model_uri: runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>/<stage>,
            models:/<name>/latest, models:/<name>@<alias>, or a local folder. The folder may
            hold a model the mlflow client saved (sklearn flavor; needs ``trusted=True``).
        runtime: "auto" runs the ONNX copy when the manifest has one, "onnx" requires it,
            "native" calls the original object.
        flavor: None (or "pyfunc") for a ``LoadedModel``; "native", or the model's own flavor
            name, for the original object.
        trusted: allow a model that no store vouches for (a local folder, or one logged
            without a digest). Recorded file hashes are still checked.
        extra_columns: "error" (default) or "drop" input columns the signature does not name.

    Returns:
        A ``LoadedModel``, or the native object for ``flavor="native"`` or a flavor name.

    Raises:
        InvalidInput: malformed URI, unknown runtime or flavor, an unverifiable model (or one
            MLflow saved) without ``trusted=True``, a flavor other than the model's, or an
            MLflow model of a flavor other than sklearn.
        IntegrityError: the manifest differs from the recorded digest, or a file from its hash.
        InvalidState: ``runtime="onnx"`` without an ONNX copy, or a version not READY.
        NotFound: the run, model, version or alias does not exist.
        MissingDependency: an MLflow model in the skops format, and skops is not installed.
    """
    if runtime not in RUNTIMES:
        raise InvalidInput(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if extra_columns not in ("error", "drop"):
        raise InvalidInput(f"extra_columns must be 'error' or 'drop', got {extra_columns!r}")
    wanted = {"python_function": "pyfunc"}.get(flavor, flavor) if flavor else None
    if wanted is not None and wanted != "native" and wanted not in FLAVORS:
        raise InvalidInput(
            f"flavor must be 'native' or one of {', '.join(FLAVORS)}, not {flavor!r}"
        )
    ref = parse_model_uri(model_uri)
    fetched = fetch_model(ref, trusted=trusted)
    folder, tmp = fetched.folder, fetched.temporary
    keep = False
    try:
        manifest, digest, read = _open(folder, ref.uri, fetched.expected)
        chosen = get_flavor(manifest["flavor"])
        info = manifest["model"]
        _warn_versions(manifest, chosen.libraries)
        if wanted not in (None, "native", "pyfunc") and wanted != chosen.name:
            raise InvalidInput(f"model {ref.uri} is a {chosen.name} model, not {wanted}")
        onnx_first = (
            wanted is None
            and chosen.name != "onnx"
            and runtime in ("auto", "onnx")
            and (manifest.get("onnx") or {}).get("available")
            and _has_ort()
        )
        if onnx_first:  # ONNX Runtime predicts: the native object is loaded only if asked for
            result = _assemble(
                chosen,
                None,
                folder,
                manifest,
                digest,
                fetched.metadata,
                "onnx",
                extra_columns,
                native_loader=partial(_load_native, chosen, folder, info, read, tmp),
            )
            if tmp is not None:
                keep = True
                _remove_later(result, tmp)
            return result
        native = chosen.load(folder, info, read)
        if wanted is not None and wanted != "pyfunc":
            result = native
        else:
            result = _assemble(
                chosen,
                native,
                folder,
                manifest,
                digest,
                fetched.metadata,
                runtime,
                extra_columns,
            )
        if tmp is not None and chosen.keeps_files(info):
            keep = True  # python-model artifacts are read from the download while it lives
            _remove_later(result, tmp)
        return result
    finally:
        if tmp is not None and not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _open(
    folder: Path, uri: str, expected: str | None
) -> tuple[dict[str, Any], str, Callable[[str], bytes]]:
    """The manifest, digest and file reader of a fetched folder: loopml's, checked against the
    recorded digest and every file's hash; or, with nothing recorded, an MLflow model's."""
    # Nothing recorded means fetch_model was told trusted=True.
    if expected is None and folder.is_dir() and is_mlflow_model(os.listdir(folder)):
        manifest, digest = read_mlmodel(folder, uri)
        return manifest, digest, partial(read_unverified, folder)
    if expected is not None and not (folder / MANIFEST).is_file():
        raise IntegrityError(
            f"{uri} holds no {MANIFEST}, but the store recorded its digest {expected}; the "
            "model's files changed after it was logged, so it is not loaded"
        )
    manifest, digest = read_manifest(folder)
    if expected is not None and digest != expected:
        raise IntegrityError(
            f"the manifest of {uri} has SHA-256 {digest}, but the store recorded "
            f"{expected}; the model's files changed after it was logged, so it is not loaded"
        )
    verify_files(folder, manifest)
    return manifest, digest, partial(read_verified, folder, manifest)


def _remove_later(owner: Any, folder: Path) -> None:
    """Remove a download when the model that reads it (pyfunc artifacts) is collected."""
    try:
        weakref.finalize(owner, shutil.rmtree, folder, True)
    except TypeError:
        pass  # not weak-referenceable: the folder stays, like any file in the temp dir


def _has_ort() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        _log.warning("model has an ONNX copy but onnxruntime is not installed; running natively")
        return False
    return True


def _load_native(
    chosen: Any, folder: Path, info: dict[str, Any], read: Callable[[str], bytes], tmp: Any
) -> Any:
    """The native object of a model served by ONNX Runtime, loaded on first use."""
    if tmp is not None and not folder.exists():
        raise InvalidState("the model's download was removed; load the model again")
    return chosen.load(folder, info, read)


def _assemble(
    chosen: Any,
    native: Any,
    folder: Path,
    manifest: dict[str, Any],
    digest: str,
    metadata: dict[str, Any],
    runtime: str,
    extra_columns: str,
    native_loader: Callable[[], Any] | None = None,
) -> LoadedModel:
    from loopml.models._enforce import InputAdapter
    from loopml.models._onnx import OnnxRunner

    raw_signature = manifest.get("signature")
    signature = None if raw_signature is None else Signature.from_dict(raw_signature)
    onnx_info = manifest.get("onnx") or {}
    used = "native"
    if native_loader is None:
        calls = chosen.wrap(native, folder, manifest["model"])
        predict, proba, no_proba = calls.predict, calls.predict_proba, calls.no_proba_reason
    else:
        predict, proba, no_proba = None, None, ""  # the reason, if asked, from the native
    if chosen.name == "onnx":
        used = "onnx"  # ONNX Runtime is this flavor's own runtime
    elif runtime == "onnx" and not onnx_info.get("available"):
        raise InvalidState(
            f"model {metadata.get('model_uri')} has no ONNX copy: "
            f"{onnx_info.get('reason', 'none was recorded')}"
        )
    elif runtime == "onnx" or (runtime == "auto" and onnx_info.get("available") and _has_ort()):
        runner = OnnxRunner(read_verified(folder, manifest, onnx_info["file"]))
        outputs = onnx_info["outputs"]
        predict = runner.function(outputs["predict"])
        proba = runner.function(outputs["predict_proba"]) if "predict_proba" in outputs else None
        used = "onnx"
    loaded = LoadedModel(
        native=native,
        flavor=chosen.name,
        runtime=used,
        signature=signature,
        manifest=manifest,
        digest=digest,
        metadata=metadata,
        prepare=InputAdapter(signature, extra_columns=extra_columns),
        predict=predict,
        predict_proba=proba,
        no_proba_reason=no_proba,
        native_loader=native_loader,
    )
    if native_loader is not None and proba is None:
        info = manifest["model"]
        loaded._no_proba = lambda: chosen.wrap(loaded.native, folder, info).no_proba_reason  # type: ignore[assignment]
    return loaded
