"""Dataset stores on every backend: SQLite, PostgreSQL, a real server, and S3 (moto) blobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.config import reset_settings


@pytest.fixture(params=["sqlite", "postgres", "rest", "s3"])
def dstore(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The same dataset store contract on each backend."""
    from loopml.data import RestDatasetStore, SqlDatasetStore

    store: Any
    if request.param == "sqlite":
        store = SqlDatasetStore(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))
    elif request.param == "postgres":
        store = SqlDatasetStore(request.getfixturevalue("pg_uri"), str(tmp_path / "artifacts"))
    elif request.param == "rest":
        store = RestDatasetStore(request.getfixturevalue("server_factory")().url)
    else:
        _client, bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", request.getfixturevalue("moto_endpoint"))
        reset_settings()
        store = SqlDatasetStore(f"sqlite:///{tmp_path / 'store.db'}", f"s3://{bucket}/art")
    store.kind = request.param
    yield store
    store.close()


def _make_tree(root: Path, n: int = 20, *, seed: int = 0) -> Path:
    """A folder of ``n`` small files in a few subfolders (deterministic content)."""
    import random

    rng = random.Random(seed)
    for i in range(n):
        path = root / f"part{i % 3}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(100 + 37 * i))
    return root


def _same_tree(a: Path, b: Path) -> bool:
    """Both folders hold the same relative paths with the same bytes."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(
        (a / p).read_bytes() == (b / p).read_bytes() for p in files_a
    )


@pytest.fixture
def make_tree() -> Any:
    """``make_tree(root, n)``: a folder of ``n`` small deterministic files."""
    return _make_tree


@pytest.fixture
def same_tree() -> Any:
    """``same_tree(a, b)``: both folders hold the same files with the same bytes."""
    return _same_tree
