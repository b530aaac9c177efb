"""The registry store interface every backend implements (SQL, REST)."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from pathlib import Path

from loopml.registry._entities import (
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    VersionComparison,
    Webhook,
    WebhookDelivery,
)
from loopml.store import FileInfo
from loopml.tracking import PagedList

__all__ = ["EVENTS", "RegistryStore"]

# The registry events a webhook can subscribe to.
EVENTS = (
    "registered_model.created",
    "registered_model.renamed",
    "registered_model.deleted",
    "model_version.created",
    "model_version.deleted",
    "alias.set",
    "alias.deleted",
    "stage.transitioned",
)


class RegistryStore(abc.ABC):
    """Registered models, their versions, aliases, stages, history and webhooks in one workspace.

    Contract (as ``TrackingStore``): thread-safe, returns frozen records, raises ``InvalidInput``
    for malformed arguments, ``NotFound`` for a missing model or version, ``AlreadyExists`` for a
    name in use, ``InvalidState`` when the object's state forbids the operation, and a write
    either happens whole (with its history entry and webhook deliveries) or not at all.
    ``user_id`` and ``reason`` are recorded in the history of alias and stage changes.
    """

    workspace: str

    @abc.abstractmethod
    def for_workspace(self, workspace: str) -> RegistryStore:
        """The same backend, scoped to another workspace."""

    # -- registered models -------------------------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(
        self, name: str, *, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model with no versions."""

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases and latest version per stage."""

    @abc.abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Give a model a new, unused name (its versions and history follow)."""

    @abc.abstractmethod
    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        """Change a model's description."""

    @abc.abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """Delete a model with its versions, aliases and history."""

    @abc.abstractmethod
    def search_registered_models(
        self,
        *,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Models matching a filter on ``name`` and ``tags.<key>``, a page at a time."""

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag on a model."""

    @abc.abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a model."""

    # -- versions ------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        user_id: str | None = None,
        manifest_digest: str | None = None,
        dataset_versions: Sequence[str] = (),
        feature_views: Sequence[str] = (),
        status: str | None = None,
    ) -> ModelVersion:
        """Register the model files at ``source`` (``runs:/<run>/<path>``, an artifact URI, or
        ``registry:`` for files uploaded afterwards) as the model's next version."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """One version."""

    @abc.abstractmethod
    def update_model_version(
        self,
        name: str,
        version: str | int,
        *,
        description: str | None = None,
        status: str | None = None,
        status_message: str | None = None,
    ) -> ModelVersion:
        """Change a version's description or registration status."""

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: str | int) -> None:
        """Delete a version; aliases pointing at it are removed (and recorded)."""

    @abc.abstractmethod
    def search_model_versions(
        self,
        *,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Versions matching a filter on ``name``, ``version_number``, ``run_id``, ``source``,
        ``current_stage``, ``status`` and ``tags.<key>``."""

    @abc.abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when None)."""

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        """Set (or overwrite) a tag on a version."""

    @abc.abstractmethod
    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        """Remove a tag from a version."""

    @abc.abstractmethod
    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to a stage; optionally archive the others in that stage."""

    # -- aliases and history -------------------------------------------------------------------
    @abc.abstractmethod
    def set_registered_model_alias(
        self,
        name: str,
        alias: str,
        version: str | int,
        *,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        """Point ``alias`` at ``version`` (creating or moving it); returns the history entry."""

    @abc.abstractmethod
    def delete_registered_model_alias(
        self, name: str, alias: str, *, user_id: str | None = None, reason: str | None = None
    ) -> None:
        """Remove an alias."""

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""

    @abc.abstractmethod
    def get_model_history(
        self,
        name: str,
        *,
        alias: str | None = None,
        kinds: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[ModelEvent]:
        """The model's history, newest first, optionally only one alias's moves."""

    @abc.abstractmethod
    def get_alias_at(self, name: str, alias: str, timestamp_ms: int) -> ModelVersion | None:
        """The version ``alias`` pointed at at a moment (ms since the epoch); None when it
        pointed nowhere."""

    @abc.abstractmethod
    def rollback(
        self,
        name: str,
        alias: str = "production",
        *,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        """Move ``alias`` back to the version it pointed at before its last move."""

    @abc.abstractmethod
    def compare_versions(
        self, name: str, version_a: str | int, version_b: str | int
    ) -> VersionComparison:
        """Two versions side by side: fields, the source runs' params and metrics, signatures."""

    # -- version files -------------------------------------------------------------------------
    @abc.abstractmethod
    def upload_version_artifact(
        self, name: str, version: str | int, local_file: Path, artifact_path: str
    ) -> None:
        """Store a file of a version registered with ``source="registry:"``."""

    @abc.abstractmethod
    def list_version_artifacts(
        self, name: str, version: str | int, path: str | None = None
    ) -> list[FileInfo]:
        """The immediate children of a folder of a version's files (wherever its source is)."""

    @abc.abstractmethod
    def iter_version_artifact(self, name: str, version: str | int, path: str) -> Iterator[bytes]:
        """The bytes of one of a version's files, in chunks."""

    # -- webhooks ------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] = EVENTS,
        secret: str,
        model_name: str | None = None,
        description: str | None = None,
    ) -> Webhook:
        """Deliver ``events`` (of one model, or all) to ``url``, signed with ``secret``."""

    @abc.abstractmethod
    def list_webhooks(self) -> list[Webhook]:
        """Every webhook of the workspace."""

    @abc.abstractmethod
    def delete_webhook(self, webhook_id: str) -> None:
        """Stop delivering to a webhook and forget it (with its deliveries)."""

    @abc.abstractmethod
    def list_webhook_deliveries(
        self, webhook_id: str, *, max_results: int = 100
    ) -> list[WebhookDelivery]:
        """A webhook's deliveries, newest first."""

    @abc.abstractmethod
    def dispatch_webhooks(self, *, timeout: float = 30.0) -> int:
        """Send the deliveries that are due now; returns how many were attempted. The server
        (or, embedded, a background thread) calls this; tests and scripts may too."""

    # -- helpers built on the primitives -------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections this store holds."""

    def download_version(self, name: str, version: str | int, dst_dir: Path) -> Path:
        """Copy every file of a version into ``dst_dir``; returns ``dst_dir``."""
        dst_dir.mkdir(parents=True, exist_ok=True)
        pending = [""]
        while pending:
            folder = pending.pop()
            for info in self.list_version_artifacts(name, version, folder or None):
                if info.is_dir:
                    pending.append(info.path)
                    continue
                target = dst_dir / info.path
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    for chunk in self.iter_version_artifact(name, version, info.path):
                        out.write(chunk)
        return dst_dir
