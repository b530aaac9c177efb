"""The tracking store over HTTP: the same interface, served by ``loopml server``."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from loopml.errors import InvalidInput, LoopmlError, ServerUnreachable, StoreError, error_from_code
from loopml.store import paused_gc, validate_artifact_path
from loopml.tracking._base import TrackingStore
from loopml.tracking._entities import (
    Experiment,
    FileInfo,
    Metric,
    PagedList,
    Run,
    RunBatch,
    RunInfo,
    ViewType,
    decode_float,
)
from loopml.tracking._validation import int_field, validate_batch, validate_run_id

__all__ = ["RestRoutes", "RestTrackingStore"]

_live: weakref.WeakSet[RestTrackingStore] = weakref.WeakSet()


def _fresh_clients_in_child() -> None:
    # A forked child must not share its parent's keep-alive sockets.
    for store in list(_live):
        store._client = store._new_client()
        store._owns_client = True


os.register_at_fork(after_in_child=_fresh_clients_in_child)

WORKSPACE_HEADER = "X-Loopml-Workspace"
_API = "/api/v1"


class RestTrackingStore(TrackingStore):
    """Talks to a loopml server's ``/api/v1`` routes; one keep-alive connection pool."""

    def __init__(
        self,
        base_url: str,
        *,
        workspace: str = "default",
        token: str | None = None,
        timeout: float = 60.0,
        _client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.workspace = workspace
        self._token = token
        self._timeout = timeout
        headers = {WORKSPACE_HEADER: workspace}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = _client or self._new_client()
        self._headers = headers
        self._owns_client = _client is None
        _live.add(self)

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=self._timeout,
            limits=httpx.Limits(max_keepalive_connections=8),
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def for_workspace(self, workspace: str) -> RestTrackingStore:
        return RestTrackingStore(
            self.base_url,
            workspace=workspace,
            token=self._token,
            timeout=self._timeout,
            _client=self._client,
        )

    # -- transport -----------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        headers = self._headers
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers = {**headers, "Content-Type": "application/json"}
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        try:
            resp = self._client.request(
                method, _API + path, content=content, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        return self._decode(resp)

    def _transport_error(self, exc: httpx.TransportError) -> LoopmlError:
        """Only a request that never reached the server is safe to retry."""
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return ServerUnreachable(f"cannot reach the loopml server at {self.base_url}: {exc}")
        return StoreError(
            f"the request to the loopml server at {self.base_url} failed after it was sent "
            f"({type(exc).__name__}: {exc}); it may or may not have been applied"
        )

    def _decode(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 300:
            raise self._error(resp)
        if resp.status_code == 204 or not resp.content:
            return {}
        return orjson.loads(resp.content)

    def _error(self, resp: httpx.Response) -> LoopmlError:
        try:
            payload = orjson.loads(resp.content)
            return error_from_code(
                str(payload["error_code"]), str(payload["message"]), resp.status_code
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return StoreError(
                f"loopml server at {self.base_url} answered {resp.status_code}: {resp.text[:200]}"
            )

    # -- transport for other capabilities' REST stores (same server, auth and workspace) ------
    def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Call ``/api/v1<path>`` and return the decoded JSON; errors become loopml errors."""
        return self._call(method, path, body=body, params=params)

    def request_bytes(
        self, method: str, path: str, *, content: bytes | None = None, body: Any = None
    ) -> bytes:
        """Send raw bytes (or JSON) to ``/api/v1<path>`` and return the raw response body."""
        headers = {**self._headers, "Content-Type": "application/octet-stream"}
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            resp = self._client.request(method, _API + path, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        if resp.status_code >= 300:
            raise self._error(resp)
        return resp.content

    def upload(self, path: str, chunks: Iterator[bytes]) -> None:
        """PUT a stream of bytes to ``/api/v1<path>``."""
        try:
            resp = self._client.put(
                _API + path,
                content=chunks,
                headers={**self._headers, "Content-Type": "application/octet-stream"},
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        self._decode(resp)

    def download(self, path: str) -> Iterator[bytes]:
        """GET ``/api/v1<path>`` as a stream of chunks."""
        try:
            with self._client.stream("GET", _API + path, headers=self._headers) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(resp)
                yield from resp.iter_bytes(1 << 20)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    @staticmethod
    def _path(value: str) -> str:
        return quote(value, safe="")

    @staticmethod
    def _run(run_id: str) -> str:
        return validate_run_id(run_id)

    # -- experiments ---------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        body = {"name": name, "artifact_location": artifact_location, "tags": tags or {}}
        return str(self._call("POST", "/experiments", body=body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        data = self._call("GET", f"/experiments/{self._path(str(experiment_id))}")
        return Experiment.from_dict(data["experiment"])

    def find_experiment_by_name(self, name: str) -> Experiment | None:
        if not isinstance(name, str):
            raise InvalidInput(f"experiment name must be a string, got {name!r}")
        data = self._call("GET", "/experiments/get-by-name", params={"name": name})
        found = data.get("experiment")
        return None if found is None else Experiment.from_dict(found)

    def get_default_experiment_id(self) -> str:
        return str(self._call("POST", "/experiments/default")["experiment_id"])

    def search_experiments(
        self,
        *,
        view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        data = self._call(
            "GET",
            "/experiments",
            params={
                "view_type": str(view_type),
                "max_results": max_results,
                "filter": filter_string,
                "order_by": list(order_by or []) or None,
                "page_token": page_token,
            },
        )
        items = [Experiment.from_dict(e) for e in data["experiments"]]
        return PagedList(items, data.get("next_page_token"))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._call(
            "PATCH", f"/experiments/{self._path(str(experiment_id))}", body={"name": new_name}
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("DELETE", f"/experiments/{self._path(str(experiment_id))}")

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{self._path(str(experiment_id))}/restore")

    def purge_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{self._path(str(experiment_id))}/purge")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call(
            "POST",
            f"/experiments/{self._path(str(experiment_id))}/tags",
            body={"key": key, "value": value},
        )

    # -- runs ----------------------------------------------------------------------------------
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
        body = {
            "experiment_id": str(experiment_id),
            "start_time": None if start_time is None else int_field(start_time, "start_time"),
            "tags": tags or {},
            "run_name": run_name,
            "parent_run_id": parent_run_id,
            "user_id": user_id,
        }
        return Run.from_dict(self._call("POST", "/runs", body=body)["run"])

    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._call("GET", f"/runs/{self._run(run_id)}")["run"])

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        if end_time is not None:
            end_time = int_field(end_time, "end_time")
        body = {"status": status, "end_time": end_time, "run_name": run_name}
        data = self._call("PATCH", f"/runs/{self._run(run_id)}", body=body)
        return RunInfo.from_dict(data["run_info"])

    def delete_run(self, run_id: str) -> None:
        self._call("DELETE", f"/runs/{self._run(run_id)}")

    def restore_run(self, run_id: str) -> None:
        self._call("POST", f"/runs/{self._run(run_id)}/restore")

    def write_batches(self, batches: Sequence[RunBatch]) -> None:
        body = {"batches": [validate_batch(b).to_dict() for b in batches if not b.is_empty()]}
        if body["batches"]:
            self._call("POST", "/runs/batches", body=body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("DELETE", f"/runs/{self._run(run_id)}/tags", params={"key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        data = self._call("GET", f"/runs/{self._run(run_id)}/metric-history", params={"key": key})
        values = data["values"]
        with paused_gc():
            if not all(type(v) is float for v in values):
                values = [decode_float(v) for v in values]
            return list(
                map(Metric, [key] * len(values), values, data["timestamps"], data["steps"])
            )

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
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string or "",
            "view_type": str(view_type),
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        data = self._call("POST", "/runs/search", body=body)
        return PagedList([Run.from_dict(r) for r in data["runs"]], data.get("next_page_token"))

    # -- artifacts -----------------------------------------------------------------------------
    def _artifact_url(self, run_id: str, path: str) -> str:
        clean = validate_artifact_path(path, allow_empty=False)
        return f"{_API}/runs/{self._run(run_id)}/artifacts/{quote(clean)}"

    def upload_artifact(self, run_id: str, local_file: Path, artifact_path: str) -> None:
        def chunks() -> Iterator[bytes]:
            with open(local_file, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        try:
            resp = self._client.put(
                self._artifact_url(run_id, artifact_path),
                content=chunks(),
                headers={**self._headers, "Content-Type": "application/octet-stream"},
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        self._decode(resp)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        clean = validate_artifact_path(path) if path else None
        data = self._call("GET", f"/runs/{self._run(run_id)}/artifacts", params={"path": clean})
        return [FileInfo(f["path"], f["is_dir"], f["file_size"]) for f in data["files"]]

    def iter_artifact(self, run_id: str, path: str) -> Iterator[bytes]:
        try:
            with self._client.stream(
                "GET", self._artifact_url(run_id, path), headers=self._headers
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(resp)
                yield from resp.iter_bytes(1 << 20)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def delete_artifact(self, run_id: str, path: str) -> None:
        try:
            resp = self._client.delete(self._artifact_url(run_id, path), headers=self._headers)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        self._decode(resp)


class RestRoutes:
    """Base of another capability's REST store: the same server, token and workspace as the
    tracking client, over its connection pool (shared when given as ``_http``, then its owner
    closes it)."""

    def __init__(
        self,
        url: str,
        *,
        workspace: str = "default",
        token: str | None = None,
        timeout: float = 60.0,
        _http: RestTrackingStore | None = None,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.workspace = workspace
        self._token = token
        self._timeout = timeout
        self._owns_http = _http is None
        self._http = _http or RestTrackingStore(
            url, workspace=workspace, token=token, timeout=timeout
        )

    def for_workspace(self, workspace: str) -> Self:
        """The same store seen from another workspace."""
        return type(self)(
            self.base_url,
            workspace=workspace,
            token=self._token,
            timeout=self._timeout,
            _http=self._http.for_workspace(workspace),
        )

    def close(self) -> None:
        """Close the connection pool if this store opened it."""
        if self._owns_http:
            self._http.close()
