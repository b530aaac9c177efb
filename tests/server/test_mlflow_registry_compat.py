"""The official ``mlflow`` client's model-registry calls against a real ``loopml server``
(MLflow's REST routes), then read back through loopml's own SDK: what the client wrote is what
loopml holds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from loopml.registry import RestRegistryStore
from loopml.tracking import LoggedModelStore, RestTrackingStore, SqlTrackingStore

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow deprecates stages (FutureWarning on each call); loopml keeps them for compatibility.
_STAGES = pytest.mark.filterwarnings("ignore:.*Model registry stages:FutureWarning")


class Env:
    """A server with the ``mlflow`` client and loopml's SDK both pointed at it."""

    def __init__(self, url: str, database_uri: str, artifact_root: Path) -> None:
        self.url = url
        self.database_uri = database_uri
        self.artifact_root = artifact_root
        from mlflow import MlflowClient  # imported in the test, where its telemetry is off

        self.client: MlflowClient = MlflowClient(tracking_uri=url, registry_uri=url)
        self.tracking = RestTrackingStore(url)
        self.registry = RestRegistryStore(url)

    def run_with_model(self, experiment: str = "exp") -> Any:
        """A run (made through loopml's SDK) with a model folder ``model/`` in its artifacts."""
        found = self.tracking.find_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else self.tracking.create_experiment(experiment)
        run = self.tracking.create_run(exp_id, run_name="train")
        mlmodel = self.artifact_root.parent / "MLmodel"
        mlmodel.write_text("artifact_path: model\nflavors: {}\n")
        self.tracking.upload_artifact(run.info.run_id, mlmodel, "model/MLmodel")
        return run

    def proxied(self, stored: str) -> str:
        """The ``mlflow-artifacts:/`` URI of a stored location under the artifact root."""
        relative = Path(stored).relative_to(self.artifact_root).as_posix()
        return f"mlflow-artifacts:/{relative}"


@pytest.fixture
def env(
    server_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a server error fails at once
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    database_uri = f"sqlite:///{tmp_path / 'server' / 'loopml.db'}"
    root = tmp_path / "server" / "artifacts"
    server = server_factory(database_uri, str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    env = Env(server.url, database_uri, root)
    yield env
    env.registry.close()
    env.tracking.close()


def _error_code(call: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """The error code of the ``MlflowException`` that ``call(*args, **kwargs)`` raises."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as exc:
        call(*args, **kwargs)
    return exc.value.error_code


def test_registered_models(env: Env) -> None:
    client = env.client
    made = client.create_registered_model("churn", tags={"team": "growth"}, description="d0")
    assert (made.name, made.description, made.tags) == ("churn", "d0", {"team": "growth"})
    assert made.latest_versions == [] and made.aliases == {}
    assert _error_code(client.create_registered_model, "churn") == "RESOURCE_ALREADY_EXISTS"

    assert client.update_registered_model("churn", description="d1").description == "d1"
    client.set_registered_model_tag("churn", "owner", "ana")
    client.set_registered_model_tag("churn", "team", "ml")
    client.delete_registered_model_tag("churn", "owner")
    assert client.rename_registered_model("churn", "churn-v2") is None  # the client drops it
    got = client.get_registered_model("churn-v2")
    assert (got.name, got.description, got.tags) == ("churn-v2", "d1", {"team": "ml"})
    assert got.creation_timestamp <= got.last_updated_timestamp
    for name in ("nope", "churn"):
        assert _error_code(client.get_registered_model, name) == "RESOURCE_DOES_NOT_EXIST"

    for i in range(5):
        client.create_registered_model(f"fraud-{i}", tags={"parity": str(i % 2)})
    found = client.search_registered_models(filter_string="name LIKE 'fraud-%'")
    assert [m.name for m in found] == [f"fraud-{i}" for i in range(5)]
    odd = client.search_registered_models(filter_string="tags.parity = '1'")
    assert [m.name for m in odd] == ["fraud-1", "fraud-3"]
    both = client.search_registered_models(
        filter_string="name LIKE 'fraud-%' AND tags.parity = '0'", order_by=["name DESC"]
    )
    assert [m.name for m in both] == ["fraud-4", "fraud-2", "fraud-0"]
    pages, token = [], None
    while True:
        page = client.search_registered_models(max_results=2, page_token=token)
        pages.append([m.name for m in page])
        token = page.token
        if not token:
            break
    assert pages == [["churn-v2", "fraud-0"], ["fraud-1", "fraud-2"], ["fraud-3", "fraud-4"]]
    assert (
        _error_code(client.search_registered_models, filter_string="colour = 'red'")
        == "INVALID_PARAMETER_VALUE"
    )

    client.delete_registered_model("fraud-0")
    assert _error_code(client.delete_registered_model, "fraud-0") == "RESOURCE_DOES_NOT_EXIST"

    # loopml's own SDK sees exactly what the client wrote
    mine = env.registry.get_registered_model("churn-v2")
    assert (mine.description, mine.tags) == ("d1", {"team": "ml"})
    names = [m.name for m in env.registry.search_registered_models()]
    assert names == ["churn-v2", "fraud-1", "fraud-2", "fraud-3", "fraud-4"]


@_STAGES
def test_versions_stages_and_aliases(env: Env) -> None:
    client = env.client
    run = env.run_with_model()
    run_id = run.info.run_id
    client.create_registered_model("m")
    v1 = client.create_model_version(
        "m", f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"}, description="first"
    )
    assert (v1.name, v1.version, v1.current_stage, v1.status) == ("m", "1", "None", "READY")
    assert (v1.source, v1.run_id, v1.description) == (f"runs:/{run_id}/model", run_id, "first")
    assert v1.tags == {"k": "v"} and v1.aliases == []
    v2 = client.create_model_version("m", f"runs:/{run_id}/model")
    v3 = client.create_model_version("m", f"runs:/{run_id}/model")
    assert (v2.version, v2.run_id, v3.version) == ("2", run_id, "3")
    assert (
        _error_code(client.create_model_version, "nope", f"runs:/{run_id}/model")
        == "RESOURCE_DOES_NOT_EXIST"
    )

    assert client.update_model_version("m", "2", description="second").description == "second"
    client.set_model_version_tag("m", "2", "checked", "yes")
    client.set_model_version_tag("m", "3", "drop", "me")
    client.delete_model_version_tag("m", "3", "drop")
    assert client.get_model_version("m", "2").tags == {"checked": "yes"}
    assert _error_code(client.get_model_version, "m", "9") == "RESOURCE_DOES_NOT_EXIST"

    # stages: moving v2 to Production with archive_existing_versions archives v1
    assert client.transition_model_version_stage("m", "1", "Production").current_stage == (
        "Production"
    )
    moved = client.transition_model_version_stage(
        "m", "2", "production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production"
    assert client.get_model_version("m", "1").current_stage == "Archived"
    client.transition_model_version_stage("m", "3", "Staging")
    assert (
        _error_code(client.transition_model_version_stage, "m", "3", "Bogus")
        == "INVALID_PARAMETER_VALUE"
    )
    latest = client.get_latest_versions("m", stages=["Production"])
    assert [(v.version, v.current_stage) for v in latest] == [("2", "Production")]
    every = {v.current_stage: v.version for v in client.get_latest_versions("m")}
    assert every == {"Archived": "1", "Production": "2", "Staging": "3"}

    # aliases
    client.set_registered_model_alias("m", "champion", "2")
    client.set_registered_model_alias("m", "challenger", "3")
    client.set_registered_model_alias("m", "challenger", "1")
    assert client.get_model_version_by_alias("m", "champion").version == "2"
    assert client.get_registered_model("m").aliases == {"champion": "2", "challenger": "1"}
    assert client.get_model_version("m", "1").aliases == ["challenger"]
    client.delete_registered_model_alias("m", "challenger")
    assert (
        _error_code(client.get_model_version_by_alias, "m", "challenger")
        == "RESOURCE_DOES_NOT_EXIST"
    )

    # search versions, filters and pages
    assert [v.version for v in client.search_model_versions("name = 'm'")] == ["3", "2", "1"]
    assert len(client.search_model_versions(f"run_id = '{run_id}'")) == 3
    assert [v.version for v in client.search_model_versions("tags.checked = 'yes'")] == ["2"]
    first = client.search_model_versions("name = 'm'", max_results=2, order_by=["version_number"])
    assert [v.version for v in first] == ["1", "2"] and first.token
    rest = client.search_model_versions(
        "name = 'm'", max_results=2, order_by=["version_number"], page_token=first.token
    )
    assert [v.version for v in rest] == ["3"] and not rest.token

    stored = env.tracking.get_run(run_id).info.artifact_uri
    uri = client.get_model_version_download_uri("m", "2")
    assert uri == env.proxied(stored) + "/model"

    copy = client.copy_model_version("models:/m@champion", "m-copy")
    assert (copy.name, copy.version, copy.source) == ("m-copy", "1", f"runs:/{run_id}/model")
    assert (copy.run_id, copy.tags, copy.description) == (run_id, {"checked": "yes"}, "second")
    assert client.get_model_version_download_uri("m-copy", "1") == uri

    client.delete_model_version("m", "3")
    assert _error_code(client.get_model_version, "m", "3") == "RESOURCE_DOES_NOT_EXIST"

    # loopml's own SDK sees the same stages, aliases, tags and history
    reg = env.registry
    assert [reg.get_model_version("m", v).current_stage for v in ("1", "2")] == [
        "Archived",
        "Production",
    ]
    assert reg.get_registered_model("m").aliases == {"champion": "2"}
    assert reg.get_model_version("m", "1").tags == {"k": "v"}
    assert reg.get_model_version("m", "2").description == "second"
    events = [
        (e.kind, e.alias, e.version, e.from_version, e.to_version, e.from_stage, e.to_stage)
        for e in reversed(reg.get_model_history("m"))
    ]
    assert events == [
        ("version_created", None, "1", None, None, None, None),
        ("version_created", None, "2", None, None, None, None),
        ("version_created", None, "3", None, None, None, None),
        ("stage", None, "1", None, None, "None", "Production"),
        ("stage", None, "2", None, None, "None", "Production"),
        ("stage", None, "1", None, None, "Production", "Archived"),
        ("stage", None, "3", None, None, "None", "Staging"),
        ("alias", "champion", "2", None, "2", None, None),
        ("alias", "challenger", "3", None, "3", None, None),
        ("alias", "challenger", "1", "3", "1", None, None),
        ("alias_deleted", "challenger", None, "1", None, None, None),
        ("version_deleted", None, "3", None, None, None, None),
    ]
    # the client names no user (deleting a version records the server's, as loopml's API does)
    users = {e.user_id for e in reg.get_model_history("m") if e.kind != "version_deleted"}
    assert users == {""}


def test_artifact_location_sources_become_run_sources(env: Env) -> None:
    client = env.client
    run = env.run_with_model()
    run_id = run.info.run_id
    folder = env.proxied(env.tracking.get_run(run_id).info.artifact_uri)
    client.create_registered_model("m")
    named = client.create_model_version("m", f"{folder}/model", run_id=run_id)
    unnamed = client.create_model_version("m", f"{folder}/model")
    whole = client.create_model_version("m", folder)
    assert [named.source, unnamed.source, whole.source] == [
        f"runs:/{run_id}/model",
        f"runs:/{run_id}/model",
        f"runs:/{run_id}",
    ]
    assert unnamed.run_id == run_id
    assert env.registry.get_model_version("m", "2").source == f"runs:/{run_id}/model"
    for source in ("mlflow-artifacts:/elsewhere/model", "/etc", f"{folder}/../../x"):
        assert (
            _error_code(client.create_model_version, "m", source) == "INVALID_PARAMETER_VALUE"
        ), source
    assert len(env.registry.search_model_versions(filter_string="name = 'm'")) == 3


def test_register_model_and_load_its_files(env: Env, tmp_path: Path) -> None:
    import mlflow

    run_id = env.run_with_model().info.run_id
    version = mlflow.register_model(f"runs:/{run_id}/model", "fluent", tags={"via": "mlflow"})
    assert (version.version, version.run_id) == ("1", run_id)
    mine = env.registry.get_model_version("fluent", "1")
    assert (mine.source, mine.tags) == (f"runs:/{run_id}/model", {"via": "mlflow"})
    local = mlflow.artifacts.download_artifacts("models:/fluent/1", dst_path=str(tmp_path / "d"))
    assert (Path(local) / "MLmodel").read_text().startswith("artifact_path: model")


def test_logged_model_sources(env: Env) -> None:
    client = env.client
    # an MLflow 3 logged model, made on the server's database with loopml's own store
    sql = SqlTrackingStore(env.database_uri, str(env.artifact_root))
    logged = LoggedModelStore(sql).create(env.tracking.create_experiment("lm"), name="clf")
    sql.close()
    folder = env.proxied(logged.artifact_uri)
    client.create_registered_model("m")
    by_uri = client.create_model_version(
        "m", f"models:/{logged.model_id}", model_id=logged.model_id
    )
    by_folder = client.create_model_version("m", folder)
    assert [by_uri.source, by_folder.source] == [f"models:/{logged.model_id}"] * 2
    assert by_uri.run_id is None
    assert client.get_model_version_download_uri("m", "1") == folder
    assert env.registry.get_model_version("m", "2").source == f"models:/{logged.model_id}"
    assert (
        _error_code(client.create_model_version, "m", "models:/m-0123", model_id="m-0123")
        == "RESOURCE_DOES_NOT_EXIST"
    )
