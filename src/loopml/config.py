"""One settings object: explicit values > ``LOOPML_*`` environment > ``loopml.toml`` > defaults.

This is the only module that reads ``os.environ``. The TOML file is ``$LOOPML_CONFIG`` if set,
else ``./loopml.toml`` if it exists. Keys may be flat (``tracking_uri = "..."``) or grouped by
section (``[tracking]`` ``uri = "..."``); unknown keys are an error at load.
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from loopml.errors import InvalidInput

__all__ = ["Settings", "get_settings", "reset_settings"]


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``loopml.toml``, flattening ``[section] key`` into ``section_key``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                raw = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc
            for key, value in raw.items():
                if isinstance(value, dict):
                    for sub, sub_value in value.items():
                        self._data[f"{key}_{sub}"] = sub_value
                else:
                    self._data[key] = value

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Where loopml keeps its state and how it talks to servers."""

    model_config = SettingsConfigDict(env_prefix="LOOPML_", extra="forbid", frozen=True)

    home: Path = Field(default=Path(".loopml"), description="Folder for embedded state.")
    tracking_uri: str | None = Field(
        default=None,
        description="http(s):// for a loopml server, a database URI, or unset for embedded.",
    )
    tracking_token: str | None = Field(
        default=None, description="Bearer token for the server.", repr=False
    )
    database_uri: str | None = Field(
        default=None, description="Metadata database; default sqlite:///<home>/loopml.db."
    )
    artifact_uri: str | None = Field(
        default=None,
        description="Artifact root; a path or s3://bucket/prefix; default <home>/artifacts.",
    )
    prediction_log_uri: str | None = Field(
        default=None,
        description="Prediction log root; a path or fsspec URL; default <home>/predictions.",
    )
    online_store_uri: str | None = Field(
        default=None,
        description="Online feature store: sqlite:///path or redis://host:port/db[?prefix=p]; "
        "default sqlite:///<home>/online.db.",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint.")
    workspace: str = Field(default="default", description="Workspace of new objects and queries.")
    experiment_name: str | None = Field(
        default=None,
        description="Experiment of new runs when none is set (or MLFLOW_EXPERIMENT_NAME).",
    )
    tracking_queue_size: int = Field(default=100_000, ge=1, description="Pending log items.")
    tracking_batch_size: int = Field(default=5_000, ge=1, description="Items per write batch.")
    tracking_flush_interval_ms: int = Field(
        default=50, ge=0, description="Longest a logged item waits before it is written."
    )
    http_timeout_seconds: float = Field(default=60.0, gt=0, description="REST client timeout.")
    onnx_threads: int = Field(
        default=1,
        ge=0,
        le=256,
        description="ONNX Runtime intra-op threads per model (0: one per core).",
    )
    serving_token: str | None = Field(
        default=None,
        description="Bearer token the inference server's predict routes require (none: open).",
        repr=False,
    )
    max_request_mb: int = Field(
        default=64, ge=1, le=4096, description="Largest request body the server reads (MiB)."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the web session cookie Secure even over plain HTTP (behind TLS).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest wait for the next part of a request body (s); slower gets 408.",
    )
    pipeline_executor: str = Field(
        default="threads",
        description="Where pipeline steps run: threads, processes, ray or ray://host:port.",
    )
    pipeline_workers: int = Field(
        default=0, ge=0, description="Parallel steps of one pipeline run (0: by CPU count)."
    )
    webhook_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Attempts per webhook delivery before it fails."
    )
    webhook_backoff_seconds: float = Field(
        default=2.0, ge=0, description="Wait before a webhook's 2nd attempt; doubles each retry."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one webhook POST may take."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("LOOPML_CONFIG")
        path = Path(config) if config else Path("loopml.toml")
        return (init_settings, env_settings, _TomlSource(settings_cls, path))

    @property
    def resolved_database_uri(self) -> str:
        """The metadata database URI, defaulting to SQLite under ``home``."""
        if self.database_uri:
            return self.database_uri
        return f"sqlite:///{self.home.expanduser().resolve() / 'loopml.db'}"

    @property
    def resolved_artifact_uri(self) -> str:
        """The artifact root, defaulting to ``<home>/artifacts``."""
        if self.artifact_uri:
            return self.artifact_uri
        return str(self.home.expanduser().resolve() / "artifacts")

    @property
    def resolved_online_store_uri(self) -> str:
        """The online feature store URI, defaulting to SQLite under ``home``."""
        if self.online_store_uri:
            return self.online_store_uri
        return f"sqlite:///{self.home.expanduser().resolve() / 'online.db'}"


def _environ_overrides() -> dict[str, Any]:
    """Environment variables other libraries use that loopml honours too."""
    out: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "LOOPML_S3_ENDPOINT_URL" not in os.environ:
        out["s3_endpoint_url"] = endpoint
    mlflow_experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if mlflow_experiment and "LOOPML_EXPERIMENT_NAME" not in os.environ:
        out["experiment_name"] = mlflow_experiment
    return out


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once; ``reset_settings()`` reloads them."""
    try:
        return Settings(**_environ_overrides())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"invalid loopml settings: {problems}") from exc


def reset_settings() -> None:
    """Forget the cached settings (tests, or after changing the environment)."""
    get_settings.cache_clear()
