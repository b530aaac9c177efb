"""Hardening: the inference server's own predict token, request size limits on the control
plane, and secrets kept out of answers, settings and the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.config import get_settings, reset_settings
from loopml.serving import ServeOptions, build_app


def test_predict_routes_need_the_serving_token(
    server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    x = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]})
    with loopml.start_run():
        loopml.log_model(LogisticRegression().fit(x, [0, 1]), "m", registered_model_name="lr")
    monkeypatch.setenv("LOOPML_SERVING_TOKEN", "s3rving-secret")
    reset_settings()
    app = build_app(ServeOptions("models:/lr/1", log_predictions=False))
    url = server_factory(app=app, lifespan="on").url
    row = {"a": 1.0, "b": 2.0}
    refused = httpx.post(f"{url}/predict", json=row)
    assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHENTICATED"
    assert "s3rving-secret" not in refused.text
    wrong = httpx.post(f"{url}/predict", json=row, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = {"Authorization": "Bearer s3rving-secret"}
    assert httpx.post(f"{url}/predict", json=row, headers=ok).status_code == 200
    body = {"instances": [row]}
    assert httpx.post(f"{url}/v1/models/lr:predict", json=body).status_code == 401
    assert httpx.post(f"{url}/v1/models/lr:predict", json=body, headers=ok).status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200  # probes stay open
    assert "s3rving-secret" not in repr(get_settings())


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LOOPML_MAX_REQUEST_MB", "1")
    reset_settings()
    yield
    reset_settings()


def test_bodies_over_the_limit_are_refused(small_limit: None, server_factory: Any) -> None:
    url = server_factory().url
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    declared = httpx.post(f"{url}/api/v1/experiments", content=big)
    assert declared.status_code == 413 and declared.json()["error_code"] == "REQUEST_TOO_LARGE"

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    streamed = httpx.post(f"{url}/api/v1/experiments", content=chunks())
    assert streamed.status_code == 413
    deep = "[" * 100_000 + "]" * 100_000
    nested = httpx.post(
        f"{url}/api/2.0/mlflow/experiments/create",
        content=deep,
        headers={"content-type": "application/json"},
    )
    assert nested.status_code == 400
    assert httpx.post(f"{url}/api/v1/experiments", json={"name": "fine"}).status_code == 200


def test_tokens_never_come_back(server_factory: Any) -> None:
    from loopml.server._identity import SqlIdentityStore

    settings = get_settings()
    ids = SqlIdentityStore(settings.resolved_database_uri)
    ids.create_user("ada", admin=True)
    secret = ids.create_token("ada", "t").secret
    url = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri).url
    headers = {"Authorization": f"Bearer {secret}"}
    answers = [
        httpx.get(f"{url}/api/v1/admin/tokens", headers=headers).text,
        httpx.get(f"{url}/api/v1/admin/users", headers=headers).text,
        httpx.get(f"{url}/api/v1/me/tokens", headers=headers).text,
        httpx.post(f"{url}/api/v1/experiments", json={"name": "x"}, headers=headers).text,
        httpx.get(f"{url}/api/v1/admin/audit", headers=headers).text,
        httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {secret}x"}).text,
    ]
    part = secret.split("_", 2)[2]
    assert all(part not in a for a in answers)
    assert "token_id" in answers[0]
