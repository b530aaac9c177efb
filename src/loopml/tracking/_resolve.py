"""One resolver from a tracking URI to a store, and the per-store background logger."""

from __future__ import annotations

import os
import threading

from loopml.config import get_settings
from loopml.errors import InvalidInput
from loopml.tracking._base import TrackingStore
from loopml.tracking._logger import BatchLogger

__all__ = ["get_logger", "get_store", "resolve_tracking_uri"]

_lock = threading.Lock()
_process_uri: str | None = None  # set by loopml.set_tracking_uri
_stores: dict[tuple[str, str], TrackingStore] = {}
_loggers: dict[int, BatchLogger] = {}


def set_process_tracking_uri(uri: str | None) -> None:
    """Make ``uri`` the default of every store resolved without one (``set_tracking_uri``)."""
    global _process_uri
    _process_uri = uri


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The URI to use: the one given, else ``set_tracking_uri``'s, else ``LOOPML_TRACKING_URI``,
    else the embedded database."""
    settings = get_settings()
    return uri or _process_uri or settings.tracking_uri or settings.resolved_database_uri


def get_store(uri: str | None = None, *, workspace: str | None = None) -> TrackingStore:
    """The (cached) store for a tracking URI: ``http(s)://`` → REST, a database URI → SQL."""
    settings = get_settings()
    resolved = resolve_tracking_uri(uri)
    ws = workspace or settings.workspace
    key = (resolved, ws)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = _make_store(resolved, ws)
        return store


def _make_store(uri: str, workspace: str) -> TrackingStore:
    settings = get_settings()
    if uri.startswith(("http://", "https://")):
        from loopml.tracking._rest import RestTrackingStore

        return RestTrackingStore(
            uri,
            workspace=workspace,
            token=settings.tracking_token,
            timeout=settings.http_timeout_seconds,
        )
    if uri.startswith(("sqlite:", "postgresql", "postgres:")):
        from loopml.tracking._sql import SqlTrackingStore

        return SqlTrackingStore(uri, settings.resolved_artifact_uri, workspace=workspace)
    raise InvalidInput(
        f"tracking URI {uri!r} is not supported: use http(s)://host:port for a loopml server, "
        "or a sqlite:/// or postgresql:// database URI"
    )


def get_logger(store: TrackingStore) -> BatchLogger:
    """The background logger that writes to ``store`` (one per store)."""
    with _lock:
        logger = _loggers.get(id(store))
        if logger is None or logger.store is not store:
            settings = get_settings()
            logger = _loggers[id(store)] = BatchLogger(
                store,
                queue_size=settings.tracking_queue_size,
                batch_size=settings.tracking_batch_size,
                flush_interval_ms=settings.tracking_flush_interval_ms,
            )
        return logger


def _fresh_caches_in_child() -> None:
    # A forked child builds its own stores and loggers; its parent's threads are gone.
    global _lock
    _lock = threading.Lock()
    _stores.clear()
    _loggers.clear()


os.register_at_fork(after_in_child=_fresh_caches_in_child)


def clear_cache() -> None:
    """Flush and forget every cached store and logger (tests, or after changing settings)."""
    with _lock:
        loggers = list(_loggers.values())
        stores = list(_stores.values())
        _loggers.clear()
        _stores.clear()
    for logger in loggers:
        try:
            logger.flush(timeout=30)
        except Exception:  # noqa: BLE001 - best effort while tearing down
            pass
        logger.close()
    for store in stores:
        store.close()
