"""Data that lives on S3 (moto's server): versioned by copy, or by reference and verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopml.config import reset_settings
from loopml.data import SqlDatasetStore
from loopml.data._ops import add_dataset, restore_version
from loopml.errors import IntegrityError, NotFound


@pytest.fixture
def s3_data(
    s3_bucket: tuple[Any, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, str]:
    client, bucket = s3_bucket
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", moto_endpoint)
    reset_settings()
    for i in range(6):
        client.put_object(
            Bucket=bucket, Key=f"raw/day{i % 2}/f{i}.txt", Body=f"row {i}\n".encode() * (i + 1)
        )
    return client, bucket


def _store(tmp_path: Path) -> SqlDatasetStore:
    return SqlDatasetStore(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts"))


def test_copy_from_s3_prefix(s3_data: tuple[Any, str], tmp_path: Path) -> None:
    client, bucket = s3_data
    store = _store(tmp_path)
    result = add_dataset(store, f"s3://{bucket}/raw", "s3copy")
    assert result.created and result.version.num_files == 6 and result.uploaded_blobs == 6
    assert sorted(f.path for f in store.list_files("s3copy", 1))[0] == "day0/f0.txt"
    client.delete_object(Bucket=bucket, Key="raw/day0/f0.txt")  # the copy does not need it
    restore_version(store, "s3copy@1", tmp_path / "out")
    assert (tmp_path / "out" / "day0" / "f0.txt").read_bytes() == b"row 0\n"


def test_reference_to_s3_is_verified_on_read(s3_data: tuple[Any, str], tmp_path: Path) -> None:
    client, bucket = s3_data
    store = _store(tmp_path)
    result = add_dataset(store, f"s3://{bucket}/raw", "s3ref", reference=True)
    assert result.uploaded_blobs == 0 and result.version.source_uri == f"s3://{bucket}/raw"
    restore_version(store, "s3ref@1", tmp_path / "out")
    assert (tmp_path / "out" / "day1" / "f5.txt").read_bytes() == b"row 5\n" * 6
    client.put_object(Bucket=bucket, Key="raw/day1/f5.txt", Body=b"rewritten")
    with pytest.raises(IntegrityError, match="changed since"):
        restore_version(store, "s3ref@1", tmp_path / "out2")
    client.delete_object(Bucket=bucket, Key="raw/day1/f5.txt")
    with pytest.raises(IntegrityError, match="gone"):
        restore_version(store, "s3ref@1", tmp_path / "out3")


def test_missing_s3_prefix_is_not_found(s3_data: tuple[Any, str], tmp_path: Path) -> None:
    _client, bucket = s3_data
    with pytest.raises(NotFound):
        add_dataset(_store(tmp_path), f"s3://{bucket}/nothing-here", "x")
