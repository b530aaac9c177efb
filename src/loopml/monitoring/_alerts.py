"""Alert rules evaluated over a deployment's window: fire, resolve, notify, export gauges.

A rule fires when its metric meets the condition on at least ``min_samples`` samples and it is
not already firing, unless it fired less than ``cooldown`` ago; a firing rule resolves when the
condition no longer holds (on enough samples). Every fired and resolved alert is stored with its
value, evidence and the notifiers' results. Webhooks are POSTed as JSON, signed like the
registry's (``X-Loopml-Signature``) when the notifier has a secret, and retried with backoff.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from loopml.errors import InvalidInput
from loopml.monitoring._check import Monitor
from loopml.monitoring._metrics import degradation
from loopml.monitoring._predlog import summarize
from loopml.monitoring._store import AlertEvent, AlertRule, parse_duration

__all__ = ["AlertEngine", "RuleStatus", "register_action", "register_notifier"]

_log = logging.getLogger("loopml.monitoring.alerts")
_ACTIONS: dict[str, Callable[[AlertEvent, AlertRule], Any]] = {}
_NOTIFIERS: dict[str, Callable[[dict[str, Any], AlertEvent, AlertRule], dict[str, Any]]] = {}


def register_action(name: str, action: Callable[[AlertEvent, AlertRule], Any]) -> None:
    """Make ``action(event, rule)`` callable from rules by ``{"type": "action", "name": name}``
    (how a drift or quality alert starts a retraining pipeline)."""
    if not isinstance(name, str) or not name or not callable(action):
        raise InvalidInput("register_action needs a name and a callable")
    _ACTIONS[name] = action


def register_notifier(
    kind: str, handler: Callable[[dict[str, Any], AlertEvent, AlertRule], dict[str, Any]]
) -> None:
    """Deliver notifiers of type ``kind`` with ``handler(notifier, event, rule)``, which returns
    the delivery result (``loopml.pipelines`` registers ``pipeline``: start a pipeline run)."""
    if kind not in ("pipeline",) or not callable(handler):
        raise InvalidInput("register_notifier takes the notifier type 'pipeline' and a callable")
    _NOTIFIERS[kind] = handler


@dataclass
class RuleStatus:
    """One evaluation of a rule: its value, sample count, state and any new event."""

    rule: str
    deployment: str
    value: float | None
    samples: int
    state: str  # "ok", "firing", "cooldown" (bad, but fired too recently), "insufficient"
    # (too few samples), "error"
    event: AlertEvent | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "rule": self.rule,
            "deployment": self.deployment,
            "value": self.value,
            "samples": self.samples,
            "state": self.state,
            "event": self.event.to_dict() if self.event else None,
            "detail": self.detail,
        }


class AlertEngine:
    """Evaluates every rule of a workspace, records alerts, notifies, and keeps gauges."""

    def __init__(
        self,
        monitor: Monitor | None = None,
        *,
        registry: Any = None,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.monitor = monitor or Monitor()
        self.store = self.monitor.store
        self.retries, self.backoff, self._sleep = retries, backoff_seconds, sleep
        self._gauges = _Gauges(registry)

    @property
    def metrics_registry(self) -> Any:
        """The prometheus_client registry holding this engine's gauges."""
        return self._gauges.registry

    def measure(self, rule: AlertRule, now: float) -> tuple[float | None, int, dict[str, Any]]:
        """(value, samples, evidence) of a rule's metric over its window ending ``now``."""
        metric, _, arg = rule.metric.partition(":")
        if metric in ("drift_share", "drift", "prediction_drift"):
            try:
                report = self.monitor.check(
                    rule.deployment, rule.window, variant=rule.variant, now=now
                )
            except InvalidInput as exc:
                return None, 0, {"reason": str(exc)}
            samples = int(report.subject.get("n_predictions", 0))
            evidence = {
                "drifted_columns": report.drifted_columns,
                "share_drifted": report.share_drifted,
                "scores": {n: c.effect_size for n, c in report.columns.items()},
                "untested": {n: c.note for n, c in report.columns.items() if c.note},
                **report.subject,
            }
            self._gauges.drift(rule.deployment, report)
            if metric == "drift_share":
                return report.share_drifted, samples, evidence
            if metric == "prediction_drift":
                if report.prediction is None:
                    return None, 0, {**evidence, "reason": "no prediction drift available"}
                return report.prediction.effect_size, samples, evidence
            if arg not in report.columns:
                return None, 0, {**evidence, "reason": f"column {arg!r} was not compared"}
            return report.columns[arg].effect_size, samples, evidence
        if metric in ("quality", "quality_drop"):
            q = self.monitor.quality(rule.deployment, rule.window, variant=rule.variant, now=now)
            self._gauges.quality(rule.deployment, q)
            if not q.variants:
                return None, 0, {"reason": "no predictions in the window"}
            name = rule.variant or max(q.variants, key=lambda v: q.variants[v]["n_predictions"])
            row = q.variants.get(name, {})
            samples = int(row.get("n_labelled", 0))
            live = row.get(arg)
            evidence = {"variant": name, "quality": row, "baseline": q.baselines.get(name, {})}
            if metric == "quality":
                return live, samples, evidence
            return degradation(arg, live, q.baselines.get(name, {}).get(arg)), samples, evidence
        end = now
        summary = summarize(
            self.monitor.log_uri,
            deployment=rule.deployment,
            since=end - parse_duration(rule.window),
            until=end,
            variant=rule.variant,
        )
        requests = sum(int(s["requests"]) for s in summary.values())
        if not summary:
            return None, 0, {"reason": "no requests in the window"}
        if metric == "requests":
            return float(requests), requests, {"variants": summary}
        if metric == "error_rate":
            errors = sum(int(s["errors"]) for s in summary.values())
            return errors / requests, requests, {"variants": summary}
        key = "p50_ms" if metric == "latency_p50_ms" else "p99_ms"
        worst = max(float(s[key]) for s in summary.values())
        return worst, requests, {"variants": summary}

    def evaluate(self, rule: AlertRule, now: float | None = None) -> RuleStatus:
        """Evaluate one rule: fire or resolve its alert when its state changes. Any failure
        (a model that cannot load, a rule deleted meanwhile, a locked database) is reported
        as state "error" and does not stop the other rules."""
        try:
            return self._evaluate(rule, time.time() if now is None else now)
        except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the others
            _log.exception("alert rule %s could not be evaluated", rule.name)
            return RuleStatus(rule.name, rule.deployment, None, 0, "error", detail=str(exc))

    def _evaluate(self, rule: AlertRule, now: float) -> RuleStatus:
        history = self.store.events(rule=rule.name, limit=50)
        firing = bool(history) and history[0].state == "fired"
        value, samples, evidence = self.measure(rule, now)
        if value is None or samples < rule.min_samples:
            self._gauges.alert(rule, firing, value)
            reason = evidence.get("reason", f"{samples} samples, fewer than {rule.min_samples}")
            state = "firing" if firing else "insufficient"
            return RuleStatus(rule.name, rule.deployment, value, samples, state, detail=reason)
        bad = rule.holds(value)
        event = None
        state = "firing" if firing else "ok"
        if bad and not firing:
            fired = next((e for e in history if e.state == "fired"), None)
            cooldown_ms = parse_duration(rule.cooldown, "cooldown") * 1000
            if fired is None or now * 1000 - fired.time >= cooldown_ms:
                event = self._record(rule, "fired", value, evidence, now)
                firing = event is not None or firing
                state = "firing"
            else:
                state = "cooldown"
        elif not bad and firing:
            event = self._record(rule, "resolved", value, evidence, now)
            firing, state = False, "ok"
        self._gauges.alert(rule, firing, value)
        return RuleStatus(rule.name, rule.deployment, value, samples, state, event)

    def run_once(self, now: float | None = None) -> list[RuleStatus]:
        """Evaluate every rule of the workspace once; gauges of deleted rules are dropped."""
        rules = self.store.list_rules()
        self._gauges.keep({(r.name, r.deployment) for r in rules})
        return [self.evaluate(rule, now) for rule in rules]

    def _record(
        self, rule: AlertRule, state: str, value: float, evidence: dict[str, Any], now: float
    ) -> AlertEvent | None:
        """Store the transition (None if another evaluator recorded it first), then notify."""
        event = self.store.add_event(
            rule.name, state, value, evidence, at_ms=int(now * 1000), transition=True
        )
        if event is None:
            return None
        deliveries = [self._notify(n, rule, event) for n in rule.notifiers]
        if deliveries:
            self.store.set_deliveries(event.seq, deliveries)
            event.deliveries = deliveries
        return event

    def _notify(
        self, notifier: dict[str, Any], rule: AlertRule, event: AlertEvent
    ) -> dict[str, Any]:
        kind = notifier["type"]
        message = (
            f"alert {rule.name} {event.state}: {rule.metric} = {event.value:.6g} "
            f"({rule.op} {rule.threshold:g}) on {rule.deployment}"
        )
        if kind == "log":
            level = logging.WARNING if event.state == "fired" else logging.INFO
            _log.log(level, message)
            return {"type": "log", "ok": True}
        if kind == "pipeline":
            if kind not in _NOTIFIERS:  # a plugin: loopml.pipelines registers it on load
                importlib.import_module("loopml.pipelines").install_alert_trigger()
            handler = _NOTIFIERS.get(kind)
            if handler is None:
                return {
                    "type": kind,
                    "ok": False,
                    "error": "import loopml.pipelines in the process that evaluates alerts",
                }
            try:
                return handler(notifier, event, rule)
            except Exception as exc:  # noqa: BLE001 - reported with the alert, never raised
                _log.exception("alert notifier %s failed", kind)
                return {"type": kind, "ok": False, "error": str(exc)}
        if kind == "action":
            name = notifier["name"]
            action = _ACTIONS.get(name)
            if action is None:
                return {
                    "type": "action",
                    "name": name,
                    "ok": False,
                    "error": f"no action named {name!r} is registered in this process",
                }
            try:
                result = action(event, rule)
            except Exception as exc:  # noqa: BLE001 - reported with the alert, never raised
                _log.exception("alert action %s failed", name)
                return {"type": "action", "name": name, "ok": False, "error": str(exc)}
            return {
                "type": "action",
                "name": name,
                "ok": True,
                **({"result": result} if isinstance(result, (str, int, float)) else {}),
            }
        return self._post(notifier, rule, event, message)

    def _post(
        self, notifier: dict[str, Any], rule: AlertRule, event: AlertEvent, message: str
    ) -> dict[str, Any]:
        from loopml.registry import sign_payload

        public_rule = {
            **rule.to_dict(),
            "notifiers": [{"type": n["type"]} for n in rule.notifiers],
        }
        body = orjson.dumps(
            {
                "event": f"alert.{event.state}",
                "message": message,
                "alert": event.to_dict(),
                "rule": public_rule,
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        headers = {"Content-Type": "application/json", "X-Loopml-Event": f"alert.{event.state}"}
        attempts, error, status = 0, "", None
        for attempt in range(self.retries):
            attempts = attempt + 1
            if notifier.get("secret"):
                headers["X-Loopml-Signature"] = sign_payload(
                    notifier["secret"], body, int(time.time())
                )
            try:
                response = httpx.post(notifier["url"], content=body, headers=headers, timeout=10)
                status = response.status_code
                if status < 300:
                    return {"type": "webhook", "ok": True, "status": status, "attempts": attempts}
                error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < self.retries:
                self._sleep(self.backoff * 2**attempt)
        _log.warning(
            "webhook for alert %s failed after %d attempts: %s", rule.name, attempts, error
        )
        return {
            "type": "webhook",
            "ok": False,
            "status": status,
            "attempts": attempts,
            "error": error,
        }


class _Gauges:
    """Prometheus gauges: drift scores, quality metrics, alert states."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.share = Gauge(
            "loopml_drift_share",
            "Share of drifted input columns",
            ["deployment"],
            registry=self.registry,
        )
        self.score = Gauge(
            "loopml_drift_score",
            "Drift effect size of a column",
            ["deployment", "column"],
            registry=self.registry,
        )
        self.quality_g = Gauge(
            "loopml_quality",
            "Live quality metric",
            ["deployment", "variant", "metric"],
            registry=self.registry,
        )
        self.firing = Gauge(
            "loopml_alert_firing",
            "1 while the rule's alert is firing",
            ["rule", "deployment"],
            registry=self.registry,
        )
        self._alert_labels: set[tuple[str, str]] = set()
        self.value = Gauge(
            "loopml_alert_value",
            "The rule's last measured value",
            ["rule", "deployment"],
            registry=self.registry,
        )

    def drift(self, deployment: str, report: Any) -> None:
        self.share.labels(deployment).set(report.share_drifted)
        for name, col in report.columns.items():
            if col.effect_size is not None:
                self.score.labels(deployment, name).set(col.effect_size)
        if report.prediction is not None and report.prediction.effect_size is not None:
            self.score.labels(deployment, "__prediction__").set(report.prediction.effect_size)

    def quality(self, deployment: str, q: Any) -> None:
        for variant, row in q.variants.items():
            for metric, value in row.items():
                if isinstance(value, float):
                    self.quality_g.labels(deployment, variant, metric).set(value)

    def keep(self, rules: set[tuple[str, str]]) -> None:
        """Drop the alert series of rules that no longer exist (or moved deployment)."""
        for labels in self._alert_labels - rules:
            for gauge in (self.firing, self.value):
                try:
                    gauge.remove(*labels)
                except KeyError:  # never set (no value measured yet)
                    pass
        self._alert_labels &= rules

    def alert(self, rule: AlertRule, firing: bool, value: float | None) -> None:
        self._alert_labels.add((rule.name, rule.deployment))
        self.firing.labels(rule.name, rule.deployment).set(1.0 if firing else 0.0)
        if value is not None:
            self.value.labels(rule.name, rule.deployment).set(value)
