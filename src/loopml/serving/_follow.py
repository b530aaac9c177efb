"""Serving a deployment: build its service, follow its changes by hot swap, drive its rollout.

Every ``interval`` seconds the follower reads the deployment and pins each variant's model URI
(an alias or stage resolves to the version it names now). When the revision or a pinned version
changed, it loads and warms the new models beside the old ones (the old keep answering), then
installs the new routing table in one assignment and drains the old batchers: requests already
queued on them finish, so no request fails during a swap.

While a rollout runs, each tick also reads the canary's statistics since its step began from the
prediction log and either rolls it back (a guardrail broke), advances it (the step's interval has
passed with enough requests), or waits. Decisions are conditional on the revision, so several
servers following one deployment take each decision once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from loopml.errors import InsufficientData, InvalidState
from loopml.models import pin_model_uri
from loopml.serving._batcher import BatchingConfig
from loopml.serving._deployments import RUNNING, Deployment, DeploymentStore
from loopml.serving._metrics import ServingMetrics
from loopml.serving._runtime import ModelRuntime
from loopml.serving._service import InferenceService, RoutingTable, Variant

__all__ = ["DeploymentFollower", "build_service", "prediction_log_stats", "tick_rollout"]

_log = logging.getLogger("loopml.serving")
Stats = Callable[[str, float], Mapping[str, Mapping[str, float]]]
LOAD_FAILURES_TO_ROLL_BACK = 3  # consecutive failed syncs during a rollout


class _Loader:
    """Loads (and remembers) the runtimes and variants a deployment needs."""

    def __init__(
        self,
        runtime: str,
        trusted: bool,
        metrics: ServingMetrics,
        batching: Mapping[str, Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.trusted = trusted
        self.metrics = metrics
        self.batching = dict(batching or {})

    def config(self, dep: Deployment) -> BatchingConfig:
        """The deployment's batching, with the server's own settings over it."""
        return replace(dep.batching, **self.batching) if self.batching else dep.batching

    def variants(
        self, dep: Deployment, pinned: Mapping[str, str], current: tuple[Variant, ...]
    ) -> list[Variant]:
        """The deployment's variants, reusing loaded ones whose pinned model and batching match."""
        # a variant is reused whole (batcher and metric labels) only under its own name
        have = {(v.spec.name, v.runtime.model_uri, v.batcher.config): v for v in current}
        runtimes = {v.runtime.model_uri: v.runtime for v in current}
        out = []
        config = self.config(dep)
        for spec in dep.variants:
            uri = pinned[spec.name]
            reuse = have.get((spec.name, uri, config))
            if reuse is not None:
                out.append(reuse.with_spec(spec))
                continue
            runtime = runtimes.get(uri)
            if runtime is None:
                runtime = runtimes[uri] = ModelRuntime.load(
                    uri, runtime=self.runtime, trusted=self.trusted
                )
            out.append(Variant(spec, runtime, config, self.metrics))
        return out


def _pin(dep: Deployment) -> dict[str, str]:
    return {v.name: pin_model_uri(v.model_uri) for v in dep.variants}


def build_service(
    store: DeploymentStore,
    name: str,
    *,
    runtime: str = "auto",
    trusted: bool = False,
    prediction_log: Any = None,
    interval: float = 2.0,
    stats: Stats | None = None,
    batching: Mapping[str, Any] | None = None,
) -> InferenceService:
    """Load every variant of deployment ``name`` and return its service, following changes.

    ``batching`` overrides fields of the deployment's batching settings for this server.
    """
    dep = store.get_deployment(name)
    metrics = ServingMetrics()
    loader = _Loader(runtime, trusted, metrics, batching)
    pinned = _pin(dep)
    table = RoutingTable(loader.variants(dep, pinned, ()), dep.name)
    service = InferenceService(
        dep.name, table, unit_key=dep.unit_key, metrics=metrics, prediction_log=prediction_log
    )
    service.follower = DeploymentFollower(  # type: ignore[attr-defined]
        service, store, loader, dep, pinned, interval=interval, stats=stats
    )
    return service


class DeploymentFollower:
    """A background thread that keeps a service in step with its deployment."""

    def __init__(
        self,
        service: InferenceService,
        store: DeploymentStore,
        loader: _Loader,
        dep: Deployment,
        pinned: dict[str, str],
        *,
        interval: float = 2.0,
        stats: Stats | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.loader = loader
        self.revision = dep.revision
        self.pinned = pinned
        self.interval = interval
        self.stats = stats
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start following (call from the server's event loop)."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"loopml-follow-{self.service.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self.interval):
            try:
                self.sync()
                failures, self.error = 0, None
            except Exception as exc:  # keep serving what is loaded; say why once per change
                failures += 1
                self._report(exc)
            if self.stats is None:
                continue
            try:
                if failures >= LOAD_FAILURES_TO_ROLL_BACK:
                    failures = 0 if self._abandon_rollout() else failures
                tick_rollout(self.store, self.service.name, self.stats, self._flush)
            except Exception as exc:
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self.error:
            _log.error("deployment %s: %s", self.service.name, message)
        self.error = message

    def _abandon_rollout(self) -> bool:
        """Roll back a running rollout whose models this server cannot load."""
        dep = self.store.get_deployment(self.service.name)
        if dep.rollout is None or dep.rollout.status != RUNNING:
            return False
        reason = f"the rollout's models could not be loaded: {self.error}"
        _log.warning("deployment %s: rolling back: %s", dep.name, reason)
        try:
            self.store.decide_rollout(
                dep.name, "rollback", expected_revision=dep.revision, reason=reason[:1000]
            )
        except InvalidState:  # another server took a decision first
            pass
        return True

    def _flush(self) -> None:
        flush = getattr(self.service.prediction_log, "flush", None)
        if flush is not None:
            flush()

    def sync(self) -> bool:
        """Apply the deployment's current state; True if the served models changed."""
        dep = self.store.get_deployment(self.service.name)
        pinned = _pin(dep)
        if dep.revision == self.revision and pinned == self.pinned:
            return False
        current = self.service.table.variants
        variants = self.loader.variants(dep, pinned, current)  # loads and warms new models
        table = RoutingTable(variants, dep.name)
        self.service.unit_key = dep.unit_key
        old = self.service.install(table)
        self.revision, self.pinned = dep.revision, pinned
        _log.info(
            "deployment %s: now serving revision %s (%s)",
            dep.name,
            dep.revision,
            ", ".join(f"{v.spec.name}={v.runtime.model_uri}@{v.spec.weight:g}" for v in variants),
        )
        for variant in old:
            self._retire(variant)
        return True

    def _retire(self, variant: Variant) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            variant.batcher.close()
            return
        asyncio.run_coroutine_threadsafe(variant.batcher.drain(), loop)


def tick_rollout(
    store: DeploymentStore,
    name: str,
    stats: Stats,
    flush: Callable[[], None] | None = None,
    *,
    now: float | None = None,
) -> Deployment | None:
    """Take the running rollout's next decision, if one is due; the new deployment or None.

    ``stats(name, since_epoch_seconds)`` gives per-variant statistics (requests, errors,
    error_rate, p50_ms, p99_ms) from the prediction log.
    """
    dep = store.get_deployment(name)
    rollout = dep.rollout
    if rollout is None or rollout.status != RUNNING:
        return None
    if flush is not None:
        flush()
    now_s = time.time() if now is None else now
    by_variant = stats(name, rollout.step_started_at / 1000)
    canary = dict(by_variant.get("canary") or _EMPTY)
    reason = rollout.guardrails.broken(canary)
    try:
        if reason is not None:
            _log.warning("deployment %s: rolling back: %s", name, reason)
            return store.decide_rollout(
                name, "rollback", expected_revision=dep.revision, reason=reason, stats=canary
            )
        due = now_s - rollout.step_started_at / 1000 >= rollout.interval_seconds
        if due and canary["requests"] >= rollout.guardrails.min_requests:
            stop = experiment_says_stop(rollout.guardrails.experiment)
            if stop is not None:
                _log.warning("deployment %s: rolling back: %s", name, stop)
                return store.decide_rollout(
                    name, "rollback", expected_revision=dep.revision, reason=stop, stats=canary
                )
            return store.decide_rollout(
                name, "advance", expected_revision=dep.revision, stats=canary
            )
    except InvalidState:  # another server took this decision first
        return None
    return None


def experiment_says_stop(name: str | None) -> str | None:
    """Why the experiment stops the rollout, or None. Too little data yet gives no verdict; an
    experiment that cannot be analysed stops the rollout (a guardrail that cannot be read does
    not let traffic through). The split is not judged: a rollout changes it on purpose."""
    if name is None:
        return None
    from loopml.abtest import analyze_experiment

    try:
        verdict = analyze_experiment(name, srm_decides=False).verdict
    except InsufficientData as exc:
        _log.info("experiment %s gives no verdict yet: %s", name, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure fails closed, with its reason
        return f"experiment {name} could not be analysed: {exc}"
    if verdict["decision"] == "stop":
        return f"experiment {name}: {verdict['reason']}"
    return None


_EMPTY = {"requests": 0, "errors": 0, "error_rate": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}


def prediction_log_stats(uri: str | None) -> Stats:
    """Per-variant statistics of a deployment since a time, from the prediction log."""
    from loopml.monitoring import summarize

    def stats(name: str, since: float) -> Mapping[str, Mapping[str, float]]:
        return summarize(uri, deployment=name, since=since)

    return stats
