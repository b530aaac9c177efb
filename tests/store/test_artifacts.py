"""Conformance suite for ``ArtifactStore``, run on a local folder and on S3 (moto's server)."""

from __future__ import annotations

import functools
import hashlib
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopml.config import reset_settings
from loopml.errors import ArtifactNotFound, InvalidInput, MissingDependency, StoreError
from loopml.store._artifacts import (
    ArtifactStore,
    FileInfo,
    resolve_artifact_store,
    validate_artifact_path,
)

MiB = 1 << 20
S3_PREFIX = "some/prefix"


@dataclass
class StoreCase:
    """An artifact store under test and where it keeps its bytes."""

    store: ArtifactStore
    backend: str
    snapshot: Callable[[], object]  # everything in the backend: tmp_path, or the whole bucket
    s3_client: Any = None
    bucket: str | None = None
    endpoint: str | None = None


def _make_case(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    if backend == "local":

        def local_snapshot() -> object:
            return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

        return StoreCase(ArtifactStore(tmp_path / "artifacts"), "local", local_snapshot)
    client, bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("moto_endpoint")

    def s3_snapshot() -> object:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    store = ArtifactStore(f"s3://{bucket}/{S3_PREFIX}", endpoint_url=endpoint)
    return StoreCase(store, "s3", s3_snapshot, client, bucket, endpoint)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def artifact_case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    """The same conformance case on every artifact backend."""
    return _make_case(request.param, request, tmp_path)


@pytest.fixture
def s3_case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    """The S3 case alone, for behaviour only S3 has."""
    return _make_case("s3", request, tmp_path)


@pytest.fixture
def artifact_store(artifact_case: StoreCase) -> ArtifactStore:
    """An empty artifact store on each backend (local folder, S3 prefix on moto)."""
    return artifact_case.store


@functools.cache
def _payload(n: int, seed: bytes = b"loopml") -> bytes:
    """Deterministic, incompressible-looking bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Monkeypatch for LOOPML_* variables, with the settings cache reset around the test."""
    reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello", _payload(70_000)])
def test_put_bytes_round_trip(artifact_store: ArtifactStore, data: bytes) -> None:
    artifact_store.put_bytes(data, "a/b/c.bin")
    assert artifact_store.read_bytes("a/b/c.bin") == data
    assert artifact_store.size("a/b/c.bin") == len(data)
    with artifact_store.open_read("a/b/c.bin") as f:
        assert f.read() == data


def test_put_bytes_overwrites(artifact_store: ArtifactStore) -> None:
    artifact_store.put_bytes(b"old content", "f.txt")
    artifact_store.put_bytes(b"new", "f.txt")
    assert artifact_store.read_bytes("f.txt") == b"new"
    assert artifact_store.list() == [FileInfo("f.txt", False, 3)]


def test_put_file_get_file(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(_payload(300_000))
    artifact_store.put_file(src, "models/m.bin")
    dest = tmp_path / "down" / "deep" / "m.bin"
    artifact_store.get_file("models/m.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["m.bin"]  # no temporary left behind


def test_put_file_rejects_missing_local_file(
    artifact_store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="not a local file"):
        artifact_store.put_file(tmp_path / "nope", "x")


def test_put_stream_large_is_multipart_on_s3(artifact_case: StoreCase) -> None:
    store = artifact_case.store
    data = _payload(12 * MiB)
    store.put_stream((data[i : i + MiB] for i in range(0, len(data), MiB)), "big/blob.bin")
    assert store.size("big/blob.bin") == len(data)
    chunks = list(store.iter_chunks("big/blob.bin", chunk_size=3 * MiB))
    assert all(len(c) <= 3 * MiB for c in chunks)
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(data).digest()
    if artifact_case.backend == "s3":
        head = artifact_case.s3_client.head_object(
            Bucket=artifact_case.bucket, Key=f"{S3_PREFIX}/big/blob.bin"
        )
        assert head["ETag"].strip('"').endswith("-2")  # S3 marks multipart ETags "-<parts>"


def test_put_stream_small_and_empty(artifact_store: ArtifactStore) -> None:
    artifact_store.put_stream(iter([b"ab", b"", b"cd"]), "s.txt")
    artifact_store.put_stream(iter([]), "empty.txt")
    assert artifact_store.read_bytes("s.txt") == b"abcd"
    assert artifact_store.read_bytes("empty.txt") == b""


@pytest.mark.parametrize("error", [ValueError("boom"), OSError("disk of the caller")])
def test_put_stream_failure_leaves_old_content(artifact_case: StoreCase, error: Exception) -> None:
    store = artifact_case.store
    store.put_bytes(b"old", "f.bin")
    before = artifact_case.snapshot()

    def chunks() -> Iterator[bytes]:
        yield _payload(9 * MiB)  # over one S3 part, so a multipart upload is in flight
        raise error

    with pytest.raises(type(error)) as info:
        store.put_stream(chunks(), "f.bin")
    assert info.value is error  # the caller's own error, not translated
    with pytest.raises(type(error)):
        store.put_stream(chunks(), "new.bin")
    assert store.read_bytes("f.bin") == b"old"
    assert not store.exists("new.bin")
    assert artifact_case.snapshot() == before
    if artifact_case.backend == "s3":
        uploads = artifact_case.s3_client.list_multipart_uploads(Bucket=artifact_case.bucket)
        assert uploads.get("Uploads", []) == []


# -- folders ------------------------------------------------------------------------------


def _fill(store: ArtifactStore) -> None:
    store.put_bytes(b"1", "b.txt")
    store.put_bytes(b"22", "a/x.txt")
    store.put_bytes(b"333", "a/sub/y.txt")
    store.put_bytes(b"4444", "a/sub/deeper/z.txt")
    store.put_bytes(b"55555", "c")


def test_list_immediate_children_sorted(artifact_store: ArtifactStore) -> None:
    _fill(artifact_store)
    assert artifact_store.list() == [
        FileInfo("a", True, None),
        FileInfo("b.txt", False, 1),
        FileInfo("c", False, 5),
    ]
    assert artifact_store.list("a") == [
        FileInfo("a/sub", True, None),
        FileInfo("a/x.txt", False, 2),
    ]
    assert artifact_store.list("./a//sub/") == [
        FileInfo("a/sub/deeper", True, None),
        FileInfo("a/sub/y.txt", False, 3),
    ]


def test_list_missing_or_file_is_empty(artifact_store: ArtifactStore) -> None:
    assert artifact_store.list() == []
    assert artifact_store.list("nope") == []
    _fill(artifact_store)
    assert artifact_store.list("nope/deeper") == []
    assert artifact_store.list("b.txt") == []
    assert artifact_store.list("b.txt/inside") == []


def test_exists_is_dir(artifact_store: ArtifactStore) -> None:
    _fill(artifact_store)
    assert artifact_store.exists("a") and artifact_store.is_dir("a")
    assert artifact_store.exists("a/sub/y.txt") and not artifact_store.is_dir("a/sub/y.txt")
    assert artifact_store.is_dir("") and artifact_store.exists("")
    assert not artifact_store.exists("nope") and not artifact_store.is_dir("nope")
    assert not artifact_store.exists("a/x") and not artifact_store.exists("b.txt/x")


def test_put_dir_get_dir_round_trip(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    files = {"MLmodel": b"flavor", "data/w.bin": _payload(5000), "data/n/e/s/t.txt": b"t"}
    for rel, content in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(content)
    (src / "empty_dir").mkdir()
    artifact_store.put_dir(src, "run/model")
    artifact_store.put_bytes(b"elsewhere", "run/other.txt")

    artifact_store.get_dir("run/model", tmp_path / "out")
    assert _tree(tmp_path / "out") == files
    artifact_store.get_dir("", tmp_path / "all")
    assert _tree(tmp_path / "all") == {
        **{f"run/model/{k}": v for k, v in files.items()},
        "run/other.txt": b"elsewhere",
    }
    artifact_store.get_dir("run/model/data/w.bin", tmp_path / "single")
    assert _tree(tmp_path / "single") == {"w.bin": files["data/w.bin"]}
    with pytest.raises(ArtifactNotFound):
        artifact_store.get_dir("run/nope", tmp_path / "missing")


def test_put_dir_at_root(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.txt").write_bytes(b"f")
    artifact_store.put_dir(tmp_path / "d")
    assert artifact_store.read_bytes("e/f.txt") == b"f"
    with pytest.raises(InvalidInput, match="not a local folder"):
        artifact_store.put_dir(tmp_path / "nope")


def test_get_dir_of_empty_store(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    artifact_store.get_dir("", tmp_path / "out")
    assert (tmp_path / "out").is_dir() and _tree(tmp_path / "out") == {}


def test_delete_file_and_folder(artifact_store: ArtifactStore) -> None:
    _fill(artifact_store)
    artifact_store.delete("b.txt")
    assert not artifact_store.exists("b.txt")
    artifact_store.delete("a/sub")
    assert not artifact_store.exists("a/sub/deeper/z.txt")
    assert artifact_store.list("a") == [FileInfo("a/x.txt", False, 2)]
    assert [i.path for i in artifact_store.list()] == ["a", "c"]
    with pytest.raises(ArtifactNotFound, match="'b.txt'"):
        artifact_store.delete("b.txt")
    with pytest.raises(InvalidInput):
        artifact_store.delete("")


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["nope.txt", "no/such/file", "b.txt/below-a-file"])
def test_missing_raises_artifact_not_found(
    artifact_store: ArtifactStore, tmp_path: Path, path: str
) -> None:
    artifact_store.put_bytes(b"1", "b.txt")
    with pytest.raises(ArtifactNotFound, match="no artifact"):
        artifact_store.open_read(path)
    with pytest.raises(ArtifactNotFound):
        artifact_store.read_bytes(path)
    with pytest.raises(ArtifactNotFound):
        artifact_store.iter_chunks(path)  # raised at the call, before the first chunk
    with pytest.raises(ArtifactNotFound):
        artifact_store.size(path)
    with pytest.raises(ArtifactNotFound):
        artifact_store.get_file(path, tmp_path / "dest")
    with pytest.raises(ArtifactNotFound):
        artifact_store.delete(path)
    assert not (tmp_path / "dest").exists()


def test_folder_where_file_expected(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    artifact_store.put_bytes(b"1", "d/f.txt")
    for call in (
        lambda: artifact_store.read_bytes("d"),
        lambda: artifact_store.size("d"),
        lambda: artifact_store.get_file("d", tmp_path / "x"),
    ):
        with pytest.raises(InvalidInput, match="is a folder"):
            call()
    with pytest.raises(InvalidInput, match="chunk_size"):
        artifact_store.iter_chunks("d/f.txt", chunk_size=0)


# -- roots, children, URIs ----------------------------------------------------------------


def test_child_store(artifact_store: ArtifactStore) -> None:
    run = artifact_store.child("runs/r1")
    run.put_bytes(b"m", "model/MLmodel")
    assert artifact_store.read_bytes("runs/r1/model/MLmodel") == b"m"
    assert run.list() == [FileInfo("model", True, None)]
    assert run.root == artifact_store.uri_for("runs/r1")
    assert run.child("model").read_bytes("MLmodel") == b"m"
    assert run._fs is artifact_store._fs
    with pytest.raises(InvalidInput):
        artifact_store.child("../sibling")


def test_uris(artifact_case: StoreCase, settings_env: pytest.MonkeyPatch) -> None:
    store = artifact_case.store
    store.put_bytes(b"x", "a b/c.txt")
    if artifact_case.backend == "s3":
        assert store.root == f"s3://{artifact_case.bucket}/{S3_PREFIX}"
        assert store.uri_for("a b/c.txt") == f"{store.root}/a b/c.txt"
        assert artifact_case.endpoint is not None
        settings_env.setenv("LOOPML_S3_ENDPOINT_URL", artifact_case.endpoint)
        reset_settings()
    else:
        assert store.root.startswith("file:///") and store.root.endswith("/artifacts")
        assert store.uri_for("a b/c.txt") == store.root + "/a%20b/c.txt"
    again = resolve_artifact_store(store.uri_for("a b"))
    assert again.root == store.uri_for("a b")
    assert again.read_bytes("c.txt") == b"x"
    assert resolve_artifact_store(store.root + "/").root == store.root


def test_local_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = ArtifactStore("rel/./root//")
    assert relative.root == (tmp_path / "rel" / "root").as_uri()
    assert ArtifactStore(relative.root).root == relative.root
    assert ArtifactStore(tmp_path / "rel" / "root").root == relative.root
    relative.put_bytes(b"1", "f")
    assert (tmp_path / "rel" / "root" / "f").read_bytes() == b"1"


def test_resolve_from_settings(tmp_path: Path, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("LOOPML_ARTIFACT_URI", str(tmp_path / "configured"))
    store = resolve_artifact_store()
    assert store.root == (tmp_path / "configured").as_uri()
    assert resolve_artifact_store(store) is store


@pytest.mark.parametrize(
    "uri", ["gs://bucket/x", "http://host/x", "s3://", "s3:///x", "s3://b/../x", "s3://b/a\\b"]
)
def test_bad_roots(uri: str) -> None:
    with pytest.raises(InvalidInput):
        ArtifactStore(uri, endpoint_url="http://127.0.0.1:9")


@pytest.mark.s3
def test_s3_endpoint_from_settings(
    s3_bucket: tuple[object, str], moto_endpoint: str, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("LOOPML_S3_ENDPOINT_URL", moto_endpoint)
    store = ArtifactStore(f"s3://{s3_bucket[1]}/p")
    store.put_bytes(b"via settings", "f")
    assert store.read_bytes("f") == b"via settings"


def test_missing_s3fs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingDependency, match=r"loopml\[s3\]"):
        ArtifactStore("s3://bucket/prefix", endpoint_url="http://127.0.0.1:9")


def test_pickle_round_trip(artifact_store: ArtifactStore) -> None:
    artifact_store.put_bytes(b"p", "f")
    again = pickle.loads(pickle.dumps(artifact_store))
    assert again.root == artifact_store.root and again.read_bytes("f") == b"p"


# -- backend specifics --------------------------------------------------------------------


@pytest.mark.s3
def test_s3_listing_sees_other_writers(s3_case: StoreCase) -> None:
    store = s3_case.store
    store.put_bytes(b"1", "d/a")
    assert [i.path for i in store.list("d")] == ["d/a"]
    client, bucket = s3_case.s3_client, s3_case.bucket
    client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}/d/b", Body=b"22")
    assert store.list("d") == [FileInfo("d/a", False, 1), FileInfo("d/b", False, 2)]
    client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}/d/", Body=b"")  # a folder marker
    assert [i.path for i in store.list("d")] == ["d/a", "d/b"]


@pytest.mark.s3
def test_s3_get_dir_refuses_escaping_keys(s3_case: StoreCase, tmp_path: Path) -> None:
    key = f"{S3_PREFIX}/d/../../../../evil.txt"  # S3 keys are opaque strings: '..' is allowed
    s3_case.s3_client.put_object(Bucket=s3_case.bucket, Key=key, Body=b"x")
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(StoreError, match="refusing"):
        s3_case.store.get_dir("d", out)
    assert [p.name for p in tmp_path.rglob("evil*")] == []


def test_local_temporaries_are_hidden(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "root")
    store.put_bytes(b"1", "f")
    (tmp_path / "root" / ".g.0123456789abcdef.loopml-tmp").write_bytes(b"half")
    assert store.list() == [FileInfo("f", False, 1)]
    store.get_dir("", tmp_path / "out")
    assert _tree(tmp_path / "out") == {"f": b"1"}


def test_local_write_over_folder_or_below_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "root")
    store.put_bytes(b"1", "d/f")
    with pytest.raises(InvalidInput, match="is a folder"):
        store.put_bytes(b"2", "d")
    with pytest.raises(InvalidInput, match="parent is a file"):
        store.put_bytes(b"2", "d/f/g")
    assert _tree(tmp_path / "root") == {"d/f": b"1"}


def test_stream_never_mixes_versions(artifact_case: StoreCase) -> None:
    store, old, new = artifact_case.store, _payload(12 * MiB), _payload(12 * MiB, seed=b"new")
    store.put_bytes(old, "v.bin")
    chunks = store.iter_chunks("v.bin", chunk_size=MiB)
    first = next(chunks)
    store.put_bytes(new, "v.bin")
    if artifact_case.backend == "local":
        assert first + b"".join(chunks) == old  # the open handle keeps the old file
    else:
        with pytest.raises(StoreError, match="could not read"):
            b"".join(chunks)  # S3 refuses a range of another version (If-Match)
    assert store.read_bytes("v.bin") == new


# -- concurrency --------------------------------------------------------------------------


def test_concurrent_readers_see_whole_files(artifact_store: ArtifactStore) -> None:
    versions = [_payload(200_000, seed=bytes([i])) for i in range(4)]
    artifact_store.put_bytes(versions[0], "shared.bin")
    stop = threading.Event()

    def write(i: int) -> None:
        for n in range(5):
            artifact_store.put_bytes(versions[(i + n) % 4], "shared.bin")
            artifact_store.put_bytes(versions[i], f"own/{i}-{n}.bin")

    def read() -> int:
        seen = 0
        while not stop.is_set() or seen == 0:
            assert artifact_store.read_bytes("shared.bin") in versions
            seen += 1
        return seen

    with ThreadPoolExecutor(max_workers=8) as pool:
        readers = [pool.submit(read) for _ in range(3)]
        writers = [pool.submit(write, i) for i in range(4)]
        for w in writers:
            w.result()
        stop.set()
        assert all(r.result() > 0 for r in readers)
    assert len(artifact_store.list("own")) == 20


# -- path validation ----------------------------------------------------------------------

BAD_PATHS = [
    "/x",
    "/etc/passwd",
    "//server/share/x",
    "C:\\x",
    "C:/x",
    "c:x",
    "\\\\server\\share",
    "a\\b",
    "..",
    "../x",
    "a/../../x",
    "a/b/..",
    "a/../b",
    "a\x00b",
    "a\nb",
    "tab\there",
    "del\x7f",
    "~",
    "~/x",
    "~root/x",
    "s3://bucket/x",
    "file:///etc/passwd",
    "file:x",
    "http://host/x",
    "",
    ".",
    "./",
    "a/./..",
    "n" * 256,
    "d/" + "n" * 300,
    "/".join(["segment"] * 150),
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
def test_bad_paths_rejected(artifact_case: StoreCase, tmp_path: Path, path: str) -> None:
    store = artifact_case.store
    store.put_bytes(b"keep", "keep.txt")
    before = artifact_case.snapshot()
    src = tmp_path / "src.txt"
    src.write_bytes(b"x")
    with pytest.raises(InvalidInput) as info:
        store.put_bytes(b"x", path)
    assert repr(path[:200]) in str(info.value)
    for call in (
        lambda: store.put_stream([b"x"], path),
        lambda: store.put_file(src, path),
        lambda: store.read_bytes(path),
        lambda: store.delete(path),
        lambda: store.get_file(path, tmp_path / "dest"),
    ):
        with pytest.raises(InvalidInput):
            call()
    src.unlink()
    assert artifact_case.snapshot() == before
    if path.strip("./"):  # non-empty paths are invalid even where "" means the root
        for root_ok in (
            lambda: store.list(path),
            lambda: store.exists(path),
            lambda: store.uri_for(path),
            lambda: store.child(path),
            lambda: store.put_dir(tmp_path, path),
            lambda: store.get_dir(path, tmp_path / "out"),
        ):
            with pytest.raises(InvalidInput):
                root_ok()
    assert artifact_case.snapshot() == before
    assert store.read_bytes("keep.txt") == b"keep"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, ""),
        ("", ""),
        ("./", ""),
        ("a", "a"),
        ("./a//b/", "a/b"),
        ("a/./b/.", "a/b"),
        ("a/~b/c~", "a/~b/c~"),
        ("a/.../b", "a/.../b"),
        ("..a/b..", "..a/b.."),
        ("a/b:c", "a/b:c"),
        (".hidden/x y", ".hidden/x y"),
        ("ünï/cødé", "ünï/cødé"),
    ],
)
def test_validate_artifact_path_normalises(path: str | None, expected: str) -> None:
    assert validate_artifact_path(path) == expected


def test_validate_artifact_path_empty_and_types() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        validate_artifact_path("./", allow_empty=False)
    with pytest.raises(InvalidInput, match="string"):
        validate_artifact_path(b"a")  # type: ignore[arg-type]
