"""The tracking store interface every backend implements (SQL, REST)."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from pathlib import Path

from loopml.tracking._entities import (
    Experiment,
    FileInfo,
    Metric,
    PagedList,
    Param,
    Run,
    RunBatch,
    RunInfo,
    RunTag,
    ViewType,
)

__all__ = ["TrackingStore"]


class TrackingStore(abc.ABC):
    """Experiments, runs and their records in one workspace.

    Contract:
    - Thread-safe: one instance may be shared by every thread of a process.
    - Returns frozen records (``Experiment``, ``Run``, ``Metric`` ...), never live database rows.
    - Raises ``InvalidInput`` for malformed arguments, ``ExperimentNotFound`` / ``RunNotFound`` /
      ``ArtifactNotFound`` for missing objects, ``AlreadyExists`` for a name in use,
      ``InvalidState`` for an operation the object's state forbids (logging metrics or params to
      a finished or deleted run), ``StoreError`` when the backend fails.
    - A write either happens whole or not at all.
    """

    workspace: str

    @abc.abstractmethod
    def for_workspace(self, workspace: str) -> TrackingStore:
        """The same backend, scoped to another workspace."""

    # -- experiments -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create an experiment and return its id."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id (deleted ones included)."""

    @abc.abstractmethod
    def find_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this name (deleted ones included), or None."""

    @abc.abstractmethod
    def search_experiments(
        self,
        *,
        view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Experiments matching an MLflow experiment filter, in ``order_by`` order (then id)."""

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new, unused name."""

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Move an experiment and its runs to the trash."""

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None:
        """Bring a deleted experiment and the runs deleted with it back."""

    @abc.abstractmethod
    def purge_experiment(self, experiment_id: str) -> None:
        """Erase a deleted experiment, its runs and records for good; its name is free again."""

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag on an experiment."""

    @abc.abstractmethod
    def get_default_experiment_id(self) -> str:
        """The id of the workspace's ``Default`` experiment, created on first use."""

    # -- runs ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
    ) -> Run:
        """Start a run in an experiment (status RUNNING)."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params and tags."""

    @abc.abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name."""

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Move a run to the trash."""

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back."""

    @abc.abstractmethod
    def write_batches(self, batches: Sequence[RunBatch]) -> None:
        """Apply writes for one or more runs in one transaction; all land or none do."""

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step, then timestamp, then logging order."""

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs matching an MLflow filter string, in the requested order, one page at a time."""

    # -- artifacts -----------------------------------------------------------------------------
    @abc.abstractmethod
    def upload_artifact(self, run_id: str, local_file: Path, artifact_path: str) -> None:
        """Store a local file at ``artifact_path`` under the run's artifact root."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The immediate children of a folder of the run's artifacts."""

    @abc.abstractmethod
    def iter_artifact(self, run_id: str, path: str) -> Iterator[bytes]:
        """The bytes of one artifact file, in chunks."""

    @abc.abstractmethod
    def delete_artifact(self, run_id: str, path: str) -> None:
        """Delete an artifact file or folder."""

    # -- helpers built on the primitives -------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections this store holds (a no-op where there are none)."""

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log metrics, params and tags to one run at once."""
        self.write_batches([RunBatch(run_id, list(metrics), list(params), list(tags))])

    def download_artifacts(self, run_id: str, path: str, dst_dir: Path) -> Path:
        """Copy a file or folder of a run's artifacts under ``dst_dir``; returns the local path."""
        from loopml.tracking._artifacts import download_tree

        return download_tree(self, run_id, path, dst_dir)
