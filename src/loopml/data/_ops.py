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
from loopml.data._entities import DatasetVersion, FileEntry, parse_ref, validate_file_path
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
from loopml.errors import BlobsNotStored, IntegrityError, InvalidInput, NotFound

__all__ = ["AddResult", "add_dataset", "restore_version"]

# Small blobs travel in batches of at most this many bytes / items (one request each).
_BATCH_BYTES = 8 << 20
_BATCH_ITEMS = 256
_ATTEMPTS = 5


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
        kept: dict[str, bytes] = {}
        files = hash_source(source, chunk_size=chunk_size, keep=kept)
        from loopml.data._source import content_hash

        found = None if reference else store.find_version(name, content_hash(files))
        uploaded = (0, 0)
        if found is None:
            stats = _profile(source, files) if profile else None
            if not reference:
                uploaded = _upload(store, source, files, chunk_size, kept)
        else:
            stats = found.profile
        for attempt in range(_ATTEMPTS):
            try:
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
                break
            except BlobsNotStored:
                # Garbage collection took blobs this upload found stored (possible only with a
                # grace period shorter than the upload): send what is missing now, and retry.
                if reference or attempt == _ATTEMPTS - 1:
                    raise
                more = _upload(store, source, files, chunk_size, kept)
                uploaded = (uploaded[0] + more[0], uploaded[1] + more[1])
    for alias in aliases:
        store.set_alias(name, alias, version.version)
    if aliases:
        version = store.get_version(name, version.version)
    return AddResult(version, created, uploaded[0], uploaded[1], time.perf_counter() - started)


def _upload(
    store: DatasetStore,
    source: Source,
    files: Sequence[FileEntry],
    chunk_size: int,
    kept: Mapping[str, bytes],
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

    sizes = {f.path: f.size for f in files}

    def send(batch: list[tuple[str, str, int, int]]) -> None:
        blobs = []
        for digest, path, offset, length in batch:
            data = kept.get(digest)  # the very bytes that were hashed
            if data is None:  # read again: the store checks each blob against its digest
                data = source.read(path, offset, length, sizes[path])
            blobs.append((digest, data))
        try:
            store.put_blobs(blobs)
        except IntegrityError:  # a blob is not what was hashed: its file changed meanwhile
            paths = sorted({path for _, path, _, _ in batch})
            raise InvalidInput(
                f"file {paths[0]!r} (or another of this batch) changed while it was being"
                " added; add it again"
            ) from None

    parallel_map(send, batches, store.threads)
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
    for f in files:  # paths come from the store: they must stay inside ``out``
        validate_file_path(f.path)
        _check_pieces(version, f)
    target = Path(out).expanduser().resolve()
    _prepare_out(target, force)
    if version.mode == "reference":
        _restore_reference(version, files, target)
    else:
        _restore_blobs(store, version, files, target)
    return version, target


def _check_pieces(version: DatasetVersion, f: FileEntry) -> None:
    step = version.chunk_size
    if f.chunks and (step < 1 or len(f.chunks) != -(-f.size // step) or f.size <= step):
        raise IntegrityError(f"{version.ref}: the chunks of {f.path!r} do not fit its size")


def _piece_length(version: DatasetVersion, f: FileEntry, i: int) -> int:
    return min(version.chunk_size, f.size - i * version.chunk_size) if f.chunks else f.size


def _destination(out: Path, rel: str) -> Path:
    """``out/rel``, its folders made; refused if any folder on the way is a symbolic link
    (writing through one could land outside ``out``)."""
    parts = rel.split("/")
    folder = out
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise IntegrityError(f"refusing to write {rel!r}: {folder} is a symbolic link")
        if not folder.exists():
            folder.mkdir(exist_ok=True)
        elif not folder.is_dir():
            raise InvalidInput(f"cannot write {rel!r}: {folder} is a file")
    dest = folder / parts[-1]
    if dest.is_dir() and not dest.is_symlink():
        raise InvalidInput(f"cannot write {rel!r}: {dest} is a folder")
    return dest


def _temp_beside(dest: Path) -> tuple[int, Path]:
    """A new, exclusively created temporary file in ``dest``'s folder (never a link)."""
    fd, name = tempfile.mkstemp(prefix=".lm-", suffix=".part", dir=dest.parent)
    return fd, Path(name)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(f"short write at offset {offset}")
        view = view[written:]
        offset += written


def _write_file(out: Path, f: FileEntry, fill: Any) -> None:
    """Create ``f`` under ``out`` from ``fill(fd)`` under a temporary name; rename it into
    place only once every byte is written."""
    dest = _destination(out, f.path)
    fd, tmp = _temp_beside(dest)
    try:
        os.ftruncate(fd, f.size)
        fill(fd)
        os.fchmod(fd, 0o644)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, dest)


def _restore_blobs(
    store: DatasetStore, version: DatasetVersion, files: Sequence[FileEntry], out: Path
) -> None:
    small: dict[str, list[FileEntry]] = defaultdict(list)
    big: list[FileEntry] = []
    for f in files:
        (big.append(f) if f.chunks else small[f.digest].append(f))
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for d in small:
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
                _write_file(out, f, lambda fd, data=data: _write_all(fd, data, 0))

    parallel_map(fetch, batches, store.threads)
    for f in big:

        def fill(fd: int, f: FileEntry = f) -> None:
            def piece(i: int) -> None:
                for digest, data in store.get_blobs([f.chunks[i]]):
                    if len(data) != _piece_length(version, f, i):
                        raise IntegrityError(f"blob {digest} of {f.path!r} has the wrong size")
                    _write_all(fd, data, i * version.chunk_size)

            parallel_map(piece, list(range(len(f.chunks))), store.threads)

        _write_file(out, f, fill)


def _restore_reference(version: DatasetVersion, files: Sequence[FileEntry], out: Path) -> None:
    assert version.source_uri is not None
    base = version.source_uri
    try:
        source = open_source(base)
    except NotFound:
        raise IntegrityError(f"{base} is gone since {version.ref} was recorded") from None

    def copy(f: FileEntry) -> None:
        def fill(fd: int) -> None:
            for i, digest in enumerate(f.blobs):
                length = _piece_length(version, f, i)
                try:
                    data = source.read(f.path, i * version.chunk_size, length, f.size)
                except (FileNotFoundError, NotFound):
                    raise IntegrityError(
                        f"{f.path!r} under {base} is gone since {version.ref} was recorded"
                    ) from None
                except InvalidInput:  # its size is not the recorded one
                    data = b""
                if len(data) != length or hash_bytes(data) != digest:
                    raise IntegrityError(
                        f"{f.path!r} under {base} changed since {version.ref} was recorded"
                    )
                _write_all(fd, data, i * version.chunk_size)

        _write_file(out, f, fill)

    parallel_map(copy, list(files))
