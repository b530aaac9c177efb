"""Two model versions side by side: registry fields, the source runs' params and metrics, and
the signatures recorded in the models' manifests."""

from __future__ import annotations

from typing import Any

import orjson

from loopml.errors import LoopmlError
from loopml.registry._base import RegistryStore
from loopml.registry._entities import ModelVersion, VersionComparison
from loopml.tracking import TrackingStore

__all__ = ["MANIFEST_FILE", "compare_versions"]

MANIFEST_FILE = "loopml-model.json"
_FIELDS = (
    "source",
    "run_id",
    "current_stage",
    "status",
    "user_id",
    "description",
    "manifest_digest",
    "creation_timestamp",
)


def _signature(registry: RegistryStore, version: ModelVersion) -> dict[str, Any]:
    try:
        raw = b"".join(
            registry.iter_version_artifact(version.name, version.version, MANIFEST_FILE)
        )
        manifest = orjson.loads(raw)
    except (LoopmlError, orjson.JSONDecodeError):
        return {}
    sig = manifest.get("signature") if isinstance(manifest, dict) else None
    if not isinstance(sig, dict):
        return {}
    return {"inputs": sig.get("inputs"), "outputs": sig.get("outputs")}


def _run_data(
    tracking: TrackingStore, run_id: str | None
) -> tuple[dict[str, str], dict[str, float]]:
    if not run_id:
        return {}, {}
    try:
        run = tracking.get_run(run_id)
    except LoopmlError:
        return {}, {}
    return dict(run.data.params), dict(run.data.metrics)


def _pairs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))}


def compare_versions(
    registry: RegistryStore, tracking: TrackingStore, name: str, a: str | int, b: str | int
) -> VersionComparison:
    """Compare versions ``a`` and ``b`` of a model; ``differences`` lists what changed."""
    va, vb = registry.get_model_version(name, a), registry.get_model_version(name, b)
    fields = {f: (getattr(va, f), getattr(vb, f)) for f in _FIELDS}
    fields["aliases"] = (va.aliases, vb.aliases)
    pa, ma = _run_data(tracking, va.run_id)
    pb, mb = _run_data(tracking, vb.run_id)
    params, metrics = _pairs(pa, pb), _pairs(ma, mb)
    signature = _pairs(_signature(registry, va), _signature(registry, vb))
    differences = [
        f"{section}.{key}"
        for section, pairs in (("params", params), ("metrics", metrics), ("signature", signature))
        for key, (x, y) in pairs.items()
        if x != y
    ]
    return VersionComparison(
        name=name,
        version_a=va.version,
        version_b=vb.version,
        fields=fields,
        params=params,
        metrics=metrics,
        signature=signature,
        differences=differences,
    )
