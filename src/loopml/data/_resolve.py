"""The dataset store for a tracking URI: a loopml server over HTTP, else the database."""

from __future__ import annotations

from loopml.data._base import DatasetStore

__all__ = ["get_dataset_store"]


def get_dataset_store(uri: str | None = None, *, workspace: str | None = None) -> DatasetStore:
    """``http(s)://`` → the server's ``/api/v1/datasets`` routes; else SQL + artifact store."""
    from loopml.config import get_settings
    from loopml.tracking import RestTrackingStore, get_store, resolve_tracking_uri

    settings = get_settings()
    resolved = resolve_tracking_uri(uri)
    workspace = workspace or settings.workspace
    if resolved.startswith(("http://", "https://")):
        from loopml.data._rest import RestDatasetStore

        http = get_store(resolved, workspace=workspace)
        return RestDatasetStore(
            resolved,
            workspace=workspace,
            token=settings.tracking_token,
            timeout=settings.http_timeout_seconds,
            _http=http if isinstance(http, RestTrackingStore) else None,
        )
    from loopml.data._sql import SqlDatasetStore

    return SqlDatasetStore(resolved, settings.resolved_artifact_uri, workspace=workspace)
