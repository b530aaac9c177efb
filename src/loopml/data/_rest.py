"""Datasets over HTTP: the same interface, served by ``loopml server`` under
``/api/v1/datasets`` and ``/api/v1/dataset-blobs``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.data._base import DatasetStore
from loopml.data._entities import (
    Dataset,
    DatasetVersion,
    FileEntry,
    GcReport,
    validate_alias,
    validate_dataset_name,
    validate_digest,
)
from loopml.data._frames import decode_blobs, encode_blobs
from loopml.data._source import hash_bytes
from loopml.errors import IntegrityError
from loopml.registry import validate_user
from loopml.tracking import RestRoutes

__all__ = ["RestDatasetStore"]

_DIGESTS_PER_CALL = 5_000


def _dataset(data: Mapping[str, Any]) -> Dataset:
    return Dataset(**data)


class RestDatasetStore(RestRoutes, DatasetStore):
    """Talks to a loopml server over the tracking store's connection pool."""

    def _call(self, method: str, route: str, body: Any = None, params: Any = None) -> Any:
        return self._http.request(method, route, body=body, params=params)

    @staticmethod
    def _d(name: str) -> str:
        return "/datasets/" + quote(validate_dataset_name(name), safe="")

    @staticmethod
    def _v(version: int | str | None) -> str:
        return "latest" if version is None else quote(str(version), safe="")

    # -- datasets --------------------------------------------------------------------------
    def list_datasets(self) -> list[Dataset]:
        return [_dataset(d) for d in self._call("GET", "/datasets")["datasets"]]

    def get_dataset(self, name: str) -> Dataset:
        return _dataset(self._call("GET", self._d(name))["dataset"])

    def update_dataset(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Dataset:
        body = {"description": description, "tags": None if tags is None else dict(tags)}
        return _dataset(self._call("PATCH", self._d(name), body)["dataset"])

    def delete_dataset(self, name: str) -> None:
        self._call("DELETE", self._d(name))

    # -- versions --------------------------------------------------------------------------
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
        body = {
            "files": [f.to_dict() for f in files],
            "mode": mode,
            "source_uri": source_uri,
            "chunk_size": chunk_size,
            "num_rows": num_rows,
            "profile": None if profile is None else dict(profile),
            "description": description,
            "tags": dict(tags or {}),
            "run_id": run_id,
            "context": context,
            "user_id": validate_user(user_id),
        }
        data = self._call("POST", self._d(name) + "/versions", body)
        return DatasetVersion.from_dict(data["version"]), bool(data["created"])

    def find_version(self, name: str, content_hash: str) -> DatasetVersion | None:
        data = self._call("GET", self._d(name) + "/find", params={"content_hash": content_hash})
        found = data.get("version")
        return None if found is None else DatasetVersion.from_dict(found)

    def get_version(self, name: str, version: int | str | None = None) -> DatasetVersion:
        data = self._call("GET", f"{self._d(name)}/versions/{self._v(version)}")
        return DatasetVersion.from_dict(data["version"])

    def list_versions(self, name: str) -> list[DatasetVersion]:
        data = self._call("GET", self._d(name) + "/versions")
        return [DatasetVersion.from_dict(v) for v in data["versions"]]

    def list_files(self, name: str, version: int) -> list[FileEntry]:
        data = self._call("GET", f"{self._d(name)}/versions/{self._v(version)}/files")
        return [FileEntry.from_dict(f) for f in data["files"]]

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> DatasetVersion:
        body = {"description": description, "tags": None if tags is None else dict(tags)}
        data = self._call("PATCH", f"{self._d(name)}/versions/{self._v(version)}", body)
        return DatasetVersion.from_dict(data["version"])

    def delete_version(self, name: str, version: int) -> None:
        self._call("DELETE", f"{self._d(name)}/versions/{self._v(version)}")

    def set_alias(self, name: str, alias: str, version: int) -> None:
        validate_alias(alias)
        self._call("PUT", f"{self._d(name)}/aliases/{quote(alias, safe='')}", {"version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        validate_alias(alias)
        self._call("DELETE", f"{self._d(name)}/aliases/{quote(alias, safe='')}")

    def link_run(self, name: str, version: int, run_id: str, context: str = "") -> None:
        self._call(
            "POST",
            f"{self._d(name)}/versions/{self._v(version)}/runs",
            {"run_id": run_id, "context": context},
        )

    def versions_for_run(self, run_id: str) -> list[DatasetVersion]:
        data = self._call("GET", "/dataset-versions", params={"run_id": run_id})
        return [DatasetVersion.from_dict(v) for v in data["versions"]]

    # -- blobs -----------------------------------------------------------------------------
    def missing_blobs(self, digests: Sequence[str]) -> set[str]:
        wanted = sorted({validate_digest(d) for d in digests})
        out: set[str] = set()
        for i in range(0, len(wanted), _DIGESTS_PER_CALL):
            part = wanted[i : i + _DIGESTS_PER_CALL]
            out.update(self._call("POST", "/dataset-blobs/missing", {"digests": part})["missing"])
        return out

    def put_blobs(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        if blobs:
            self._http.request_bytes("POST", "/dataset-blobs", content=encode_blobs(blobs))

    def get_blobs(self, digests: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        wanted = [validate_digest(d) for d in digests]
        if not wanted:
            return
        body = self._http.request_bytes("POST", "/dataset-blobs/fetch", body={"digests": wanted})
        got = decode_blobs(body)
        if [d for d, _ in got] != wanted:
            raise IntegrityError("the server answered a blob fetch with other blobs")
        for digest, data in got:
            if hash_bytes(data) != digest:  # trust nothing on the way: check every byte
                raise IntegrityError(f"blob {digest} is corrupt: its content does not match")
            yield digest, data

    def collect_garbage(self, *, grace_seconds: float = 3600.0, dry_run: bool = False) -> GcReport:
        data = self._call(
            "POST", "/dataset-blobs/gc", {"grace_seconds": grace_seconds, "dry_run": dry_run}
        )
        return GcReport(**data["report"])
