"""Deployments over HTTP: the same interface, served by ``loopml server`` under
``/api/v1/deployments``."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.errors import InvalidInput
from loopml.registry import validate_user
from loopml.serving._batcher import BatchingConfig
from loopml.serving._deployments import (
    Deployment,
    DeploymentEvent,
    DeploymentStore,
    Guardrails,
    batching_to_dict,
    validate_deployment_name,
    validate_variants,
)
from loopml.serving._service import VariantSpec
from loopml.tracking import RestRoutes

__all__ = ["RestDeploymentStore"]


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds (the JSON encoder takes only those)."""
    if isinstance(value, bool) or type(value) in (int, float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _user(user_id: str | None) -> str:
    """The user the server records: this process's user unless one is given."""
    return validate_user(user_id)


class RestDeploymentStore(RestRoutes, DeploymentStore):
    """Talks to a loopml server's ``/api/v1/deployments`` routes over the tracking store's
    connection pool (same server, token and workspace)."""

    def _call(self, method: str, route: str, body: Any = None) -> Any:
        return self._http.request(method, "/deployments" + route, body=body)

    def _change(self, name: str, route: str, body: Any) -> Deployment:
        data = self._call("POST", f"{self._d(name)}/{route}", body)
        return Deployment.from_dict(data["deployment"])

    @staticmethod
    def _d(name: str) -> str:
        return "/" + quote(validate_deployment_name(name), safe="")

    # -- deployments ---------------------------------------------------------------------------
    def create_deployment(
        self,
        name: str,
        variants: Sequence[VariantSpec],
        *,
        unit_key: str | None = None,
        batching: BatchingConfig | None = None,
        description: str = "",
        user_id: str | None = None,
    ) -> Deployment:
        validate_deployment_name(name)
        body = {
            "name": name,
            "variants": [v.to_dict() for v in validate_variants(variants)],
            "unit_key": unit_key,
            "batching": None if batching is None else batching_to_dict(batching),
            "description": description,
            "user_id": _user(user_id),
        }
        return Deployment.from_dict(self._call("POST", "", body)["deployment"])

    def get_deployment(self, name: str) -> Deployment:
        return Deployment.from_dict(self._call("GET", self._d(name))["deployment"])

    def list_deployments(self) -> list[Deployment]:
        return [Deployment.from_dict(x) for x in self._call("GET", "")["deployments"]]

    def delete_deployment(self, name: str) -> None:
        self._call("DELETE", self._d(name))

    def update_deployment(
        self,
        name: str,
        *,
        variants: Sequence[VariantSpec] | None = None,
        unit_key: str | None = None,
        batching: BatchingConfig | None = None,
        description: str | None = None,
        user_id: str | None = None,
    ) -> Deployment:
        body: dict[str, Any] = {"user_id": _user(user_id)}
        if variants is not None:
            body["variants"] = [v.to_dict() for v in validate_variants(variants)]
        if unit_key is not None:
            body["unit_key"] = unit_key
        if batching is not None:
            body["batching"] = batching_to_dict(batching)
        if description is not None:
            body["description"] = description
        data = self._call("PATCH", self._d(name), body)
        return Deployment.from_dict(data["deployment"])

    # -- traffic -------------------------------------------------------------------------------
    def set_traffic(
        self, name: str, weights: Mapping[str, float], *, user_id: str | None = None
    ) -> Deployment:
        for key, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidInput(f"weight of variant {key!r} must be a number")
        plain = {str(k): _plain(v) for k, v in weights.items()}
        return self._change(name, "traffic", {"weights": plain, "user_id": _user(user_id)})

    def promote(self, name: str, variant: str, *, user_id: str | None = None) -> Deployment:
        return self._change(name, "promote", {"variant": variant, "user_id": _user(user_id)})

    def rollback(self, name: str, *, user_id: str | None = None) -> Deployment:
        return self._change(name, "rollback", {"user_id": _user(user_id)})

    # -- rollouts ------------------------------------------------------------------------------
    def start_rollout(
        self,
        name: str,
        target_uri: str,
        *,
        steps: Sequence[float] = (5, 25, 50, 100),
        interval_seconds: float = 600.0,
        guardrails: Guardrails | None = None,
        user_id: str | None = None,
    ) -> Deployment:
        if isinstance(steps, str | bytes):
            raise InvalidInput("rollout steps must be a list of numbers, e.g. 5,25,50,100")
        body = {
            "target_uri": target_uri,
            "steps": [_plain(s) for s in steps],
            "interval_seconds": _plain(interval_seconds),
            "guardrails": (guardrails or Guardrails()).to_dict(),
            "user_id": _user(user_id),
        }
        return self._change(name, "rollout", body)

    def decide_rollout(
        self,
        name: str,
        decision: str,
        *,
        expected_revision: int,
        reason: str = "",
        stats: Mapping[str, Any] | None = None,
    ) -> Deployment:
        body = {
            "decision": decision,
            "expected_revision": _plain(expected_revision),
            "reason": reason,
            "stats": {str(k): _plain(v) for k, v in (stats or {}).items()},
        }
        return self._change(name, "rollout/decide", body)

    def list_events(self, name: str) -> list[DeploymentEvent]:
        data = self._call("GET", f"{self._d(name)}/events")
        return [DeploymentEvent(**e) for e in data["events"]]
