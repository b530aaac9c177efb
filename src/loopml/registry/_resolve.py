"""One resolver from a tracking URI to a registry store (the same URI as tracking)."""

from __future__ import annotations

import threading

from loopml.config import get_settings
from loopml.errors import InvalidInput
from loopml.registry._base import RegistryStore
from loopml.tracking import resolve_tracking_uri

__all__ = ["clear_cache", "get_registry"]

_lock = threading.Lock()
_stores: dict[tuple[str, str], RegistryStore] = {}


def get_registry(uri: str | None = None, *, workspace: str | None = None) -> RegistryStore:
    """The (cached) registry store for a tracking URI: ``http(s)://`` → REST, else SQL."""
    settings = get_settings()
    resolved = resolve_tracking_uri(uri)
    key = (resolved, workspace or settings.workspace)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = _make_store(*key)
        return store


def _make_store(uri: str, workspace: str) -> RegistryStore:
    settings = get_settings()
    if uri.startswith(("http://", "https://")):
        from loopml.registry._rest import RestRegistryStore

        return RestRegistryStore(
            uri,
            workspace=workspace,
            token=settings.tracking_token,
            timeout=settings.http_timeout_seconds,
        )
    if uri.startswith(("sqlite:", "postgresql", "postgres:")):
        from loopml.registry._sql import SqlRegistryStore

        return SqlRegistryStore(uri, settings.resolved_artifact_uri, workspace=workspace)
    raise InvalidInput(
        f"tracking URI {uri!r} is not supported: use http(s)://host:port for a loopml server, "
        "or a sqlite:/// or postgresql:// database URI"
    )


def clear_cache() -> None:
    """Forget every cached registry store (tests, or after changing settings)."""
    with _lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()
