"""The registry over HTTP: the same interface, served by ``loopml server`` under /api/v1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loopml.errors import InvalidInput
from loopml.registry._base import EVENTS, RegistryStore
from loopml.registry._entities import (
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    VersionComparison,
    Webhook,
    WebhookDelivery,
)
from loopml.registry._validation import (
    default_user,
    validate_alias,
    validate_model_name,
    validate_version,
)
from loopml.store import FileInfo, validate_artifact_path
from loopml.tracking import PagedList, RestTrackingStore

__all__ = ["RestRegistryStore"]


def _q(value: str) -> str:
    return quote(value, safe="")


class RestRegistryStore(RegistryStore):
    """Talks to a loopml server's ``/api/v1/models`` routes over the tracking store's
    connection pool (same server, token and workspace)."""

    def __init__(
        self,
        base_url: str,
        *,
        workspace: str = "default",
        token: str | None = None,
        timeout: float = 60.0,
        _http: RestTrackingStore | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.workspace = workspace
        self._token = token
        self._timeout = timeout
        self._http = _http or RestTrackingStore(
            base_url, workspace=workspace, token=token, timeout=timeout
        )

    def for_workspace(self, workspace: str) -> RestRegistryStore:
        return RestRegistryStore(
            self.base_url,
            workspace=workspace,
            token=self._token,
            timeout=self._timeout,
            _http=self._http.for_workspace(workspace),
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, route: str, body: Any = None, **params: Any) -> Any:
        return self._http.request(method, route, body=body, params=params or None)

    @staticmethod
    def _m(name: str) -> str:
        return f"/models/{_q(validate_model_name(name))}"

    def _v(self, name: str, version: str | int) -> str:
        return f"{self._m(name)}/versions/{validate_version(version)}"

    # -- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, *, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        body = {"name": name, "tags": tags or {}, "description": description}
        return RegisteredModel.from_dict(self._call("POST", "/models", body)["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.from_dict(self._call("GET", self._m(name))["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        data = self._call("PATCH", self._m(name), {"name": new_name})
        return RegisteredModel.from_dict(data["registered_model"])

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        data = self._call("PATCH", self._m(name), {"description": description})
        return RegisteredModel.from_dict(data["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        self._call("DELETE", self._m(name))

    def search_registered_models(
        self,
        *,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        body = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": order_by,
            "page_token": page_token,
        }
        data = self._call("POST", "/models/search", body)
        items = [RegisteredModel.from_dict(m) for m in data["registered_models"]]
        return PagedList(items, data.get("next_page_token"))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._call("POST", f"{self._m(name)}/tags", {"key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", f"{self._m(name)}/tags", key=key)

    # -- versions ------------------------------------------------------------------------------
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
        for field, refs in (
            ("dataset_versions", dataset_versions),
            ("feature_views", feature_views),
        ):
            if isinstance(refs, str):
                raise InvalidInput(f"{field} must be a list of strings")
        body = {
            "source": source,
            "run_id": run_id,
            "tags": tags or {},
            "run_link": run_link,
            "description": description,
            "user_id": default_user() if user_id is None else user_id,
            "manifest_digest": manifest_digest,
            "dataset_versions": list(dataset_versions),
            "feature_views": list(feature_views),
            "status": status,
        }
        data = self._call("POST", f"{self._m(name)}/versions", body)
        return ModelVersion.from_dict(data["model_version"])

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return ModelVersion.from_dict(self._call("GET", self._v(name, version))["model_version"])

    def update_model_version(
        self,
        name: str,
        version: str | int,
        *,
        description: str | None = None,
        status: str | None = None,
        status_message: str | None = None,
    ) -> ModelVersion:
        body = {"description": description, "status": status, "status_message": status_message}
        data = self._call("PATCH", self._v(name, version), body)
        return ModelVersion.from_dict(data["model_version"])

    def delete_model_version(self, name: str, version: str | int) -> None:
        self._call("DELETE", self._v(name, version))

    def search_model_versions(
        self,
        *,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        body = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": order_by,
            "page_token": page_token,
        }
        data = self._call("POST", "/model-versions/search", body)
        items = [ModelVersion.from_dict(v) for v in data["model_versions"]]
        return PagedList(items, data.get("next_page_token"))

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        if isinstance(stages, str):
            raise InvalidInput("stages must be a list of stage names")
        body = {"stages": list(stages) if stages else None}
        data = self._call("POST", f"{self._m(name)}/latest-versions", body)
        return [ModelVersion.from_dict(v) for v in data["model_versions"]]

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        self._call("POST", f"{self._v(name, version)}/tags", {"key": key, "value": value})

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        self._call("DELETE", f"{self._v(name, version)}/tags", key=key)

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
        body = {
            "stage": stage,
            "archive_existing_versions": archive_existing_versions,
            "user_id": default_user() if user_id is None else user_id,
            "reason": reason,
        }
        data = self._call("POST", f"{self._v(name, version)}/stage", body)
        return ModelVersion.from_dict(data["model_version"])

    # -- aliases and history -------------------------------------------------------------------
    def _a(self, name: str, alias: str) -> str:
        return f"{self._m(name)}/aliases/{_q(validate_alias(alias))}"

    def set_registered_model_alias(
        self,
        name: str,
        alias: str,
        version: str | int,
        *,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        body = {
            "version": str(validate_version(version)),
            "user_id": default_user() if user_id is None else user_id,
            "reason": reason,
        }
        return ModelEvent.from_dict(self._call("PUT", self._a(name, alias), body)["event"])

    def delete_registered_model_alias(
        self, name: str, alias: str, *, user_id: str | None = None, reason: str | None = None
    ) -> None:
        self._call(
            "DELETE",
            self._a(name, alias),
            user_id=default_user() if user_id is None else user_id,
            reason=reason,
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return ModelVersion.from_dict(self._call("GET", self._a(name, alias))["model_version"])

    def get_model_history(
        self,
        name: str,
        *,
        alias: str | None = None,
        kinds: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[ModelEvent]:
        if isinstance(kinds, str):
            raise InvalidInput("kinds must be a list")
        data = self._call(
            "GET",
            f"{self._m(name)}/history",
            alias=alias,
            kinds=list(kinds) if kinds else None,
            max_results=max_results,
            page_token=page_token,
        )
        items = [ModelEvent.from_dict(e) for e in data["events"]]
        return PagedList(items, data.get("next_page_token"))

    def get_alias_at(self, name: str, alias: str, timestamp_ms: int) -> ModelVersion | None:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
            raise InvalidInput(f"timestamp_ms must be an integer, got {timestamp_ms!r}")
        data = self._call("GET", f"{self._a(name, alias)}/at", timestamp=timestamp_ms)
        found = data.get("model_version")
        return None if found is None else ModelVersion.from_dict(found)

    def rollback(
        self,
        name: str,
        alias: str = "production",
        *,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        body = {"user_id": default_user() if user_id is None else user_id, "reason": reason}
        data = self._call("POST", f"{self._a(name, alias)}/rollback", body)
        return ModelEvent.from_dict(data["event"])

    def compare_versions(
        self, name: str, version_a: str | int, version_b: str | int
    ) -> VersionComparison:
        data = self._call(
            "GET",
            f"{self._m(name)}/compare",
            a=validate_version(version_a),
            b=validate_version(version_b),
        )
        return VersionComparison.from_dict(data["comparison"])

    # -- version files -------------------------------------------------------------------------
    def upload_version_artifact(
        self, name: str, version: str | int, local_file: Path, artifact_path: str
    ) -> None:
        path = validate_artifact_path(artifact_path, allow_empty=False)

        def chunks() -> Iterator[bytes]:
            with open(local_file, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        self._http.upload(f"{self._v(name, version)}/artifacts/{quote(path)}", chunks())

    def list_version_artifacts(
        self, name: str, version: str | int, path: str | None = None
    ) -> list[FileInfo]:
        clean = validate_artifact_path(path) if path else None
        data = self._call("GET", f"{self._v(name, version)}/artifacts", path=clean)
        return [FileInfo(f["path"], f["is_dir"], f["file_size"]) for f in data["files"]]

    def iter_version_artifact(self, name: str, version: str | int, path: str) -> Iterator[bytes]:
        clean = validate_artifact_path(path, allow_empty=False)
        return self._http.download(f"{self._v(name, version)}/artifacts/{quote(clean)}")

    # -- webhooks ------------------------------------------------------------------------------
    def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] = EVENTS,
        secret: str,
        model_name: str | None = None,
        description: str | None = None,
    ) -> Webhook:
        body = {
            "url": url,
            "events": list(events) if not isinstance(events, str) else events,
            "secret": secret,
            "model_name": model_name,
            "description": description,
        }
        return Webhook.from_dict(self._call("POST", "/webhooks", body)["webhook"])

    def list_webhooks(self) -> list[Webhook]:
        return [Webhook.from_dict(w) for w in self._call("GET", "/webhooks")["webhooks"]]

    def delete_webhook(self, webhook_id: str) -> None:
        self._call("DELETE", f"/webhooks/{_q(str(webhook_id))}")

    def list_webhook_deliveries(
        self, webhook_id: str, *, max_results: int = 100
    ) -> list[WebhookDelivery]:
        data = self._call(
            "GET", f"/webhooks/{_q(str(webhook_id))}/deliveries", max_results=max_results
        )
        return [WebhookDelivery.from_dict(d) for d in data["deliveries"]]

    def dispatch_webhooks(self, *, timeout: float = 30.0) -> int:
        return int(self._call("POST", "/webhooks/dispatch", {"timeout": timeout})["attempted"])
