"""Artifact helpers shared by every tracking store: recursive download, text and figures."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from loopml.errors import ArtifactNotFound, StoreError
from loopml.store import validate_artifact_path

if TYPE_CHECKING:
    from loopml.tracking._base import TrackingStore


def download_tree(store: TrackingStore, run_id: str, path: str, dst_dir: Path) -> Path:
    """Copy the file or folder at ``path`` of a run's artifacts into ``dst_dir``."""
    dst_dir = Path(dst_dir)
    path = validate_artifact_path(path)
    entries = store.list_artifacts(run_id, path) if path else store.list_artifacts(run_id)
    if not path or entries:
        target = dst_dir / path if path else dst_dir
        target.mkdir(parents=True, exist_ok=True)
        prefix = f"{path}/" if path else ""
        for entry in entries:
            # A listing is data from the store (or a server): it must stay inside this folder.
            child = validate_artifact_path(entry.path)
            if not child.startswith(prefix) or child == path:
                raise StoreError(f"artifact listing of {path!r} named {entry.path!r} outside it")
            download_tree(store, run_id, child, dst_dir)
        return target
    target = dst_dir / PurePosixPath(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with open(tmp, "wb") as out:
            for chunk in store.iter_artifact(run_id, path):
                out.write(chunk)
        tmp.replace(target)
    except ArtifactNotFound:
        tmp.unlink(missing_ok=True)
        raise
    return target
