"""``loopml.Client``: tracking and the model registry by id, with ``MlflowClient``'s names."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from loopml.errors import InvalidInput
from loopml.registry import (
    EVENTS,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    RegistryStore,
    VersionComparison,
    Webhook,
    WebhookDelivery,
    get_registry,
)
from loopml.tracking import Client as TrackingClient
from loopml.tracking import PagedList

__all__ = ["Client", "to_epoch_ms"]


def to_epoch_ms(when: dt.datetime | dt.date | int | float | str) -> int:
    """Milliseconds since the epoch for a datetime, an ISO-8601 string or a number of ms.

    A datetime without a time zone is read as UTC.
    """
    if isinstance(when, bool):
        raise InvalidInput(f"not a moment in time: {when!r}")
    if isinstance(when, int | float):
        if not math.isfinite(when):
            raise InvalidInput(f"not a moment in time: {when!r}")
        return int(when)
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                f"not a moment in time: {when!r} (use ISO 8601, e.g. 2026-03-03T14:00)"
            ) from exc
    if isinstance(when, dt.date) and not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day)
    if not isinstance(when, dt.datetime):
        raise InvalidInput(f"not a moment in time: {when!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


class Client(TrackingClient):
    """Everything by id: MLflow's tracking and registry methods, plus loopml's alias history,
    compare, rollback and webhooks. Embedded by default; ``tracking_uri="http://..."`` talks to
    a ``loopml server``."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        *,
        workspace: str | None = None,
    ) -> None:
        super().__init__(tracking_uri, workspace=workspace)
        self._registry: RegistryStore = get_registry(
            registry_uri or tracking_uri, workspace=workspace
        )

    @property
    def registry(self) -> RegistryStore:
        """The underlying registry store."""
        return self._registry

    # -- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model."""
        clean = {k: str(v) for k, v in (tags or {}).items()}
        return self._registry.create_registered_model(name, tags=clean, description=description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags, aliases and latest version per stage."""
        return self._registry.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions, aliases and history follow."""
        return self._registry.rename_registered_model(name, new_name)

    def update_registered_model(
        self, name: str, description: str | None = None
    ) -> RegisteredModel:
        """Change a model's description."""
        return self._registry.update_registered_model(name, description=description or "")

    def delete_registered_model(self, name: str) -> None:
        """Delete a model with its versions."""
        self._registry.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """A page of models matching a filter on ``name`` and ``tags.<key>``."""
        return self._registry.search_registered_models(
            filter_string=filter_string,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a model."""
        self._registry.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a model."""
        self._registry.delete_registered_model_tag(name, key)

    # -- versions ------------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
    ) -> ModelVersion:
        """Register the files at ``source`` as the model's next version (MLflow's signature;
        ``await_creation_for`` is accepted and unused: versions are ready when created)."""
        del await_creation_for
        return self._registry.create_model_version(
            name,
            source,
            run_id=run_id,
            tags={k: str(v) for k, v in (tags or {}).items()},
            run_link=run_link,
            description=description,
        )

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """One version."""
        return self._registry.get_model_version(name, version)

    def update_model_version(
        self, name: str, version: str | int, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description."""
        return self._registry.update_model_version(name, version, description=description)

    def delete_model_version(self, name: str, version: str | int) -> None:
        """Delete a version (aliases pointing at it go too, recorded in the history)."""
        self._registry.delete_model_version(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """A page of versions matching a filter (``name``, ``run_id``, ``tags.<key>`` ...)."""
        return self._registry.search_model_versions(
            filter_string=filter_string,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each stage (every stage when None)."""
        return self._registry.get_latest_versions(name, stages)

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: Any) -> None:
        """Set a tag on a version."""
        self._registry.set_model_version_tag(name, version, key, str(value))

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        """Remove a tag from a version."""
        self._registry.delete_model_version_tag(name, version, key)

    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to None/Staging/Production/Archived (MLflow compatibility)."""
        return self._registry.transition_model_version_stage(
            name,
            version,
            stage,
            archive_existing_versions=archive_existing_versions,
            reason=reason,
        )

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where a version's files are (its ``source``)."""
        return self._registry.get_model_version(name, version).source

    # -- aliases, history, compare, rollback ---------------------------------------------------
    def set_registered_model_alias(
        self, name: str, alias: str, version: str | int, *, reason: str | None = None
    ) -> ModelEvent:
        """Point ``alias`` at ``version``; returns the recorded history entry."""
        return self._registry.set_registered_model_alias(name, alias, version, reason=reason)

    def delete_registered_model_alias(
        self, name: str, alias: str, *, reason: str | None = None
    ) -> None:
        """Remove an alias."""
        self._registry.delete_registered_model_alias(name, alias, reason=reason)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self._registry.get_model_version_by_alias(name, alias)

    def get_model_history(
        self,
        name: str,
        alias: str | None = None,
        kinds: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[ModelEvent]:
        """The model's history (alias moves, stage changes, versions), newest first."""
        return self._registry.get_model_history(
            name, alias=alias, kinds=kinds, max_results=max_results, page_token=page_token
        )

    def get_alias_at(
        self, name: str, alias: str, when: dt.datetime | dt.date | int | float | str
    ) -> ModelVersion | None:
        """Which version ``alias`` pointed at at a moment (None if it pointed nowhere)."""
        return self._registry.get_alias_at(name, alias, to_epoch_ms(when))

    def compare_versions(
        self, name: str, version_a: str | int, version_b: str | int
    ) -> VersionComparison:
        """Params, metrics and signature of two versions side by side, with differences."""
        return self._registry.compare_versions(name, version_a, version_b)

    def rollback(
        self, name: str, alias: str = "production", reason: str | None = None
    ) -> ModelEvent:
        """Move ``alias`` back to the version it pointed at before its last move."""
        return self._registry.rollback(name, alias, reason=reason)

    # -- webhooks ------------------------------------------------------------------------------
    def create_webhook(
        self,
        url: str,
        secret: str,
        events: Sequence[str] = EVENTS,
        model_name: str | None = None,
        description: str | None = None,
    ) -> Webhook:
        """Deliver registry events to ``url`` as signed POSTs."""
        return self._registry.create_webhook(
            url, events=events, secret=secret, model_name=model_name, description=description
        )

    def list_webhooks(self) -> list[Webhook]:
        """Every webhook of the workspace."""
        return self._registry.list_webhooks()

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook."""
        self._registry.delete_webhook(webhook_id)

    def list_webhook_deliveries(
        self, webhook_id: str, max_results: int = 100
    ) -> list[WebhookDelivery]:
        """A webhook's deliveries, newest first."""
        return self._registry.list_webhook_deliveries(webhook_id, max_results=max_results)
