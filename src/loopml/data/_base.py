"""The interface every dataset store implements: metadata on one side, blobs on the other."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from loopml.data._entities import Dataset, DatasetVersion, FileEntry, GcReport

__all__ = ["DatasetStore"]


class DatasetStore(ABC):
    """Datasets of one workspace, and the content-addressed blobs behind their files.

    Versions are created by ``create_version`` after their blobs are stored (``missing_blobs``
    says which to send, ``put_blobs`` sends them verified); a version whose content hash
    matches an existing version of the same dataset is that version, not a new one.
    """

    workspace: str
    # Concurrent transfers that pay off for this store (uploads and restores).
    threads: int = 8

    @abstractmethod
    def for_workspace(self, workspace: str) -> DatasetStore:
        """The same store seen from another workspace."""

    def close(self) -> None:  # noqa: B027 - most stores own nothing to close
        """Release connections this store owns."""

    # -- datasets --------------------------------------------------------------------------
    @abstractmethod
    def list_datasets(self) -> list[Dataset]:
        """Every dataset of the workspace, by name."""

    @abstractmethod
    def get_dataset(self, name: str) -> Dataset:
        """One dataset; ``NotFound`` if absent."""

    @abstractmethod
    def update_dataset(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Dataset:
        """Set a dataset's description and/or merge tags (a ``None`` value deletes a tag)."""

    @abstractmethod
    def delete_dataset(self, name: str) -> None:
        """Delete a dataset and its versions; shared blobs stay until ``collect_garbage``."""

    # -- versions --------------------------------------------------------------------------
    @abstractmethod
    def create_version(
        self,
        name: str,
        files: Sequence[FileEntry],
        *,
        mode: str = "copy",
        source_uri: str | None = None,
        chunk_size: int,
        num_rows: int | None = None,
        profile: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        context: str = "",
        user_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Record a version (creating the dataset on first use); returns it and whether it is
        new. In ``copy`` mode every blob must already be stored (``IntegrityError`` if not)."""

    @abstractmethod
    def find_version(self, name: str, content_hash: str) -> DatasetVersion | None:
        """The version of ``name`` with this content hash, if any."""

    @abstractmethod
    def get_version(self, name: str, version: int | str | None = None) -> DatasetVersion:
        """A version by number, alias, or the latest when ``None``."""

    @abstractmethod
    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of a dataset, newest first."""

    @abstractmethod
    def list_files(self, name: str, version: int) -> list[FileEntry]:
        """The files of a version, by path."""

    @abstractmethod
    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> DatasetVersion:
        """Set a version's description and/or merge tags (``None`` deletes a tag)."""

    @abstractmethod
    def delete_version(self, name: str, version: int) -> None:
        """Delete a version and the aliases on it; its blobs stay until garbage collection."""

    @abstractmethod
    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at a version (moving it if it pointed elsewhere)."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""

    @abstractmethod
    def link_run(self, name: str, version: int, run_id: str, context: str = "") -> None:
        """Record that a run used this version (idempotent)."""

    @abstractmethod
    def versions_for_run(self, run_id: str) -> list[DatasetVersion]:
        """The dataset versions a run used or produced."""

    # -- blobs -----------------------------------------------------------------------------
    @abstractmethod
    def missing_blobs(self, digests: Sequence[str]) -> set[str]:
        """The digests among ``digests`` the store does not hold."""

    @abstractmethod
    def put_blobs(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Store blobs, each checked against its digest first (``IntegrityError`` if not)."""

    @abstractmethod
    def get_blobs(self, digests: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """The bytes of each blob in order, verified; a missing or corrupt blob raises
        ``IntegrityError`` naming it."""

    @abstractmethod
    def collect_garbage(self, *, grace_seconds: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Delete blobs no version references and nothing has touched for ``grace_seconds``."""
