"""The blob side of the SQL dataset store: content-addressed blobs in the artifact store,
indexed by the ``dataset_blobs`` table.

Blobs are named by their BLAKE3 digest and shared by every dataset and workspace, so identical
content is stored once. Blobs of up to ``PACK_MAX_BLOB`` that arrive in one batch are written
together as one pack file (``datasets/packs/ab/<id>.pack``); larger ones are files of their own
(``datasets/blobs/ab/<digest>``). Uploads ask the index what is missing (one query per 500
digests, not one storage request per file); garbage collection sweeps it in three steps (mark,
delete files, delete rows) that uploads wait on.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, select, update

from loopml.data._entities import FileEntry, GcReport, validate_digest
from loopml.data._source import hash_bytes, parallel_map
from loopml.errors import (
    ArtifactNotFound,
    BlobsNotStored,
    IntegrityError,
    InvalidInput,
    InvalidState,
    NotFound,
)
from loopml.store import ArtifactStore, Database
from loopml.store.tables import dataset_blobs, dataset_chunks, dataset_files

__all__ = ["PACK_MAX_BLOB", "SqlBlobIndex", "blob_path", "check_blob_sizes", "pack_path"]

_BATCH = 500
# Blobs up to this size are written together, one pack file per upload batch: adding 10,000
# small files writes a few dozen files to the artifact store, not 10,000 (S3: PUT requests).
PACK_MAX_BLOB = 1 << 20
_MAX_GRACE_SECONDS = 10 * 365 * 86400.0


def now_ms() -> int:
    """The time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def blob_path(digest: str) -> str:
    """Where a blob stored as its own file lives under the artifact root."""
    return f"datasets/blobs/{digest[:2]}/{digest}"


def pack_path(pack: str) -> str:
    """Where a pack of small blobs lives under the artifact root."""
    return f"datasets/packs/{pack[:2]}/{pack}.pack"


def batches(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def check_blob_sizes(files: Sequence[FileEntry], sizes: Mapping[str, int], step: int) -> None:
    """Every file's blobs add up to it: a whole-file blob has its size, chunks are full but
    for the last."""
    for f in files:
        for i, digest in enumerate(f.blobs):
            want = min(step, f.size - i * step) if f.chunks else f.size
            if sizes[digest] != want:
                raise InvalidInput(
                    f"file {f.path!r}: blob {digest} holds {sizes[digest]} bytes, not {want}"
                )


class SqlBlobIndex:
    """Blob storage and its index, for ``SqlDatasetStore`` (which sets ``db`` and
    ``artifacts``)."""

    db: Database
    artifacts: ArtifactStore

    def _insert_ignore(self, table: Any) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` in this database's dialect."""
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    def _require_blobs(self, conn: Connection, digests: set[str]) -> dict[str, int]:
        """The sizes of these stored blobs; ``IntegrityError`` if any is not stored."""
        wanted = sorted(digests)
        known: dict[str, int] = {}
        for part in batches(wanted):
            rows = conn.execute(  # locked: garbage collection cannot mark them until commit
                select(dataset_blobs.c.digest, dataset_blobs.c.size)
                .where(dataset_blobs.c.digest.in_(part), dataset_blobs.c.deleting.is_(False))
                .order_by(dataset_blobs.c.digest)
                .with_for_update(read=True)
            )
            known.update((r.digest, r.size) for r in rows)
        absent = [d for d in wanted if d not in known]
        if absent:
            raise BlobsNotStored(
                f"{len(absent)} blob(s) of this version are not stored (first: {absent[0]});"
                " upload them before creating the version"
            )
        return known

    def missing_blobs(self, digests: Sequence[str]) -> set[str]:
        wanted = sorted({validate_digest(d) for d in digests})
        if not wanted:
            return set()
        known: set[str] = set()
        now = now_ms()
        with self.db.write() as conn:
            for part in batches(wanted):
                live = list(
                    conn.execute(
                        select(dataset_blobs.c.digest)
                        .where(
                            dataset_blobs.c.digest.in_(part), dataset_blobs.c.deleting.is_(False)
                        )
                        .order_by(dataset_blobs.c.digest)
                        .with_for_update()
                    ).scalars()
                )
                if live:  # an upload is about to reference these: spare them from gc
                    conn.execute(
                        update(dataset_blobs)
                        .where(dataset_blobs.c.digest.in_(live))
                        .values(touched_at=now)
                    )
                known.update(live)
        return {d for d in wanted if d not in known}

    def put_blobs(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        data_by_digest: dict[str, bytes] = {}
        for digest, data in blobs:
            validate_digest(digest)
            if hash_bytes(data) != digest:
                raise IntegrityError(f"blob {digest} does not match its content")
            data_by_digest[digest] = data
        digests = sorted(data_by_digest)
        if not digests:
            return
        # A blob garbage collection is deleting is written only once its row is gone, so the
        # collector's file deletion can never remove the new copy.
        self._wait_not_deleting(digests)
        now = now_ms()
        with self.db.write() as conn:  # already stored: touch, do not write again
            stored: set[str] = set()
            for part in batches(digests):
                stored.update(
                    conn.execute(
                        update(dataset_blobs)
                        .where(
                            dataset_blobs.c.digest.in_(part), dataset_blobs.c.deleting.is_(False)
                        )
                        .values(touched_at=now)
                        .returning(dataset_blobs.c.digest)
                    ).scalars()
                )
        fresh = [d for d in digests if d not in stored]
        small = [d for d in fresh if len(data_by_digest[d]) <= PACK_MAX_BLOB]
        rows: list[dict[str, Any]] = []
        if len(small) > 1:
            pack = uuid.uuid4().hex  # never reused, so a pack file is written exactly once
            offset = 0
            for d in small:
                size = len(data_by_digest[d])
                rows.append({"digest": d, "size": size, "pack": pack, "offset": offset})
                offset += size
            self.artifacts.put_bytes(b"".join(data_by_digest[d] for d in small), pack_path(pack))
        loose = [d for d in fresh if not rows or d not in set(small)]
        for d in loose:
            self.artifacts.put_bytes(data_by_digest[d], blob_path(d))
            rows.append(
                {"digest": d, "size": len(data_by_digest[d]), "pack": None, "offset": None}
            )
        with self.db.write() as conn:
            for part in batches(rows):
                conn.execute(
                    self._insert_ignore(dataset_blobs),
                    [{**r, "created_at": now, "touched_at": now} for r in part],
                )

    def _wait_not_deleting(self, digests: Sequence[str], timeout: float = 60.0) -> None:
        """Wait until no row of ``digests`` is being deleted by garbage collection."""
        deadline = time.monotonic() + timeout
        while True:
            busy: list[str] = []
            with self.db.read() as conn:
                for part in batches(digests):
                    busy.extend(
                        conn.execute(
                            select(dataset_blobs.c.digest).where(
                                dataset_blobs.c.digest.in_(part),
                                dataset_blobs.c.deleting.is_(True),
                            )
                        ).scalars()
                    )
            if not busy:
                return
            if time.monotonic() > deadline:
                raise InvalidState(
                    f"blob {busy[0]} is being garbage-collected; if no `loopml gc` is running,"
                    " run it again to finish an interrupted collection, then retry"
                )
            time.sleep(0.05)

    def get_blobs(self, digests: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        wanted = [validate_digest(d) for d in digests]
        where: dict[str, tuple[str | None, int | None, int]] = {}
        with self.db.read() as conn:
            for part in batches(sorted(set(wanted))):
                for r in conn.execute(
                    select(
                        dataset_blobs.c.digest,
                        dataset_blobs.c.pack,
                        dataset_blobs.c.offset,
                        dataset_blobs.c.size,
                    ).where(dataset_blobs.c.digest.in_(part))
                ):
                    where[r.digest] = (r.pack, r.offset, r.size)
        by_pack: dict[str, list[str]] = defaultdict(list)
        for d in wanted:
            pack = where.get(d, (None, None, 0))[0]
            if pack is not None:
                by_pack[pack].append(d)
        packed: dict[str, bytes] = {}
        for pack, members in by_pack.items():
            members = sorted(set(members))
            ranges = [(int(where[d][1] or 0), where[d][2]) for d in members]
            try:
                packed.update(
                    zip(members, self.artifacts.read_ranges(pack_path(pack), ranges), strict=True)
                )
            except ArtifactNotFound:
                raise IntegrityError(
                    f"blob {members[0]} is missing from the artifact store (pack {pack})"
                ) from None
        for digest in wanted:
            data = packed.get(digest)
            if data is None:
                try:
                    data = self.artifacts.read_bytes(blob_path(digest))
                except ArtifactNotFound:
                    raise IntegrityError(
                        f"blob {digest} is missing from the artifact store"
                    ) from None
            if hash_bytes(data) != digest:
                raise IntegrityError(f"blob {digest} is corrupt: its content does not match")
            yield digest, data

    def blob_location(self, digest: str) -> tuple[str, int, int]:
        """Where a stored blob's bytes are: (artifact path, offset, size)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(dataset_blobs).where(dataset_blobs.c.digest == validate_digest(digest))
            ).first()
        if row is None:
            raise NotFound(f"blob {digest} is not stored")
        if row.pack is None:
            return blob_path(digest), 0, row.size
        return pack_path(row.pack), int(row.offset), row.size

    def collect_garbage(self, *, grace_seconds: float = 3600.0, dry_run: bool = False) -> GcReport:
        if (
            isinstance(grace_seconds, bool)
            or not isinstance(grace_seconds, int | float)
            or not math.isfinite(grace_seconds)
            or not 0 <= grace_seconds <= _MAX_GRACE_SECONDS
        ):
            raise InvalidInput(
                f"grace_seconds must be a number from 0 to {_MAX_GRACE_SECONDS:.0f} (ten years)"
            )
        cutoff = now_ms() - int(grace_seconds * 1000)
        unreferenced = and_(
            dataset_blobs.c.touched_at < cutoff,
            ~exists().where(dataset_files.c.digest == dataset_blobs.c.digest),
            ~exists().where(dataset_chunks.c.digest == dataset_blobs.c.digest),
        )
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(dataset_blobs)).scalar() or 0
            candidates = conn.execute(
                select(dataset_blobs.c.digest, dataset_blobs.c.size)
                .where(unreferenced)
                .order_by(dataset_blobs.c.digest)
            ).all()
        if dry_run:
            return GcReport(
                deleted_blobs=len(candidates),
                deleted_bytes=sum(c.size for c in candidates),
                kept_blobs=total - len(candidates),
                dry_run=True,
            )
        deleted: list[tuple[str, int]] = []
        for part in batches(candidates):
            # 1. mark (re-checked under the write lock: a new reference or touch wins) ...
            with self.db.write() as conn:
                marked = conn.execute(
                    update(dataset_blobs)
                    .where(dataset_blobs.c.digest.in_([c.digest for c in part]), unreferenced)
                    .values(deleting=True)
                    .returning(dataset_blobs.c.digest, dataset_blobs.c.size)
                ).all()
            # 2. ... delete the files of blobs stored alone (uploads of these blobs wait) ...
            with self.db.read() as conn:
                packs = dict(
                    conn.execute(
                        select(dataset_blobs.c.digest, dataset_blobs.c.pack).where(
                            dataset_blobs.c.digest.in_([r.digest for r in marked])
                        )
                    ).all()
                )
            parallel_map(
                self._delete_blob_file, [r.digest for r in marked if packs.get(r.digest) is None]
            )
            # 3. ... then the rows, after which uploads may store the blobs afresh; a pack no
            # row names any more is deleted (new rows only ever name new packs).
            touched = sorted({p for p in packs.values() if p is not None})
            with self.db.write() as conn:
                conn.execute(
                    delete(dataset_blobs).where(
                        dataset_blobs.c.digest.in_([r.digest for r in marked]),
                        dataset_blobs.c.deleting.is_(True),
                    )
                )
                still_used = set(
                    conn.execute(
                        select(dataset_blobs.c.pack).where(dataset_blobs.c.pack.in_(touched))
                    ).scalars()
                )
            parallel_map(self._delete_pack_file, [p for p in touched if p not in still_used])
            deleted.extend((r.digest, r.size) for r in marked)
        return GcReport(
            deleted_blobs=len(deleted),
            deleted_bytes=sum(n for _, n in deleted),
            kept_blobs=total - len(deleted),
            dry_run=False,
        )

    def _delete_blob_file(self, digest: str) -> None:
        with contextlib.suppress(ArtifactNotFound):
            self.artifacts.delete(blob_path(digest))

    def _delete_pack_file(self, pack: str) -> None:
        with contextlib.suppress(ArtifactNotFound):
            self.artifacts.delete(pack_path(pack))
