"""``analyze``: unit-level rows → per-variant sufficient statistics (one DuckDB pass) →
a row per (metric, treatment variant) and a verdict.

Metrics are binomial (0/1 or boolean columns), continuous (any other number) or ratios
(``Metric(name, numerator=..., denominator=...)``, sum over sum, delta-method variance). CUPED
uses a pre-period covariate per metric (``covariates={"revenue": "revenue_pre"}``) with one
pooled θ; the adjusted metric is read with Welch's test. The sample-ratio-mismatch test runs on
every analysis and a flagged mismatch stops the experiment whatever the metrics say.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.abtest._stats import (
    Moments,
    bayes_binomial,
    bayes_normal,
    correct,
    cuped_theta,
    proportions_test,
    sequential_test,
    srm_test,
    welch_test,
)
from loopml.errors import InsufficientData, InvalidInput

__all__ = ["METHODS", "Analysis", "Metric", "analyze"]

METHODS = ("frequentist", "sequential", "bayesian")
SRM_ALPHA = 0.001  # the usual threshold: a mismatch this unlikely means broken assignment


@dataclass
class Metric:
    """A metric column (or a ratio of two), its kind, and whether it is a guardrail."""

    name: str
    column: str | None = None  # default: name
    kind: str | None = None  # "binomial", "continuous", "ratio"; default: from the data
    numerator: str | None = None
    denominator: str | None = None
    guardrail: bool = False
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput("a metric needs a name")
        if (self.numerator is None) != (self.denominator is None):
            raise InvalidInput(f"metric {self.name!r}: a ratio needs numerator and denominator")
        if self.numerator is not None:
            self.kind = "ratio"
        elif self.kind == "ratio":
            raise InvalidInput(f"metric {self.name!r}: a ratio needs numerator and denominator")
        if self.kind not in (None, "binomial", "continuous", "ratio"):
            raise InvalidInput(f"metric {self.name!r}: kind must be binomial, continuous or ratio")
        self.column = self.column or self.name


@dataclass
class Analysis:
    """Per (metric, variant) results, the sample-ratio check and the verdict."""

    method: str
    control: str
    variants: dict[str, int]  # units per variant
    rows: list[dict[str, Any]]
    srm: dict[str, Any]
    verdict: dict[str, Any]
    alpha: float
    correction: str
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame."""
        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "method": self.method,
            "control": self.control,
            "variants": self.variants,
            "alpha": self.alpha,
            "correction": self.correction,
            "srm": self.srm,
            "verdict": self.verdict,
            "rows": self.rows,
            "notes": self.notes,
        }


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(con: Any, data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path) and "*" not in path:
            raise InvalidInput(f"no such file: {path}")
        return f"read_parquet('{path.replace(chr(39), chr(39) * 2)}')"
    if isinstance(data, pd.DataFrame) or hasattr(data, "to_pandas") or hasattr(data, "schema"):
        con.register("abtest_data", data)
        return "abtest_data"
    raise InvalidInput("data must be a DataFrame, an Arrow table or a Parquet path")


def _metrics(metrics: Sequence[str | Metric] | None, guardrails: Sequence[str]) -> list[Metric]:
    if not metrics:
        raise InvalidInput("metrics must name at least one metric")
    out = [m if isinstance(m, Metric) else Metric(str(m)) for m in metrics]
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise InvalidInput("metric names must be unique")
    unknown = [g for g in guardrails if g not in names]
    if unknown:
        raise InvalidInput(f"guardrail {unknown[0]!r} is not one of the metrics")
    for m in out:
        if m.name in guardrails:
            m.guardrail = True
    return out


def _aggregate(
    data: Any, variant: str, metrics: list[Metric], covariates: Mapping[str, str]
) -> tuple[pd.DataFrame, list[str]]:
    """One GROUP BY over the rows: counts, sums, sums of squares and cross products."""
    import duckdb

    con = duckdb.connect()
    try:
        rel = _relation(con, data)
        try:
            columns = [c[0] for c in con.sql(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
        except duckdb.Error as exc:
            raise InvalidInput(f"could not read the data: {exc}") from exc
        needed = {variant}
        for m in metrics:
            used = (m.numerator, m.denominator) if m.kind == "ratio" else (m.column,)
            needed |= {c for c in used if c is not None}
        needed |= set(covariates.values())
        missing = sorted(c for c in needed if c not in columns)
        if missing:
            raise InvalidInput(
                f"column {missing[0]!r} is not in the data (columns: {columns[:20]})"
            )
        parts = [f"CAST({_ident(variant)} AS VARCHAR) AS variant", "count(*) AS units"]
        for i, m in enumerate(metrics):
            if m.kind == "ratio":
                a, b = (f"CAST({_ident(c)} AS DOUBLE)" for c in (m.numerator, m.denominator))
                both = f"FILTER (WHERE {a} IS NOT NULL AND {b} IS NOT NULL)"
                parts += [
                    f"count(*) {both} AS n{i}",
                    f"avg({a}) {both} AS ma{i}",
                    f"avg({b}) {both} AS mb{i}",
                    f"var_samp({a}) {both} AS va{i}",
                    f"var_samp({b}) {both} AS vb{i}",
                    f"covar_samp({a}, {b}) AS cab{i}",
                ]
                continue
            y = f"CAST({_ident(m.column)} AS DOUBLE)"
            parts += [
                f"count({y}) AS n{i}",
                f"avg({y}) AS m{i}",
                f"var_samp({y}) AS v{i}",
                f"sum({y}) AS s{i}",
                f"bool_and({y} IN (0, 1)) AS b{i}",
            ]
            if m.name in covariates:
                x = f"CAST({_ident(covariates[m.name])} AS DOUBLE)"
                both = f"FILTER (WHERE {y} IS NOT NULL AND {x} IS NOT NULL)"
                parts += [
                    f"count(*) {both} AS cn{i}",
                    f"avg({y}) {both} AS cmy{i}",
                    f"avg({x}) {both} AS cmx{i}",
                    f"var_samp({y}) {both} AS cvy{i}",
                    f"var_samp({x}) {both} AS cvx{i}",
                    f"covar_samp({y}, {x}) AS ccov{i}",
                ]
        query = f"SELECT {', '.join(parts)} FROM {rel} GROUP BY 1 ORDER BY 1"
        try:
            table = con.sql(query).fetchdf()
        except duckdb.Error as exc:
            raise InvalidInput(f"could not aggregate the data: {exc}") from exc
    finally:
        con.close()
    return table, columns


def _col(agg: pd.DataFrame, name: str) -> np.ndarray:
    return agg[name].astype(float).fillna(0.0).to_numpy()


def _cuped(agg: pd.DataFrame, i: int) -> tuple[Moments, float]:
    """Per-variant moments of y − θ(x − x̄) and the pooled variance reduction (from per-variant
    means, variances and covariances, combined exactly: no sums of squares)."""
    n = _col(agg, f"cn{i}")
    my, mx = _col(agg, f"cmy{i}"), _col(agg, f"cmx{i}")
    vy, vx, cov = _col(agg, f"cvy{i}"), _col(agg, f"cvx{i}"), _col(agg, f"ccov{i}")
    total = n.sum()
    mean_x, mean_y = (n * mx).sum() / total, (n * my).sum() / total
    cov_all = (((n - 1) * cov).sum() + (n * (mx - mean_x) * (my - mean_y)).sum()) / (total - 1)
    var_x_all = (((n - 1) * vx).sum() + (n * (mx - mean_x) ** 2).sum()) / (total - 1)
    theta = float(cuped_theta(cov_all, var_x_all))
    adj_var = np.maximum(vy - 2 * theta * cov + theta**2 * vx, 0.0)
    adj_mean = my - theta * (mx - mean_x)
    pooled_y = ((n - 1) * vy).sum()
    reduction = float(1 - ((n - 1) * adj_var).sum() / pooled_y) if pooled_y > 0 else 0.0
    return Moments(n, adj_mean, adj_var), reduction


def _ratio(agg: pd.DataFrame, i: int) -> Moments:
    n = _col(agg, f"n{i}")
    ma, mb = _col(agg, f"ma{i}"), _col(agg, f"mb{i}")
    va, vb, cab = _col(agg, f"va{i}"), _col(agg, f"vb{i}"), _col(agg, f"cab{i}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ma / mb
        var_r = (va - 2 * ratio * cab + ratio**2 * vb) / mb**2  # per unit
    return Moments(n, ratio, np.maximum(np.nan_to_num(var_r), 0.0))


def analyze(
    data: Any,
    *,
    variant: str = "variant",
    metrics: Sequence[str | Metric] | None = None,
    control: str | None = None,
    method: str = "frequentist",
    covariates: Mapping[str, str] | None = None,
    guardrails: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    tuning: float = 10_000,
    srm_decides: bool = True,
) -> Analysis:
    """Analyse unit-level rows (a DataFrame, an Arrow table or a Parquet path): one row per
    (metric, treatment variant) against ``control``, the SRM check and a verdict.

    ``weights``: the configured split (default: equal) for the sample-ratio check.
    ``correction``: Holm (``holm``), Benjamini–Hochberg (``bh``) or ``none`` over the primary
    metrics' comparisons; guardrails are judged uncorrected (a guardrail errs on the safe side).
    ``tuning``: units per arm where the sequential method's confidence sequence is tightest.
    ``srm_decides=False``: the sample-ratio check is reported but does not stop the verdict
    (for traffic whose split changes on purpose, as in a gradual rollout).
    """
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}")
    if not 0 < alpha < 0.5:
        raise InvalidInput("alpha must be in (0, 0.5)")
    if correction not in ("holm", "bh", "none"):
        raise InvalidInput("correction must be 'holm', 'bh' or 'none'")
    covariates = dict(covariates or {})
    ms = _metrics(metrics, guardrails)
    unknown = [k for k in covariates if k not in {m.name for m in ms}]
    if unknown:
        raise InvalidInput(f"covariate given for {unknown[0]!r}, which is not a metric")
    ratios = [m.name for m in ms if m.kind == "ratio" and m.name in covariates]
    if ratios:
        raise InvalidInput(f"metric {ratios[0]!r} is a ratio: CUPED takes a covariate for a mean")
    agg, _ = _aggregate(data, variant, ms, covariates)
    agg = agg[agg["variant"].notna()].reset_index(drop=True)
    names = agg["variant"].tolist()
    if len(names) < 2:
        raise InsufficientData(f"the data holds {len(names)} variant(s); at least 2 are needed")
    control = control if control is not None else ("control" if "control" in names else names[0])
    if control not in names:
        raise InvalidInput(f"control {control!r} is not a variant in the data ({names})")
    units = dict(zip(names, agg["units"].astype(int).tolist(), strict=True))
    srm = _srm(units, weights)
    for missing in srm["observed"]:
        units.setdefault(missing, 0)
    c_at = names.index(control)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for i, m in enumerate(ms):
        kind = m.kind
        if kind is None:
            kind = "binomial" if bool(agg[f"b{i}"].fillna(True).all()) else "continuous"
        reduction = None
        if m.name in covariates:
            moments, reduction = _cuped(agg, i)
        elif kind == "ratio":
            moments = _ratio(agg, i)
        else:
            moments = Moments(_col(agg, f"n{i}"), _col(agg, f"m{i}"), _col(agg, f"v{i}"))
        counts = np.asarray(moments.n, dtype=float)
        if (counts < 2).any():
            empty = names[int(np.argmin(counts))]
            raise InsufficientData(
                f"variant {empty!r} has fewer than 2 values of metric {m.name!r}"
            )
        c = Moments(counts[c_at], np.asarray(moments.mean)[c_at], np.asarray(moments.var)[c_at])
        binomial = kind == "binomial" and reduction is None
        for j, name in enumerate(names):
            if j == c_at:
                continue
            t = Moments(counts[j], np.asarray(moments.mean)[j], np.asarray(moments.var)[j])
            row = _compare(m, kind, name, t, c, binomial, method, alpha, tuning, agg, i, j, c_at)
            if reduction is not None:
                row["variance_reduction"] = reduction
            rows.append(row)
    if method != "bayesian":
        primary = [k for k, r in enumerate(rows) if not r["guardrail"]]
        raw = [np.nan if rows[k]["p_value"] is None else rows[k]["p_value"] for k in primary]
        for k, p in zip(primary, correct(raw, correction), strict=True):
            rows[k]["p_adjusted"] = _finite(p)
        for r in rows:
            r.setdefault("p_adjusted", r["p_value"])
            r["significant"] = r["p_adjusted"] is not None and r["p_adjusted"] < alpha
    verdict = _verdict(rows, srm if srm_decides else {**srm, "flagged": False}, method, alpha)
    return Analysis(method, control, units, rows, srm, verdict, alpha, correction, notes)


def _compare(
    m: Metric,
    kind: str,
    name: str,
    t: Moments,
    c: Moments,
    binomial: bool,
    method: str,
    alpha: float,
    tuning: float,
    agg: pd.DataFrame,
    i: int,
    j: int,
    c_at: int,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": m.name,
        "kind": kind,
        "variant": name,
        "guardrail": m.guardrail,
        "higher_is_better": m.higher_is_better,
        "n": int(t.n),
        "n_control": int(c.n),
        "control_mean": float(c.mean),
        "mean": float(t.mean),
    }
    if method == "bayesian":
        if binomial:
            st, sc = float(agg[f"s{i}"][j]), float(agg[f"s{i}"][c_at])
            b = bayes_binomial(st, t.n, sc, c.n, alpha=alpha)
            if not m.higher_is_better:  # the loss of shipping is now the treatment's excess
                b["expected_loss"] = bayes_binomial(sc, c.n, st, t.n, alpha=alpha)["expected_loss"]
        else:
            b = {k: float(v) for k, v in bayes_normal(t, c, alpha=alpha).items()}
            if not m.higher_is_better:
                b["expected_loss"] = float(bayes_normal(c, t, alpha=alpha)["expected_loss"])
        better = b["prob_beat"] if m.higher_is_better else 1 - b["prob_beat"]
        row.update(
            lift=float(t.mean - c.mean),
            lift_low=_finite(b["low"]),
            lift_high=_finite(b["high"]),
            relative=_finite(t.mean / c.mean - 1) if c.mean else None,
            prob_beat_control=float(b["prob_beat"]),
            prob_better=float(better),
            expected_loss=float(b["expected_loss"]),
        )
        row["significant"] = bool(better >= 1 - alpha or better <= alpha)
        return row
    if method == "sequential":
        res = sequential_test(t, c, alpha=alpha, tuning=tuning, binomial=binomial)
    elif binomial:
        res = proportions_test(t, c, alpha=alpha)
    else:
        res = welch_test(t, c, alpha=alpha)
    row.update(
        lift=_finite(res.lift),
        lift_low=_finite(res.lift_low),
        lift_high=_finite(res.lift_high),
        relative=_finite(res.relative),
        relative_low=_finite(res.relative_low),
        relative_high=_finite(res.relative_high),
        p_value=_finite(res.p_value),
        statistic=_finite(res.statistic),
        test="msprt" if method == "sequential" else ("z" if binomial else "welch"),
    )
    return row


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


def _srm(units: dict[str, int], weights: Mapping[str, float] | None) -> dict[str, Any]:
    """Observed units against the configured split; a configured variant without units counts
    with 0 (the starkest mismatch), a variant with units but no weight is an error."""
    if weights is None:
        w = {n: 1.0 for n in units}
    else:
        w = {}
        for name, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise InvalidInput(f"weights.{name} must be a number")
            if not (0 < weight < float("inf")):
                raise InvalidInput(f"weights.{name} must be positive and finite")
            w[str(name)] = float(weight)
        unweighted = [n for n in units if n not in w]
        if unweighted:
            raise InvalidInput(f"variant {unweighted[0]!r} has units but no weight")
    observed = {n: units.get(n, 0) for n in w}
    chi2, p = srm_test(list(observed.values()), list(w.values()))
    total = sum(observed.values())
    expected = {n: total * w[n] / sum(w.values()) for n in w}
    return {
        "chi2": chi2,
        "p_value": p,
        "flagged": bool(p < SRM_ALPHA),
        "observed": observed,
        "expected": expected,
    }


def _verdict(
    rows: list[dict[str, Any]], srm: dict[str, Any], method: str, alpha: float
) -> dict[str, Any]:
    if srm["flagged"]:
        return {
            "decision": "stop",
            "variant": None,
            "reason": f"sample ratio mismatch (p = {srm['p_value']:.2g}): assignment or logging "
            "is broken, so no metric can be trusted",
        }

    def direction(r: dict[str, Any]) -> int:
        if not r["significant"]:
            return 0
        up = r["prob_beat_control"] > 0.5 if method == "bayesian" else (r["lift"] or 0) > 0
        return 1 if up == r["higher_is_better"] else -1

    for r in rows:
        if r["guardrail"] and direction(r) < 0:
            return {
                "decision": "stop",
                "variant": r["variant"],
                "reason": f"guardrail {r['metric']} degraded in {r['variant']}",
            }
    primary = [r for r in rows if not r["guardrail"]]
    winners = {r["variant"] for r in primary if direction(r) > 0}
    losers = {r["variant"] for r in primary if direction(r) < 0}
    clean = sorted(winners - losers)
    if clean:
        best = max(
            (r for r in primary if r["variant"] in clean),
            key=lambda r: (r["relative"] or 0) * (1 if r["higher_is_better"] else -1),
        )
        return {
            "decision": "ship",
            "variant": best["variant"],
            "reason": f"{best['variant']} is better on {best['metric']} "
            f"({(best['relative'] or 0):+.2%}) and worse on none",
        }
    if losers and len(losers) == len({r["variant"] for r in primary}):
        return {
            "decision": "stop",
            "variant": None,
            "reason": f"every treatment is worse on a metric ({', '.join(sorted(losers))})",
        }
    return {
        "decision": "keep running",
        "variant": None,
        "reason": "no treatment is significantly better yet",
    }
