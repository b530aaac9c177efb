"""Settings: environment over loopml.toml over defaults; bad keys fail at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.config import get_settings, reset_settings
from loopml.errors import InvalidInput


def test_defaults(tmp_path: Path) -> None:
    settings = get_settings()
    assert settings.resolved_database_uri == f"sqlite:///{tmp_path / 'home' / 'loopml.db'}"
    assert settings.resolved_artifact_uri == str(tmp_path / "home" / "artifacts")
    assert settings.workspace == "default"
    assert settings.tracking_uri is None


def test_toml_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "loopml.toml").write_text(
        'workspace = "team-a"\n[tracking]\nuri = "http://127.0.0.1:9"\nbatch_size = 7\n'
        '[database]\nuri = "sqlite:///from-toml.db"\n'
    )
    reset_settings()
    settings = get_settings()
    assert settings.workspace == "team-a"
    assert settings.tracking_uri == "http://127.0.0.1:9"
    assert settings.tracking_batch_size == 7
    monkeypatch.setenv("LOOPML_TRACKING_URI", "http://127.0.0.1:8")
    reset_settings()
    assert get_settings().tracking_uri == "http://127.0.0.1:8"  # environment wins
    assert get_settings().database_uri == "sqlite:///from-toml.db"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[artifact]\nuri = 's3://bucket/prefix'\n")
    monkeypatch.setenv("LOOPML_CONFIG", str(path))
    reset_settings()
    assert get_settings().resolved_artifact_uri == "s3://bucket/prefix"


@pytest.mark.parametrize(
    "text",
    [
        "colour = 'red'\n",
        "[tracking]\nspeed = 3\n",
        "not toml at all [",
        "tracking_batch_size = 0\n",
    ],
)
def test_bad_config_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "loopml.toml").write_text(text)
    reset_settings()
    with pytest.raises(InvalidInput):
        get_settings()


def test_bad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_TRACKING_FLUSH_INTERVAL_MS", "-5")
    reset_settings()
    with pytest.raises(InvalidInput, match="tracking_flush_interval_ms"):
        get_settings()


def test_mlflow_experiment_name_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-mlflow-env")
    reset_settings()
    import loopml

    with loopml.start_run() as run:
        pass
    assert loopml.get_experiment(run.info.experiment_id).name == "from-mlflow-env"
