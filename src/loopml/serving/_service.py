"""The inference service behind every protocol: route a request to a variant, batch, predict, log.

A service holds a routing table of loaded variants (one for ``loopml serve MODEL_URI``, several for
a deployment). Each request is assigned by a sticky hash of its unit id (a header or a request
field named by the deployment), or at random by weight when it has none; shadow variants get a copy
of the request in the background and never affect the answer. The table is replaced whole
(``install``) when the deployment changes, so a request sees either the old or the new one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
import weakref
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loopml.abtest import BUCKETS, bucket
from loopml.errors import InvalidInput, LoopmlError, NotFound, Overloaded
from loopml.serving._batcher import Batcher, BatchingConfig
from loopml.serving._metrics import ServingMetrics
from loopml.serving._runtime import ModelRuntime

__all__ = ["InferenceService", "Prediction", "RoutingTable", "Variant", "VariantSpec"]

_log = logging.getLogger("loopml.serving")
ROLES = ("primary", "canary", "shadow")


class _PredictionSink(Protocol):
    def append(self, *args: Any, **kwargs: Any) -> str: ...


@dataclass(frozen=True)
class VariantSpec:
    """One variant of a deployment: a model URI, its traffic weight and role."""

    name: str
    model_uri: str
    weight: float = 100.0
    role: str = "primary"

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise InvalidInput("variant name must be 1 to 64 characters")
        if self.role not in ROLES:
            raise InvalidInput(f"variant role must be one of {', '.join(ROLES)}: {self.role!r}")
        if not 0 <= self.weight <= 100:
            raise InvalidInput(f"variant {self.name!r}: weight must be between 0 and 100")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "model_uri": self.model_uri,
            "weight": self.weight,
            "role": self.role,
        }


class Variant:
    """A loaded variant: its spec, its runtime and its batcher."""

    def __init__(
        self,
        spec: VariantSpec,
        runtime: ModelRuntime,
        config: BatchingConfig,
        metrics: ServingMetrics,
    ) -> None:
        self.spec = spec
        self.runtime = runtime
        self.model_name = str(runtime.info.get("name") or spec.name)
        self.model_version = str(runtime.info.get("version") or "1")
        labels = (self.model_name, self.model_version, spec.name)
        batch_hist = metrics.batch_size.labels(*labels)
        self.batcher = Batcher(
            runtime.predict_records,
            config,
            name=spec.name,
            on_batch=batch_hist.observe,
        )
        self.labels = labels
        self.input_names = (
            frozenset() if runtime.model.signature is None
            else frozenset(runtime.model.signature.input_names)
        )  # fmt: skip
        metrics.load_seconds.labels(*labels).set(runtime.load_seconds)
        self._metrics = metrics
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        batcher = weakref.ref(self.batcher)  # the gauge must not keep a retired model alive
        metrics.queue_depth.labels(*labels).set_function(
            lambda: 0 if (b := batcher()) is None else b.depth
        )

    def observe(self, protocol: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (label children cached per variant)."""
        pair = self._children.get((protocol, status))
        if pair is None:
            m = self._metrics
            pair = self._children[(protocol, status)] = (
                m.requests.labels(*self.labels, protocol, str(status)),
                m.latency.labels(*self.labels, protocol),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def with_spec(self, spec: VariantSpec) -> Variant:
        """The same loaded model under a new weight or role (no reload)."""
        clone = object.__new__(Variant)
        clone.__dict__.update(self.__dict__)
        clone.spec = spec
        return clone


class RoutingTable:
    """Variants and the bucket ranges that assign units to them."""

    def __init__(self, variants: Sequence[Variant], salt: str) -> None:
        self.variants = tuple(variants)
        self.salt = salt
        self.live = tuple(v for v in variants if v.spec.role != "shadow" and v.spec.weight > 0)
        self.shadows = tuple(v for v in self.variants if v.spec.role == "shadow")
        if not self.live:
            raise InvalidInput("a deployment needs a primary or canary variant with weight > 0")
        total = sum(v.spec.weight for v in self.live)
        edges, acc = [], 0.0
        for v in self.live:
            acc += v.spec.weight
            edges.append(round(acc / total * BUCKETS))
        edges[-1] = BUCKETS
        self._edges = edges

    def pick(self, unit: str | None) -> Variant:
        """The variant for ``unit`` (sticky), or a weighted random one without a unit."""
        if len(self.live) == 1:
            return self.live[0]
        b = random.randrange(BUCKETS) if unit is None else bucket(self.salt, unit)
        return self.live[bisect_right(self._edges, b)]

    def by_version(self, version: str) -> Variant:
        """The live variant serving model version ``version``."""
        for v in self.live:
            if v.model_version == version:
                return v
        served = ", ".join(sorted({v.model_version for v in self.live}))
        raise NotFound(f"version {served}, not {version}")


@dataclass(frozen=True)
class Prediction:
    """A prediction and where it came from."""

    outputs: list[Any]
    variant: Variant
    prediction_id: str

    @property
    def headers(self) -> dict[str, str]:
        """Response headers naming the variant, model version and prediction id."""
        return {
            "x-loopml-variant": self.variant.spec.name,
            "x-loopml-model-version": self.variant.model_version,
            "x-prediction-id": self.prediction_id,
        }


class InferenceService:
    """Routes, batches, predicts and logs for one served model or deployment."""

    def __init__(
        self,
        name: str,
        table: RoutingTable,
        *,
        unit_key: str | None = None,
        metrics: ServingMetrics | None = None,
        prediction_log: _PredictionSink | None = None,
    ) -> None:
        self.name = name
        self.table = table
        self._unit: tuple[str, str] | None = None
        self.unit_key = unit_key
        self.metrics = metrics or ServingMetrics()
        self.prediction_log = prediction_log
        self._background: set[asyncio.Task[Any]] = set()

    @classmethod
    def for_runtime(
        cls,
        runtime: ModelRuntime,
        *,
        batching: BatchingConfig | None = None,
        metrics: ServingMetrics | None = None,
        prediction_log: _PredictionSink | None = None,
    ) -> InferenceService:
        """A service for one loaded model (what ``loopml serve MODEL_URI`` runs)."""
        metrics = metrics or ServingMetrics()
        name = str(runtime.info.get("name") or "model")
        variant = Variant(
            VariantSpec("default", runtime.model_uri),
            runtime,
            batching or BatchingConfig(),
            metrics,
        )
        return cls(
            name, RoutingTable([variant], name), metrics=metrics, prediction_log=prediction_log
        )

    # -- what the protocols ask ------------------------------------------------------------------
    @property
    def primary(self) -> Variant:
        """The variant whose model describes the service (the first live one)."""
        table = self.table
        for v in table.live:
            if v.spec.role == "primary":
                return v
        return table.live[0]

    @property
    def unit_key(self) -> str | None:
        """The request field or header whose value assigns a request to a variant."""
        return None if self._unit is None else self._unit[0]

    @unit_key.setter
    def unit_key(self, key: str | None) -> None:
        # one assignment: a request sees the old key and header or the new ones
        self._unit = None if key is None else (key, key.lower().replace("_", "-"))

    def serves(self, name: str) -> bool:
        """Whether ``name`` (the deployment's or a live variant's model) names this service."""
        return name == self.name or any(v.model_name == name for v in self.table.live)

    def unit_of(self, first: Any, headers: Mapping[str, str]) -> str | None:
        """The unit id of a request: its header, else the field of its first instance."""
        unit = self._unit
        if unit is None:
            return None
        key, header = unit
        value = headers.get(header) or headers.get(key)
        if value is None and isinstance(first, dict):
            value = first.get(key)
        return None if value is None else str(value)

    def choose(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        version: str | None = None,
        first: Any = None,
    ) -> tuple[Variant, str | None]:
        """The variant a request goes to, and its unit id (``first``: its first instance).

        Raises:
            NotFound: ``version`` is not served here.
        """
        unit = self.unit_of(first, headers or {})
        table = self.table
        variant = table.by_version(version) if version is not None else table.pick(unit)
        return variant, unit

    async def predict(
        self,
        records: list[Any],
        *,
        headers: Mapping[str, str] | None = None,
        version: str | None = None,
        protocol: str = "native",
        route: tuple[Variant, str | None] | None = None,
    ) -> Prediction:
        """Predict ``records`` with the variant the request is routed to (or ``route``, from
        ``choose``, when the protocol needed the variant to read the request).

        Raises:
            InvalidInput: the records do not fit the model (the message names the field).
            NotFound: ``version`` is not served here.
            Overloaded: the variant's queue is full.
        """
        started = time.perf_counter()
        metrics = self.metrics
        table = self.table
        if route is None:
            route = self.choose(
                headers=headers, version=version, first=records[0] if records else None
            )
        variant, unit = route
        key = self.unit_key
        if key is not None:
            records = _without(records, key, variant.input_names)
        for shadow in table.shadows:  # a copy, whatever the primary answers
            self._shadow(shadow, records, unit)
        metrics.in_flight.inc()
        status = 200
        try:
            outputs = await variant.batcher.submit(records)
        except LoopmlError as exc:
            status = exc.http_status
            if not isinstance(exc, Overloaded):  # a refusal is not a prediction
                self._log(variant, records, None, started, unit, None, exc)
            exc.headers = {  # type: ignore[attr-defined]
                "x-loopml-variant": variant.spec.name,
                "x-loopml-model-version": variant.model_version,
            }
            raise
        except Exception as exc:
            status = 500
            self._log(variant, records, None, started, unit, None, exc)
            raise
        finally:
            metrics.in_flight.dec()
            variant.observe(protocol, status, time.perf_counter() - started)
        prediction_id = uuid.uuid4().hex
        self._log(variant, records, outputs, started, unit, prediction_id, None)
        return Prediction(outputs, variant, prediction_id)

    def _log(
        self,
        variant: Variant,
        records: list[Any],
        outputs: list[Any] | None,
        started: float,
        unit: str | None,
        prediction_id: str | None,
        error: BaseException | None,
    ) -> None:
        sink = self.prediction_log
        if sink is None:
            return
        try:
            sink.append(
                deployment=self.name,
                variant=variant.spec.name,
                model_name=variant.model_name,
                model_version=variant.model_version,
                inputs=records,
                outputs=outputs if outputs is not None else [None] * len(records),
                latency_ms=(time.perf_counter() - started) * 1000,
                unit_id=unit,
                prediction_id=prediction_id,
                status=_status(error),
                error=None if error is None else f"{type(error).__name__}: {error}"[:500],
            )
        except Exception:  # the log must never fail a request
            _log.exception("could not append to the prediction log")

    def _shadow(self, variant: Variant, records: list[Any], unit: str | None) -> None:
        async def run() -> None:
            started = time.perf_counter()
            try:
                outputs = await variant.batcher.submit(records)
            except Exception as exc:
                self.metrics.shadow_errors.labels(*variant.labels).inc()
                if not isinstance(exc, Overloaded):
                    self._log(variant, records, None, started, unit, None, exc)
                return
            self._log(variant, records, outputs, started, unit, uuid.uuid4().hex, None)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- hot swap ------------------------------------------------------------------------------
    def install(self, table: RoutingTable) -> list[Variant]:
        """Switch to ``table`` at once; returns the variants no longer served (to drain)."""
        old = self.table
        self.table = table
        self.metrics.swaps.inc()
        kept = {id(v.batcher) for v in table.variants}
        return [v for v in old.variants if id(v.batcher) not in kept]

    def info(self) -> dict[str, Any]:
        """What ``/model/info`` says: the primary model, plus every variant."""
        primary = self.primary
        info = dict(primary.runtime.info)
        info["deployment"] = self.name
        info["variants"] = [
            {
                **v.spec.to_dict(),
                "model_name": v.model_name,
                "model_version": v.model_version,
                "runtime": v.runtime.info.get("runtime"),
            }
            for v in self.table.variants
        ]
        return info


def _without(records: list[Any], key: str, inputs: frozenset[str]) -> list[Any]:
    """Records without the unit field, unless the model takes it as an input."""
    if key in inputs:
        return records
    out = []
    for r in records:
        if isinstance(r, dict) and key in r:
            r = {k: v for k, v in r.items() if k != key}
        out.append(r)
    return out


def _status(error: BaseException | None) -> str:
    """The prediction log's status: ok, rejected (the client's input: 4xx) or error (5xx)."""
    if error is None:
        return "ok"
    if isinstance(error, LoopmlError) and error.http_status < 500:
        return "rejected"
    return "error"
