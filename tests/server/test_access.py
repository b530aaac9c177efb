"""Access control on a real server: every route of the schema refuses anonymous and
wrong-workspace callers; roles, object grants, tokens, lockout, audit; the SDK, the mlflow
client and the CLI with tokens; two workspaces that cannot see each other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopml
from loopml.config import get_settings
from loopml.errors import Unauthenticated
from loopml.server._auth import required_role
from loopml.server._identity import SqlIdentityStore


@pytest.fixture
def secured(server_factory: Any) -> dict[str, Any]:
    """A server whose database has an admin, and alice and bob editing team-a and team-b."""
    settings = get_settings()
    ids = SqlIdentityStore(settings.resolved_database_uri)
    ids.create_user("root", admin=True, password="root password 1")
    ids.create_workspace("team-a")
    ids.create_workspace("team-b")
    tokens = {"root": ids.create_token("root", "t").secret}
    for user, workspace in (("alice", "team-a"), ("bob", "team-b")):
        ids.create_user(user, password=f"{user} password 1")
        ids.add_grant(user, workspace, "editor")
        tokens[user] = ids.create_token(user, "t").secret
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    return {"server": server, "tokens": tokens, "ids": ids}


def _call(
    server: Any, method: str, path: str, token: str | None = None, ws: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if ws:
        headers["X-Loopml-Workspace"] = ws
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kw)


def test_every_route_refuses_anonymous_and_wrong_workspace_callers(secured: dict) -> None:
    server, tokens = secured["server"], secured["tokens"]
    schema = _call(server, "GET", "/openapi.json", tokens["root"]).json()
    checked = 0
    for path, operations in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            method = method.upper()
            if (method, path) == ("GET", "/health") or path == "/api/v1/session":
                continue  # liveness, and sign-in (tested in test_sessions.py)
            anonymous = _call(server, method, concrete, json={})
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
            if required_role(method, path) == "self":
                continue  # about the caller itself, in any workspace
            wrong = _call(server, method, concrete, tokens["bob"], ws="team-a", json={})
            assert wrong.status_code == 403, (method, path, wrong.text)
            assert "PERMISSION_DENIED" in wrong.text
            checked += 1
    assert checked > 100
    # the MLflow routes under their second prefix are covered too
    assert _call(server, "GET", "/ajax-api/2.0/mlflow/experiments/search").status_code == 401
    assert _call(server, "GET", "/health").status_code == 200


def test_roles_and_object_grants(secured: dict) -> None:
    server, tokens, ids = secured["server"], secured["tokens"], secured["ids"]
    ids.create_user("carol")
    ids.add_grant("carol", "team-a", "reader")
    ids.add_grant("carol", "team-a", "editor", object_type="model", object_name="churn")
    carol = ids.create_token("carol", "t").secret
    alice = tokens["alice"]
    made = _call(server, "POST", "/api/v1/models", alice, "team-a", json={"name": "churn"})
    assert made.status_code in (200, 201), made.text
    _call(server, "POST", "/api/v1/models", alice, "team-a", json={"name": "fraud"})
    # a reader reads, does not write, except on the model it was granted
    assert _call(server, "GET", "/api/v1/models/fraud", carol, "team-a").status_code == 200
    found = _call(server, "POST", "/api/v1/models/search", carol, "team-a", json={})
    assert found.status_code == 200
    denied = _call(server, "POST", "/api/v1/models", carol, "team-a", json={"name": "x"})
    assert denied.status_code == 403 and "needs role 'editor'" in denied.text
    tagged = _call(
        server,
        "POST",
        "/api/v1/models/churn/tags",
        carol,
        "team-a",
        json={"key": "k", "value": "v"},
    )
    assert tagged.status_code != 403, tagged.text
    other = _call(
        server,
        "POST",
        "/api/v1/models/fraud/tags",
        carol,
        "team-a",
        json={"key": "k", "value": "v"},
    )
    assert other.status_code == 403
    # deleting needs a manager; the admin is one everywhere
    assert _call(server, "DELETE", "/api/v1/models/fraud", alice, "team-a").status_code == 403
    assert _call(
        server, "DELETE", "/api/v1/models/fraud", tokens["root"], "team-a"
    ).status_code in (
        200,
        204,
    )
    # administration is for admins
    assert _call(server, "GET", "/api/v1/admin/users", alice).status_code == 403
    listed = _call(server, "GET", "/api/v1/admin/users", tokens["root"]).json()["users"]
    assert {u["name"] for u in listed} == {"root", "alice", "bob", "carol"}
    assert all("password" not in str(u) for u in listed)
    me = _call(server, "GET", "/api/v1/me", carol).json()
    assert me["roles"] == {"team-a": "reader"} and me["object_roles"][0]["object_name"] == "churn"


def test_tokens_expire_revoke_and_lock(secured: dict) -> None:
    server, tokens, ids = secured["server"], secured["tokens"], secured["ids"]
    made = _call(server, "POST", "/api/v1/me/tokens", tokens["alice"], json={"name": "laptop"})
    assert made.status_code == 201
    secret = made.json()["token"]["secret"]
    assert secret.startswith("lml_")
    assert _call(server, "POST", "/api/v1/models/search", secret, "team-a", json={}).is_success
    listed = _call(server, "GET", "/api/v1/me/tokens", secret).json()["tokens"]
    assert {t["name"] for t in listed} == {"t", "laptop"} and all(
        "secret" not in t for t in listed
    )
    token_id = made.json()["token"]["token_id"]
    assert (
        _call(server, "DELETE", f"/api/v1/me/tokens/{token_id}", tokens["bob"]).status_code == 403
    )
    assert _call(server, "DELETE", f"/api/v1/me/tokens/{token_id}", secret).status_code == 200
    assert _call(server, "GET", "/api/v1/me", secret).status_code == 401
    # a tampered secret, a disabled user
    tampered = tokens["alice"][:-2] + ("AA" if not tokens["alice"].endswith("AA") else "BB")
    assert _call(server, "GET", "/api/v1/me", tampered).status_code == 401
    ids.set_disabled("bob")
    assert _call(server, "GET", "/api/v1/me", tokens["bob"]).status_code == 401
    # an expired token
    short = ids.create_token("alice", "short", expires_in_days=1e-9).secret
    assert _call(server, "GET", "/api/v1/me", short).status_code == 401
    # five wrong passwords from one address lock that address out, even with the right one,
    # saying nothing more than a wrong password does; alice's own address still gets in
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="wrong user name or password"):
            ids.login("alice", "not her password", remote="203.0.113.9")
    with pytest.raises(Unauthenticated, match="^wrong user name or password$"):
        ids.login("alice", "alice password 1", remote="203.0.113.9")
    assert ids.login("alice", "alice password 1", remote="198.51.100.7").name == "alice"
    ids.set_password("alice", "alice password 2")  # a new password clears the lockout
    assert ids.login("alice", "alice password 2", remote="203.0.113.9").name == "alice"
    # what is stored: hashes only
    db = Path(get_settings().resolved_database_uri.removeprefix("sqlite:///")).read_bytes()
    assert tokens["alice"].split("_", 2)[2].encode() not in db
    assert b"alice password 1" not in db and b"alice password 2" not in db


def test_two_workspaces_through_the_sdk_and_the_mlflow_client(
    secured: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, tokens = secured["server"], secured["tokens"]
    monkeypatch.setenv("LOOPML_TRACKING_URI", server.url)
    monkeypatch.setenv("LOOPML_WORKSPACE", "team-a")
    monkeypatch.setenv("LOOPML_TRACKING_TOKEN", tokens["alice"])
    from loopml.config import reset_settings
    from loopml.tracking import _fluent

    reset_settings()
    _fluent.reset()
    loopml.set_experiment("secret-plans")
    with loopml.start_run() as run:
        loopml.log_metric("m", 1.0)
    # bob, in his own workspace, sees nothing of it; in alice's, he is refused
    monkeypatch.setenv("LOOPML_WORKSPACE", "team-b")
    monkeypatch.setenv("LOOPML_TRACKING_TOKEN", tokens["bob"])
    reset_settings()
    _fluent.reset()
    assert loopml.get_experiment_by_name("secret-plans") is None
    monkeypatch.setenv("LOOPML_WORKSPACE", "team-a")
    reset_settings()
    _fluent.reset()
    from loopml.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        loopml.get_run(run.info.run_id)
    # the official mlflow client with MLFLOW_TRACKING_TOKEN (the server's default workspace)
    code = (
        f"import mlflow; mlflow.set_tracking_uri('{server.url}');"
        "print(len(mlflow.search_experiments()))"
    )
    env = {**os.environ, "MLFLOW_TRACKING_TOKEN": tokens["root"]}
    ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    env["MLFLOW_TRACKING_TOKEN"] = "lml_0000000000000000_wrongwrongwrongwrongwrong"
    refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr


def test_changes_are_audited(secured: dict) -> None:
    server, tokens, ids = secured["server"], secured["tokens"], secured["ids"]
    _call(server, "POST", "/api/v1/models", tokens["alice"], "team-a", json={"name": "churn"})
    _call(server, "POST", "/api/v1/models", tokens["bob"], "team-a", json={"name": "theft"})
    _call(server, "GET", "/api/v1/models/churn", tokens["alice"], "team-a")
    events = ids.audit_log(workspace="team-a")
    assert [(e.actor, e.action, e.status) for e in events] == [
        ("bob", "POST /api/v1/models", 403),
        ("alice", "POST /api/v1/models", 200),
    ]
    assert events[1].remote == "127.0.0.1"
    # managers read their workspace's log over HTTP; editors do not
    assert _call(server, "GET", "/api/v1/audit", tokens["alice"], "team-a").status_code == 403
    ids.add_grant("alice", "team-a", "manager")
    seen = _call(server, "GET", "/api/v1/audit", tokens["alice"], "team-a").json()["events"]
    assert len(seen) >= 2 and all(e["workspace"] == "team-a" for e in seen)


def test_admin_commands_and_the_non_loopback_guard(loopml_cmd: list[str], tmp_path: Path) -> None:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*loopml_cmd, *args], input=stdin, capture_output=True, text=True, timeout=120
        )

    guarded = run("server", "--host", "0.0.0.0", "--port", "1")
    assert guarded.returncode == 1 and "without access control" in guarded.stderr
    made = run("users", "create", "ada", "--admin", "--password-stdin", stdin="a long password\n")
    assert made.returncode == 0 and "created user ada (admin)" in made.stdout
    assert run("users", "create", "svc", "--service").returncode == 0
    token = run("tokens", "create", "svc", "--name", "ci")
    assert token.returncode == 0 and token.stdout.startswith("lml_")
    assert run("workspaces", "create", "team-x").returncode == 0
    assert run("grants", "add", "svc", "editor", "-w", "team-x").returncode == 0
    listed = run("users", "list", "--json")
    assert '"editor"' in listed.stdout and "a long password" not in listed.stdout
    token_id = token.stdout.split("_")[1]
    assert run("tokens", "revoke", token_id).returncode == 0
    for args, needle in [
        (("users", "create", "ada"), "already exists"),
        (("users", "create", "bad name!"), "letters"),
        (("grants", "add", "ghost", "reader"), "does not exist"),
        (("grants", "add", "svc", "reader", "-w", "nowhere"), "does not exist"),
        (("workspaces", "create", "Bad_Name"), "lowercase"),
        (("tokens", "revoke", token_id), "already revoked"),
        (("users", "create", "weak", "--password-stdin"), "8 to 1024"),
    ]:
        proc = run(*args, stdin="short\n")
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_alias_traffic_and_grant_changes_carry_before_and_after(
    secured: dict[str, Any],
) -> None:
    from sklearn.linear_model import LogisticRegression

    server, tokens, ids = secured["server"], secured["tokens"], secured["ids"]
    import pandas as pd

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with loopml.start_run():  # straight to the database: two versions of "churn" in default
        for _ in range(2):
            loopml.log_model(
                LogisticRegression().fit(x, [0, 0, 1, 1]), "m", registered_model_name="churn"
            )
    ids.add_grant("alice", "default", "editor")
    alice = tokens["alice"]
    moved = []
    for version in ("1", "2"):
        body = {"version": version, "user_id": "someone-else", "reason": "test"}
        moved.append(
            _call(server, "PUT", "/api/v1/models/churn/aliases/production", alice, json=body)
        )
    assert [m.status_code for m in moved] == [200, 200]
    # the history names the signed-in caller, not the self-declared one
    history = loopml.Client().get_model_history("churn", alias="production", kinds=["alias"])
    assert {e.user_id for e in history} == {"alice"}
    events = ids.audit_log(object_type="model", object_name="churn")
    assert [(e.detail.get("before"), e.detail.get("after")) for e in events[:2]] == [
        ("1", "2"),
        (None, "1"),
    ]
    # traffic
    spec = {
        "name": "web",
        "variants": [{"name": "main", "model_uri": "models:/churn/1", "weight": 100}],
    }
    assert _call(server, "POST", "/api/v1/deployments", alice, json=spec).is_success
    canary = {"name": "canary", "model_uri": "models:/churn/2", "weight": 0, "role": "canary"}
    patched = _call(
        server,
        "PATCH",
        "/api/v1/deployments/web",
        alice,
        json={"variants": [*spec["variants"], canary]},
    )
    assert patched.is_success, patched.text
    shifted = _call(
        server, "POST", "/api/v1/deployments/web/traffic", alice, json={"weights": {"canary": 10}}
    )
    assert shifted.is_success, shifted.text
    (event,) = ids.audit_log(object_type="deployment", object_name="web", limit=1)
    assert event.detail["before"]["canary"]["weight"] == 0
    assert event.detail["after"]["canary"]["weight"] == 10
    # grants
    ids.add_grant("alice", "team-a", "manager")
    grant = {"user": "bob", "role": "reader"}
    assert _call(server, "POST", "/api/v1/grants", alice, "team-a", json=grant).status_code == 201
    grant["role"] = "editor"
    assert _call(server, "POST", "/api/v1/grants", alice, "team-a", json=grant).status_code == 201
    (latest,) = ids.audit_log(workspace="team-a", limit=1)
    assert latest.detail["before"] == "reader" and latest.detail["after"] == "editor"


def test_the_cli_administers_a_remote_server_with_an_admin_token(
    secured: dict[str, Any], loopml_cmd: list[str]
) -> None:
    server, tokens, ids = secured["server"], secured["tokens"], secured["ids"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_TRACKING_URI=server.url, LOOPML_TRACKING_TOKEN=tokens["root"])

    def run(*args: str, stdin: str = "", token: str | None = None) -> Any:
        proc_env = {**env, "LOOPML_TRACKING_TOKEN": token or tokens["root"]}
        return subprocess.run(
            [*loopml_cmd, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=proc_env,
        )

    assert run("workspaces", "create", "team-z").returncode == 0
    made = run("users", "create", "zed", "--password-stdin", stdin="zed password 1\n")
    assert made.returncode == 0 and "created user zed" in made.stdout
    assert run("grants", "add", "zed", "editor", "-w", "team-z").returncode == 0
    token = run("tokens", "create", "zed", "--name", "laptop")
    assert token.returncode == 0 and token.stdout.startswith("lml_")
    # what the CLI did over HTTP is in the database, and in the audit log under root's name
    assert ids.identity("zed").roles == {"team-z": "editor"}
    assert [t.name for t in ids.list_tokens("zed")] == ["laptop"]
    listed = run("grants", "list", "-w", "team-z", "--json")
    assert '"zed"' in listed.stdout and '"editor"' in listed.stdout
    everyone = run("grants", "list", "--json")
    assert '"team-a"' in everyone.stdout and '"team-z"' in everyone.stdout
    assert run("users", "password", "zed", stdin="zed password 2\n").returncode == 0
    ids.login("zed", "zed password 2")
    audit = run("audit", "--user", "root", "--json")
    assert "POST /api/v1/admin/users" in audit.stdout and "zed password" not in audit.stdout
    token_id = token.stdout.split("_")[1]
    assert run("tokens", "revoke", token_id).returncode == 0
    assert run("users", "disable", "zed").returncode == 0
    assert ids.get_user("zed").disabled
    # a non-admin's token, a wrong token: one line, non-zero exit, no traceback
    for token_used, needle in ((tokens["alice"], "an admin"), (tokens["alice"] + "x", "token")):
        proc = run("users", "list", token=token_used)
        assert proc.returncode == 1 and needle in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    bad = run("grants", "add", "ghost", "reader", "-w", "team-z")
    assert bad.returncode == 1 and "does not exist" in bad.stderr


def test_a_model_grant_counts_on_the_mlflow_registry_routes(secured: dict[str, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    server, ids = secured["server"], secured["ids"]
    import pandas as pd

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with loopml.start_run():  # straight to the database: models in the default workspace
        for name in ("churn", "churn", "fraud"):
            loopml.log_model(
                LogisticRegression().fit(x, [0, 0, 1, 1]), "m", registered_model_name=name
            )
    ids.create_user("carol")
    ids.add_grant("carol", "default", "editor", object_type="model", object_name="churn")
    carol = str(ids.create_token("carol", "t").secret)
    # the official mlflow client: query-string and body routes, on her model and on another
    code = f"""
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import RestException
mlflow.set_tracking_uri({server.url!r})
client = MlflowClient()
print("read", client.get_registered_model("churn").name)
client.set_registered_model_alias("churn", "production", "2")
print("alias", client.get_model_version_by_alias("churn", "production").version)
for call in (lambda: client.get_registered_model("fraud"),
             lambda: client.set_registered_model_alias("fraud", "production", "1"),
             lambda: client.search_registered_models()):
    try:
        call()
        print("allowed")
    except RestException as exc:
        print("refused", exc.error_code)
"""
    env = {**os.environ, "MLFLOW_TRACKING_TOKEN": carol}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:5] == [
        "read churn",
        "alias 2",
        "refused PERMISSION_DENIED",
        "refused PERMISSION_DENIED",
        "refused PERMISSION_DENIED",
    ]
    assert loopml.Client().get_model_version_by_alias("churn", "production").version == "2"
    moved = ids.audit_log(actor="carol", object_type="model", object_name="churn")
    assert [e.status for e in moved] == [200]
    assert "alias" in moved[0].action
    # a refused change names the model from the body in the audit log (mlflow's own client
    # stops at its read first)
    body = {"name": "fraud", "alias": "production", "version": "1"}
    denied = _call(server, "POST", "/api/2.0/mlflow/registered-models/alias", carol, json=body)
    assert denied.status_code == 403
    # the name that counts is the one the handler reads (the body), not a decoy in the query
    decoy = "/api/2.0/mlflow/registered-models/update?name=churn"
    sneaky = _call(server, "PATCH", decoy, carol, json={"name": "fraud", "description": "x"})
    assert sneaky.status_code == 403
    sneaky = _call(
        server,
        "DELETE",
        "/api/2.0/mlflow/registered-models/delete?name=churn",
        carol,
        json={"name": "fraud"},
    )
    assert sneaky.status_code == 403
    assert loopml.Client().get_registered_model("fraud").description == ""
    refused = ids.audit_log(actor="carol", object_type="model", object_name="fraud")
    assert [e.status for e in refused] == [403, 403, 403]


def test_a_prediction_log_is_read_only_from_its_deployments_workspace(secured: dict) -> None:
    server, tokens = secured["server"], secured["tokens"]
    spec = {"name": "prod-secret", "variants": [{"name": "m", "model_uri": "models:/x/1"}]}
    made = _call(server, "POST", "/api/v1/deployments", tokens["bob"], "team-b", json=spec)
    assert made.status_code in (200, 201), made.text
    for route in ("traffic", "quality", "drift", "report"):
        path = f"/api/v1/monitoring/deployments/prod-secret/{route}"
        theirs = _call(server, "GET", path, tokens["alice"], "team-a")
        assert theirs.status_code == 404, (route, theirs.text)
    mine = _call(
        server,
        "GET",
        "/api/v1/monitoring/deployments/prod-secret/traffic",
        tokens["bob"],
        "team-b",
    )
    assert mine.status_code == 200 and mine.json()["variants"] == {}
