"""Experiments on the metadata database: definitions, exposures, metric events, analysis.

An experiment names its variants and weights (or a deployment, whose live variants it then
mirrors: the salt is the deployment's name, so ``assign`` agrees with the inference server's
router), a traffic allocation (the share of units in the experiment; the rest are excluded),
its metrics and guardrails. Units are exposed once (the first exposure wins); events carry a
metric value per unit. ``analyze`` builds one row per exposed unit — a binomial metric is 1 if
the unit had the event, a continuous one the sum of its values, 0 without events — and reads
them with ``loopml.abtest.analyze``. For an experiment on a deployment, the prediction log's
units and variants are exposures too, and ``accuracy`` (the share of a unit's labelled
predictions that match their outcome) is a metric from the monitoring outcomes.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import func, insert, select, update

from loopml.abtest._analyze import METHODS, Analysis, Metric, analyze
from loopml.abtest._assign import BUCKETS, assign, bucket
from loopml.errors import AlreadyExists, InsufficientData, InvalidInput, InvalidState, NotFound
from loopml.store import Database, epoch_ms, now_ms, open_database
from loopml.store.tables import abtest_events, abtest_exposures, abtests, workspaces

__all__ = ["Experiment", "SqlExperimentStore"]

_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,254}$")
_UNIT = re.compile(r"^[^\s]{1,255}$")
MAX_RECORDS = 10_000
HOLDOUT = "holdout"
RESERVED = frozenset({"unit_id", "variant"})


@dataclass
class Experiment:
    """An A/B experiment's definition and status."""

    name: str
    variants: dict[str, float] = field(default_factory=dict)  # name -> weight
    metrics: list[dict[str, Any]] = field(default_factory=list)
    guardrails: list[str] = field(default_factory=list)
    control: str | None = None
    deployment: str | None = None
    salt: str | None = None
    allocation: float = 1.0
    holdout: float = 0.0  # share of included units kept on the control experience, as "holdout"
    method: str = "frequentist"
    alpha: float = 0.05
    description: str = ""
    status: str = "running"
    stop_reason: str = ""
    created_at: int | None = None  # ms since the epoch; set when stored
    stopped_at: int | None = None  # ms since the epoch; set when stopped

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInput("name must be 1-255 letters, digits, '_', '.', '-'")
        if not isinstance(self.variants, Mapping) or len(self.variants) < 2:
            raise InvalidInput("variants must map at least 2 variant names to weights")
        for v, w in self.variants.items():
            if not isinstance(v, str) or not _NAME.match(v):
                raise InvalidInput(f"variant name {v!r} must be 1-255 letters, digits, _ . -")
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0 < w < math.inf:
                raise InvalidInput(f"variants.{v}: the weight must be a positive finite number")
        self.variants = {str(k): float(v) for k, v in self.variants.items()}
        if not math.isfinite(sum(self.variants.values())):
            raise InvalidInput("variants: the weights are too large")
        if self.control is None:
            self.control = "control" if "control" in self.variants else next(iter(self.variants))
        if self.control not in self.variants:
            raise InvalidInput(f"control {self.control!r} is not one of the variants")
        if not isinstance(self.metrics, list) or not self.metrics:
            raise InvalidInput("metrics must list at least one metric")
        self.metrics = [_metric_spec(m, i) for i, m in enumerate(self.metrics)]
        names = [m["name"] for m in self.metrics]
        if len(set(names)) != len(names):
            raise InvalidInput("metric names must be unique")
        if not isinstance(self.guardrails, list) or not all(
            isinstance(g, str) for g in self.guardrails
        ):
            raise InvalidInput("guardrails must be a list of metric names")
        unknown = [g for g in self.guardrails if g not in names]
        if unknown:
            raise InvalidInput(f"guardrail {unknown[0]!r} is not one of the metrics")
        if isinstance(self.allocation, bool) or not isinstance(self.allocation, numbers.Real):
            raise InvalidInput("allocation must be a number in (0, 1]")
        if not 0 < float(self.allocation) <= 1:
            raise InvalidInput("allocation must be in (0, 1]")
        if self.method not in METHODS:
            raise InvalidInput(f"method must be one of {', '.join(METHODS)}")
        if not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 0.5:
            raise InvalidInput("alpha must be in (0, 0.5)")
        if self.deployment is not None and not isinstance(self.deployment, str):
            raise InvalidInput("deployment must be a deployment name")
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, numbers.Real):
            raise InvalidInput("holdout must be a number in [0, 0.5]")
        if not 0 <= float(self.holdout) <= 0.5:
            raise InvalidInput("holdout must be in [0, 0.5]")
        if HOLDOUT in self.variants:
            raise InvalidInput(f"{HOLDOUT!r} is reserved for the holdout group")
        if self.deployment is not None and float(self.holdout) > 0:
            raise InvalidInput(
                "an experiment on a deployment has no holdout (the router has none)"
            )
        if self.deployment is not None and float(self.allocation) < 1:
            raise InvalidInput(
                "an experiment on a deployment takes all its traffic (allocation 1)"
            )
        if self.salt is not None and not isinstance(self.salt, str):
            raise InvalidInput("salt must be a string")
        if not isinstance(self.description, str):
            raise InvalidInput("description must be a string")
        if self.deployment is not None and self.salt not in (None, self.deployment):
            raise InvalidInput("an experiment on a deployment is salted with its name")
        self.salt = self.salt or self.deployment or self.name

    def assign(self, unit_id: str) -> str | None:
        """The unit's variant, or None when the unit falls outside the allocation."""
        if not isinstance(unit_id, str) or not _UNIT.match(unit_id):
            raise InvalidInput("unit_id must be 1-255 characters without spaces")
        if self.allocation < 1:
            # a second hash decides who is in, so the variant split inside stays the router's
            if bucket(f"{self.salt}:allocation", unit_id) >= self.allocation * BUCKETS:
                return None
        if self.holdout > 0 and bucket(f"{self.salt}:holdout", unit_id) < self.holdout * BUCKETS:
            return HOLDOUT  # served the control experience, kept apart as a long-run baseline
        return assign(str(self.salt), unit_id, list(self.variants.items()))

    @property
    def split(self) -> dict[str, float]:
        """Each group's expected share of the included units (the holdout too)."""
        total = sum(self.variants.values())
        shares = {v: (1 - self.holdout) * w / total for v, w in self.variants.items()}
        if self.holdout > 0:
            shares[HOLDOUT] = float(self.holdout)
        return shares

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """From JSON-able data; unknown fields are an error."""
        if not isinstance(data, Mapping):
            raise InvalidInput("an experiment must be an object")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidInput(f"unknown experiment field {unknown[0]!r}")
        if "name" not in data:
            raise InvalidInput("experiment field 'name' is required")
        return cls(**dict(data))


def _metric_spec(m: Any, i: int) -> dict[str, Any]:
    if isinstance(m, str):
        m = {"name": m}
    if not isinstance(m, Mapping):
        raise InvalidInput(f"metrics[{i}] must be a name or an object")
    allowed = {"name", "kind", "higher_is_better", "numerator", "denominator"}
    unknown = sorted(set(m) - allowed)
    if unknown:
        raise InvalidInput(f"metrics[{i}]: unknown field {unknown[0]!r}")
    name = m.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"metrics[{i}].name must be 1-255 letters, digits, _ . -")
    if name in RESERVED:
        raise InvalidInput(f"metrics[{i}].name {name!r} is reserved")
    kind = m.get("kind", "ratio" if "numerator" in m else None)
    if kind not in (None, "binomial", "continuous", "ratio"):
        raise InvalidInput(f"metrics[{i}].kind must be binomial, continuous or ratio")
    better = m.get("higher_is_better", True)
    if not isinstance(better, bool):
        raise InvalidInput(f"metrics[{i}].higher_is_better must be true or false")
    spec = {"name": name, "kind": kind, "higher_is_better": better}
    if kind == "ratio":
        for part in ("numerator", "denominator"):
            if not isinstance(m.get(part), str):
                raise InvalidInput(f"metrics[{i}].{part} must name an event metric")
            spec[part] = m[part]
    return spec


class SqlExperimentStore:
    """Experiments, exposures and events of one workspace in the metadata database."""

    def __init__(self, database: Database | str, *, workspace: str = "default") -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.workspace = workspace

    def for_workspace(self, workspace: str) -> SqlExperimentStore:
        """The same database seen from another workspace."""
        return SqlExperimentStore(self.db, workspace=workspace)

    def _row(self, conn: Any, name: str, *, lock: bool = False) -> Any:
        query = select(abtests).where(
            abtests.c.workspace == self.workspace, abtests.c.name == name
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"experiment {name!r} does not exist")
        return row

    @staticmethod
    def _from_row(row: Any) -> Experiment:
        spec = orjson.loads(row.spec)
        spec["status"] = row.status
        return Experiment.from_dict(spec)

    def create(self, experiment: Experiment) -> Experiment:
        """Store a new experiment (running)."""
        experiment.status, experiment.stop_reason = "running", ""
        now = now_ms()
        experiment.created_at, experiment.stopped_at = now, None
        with self.db.write() as conn:
            exists = conn.execute(
                select(workspaces.c.name).where(workspaces.c.name == self.workspace)
            ).first()
            if exists is None:
                raise NotFound(f"workspace {self.workspace!r} does not exist")
            taken = conn.execute(
                select(abtests.c.experiment_id).where(
                    abtests.c.workspace == self.workspace, abtests.c.name == experiment.name
                )
            ).first()
            if taken is not None:
                raise AlreadyExists(f"experiment {experiment.name!r} already exists")
            conn.execute(
                insert(abtests).values(
                    workspace=self.workspace,
                    name=experiment.name,
                    spec=orjson.dumps(experiment.to_dict()).decode(),
                    status="running",
                    created_at=now,
                    updated_at=now,
                )
            )
        return experiment

    def get(self, name: str) -> Experiment:
        """One experiment by name."""
        with self.db.read() as conn:
            return self._from_row(self._row(conn, name))

    def list(self) -> list[Experiment]:
        """Every experiment of the workspace, by name."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(abtests)
                .where(abtests.c.workspace == self.workspace)
                .order_by(abtests.c.name)
            ).all()
        return [self._from_row(r) for r in rows]

    def stop(self, name: str, reason: str = "") -> Experiment:
        """Stop an experiment: exposures and events are refused afterwards."""
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            experiment = self._from_row(row)
            if experiment.status == "stopped":
                raise InvalidState(f"experiment {name!r} is already stopped")
            experiment.status, experiment.stop_reason = "stopped", str(reason)[:1000]
            experiment.stopped_at = now_ms()
            conn.execute(
                update(abtests)
                .where(abtests.c.experiment_id == row.experiment_id)
                .values(
                    spec=orjson.dumps(experiment.to_dict()).decode(),
                    status="stopped",
                    updated_at=experiment.stopped_at,
                )
            )
        return experiment

    def _running(self, conn: Any, name: str) -> tuple[int, Experiment]:
        row = self._row(conn, name)
        experiment = self._from_row(row)
        if experiment.status != "running":
            raise InvalidState(f"experiment {name!r} is stopped")
        return int(row.experiment_id), experiment

    def log_exposures(self, name: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Record first exposures (``unit_id``, optional ``variant`` — default: the unit's
        assignment — and ``timestamp``); later exposures of a unit are ignored (an insert that
        skips conflicts, so concurrent writers agree). Returns how many units were new. All or
        nothing."""
        rows = _records(records, ("unit_id", "variant", "timestamp"))
        with self.db.write() as conn:
            exp_id, experiment = self._running(conn, name)
            prepared: dict[str, dict[str, Any]] = {}
            for i, r in enumerate(rows):
                unit = r.get("unit_id")
                if not isinstance(unit, str) or not _UNIT.match(unit):
                    raise InvalidInput(f"exposures[{i}].unit_id must be 1-255 characters")
                variant = r.get("variant") or experiment.assign(unit)
                if variant is not None and not isinstance(variant, str):
                    raise InvalidInput(f"exposures[{i}].variant must be a variant name")
                if variant is None:
                    raise InvalidInput(f"exposures[{i}]: unit {unit!r} is outside the allocation")
                if variant not in experiment.split:
                    raise InvalidInput(f"exposures[{i}].variant {variant!r} is not a variant")
                stamp = epoch_ms(r.get("timestamp"), f"exposures[{i}].timestamp")
                seen = prepared.get(unit)
                if seen is None or stamp < seen["time"]:
                    prepared[unit] = {"unit_id": unit, "variant": variant, "time": stamp}
            new = [{**v, "experiment_id": exp_id} for v in prepared.values()]
            inserted = 0
            for start in range(0, len(new), 1000):  # first exposure wins, also when racing
                stmt = _insert(self.db.dialect, abtest_exposures).values(new[start : start + 1000])
                inserted += conn.execute(stmt.on_conflict_do_nothing()).rowcount
        return inserted

    def log_events(self, name: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Record metric events (``unit_id``, ``metric``, ``value`` default 1, ``timestamp``)."""
        rows = _records(records, ("unit_id", "metric", "value", "timestamp"))
        with self.db.write() as conn:
            exp_id, experiment = self._running(conn, name)
            kinds = {m["name"]: m["kind"] for m in experiment.metrics}
            metrics = set(kinds) | {
                m[p] for m in experiment.metrics for p in ("numerator", "denominator") if p in m
            }
            values = []
            for i, r in enumerate(rows):
                unit = r.get("unit_id")
                if not isinstance(unit, str) or not _UNIT.match(unit):
                    raise InvalidInput(f"events[{i}].unit_id must be 1-255 characters")
                metric = r.get("metric")
                if not isinstance(metric, str) or metric not in metrics:
                    raise InvalidInput(f"events[{i}].metric {metric!r} is not a metric")
                value = r.get("value", 1.0)
                if isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
                    raise InvalidInput(f"events[{i}].value must be a finite number")
                if kinds.get(metric) == "binomial" and float(value) not in (0.0, 1.0):
                    raise InvalidInput(f"events[{i}].value of binomial {metric!r} must be 0 or 1")
                values.append(
                    {
                        "experiment_id": exp_id,
                        "unit_id": unit,
                        "metric": r["metric"],
                        "value": float(value),
                        "time": epoch_ms(r.get("timestamp"), f"events[{i}].timestamp"),
                    }
                )
            conn.execute(insert(abtest_events), values)
        return len(values)

    def counts(self, name: str) -> dict[str, int]:
        """Exposed units per variant."""
        with self.db.read() as conn:
            exp_id = int(self._row(conn, name).experiment_id)
            rows = conn.execute(
                select(abtest_exposures.c.variant, func.count())
                .where(abtest_exposures.c.experiment_id == exp_id)
                .group_by(abtest_exposures.c.variant)
            ).all()
        return {str(v): int(n) for v, n in rows}

    def unit_frame(self, name: str, *, predictions: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per exposed unit: variant and each metric's value (see the module doc)."""
        with self.db.read() as conn:
            row = self._row(conn, name)
            experiment = self._from_row(row)
            exp_id = int(row.experiment_id)
            exposures = pd.DataFrame(
                conn.execute(
                    select(abtest_exposures.c.unit_id, abtest_exposures.c.variant).where(
                        abtest_exposures.c.experiment_id == exp_id
                    )
                ).all(),
                columns=["unit_id", "variant"],
            )
            events = pd.DataFrame(
                conn.execute(
                    select(
                        abtest_events.c.unit_id, abtest_events.c.metric, abtest_events.c.value
                    ).where(abtest_events.c.experiment_id == exp_id)
                ).all(),
                columns=["unit_id", "metric", "value"],
            )
        if predictions is not None and not predictions.empty:
            logged = predictions.dropna(subset=["unit_id"]).sort_values("time", kind="stable")
            logged = logged[logged["variant"].isin(list(experiment.variants))]
            first = logged.drop_duplicates("unit_id")[["unit_id", "variant"]]
            exposures = pd.concat([exposures, first]).drop_duplicates("unit_id", keep="first")
        frame = exposures.set_index("unit_id")
        kinds = {m["name"]: m["kind"] for m in experiment.metrics}
        wanted = set(kinds) | {
            m.get(p) for m in experiment.metrics for p in ("numerator", "denominator")
        }
        for metric in sorted(x for x in wanted if x):
            rows = events[events["metric"] == metric]
            how = "max" if kinds.get(metric) == "binomial" else "sum"  # kind None: from data
            per_unit = rows.groupby("unit_id")["value"].agg(how)
            frame[metric] = per_unit.reindex(frame.index).fillna(0.0)
        if predictions is not None and "accuracy" in kinds and "correct" in predictions:
            scored = predictions.dropna(subset=["unit_id", "correct"])
            exposed = frame["variant"].reindex(scored["unit_id"]).to_numpy()
            scored = scored[scored["variant"].to_numpy() == exposed]  # the exposed variant's
            frame["accuracy"] = scored.groupby("unit_id")["correct"].mean().reindex(frame.index)
        return frame.reset_index()

    def analyze(
        self,
        name: str,
        *,
        method: str | None = None,
        predictions: pd.DataFrame | None = None,
        **kwargs: Any,
    ) -> Analysis:
        """Analyse an experiment's exposures and events with its metrics and guardrails."""
        experiment = self.get(name)
        frame = self.unit_frame(name, predictions=predictions)
        if frame.empty:
            raise InsufficientData(f"experiment {name!r} has no exposed units yet")
        metrics = [
            Metric(
                m["name"],
                kind=None if m["kind"] in (None, "ratio") else m["kind"],
                numerator=m.get("numerator"),
                denominator=m.get("denominator"),
                higher_is_better=m["higher_is_better"],
            )
            for m in experiment.metrics
        ]
        return analyze(
            frame,
            variant="variant",
            metrics=metrics,
            control=experiment.control,
            method=method or experiment.method,
            guardrails=experiment.guardrails,
            weights=experiment.split,
            alpha=experiment.alpha,
            **kwargs,
        )


def _insert(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def _records(records: Any, fields: tuple[str, ...]) -> list[Mapping[str, Any]]:
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise InvalidInput("records must be a list of objects")
    if not records:
        raise InvalidInput("records must not be empty")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise InvalidInput(f"records[{i}] must be an object")
        unknown = sorted(set(r) - set(fields))
        if unknown:
            raise InvalidInput(f"records[{i}]: unknown field {unknown[0]!r}")
    return list(records)
