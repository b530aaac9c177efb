"""Datasets, their versions and files, as plain frozen records; name and reference checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from loopml.errors import InvalidInput

__all__ = [
    "Dataset",
    "DatasetVersion",
    "FileEntry",
    "GcReport",
    "parse_ref",
    "validate_alias",
    "validate_dataset_name",
    "validate_digest",
    "validate_file_path",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,254}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"[0-9]{1,9}")
_MAX_PATH_BYTES = 1024
_MAX_NAME_BYTES = 255
_BAD_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f\\\\]")
_BAD_PATH_PARTS = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")
MODES = ("copy", "reference")


def validate_dataset_name(name: object) -> str:
    """Return ``name`` if it is a valid dataset name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid dataset name {str(name)[:100]!r}: use 1-255 letters, digits, '.', '_'"
            " or '-', starting with a letter or digit"
        )
    return name


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid alias (starts with a letter, so never a number)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest":
        raise InvalidInput(
            f"invalid dataset alias {str(alias)[:100]!r}: use letters, digits, '.', '_' or '-',"
            " starting with a letter; 'latest' is reserved"
        )
    return alias


def validate_digest(digest: object) -> str:
    """Return ``digest`` if it is a lower-case hex BLAKE3 digest (64 characters)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidInput(f"invalid blob digest {str(digest)[:80]!r}: expected 64 hex characters")
    return digest


def validate_file_path(path: object) -> str:
    """Return ``path`` if it is a relative POSIX path that stays inside its folder.

    Names may hold any printable character but ``/`` between parts and no ``\\``; ``.``,
    ``..`` and empty parts, absolute paths and control characters are refused.
    """
    if not isinstance(path, str) or not path:
        raise InvalidInput("a file path must be a non-empty string")
    if (
        len(path) > _MAX_PATH_BYTES // 4
        and len(path.encode("utf-8", "surrogatepass")) > _MAX_PATH_BYTES
    ):
        raise InvalidInput(f"file path {path[:200]!r} is longer than {_MAX_PATH_BYTES} bytes")
    if _BAD_PATH_CHARS.search(path):
        raise InvalidInput(f"file path {path[:200]!r} holds a control character or a backslash")
    if path[0] == "/" or _BAD_PATH_PARTS.search(path):
        raise InvalidInput(f"file path {path[:200]!r} must be relative, without '.', '..' or '//'")
    if len(path) > _MAX_NAME_BYTES // 4 and any(
        len(p.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES for p in path.split("/")
    ):
        raise InvalidInput(
            f"file path {path[:200]!r} has a name longer than {_MAX_NAME_BYTES} bytes"
        )
    return path


def parse_ref(ref: str) -> tuple[str, int | str | None]:
    """Split ``name``, ``name@3``, ``name@alias`` or ``name@latest`` into name and version."""
    if not isinstance(ref, str):
        raise InvalidInput("a dataset reference must be a string like 'name@3'")
    name, sep, version = ref.partition("@")
    validate_dataset_name(name)
    if not sep or version == "latest":
        return name, None
    if _DIGITS.fullmatch(version):
        number = int(version)
        if number < 1:
            raise InvalidInput(f"invalid dataset version in {ref!r}: versions start at 1")
        return name, number
    return name, validate_alias(version)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file of a version: its path under the dataset root, size and BLAKE3 digest.

    ``chunks`` lists the digests of a large file's fixed-size pieces (then ``digest`` is the
    hash of that list); an empty tuple means one blob named ``digest`` holds the whole file.
    """

    path: str
    size: int
    digest: str
    chunks: tuple[str, ...] = ()

    @property
    def blobs(self) -> tuple[str, ...]:
        """The blobs holding this file's bytes, in order."""
        return self.chunks or (self.digest,)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size, "digest": self.digest}
        if self.chunks:
            out["chunks"] = list(self.chunks)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileEntry:
        """Build and check an entry from its JSON form."""
        if not isinstance(data, Mapping):
            raise InvalidInput("each file must be an object with path, size and digest")
        unknown = set(data) - {"path", "size", "digest", "chunks"}
        if unknown:
            raise InvalidInput(f"unknown file field(s): {', '.join(sorted(unknown))}")
        path, size, digest = data.get("path"), data.get("size"), data.get("digest")
        path = validate_file_path(path)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"file 'size' of {path!r} must be a non-negative integer")
        chunks = data.get("chunks") or ()
        if not isinstance(chunks, list | tuple):
            raise InvalidInput(f"file 'chunks' of {path!r} must be a list of digests")
        return cls(
            path=path,
            size=size,
            digest=validate_digest(digest),
            chunks=tuple(validate_digest(c) for c in chunks),
        )


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named dataset: its description, tags, latest version number and aliases."""

    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    latest_version: int | None = None
    num_versions: int = 0
    aliases: dict[str, int] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One version of a dataset.

    ``mode`` is ``copy`` (bytes in the artifact store as content-addressed blobs) or
    ``reference`` (bytes left at ``source_uri``, checked against the recorded hashes on read).
    ``profile`` holds the schema and per-column statistics of tabular data, else ``None``.
    """

    name: str
    version: int
    content_hash: str
    mode: str = "copy"
    source_uri: str | None = None
    chunk_size: int = 0
    num_files: int = 0
    size_bytes: int = 0
    num_rows: int | None = None
    profile: dict[str, Any] | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    created_by: str = ""
    created_at: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name@version``: how lineage records and CLI commands name this version."""
        return f"{self.name}@{self.version}"

    @property
    def schema(self) -> list[dict[str, Any]] | None:
        """Column names, types and nullability of tabular data, else ``None``."""
        return None if self.profile is None else self.profile.get("schema")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["ref"] = self.ref
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetVersion:
        """Rebuild a version from ``to_dict`` output (as the REST API returns it)."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["aliases"] = tuple(values.get("aliases") or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class GcReport:
    """What garbage collection removed (or would remove, on a dry run)."""

    deleted_blobs: int
    deleted_bytes: int
    kept_blobs: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
