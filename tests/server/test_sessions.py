"""Web sign-in on a real server: the session cookie authenticates reads, changes need the CSRF
token, sign-out ends the session, a session is no bearer token (nor a token a cookie), and
sign-in attempts are rate-limited and audited."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loopml.config import get_settings
from loopml.server._identity import SqlIdentityStore


@pytest.fixture
def site(server_factory: Any) -> dict[str, Any]:
    settings = get_settings()
    ids = SqlIdentityStore(settings.resolved_database_uri)
    ids.create_user("ada", admin=True, password="ada password 1")
    ids.create_workspace("team-a")
    ids.create_user("bob", password="bob password 1")
    ids.add_grant("bob", "team-a", "reader")
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    return {"server": server, "ids": ids}


@pytest.fixture
def sign_in() -> Any:
    """Signs in with a fresh cookie jar; the clients are closed after the test."""
    clients: list[httpx.Client] = []

    def make(server: Any, user: str, password: str) -> tuple[httpx.Client, dict[str, Any]]:
        client = httpx.Client(base_url=server.url, timeout=30)
        clients.append(client)
        answer = client.post("/api/v1/session", json={"username": user, "password": password})
        assert answer.status_code == 200, answer.text
        return client, answer.json()

    yield make
    for client in clients:
        client.close()


def test_cookie_session_reads_and_changes_with_csrf(site: dict, sign_in: Any) -> None:
    server = site["server"]
    anonymous = httpx.get(server.url + "/api/v1/session").json()
    assert anonymous == {"auth_enabled": True, "user": None}
    assert httpx.get(server.url + "/api/v1/experiments").status_code == 401

    client, me = sign_in(server, "ada", "ada password 1")
    cookie = client.cookies.jar
    set_cookie = next(c for c in cookie if c.name == "loopml_session")
    assert set_cookie.has_nonstandard_attr("HttpOnly")
    assert me["user"] == "ada" and me["admin"] is True and len(me["csrf_token"]) == 64
    assert client.get("/api/v1/session").json()["csrf_token"] == me["csrf_token"]
    assert client.get("/api/v1/experiments").status_code == 200

    # a change with the cookie alone (what a forged cross-site form could send) is refused
    refused = client.post("/api/v1/experiments", json={"name": "e1"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
    wrong = client.post(
        "/api/v1/experiments", json={"name": "e1"}, headers={"X-CSRF-Token": "0" * 64}
    )
    assert wrong.status_code == 403
    made = client.post(
        "/api/v1/experiments", json={"name": "e1"}, headers={"X-CSRF-Token": me["csrf_token"]}
    )
    assert made.status_code == 200, made.text
    events = site["ids"].audit_log(actor="ada")
    assert [e.status for e in events if e.action == "POST /api/v1/experiments"] == [200, 403, 403]

    # sign-out ends the session on the server, not only in this browser
    secret = set_cookie.value
    assert client.delete("/api/v1/session").status_code == 200
    again = httpx.get(server.url + "/api/v1/experiments", cookies={"loopml_session": secret})
    assert again.status_code == 401
    assert "sign in again" in again.json()["message"]


def test_sessions_and_tokens_do_not_mix(site: dict, sign_in: Any) -> None:
    server, ids = site["server"], site["ids"]
    client, _ = sign_in(server, "ada", "ada password 1")
    session = next(c.value for c in client.cookies.jar if c.name == "loopml_session")
    as_bearer = httpx.get(
        server.url + "/api/v1/experiments", headers={"Authorization": f"Bearer {session}"}
    )
    assert as_bearer.status_code == 401
    token = ids.create_token("ada", "t").secret
    as_cookie = httpx.get(server.url + "/api/v1/experiments", cookies={"loopml_session": token})
    assert as_cookie.status_code == 401
    # sessions do not show among API tokens
    assert [t.name for t in ids.list_tokens("ada")] == ["t"]


def test_session_roles_follow_grants(site: dict, sign_in: Any) -> None:
    server = site["server"]
    client, me = sign_in(server, "bob", "bob password 1")
    assert me["roles"] == {"team-a": "reader"} and me["admin"] is False
    headers = {"X-Loopml-Workspace": "team-a", "X-CSRF-Token": me["csrf_token"]}
    assert client.get("/api/v1/experiments", headers=headers).status_code == 200
    denied = client.post("/api/v1/experiments", json={"name": "x"}, headers=headers)
    assert denied.status_code == 403 and "editor" in denied.json()["message"]


def test_bad_sign_in_is_refused_counted_and_audited(site: dict) -> None:
    server, ids = site["server"], site["ids"]
    url = server.url + "/api/v1/session"
    for body, field in (
        ({"username": "ada"}, "password"),
        ({"password": "x"}, "username"),
        ({"username": "ada", "password": 3}, "password"),
        ({"username": "ada", "password": "x", "otp": 1}, "otp"),
    ):
        answer = httpx.post(url, json=body)
        assert answer.status_code == 400 and field in answer.json()["message"]
    assert httpx.post(url, content=b"[]").status_code in (400, 422)
    wrong = httpx.post(url, json={"username": "ada", "password": "nope"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    unknown = httpx.post(url, json={"username": "nobody", "password": "nope"})
    assert unknown.json()["message"] == wrong.json()["message"]
    failed = [e for e in ids.audit_log() if e.action == "POST /api/v1/session"]
    assert [e.status for e in failed] == [401, 401]
    assert "nope" not in str([e.to_dict() for e in failed])  # no password in the log


def test_lockout_then_rate_limit(site: dict) -> None:
    url = site["server"].url + "/api/v1/session"
    statuses = [
        httpx.post(url, json={"username": "bob", "password": "wrong"}).status_code
        for _ in range(5)
    ]
    assert statuses == [401] * 5
    locked = httpx.post(url, json={"username": "bob", "password": "bob password 1"})
    assert locked.status_code == 401  # locked out from this address, told nothing more
    assert locked.json()["message"] == "wrong user name or password"
    statuses = [
        httpx.post(url, json={"username": "ada", "password": "wrong"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401] * 4  # the tenth attempt from this address in a minute
    limited = httpx.post(url, json={"username": "ada", "password": "ada password 1"})
    assert limited.status_code == 429
    assert limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "try again" in limited.json()["message"]


def test_open_server_has_nothing_to_sign_in_to(server_factory: Any) -> None:
    server = server_factory()
    assert httpx.get(server.url + "/api/v1/session").json()["auth_enabled"] is False
    answer = httpx.post(server.url + "/api/v1/session", json={"username": "a", "password": "b"})
    assert answer.status_code == 409 and "access control is off" in answer.json()["message"]


def test_odd_headers_and_a_new_password(site: dict, sign_in: Any) -> None:
    server, ids = site["server"], site["ids"]
    client, me = sign_in(server, "bob", "bob password 1")
    # a CSRF header that is not ASCII is a refusal, not a server error
    odd = client.post(
        "/api/v1/experiments", json={"name": "x"}, headers=[("X-CSRF-Token", "\xe9".encode())]
    )
    assert odd.status_code == 403
    # two workspace headers: which would count? neither
    twice = client.get(
        "/api/v1/experiments",
        headers=[("X-Loopml-Workspace", "team-a"), ("X-Loopml-Workspace", "default")],
    )
    assert twice.status_code == 400 and "more than once" in twice.json()["message"]
    token = ids.create_token("ada", "t").secret
    doubled = httpx.get(
        server.url + "/api/v1/me",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")],
    )
    assert doubled.status_code == 400
    # a new password ends the user's web sessions
    assert client.get("/api/v1/experiments", headers={"X-Loopml-Workspace": "team-a"}).is_success
    ids.set_password("bob", "bob password 2")
    ended = client.get("/api/v1/experiments", headers={"X-Loopml-Workspace": "team-a"})
    assert ended.status_code == 401
