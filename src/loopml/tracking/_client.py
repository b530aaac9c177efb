"""``Client``: everything by id, with MLflow's ``MlflowClient`` names."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput, MissingDependency
from loopml.tracking._base import TrackingStore
from loopml.tracking._entities import (
    Experiment,
    FileInfo,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from loopml.tracking._resolve import get_logger, get_store
from loopml.tracking._sql import now_ms
from loopml.tracking._validation import (
    int_field,
    metric_value,
    validate_key,
    validate_metric,
    validate_param,
    validate_run_id,
    validate_tag,
)

__all__ = ["Client"]


class Client:
    """A handle on one tracking store (embedded or a server) for work addressed by id.

    Writes are synchronous by default, as in MLflow's client; ``synchronous=False`` queues them
    on the background logger (``flush()`` waits for them). Reads first flush anything queued, so
    a read always sees this process's earlier writes.
    """

    def __init__(self, tracking_uri: str | None = None, *, workspace: str | None = None) -> None:
        self._store: TrackingStore = get_store(tracking_uri, workspace=workspace)
        self._logger = get_logger(self._store)

    @property
    def store(self) -> TrackingStore:
        """The underlying tracking store."""
        return self._store

    def flush(self, run_id: str | None = None) -> None:
        """Wait until everything logged asynchronously is written; raise the write errors of
        ``run_id`` (of every run when None)."""
        self._logger.flush(run_id)

    def _sync(self) -> None:
        # Reads see this process's queued writes; their errors stay with their runs.
        if self._logger.has_pending():
            self._logger.wait()

    # -- experiments ---------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """Create an experiment; returns its id."""
        return self._store.create_experiment(
            name,
            artifact_location=artifact_location,
            tags={k: str(v) for k, v in (tags or {}).items()},
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id."""
        return self._store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this name, or None (as MLflow)."""
        return self._store.find_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """A page of experiments matching an MLflow experiment filter."""
        return self._store.search_experiments(
            view_type=view_type,
            max_results=max_results,
            filter_string=filter_string,
            order_by=order_by,
            page_token=page_token,
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self._store.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        """Move an experiment and its runs to the trash."""
        self._store.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment."""
        self._store.restore_experiment(experiment_id)

    def purge_experiment(self, experiment_id: str) -> None:
        """Erase a deleted experiment for good, freeing its name."""
        self._store.purge_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self._store.set_experiment_tag(experiment_id, key, str(value))

    # -- runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Create a run (RUNNING) in an experiment."""
        return self._store.create_run(
            experiment_id,
            start_time=start_time,
            tags={k: str(v) for k, v in (tags or {}).items()},
            run_name=run_name,
        )

    def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params and tags."""
        self._sync()
        return self._store.get_run(run_id)

    def update_run(
        self, run_id: str, status: str | None = None, name: str | None = None
    ) -> RunInfo:
        """Change a run's status or name."""
        self._sync()
        return self._store.update_run(run_id, status=status, run_name=name)

    def set_terminated(
        self,
        run_id: str,
        status: str = RunStatus.FINISHED,
        end_time: int | None = None,
        *,
        synchronous: bool = True,
    ) -> None:
        """End a run with a terminal status (queued after its records if not synchronous)."""
        if status not in RunStatus.ALL:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(RunStatus.ALL)}")
        if synchronous:
            self._sync()
            self._store.update_run(run_id, status=status, end_time=end_time)
        else:
            self._logger.end_run(run_id, status, now_ms() if end_time is None else end_time)

    def delete_run(self, run_id: str) -> None:
        """Move a run to the trash."""
        self._sync()
        self._store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run."""
        self._store.restore_run(run_id)

    # -- logging -------------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool = True,
    ) -> None:
        """Log one metric point."""
        key = validate_key(key, "metric")
        metric = Metric(
            key,
            metric_value(value, key),
            now_ms() if timestamp is None else int_field(timestamp, "timestamp"),
            0 if step is None else int_field(step, "step"),
        )
        self.log_batch(run_id, metrics=[metric], synchronous=synchronous)

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool = True,
    ) -> None:
        """Log several metrics at one step (a loopml extension of MLflow's client)."""
        if not isinstance(metrics, dict):
            raise InvalidInput(
                f"log_metrics takes a dict of name → number, got {type(metrics).__name__}"
            )
        ts = now_ms() if timestamp is None else int_field(timestamp, "timestamp")
        st = 0 if step is None else int_field(step, "step")
        keys = [validate_key(k, "metric") for k in metrics]
        values = [metric_value(v, k) for k, v in zip(keys, metrics.values(), strict=True)]
        if synchronous:
            points = [Metric(k, v, ts, st) for k, v in zip(keys, values, strict=True)]
            self.log_batch(run_id, metrics=points, synchronous=True)
        else:
            validate_run_id(run_id)
            self._logger.log_metric_columns(run_id, keys, values, ts, st)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool = True) -> Any:
        """Log a param; logging another value for a logged key is ``InvalidInput``."""
        self.log_batch(run_id, params=[Param(key, value)], synchronous=synchronous)
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool = True) -> None:
        """Set (or overwrite) a tag."""
        self.log_batch(run_id, tags=[RunTag(key, value)], synchronous=synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag."""
        self._sync()
        self._store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool = True,
    ) -> None:
        """Log metrics, params and tags to a run in one write."""
        if synchronous:
            self._sync()
            self._store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
            return
        validate_run_id(run_id)
        if params:
            self._logger.log_params(run_id, [validate_param(p) for p in params])
        if tags:
            self._logger.set_tags(run_id, [validate_tag(t) for t in tags])
        if metrics:
            self._logger.log_metrics(run_id, [validate_metric(m) for m in metrics])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of a metric, ordered by step then time."""
        self._sync()
        return self._store.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """A page of runs matching an MLflow filter string."""
        self._sync()
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return self._store.search_runs(
            ids,
            filter_string=filter_string,
            view_type=run_view_type,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )

    # -- artifacts -----------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Upload a local file (or a folder's files) under ``artifact_path``."""
        src = Path(local_path)
        if src.is_dir():
            self.log_artifacts(run_id, src, _join(artifact_path, src.name))
            return
        if not src.is_file():
            raise InvalidInput(f"local path {str(local_path)!r} is not a file or folder")
        self._store.upload_artifact(run_id, src, _join(artifact_path, src.name))

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Upload every file under a local folder, keeping its layout."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"local path {str(local_dir)!r} is not a folder")
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            self._store.upload_artifact(run_id, file, _join(artifact_path, rel))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store a string as a text artifact."""
        if not isinstance(text, str):
            raise InvalidInput(f"log_text takes a str, got {type(text).__name__}")
        self._upload_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Store a dict as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError as exc:
                raise MissingDependency(
                    "log_dict to YAML needs PyYAML: pip install pyyaml"
                ) from exc
            data = yaml.safe_dump(dictionary, sort_keys=False).encode()
        else:
            data = json.dumps(dictionary, indent=2, default=str).encode()
        self._upload_bytes(run_id, data, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Store a matplotlib figure (PNG, SVG, PDF... by extension) or a plotly figure (HTML)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            if hasattr(figure, "savefig"):
                figure.savefig(path)
            elif hasattr(figure, "write_html") and path.suffix == ".html":
                figure.write_html(str(path))
            elif hasattr(figure, "write_image"):
                figure.write_image(str(path))
            else:
                raise InvalidInput(
                    f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
                )
            self._store.upload_artifact(run_id, path, artifact_file)

    def _upload_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "artifact"
            path.write_bytes(data)
            self._store.upload_artifact(run_id, path, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The immediate children of a folder of a run's artifacts."""
        return self._store.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Download a file or folder of a run's artifacts; returns the local path."""
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="loopml-"))
        return str(self._store.download_artifacts(run_id, path, dst))

    def delete_artifact(self, run_id: str, path: str) -> None:
        """Delete a file or folder of a run's artifacts."""
        self._store.delete_artifact(run_id, path)


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix and prefix.strip("/") else name
