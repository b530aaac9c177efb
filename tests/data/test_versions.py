"""Dataset versions on every backend: add, dedupe, restore exactly, aliases, delete, gc,
reference mode, and corrupt or missing blobs detected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest

import loopml.data as ld
from loopml.data import SqlDatasetStore
from loopml.data._ops import add_dataset, restore_version
from loopml.data._source import chunked_digest, hash_bytes
from loopml.errors import IntegrityError, InvalidInput, NotFound


def _sql_view(store: Any, tmp_path: Path) -> SqlDatasetStore:
    """The SQL store behind ``store`` (the server's own one for the REST backend)."""
    if store.kind == "rest":
        root = tmp_path / "server0"
        return SqlDatasetStore(f"sqlite:///{root / 'loopml.db'}", str(root / "artifacts"))
    return cast(SqlDatasetStore, store)


def test_add_restore_and_no_change_readd(
    dstore: Any, tmp_path: Path, make_tree: Any, same_tree: Any
) -> None:
    src = make_tree(tmp_path / "src", 30)
    first = add_dataset(dstore, src, "imgs")
    assert first.created and first.version.version == 1
    assert first.version.num_files == 30 and first.uploaded_blobs == 30
    assert first.version.size_bytes == sum(p.stat().st_size for p in src.rglob("*.bin"))

    again = add_dataset(dstore, src, "imgs")
    assert not again.created and again.version.version == 1 and again.uploaded_blobs == 0

    out = tmp_path / "out"
    version, target = restore_version(dstore, "imgs@1", out)
    assert version.version == 1 and same_tree(src, target)


def test_changed_content_uploads_only_new_blobs(
    dstore: Any, tmp_path: Path, make_tree: Any, same_tree: Any
) -> None:
    src = make_tree(tmp_path / "src", 20)
    add_dataset(dstore, src, "d")
    (src / "part0" / "f000.bin").write_bytes(b"changed")
    (src / "new.txt").write_bytes(b"new file")
    (src / "part1" / "f001.bin").unlink()
    second = add_dataset(dstore, src, "d")
    assert second.created and second.version.version == 2 and second.uploaded_blobs == 2
    diff = ld.diff("d@1", "d@2", store=dstore)
    assert diff["files"]["added"] == ["new.txt"]
    assert diff["files"]["removed"] == ["part1/f001.bin"]
    assert diff["files"]["changed"] == ["part0/f000.bin"]
    assert diff["files"]["unchanged"] == 18
    # the old version still restores exactly as it was
    old = make_tree(tmp_path / "orig", 20)
    restore_version(dstore, "d@1", tmp_path / "o1")
    assert same_tree(old, tmp_path / "o1")
    restore_version(dstore, "d@latest", tmp_path / "o2")
    assert same_tree(src, tmp_path / "o2")


def test_large_files_are_chunked_and_deduplicated(dstore: Any, tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    data = rng.randbytes(10_000)
    (tmp_path / "src").mkdir()
    big = tmp_path / "src" / "big.bin"
    big.write_bytes(data)
    first = add_dataset(dstore, big, "big", chunk_size=1024)
    assert first.uploaded_blobs == 10  # 9 full chunks and a tail
    files = dstore.list_files("big", 1)
    assert len(files) == 1 and len(files[0].chunks) == 10
    assert files[0].digest == chunked_digest(files[0].chunks)
    assert files[0].chunks[0] == hash_bytes(data[:1024])
    # change one byte in the 5th chunk: only that chunk is uploaded again
    changed = bytearray(data)
    changed[4500] ^= 0xFF
    big.write_bytes(bytes(changed))
    second = add_dataset(dstore, big, "big", chunk_size=1024)
    assert second.created and second.uploaded_blobs == 1 and second.uploaded_bytes == 1024
    restore_version(dstore, "big@1", tmp_path / "o1")
    assert (tmp_path / "o1" / "big.bin").read_bytes() == data
    restore_version(dstore, "big@2", tmp_path / "o2")
    assert (tmp_path / "o2" / "big.bin").read_bytes() == bytes(changed)


def test_identical_files_share_one_blob(dstore: Any, tmp_path: Path, same_tree: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / name).write_bytes(b"same bytes")
    result = add_dataset(dstore, src, "dups")
    assert result.uploaded_blobs == 1 and result.version.num_files == 3
    restore_version(dstore, "dups", tmp_path / "out")
    assert same_tree(src, tmp_path / "out")


def test_aliases_tags_and_descriptions(dstore: Any, tmp_path: Path, make_tree: Any) -> None:
    src = make_tree(tmp_path / "src", 3)
    v1 = add_dataset(dstore, src, "ds", aliases=["train-latest"], tags={"team": "risk"}).version
    assert v1.aliases == ("train-latest",) and v1.tags == {"team": "risk"}
    (src / "extra").write_bytes(b"x")
    add_dataset(dstore, src, "ds", description="second")
    assert dstore.get_version("ds", "train-latest").version == 1
    dstore.set_alias("ds", "train-latest", 2)
    assert dstore.get_version("ds", "train-latest").version == 2
    assert dstore.get_dataset("ds").aliases == {"train-latest": 2}
    assert dstore.get_version("ds").description == "second"
    updated = dstore.update_version("ds", 1, description="first", tags={"team": None, "k": "v"})
    assert updated.description == "first" and updated.tags == {"k": "v"}
    dstore.delete_alias("ds", "train-latest")
    with pytest.raises(NotFound):
        dstore.get_version("ds", "train-latest")
    with pytest.raises(InvalidInput):
        dstore.set_alias("ds", "3", 1)  # an alias never looks like a version number
    with pytest.raises(InvalidInput):
        dstore.set_alias("ds", "latest", 1)
    with pytest.raises(NotFound):
        dstore.set_alias("ds", "x", 9)
    assert [v.version for v in dstore.list_versions("ds")] == [2, 1]
    assert [d.name for d in dstore.list_datasets()] == ["ds"]


def test_delete_version_keeps_shared_blobs_and_gc_removes_the_rest(
    dstore: Any, tmp_path: Path, make_tree: Any, same_tree: Any
) -> None:
    src = make_tree(tmp_path / "src", 5)
    add_dataset(dstore, src, "g")
    (src / "only-in-v2").write_bytes(b"v2 only")
    add_dataset(dstore, src, "g")
    view = _sql_view(dstore, tmp_path)
    v2_only = hash_bytes(b"v2 only")
    where = view.blob_location(v2_only)[0]
    dstore.delete_version("g", 2)
    assert [v.version for v in dstore.list_versions("g")] == [1]
    # nothing is collected inside the grace period
    assert dstore.collect_garbage(grace_seconds=3600).deleted_blobs == 0
    dry = dstore.collect_garbage(grace_seconds=0, dry_run=True)
    assert dry.deleted_blobs == 1 and dry.dry_run and view.artifacts.exists(where)
    report = dstore.collect_garbage(grace_seconds=0)
    assert report.deleted_blobs == 1 and report.deleted_bytes == len(b"v2 only")
    assert report.kept_blobs == 5
    assert not view.artifacts.exists(where)
    with pytest.raises(NotFound):
        view.blob_location(v2_only)
    restore_version(dstore, "g@1", tmp_path / "out")  # v1's shared blobs survived
    assert same_tree(make_tree(tmp_path / "again", 5), tmp_path / "out")
    # a new version number is never reused
    (src / "only-in-v2").unlink()
    (src / "v3").write_bytes(b"3")
    assert add_dataset(dstore, src, "g").version.version == 3


def test_corrupt_and_missing_blobs_are_detected(dstore: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"alpha")
    (src / "b.txt").write_bytes(b"beta")
    add_dataset(dstore, src, "c")
    view = _sql_view(dstore, tmp_path)
    path, offset, size = view.blob_location(hash_bytes(b"alpha"))
    packed = bytearray(view.artifacts.read_bytes(path))
    packed[offset] ^= 0xFF  # one flipped bit in storage
    view.artifacts.put_bytes(bytes(packed), path)
    with pytest.raises(IntegrityError, match="corrupt"):
        restore_version(dstore, "c@1", tmp_path / "o1")
    assert not (tmp_path / "o1" / "a.txt").exists()  # nothing half-written under its name
    view.artifacts.delete(view.blob_location(hash_bytes(b"beta"))[0])
    with pytest.raises(IntegrityError, match="missing"):
        restore_version(dstore, "c@1", tmp_path / "o2")


def test_version_needs_its_blobs_stored(dstore: Any) -> None:
    entry = ld.FileEntry("x.bin", 3, hash_bytes(b"abc"))
    with pytest.raises(IntegrityError, match="not stored"):
        dstore.create_version("nb", [entry], chunk_size=1024)
    with pytest.raises(NotFound):
        dstore.get_dataset("nb")  # nothing half-made
    dstore.put_blobs([(entry.digest, b"abc")])
    version, created = dstore.create_version("nb", [entry], chunk_size=1024)
    assert created and version.num_files == 1


def test_blob_that_does_not_match_its_digest_is_refused(dstore: Any) -> None:
    with pytest.raises(IntegrityError):
        dstore.put_blobs([(hash_bytes(b"abc"), b"abd")])
    assert dstore.missing_blobs([hash_bytes(b"abc")]) == {hash_bytes(b"abc")}


def test_reference_mode_records_without_copying_and_verifies(
    dstore: Any, tmp_path: Path, make_tree: Any, same_tree: Any
) -> None:
    src = make_tree(tmp_path / "src", 4)
    result = add_dataset(dstore, src, "ref", reference=True)
    assert result.uploaded_blobs == 0 and result.version.mode == "reference"
    assert result.version.source_uri == str(src.resolve())
    assert dstore.missing_blobs([f.digest for f in dstore.list_files("ref", 1)])  # not copied
    restore_version(dstore, "ref@1", tmp_path / "out")
    assert same_tree(src, tmp_path / "out")
    (src / "part0" / "f000.bin").write_bytes(b"edited in place")
    with pytest.raises(IntegrityError, match="changed since"):
        restore_version(dstore, "ref@1", tmp_path / "out2")
    (src / "part0" / "f000.bin").unlink()
    with pytest.raises(IntegrityError, match="gone"):
        restore_version(dstore, "ref@1", tmp_path / "out3")


def test_dataframes_are_versioned_with_a_profile(dstore: Any) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "c": ["a", "b", "a", "a"]})
    v1 = add_dataset(dstore, df, "frame").version
    assert v1.num_rows == 4 and v1.profile is not None
    assert [c["name"] for c in v1.schema or []] == ["x", "c"]
    assert not add_dataset(dstore, df.copy(), "frame").created  # same content, same version
    loaded = ld.load("frame@1", store=dstore)
    pd.testing.assert_frame_equal(loaded, df, check_dtype=False)
    df2 = pd.DataFrame({"x": [10.0, 20.0, 30.0], "c": ["z", "z", "z"], "n": [1, 2, 3]})
    add_dataset(dstore, df2, "frame")
    diff = ld.diff("frame@1", "frame@2", store=dstore)
    assert diff["rows"] == {"a": 4, "b": 3, "delta": -1}
    assert diff["schema"]["added"] == ["n"]
    assert set(diff["drift"]["drifted_columns"]) == {"x", "c"}


def test_bad_input_is_refused_clearly(dstore: Any, tmp_path: Path, make_tree: Any) -> None:
    with pytest.raises(InvalidInput, match="dataset name"):
        add_dataset(dstore, tmp_path, "bad name!")
    with pytest.raises(NotFound):
        add_dataset(dstore, tmp_path / "absent", "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no files"):
        add_dataset(dstore, tmp_path / "empty", "x")
    with pytest.raises(InvalidInput):
        add_dataset(dstore, 42, "x")
    with pytest.raises(NotFound):
        dstore.get_version("nope", 1)
    src = make_tree(tmp_path / "src", 2)
    add_dataset(dstore, src, "x")
    with pytest.raises(NotFound):
        restore_version(dstore, "x@7", tmp_path / "o")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        restore_version(dstore, "x@1", tmp_path / "full")
    assert (tmp_path / "full" / "keep").read_text() == "mine"
    restore_version(dstore, "x@1", tmp_path / "full", force=True)
    assert (tmp_path / "full" / "keep").read_text() == "mine"
    with pytest.raises(InvalidInput):
        dstore.missing_blobs(["not-a-digest"])
    with pytest.raises(InvalidInput):
        dstore.create_version("x", [ld.FileEntry("../evil", 1, hash_bytes(b"a"))], chunk_size=1024)
