"""``/api/v1/deployments`` routes: deployments, traffic, promotion, rollback, rollouts, history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from loopml.server._auth import acting_user, note_change
from loopml.server._tracking_api import JsonRoute, scoped
from loopml.serving import BatchingConfig, DeploymentStore, Guardrails, VariantSpec

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"], route_class=JsonRoute)

Number = StrictFloat  # a JSON number (integers too), never a string or a boolean


async def deployments_for(request: Request) -> DeploymentStore:
    """The deployment store scoped to the request's workspace."""
    return scoped(request.app.state.deployment_store, request)


Store = Annotated[DeploymentStore, Depends(deployments_for)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantBody(_Body):
    name: str
    model_uri: str = Field(min_length=1)
    weight: Number = VariantSpec.weight
    role: str = VariantSpec.role

    def spec(self) -> VariantSpec:
        return VariantSpec(self.name, self.model_uri, float(self.weight), self.role)


class BatchingBody(_Body):
    max_batch_size: StrictInt = BatchingConfig.max_batch_size
    max_latency_ms: Number = BatchingConfig.max_latency_ms
    max_queue: StrictInt = BatchingConfig.max_queue

    def config(self) -> BatchingConfig:
        return BatchingConfig(self.max_batch_size, float(self.max_latency_ms), self.max_queue)


class GuardrailsBody(_Body):
    max_error_rate: Number = Guardrails.max_error_rate
    max_p99_ms: Number | None = Guardrails.max_p99_ms
    min_requests: StrictInt = Guardrails.min_requests
    rules: list[str] = Field(default_factory=list)
    experiment: str | None = None

    def guardrails(self) -> Guardrails:
        p99 = None if self.max_p99_ms is None else float(self.max_p99_ms)
        return Guardrails(
            float(self.max_error_rate),
            p99,
            self.min_requests,
            tuple(self.rules),
            experiment=self.experiment,
        )


class CreateDeployment(_Body):
    name: str
    variants: list[VariantBody]
    unit_key: str | None = None
    batching: BatchingBody | None = None
    description: str = ""
    user_id: str | None = None


class UpdateDeployment(_Body):
    variants: list[VariantBody] | None = None
    unit_key: str | None = None
    batching: BatchingBody | None = None
    description: str | None = None
    user_id: str | None = None


class TrafficBody(_Body):
    weights: dict[str, Number]
    user_id: str | None = None


class PromoteBody(_Body):
    variant: str
    user_id: str | None = None


class RollbackBody(_Body):
    user_id: str | None = None


class RolloutBody(_Body):
    target_uri: str
    steps: list[Number] | None = None
    interval_seconds: Number | None = None
    guardrails: GuardrailsBody | None = None
    user_id: str | None = None


class DecideBody(_Body):
    decision: Literal["advance", "rollback"]
    expected_revision: StrictInt
    reason: str = ""
    stats: dict[str, StrictInt | StrictFloat | None] = Field(default_factory=dict)


def _one(dep: Any) -> dict[str, Any]:
    return {"deployment": dep.to_dict()}


# -- deployments -------------------------------------------------------------------------------
@router.post("")
def create_deployment(body: CreateDeployment, store: Store) -> dict[str, Any]:
    """Create a deployment."""
    dep = store.create_deployment(
        body.name,
        [v.spec() for v in body.variants],
        unit_key=body.unit_key,
        batching=None if body.batching is None else body.batching.config(),
        description=body.description,
        user_id=body.user_id,
    )
    return _one(dep)


@router.get("")
def list_deployments(store: Store) -> dict[str, Any]:
    """Every deployment of the workspace, by name."""
    return {"deployments": [d.to_dict() for d in store.list_deployments()]}


@router.get("/{name}")
def get_deployment(name: str, store: Store) -> dict[str, Any]:
    """One deployment with its variants and rollout."""
    return _one(store.get_deployment(name))


@router.patch("/{name}")
def update_deployment(name: str, body: UpdateDeployment, store: Store) -> dict[str, Any]:
    """Replace the variants, unit key (``""`` clears it), batching or description."""
    dep = store.update_deployment(
        name,
        variants=None if body.variants is None else [v.spec() for v in body.variants],
        unit_key=body.unit_key,
        batching=None if body.batching is None else body.batching.config(),
        description=body.description,
        user_id=body.user_id,
    )
    return _one(dep)


@router.delete("/{name}")
def delete_deployment(name: str, store: Store) -> dict[str, Any]:
    """Delete a deployment and its history."""
    store.delete_deployment(name)
    return {}


# -- traffic -----------------------------------------------------------------------------------
def _traffic(dep: Any) -> dict[str, Any]:
    return {
        v.name: {"model": v.model_uri, "weight": v.weight, "role": v.role} for v in dep.variants
    }


def _changed(request: Request, store: Any, name: str, change: Any) -> dict[str, Any]:
    """Run ``change()`` and note the variants before and after in the audit event."""
    before = _traffic(store.get_deployment(name))
    dep = change()
    note_change(request, before=before, after=_traffic(dep))
    return _one(dep)


@router.post("/{name}/traffic")
def set_traffic(name: str, body: TrafficBody, store: Store, request: Request) -> dict[str, Any]:
    """New weights for some variants."""
    user = acting_user(request, body.user_id)
    weights = body.weights
    return _changed(request, store, name, lambda: store.set_traffic(name, weights, user_id=user))


@router.post("/{name}/promote")
def promote(name: str, body: PromoteBody, store: Store, request: Request) -> dict[str, Any]:
    """Make a variant's model the primary one, with all the traffic."""
    user = acting_user(request, body.user_id)
    return _changed(request, store, name, lambda: store.promote(name, body.variant, user_id=user))


@router.post("/{name}/rollback")
def rollback(name: str, body: RollbackBody, store: Store, request: Request) -> dict[str, Any]:
    """Stop a running rollout, or go back to the previous revision's variants."""
    user = acting_user(request, body.user_id)
    return _changed(request, store, name, lambda: store.rollback(name, user_id=user))


# -- rollouts and history ----------------------------------------------------------------------
@router.post("/{name}/rollout")
def start_rollout(name: str, body: RolloutBody, store: Store) -> dict[str, Any]:
    """Begin a gradual rollout (steps and interval default to the store's)."""
    options: dict[str, Any] = {}
    if body.steps is not None:
        options["steps"] = body.steps
    if body.interval_seconds is not None:
        options["interval_seconds"] = body.interval_seconds
    if body.guardrails is not None:
        options["guardrails"] = body.guardrails.guardrails()
    return _one(store.start_rollout(name, body.target_uri, user_id=body.user_id, **options))


@router.post("/{name}/rollout/decide")
def decide_rollout(name: str, body: DecideBody, store: Store) -> dict[str, Any]:
    """Advance or roll back the running rollout, if the deployment is still at
    ``expected_revision`` (409 otherwise)."""
    dep = store.decide_rollout(
        name,
        body.decision,
        expected_revision=body.expected_revision,
        reason=body.reason,
        stats=body.stats,
    )
    return _one(dep)


@router.get("/{name}/events")
def list_events(name: str, store: Store) -> dict[str, Any]:
    """The deployment's history, oldest first."""
    return {"events": [e.to_dict() for e in store.list_events(name)]}
