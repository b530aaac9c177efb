"""Registry records: frozen dataclasses shaped like MLflow's, with JSON forms for the HTTP API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ModelEvent",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
    "Stage",
    "VersionComparison",
    "Webhook",
    "WebhookDelivery",
]


class Stage:
    """MLflow's fixed model-version stages, kept for compatibility; aliases are the way forward."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"
    ALL = (NONE, STAGING, PRODUCTION, ARCHIVED)

    @staticmethod
    def canonical(stage: str) -> str:
        """The stage's canonical spelling (names are case-insensitive, as in MLflow)."""
        from loopml.errors import InvalidInput

        if isinstance(stage, str):
            for s in Stage.ALL:
                if s.lower() == stage.strip().lower():
                    return s
        raise InvalidInput(f"stage {stage!r} is not one of None, Staging, Production, Archived")


class ModelVersionStatus:
    """Whether a version's files are in place."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model: where its files are, which run made it, its roles.

    ``dataset_versions`` and ``feature_views`` are lineage references, filled in by the data and
    feature capabilities; ``manifest_digest`` is the SHA-256 of the model's manifest, checked
    when the model is loaded.
    """

    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    user_id: str = ""
    current_stage: str = Stage.NONE
    source: str = ""
    run_id: str | None = None
    run_link: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    manifest_digest: str | None = None
    dataset_versions: list[str] = field(default_factory=list)
    feature_views: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        """Rebuild from the JSON form."""
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model with its versions' roles: ``aliases`` maps alias → version."""

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    latest_versions: list[ModelVersion] = field(default_factory=list)
    workspace: str = "default"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisteredModel:
        """Rebuild from the JSON form."""
        out = _from_dict(cls, data)
        versions = [ModelVersion.from_dict(v) for v in data.get("latest_versions") or []]
        object.__setattr__(out, "latest_versions", versions)
        return out


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """One entry of a model's history: an alias moved (``kind="alias"``), a stage changed
    (``kind="stage"``), or a version was created or deleted.

    For an alias move ``from_version``/``to_version`` are the versions it left and reached (None
    when it was created or deleted); for a stage change ``version`` moved from ``from_stage`` to
    ``to_stage``.
    """

    seq: int
    name: str
    kind: str
    timestamp: int
    alias: str | None = None
    version: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    user_id: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEvent:
        """Rebuild from the JSON form."""
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class VersionComparison:
    """Two versions side by side: each section maps a key to ``(value in a, value in b)``;
    ``differences`` lists the keys (``params.x``, ``metrics.y``, ``signature.inputs`` ...) whose
    values differ."""

    name: str
    version_a: str
    version_b: str
    fields: dict[str, tuple[Any, Any]]
    params: dict[str, tuple[str | None, str | None]]
    metrics: dict[str, tuple[float | None, float | None]]
    signature: dict[str, tuple[Any, Any]]
    differences: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (pairs become two-item lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionComparison:
        """Rebuild from the JSON form."""
        pairs = ("fields", "params", "metrics", "signature")
        clean = {
            k: ({kk: tuple(vv) for kk, vv in v.items()} if k in pairs else v)
            for k, v in data.items()
        }
        return _from_dict(cls, clean)


@dataclass(frozen=True, slots=True)
class Webhook:
    """A receiver of registry events; its signing secret is never returned."""

    id: str
    url: str
    events: list[str]
    creation_timestamp: int
    model_name: str | None = None
    active: bool = True
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Webhook:
        """Rebuild from the JSON form."""
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event sent (or being sent) to one webhook, with its attempts."""

    id: int
    webhook_id: str
    event: str
    payload: dict[str, Any]
    status: str  # pending | delivered | failed
    attempts: int
    created_timestamp: int
    last_attempt_timestamp: int | None = None
    response_status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookDelivery:
        """Rebuild from the JSON form."""
        return _from_dict(cls, data)
