"""Edge cases found in review: gc racing uploads, concurrent adds on PostgreSQL, files that
change while read, restores through links, awkward names, inconsistent versions."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import loopml.data as ld
from loopml.data import SqlDatasetStore
from loopml.data._ops import add_dataset, restore_version
from loopml.data._source import LocalSource, hash_bytes
from loopml.errors import IntegrityError, InvalidInput


def _sqlite(tmp_path: Path) -> SqlDatasetStore:
    return SqlDatasetStore(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts"))


def test_gc_racing_readds_never_leaves_a_version_without_its_blobs(
    tmp_path: Path, make_tree: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _sqlite(tmp_path)
    src = make_tree(tmp_path / "src", 8)
    real_delete = SqlDatasetStore._delete_blob_file

    def slow_delete(self: SqlDatasetStore, digest: str) -> None:  # like S3: deletes take time
        time.sleep(0.005)
        real_delete(self, digest)

    monkeypatch.setattr(SqlDatasetStore, "_delete_blob_file", slow_delete)
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            store.collect_garbage(grace_seconds=0)

    collector = threading.Thread(target=collect)
    collector.start()
    recorded = []
    try:
        for i in range(15):
            v = add_dataset(store, src, f"d{i}").version
            store.delete_version(v.name, v.version)  # its blobs become garbage ...
            recorded.append(add_dataset(store, src, f"e{i}").version)  # ... and are wanted again
    finally:
        stop.set()
        collector.join()
    for v in recorded:
        restore_version(store, v.ref, tmp_path / "out" / v.ref.replace("@", "-"))


@pytest.mark.postgres
def test_concurrent_adds_on_postgres(pg_uri: str, tmp_path: Path, make_tree: Any) -> None:
    src = make_tree(tmp_path / "src", 30)
    results: list[Any] = []
    errors: list[BaseException] = []

    def add() -> None:
        store = SqlDatasetStore(pg_uri, str(tmp_path / "artifacts"))
        try:
            results.append(add_dataset(store, src, "shared").version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {v.version for v in results} == {1}
    store = SqlDatasetStore(pg_uri, str(tmp_path / "artifacts"))
    assert [v.version for v in store.list_versions("shared")] == [1]


def test_a_file_that_changes_size_while_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"id,label\n1,dog\n")
    source = LocalSource(path)
    listed = source.list()[0]
    path.write_bytes(b"id,label\n1,dog\n2,cat\n3,cow\n")  # grew after the listing
    with pytest.raises(InvalidInput, match="changed while"):
        source.read(listed.path, 0, listed.size, listed.size)


def test_restore_refuses_to_write_through_symlinked_folders(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    (tmp_path / "src" / "cfg").mkdir(parents=True)
    (tmp_path / "src" / "cfg" / "x.txt").write_bytes(b"x")
    add_dataset(store, tmp_path / "src", "links")
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "cfg").symlink_to(outside)
    with pytest.raises(IntegrityError, match="symbolic link"):
        restore_version(store, "links@1", out, force=True)
    assert list(outside.iterdir()) == []


def test_awkward_names_restore_exactly(tmp_path: Path, same_tree: Any) -> None:
    store = _sqlite(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.bin").write_bytes(b"model")
    (src / ".model.bin.loopml-part").write_bytes(b"not a temp file")
    (src / ("n" * 250)).write_bytes(b"long name")
    (src / "~$budget.xlsx").write_bytes(b"office lock file")
    (src / "notes:2024.txt").write_bytes(b"colon")
    (src / "empty").write_bytes(b"")
    (src / "ünï cödé.txt").write_bytes(b"unicode")
    add_dataset(store, src, "names")
    restore_version(store, "names", tmp_path / "out")
    assert same_tree(src, tmp_path / "out")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".lm-")]


def test_a_linked_file_keeps_the_links_name(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "3f9a0c.bin").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "train.csv").symlink_to(tmp_path / "blobs" / "3f9a0c.bin")
    add_dataset(store, tmp_path / "train.csv", "linked")
    assert [f.path for f in store.list_files("linked", 1)] == ["train.csv"]


def test_chunks_of_the_wrong_size_are_refused(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    a, b = b"AAAA", b"BBBBBBBB"
    store.put_blobs([(hash_bytes(a), a), (hash_bytes(b), b)])
    from loopml.data._source import chunked_digest

    chunks = (hash_bytes(a), hash_bytes(b))
    entry = ld.FileEntry("f.bin", 12, chunked_digest(chunks), chunks)
    with pytest.raises(InvalidInput, match="holds 4 bytes, not 8"):
        store.create_version("bad", [entry], chunk_size=8)


def test_latest_and_odd_version_strings(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    (tmp_path / "f").write_bytes(b"1")
    add_dataset(store, tmp_path / "f", "v")
    assert store.get_version("v", "latest").version == 1
    for bad in ("²", "١", "0", "-1", "1234567890"):
        with pytest.raises(InvalidInput):
            ld.get_version(f"v@{bad}", store=store)


@pytest.mark.parametrize("grace", [float("nan"), float("inf"), 1e308, -1.0, True])
def test_gc_grace_must_be_sane(tmp_path: Path, grace: Any) -> None:
    with pytest.raises(InvalidInput, match="grace"):
        _sqlite(tmp_path).collect_garbage(grace_seconds=grace)


def test_profile_must_be_plain_json(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    store.put_blobs([(hash_bytes(b"x"), b"x")])
    entry = ld.FileEntry("x", 1, hash_bytes(b"x"))
    with pytest.raises(InvalidInput, match="profile"):
        store.create_version("p", [entry], chunk_size=8, profile={"n": 2**70})


def test_reference_versions_are_not_validated_by_the_server(
    server_factory: Any, tmp_path: Path
) -> None:
    import httpx

    server = server_factory()
    csv = tmp_path / "secret.csv"
    csv.write_text("a\n1\n")
    store = ld.RestDatasetStore(server.url)
    try:
        add_dataset(store, csv, "ref", reference=True)
    finally:
        store.close()
    resp = httpx.post(
        f"{server.url}/api/v1/datasets/ref/versions/1/validate", json={"rules": {"min_rows": 1}}
    )
    assert resp.status_code == 400 and "reference" in resp.json()["message"]
    os.unlink(csv)


def test_a_pack_goes_only_when_all_its_blobs_are_garbage(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / name).write_bytes(name.encode() * 10)
    add_dataset(store, src, "p")
    pack = store.blob_location(hash_bytes(b"a" * 10))[0]
    assert pack.endswith(".pack") and store.blob_location(hash_bytes(b"c" * 10))[0] == pack
    (src / "c").unlink()
    add_dataset(store, src, "p")  # v2 shares a and b with v1
    store.delete_version("p", 1)
    assert store.collect_garbage(grace_seconds=0).deleted_blobs == 1  # c
    assert store.artifacts.exists(pack)
    restore_version(store, "p@2", tmp_path / "out")
    assert (tmp_path / "out" / "b").read_bytes() == b"b" * 10
    store.delete_version("p", 2)
    assert store.collect_garbage(grace_seconds=0).deleted_blobs == 2
    assert not store.artifacts.exists(pack)
