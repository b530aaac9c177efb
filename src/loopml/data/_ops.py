"""Logging a dataset version (hash, upload what is new, record) and restoring one (fetch,
verify, write), over any ``DatasetStore``."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml.data._base import DatasetStore
from loopml.data._entities import DatasetVersion, FileEntry, parse_ref
from loopml.data._source import (
    CHUNK_SIZE,
    LocalSource,
    Source,
    hash_bytes,
    hash_source,
    open_source,
    parallel_map,
    tabular_format,
)
from loopml.errors import IntegrityError, InvalidInput, NotFound
from loopml.store import validate_artifact_path

__all__ = ["AddResult", "add_dataset", "restore_version"]

# Small blobs travel in batches of at most this many bytes / items (one request each).
_BATCH_BYTES = 8 << 20
_BATCH_ITEMS = 256


@dataclass(frozen=True, slots=True)
class AddResult:
    """A logged version, whether it is new, and what the upload cost."""

    version: DatasetVersion
    created: bool
    uploaded_blobs: int
    uploaded_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "created": self.created,
            "uploaded_blobs": self.uploaded_blobs,
            "uploaded_bytes": self.uploaded_bytes,
            "seconds": round(self.seconds, 4),
        }


def _frame_to_parquet(data: Any, folder: str) -> str:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(data, pd.DataFrame):
        table = pa.Table.from_pandas(data)
    elif isinstance(data, pa.Table):
        table = data
    else:
        raise InvalidInput(
            "log_dataset takes a path, an s3:// URI, a pandas DataFrame or a pyarrow Table,"
            f" not {type(data).__name__}"
        )
    path = os.path.join(folder, "data.parquet")
    pq.write_table(table, path)
    return path


def _profile(source: Source, files: Sequence[FileEntry]) -> dict[str, Any] | None:
    if not isinstance(source, LocalSource):
        return None
    formats = {tabular_format(f.path) for f in files}
    if len(formats) != 1 or None in formats:
        return None
    from loopml.data._profile import profile_files  # DuckDB and pandas: only for tabular data

    fmt = formats.pop()
    assert fmt is not None
    return profile_files([source.file_path(f.path) for f in files], fmt)


def add_dataset(
    store: DatasetStore,
    data: Any,
    name: str,
    *,
    reference: bool = False,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    run_id: str | None = None,
    context: str = "",
    profile: bool = True,
    user_id: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> AddResult:
    """Hash ``data``, store the blobs the store lacks, and record the version."""
    from loopml.data._entities import validate_alias, validate_dataset_name

    started = time.perf_counter()
    validate_dataset_name(name)
    for alias in aliases:
        validate_alias(alias)
    with contextlib.ExitStack() as stack:
        if isinstance(data, str | os.PathLike):
            source = open_source(data)
        else:
            if reference:
                raise InvalidInput("reference mode needs a path or s3:// URI, not in-memory data")
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="loopml-data-"))
            source = open_source(_frame_to_parquet(data, tmp))
        files = hash_source(source, chunk_size=chunk_size)
        from loopml.data._source import content_hash

        found = None if reference else store.find_version(name, content_hash(files))
        uploaded = (0, 0)
        if found is None:
            stats = _profile(source, files) if profile else None
            if not reference:
                uploaded = _upload(store, source, files, chunk_size)
        else:
            stats = found.profile
        version, created = store.create_version(
            name,
            files,
            mode="reference" if reference else "copy",
            source_uri=source.uri if reference else None,
            chunk_size=chunk_size,
            num_rows=None if stats is None else stats.get("num_rows"),
            profile=stats,
            description=description,
            tags=tags,
            run_id=run_id,
            context=context,
            user_id=user_id,
        )
    for alias in aliases:
        store.set_alias(name, alias, version.version)
    if aliases:
        version = store.get_version(name, version.version)
    return AddResult(version, created, uploaded[0], uploaded[1], time.perf_counter() - started)


def _upload(
    store: DatasetStore, source: Source, files: Sequence[FileEntry], chunk_size: int
) -> tuple[int, int]:
    wanted = {b for f in files for b in f.blobs}
    missing = store.missing_blobs(sorted(wanted))
    pieces: list[tuple[str, str, int, int]] = []  # (digest, path, offset, length)
    seen: set[str] = set()
    for f in files:
        for i, digest in enumerate(f.blobs):
            if digest in missing and digest not in seen:
                seen.add(digest)
                offset = i * chunk_size
                pieces.append((digest, f.path, offset, min(chunk_size, f.size - offset)))
    batches: list[list[tuple[str, str, int, int]]] = []
    current: list[tuple[str, str, int, int]] = []
    size = 0
    for piece in pieces:
        if current and (size + piece[3] > _BATCH_BYTES or len(current) >= _BATCH_ITEMS):
            batches.append(current)
            current, size = [], 0
        current.append(piece)
        size += piece[3]
    if current:
        batches.append(current)

    def send(batch: list[tuple[str, str, int, int]]) -> None:
        blobs = []
        for digest, path, offset, length in batch:
            data = source.read(path, offset, length)
            if len(data) != length or hash_bytes(data) != digest:
                raise InvalidInput(f"file {path!r} changed while it was being added; add it again")
            blobs.append((digest, data))
        store.put_blobs(blobs)

    parallel_map(send, batches)
    return len(pieces), sum(p[3] for p in pieces)


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InvalidInput(
            f"folder {str(out)!r} is not empty; pass force=True (--force) to write into it"
        )
    out.mkdir(parents=True, exist_ok=True)


def restore_version(
    store: DatasetStore, ref: str, out: str | os.PathLike[str], *, force: bool = False
) -> tuple[DatasetVersion, Path]:
    """Write the files of ``name[@version|@alias]`` under ``out``, each verified by its hash."""
    name, number = parse_ref(ref)
    version = store.get_version(name, number)
    files = store.list_files(name, version.version)
    target = Path(out).expanduser().resolve()
    _prepare_out(target, force)
    for f in files:  # paths come from the store: they must stay inside ``out``
        validate_artifact_path(f.path, allow_empty=False)
    if version.mode == "reference":
        _restore_reference(version, files, target)
    else:
        _restore_blobs(store, version, files, target)
    return version, target


def _write_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.loopml-part")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, dest)


def _restore_blobs(
    store: DatasetStore, version: DatasetVersion, files: Sequence[FileEntry], out: Path
) -> None:
    small: dict[str, list[FileEntry]] = defaultdict(list)
    big: list[FileEntry] = []
    for f in files:
        (big.append(f) if f.chunks else small[f.digest].append(f))
    digests = list(small)
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for d in digests:
        n = small[d][0].size
        if current and (size + n > _BATCH_BYTES or len(current) >= _BATCH_ITEMS):
            batches.append(current)
            current, size = [], 0
        current.append(d)
        size += n
    if current:
        batches.append(current)

    def fetch(batch: list[str]) -> None:
        for digest, data in store.get_blobs(batch):
            for f in small[digest]:
                if len(data) != f.size:
                    raise IntegrityError(f"blob {digest} of {f.path!r} has the wrong size")
                _write_atomic(out / f.path, data)

    parallel_map(fetch, batches)
    for f in big:
        dest = out / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.loopml-part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, f.size)

            def piece(i: int, fd: int = fd, f: FileEntry = f) -> None:
                for _digest, data in store.get_blobs([f.chunks[i]]):
                    os.pwrite(fd, data, i * version.chunk_size)

            parallel_map(piece, list(range(len(f.chunks))))
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, dest)


def _restore_reference(version: DatasetVersion, files: Sequence[FileEntry], out: Path) -> None:
    assert version.source_uri is not None
    source = open_source(version.source_uri)
    base = version.source_uri

    def copy(f: FileEntry) -> None:
        pieces = f.chunks or (f.digest,)
        step = version.chunk_size
        dest = out / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.loopml-part")
        try:
            with open(tmp, "wb") as fh:
                for i, digest in enumerate(pieces):
                    length = f.size if not f.chunks else min(step, f.size - i * step)
                    try:
                        data = source.read(f.path, i * step, length)
                    except (FileNotFoundError, NotFound):
                        raise IntegrityError(
                            f"{f.path!r} under {base} is gone since {version.ref} was recorded"
                        ) from None
                    if len(data) != length or hash_bytes(data) != digest:
                        raise IntegrityError(
                            f"{f.path!r} under {base} changed since {version.ref} was recorded"
                        )
                    fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    parallel_map(copy, list(files))
