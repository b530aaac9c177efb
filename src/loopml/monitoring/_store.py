"""Monitoring state on the metadata database: reference profiles, outcomes, alert rules/events."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import delete, func, insert, select, update

from loopml.errors import AlreadyExists, InvalidInput, NotFound
from loopml.monitoring._profile import ReferenceProfile
from loopml.store import Database, epoch_ms, now_ms, open_database
from loopml.store.tables import alert_events, alert_rules, monitor_profiles, outcomes, workspaces

__all__ = [
    "AlertEvent",
    "AlertRule",
    "SqlMonitorStore",
    "parse_duration",
]

MAX_OUTCOMES_PER_CALL = 10_000  # per HTTP request
MAX_DURATION_SECONDS = 3650 * 86400.0
_ID = re.compile(r"^[\w.:@/+-]{1,255}$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,254}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
OPS = (">", ">=", "<", "<=")
NOTIFIER_TYPES = ("webhook", "log", "action", "pipeline")


def parse_duration(value: str | float | int, what: str = "window") -> float:
    """Seconds in ``"30s"``, ``"10m"``, ``"24h"``, ``"7d"`` (or a number of seconds)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a duration such as '10m' or '24h'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(f"{what} {value!r} is not a duration such as '10m', '24h', '7d'")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"{what} must be positive")
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidInput(f"{what} must be at most 3650d")
    return seconds


@dataclass
class AlertRule:
    """What to watch on a deployment, when it is bad, and whom to tell.

    ``metric``: ``drift_share``, ``drift:<column>`` (the column's drift statistic),
    ``prediction_drift``, ``quality:<metric>`` (e.g. ``quality:accuracy``),
    ``quality_drop:<metric>`` (relative drop below the version's baseline),
    ``error_rate``, ``latency_p50_ms``, ``latency_p99_ms`` or ``requests``.
    """

    name: str
    deployment: str
    metric: str
    op: str
    threshold: float
    window: str = "1h"
    min_samples: int = 100
    cooldown: str = "1h"
    variant: str | None = None
    notifiers: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInput("name must be 1-255 letters, digits, '_', '.', '-'")
        if not isinstance(self.deployment, str) or not 0 < len(self.deployment) <= 255:
            raise InvalidInput("deployment must be a deployment name (1-255 characters)")
        if self.variant is not None and not isinstance(self.variant, str):
            raise InvalidInput("variant must be a string")
        if not isinstance(self.description, str):
            raise InvalidInput("description must be a string")
        from loopml.monitoring._metrics import validate_metric

        validate_metric(self.metric)
        if self.op not in OPS:
            raise InvalidInput(f"op must be one of {', '.join(OPS)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real):
            raise InvalidInput("threshold must be a number")
        try:
            self.threshold = float(self.threshold)
        except OverflowError:
            raise InvalidInput("threshold must be finite") from None
        if not math.isfinite(self.threshold):
            raise InvalidInput("threshold must be finite")
        for what in ("window", "cooldown"):
            value = getattr(self, what)
            seconds = parse_duration(value, what)
            if not isinstance(value, str):
                setattr(self, what, f"{seconds:g}s")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int):
            raise InvalidInput("min_samples must be an integer")
        if not 1 <= self.min_samples <= 10**12:
            raise InvalidInput("min_samples must be between 1 and 10^12")
        if not isinstance(self.notifiers, list):
            raise InvalidInput("notifiers must be a list")
        for n in self.notifiers:
            _check_notifier(n)

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the alert condition."""
        t = self.threshold
        return {">": value > t, ">=": value >= t, "<": value < t, "<=": value <= t}[self.op]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRule:
        """A rule from JSON-able data; unknown fields are an error."""
        if not isinstance(data, Mapping):
            raise InvalidInput("an alert rule must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown alert rule field {unknown[0]!r}")
        missing = [k for k in ("name", "deployment", "metric", "op", "threshold") if k not in data]
        if missing:
            raise InvalidInput(f"alert rule field {missing[0]!r} is required")
        return cls(**dict(data))


def _check_notifier(n: Any) -> None:
    from loopml.registry import validate_webhook_url

    if not isinstance(n, Mapping) or n.get("type") not in NOTIFIER_TYPES:
        raise InvalidInput(f"a notifier must be an object with type one of {NOTIFIER_TYPES}")
    if n["type"] == "webhook":
        validate_webhook_url(n.get("url"))
        secret = n.get("secret")
        if secret is not None and not isinstance(secret, str):
            raise InvalidInput("a webhook notifier's secret must be a string")
    if n["type"] == "action" and not (isinstance(n.get("name"), str) and n["name"]):
        raise InvalidInput("an action notifier needs the name of a registered action")
    if n["type"] == "pipeline":
        if not (isinstance(n.get("pipeline"), str) and n["pipeline"]):
            raise InvalidInput("a pipeline notifier needs the name of the pipeline to run")
        if not isinstance(n.get("params", {}), Mapping):
            raise InvalidInput("a pipeline notifier's params must be an object")


@dataclass
class AlertEvent:
    """A fired or resolved alert with its value, evidence and notification results."""

    seq: int
    rule: str
    deployment: str
    state: str
    time: int  # ms since the epoch
    value: float | None
    evidence: dict[str, Any]
    deliveries: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _json_scalar(value: Any, what: str) -> str:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # NumPy scalars
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{what} must be a finite number, a string or a boolean")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise InvalidInput(f"{what} is out of range")
    if isinstance(value, str) and len(value) > 10_000:
        raise InvalidInput(f"{what} is longer than 10,000 characters")
    if value is None or not isinstance(value, (str, bool, numbers.Real)):
        raise InvalidInput(f"{what} must be a number, a string or a boolean")
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int, float)):
        value = float(value)
    return orjson.dumps(value).decode()


def validate_outcome(record: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """A checked outcome row: one of prediction_id/unit_id, a scalar value, a time (ms)."""
    where = "" if index is None else f"outcomes[{index}]."
    if not isinstance(record, Mapping):
        raise InvalidInput(f"{where or 'an outcome'} must be an object")
    unknown = sorted(set(record) - {"prediction_id", "unit_id", "value", "timestamp"})
    if unknown:
        raise InvalidInput(f"unknown outcome field {where}{unknown[0]}")
    pid, uid = record.get("prediction_id"), record.get("unit_id")
    if (pid is None) == (uid is None):
        raise InvalidInput(f"{where}prediction_id or unit_id is required (exactly one)")
    for name, value in (("prediction_id", pid), ("unit_id", uid)):
        if value is not None and (not isinstance(value, str) or not _ID.match(value)):
            raise InvalidInput(f"{where}{name} must be 1-255 characters without spaces")
    if "value" not in record:
        raise InvalidInput(f"{where}value is required")
    return {
        "prediction_id": pid,
        "unit_id": uid,
        "value": _json_scalar(record["value"], f"{where}value"),
        "time": epoch_ms(record.get("timestamp"), f"{where}timestamp"),
    }


class SqlMonitorStore:
    """Profiles, outcomes and alerts of one workspace in the metadata database."""

    def __init__(self, database: Database | str, *, workspace: str = "default") -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.workspace = workspace

    def for_workspace(self, workspace: str) -> SqlMonitorStore:
        """The same database seen from another workspace."""
        return SqlMonitorStore(self.db, workspace=workspace)

    def _check_workspace(self, conn: Any) -> None:
        query = select(workspaces.c.name).where(workspaces.c.name == self.workspace)
        if conn.execute(query).first() is None:
            raise NotFound(f"workspace {self.workspace!r} does not exist")

    # -- reference profiles ------------------------------------------------------------------
    def save_profile(self, subject: str, profile: ReferenceProfile) -> None:
        """Store (or replace) the reference profile of ``subject``."""
        body = orjson.dumps(profile.to_dict()).decode()
        values = {
            "source": (profile.source or "")[:512],
            "n_rows": profile.n_rows,
            "body": body,
            "created_at": now_ms(),
        }
        where = (monitor_profiles.c.workspace == self.workspace) & (
            monitor_profiles.c.subject == subject
        )
        for attempt in range(2):  # a concurrent first save wins the insert: update it then
            try:
                with self.db.write() as conn:
                    self._check_workspace(conn)
                    if conn.execute(
                        update(monitor_profiles).where(where).values(**values)
                    ).rowcount:
                        return
                    conn.execute(
                        insert(monitor_profiles).values(
                            workspace=self.workspace, subject=subject, **values
                        )
                    )
                return
            except AlreadyExists:
                if attempt:
                    raise

    def get_profile(self, subject: str) -> ReferenceProfile | None:
        """The stored reference profile of ``subject``, or None."""
        with self.db.read() as conn:
            body = conn.execute(
                select(monitor_profiles.c.body).where(
                    monitor_profiles.c.workspace == self.workspace,
                    monitor_profiles.c.subject == subject,
                )
            ).scalar()
        return None if body is None else ReferenceProfile.from_dict(orjson.loads(body))

    # -- outcomes ----------------------------------------------------------------------------
    def log_outcomes(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Store ground-truth outcomes (all or none); returns how many were stored."""
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
            raise InvalidInput("outcomes must be a list of objects")
        if not records:
            raise InvalidInput("outcomes must not be empty")
        rows = [
            validate_outcome(r, i if len(records) > 1 else None) for i, r in enumerate(records)
        ]
        received = now_ms()
        with self.db.write() as conn:
            self._check_workspace(conn)
            conn.execute(
                insert(outcomes),
                [{**r, "workspace": self.workspace, "received_at": received} for r in rows],
            )
        return len(rows)

    def outcomes(
        self,
        *,
        prediction_ids: Iterable[str] = (),
        unit_ids: Iterable[str] = (),
        since_ms: int | None = None,
    ) -> pd.DataFrame:
        """Outcomes for the given ids in the order received, as a DataFrame (``since_ms``
        bounds the outcome time of unit-id outcomes only)."""
        pids, uids = sorted(set(prediction_ids)), sorted(set(unit_ids))
        parts: list[pd.DataFrame] = []
        columns = ["prediction_id", "unit_id", "value", "time"]
        with self.db.read() as conn:
            for col, ids in (("prediction_id", pids), ("unit_id", uids)):
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    query = select(
                        outcomes.c.prediction_id,
                        outcomes.c.unit_id,
                        outcomes.c.value,
                        outcomes.c.time,
                        outcomes.c.seq,
                    ).where(outcomes.c.workspace == self.workspace, outcomes.c[col].in_(chunk))
                    if since_ms is not None and col == "unit_id":
                        query = query.where(outcomes.c.time >= since_ms)
                    rows = conn.execute(query).all()
                    if rows:
                        parts.append(pd.DataFrame(rows, columns=[*columns, "seq"]))
        if not parts:
            return pd.DataFrame(columns=columns)
        frame = pd.concat(parts, ignore_index=True).sort_values("seq")
        frame["value"] = [orjson.loads(v) for v in frame["value"]]
        return frame[columns].reset_index(drop=True)

    def count_outcomes(self) -> int:
        """How many outcomes the workspace holds."""
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(outcomes.c.workspace == self.workspace)
                ).scalar_one()
            )

    # -- alert rules and events --------------------------------------------------------------
    def put_rule(self, rule: AlertRule, *, replace: bool = True) -> AlertRule:
        """Create a rule, or replace the one of the same name (``replace=False``: error)."""
        spec = orjson.dumps(rule.to_dict()).decode()
        for attempt in range(2):
            try:
                self._put_rule(rule, spec, replace)
                break
            except AlreadyExists:
                if attempt or not replace:  # a concurrent create won: replace it
                    raise
        return rule

    def _put_rule(self, rule: AlertRule, spec: str, replace: bool) -> None:
        now = now_ms()
        with self.db.write() as conn:
            self._check_workspace(conn)
            row = conn.execute(
                select(alert_rules.c.rule_id).where(
                    alert_rules.c.workspace == self.workspace, alert_rules.c.name == rule.name
                )
            ).first()
            if row is not None and not replace:
                raise AlreadyExists(f"alert rule {rule.name!r} already exists")
            if row is not None:
                conn.execute(
                    update(alert_rules)
                    .where(alert_rules.c.rule_id == row.rule_id)
                    .values(deployment=rule.deployment, spec=spec, updated_at=now)
                )
            else:
                conn.execute(
                    insert(alert_rules).values(
                        workspace=self.workspace,
                        name=rule.name,
                        deployment=rule.deployment,
                        spec=spec,
                        created_at=now,
                        updated_at=now,
                    )
                )

    def list_rules(self, deployment: str | None = None) -> list[AlertRule]:
        """The workspace's rules (of one deployment), by name."""
        query = select(alert_rules.c.spec).where(alert_rules.c.workspace == self.workspace)
        if deployment is not None:
            query = query.where(alert_rules.c.deployment == deployment)
        with self.db.read() as conn:
            specs = conn.execute(query.order_by(alert_rules.c.name)).scalars().all()
        return [AlertRule.from_dict(orjson.loads(s)) for s in specs]

    def get_rule(self, name: str) -> AlertRule:
        """One rule by name."""
        with self.db.read() as conn:
            spec = conn.execute(self._rule_query(name, alert_rules.c.spec)).scalar()
        if spec is None:
            raise NotFound(f"alert rule {name!r} does not exist")
        return AlertRule.from_dict(orjson.loads(spec))

    def delete_rule(self, name: str) -> None:
        """Delete a rule and its events."""
        with self.db.write() as conn:
            rule_id = conn.execute(self._rule_query(name, alert_rules.c.rule_id)).scalar()
            if rule_id is None:
                raise NotFound(f"alert rule {name!r} does not exist")
            conn.execute(delete(alert_events).where(alert_events.c.rule_id == rule_id))
            conn.execute(delete(alert_rules).where(alert_rules.c.rule_id == rule_id))

    def _rule_query(self, name: str, column: Any) -> Any:
        return select(column).where(
            alert_rules.c.workspace == self.workspace, alert_rules.c.name == name
        )

    def add_event(
        self,
        rule: str,
        state: str,
        value: float | None,
        evidence: Mapping[str, Any],
        deliveries: Sequence[Mapping[str, Any]] = (),
        *,
        at_ms: int | None = None,
        transition: bool = False,
    ) -> AlertEvent | None:
        """Record that ``rule``'s alert fired or resolved. ``transition=True``: only if that
        changes its state (checked under the rule's lock, so two evaluators racing record one
        event); else None."""
        if state not in ("fired", "resolved"):
            raise InvalidInput("state must be 'fired' or 'resolved'")
        now = at_ms or now_ms()
        with self.db.write() as conn:
            query = self._rule_query(rule, alert_rules.c.rule_id).add_columns(
                alert_rules.c.deployment
            )
            row = conn.execute(query.with_for_update()).first()
            if row is None:
                raise NotFound(f"alert rule {rule!r} does not exist")
            if transition:
                last = conn.execute(
                    select(alert_events.c.state)
                    .where(alert_events.c.rule_id == row.rule_id)
                    .order_by(alert_events.c.seq.desc())
                    .limit(1)
                ).scalar()
                if (last == "fired") == (state == "fired"):
                    return None
            seq = conn.execute(
                insert(alert_events)
                .values(
                    rule_id=row.rule_id,
                    state=state,
                    time=now,
                    value=value,
                    evidence=orjson.dumps(evidence, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                    deliveries=orjson.dumps(list(deliveries)).decode(),
                )
                .returning(alert_events.c.seq)
            ).scalar_one()
        return AlertEvent(
            int(seq), rule, row.deployment, state, now, value, dict(evidence), list(deliveries)
        )

    def set_deliveries(self, seq: int, deliveries: Sequence[Mapping[str, Any]]) -> None:
        """Record the notification results of an event."""
        with self.db.write() as conn:
            conn.execute(
                update(alert_events)
                .where(alert_events.c.seq == seq)
                .values(deliveries=orjson.dumps(list(deliveries)).decode())
            )

    def events(
        self, *, rule: str | None = None, deployment: str | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        """The newest alert events first (of one rule or deployment)."""
        query = (
            select(
                alert_events.c.seq,
                alert_rules.c.name,
                alert_rules.c.deployment,
                alert_events.c.state,
                alert_events.c.time,
                alert_events.c.value,
                alert_events.c.evidence,
                alert_events.c.deliveries,
            )
            .join(alert_rules, alert_rules.c.rule_id == alert_events.c.rule_id)
            .where(alert_rules.c.workspace == self.workspace)
        )
        if rule is not None:
            query = query.where(alert_rules.c.name == rule)
        if deployment is not None:
            query = query.where(alert_rules.c.deployment == deployment)
        query = query.order_by(alert_events.c.seq.desc()).limit(max(1, min(int(limit), 10_000)))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            AlertEvent(
                int(r.seq),
                r.name,
                r.deployment,
                r.state,
                int(r.time),
                r.value,
                orjson.loads(r.evidence),
                orjson.loads(r.deliveries),
            )
            for r in rows
        ]
