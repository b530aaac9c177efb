"""The dataset store for a tracking URI: a loopml server over HTTP, else the database."""

from __future__ import annotations

import sys

from loopml.data._base import DatasetStore

__all__ = ["get_dataset_store"]


def get_dataset_store(uri: str | None = None, *, workspace: str | None = None) -> DatasetStore:
    """``http(s)://`` → the server's ``/api/v1/datasets`` routes; else SQL + artifact store."""
    from loopml.config import get_settings

    settings = get_settings()
    tracking = sys.modules.get("loopml.tracking")
    if tracking is not None:  # it may hold a URI set with set_tracking_uri
        resolved = tracking.resolve_tracking_uri(uri)
    else:  # never imported, so nothing was set there: skip loading it (a CLI command saves 0.1 s)
        resolved = uri or settings.tracking_uri or settings.resolved_database_uri
    workspace = workspace or settings.workspace
    if resolved.startswith(("http://", "https://")):
        from loopml.data._rest import RestDatasetStore
        from loopml.tracking import RestTrackingStore, get_store

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
