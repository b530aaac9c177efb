"""The model manifest (``loopml-model.json``): what a model directory holds, and its hashes.

The manifest records the SHA-256 of every other file in the directory; the SHA-256 of the
manifest's own bytes is the model's digest, so one hash pins the whole directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from loopml.errors import IntegrityError, InvalidInput

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "child",
    "hash_files",
    "manifest_digest",
    "read_manifest",
    "read_verified",
    "verify_files",
    "write_manifest",
]

MANIFEST = "loopml-model.json"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def child(directory: Path, rel: str) -> Path:
    """``directory / rel`` for a relative path named in a manifest (data we must not trust)."""
    if (
        not isinstance(rel, str)
        or not rel
        or rel.startswith("/")
        or "\\" in rel
        or ".." in PurePosixPath(rel).parts
    ):
        raise IntegrityError(f"model manifest names the file {rel!r}, which is outside the model")
    return directory.joinpath(*PurePosixPath(rel).parts)


def hash_files(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` but the manifest, by relative POSIX path."""
    out = {}
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            rel = path.relative_to(directory).as_posix()
            if rel != MANIFEST:
                out[rel] = _sha256_file(path)
    return out


def write_manifest(directory: Path, manifest: dict[str, Any]) -> str:
    """Record the files' hashes in ``manifest``, write it; returns the model's digest."""
    manifest["files"] = hash_files(directory)
    data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode("utf-8") + b"\n"
    (directory / MANIFEST).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def manifest_digest(path: str | os.PathLike[str]) -> str:
    """The digest of a saved model: the SHA-256 of its manifest (give the folder or the file).

    Raises:
        InvalidInput: there is no manifest at ``path``.
    """
    target = Path(path)
    if target.is_dir():
        target = target / MANIFEST
    if not target.is_file():
        raise InvalidInput(f"{path} holds no {MANIFEST}; save the model with save_model first")
    return _sha256_file(target)


def read_manifest(directory: Path) -> tuple[dict[str, Any], str]:
    """The manifest of a model directory and its digest, after checking its shape.

    Raises:
        InvalidInput: no manifest, or one from a newer format.
        IntegrityError: the manifest is not valid JSON or lacks required entries.
    """
    path = directory / MANIFEST
    if not path.is_file():
        raise InvalidInput(
            f"{directory} holds no {MANIFEST}; is it a model saved with loopml.models.save_model?"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"model manifest {MANIFEST} is corrupted: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IntegrityError(f"model manifest {MANIFEST} is corrupted: it is not an object")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise IntegrityError(f"model manifest {MANIFEST} is corrupted: no format_version")
    if version > FORMAT_VERSION:
        raise InvalidInput(
            f"model manifest format {version} is newer than this loopml reads ({FORMAT_VERSION}); "
            "upgrade loopml"
        )
    files = manifest.get("files")
    model = manifest.get("model")
    if (
        not isinstance(manifest.get("flavor"), str)
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
        or not isinstance(model, dict)
    ):
        raise IntegrityError(
            f"model manifest {MANIFEST} is corrupted: it needs 'flavor', 'model' and 'files'"
        )
    return manifest, digest


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Check every file the manifest lists against its recorded SHA-256.

    Raises:
        IntegrityError: naming the first file that is missing or differs.
    """
    for rel, expected in manifest["files"].items():
        path = child(directory, rel)
        if not path.is_file():
            raise IntegrityError(f"model file {rel!r} listed in the manifest is missing")
        if _sha256_file(path) != expected:
            raise IntegrityError(
                f"model file {rel!r} does not match the SHA-256 in its manifest; it was modified "
                "after the model was saved, so it is not loaded"
            )


def read_verified(directory: Path, manifest: dict[str, Any], rel: str) -> bytes:
    """The bytes of one listed file, hashed as read (what is checked is what gets used)."""
    expected = manifest["files"].get(rel)
    if expected is None:
        raise IntegrityError(f"model file {rel!r} is not listed in the manifest")
    path = child(directory, rel)
    if not path.is_file():
        raise IntegrityError(f"model file {rel!r} listed in the manifest is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise IntegrityError(
            f"model file {rel!r} does not match the SHA-256 in its manifest; it was modified "
            "after the model was saved, so it is not loaded"
        )
    return data
