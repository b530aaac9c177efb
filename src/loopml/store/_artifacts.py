"""Artifact storage over fsspec: one class for a local folder or an ``s3://bucket/prefix``.

Every path a caller passes is relative to the store's root, POSIX-separated, and checked by
``validate_artifact_path`` so nothing can be read or written outside the root. Local writes go
to a temporary name in the target folder and are renamed into place, so readers never see half
a file; S3 writes are atomic by nature (one PUT, or a multipart upload completed at the end).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from fsspec.implementations.local import LocalFileSystem, make_path_posix

from loopml.config import get_settings
from loopml.errors import (
    ArtifactNotFound,
    InvalidInput,
    LoopmlError,
    MissingDependency,
    StoreError,
)

__all__ = ["ArtifactStore", "FileInfo", "resolve_artifact_store", "validate_artifact_path"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TMP_SUFFIX = ".loopml-tmp"
# Parts of a streamed S3 upload; S3 needs >= 5 MiB per part, and this bounds memory per stream.
_S3_BLOCK_SIZE = 8 << 20


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A listing entry (MLflow's shape): path relative to the store root, size of files only."""

    path: str
    is_dir: bool
    file_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "is_dir": self.is_dir, "file_size": self.file_size}


# S3 keys hold at most 1024 bytes; common file systems allow 255-byte names.
_MAX_PATH_BYTES = 1024
_MAX_NAME_BYTES = 255


def validate_artifact_path(path: str | None, *, allow_empty: bool = True) -> str:
    """Return ``path`` as a normalised relative POSIX path that cannot leave the store root.

    Raises:
        InvalidInput: absolute, drive or UNC paths, URL schemes, ``..`` segments, backslashes,
            control characters, a leading ``~``, or an empty path when ``allow_empty`` is false.
    """
    path = "" if path is None else path
    if not isinstance(path, str):
        raise InvalidInput(f"artifact path must be a string, got {type(path).__name__}")

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"invalid artifact path {path[:200]!r}: {why}")

    if len(path.encode("utf-8", "surrogatepass")) > _MAX_PATH_BYTES:
        raise bad(f"it is longer than {_MAX_PATH_BYTES} bytes")

    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise bad("it contains a NUL or control character")
    if "\\" in path:
        raise bad("backslashes are not allowed; use '/' between folders")
    if path.startswith("/"):
        raise bad("it is absolute; give a path relative to the artifact root")
    if _SCHEME.match(path):
        raise bad("it looks like a URI or drive letter; give a path relative to the root")
    if path.startswith("~"):
        raise bad("a leading '~' is not allowed (it would look like a home folder)")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise bad("'..' segments are not allowed")
    if any(len(p.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES for p in parts):
        raise bad(f"a file or folder name is longer than {_MAX_NAME_BYTES} bytes")
    normal = "/".join(parts)
    # Belt and braces: whatever the rules above missed, the result must stay under the root.
    if normal and (
        posixpath.normpath(normal) != normal or normal == ".." or normal.startswith(("/", "../"))
    ):
        raise bad("it does not stay under the artifact root")
    if not normal and not allow_empty:
        raise bad("it is empty; name a file or folder under the artifact root")
    return normal


class ArtifactStore:
    """Files under one root: a local folder (path or ``file://`` URI) or ``s3://bucket/prefix``.

    Thread-safe: calls share one fsspec filesystem (s3fs serialises its client set-up and runs
    requests on its own event loop) and local writes use unique temporary names. Missing
    artifacts raise ``ArtifactNotFound``; bad paths, or a folder where a file is expected, raise
    ``InvalidInput``; backend failures raise ``StoreError`` (on S3 also when an object is
    replaced while ``open_read`` streams it: a reader never mixes two versions).
    """

    def __init__(self, root: str | os.PathLike[str], *, endpoint_url: str | None = None) -> None:
        root = os.fspath(root)
        if not isinstance(root, str) or not root:
            raise InvalidInput("artifact root must be a non-empty path or URI")
        self._fs: Any
        self._driver_errors: tuple[type[BaseException], ...] = (OSError,)
        scheme = _SCHEME.match(root)
        if scheme and len(scheme.group()) > 2:  # "C:" is a Windows drive, not a scheme
            if scheme.group().lower() == "s3:":
                bucket, prefix = _parse_s3(root)
                self._fs, self._driver_errors = _s3_filesystem(endpoint_url)
                self._local = False
                self._base = posixpath.join(bucket, prefix) if prefix else bucket
                return
            if scheme.group().lower() != "file:":
                raise InvalidInput(
                    f"unsupported artifact URI {root!r}; use a local path, file:// or s3://"
                )
            root = _file_uri_to_path(root)
        self._fs = LocalFileSystem()
        self._local = True
        self._base = make_path_posix(os.path.abspath(os.path.expanduser(root))).rstrip("/") or "/"

    @property
    def root(self) -> str:
        """The normalised root URI (``file:///...`` or ``s3://bucket/prefix``)."""
        return self.uri_for("")

    def uri_for(self, path: str = "") -> str:
        """The full URI of ``path`` under the root."""
        full = self._full(validate_artifact_path(path))
        return Path(full).as_uri() if self._local else f"s3://{full}"

    def child(self, path: str) -> ArtifactStore:
        """A store rooted at ``path`` under this root, sharing this store's filesystem."""
        out = copy(self)
        out._base = self._full(validate_artifact_path(path))
        return out

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    def _full(self, rel: str) -> str:
        return posixpath.join(self._base, rel) if rel else self._base

    # -- writing -----------------------------------------------------------------------------

    def put_bytes(self, data: bytes, path: str) -> None:
        """Write ``data`` to the file at ``path``, replacing it."""
        rel = validate_artifact_path(path, allow_empty=False)
        with self._errors(rel, "write", writing=True):
            if not self._local:
                self._fs.pipe_file(self._full(rel), bytes(data))
                return
            with _atomic_local(self._full(rel)) as tmp, open(tmp, "wb") as f:
                f.write(data)

    def put_stream(self, chunks: Iterable[bytes], path: str) -> None:
        """Write ``chunks`` one by one to ``path``; nothing appears unless all of them arrive."""
        rel = validate_artifact_path(path, allow_empty=False)
        try:
            with self._errors(rel, "write", writing=True):
                if not self._local:
                    return _s3_stream(self._fs, self._full(rel), _guarded(chunks))
                with _atomic_local(self._full(rel)) as tmp, open(tmp, "wb") as f:
                    for chunk in _guarded(chunks):
                        f.write(chunk)
        except _SourceFailed as exc:  # the caller's iterator failed: re-raise its own error
            raise cast(BaseException, exc.__cause__) from None

    def put_file(self, local_path: str | os.PathLike[str], path: str) -> None:
        """Upload the local file ``local_path`` to ``path``, streaming it."""
        rel = validate_artifact_path(path, allow_empty=False)
        src = os.fspath(local_path)
        if not os.path.isfile(src):
            raise InvalidInput(f"cannot upload {src!r}: it is not a local file")
        with self._errors(rel, "write", writing=True):
            if not self._local:
                self._fs.put_file(src, self._full(rel))
                return
            with _atomic_local(self._full(rel)) as tmp:
                shutil.copyfile(src, tmp)

    def put_dir(self, local_dir: str | os.PathLike[str], path: str = "") -> None:
        """Upload every file under ``local_dir`` to ``path``, keeping the relative layout."""
        rel = validate_artifact_path(path)
        src = os.fspath(local_dir)
        if not os.path.isdir(src):
            raise InvalidInput(f"cannot upload {src!r}: it is not a local folder")
        pairs: list[tuple[str, str]] = []
        for folder, _, files in os.walk(src):
            for name in files:
                inner = Path(os.path.relpath(os.path.join(folder, name), src)).as_posix()
                target = validate_artifact_path(posixpath.join(rel, inner))
                pairs.append((os.path.join(folder, name), target))
        if self._local:
            for local, target in sorted(pairs):
                self.put_file(local, target)
        elif pairs:  # one batched call: s3fs uploads the files concurrently
            with self._errors(rel, "write", writing=True):
                self._fs.put([p[0] for p in pairs], [self._full(p[1]) for p in pairs])

    def delete(self, path: str) -> None:
        """Delete the file or folder (recursively) at ``path``."""
        rel = validate_artifact_path(path, allow_empty=False)
        with self._errors(rel, "delete"):
            full = self._full(rel)
            self._fs.rm(full, recursive=self._fs.info(full)["type"] == "directory")

    # -- reading -----------------------------------------------------------------------------

    def open_read(self, path: str) -> BinaryIO:
        """Open the file at ``path`` for reading; the caller closes it."""
        rel = validate_artifact_path(path, allow_empty=False)
        with self._errors(rel, "read"):
            if self._local:
                return open(self._full(rel), "rb")
            return cast(BinaryIO, self._fs.open(self._file_info(rel)["name"], "rb"))

    def read_bytes(self, path: str) -> bytes:
        """The whole content of the file at ``path`` (on S3 one GET, so one consistent version)."""
        rel = validate_artifact_path(path, allow_empty=False)
        if self._local:
            with self.open_read(rel) as f, self._errors(rel, "read"):
                return f.read()
        with self._errors(rel, "read"):
            try:
                return bytes(self._fs.cat_file(self._full(rel)))
            except FileNotFoundError:
                self._file_info(rel)  # raises the right error: a folder, or nothing there
                raise

    def read_ranges(self, path: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes at each ``(offset, length)`` of the file at ``path``, in order (one open
        locally; one ranged GET each on S3)."""
        rel = validate_artifact_path(path, allow_empty=False)
        if self._local:
            with self._errors(rel, "read"):
                fd = os.open(self._full(rel), os.O_RDONLY)
                try:
                    return [os.pread(fd, length, offset) for offset, length in ranges]
                finally:
                    os.close(fd)
        with self._errors(rel, "read"):
            full = self._full(rel)
            return [
                bytes(self._fs.cat_file(full, start=offset, end=offset + length))
                for offset, length in ranges
            ]

    def iter_chunks(self, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the file at ``path`` in chunks; a missing file raises here, not on first use."""
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, got {chunk_size}")
        return self._chunks(self.open_read(path), path, chunk_size)

    def _chunks(self, f: BinaryIO, path: str, chunk_size: int) -> Iterator[bytes]:
        with f:
            while True:
                with self._errors(path, "read"):
                    chunk = f.read(chunk_size)
                if not chunk:
                    return
                yield chunk

    def get_file(self, path: str, local_path: str | os.PathLike[str]) -> None:
        """Download the file at ``path`` to ``local_path`` (parents created, atomic rename)."""
        rel = validate_artifact_path(path, allow_empty=False)
        dest = os.path.abspath(os.fspath(local_path))
        if os.path.isdir(dest):
            raise InvalidInput(f"cannot download to {dest!r}: it is a folder")
        with self._errors(rel, "read"):
            full = self._file_info(rel)["name"]
            with _atomic_local(dest) as tmp:
                self._fs.get_file(full, tmp)

    def get_dir(self, path: str, local_dir: str | os.PathLike[str]) -> None:
        """Download the folder at ``path`` into ``local_dir``, or the file there if it is one."""
        rel = validate_artifact_path(path)
        dest = os.path.abspath(os.fspath(local_dir))
        full = self._full(rel)
        with self._errors(rel, "read"):
            if rel and self._fs.info(full)["type"] != "directory":
                return self.get_file(rel, os.path.join(dest, posixpath.basename(rel)))
            found = self._fs.find(full) if self._fs.exists(full) else []
        prefix = full.rstrip("/") + "/"
        pairs: list[tuple[str, str]] = []
        for name in sorted(found):
            inner = name[len(prefix) :] if name.startswith(prefix) else ""
            if not inner or inner.endswith("/") or self._is_tmp(inner):
                continue  # S3 folder markers and in-flight local writes
            try:
                inner = validate_artifact_path(inner, allow_empty=False)
            except InvalidInput as exc:
                raise StoreError(f"refusing to download {name!r}: {exc}") from exc
            pairs.append((name, os.path.join(dest, *inner.split("/"))))
        for local in [os.path.join(dest, "_"), *(p[1] for p in pairs)]:
            os.makedirs(os.path.dirname(local), exist_ok=True)
        if pairs:  # one batched call: s3fs downloads the files concurrently
            with self._errors(rel, "read"):
                self._fs.get([p[0] for p in pairs], [p[1] for p in pairs])

    # -- inspecting --------------------------------------------------------------------------

    def list(self, path: str = "") -> list[FileInfo]:
        """Immediate children of the folder ``path``, sorted; ``[]`` for a file or nothing."""
        rel = validate_artifact_path(path)
        prefix = self._full(rel).rstrip("/") + "/"
        with self._errors(rel, "list"):
            try:
                entries = self._fs.ls(self._full(rel), detail=True)
            except (FileNotFoundError, NotADirectoryError):
                return []
        out: list[FileInfo] = []
        for entry in entries:  # listing a file gives the file itself: not a child, skipped
            inner = entry["name"][len(prefix) :].rstrip("/")
            if not entry["name"].startswith(prefix) or not inner or "/" in inner:
                continue
            if self._is_tmp(inner):  # another thread's write in flight
                continue
            is_dir = entry["type"] == "directory"
            size = None if is_dir else int(entry.get("size") or 0)
            out.append(FileInfo(posixpath.join(rel, inner) if rel else inner, is_dir, size))
        return sorted(out, key=lambda i: (i.path, i.is_dir))

    def exists(self, path: str) -> bool:
        """Whether a file or folder exists at ``path``."""
        rel = validate_artifact_path(path)
        with self._errors(rel, "check"):
            return bool(self._fs.exists(self._full(rel)))

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a folder (on S3: a prefix with objects under it)."""
        rel = validate_artifact_path(path)
        with self._errors(rel, "check"):
            return bool(self._fs.isdir(self._full(rel)))

    def size(self, path: str) -> int:
        """Size in bytes of the file at ``path``."""
        rel = validate_artifact_path(path, allow_empty=False)
        with self._errors(rel, "check"):
            return int(self._file_info(rel)["size"])

    # -- helpers -----------------------------------------------------------------------------

    def _file_info(self, rel: str) -> dict[str, Any]:
        """fsspec's info of the file at ``rel``; ``IsADirectoryError`` if it is a folder."""
        info = self._fs.info(self._full(rel))
        if info["type"] == "directory":
            raise IsADirectoryError(rel)
        return cast(dict[str, Any], info)

    def _is_tmp(self, name: str) -> bool:
        return self._local and posixpath.basename(name).endswith(_TMP_SUFFIX)

    @contextlib.contextmanager
    def _errors(self, rel: str, action: str, *, writing: bool = False) -> Iterator[None]:
        """Translate driver errors into loopml errors that name the artifact."""
        try:
            yield
        except LoopmlError:
            raise
        except self._driver_errors as exc:
            where = f"artifact {rel!r} under {self.root}"
            if isinstance(exc, IsADirectoryError):
                why = "write inside it or delete it first" if writing else "use list or get_dir"
                raise InvalidInput(f"{where} is a folder; {why}") from exc
            if writing and isinstance(exc, FileExistsError | NotADirectoryError):
                raise InvalidInput(f"cannot write {where}: a parent is a file") from exc
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise ArtifactNotFound(f"no {where}") from exc
            raise StoreError(f"could not {action} {where}: {exc}") from exc


def _s3_stream(fs: Any, full: str, chunks: Iterable[bytes]) -> None:
    """Multipart upload completed only after the last chunk, and aborted on any error."""
    f = fs.open(full, "wb", autocommit=False)  # parts go up as they fill; commit() completes
    try:
        for chunk in chunks:
            f.write(chunk)
        f.close()
        f.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            f.close()
        with contextlib.suppress(Exception):
            f.discard()
        raise


class _SourceFailed(Exception):
    """Carries (as ``__cause__``) an error raised by a caller's chunk iterator."""


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Iterate ``chunks``, marking the caller's own errors so they are not translated."""
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise _SourceFailed() from exc
        yield chunk


@contextlib.contextmanager
def _atomic_local(dest: str) -> Iterator[str]:
    """Yield a unique temporary path beside ``dest``, renamed onto ``dest`` on success."""
    if os.path.isdir(dest):
        raise IsADirectoryError(dest)
    folder, name = os.path.split(dest)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name[:100]}.{uuid.uuid4().hex[:16]}{_TMP_SUFFIX}")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _parse_s3(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into a bucket and a validated prefix."""
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not uri.lower().startswith("s3://") or not _BUCKET.match(bucket):
        raise InvalidInput(f"invalid S3 artifact URI {uri!r}; expected s3://bucket/prefix")
    try:
        return bucket, validate_artifact_path(prefix.rstrip("/"))
    except InvalidInput as exc:
        raise InvalidInput(f"invalid S3 artifact URI {uri!r}: {exc}") from exc


def _file_uri_to_path(uri: str) -> str:
    """The local path of a ``file:`` URI (percent-decoded, as ``Path.as_uri`` encodes it)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise InvalidInput(f"invalid file URI {uri!r}; expected file:///absolute/path")
    return urllib.request.url2pathname(parts.path)


def _s3_filesystem(endpoint_url: str | None) -> tuple[Any, tuple[type[BaseException], ...]]:
    """An s3fs filesystem (fsspec shares it per endpoint) and the errors its driver raises."""
    try:
        import s3fs
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise MissingDependency(
            "s3:// artifact storage needs s3fs; pip install 'loopml[s3]'"
        ) from exc
    if endpoint_url is None:
        endpoint_url = get_settings().s3_endpoint_url
    fs = s3fs.S3FileSystem(
        endpoint_url=endpoint_url or None,
        default_block_size=_S3_BLOCK_SIZE,
        use_listings_cache=False,  # other processes write too; listings must be fresh
    )
    return fs, (OSError, BotoCoreError, ClientError)


def resolve_artifact_store(uri: str | ArtifactStore | None = None) -> ArtifactStore:
    """The store for ``uri``: an instance as is, a path or URI, or ``None`` for the settings."""
    if isinstance(uri, ArtifactStore):
        return uri
    if uri is None:
        uri = get_settings().resolved_artifact_uri
    return ArtifactStore(uri)
