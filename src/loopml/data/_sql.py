"""Datasets on the metadata database: datasets, versions, their files and chunks, aliases and
run lineage, in one workspace. The blobs behind the files are ``_sql_blobs``'s side.

A version is recorded in one transaction with its file list, and only over blobs the index
says are stored (and not being collected), so a version never names bytes that are not there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from loopml.data._base import DatasetStore
from loopml.data._entities import (
    MODES,
    Dataset,
    DatasetVersion,
    FileEntry,
    validate_alias,
    validate_dataset_name,
    validate_file_path,
)
from loopml.data._sql_blobs import SqlBlobIndex, check_blob_sizes, now_ms
from loopml.errors import (
    InvalidInput,
    NotFound,
)
from loopml.store import ArtifactStore, Database, open_database, resolve_artifact_store
from loopml.store.tables import (
    dataset_aliases,
    dataset_chunks,
    dataset_files,
    dataset_inputs,
    dataset_versions,
    datasets,
    workspaces,
)

__all__ = ["SqlDatasetStore"]

_MAX_TAGS = 100
_MAX_PROFILE_BYTES = 16 << 20
_DIGITS = re.compile(r"[0-9]{1,9}")


def check_tags(tags: Mapping[str, Any] | None, *, allow_none: bool = False) -> dict[str, Any]:
    """Tags as a dict of short strings (``None`` values mean delete when allowed)."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput("tags must be an object of string keys and values")
    if len(tags) > _MAX_TAGS:
        raise InvalidInput(f"at most {_MAX_TAGS} tags")
    for k, v in tags.items():
        if not isinstance(k, str) or not k or len(k) > 250:
            raise InvalidInput(f"tag key {str(k)[:80]!r} must be a string of 1-250 characters")
        if v is None and allow_none:
            continue
        if not isinstance(v, str) or len(v) > 5000:
            raise InvalidInput(f"tag {k!r} must have a string value of at most 5000 characters")
    return dict(tags)


def _check_text(value: Any, field: str, limit: int = 20_000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field} must be a string of at most {limit} characters")
    return value


def _merge(old: dict[str, str], new: Mapping[str, str | None]) -> dict[str, str]:
    out = dict(old)
    for k, v in new.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


class SqlDatasetStore(SqlBlobIndex, DatasetStore):
    """Datasets in one workspace of the metadata database; blobs in an artifact store."""

    def __init__(
        self,
        database: Database | str,
        artifacts: ArtifactStore | str | None = None,
        *,
        workspace: str = "default",
    ) -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.artifacts = resolve_artifact_store(artifacts)
        self.workspace = workspace
        # Local writes contend for the GIL and SQLite's write lock: a few threads; S3 waits on
        # the network: many.
        self.threads = 16 if self.artifacts.root.startswith("s3://") else 4

    def for_workspace(self, workspace: str) -> SqlDatasetStore:
        return SqlDatasetStore(self.db, self.artifacts, workspace=workspace)

    # -- helpers ---------------------------------------------------------------------------
    def _dataset_row(self, conn: Connection, name: str) -> Any:
        validate_dataset_name(name)
        row = conn.execute(
            select(datasets).where(datasets.c.workspace == self.workspace, datasets.c.name == name)
        ).first()
        if row is None:
            raise NotFound(f"dataset {name!r} does not exist")
        return row

    def _aliases(self, conn: Connection, dataset_id: int) -> dict[str, int]:
        rows = conn.execute(
            select(dataset_aliases.c.alias, dataset_aliases.c.version)
            .where(dataset_aliases.c.dataset_id == dataset_id)
            .order_by(dataset_aliases.c.alias)
        )
        return {r.alias: r.version for r in rows}

    def _version_row(self, conn: Connection, ds: Any, version: int | str | None) -> Any:
        query = select(dataset_versions).where(dataset_versions.c.dataset_id == ds.dataset_id)
        if version is None:
            row = conn.execute(query.order_by(dataset_versions.c.version.desc()).limit(1)).first()
            if row is None:
                raise NotFound(f"dataset {ds.name!r} has no versions")
            return row
        if version == "latest":
            return self._version_row(conn, ds, None)
        if isinstance(version, str) and _DIGITS.fullmatch(version):
            version = int(version)
        if isinstance(version, str):
            validate_alias(version)
            number = conn.execute(
                select(dataset_aliases.c.version).where(
                    dataset_aliases.c.dataset_id == ds.dataset_id,
                    dataset_aliases.c.alias == version,
                )
            ).scalar()
            if number is None:
                raise NotFound(f"dataset {ds.name!r} has no alias {version!r}")
            version = int(number)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInput(f"invalid dataset version {version!r}: a positive integer or alias")
        row = conn.execute(query.where(dataset_versions.c.version == version)).first()
        if row is None:
            raise NotFound(f"dataset {ds.name!r} has no version {version}")
        return row

    def _entity(self, name: str, row: Any, aliases: Mapping[str, int]) -> DatasetVersion:
        return DatasetVersion(
            name=name,
            version=row.version,
            content_hash=row.content_hash,
            mode=row.mode,
            source_uri=row.source_uri,
            chunk_size=row.chunk_size,
            num_files=row.num_files,
            size_bytes=row.size_bytes,
            num_rows=row.num_rows,
            profile=None if row.profile is None else orjson.loads(row.profile),
            description=row.description,
            tags=orjson.loads(row.tags),
            run_id=row.run_id,
            created_by=row.created_by,
            created_at=row.created_at,
            aliases=tuple(a for a, v in aliases.items() if v == row.version),
        )

    def _dataset_entity(self, conn: Connection, row: Any) -> Dataset:
        stats = conn.execute(
            select(func.count(), func.max(dataset_versions.c.version)).where(
                dataset_versions.c.dataset_id == row.dataset_id
            )
        ).one()
        return Dataset(
            name=row.name,
            description=row.description,
            tags=orjson.loads(row.tags),
            latest_version=stats[1],
            num_versions=stats[0],
            aliases=self._aliases(conn, row.dataset_id),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    # -- datasets --------------------------------------------------------------------------
    def list_datasets(self) -> list[Dataset]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(datasets)
                .where(datasets.c.workspace == self.workspace)
                .order_by(datasets.c.name)
            ).all()
            return [self._dataset_entity(conn, r) for r in rows]

    def get_dataset(self, name: str) -> Dataset:
        with self.db.read() as conn:
            return self._dataset_entity(conn, self._dataset_row(conn, name))

    def update_dataset(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Dataset:
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = _check_text(description, "description")
        new_tags = check_tags(tags, allow_none=True)
        with self.db.write() as conn:
            row = self._dataset_row(conn, name)
            if new_tags:
                changes["tags"] = orjson.dumps(_merge(orjson.loads(row.tags), new_tags)).decode()
            if changes:
                changes["updated_at"] = now_ms()
                conn.execute(
                    update(datasets)
                    .where(datasets.c.dataset_id == row.dataset_id)
                    .values(**changes)
                )
            return self._dataset_entity(conn, self._dataset_row(conn, name))

    def delete_dataset(self, name: str) -> None:
        with self.db.write() as conn:
            row = self._dataset_row(conn, name)
            ids = select(dataset_versions.c.version_id).where(
                dataset_versions.c.dataset_id == row.dataset_id
            )
            for table in (dataset_files, dataset_chunks, dataset_inputs):
                conn.execute(delete(table).where(table.c.version_id.in_(ids)))
            conn.execute(
                delete(dataset_versions).where(dataset_versions.c.dataset_id == row.dataset_id)
            )
            conn.execute(
                delete(dataset_aliases).where(dataset_aliases.c.dataset_id == row.dataset_id)
            )
            conn.execute(delete(datasets).where(datasets.c.dataset_id == row.dataset_id))

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
        from loopml.data._source import content_hash

        validate_dataset_name(name)
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "reference" and not source_uri:
            raise InvalidInput("a reference version needs the source_uri its files stay at")
        if not files:
            raise InvalidInput("a dataset version needs at least one file")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidInput("chunk_size must be a positive integer")
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise InvalidInput("a dataset version lists the same file path twice")
        for f in files:
            _check_file(f, chunk_size)
        if num_rows is not None and (not isinstance(num_rows, int) or num_rows < 0):
            raise InvalidInput("num_rows must be a non-negative integer")
        if profile is not None and not isinstance(profile, Mapping):
            raise InvalidInput("profile must be an object")
        _check_text(description, "description")
        _check_text(context, "context", 64)
        from loopml.registry import validate_user  # the registry's rule for user ids

        tag_values = check_tags(tags)
        user = validate_user(user_id)
        digest = content_hash(files)
        profile_json = _profile_json(profile)
        now = now_ms()
        with self.db.write() as conn:
            ds = self._ensure_dataset(conn, name, now)
            found = conn.execute(
                select(dataset_versions).where(
                    dataset_versions.c.dataset_id == ds.dataset_id,
                    dataset_versions.c.content_hash == digest,
                    dataset_versions.c.mode == mode,
                )
            ).all()
            same = [r for r in found if mode == "copy" or r.source_uri == source_uri]
            if same:
                row = max(same, key=lambda r: r.version)
                if run_id:
                    self._link(conn, row.version_id, run_id, context, now)
                return self._entity(name, row, self._aliases(conn, ds.dataset_id)), False
            if mode == "copy":
                sizes = self._require_blobs(conn, {b for f in files for b in f.blobs})
                check_blob_sizes(files, sizes, chunk_size)
            number = ds.last_version + 1
            conn.execute(
                update(datasets)
                .where(datasets.c.dataset_id == ds.dataset_id)
                .values(last_version=number, updated_at=now)
            )
            result = conn.execute(
                insert(dataset_versions).values(
                    dataset_id=ds.dataset_id,
                    version=number,
                    content_hash=digest,
                    mode=mode,
                    source_uri=source_uri,
                    chunk_size=chunk_size,
                    num_files=len(files),
                    size_bytes=sum(f.size for f in files),
                    num_rows=num_rows,
                    profile=profile_json,
                    description=description,
                    tags=orjson.dumps(tag_values).decode(),
                    run_id=run_id,
                    created_by=user,
                    created_at=now,
                )
            )
            vid = result.inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                insert(dataset_files),
                [
                    {
                        "version_id": vid,
                        "path": f.path,
                        "size": f.size,
                        "digest": f.digest,
                        "chunks": len(f.chunks) or 1,
                    }
                    for f in files
                ],
            )
            chunk_rows = [
                {"version_id": vid, "path": f.path, "idx": i, "digest": c}
                for f in files
                for i, c in enumerate(f.chunks)
            ]
            if chunk_rows:
                conn.execute(insert(dataset_chunks), chunk_rows)
            if run_id:
                self._link(conn, vid, run_id, context, now)
            row = conn.execute(
                select(dataset_versions).where(dataset_versions.c.version_id == vid)
            ).one()
            return self._entity(name, row, self._aliases(conn, ds.dataset_id)), True

    def _ensure_dataset(self, conn: Connection, name: str, now: int) -> Any:
        """The dataset's row, locked (created first if absent; concurrent creators agree)."""
        query = select(datasets).where(
            datasets.c.workspace == self.workspace, datasets.c.name == name
        )
        row = conn.execute(query.with_for_update()).first()
        if row is not None:
            return row
        if (
            conn.execute(
                select(workspaces.c.name).where(workspaces.c.name == self.workspace)
            ).first()
            is None
        ):
            raise NotFound(f"workspace {self.workspace!r} does not exist")
        conn.execute(
            self._insert_ignore(datasets).values(
                workspace=self.workspace, name=name, created_at=now, updated_at=now
            )
        )
        return conn.execute(query.with_for_update()).one()

    def _link(
        self, conn: Connection, version_id: int, run_id: str, context: str, now: int
    ) -> None:
        if not isinstance(run_id, str) or not run_id or len(run_id) > 32:
            raise InvalidInput(f"invalid run id {str(run_id)[:40]!r}")
        found = conn.execute(
            select(dataset_inputs.c.run_id).where(
                dataset_inputs.c.version_id == version_id, dataset_inputs.c.run_id == run_id
            )
        ).first()
        if found is None:
            conn.execute(
                insert(dataset_inputs).values(
                    version_id=version_id, run_id=run_id, context=context, created_at=now
                )
            )

    def find_version(self, name: str, content_hash: str) -> DatasetVersion | None:
        validate_dataset_name(name)
        with self.db.read() as conn:
            ds = conn.execute(
                select(datasets).where(
                    datasets.c.workspace == self.workspace, datasets.c.name == name
                )
            ).first()
            if ds is None:
                return None
            row = conn.execute(
                select(dataset_versions)
                .where(
                    dataset_versions.c.dataset_id == ds.dataset_id,
                    dataset_versions.c.content_hash == content_hash,
                    dataset_versions.c.mode == "copy",
                )
                .order_by(dataset_versions.c.version.desc())
                .limit(1)
            ).first()
            return (
                None
                if row is None
                else self._entity(name, row, self._aliases(conn, ds.dataset_id))
            )

    def get_version(self, name: str, version: int | str | None = None) -> DatasetVersion:
        with self.db.read() as conn:
            ds = self._dataset_row(conn, name)
            row = self._version_row(conn, ds, version)
            return self._entity(name, row, self._aliases(conn, ds.dataset_id))

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.db.read() as conn:
            ds = self._dataset_row(conn, name)
            aliases = self._aliases(conn, ds.dataset_id)
            rows = conn.execute(
                select(dataset_versions)
                .where(dataset_versions.c.dataset_id == ds.dataset_id)
                .order_by(dataset_versions.c.version.desc())
            )
            return [self._entity(name, r, aliases) for r in rows]

    def list_files(self, name: str, version: int) -> list[FileEntry]:
        with self.db.read() as conn:
            row = self._version_row(conn, self._dataset_row(conn, name), version)
            files = conn.execute(
                select(
                    dataset_files.c.path,
                    dataset_files.c.size,
                    dataset_files.c.digest,
                    dataset_files.c.chunks,
                )
                .where(dataset_files.c.version_id == row.version_id)
                .order_by(dataset_files.c.path)
            ).all()
            chunks: dict[str, list[str]] = defaultdict(list)
            if any(f.chunks > 1 for f in files):
                for c in conn.execute(
                    select(dataset_chunks.c.path, dataset_chunks.c.digest)
                    .where(dataset_chunks.c.version_id == row.version_id)
                    .order_by(dataset_chunks.c.path, dataset_chunks.c.idx)
                ):
                    chunks[c.path].append(c.digest)
            return [
                FileEntry(
                    f.path, f.size, f.digest, tuple(chunks.get(f.path, ())) if f.chunks > 1 else ()
                )
                for f in files
            ]

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> DatasetVersion:
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = _check_text(description, "description")
        new_tags = check_tags(tags, allow_none=True)
        with self.db.write() as conn:
            ds = self._dataset_row(conn, name)
            row = self._version_row(conn, ds, version)
            if new_tags:
                changes["tags"] = orjson.dumps(_merge(orjson.loads(row.tags), new_tags)).decode()
            if changes:
                conn.execute(
                    update(dataset_versions)
                    .where(dataset_versions.c.version_id == row.version_id)
                    .values(**changes)
                )
            row = self._version_row(conn, ds, row.version)
            return self._entity(name, row, self._aliases(conn, ds.dataset_id))

    def delete_version(self, name: str, version: int) -> None:
        with self.db.write() as conn:
            ds = self._dataset_row(conn, name)
            row = self._version_row(conn, ds, version)
            for table in (dataset_files, dataset_chunks, dataset_inputs):
                conn.execute(delete(table).where(table.c.version_id == row.version_id))
            conn.execute(
                delete(dataset_versions).where(dataset_versions.c.version_id == row.version_id)
            )
            conn.execute(
                delete(dataset_aliases).where(
                    dataset_aliases.c.dataset_id == ds.dataset_id,
                    dataset_aliases.c.version == row.version,
                )
            )
            conn.execute(
                update(datasets)
                .where(datasets.c.dataset_id == ds.dataset_id)
                .values(updated_at=now_ms())
            )

    def set_alias(self, name: str, alias: str, version: int) -> None:
        validate_alias(alias)
        with self.db.write() as conn:
            ds = self._dataset_row(conn, name)
            row = self._version_row(conn, ds, version)
            conn.execute(
                delete(dataset_aliases).where(
                    dataset_aliases.c.dataset_id == ds.dataset_id, dataset_aliases.c.alias == alias
                )
            )
            conn.execute(
                insert(dataset_aliases).values(
                    dataset_id=ds.dataset_id, alias=alias, version=row.version
                )
            )

    def delete_alias(self, name: str, alias: str) -> None:
        validate_alias(alias)
        with self.db.write() as conn:
            ds = self._dataset_row(conn, name)
            gone = conn.execute(
                delete(dataset_aliases).where(
                    dataset_aliases.c.dataset_id == ds.dataset_id, dataset_aliases.c.alias == alias
                )
            ).rowcount
            if not gone:
                raise NotFound(f"dataset {name!r} has no alias {alias!r}")

    def link_run(self, name: str, version: int, run_id: str, context: str = "") -> None:
        _check_text(context, "context", 64)
        with self.db.write() as conn:
            row = self._version_row(conn, self._dataset_row(conn, name), version)
            self._link(conn, row.version_id, run_id, context, now_ms())

    def versions_for_run(self, run_id: str) -> list[DatasetVersion]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(dataset_versions, datasets.c.name.label("dataset_name"))
                .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
                .join(dataset_inputs, dataset_inputs.c.version_id == dataset_versions.c.version_id)
                .where(datasets.c.workspace == self.workspace, dataset_inputs.c.run_id == run_id)
                .order_by(datasets.c.name, dataset_versions.c.version)
            ).all()
            out = []
            for r in rows:
                aliases = self._aliases(conn, r.dataset_id)
                out.append(self._entity(r.dataset_name, r, aliases))
            return out

    # -- blobs -----------------------------------------------------------------------------


def _profile_json(profile: Mapping[str, Any] | None) -> str | None:
    """A profile as JSON text, or ``InvalidInput`` if it is not plain JSON or too large."""
    if profile is None:
        return None
    try:
        text = orjson.dumps(profile, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise InvalidInput(f"profile is not plain JSON: {exc}") from None
    if len(text) > _MAX_PROFILE_BYTES:
        raise InvalidInput(f"profile is larger than {_MAX_PROFILE_BYTES >> 20} MiB")
    return text


def _check_file(f: FileEntry, chunk_size: int) -> None:
    if not isinstance(f, FileEntry):
        raise InvalidInput("files must be FileEntry records")
    from loopml.data._source import chunked_digest

    validate_file_path(f.path)
    if f.chunks:
        expected = -(-f.size // chunk_size)
        if f.size <= chunk_size or len(f.chunks) != expected:
            raise InvalidInput(f"file {f.path!r}: {len(f.chunks)} chunks do not fit its size")
        if chunked_digest(f.chunks) != f.digest:
            raise InvalidInput(f"file {f.path!r}: its digest is not the hash of its chunks")
    elif f.size > chunk_size:
        raise InvalidInput(f"file {f.path!r} is larger than a chunk but lists no chunks")
