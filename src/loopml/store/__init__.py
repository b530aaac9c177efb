"""Metadata database and artifact storage behind small interfaces."""

from __future__ import annotations

from loopml.store._artifacts import (
    ArtifactStore,
    FileInfo,
    resolve_artifact_store,
    validate_artifact_path,
)
from loopml.store._db import (
    HEAD_REVISION,
    Database,
    close_databases,
    open_database,
    upgrade_database,
)
from loopml.store._gc import paused_gc
from loopml.store._sql import CaseSensitiveLike, compare_column
from loopml.store._time import epoch_ms, now_ms

__all__ = [
    "ArtifactStore",
    "CaseSensitiveLike",
    "Database",
    "FileInfo",
    "HEAD_REVISION",
    "close_databases",
    "compare_column",
    "epoch_ms",
    "now_ms",
    "open_database",
    "paused_gc",
    "resolve_artifact_store",
    "upgrade_database",
    "validate_artifact_path",
]
