"""Runs whose artifacts live on S3 (moto's server), reached through a loopml server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import loopml
from loopml.config import reset_settings


@pytest.mark.s3
def test_artifacts_stream_through_the_server_to_s3(
    s3_bucket: tuple[Any, str],
    moto_endpoint: str,
    server_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client, bucket = s3_bucket
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", moto_endpoint)
    reset_settings()
    server = server_factory(artifact_uri=f"s3://{bucket}/loopml")
    loopml.set_tracking_uri(server.url)

    payload = bytes(range(256)) * 40_000  # ~10 MB: a multipart upload
    src = tmp_path / "weights.bin"
    src.write_bytes(payload)
    with loopml.start_run() as run:
        loopml.log_artifact(src, "model")
        loopml.log_dict({"ok": True}, "meta.json")
    assert run.info.artifact_uri.startswith(f"s3://{bucket}/loopml/")

    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    prefix = run.info.artifact_uri.split(f"s3://{bucket}/", 1)[1]
    assert {f"{prefix}/model/weights.bin", f"{prefix}/meta.json"} <= keys

    files = loopml.Client().list_artifacts(run.info.run_id, "model")
    assert [(f.path, f.file_size) for f in files] == [("model/weights.bin", len(payload))]
    out = Path(loopml.Client().download_artifacts(run.info.run_id, "", tmp_path / "out"))
    assert (out / "model" / "weights.bin").read_bytes() == payload
    assert (out / "meta.json").read_text().strip().startswith("{")
