"""Reading a dataset's files where they are (a local file or folder, or an ``s3://`` prefix),
and hashing them in parallel with BLAKE3.

A file up to ``chunk_size`` bytes is one blob named by the BLAKE3 digest of its bytes. A larger
file is cut into ``chunk_size`` pieces, each a blob; the file's digest is then the BLAKE3 of
``b"loopml-chunks-v1\\0"`` followed by the pieces' raw digests, so a changed region of a big
file costs only its own pieces. BLAKE3 runs at several GB/s per core and releases the GIL, so
a thread pool spreads hashing and reading over all cores; the disk is the limit, not the hash.
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import blake3

from loopml.data._entities import FileEntry, validate_file_path
from loopml.errors import InvalidInput, MissingDependency, NotFound, StoreError

__all__ = [
    "CHUNK_SIZE",
    "Source",
    "chunked_digest",
    "content_hash",
    "hash_bytes",
    "hash_source",
    "io_threads",
    "open_source",
    "parallel_map",
    "tabular_format",
]

_log = logging.getLogger("loopml.data")

CHUNK_SIZE = 16 << 20
# Hashing keeps the bytes of small files for the upload (bounded), instead of reading twice.
KEEP_BUDGET = 256 << 20
KEEP_MAX_FILE = 1 << 20
_GROUP_FILES = 64
_GROUP_BYTES = 4 << 20
_CHUNKED_PREFIX = b"loopml-chunks-v1\0"

T = TypeVar("T")
R = TypeVar("R")


_TABULAR_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".csv.gz": "csv",
    ".tsv.gz": "csv",
    ".csv.zst": "csv",
    ".tsv.zst": "csv",
}


def tabular_format(path: str) -> str | None:
    """The profile format for a file name by suffix: "parquet", "csv" (.tsv, .gz, .zst too)."""
    name = os.path.basename(os.fspath(path)).lower()
    for suffix, fmt in _TABULAR_SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    return None


def io_threads() -> int:
    """Threads for parallel reads, hashes and transfers: I/O bound, so more than the cores."""
    return min(32, (os.cpu_count() or 1) * 4)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool; the first error is raised."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(threads or io_threads(), len(items))) as pool:
        return list(pool.map(fn, items))


def hash_bytes(data: bytes | memoryview) -> str:
    """The hex BLAKE3 digest of ``data``."""
    return blake3.blake3(data).hexdigest()


def chunked_digest(chunks: Iterable[str]) -> str:
    """The digest of a file stored in pieces: BLAKE3 over a prefix and the pieces' digests."""
    h = blake3.blake3(_CHUNKED_PREFIX)
    for c in chunks:
        h.update(bytes.fromhex(c))
    return h.hexdigest()


def content_hash(files: Iterable[FileEntry]) -> str:
    """The hash of a version's content: its sorted paths, sizes and digests."""
    h = blake3.blake3()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.size}\0{f.digest}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class _Listed:
    path: str  # relative, POSIX
    size: int


class Source:
    """Files under a root: ``list()`` them, ``read`` a byte range of one."""

    uri: str
    # Threads that pay off: local reads of small files are bound by Python's own work (the
    # GIL), so a few; remote reads wait on the network, so many.
    threads: int = 32

    def list(self) -> list[_Listed]:
        raise NotImplementedError

    def read(self, path: str, offset: int, length: int, size: int) -> bytes:
        """``length`` bytes at ``offset`` of ``path``, whose listed size is ``size``."""
        raise NotImplementedError


class LocalSource(Source):
    """A local file (its folder is the root, its name the only path) or a folder, walked
    recursively. Symbolic links to files are read; links to folders are not followed."""

    threads = min(8, 2 * (os.cpu_count() or 1))

    def __init__(self, path: str | os.PathLike[str]) -> None:
        given = Path(path).expanduser().absolute()
        if not given.exists():
            raise NotFound(f"no such file or folder: {os.fspath(path)!r}")
        self._single = given.is_file()
        if self._single:  # a link to a file is recorded under the link's own name
            self.root = given.parent.resolve()
            self._name = given.name
            self.uri = str(self.root / self._name)
        else:
            self.root = given.resolve()
            self._name = ""
            self.uri = str(self.root)

    def list(self) -> list[_Listed]:
        if self._single:
            return [_Listed(_checked(self._name), os.stat(self.root / self._name).st_size)]
        out: list[_Listed] = []
        stack = [(str(self.root), "")]
        while stack:
            folder, prefix = stack.pop()
            with os.scandir(folder) as it:
                for entry in it:
                    rel = f"{prefix}{entry.name}"
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, rel + "/"))
                    elif entry.is_file(follow_symlinks=True):
                        out.append(_Listed(_checked(rel), entry.stat().st_size))
                    else:
                        _log.warning(
                            "not versioned (a link to a folder, a broken link or not a"
                            " regular file): %s",
                            entry.path,
                        )
        if not out:
            raise InvalidInput(f"folder {self.uri!r} holds no files")
        out.sort(key=lambda f: f.path)
        return out

    def read(self, path: str, offset: int, length: int, size: int) -> bytes:
        fd = os.open(os.path.join(self.root, path), os.O_RDONLY)
        try:
            if os.fstat(fd).st_size != size:
                raise InvalidInput(f"file {path!r} changed while it was being read")
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise InvalidInput(f"file {path!r} changed while it was being read")
        return data

    def file_path(self, path: str) -> str:
        """The local path of ``path``."""
        return os.path.join(self.root, *path.split("/"))


class FsspecSource(Source):
    """Files under an ``s3://bucket/prefix`` (or one object), read through s3fs."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the s3 extra is in dev
            raise MissingDependency("s3:// data needs s3fs: pip install 'loopml[s3]'") from exc
        import fsspec

        from loopml.config import get_settings

        endpoint = endpoint_url or get_settings().s3_endpoint_url
        kwargs: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
        self._fs = fsspec.filesystem("s3", **kwargs)
        self.uri = uri.rstrip("/")
        self._base = self.uri[len("s3://") :]
        try:
            info = self._fs.info(self._base)
        except FileNotFoundError:
            raise NotFound(f"no such object or prefix: {uri!r}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {uri!r}: {exc}") from exc
        self._single = info.get("type") == "file"
        if self._single:
            self._base, self._name = posixpath.split(self._base)
            self._size = int(info["size"])

    def list(self) -> list[_Listed]:
        if self._single:
            return [_Listed(_checked(self._name), self._size)]
        found = self._fs.find(self._base, detail=True)
        out = [
            _Listed(_checked(key[len(self._base) + 1 :]), int(info["size"]))
            for key, info in found.items()
            if info.get("type") == "file" and not key.endswith("/")
        ]
        if not out:
            raise InvalidInput(f"{self.uri!r} holds no objects")
        out.sort(key=lambda f: f.path)
        return out

    def read(self, path: str, offset: int, length: int, size: int) -> bytes:
        key = f"{self._base}/{path}"
        try:
            return bytes(self._fs.cat_file(key, start=offset, end=offset + length))
        except FileNotFoundError:
            raise NotFound(f"s3://{key} is gone") from None


def open_source(uri: str | os.PathLike[str]) -> Source:
    """A local path or ``file://`` URI → ``LocalSource``; ``s3://`` → ``FsspecSource``."""
    text = os.fspath(uri)
    if text.startswith("s3://"):
        return FsspecSource(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        raise InvalidInput(f"unsupported data location {text!r}: use a local path or s3://")
    return LocalSource(text)


def _checked(rel: str) -> str:
    try:
        return validate_file_path(rel)
    except InvalidInput as exc:
        raise InvalidInput(f"cannot version this file: {exc}") from None


def hash_source(
    source: Source,
    *,
    chunk_size: int = CHUNK_SIZE,
    threads: int | None = None,
    keep: dict[str, bytes] | None = None,
    keep_budget: int = KEEP_BUDGET,
) -> list[FileEntry]:
    """Hash every file of ``source`` in parallel; big files are hashed piece by piece.

    When ``keep`` is given, the bytes of small files are kept in it by digest (up to
    ``keep_budget`` bytes in all), so an upload sends exactly what was hashed without reading
    the file again.
    """
    listed = source.list()
    tasks: list[list[tuple[int, int, int]]] = []  # groups of (file index, offset, length)
    group: list[tuple[int, int, int]] = []
    group_bytes = 0
    for i, f in enumerate(listed):
        if f.size > chunk_size:
            tasks.extend(
                [(i, off, min(chunk_size, f.size - off))] for off in range(0, f.size, chunk_size)
            )
            continue
        group.append((i, 0, f.size))  # small files travel in groups: fewer tasks to schedule
        group_bytes += f.size
        if len(group) >= _GROUP_FILES or group_bytes >= _GROUP_BYTES:
            tasks.append(group)
            group, group_bytes = [], 0
    if group:
        tasks.append(group)
    budget = [keep_budget if keep is not None else 0]
    lock = threading.Lock()

    def work(task: list[tuple[int, int, int]]) -> list[tuple[int, int, str]]:
        out = []
        for i, offset, length in task:
            data = source.read(listed[i].path, offset, length, listed[i].size)
            digest = hash_bytes(data)
            if keep is not None and length == listed[i].size and length <= KEEP_MAX_FILE:
                with lock:
                    if budget[0] >= length:
                        budget[0] -= length
                        keep[digest] = data
            out.append((i, offset, digest))
        return out

    pieces: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for result in parallel_map(work, tasks, threads or source.threads):
        for i, offset, digest in result:
            pieces[i].append((offset, digest))
    out: list[FileEntry] = []
    for i, f in enumerate(listed):
        parts = [d for _, d in sorted(pieces[i])]
        if f.size <= chunk_size:
            out.append(FileEntry(f.path, f.size, parts[0]))
        else:
            out.append(FileEntry(f.path, f.size, chunked_digest(parts), tuple(parts)))
    return out
