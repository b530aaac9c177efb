"""``log_model`` and ``register_model``: put a saved model in a run's artifacts or the registry,
with the manifest digest recorded where ``load_model`` will check it."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from loopml.errors import AlreadyExists, InvalidInput, InvalidState
from loopml.models._load import DIGEST_TAG, FLAVOR_TAG
from loopml.models._manifest import (
    MANIFEST,
    child,
    manifest_digest,
    read_manifest,
    verify_files,
)
from loopml.models._save import save_model
from loopml.models._schema import Signature

__all__ = ["ModelInfo", "log_model", "register_model"]

_log = logging.getLogger("loopml.models")
_AWAIT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``log_model`` stored: where, under which digest, and the registered version."""

    model_uri: str
    run_id: str
    artifact_path: str
    flavor: str
    digest: str
    signature: Signature | None
    onnx_available: bool
    onnx_reason: str | None = None
    registered_model_name: str | None = None
    registered_model_version: str | None = None

    @property
    def name(self) -> str:
        """The model's path in the run's artifacts (MLflow 3's name for it)."""
        return self.artifact_path


def _artifact_name(name: str | None, artifact_path: str | None) -> str:
    from loopml.store import validate_artifact_path

    if name is not None and artifact_path is not None and name != artifact_path:
        raise InvalidInput("give the model's path once: name= or artifact_path=, not both")
    chosen = name if name is not None else artifact_path if artifact_path is not None else "model"
    return validate_artifact_path(chosen, allow_empty=False)


def log_model(
    model: Any,
    name: str | None = None,
    *,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    flavor: str | None = None,
    pip_requirements: Sequence[str] | str | os.PathLike[str] | None = None,
    artifacts: dict[str, str] | None = None,
    onnx: bool | Literal["auto"] = "auto",
    await_registration: bool | float = True,
    features: Any = None,
) -> ModelInfo:
    """Save a model into the active run's artifacts at ``name`` (starting and ending a run when
    none is active), tag the run with its digest and flavor, and optionally register it.

    Args:
        name: the artifact path in the run (default "model"); ``artifact_path`` is an alias.
        registered_model_name: register the logged model as this model's next version.
        await_registration: wait for the version to be READY (True: up to 300 s, or a number
            of seconds); False returns at once.
        Other arguments are ``save_model``'s.

    Returns:
        A ``ModelInfo`` with ``model_uri`` ``runs:/<run_id>/<name>`` and the digest.
    """
    from loopml import tracking

    path = _artifact_name(name, artifact_path)

    def log(run_id: str) -> ModelInfo:
        return _log_to_run(
            run_id,
            model,
            path,
            registered_model_name,
            input_example,
            signature,
            flavor,
            pip_requirements,
            artifacts,
            onnx,
            await_registration,
            features,
        )

    run = tracking.active_run()
    if run is None:  # as MLflow: a run is started for the model, and ended with it
        with tracking.start_run() as started:
            return log(started.info.run_id)
    return log(run.info.run_id)


def _log_to_run(
    run_id: str,
    model: Any,
    path: str,
    registered_model_name: str | None,
    input_example: Any,
    signature: Any,
    flavor: str | None,
    pip_requirements: Any,
    artifacts: dict[str, str] | None,
    onnx: bool | str,
    await_registration: bool | float,
    features: Any = None,
) -> ModelInfo:
    from loopml import tracking

    with tempfile.TemporaryDirectory(prefix="loopml-log-model-") as tmp:
        local = Path(tmp) / "model"
        manifest = save_model(
            model,
            local,
            flavor=flavor,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            artifacts=artifacts,
            onnx=onnx,  # type: ignore[arg-type]
            features=features,
        )
        digest = manifest_digest(local)
        tracking.log_artifacts(local, artifact_path=path)
    # The tag is written after the files, so a digest on a run means its files are there.
    tracking.set_tags(
        {DIGEST_TAG + path: digest, FLAVOR_TAG + path: manifest["flavor"]}, synchronous=True
    )
    version = None
    if registered_model_name is not None:
        version = _register_run_model(
            registered_model_name, run_id, path, digest, None, await_registration
        )
    raw = manifest.get("signature")
    onnx_info = manifest["onnx"]
    return ModelInfo(
        model_uri=f"runs:/{run_id}/{path}",
        run_id=run_id,
        artifact_path=path,
        flavor=manifest["flavor"],
        digest=digest,
        signature=None if raw is None else Signature.from_dict(raw),
        onnx_available=bool(onnx_info.get("available")),
        onnx_reason=onnx_info.get("reason"),
        registered_model_name=registered_model_name,
        registered_model_version=None if version is None else version.version,
    )


def _ensure_registered(registry: Any, name: str) -> None:
    try:
        registry.create_registered_model(name)
    except AlreadyExists:
        pass


def _register_run_model(
    name: str,
    run_id: str,
    path: str,
    digest: str,
    tags: dict[str, str] | None,
    await_registration: bool | float,
) -> Any:
    from loopml.registry import get_registry

    registry = get_registry()
    _ensure_registered(registry, name)
    version = registry.create_model_version(
        name, f"runs:/{run_id}/{path}", run_id=run_id, tags=tags, manifest_digest=digest
    )
    return _await(registry, version, await_registration)


def _await(registry: Any, version: Any, wait: bool | float) -> Any:
    from loopml.registry import ModelVersionStatus

    if wait is False or version.status != ModelVersionStatus.PENDING_REGISTRATION:
        return _check_failed(version)
    deadline = time.monotonic() + (_AWAIT_SECONDS if wait is True else float(wait))
    delay = 0.05
    while version.status == ModelVersionStatus.PENDING_REGISTRATION:
        if time.monotonic() >= deadline:
            _log.warning(
                "model %r version %s is still pending registration", version.name, version.version
            )
            return version
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
        version = registry.get_model_version(version.name, version.version)
    return _check_failed(version)


def _check_failed(version: Any) -> Any:
    from loopml.registry import ModelVersionStatus

    if version.status == ModelVersionStatus.FAILED_REGISTRATION:
        raise InvalidState(
            f"registering model {version.name!r} version {version.version} failed: "
            f"{version.status_message or 'no reason recorded'}"
        )
    return version


def register_model(
    model_uri: str | os.PathLike[str], name: str, *, tags: dict[str, str] | None = None
) -> Any:
    """Register a model as the next version of ``name`` (created if new).

    ``runs:/`` URIs are registered with the digest ``log_model`` tagged on the run; a local
    folder (with a valid manifest) has its files uploaded into the registry.

    Returns:
        The ``ModelVersion``.

    Raises:
        InvalidInput: a malformed URI, a ``models:/`` URI, a run without the model's digest tag,
            or a folder without a manifest.
        IntegrityError: a local file does not match its manifest hash.
    """
    from loopml.models._uri import parse_model_uri
    from loopml.registry import ModelVersionStatus, get_registry

    if not isinstance(name, str) or not name:
        raise InvalidInput("register_model needs a registered model name")
    ref = parse_model_uri(model_uri)
    if ref.kind == "models":
        raise InvalidInput(
            f"{ref.uri} is registered already; register a runs:/ URI or a local folder"
        )
    if ref.kind == "runs":
        from loopml.tracking import get_store

        run = get_store().get_run(ref.run_id)  # type: ignore[arg-type]
        digest = run.data.tags.get(DIGEST_TAG + ref.path)  # type: ignore[operator]
        if digest is None:
            raise InvalidInput(
                f"run {ref.run_id} has no tag {DIGEST_TAG}{ref.path}: log the model with "
                "loopml.models.log_model, or register a local folder"
            )
        return _register_run_model(name, ref.run_id, ref.path, digest, tags, False)  # type: ignore[arg-type]
    folder = ref.local
    manifest, digest = read_manifest(folder)  # type: ignore[arg-type]
    verify_files(folder, manifest)  # type: ignore[arg-type]
    registry = get_registry()
    _ensure_registered(registry, name)
    version = registry.create_model_version(
        name,
        "registry:",
        tags=tags,
        manifest_digest=digest,
        status=ModelVersionStatus.PENDING_REGISTRATION,
    )
    try:
        for rel in [*sorted(manifest["files"]), MANIFEST]:
            local = child(folder, rel)  # type: ignore[arg-type]
            registry.upload_version_artifact(name, version.version, local, rel)
        return registry.update_model_version(
            name, version.version, status=ModelVersionStatus.READY
        )
    except BaseException as exc:
        try:
            registry.update_model_version(
                name,
                version.version,
                status=ModelVersionStatus.FAILED_REGISTRATION,
                status_message=f"{type(exc).__name__}: {exc}"[:1000],
            )
        except Exception as inner:  # noqa: BLE001 - the upload's error is the one to raise
            _log.error("could not mark %s version %s failed: %s", name, version.version, inner)
        raise
