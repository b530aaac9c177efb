"""The seed documents' model flow through the official ``mlflow`` client against a real
``loopml server``: ``sklearn.log_model(..., registered_model_name=)``, ``search_model_versions``,
``transition_model_version_stage``, aliases, ``pyfunc.load_model("models:/...")`` and predict —
and the same models seen and loaded by loopml, and loopml's models loaded by the client."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import loopml

mlflow = pytest.importorskip("mlflow")
with warnings.catch_warnings():  # importing mlflow.pyfunc warns about optional extras
    warnings.simplefilter("ignore")
    import mlflow.pyfunc  # noqa: E402
    import mlflow.sklearn  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

TRUSTED = ["sklearn.tree._tree.Tree"]  # MLflow 3.17's skops format asks for it
# mlflow's own input-example code trips a pandas deprecation; it is the client's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Operation with range is deprecated")


@pytest.fixture
def url(server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real loopml server that both the mlflow client and loopml's SDK point at."""
    server = server_factory()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(server.url)
    loopml.set_tracking_uri(server.url)
    yield server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(n_samples=200, n_features=5, random_state=1)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(5)]), y


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MLflow deprecates stages, with a warning
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_client_logs_registers_promotes_and_loads(url: str) -> None:
    x, y = _data()
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    mlflow.set_experiment("customer-churn")
    with mlflow.start_run(run_name="rf") as run:
        mlflow.log_params({"n_estimators": 10, "max_depth": 4})
        mlflow.log_metric("accuracy", float(model.score(x, y)))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="customer-churn-rf",
            input_example=x.iloc[:3],
            skops_trusted_types=TRUSTED,
        )
    assert str(info.registered_model_version) == "1"

    client = MlflowClient()
    versions = client.search_model_versions("name='customer-churn-rf'")
    assert [(v.version, v.status) for v in versions] == [("1", "READY")]
    client.transition_model_version_stage(name="customer-churn-rf", version=1, stage="Production")
    client.set_registered_model_alias("customer-churn-rf", "production", "1")

    expected = model.predict(x)
    for uri in ("models:/customer-churn-rf@production", "models:/customer-churn-rf/Production"):
        np.testing.assert_array_equal(mlflow.pyfunc.load_model(uri).predict(x), expected)
    native = mlflow.sklearn.load_model("models:/customer-churn-rf/1")
    np.testing.assert_allclose(native.predict_proba(x), model.predict_proba(x))

    # loopml sees the same run, version, stage and alias, and loads the client's model.
    mine = loopml.Client()
    version = mine.get_model_version_by_alias("customer-churn-rf", "production")
    assert (version.version, version.current_stage) == ("1", "Production")
    assert mine.get_run(run.info.run_id).data.params == {"n_estimators": "10", "max_depth": "4"}
    kinds = {e.kind for e in mine.get_model_history("customer-churn-rf")}
    assert {"version_created", "stage", "alias"} <= kinds
    loaded = loopml.load_model("models:/customer-churn-rf@production", trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), expected)


def test_loopml_models_load_through_the_client(url: str) -> None:
    x, y = _data()
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    loopml.set_experiment("from-loopml")
    with loopml.start_run():
        info = loopml.log_model(
            model, "model", registered_model_name="loopml-rf", input_example=x.iloc[:3]
        )
    loopml.Client().set_registered_model_alias("loopml-rf", "production", "1")

    client = MlflowClient()
    assert client.get_model_version_by_alias("loopml-rf", "production").version == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = mlflow.pyfunc.load_model("models:/loopml-rf@production")
        from_run = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(served.predict(x), model.predict(x))
    np.testing.assert_array_equal(from_run.predict(x), model.predict(x))


def test_runs_uris_of_client_logged_models(url: str) -> None:
    """runs:/<run>/<name> resolves through the logged models of the run (logged-models/search
    with a filter), for loading and for register_model."""
    x, y = _data()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", skops_trusted_types=TRUSTED)
    uri = f"runs:/{run.info.run_id}/model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(mlflow.pyfunc.load_model(uri).predict(x), model.predict(x))
        version = mlflow.register_model(uri, "from-run")
    assert version.version == "1"
    assert loopml.Client().get_model_version("from-run", 1).source.startswith("models:/m-")


def test_proxy_keeps_finished_files_fixed(url: str) -> None:
    import httpx

    x, y = _data()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", skops_trusted_types=TRUSTED)
    logged = MlflowClient().get_logged_model(info.model_id)
    path = logged.artifact_location.removeprefix("mlflow-artifacts:/")
    proxy = f"{url}/api/2.0/mlflow-artifacts/artifacts"
    resp = httpx.put(f"{proxy}/{path}/requirements.txt", content=b"tampered")
    assert resp.status_code == 409 and resp.json()["error_code"] == "INVALID_STATE"
    resp = httpx.put(f"{proxy}/registry/default/1/1/model.pkl", content=b"x")
    assert resp.status_code == 409
