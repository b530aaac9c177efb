"""Schemathesis fuzzes every operation of a real server's OpenAPI schema on a fixed budget: no
5xx, no hang, every error the project's JSON ``{"error_code", "message"}``, and responses of
the content type and shape the schema declares.

Which checks, and why:

- ``not_a_server_error``: the point of the exercise; a 5xx is a bug.
- ``errors_are_json`` (below): every 4xx is ``{"error_code": str, "message": str}``.
- ``content_type_conformance`` and ``response_schema_conformance``: where the schema declares a
  response (2xx bodies, and the HTML report), the response has that type and shape.
- ``request-timeout``: a request that takes longer than that fails the test, so a hang does.

Not run: ``status_code_conformance``, because FastAPI declares its own ``422`` validation body
for every operation while loopml answers bad input with ``400`` and its own error body (checked
by ``errors_are_json`` instead), and no 4xx is declared in the schema; ``positive_data_acceptance``
and ``negative_data_rejection``, because a schema-valid body may still name an experiment or
model that does not exist (404) and several constraints (name syntax, ranges) are checked by the
library rather than written in the schema; ``unsupported_method`` / ``allow_header_conformance``
(405 ``Allow`` headers); and the stateful phase (the schema declares no links).

Budget: ``MAX_EXAMPLES`` generated cases per operation (schema-valid and schema-violating), on
top of schemathesis' coverage phase (boundary values, missing and mistyped fields, unexpected
methods): about 8,300 requests over the ~200 operations, about 70 s on 2 cores. Generation is
derandomised with a fixed seed, so every run sends the same requests.

Half the generated cases name seeded objects (an experiment, a run, a model version, a
deployment, an A/B test) so they get past 404 into the handlers. The MLflow-compatible routes
read their fields by hand; ``declare_fields`` writes those into the schema, so they are fuzzed
as well.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, HookContext, Response

from loopml.config import reset_settings
from loopml.server import create_app
from loopml.server._identity import SqlIdentityStore

MAX_EXAMPLES = 20
SEED = 20261101


@schemathesis.check
def errors_are_json(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is the project's one error body: JSON ``{"error_code", "message"}``."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"error_code", "message"}, body
        assert isinstance(body["error_code"], str) and isinstance(body["message"], str), body
    return None


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, server_handle_class: Any
) -> Iterator[dict[str, Any]]:
    """A real server over a fresh SQLite database, an admin's token, and a little data.

    The admin exists so that fuzzing ``POST /api/v1/admin/users`` (which turns access control
    on) does not shut the rest of the run out; every request carries the admin's token.
    """
    root = tmp_path_factory.mktemp("fuzz")
    db, art = f"sqlite:///{root / 'loopml.db'}", str(root / "artifacts")
    with pytest.MonkeyPatch.context() as mp:  # module scope: clean_environ has not run yet
        for name in list(os.environ):
            if name.startswith(("LOOPML_", "MLFLOW_")):
                mp.delenv(name)
        mp.setenv("LOOPML_HOME", str(root / "home"))
        reset_settings()
        app = create_app(database_uri=db, artifact_uri=art)
        ids = SqlIdentityStore(db)
        ids.create_user("fuzz-admin", admin=True, password="fuzz admin password")
        token = ids.create_token("fuzz-admin", "fuzz").secret
    reset_settings()
    server = server_handle_class(app).start()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            seeds = _seed(http)
        yield {"url": server.url, "headers": headers, "seeds": seeds}
    finally:
        server.stop()


def _seed(http: httpx.Client) -> dict[str, str]:
    """An experiment, a run with data and a file, a model with a version and an alias, a
    deployment and an A/B test; returns their ids and names."""

    def ok(resp: httpx.Response) -> Any:
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    eid = ok(http.post("/api/v1/experiments", json={"name": "fuzz"}))["experiment_id"]
    run = ok(http.post("/api/v1/runs", json={"experiment_id": eid}))["run"]["info"]["run_id"]
    batch = {
        "run_id": run,
        "metrics": {"keys": ["m"], "values": [0.5], "timestamps": [1], "steps": [0]},
        "params": [{"key": "p", "value": "1"}],
        "tags": [{"key": "t", "value": "x"}],
    }
    ok(http.post("/api/v1/runs/batches", json={"batches": [batch]}))
    ok(http.put(f"/api/v1/runs/{run}/artifacts/a.txt", content=b"fuzz"))
    ok(http.post("/api/v1/models", json={"name": "fuzzmodel"}))
    version = ok(http.post("/api/v1/models/fuzzmodel/versions", json={"source": "registry:"}))
    ok(http.put("/api/v1/models/fuzzmodel/aliases/champion", json={"version": "1"}))
    variant = {"name": "main", "model_uri": "models:/fuzzmodel/1"}
    ok(http.post("/api/v1/deployments", json={"name": "fuzzdep", "variants": [variant]}))
    abtest = {"name": "fuzzab", "variants": {"control": 1, "green": 1}, "metrics": ["clicked"]}
    ok(http.post("/api/v1/abtests", json=abtest))
    ok(http.post("/api/v1/abtests/fuzzab/exposures", json={"exposures": [{"unit_id": "u-1"}]}))
    return {
        "experiment_id": eid,
        "run_id": run,
        "model": "fuzzmodel",
        "version": str(version["model_version"]["version"]),
        "alias": "champion",
        "deployment": "fuzzdep",
        "abtest": "fuzzab",
    }


def _known(path: str, seeds: dict[str, str]) -> dict[str, Any]:
    """The seeded value of each field (path, query or body) that names one on this route."""
    known: dict[str, Any] = {"experiment_id": seeds["experiment_id"]}
    known["experiment_ids"] = [seeds["experiment_id"]]
    if "pipeline" not in path:
        known["run_id"] = seeds["run_id"]
    if path.startswith("/api/v1/runs/"):
        known["path"] = "a.txt"
    if "/models/" in path or "registered-models" in path or "model-versions" in path:
        known.update(name=seeds["model"], version=seeds["version"], alias=seeds["alias"])
    if path.startswith("/api/v1/abtests/"):
        known["name"] = seeds["abtest"]
    if "/deployments" in path:
        known.update(name=seeds["deployment"], deployment=seeds["deployment"])
    return known


def _with_seeds(seeds: dict[str, str], context: HookContext, values: Any) -> Any:
    """Half the fuzzed cases name the seeded objects, to get past 404 into the handlers; not on
    routes that delete or rename, which would take them from under later operations."""
    op = context.operation
    if not isinstance(values, dict) or not values or op is None:
        return st.just(values)
    if op.method.upper() == "DELETE" or op.path.endswith(("/delete", "/purge", "/rename")):
        return st.just(values)
    known = {k: v for k, v in _known(op.path, seeds).items() if k in values}
    if not known:
        return st.just(values)
    return st.sampled_from([values, {**values, **known}])


@pytest.fixture(scope="module")
def api_schema(fuzz_target: dict[str, Any]) -> Any:
    """The server's schema, loaded from ``/openapi.json``, with the budget and checks above."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": fuzz_target["headers"],
            "request-timeout": 30,
            "generation": {
                "mode": "all",  # schema-valid and schema-violating input
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "errors_are_json": {"enabled": True},
            },
        }
    )
    schema = schemathesis.openapi.from_url(
        fuzz_target["url"] + "/openapi.json", config=config, headers=fuzz_target["headers"]
    )
    seeded = functools.partial(_with_seeds, fuzz_target["seeds"])
    for part in ("path_parameters", "query", "body"):
        schema.hook(f"flatmap_{part}")(seeded)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api(case: Case) -> None:
    case.call_and_validate()
