"""Hardening: the inference server's own predict token, request size limits on the control
plane, and secrets kept out of answers, settings and the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
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


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/experiments"), ("PUT", "/api/v1/runs/{run}/artifacts/a.bin")],
)
def test_a_stalled_body_gets_408(
    monkeypatch: pytest.MonkeyPatch, server_factory: Any, method: str, path: str
) -> None:
    import socket
    import time

    monkeypatch.setenv("LOOPML_BODY_TIMEOUT_S", "1")
    reset_settings()
    server = server_factory()
    experiment = httpx.post(f"{server.url}/api/v1/experiments", json={"name": "e"}).json()
    run = httpx.post(f"{server.url}/api/v1/runs", json=experiment).json()["run"]["info"]
    path = path.format(run=run["run_id"])
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
        conn.sendall(head.encode() + b'{"name": ')  # and then nothing more
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            part = conn.recv(4096)
            if not part:
                break
            answer += part
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"error_code":"REQUEST_TIMEOUT"' in answer
    assert time.monotonic() - started < 15
    # the server is still there for everyone else, and nothing half-written was kept
    assert httpx.get(f"{server.url}/health").status_code == 200
    listed = httpx.get(f"{server.url}/api/v1/runs/{run['run_id']}/artifacts").json()
    assert listed["files"] == []
    reset_settings()


def test_server_logs_hold_no_secret(
    loopml_process: Any, free_tcp_port: int, tmp_path: Path
) -> None:
    import os

    from loopml.server._identity import SqlIdentityStore

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(tmp_path), LOOPML_SERVING_TOKEN="serving-secret-0")
    ids = SqlIdentityStore(f"sqlite:///{tmp_path / 'loopml.db'}")
    ids.create_user("ada", admin=True, password="pass-phrase-ada")
    token = str(ids.create_token("ada", "t").secret)
    url = f"http://127.0.0.1:{free_tcp_port}"
    log = tmp_path / "server.log"
    args = ["server", "--port", str(free_tcp_port), "--log-level", "debug"]
    with loopml_process(args, log=log, env=env, ready=url + "/health"):
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/api/v1/me", headers=auth).status_code == 200
        assert httpx.get(url + "/api/v1/me", headers={"Authorization": token + "x"}).is_error
        for password in ("wrong-pass-phrase", "pass-phrase-ada"):
            httpx.post(url + "/api/v1/session", json={"username": "ada", "password": password})
        hook = {"url": "http://127.0.0.1:9/h", "events": ["alias.set"], "secret": "hook-secret-0"}
        assert httpx.post(url + "/api/v1/webhooks", json=hook, headers=auth).status_code < 300
        rule = {
            "deployment": "d",
            "metric": "drift_share",
            "op": ">",
            "threshold": 0.2,
            "notifiers": [{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "rule-0"}],
        }
        assert httpx.put(url + "/api/v1/monitoring/rules/r", json=rule, headers=auth).is_success
        bad = httpx.post(url + "/api/v1/experiments", content=b"{", headers=auth)
        assert bad.status_code == 400
    text = log.read_text()
    assert "GET /api/v1/me" in text  # the log was written: the access log is on
    secret_part = token.split("_", 2)[2]
    for secret in (secret_part, "pass-phrase-ada", "wrong-pass-phrase", "hook-secret-0", "rule-0"):
        assert secret not in text, secret
    assert "serving-secret-0" not in text


def test_the_body_timeout_spares_slow_downloads_and_covers_the_access_layer(
    monkeypatch: pytest.MonkeyPatch, server_factory: Any
) -> None:
    import socket
    import time

    from loopml.server._identity import SqlIdentityStore

    monkeypatch.setenv("LOOPML_BODY_TIMEOUT_S", "1")
    reset_settings()
    server = server_factory()
    experiment = httpx.post(f"{server.url}/api/v1/experiments", json={"name": "e"}).json()
    run = httpx.post(f"{server.url}/api/v1/runs", json=experiment).json()["run"]["info"]
    blob = bytes(range(256)) * (64 * 1024)  # 16 MiB
    url = f"{server.url}/api/v1/runs/{run['run_id']}/artifacts/big.bin"
    assert httpx.put(url, content=blob).status_code == 204
    # a download read slowly for longer than the body timeout arrives whole
    received, started = bytearray(), time.monotonic()
    with httpx.stream("GET", url, timeout=30) as response:
        for chunk in response.iter_bytes(1 << 20):
            received += chunk
            time.sleep(0.15)
    assert time.monotonic() - started > 2 and bytes(received) == blob

    # a body stalled while the access layer reads it (to find an MLflow route's model) is
    # timed out as well
    ids = SqlIdentityStore(server.app_database_uri)
    ids.create_user("eve")
    token = ids.create_token("eve", "t").secret
    head = (
        "POST /api/2.0/mlflow/registered-models/set-tag HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    time.sleep(1.1)  # the server notices its first user
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
        conn.sendall(head.encode() + b'{"name": ')
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    reset_settings()
