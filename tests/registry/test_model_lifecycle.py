"""The whole path the issue asks for: log_model → registered version → alias ``production`` →
``load_model("models:/x@production")`` → predict, with promote, compare, history and rollback
from the SDK, the CLI and HTTP; embedded on SQLite and PostgreSQL, and through a server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import loopml
from loopml.cli import cli
from loopml.config import reset_settings


@pytest.fixture(params=["sqlite", "postgres", "server"])
def mode(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    server_factory: Callable[..., Any],
) -> dict[str, Any]:
    """Where the SDK and CLI point: the embedded SQLite, a PostgreSQL database, or a server."""
    uri = None
    if request.param == "postgres":
        uri = request.getfixturevalue("pg_uri")
    elif request.param == "server":
        uri = server_factory().url
    if uri is not None:
        monkeypatch.setenv("LOOPML_TRACKING_URI", uri)
        reset_settings()
    return {"kind": request.param, "uri": uri}


def _frame(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(n_samples=300, n_features=6, random_state=seed)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]), y


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_log_register_promote_load_rollback(mode: dict[str, Any]) -> None:
    x, y = _frame(0)
    models = []
    for depth in (2, 6):
        model = RandomForestClassifier(n_estimators=8, max_depth=depth, random_state=0).fit(x, y)
        with loopml.start_run():
            loopml.log_param("max_depth", depth)
            info = loopml.log_model(
                model, "model", registered_model_name="churn", input_example=x.iloc[:5]
            )
        models.append((model, info))
    assert [i.registered_model_version for _, i in models] == ["1", "2"]

    # Promote version 1 from the CLI, then version 2; compare them.
    _cli("models", "promote", "churn", "1", "--yes", "--reason", "baseline")
    _cli("models", "promote", "churn", "2", "--yes", "--reason", "deeper trees")
    client = loopml.Client()
    diff = client.compare_versions("churn", 1, 2)
    assert diff.params["max_depth"] == ("2", "6")
    assert "params.max_depth" in diff.differences

    if mode["kind"] == "server":  # the same alias over plain HTTP
        resp = httpx.get(f"{mode['uri']}/api/v1/models/churn/aliases/production")
        assert resp.json()["model_version"]["version"] == "2"

    served = loopml.load_model("models:/churn@production")
    assert served.digest == models[1][1].digest
    np.testing.assert_array_equal(served.predict(x), models[1][0].predict(x))

    # Roll back: production serves version 1 again, and the history says why.
    _cli("models", "rollback", "churn", "--yes", "--reason", "latency regression")
    served = loopml.load_model("models:/churn@production")
    np.testing.assert_array_equal(served.predict(x), models[0][0].predict(x))
    moves = client.get_model_history("churn", alias="production")
    assert [(e.kind, e.to_version, e.reason) for e in moves] == [
        ("rollback", "1", "latency regression"),
        ("alias", "2", "deeper trees"),
        ("alias", "1", "baseline"),
    ]
    assert client.get_alias_at("churn", "production", moves[1].timestamp).version == "2"
