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
