"""Checks over a deployment's prediction log: drift against the training data of the model
version that served it, prediction drift, and live quality once outcomes arrive.

The log's rows name the model version that made each prediction, so the reference follows from
lineage: version → training dataset (the registry's ``dataset_versions``) → a reference profile,
built once (with the model's outputs on that dataset, for prediction drift) and stored under
``models:/<name>/<version>``; later checks read only the current window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from loopml.errors import InvalidInput, LoopmlError
from loopml.monitoring._drift import DriftReport, compare_column, detect_drift
from loopml.monitoring._metrics import (
    baseline_from_metrics,
    degradation,
    estimate_performance,
    infer_task,
    quality_metrics,
    scores_as_predictions,
    split_outputs,
)
from loopml.monitoring._predlog import expand_inputs, read_predictions
from loopml.monitoring._profile import ReferenceProfile, profile_column
from loopml.monitoring._store import SqlMonitorStore, parse_duration

__all__ = ["PREDICTION", "Monitor", "QualityReport", "report_data"]

MIN_CALIBRATION = 100  # labelled, scored predictions needed to calibrate an estimate
PREDICTION = "__prediction__"  # the profile column holding the model's outputs on the reference
_log = logging.getLogger("loopml.monitoring")


@dataclass
class QualityReport:
    """Live quality of a deployment's window: metrics per variant (and per time bucket)."""

    deployment: str
    task: str
    window_start: str
    window_end: str
    variants: dict[str, dict[str, Any]]  # variant -> n_predictions, n_labelled, metrics...
    buckets: list[dict[str, Any]] = field(default_factory=list)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> metrics
    degraded: dict[str, list[str]] = field(default_factory=dict)  # variant -> metric names
    tolerance: float = 0.05
    estimated: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant -> estimates
    estimated_buckets: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "deployment": self.deployment,
            "task": self.task,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "variants": self.variants,
            "buckets": self.buckets,
            "baselines": self.baselines,
            "degraded": self.degraded,
            "tolerance": self.tolerance,
            "estimated": self.estimated,
            "estimated_buckets": self.estimated_buckets,
        }


def _iso(seconds: float) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()


def _decode(values: pd.Series) -> pd.Series:
    return pd.Series(
        [orjson.loads(v) if isinstance(v, str) else None for v in values], index=values.index
    )


class Monitor:
    """Drift and quality checks of deployments, over one prediction log and one database."""

    def __init__(
        self,
        store: SqlMonitorStore | None = None,
        *,
        log_uri: str | None = None,
        registry: Any = None,
        tracking: Any = None,
    ) -> None:
        from loopml.config import get_settings

        settings = get_settings()
        self.store = store or SqlMonitorStore(
            settings.resolved_database_uri, workspace=settings.workspace
        )
        self.log_uri = log_uri
        self._registry = registry
        self._tracking = tracking

    @property
    def registry(self) -> Any:
        """The model registry used for lineage and baselines."""
        if self._registry is None:
            from loopml.registry import get_registry

            self._registry = get_registry()
        return self._registry

    # -- the window ----------------------------------------------------------------------------
    def window(
        self, deployment: str, window: str | float, *, variant: str | None, now: float | None
    ) -> tuple[pd.DataFrame, float, float]:
        """The ok predictions of ``deployment`` in the window ending ``now``."""
        end = time.time() if now is None else float(now)
        start = end - parse_duration(window)
        model = self.model_target(deployment)
        df = read_predictions(
            self.log_uri,
            deployment=None if model else deployment,
            variant=variant,
            since=start,
            until=end,
        )
        keep = df["status"] == "ok"
        if model:
            keep &= (df["model_name"] == model[0]) & (df["model_version"] == model[1])
        return df[keep].reset_index(drop=True), start, end

    def model_target(self, target: str) -> tuple[str, str] | None:
        """(name, version) when ``target`` is ``models:/<name>/<version>`` or
        ``models:/<name>@<alias>`` (every deployment's predictions by that version)."""
        if not target.startswith("models:/"):
            return None
        rest = target[len("models:/") :]
        if "@" in rest:
            name, alias = rest.split("@", 1)
            return name, str(self.registry.get_model_version_by_alias(name, alias).version)
        name, _, version = rest.rpartition("/")
        if not name or not version.isdigit():
            raise InvalidInput(
                f"{target!r}: use models:/<name>/<version> or models:/<name>@<alias>"
            )
        return name, version

    @staticmethod
    def served_by(df: pd.DataFrame) -> tuple[str, str, str]:
        """(variant, model name, version) that made most of the window's predictions."""
        counts = df.groupby(["variant", "model_name", "model_version"], dropna=False).size()
        variant, name, version = counts.sort_values(ascending=False, kind="stable").index[0]
        return str(variant), str(name), str(version)

    # -- references ----------------------------------------------------------------------------
    def reference_profile(
        self, model_name: str, version: str, *, inputs: list[str] | None = None
    ) -> ReferenceProfile:
        """The stored profile of a version's training data, built from lineage on first use
        (the model predicts on the ``inputs`` columns of it, for prediction drift)."""
        subject = f"models:/{model_name}/{version}"
        profile = self.store.get_profile(subject)
        if profile is not None:
            return profile
        mv = self.registry.get_model_version(model_name, version)
        if not mv.dataset_versions:
            raise InvalidInput(
                f"{subject} has no training dataset in its lineage; pass reference= (a "
                "DataFrame or a dataset reference such as 'train@3')"
            )
        return self.build_profile(
            subject, mv.dataset_versions[0], model_uri=subject, inputs=inputs
        )

    def build_profile(
        self,
        subject: str,
        dataset: Any,
        *,
        model_uri: str | None = None,
        inputs: list[str] | None = None,
    ) -> ReferenceProfile:
        """Profile a dataset reference or DataFrame (and the model's outputs on it); store it."""
        from loopml.data import load

        frame = load(dataset) if isinstance(dataset, str) else dataset
        source = dataset if isinstance(dataset, str) else None
        columns = {}
        for name in frame.columns:
            try:
                columns[str(name)] = profile_column(frame[name], str(name))
            except InvalidInput as exc:  # identifier-like columns are left out
                _log.info("reference column %s not profiled: %s", name, exc)
        if model_uri is not None:
            features = [c for c in (inputs or []) if c in frame.columns]
            outputs = self._reference_outputs(model_uri, frame[features] if features else frame)
            if outputs is not None:
                columns[PREDICTION] = profile_column(outputs, PREDICTION)
        profile = ReferenceProfile(columns, len(frame), source)
        self.store.save_profile(subject, profile)
        return profile

    @staticmethod
    def _reference_outputs(model_uri: str, frame: pd.DataFrame) -> pd.Series | None:
        from loopml.models import load_model

        try:
            model = load_model(model_uri, extra_columns="drop")
            raw = model.predict(frame)
        except (LoopmlError, ValueError, TypeError, KeyError) as exc:
            _log.warning(
                "no prediction drift for %s: could not predict on the reference: %s",
                model_uri,
                exc,
            )
            return None
        values = raw.tolist() if hasattr(raw, "tolist") else list(raw)
        if isinstance(raw, pd.DataFrame):
            values = raw.to_dict("records")
        predicted, _ = split_outputs(pd.Series(values, dtype=object))
        return predicted.infer_objects()

    # -- drift ---------------------------------------------------------------------------------
    def check(
        self,
        deployment: str,
        window: str | float = "24h",
        *,
        variant: str | None = None,
        reference: Any = None,
        columns: list[str] | None = None,
        method: Any = "auto",
        thresholds: dict[str, float] | None = None,
        drift_share: float = 0.5,
        now: float | None = None,
    ) -> DriftReport:
        """Drift of the window's inputs (and outputs) against the serving version's reference."""
        df, start, end = self.window(deployment, window, variant=variant, now=now)
        if df.empty:
            raise InvalidInput(
                f"{deployment!r} logged no successful predictions in the window "
                f"{_iso(start)} .. {_iso(end)}"
            )
        served_variant, name, version = self.served_by(df)
        same = (df["variant"] == served_variant) & (df["model_name"] == name)
        df = df[same & (df["model_version"] == version)]
        current = expand_inputs(df)
        outputs = _decode(df["outputs"])
        current[PREDICTION] = split_outputs(outputs)[0].infer_objects()
        logged = [str(c) for c in current.columns if c != PREDICTION]
        if reference is None:
            profile = self.reference_profile(name, version, inputs=logged)
        elif isinstance(reference, ReferenceProfile):
            profile = reference
        else:
            profile = self.build_profile(
                f"adhoc:{deployment}",
                reference,
                model_uri=f"models:/{name}/{version}",
                inputs=logged,
            )
        shared = [c for c in profile.columns if c in current.columns and c != PREDICTION]
        names = columns if columns is not None else shared
        if not names:
            raise InvalidInput(
                "the logged inputs share no column with the reference "
                f"(logged: {sorted(current.columns.drop(PREDICTION))[:10]})"
            )
        report = detect_drift(
            profile,
            current,
            columns=names,
            method=method,
            thresholds=thresholds,
            drift_share=drift_share,
        )
        if PREDICTION in profile.columns and current[PREDICTION].notna().any():
            try:
                report.prediction = compare_column(
                    profile.columns[PREDICTION], current[PREDICTION], thresholds=thresholds
                )
            except InvalidInput as exc:
                _log.info("no prediction drift: %s", exc)
        report.subject = {
            "deployment": deployment,
            "variant": served_variant,
            "model": name,
            "version": version,
            "window": str(window),
            "window_start": _iso(start),
            "window_end": _iso(end),
            "reference": profile.source,
            "n_predictions": len(df),
        }
        return report

    # -- quality -------------------------------------------------------------------------------
    def labelled(self, df: pd.DataFrame) -> pd.DataFrame:
        """The window's predictions with their outcome: by prediction id (the latest received
        wins), else by unit id — the unit's first outcome at or after the prediction."""
        out = df.assign(outcome=pd.Series(np.nan, index=df.index, dtype=object))
        out["predicted"], out["score"] = split_outputs(_decode(df["outputs"]))
        if df.empty:
            return out
        since = int(df["time"].min().timestamp() * 1000)
        by_pred = self.store.outcomes(prediction_ids=df["prediction_id"].dropna())
        by_unit = self.store.outcomes(unit_ids=df["unit_id"].dropna(), since_ms=since)
        if not by_unit.empty:
            units = by_unit.dropna(subset=["unit_id"]).sort_values("time", kind="stable")
            units = units.assign(time=pd.to_datetime(units["time"], unit="ms", utc=True))
            units = units.rename(columns={"time": "outcome_time"})
            preds = df[df["unit_id"].notna()][["unit_id", "time"]].reset_index()
            preds = preds.sort_values("time", kind="stable")
            units["outcome_time"] = units["outcome_time"].astype(preds["time"].dtype)
            joined = pd.merge_asof(
                preds,
                units[["unit_id", "outcome_time", "value"]],
                left_on="time",
                right_on="outcome_time",
                by="unit_id",
                direction="forward",
            )
            out.loc[joined["index"].to_numpy(), "outcome"] = joined["value"].to_numpy()
        if not by_pred.empty:
            latest = by_pred.drop_duplicates("prediction_id", keep="last")
            direct = df["prediction_id"].map(
                dict(zip(latest["prediction_id"], latest["value"], strict=True))
            )
            out["outcome"] = direct.where(direct.notna(), out["outcome"]).astype(object)
        return out

    def baseline(self, model_name: str, version: str) -> dict[str, float]:
        """The version's offline evaluation metrics (its run's metrics), by live metric name."""
        try:
            mv = self.registry.get_model_version(model_name, version)
            if not mv.run_id:
                return {}
            if self._tracking is None:
                from loopml.tracking import get_store

                self._tracking = get_store()
            run = self._tracking.get_run(mv.run_id)
        except LoopmlError as exc:
            _log.info("no baseline for %s/%s: %s", model_name, version, exc)
            return {}
        return baseline_from_metrics(run.data.metrics)

    def quality(
        self,
        deployment: str,
        window: str | float = "24h",
        *,
        bucket: str | float | None = None,
        variant: str | None = None,
        task: str | None = None,
        tolerance: float = 0.05,
        calibration: str | float | None = "7d",
        now: float | None = None,
    ) -> QualityReport:
        """Quality by variant over the window (and by ``bucket`` of time), against baselines.

        For binary classifiers that log scores, quality is also estimated from the scores
        (``estimate_performance``), calibrated on the labelled predictions of the
        ``calibration`` period just before the window; ``estimate_error`` is the estimate minus
        the realised value on the window's labelled predictions.
        """
        if not 0 <= tolerance < 1:
            raise InvalidInput("tolerance must be in [0, 1)")
        df, start, end = self.window(deployment, window, variant=variant, now=now)
        data = self.labelled(df)
        labelled = data[data["outcome"].notna()]
        task = task or infer_task(labelled["outcome"])
        if task == "classification":
            data["predicted"], data["score"] = scores_as_predictions(
                data["predicted"], data["score"], labelled["outcome"]
            )
        variants: dict[str, dict[str, Any]] = {}
        baselines: dict[str, dict[str, float]] = {}
        degraded: dict[str, list[str]] = {}
        for name, group in data.groupby("variant", sort=True):
            lab = group[group["outcome"].notna()]
            metrics = quality_metrics(lab["outcome"], lab["predicted"], lab["score"], task=task)
            variants[str(name)] = {
                "n_predictions": len(group),
                "n_labelled": len(lab),
                **metrics,
            }
            model, version = self.served_by(group)[1:]
            base = self.baseline(model, version)
            variants[str(name)].update(model=model, version=version)
            if base:
                baselines[str(name)] = base
                worse = [
                    m
                    for m, v in metrics.items()
                    if (d := degradation(m, v, base.get(m))) is not None and d > tolerance
                ]
                if worse and len(lab):
                    degraded[str(name)] = worse
        estimated: dict[str, dict[str, Any]] = {}
        estimated_buckets: list[dict[str, Any]] = []
        if calibration is not None and task == "classification" and len(data):
            estimated, estimated_buckets = self._estimates(
                deployment, data, start, calibration, variant, bucket
            )
        buckets: list[dict[str, Any]] = []
        if bucket is not None and len(data):
            size = parse_duration(bucket, "bucket")
            epoch = (data["time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
            keys = (epoch // size) * size
            for (key, name), group in data.groupby([keys, "variant"], sort=True):
                lab = group[group["outcome"].notna()]
                buckets.append(
                    {
                        "window_start": _iso(float(key)),
                        "variant": str(name),
                        "n_predictions": len(group),
                        "n_labelled": len(lab),
                        **quality_metrics(
                            lab["outcome"], lab["predicted"], lab["score"], task=task
                        ),
                    }
                )
        return QualityReport(
            deployment,
            task,
            _iso(start),
            _iso(end),
            variants,
            buckets,
            baselines,
            degraded,
            tolerance,
            estimated,
            estimated_buckets,
        )

    def _estimates(
        self,
        deployment: str,
        data: pd.DataFrame,
        start: float,
        calibration: str | float,
        variant: str | None,
        bucket: str | float | None,
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """Score-based estimates per variant (and bucket), calibrated before the window."""
        scored = data[data["score"].notna()]
        if scored.empty:
            return {}, []
        before, _, _ = self.window(
            deployment, parse_duration(calibration, "calibration"), variant=variant, now=start
        )
        if before.empty:
            return {}, []
        ref = self.labelled(before)
        ref["predicted"], ref["score"] = scores_as_predictions(
            ref["predicted"], ref["score"], ref["outcome"][ref["outcome"].notna()]
        )
        estimated: dict[str, dict[str, Any]] = {}
        estimated_buckets: list[dict[str, Any]] = []
        for name, group in scored.groupby("variant", sort=True):
            cal = ref[(ref["variant"] == name) & ref["outcome"].notna() & ref["score"].notna()]
            labels = set(cal["outcome"].map(lambda v: int(v) if v in (0, 1) else -1))
            if len(cal) < MIN_CALIBRATION or labels != {0, 1}:
                continue

            def estimate(rows: pd.DataFrame, cal: pd.DataFrame = cal) -> dict[str, Any]:
                return estimate_performance(
                    cal["score"], cal["outcome"], rows["score"], rows["predicted"]
                )

            row: dict[str, Any] = {"n_estimated": len(group), "n_calibration": len(cal)}
            row.update(estimate(group))
            lab = group[group["outcome"].notna()]
            if len(lab):
                on_labelled = estimate(lab)
                realised = quality_metrics(
                    lab["outcome"], lab["predicted"], lab["score"], task="classification"
                )
                row["estimate_error"] = {
                    m: on_labelled[m] - realised[m]
                    for m in on_labelled
                    if on_labelled[m] is not None and realised.get(m) is not None
                }
            estimated[str(name)] = row
            if bucket is not None:
                size = parse_duration(bucket, "bucket")
                epoch = (group["time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
                for key, part in group.groupby((epoch // size) * size, sort=True):
                    estimated_buckets.append(
                        {
                            "window_start": _iso(float(key)),
                            "variant": str(name),
                            "n_predictions": len(part),
                            "n_labelled": int(part["outcome"].notna().sum()),
                            **estimate(part),
                        }
                    )
        return estimated, estimated_buckets


def report_data(
    monitor: Monitor,
    deployment: str,
    window: str | float = "24h",
    *,
    bucket: str | float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Drift, quality over time and alerts of a deployment's window, in the report's shape."""
    drift = monitor.check(deployment, window, now=now)
    size = bucket or parse_duration(window) / 12
    q = monitor.quality(deployment, window, bucket=size, now=now)
    metrics = [
        m
        for m in (
            "accuracy",
            "f1",
            "precision",
            "recall",
            "roc_auc",
            "log_loss",
            "mae",
            "rmse",
            "mape",
            "r2",
        )
        if any(row.get(m) is not None for row in q.variants.values())
    ]
    main = drift.subject.get("variant")
    start_ms = pd.Timestamp(drift.subject["window_start"]).value // 10**6
    events = [
        e for e in monitor.store.events(deployment=deployment, limit=1000) if e.time >= start_ms
    ]
    return {
        "title": f"Monitoring report: {deployment}",
        "generated_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "subject": {
            k: drift.subject.get(k)
            for k in ("deployment", "model", "version", "window", "reference")
        },
        "drift": drift.to_dict(),
        "prediction_drift": drift.prediction.to_dict() if drift.prediction else None,
        "quality": {
            "metrics": metrics,
            "rows": q.buckets,
            "baseline": q.baselines.get(str(main), {}),
            "estimated": q.estimated_buckets,
            "variants": q.variants,
            "degraded": q.degraded,
        },
        "alerts": [
            {
                "rule": e.rule,
                "state": e.state,
                "at": pd.Timestamp(e.time, unit="ms", tz="UTC").isoformat(),
                "value": e.value,
                "message": ", ".join(e.evidence.get("drifted_columns", []))
                or str(e.evidence.get("reason", "")),
            }
            for e in events
        ],
    }
