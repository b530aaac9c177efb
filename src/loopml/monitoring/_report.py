"""The monitoring report: one self-contained HTML file (inline CSS and SVG, no script, no network).

``render_html`` turns report data (a title, and optional ``subject``, ``drift``,
``prediction_drift``, ``quality`` and ``alerts`` sections, as ``DriftReport.to_dict()`` and the
quality and alert readers give them) into a page that opens offline in any browser: a header, a
verdict banner, a table of column tests, a reference-vs-current distribution plot per column
(``<svg class="dist-plot" data-column=...>``), a line chart per quality metric
(``<svg class="quality-plot" data-metric=...>``) and the alerts. Every string from the data is
escaped, and a Content-Security-Policy forbids scripts and remote resources. Missing sections
and missing values (None, NaN) are shown as such, never as an error.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput

__all__ = ["render_html", "save_html"]

DASH = "—"
_REF, _CUR = "#4c72b0", "#dd8452"
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
_OPEN_ROWS = 12  # longer quality tables start folded
_MAX_CATEGORIES = 20  # beyond this, the smallest categories are drawn as one "(other)" bar
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
h3{font-size:14px;margin:0 0 4px;word-break:break-all}
.subject{color:#57606a;margin:0}.subject b{color:#1f2328;font-weight:600}
.verdict{border-radius:6px;padding:12px 16px;margin:16px 0;font-size:16px;border:1px solid}
.verdict.drift{background:#ffebe9;border-color:#ff8182}
.verdict.ok{background:#dafbe1;border-color:#4ac26b}
.verdict.none{background:#fff;border-color:#d0d7de}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eaeef2}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#ffebe9}tr.fired td{background:#fff8c5}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px}
svg text{font:10px system-ui,sans-serif;fill:#57606a}svg .axis{stroke:#8c959f}
svg .grid{stroke:#eaeef2}.empty{color:#57606a;font-style:italic}
summary{cursor:pointer;color:#57606a;margin:4px 0}
footer{color:#57606a;font-size:12px;margin-top:32px}
"""


# -- values ------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _float(value: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and anything not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _num(value: Any) -> str:
    number = _float(value)
    if number is None:
        return DASH
    if number == int(number) and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:.4g}"


def _pct(value: Any) -> str:
    number = _float(value)
    return DASH if number is None else f"{number:.0%}"


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else _e(value)


def _time(value: Any) -> datetime | None:
    """An aware datetime from ISO text (naive means UTC), or None."""
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _table(
    headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]], numeric: set[int]
) -> str:
    """An HTML table of (css class, escaped cells) rows; the ``numeric`` columns align right."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    for cls, cells in rows:
        tds = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- SVG ---------------------------------------------------------------------------------------
def _legend(items: Sequence[tuple[str, str, str]], x: float, y: float) -> str:
    """Swatches with labels in a row: (label, colour, stroke-dasharray or "")."""
    out = []
    for label, colour, dash in items:
        stroke = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 14:.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="6"{stroke}/>'
            f'<text x="{x + 18:.1f}" y="{y + 3.5:.1f}">{_e(label)}</text>'
        )
        x += 26 + 6 * len(label)
    return f'<g class="legend">{"".join(out)}</g>'


def _axes(left: float, top: float, right: float, bottom: float, x_label: str, y_label: str) -> str:
    mid_y = (top + bottom) / 2
    return (
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>'
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 30}" text-anchor="middle">'
        f"{_e(x_label)}</text>"
        f'<text transform="translate(11,{mid_y:.1f}) rotate(-90)" text-anchor="middle">'
        f"{_e(y_label)}</text>"
    )


def _y_ticks(
    lo: float, hi: float, top: float, bottom: float, left: float, right: float, fmt: Any
) -> str:
    out = []
    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - top)
        out.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>'
            f'<text x="{left - 3}" y="{y + 3:.1f}" text-anchor="end">{fmt(lo + frac * (hi - lo))}'
            "</text>"
        )
    return "".join(out)


def _shares(dist: Mapping[str, Any], key: str, n: int) -> list[float]:
    values = list(dist.get(key) or [])[:n]
    return [max(_float(v) or 0.0, 0.0) for v in values] + [0.0] * (n - len(values))


def _categories(dist: Mapping[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """Categories with their shares; past ``_MAX_CATEGORIES`` the smallest become "(other)"."""
    cats = [str(c) for c in dist.get("categories") or []]
    ref, cur = _shares(dist, "reference", len(cats)), _shares(dist, "current", len(cats))
    if len(cats) > _MAX_CATEGORIES:
        order = sorted(range(len(cats)), key=lambda i: -max(ref[i], cur[i]))
        keep, rest = sorted(order[: _MAX_CATEGORIES - 1]), order[_MAX_CATEGORIES - 1 :]
        cats = [cats[i] for i in keep] + ["(other)"]
        ref = [ref[i] for i in keep] + [sum(ref[i] for i in rest)]
        cur = [cur[i] for i in keep] + [sum(cur[i] for i in rest)]
    return cats, ref, cur


def _edges(raw: Sequence[Any], n: int) -> tuple[list[float], list[str]]:
    """Drawn bin edges and their labels (the true values).

    Open ends (±inf, null) get a bin of the median width, and the outer bins, which reach to the
    current sample's extremes, are drawn at most twice that wide so that one outlier cannot
    squash the other bins into a corner.
    """
    values = [_float(v) for v in list(raw)[: n + 1]]
    finite = [v for v in values if v is not None]
    if (
        len(values) != n + 1
        or len(finite) < 2
        or finite != sorted(finite)
        or finite[0] == finite[-1]
    ):
        return [float(i) for i in range(n + 1)], [str(i) for i in range(n + 1)]
    labels = [_num(v) for v in values]
    labels[0] = "−∞" if values[0] is None else labels[0]
    labels[-1] = "∞" if values[-1] is None else labels[-1]
    widths = sorted(b - a for a, b in zip(finite, finite[1:], strict=False) if b > a)
    width = widths[len(widths) // 2]
    first = next(i for i, v in enumerate(values) if v is not None)
    drawn = list(values)
    for i in range(first - 1, -1, -1):
        drawn[i] = (drawn[i + 1] or 0.0) - width
    for i in range(1, n + 1):
        if drawn[i] is None:
            drawn[i] = (drawn[i - 1] or 0.0) + width
    edges = [float(v or 0.0) for v in drawn]
    if n > 2:
        edges[0] = max(edges[0], edges[1] - 2 * width)
        edges[-1] = min(edges[-1], edges[-2] + 2 * width)
    return edges, labels


def _dist_plot(name: str, entry: Mapping[str, Any], *, cls: str = "dist-plot") -> str:
    """Reference vs current distribution: overlaid histograms (numeric) or grouped bars."""
    w, h, left, top, right, bottom = 340, 210, 46, 26, 330, 160
    dist = entry.get("distribution") or {}
    numeric = "edges" in dist
    if numeric:
        n = max(len(dist.get("reference") or []), len(dist.get("current") or []))
        ref, cur = _shares(dist, "reference", n), _shares(dist, "current", n)
        edges, labels = _edges(dist.get("edges") or [], n)
    else:
        cats, ref, cur = _categories(dist)
        n = len(cats)
    open_tag = (
        f'<svg class="{cls}" data-column="{_e(name)}" '
        f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{_e(f"distribution of {name}: reference and current")}">'
    )
    if n == 0:
        return (
            f'{open_tag}<text x="{w / 2}" y="{h / 2}" text-anchor="middle">'
            "no distribution recorded</text></svg>"
        )
    peak = max(ref + cur) or 1.0  # all-zero shares still get an axis
    ymax = peak * 1.1

    def y(v: float) -> float:
        return bottom - v / ymax * (bottom - top)

    parts = [_y_ticks(0.0, ymax, top, bottom, left, right, lambda v: f"{v:.0%}")]
    if numeric:
        lo, hi = edges[0], edges[-1]

        def x(v: float) -> float:
            return left + (v - lo) / (hi - lo) * (right - left)

        for i in range(n):
            x0, x1 = x(edges[i]), x(edges[i + 1])
            parts.append(
                f'<rect class="bar ref" x="{x0:.1f}" y="{y(ref[i]):.1f}" '
                f'width="{max(x1 - x0 - 0.5, 0.5):.1f}" height="{bottom - y(ref[i]):.1f}" '
                f'fill="{_REF}" fill-opacity="0.55"><title>{labels[i]} to {labels[i + 1]}: '
                f"reference {ref[i]:.1%}, current {cur[i]:.1%}</title></rect>"
            )
        step = [f"M{x(edges[0]):.1f},{bottom}"]
        for i in range(n):
            step.append(
                f"L{x(edges[i]):.1f},{y(cur[i]):.1f}L{x(edges[i + 1]):.1f},{y(cur[i]):.1f}"
            )
        step.append(f"L{x(edges[-1]):.1f},{bottom}")
        parts.append(
            f'<path class="step cur" d="{"".join(step)}" fill="{_CUR}" fill-opacity="0.18" '
            f'stroke="{_CUR}" stroke-width="2"/>'
        )
        for i, anchor in {0: "start", n // 2: "middle", n: "end"}.items():
            parts.append(
                f'<text x="{x(edges[i]):.1f}" y="{bottom + 13}" text-anchor="{anchor}">'
                f"{labels[i]}</text>"
            )
        x_label = f"{name} (bins)"
    else:
        group = (right - left) / n
        bar = group * 0.4
        every = max(1, math.ceil(n / 12))
        for i, cat in enumerate(cats):
            gx = left + i * group + group * 0.1
            for k, (share, colour, which) in enumerate(
                ((ref[i], _REF, "ref"), (cur[i], _CUR, "cur"))
            ):
                parts.append(
                    f'<rect class="bar {which}" x="{gx + k * bar:.1f}" y="{y(share):.1f}" '
                    f'width="{bar:.1f}" height="{bottom - y(share):.1f}" fill="{colour}">'
                    f"<title>{_e(cat)}: reference {ref[i]:.1%}, current {cur[i]:.1%}</title>"
                    "</rect>"
                )
            if i % every == 0:
                short = cat if len(cat) <= 10 else cat[:9] + "…"
                cx = left + (i + 0.5) * group
                parts.append(
                    f'<text transform="translate({cx:.1f},{bottom + 10}) rotate(-25)" '
                    f'text-anchor="end">{_e(short)}</text>'
                )
        x_label = name
    parts.append(_axes(left, top, right, bottom, x_label, "share"))
    parts.append(_legend([("reference", _REF, ""), ("current", _CUR, "")], left + 4, 10))
    return f"{open_tag}{''.join(parts)}</svg>"


def _quality_plot(metric: str, quality: Mapping[str, Any]) -> str:
    """One metric over time: a line per variant, estimates dotted, the baseline dashed."""
    w, h, left, top, right, bottom = 520, 230, 52, 28, 508, 180
    series: dict[tuple[str, bool], list[tuple[Any, float | None]]] = {}
    for estimated, rows in (
        (False, quality.get("rows") or []),
        (True, quality.get("estimated") or []),
    ):
        for row in rows:
            key = (str(row.get("variant") or DASH), estimated)
            series.setdefault(key, []).append((row.get("window_start"), _float(row.get(metric))))
    baseline = _float((quality.get("baseline") or {}).get(metric))
    starts = sorted({str(t) for points in series.values() for t, _ in points})
    times = {s: _time(s) for s in starts}
    pos = {s: float(i) for i, s in enumerate(starts)}  # unparsable times: evenly spaced
    if all(times.values()):
        pos = {s: t.timestamp() for s, t in times.items() if t}
    values = [v for points in series.values() for _, v in points if v is not None]
    values += [baseline] if baseline is not None else []
    lo_v, hi_v = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi_v - lo_v) * 0.08 or max(abs(hi_v) * 0.05, 0.05)
    lo_v, hi_v = lo_v - pad, hi_v + pad
    lo_t, hi_t = (min(pos.values()), max(pos.values())) if pos else (0.0, 1.0)

    def x(s: Any) -> float:
        if hi_t == lo_t:
            return (left + right) / 2
        return left + (pos[str(s)] - lo_t) / (hi_t - lo_t) * (right - left)

    def y(v: float) -> float:
        return bottom - (v - lo_v) / (hi_v - lo_v) * (bottom - top)

    parts = [_y_ticks(lo_v, hi_v, top, bottom, left, right, _num)]
    variants = sorted({variant for variant, _ in series})
    colours = {v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(variants)}
    legend: list[tuple[str, str, str]] = []
    for (variant, estimated), points in sorted(series.items()):
        colour, dash = colours[variant], "2 3" if estimated else ""
        points = sorted(points, key=lambda p: pos[str(p[0])])
        d, pen = [], "M"
        for t, v in points:
            if v is None:
                pen = "M"  # a missing value breaks the line
                continue
            d.append(f"{pen}{x(t):.1f},{y(v):.1f}")
            pen = "L"
        stroke = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path class="line" d="{"".join(d) or f"M{left},{bottom}"}" fill="none" '
            f'stroke="{colour}" stroke-width="2"{stroke}/>'
        )
        for t, v in points:
            if v is not None:
                parts.append(
                    f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                    f"<title>{_e(variant)} {_e(t)}: {_num(v)}</title></circle>"
                )
        legend.append((f"{variant} (estimated)" if estimated else variant, colour, dash))
    if baseline is not None:
        parts.append(
            f'<line class="baseline" x1="{left}" y1="{y(baseline):.1f}" x2="{right}" '
            f'y2="{y(baseline):.1f}" stroke="#57606a" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        legend.append(("baseline", "#57606a", "6 4"))
    if starts:
        ticks = {starts[0]: "start", starts[len(starts) // 2]: "middle", starts[-1]: "end"}
        for s, anchor in ticks.items() if len(starts) > 1 else [(starts[0], "middle")]:
            t = times[s]
            label = t.strftime("%m-%d %H:%M") if t else s
            parts.append(
                f'<text x="{x(s):.1f}" y="{bottom + 13}" text-anchor="{anchor}">{_e(label)}</text>'
            )
    parts.append(_axes(left, top, right, bottom, "window start", metric))
    parts.append(_legend(legend, left + 4, 10))
    return (
        f'<svg class="quality-plot" data-metric="{_e(metric)}" '
        f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{_e(f"{metric} over time")}">{"".join(parts)}</svg>'
    )


# -- sections ----------------------------------------------------------------------------------
def _header(data: Mapping[str, Any]) -> str:
    subject = data.get("subject") or {}
    items = [
        f"{label} <b>{_e(subject[key])}</b>"
        for key, label in (
            ("deployment", "Deployment"),
            ("model", "model"),
            ("version", "version"),
            ("window", "window"),
            ("reference", "reference"),
        )
        if subject.get(key) not in (None, "")
    ]
    if data.get("generated_at"):
        items.append(f"generated <b>{_e(data['generated_at'])}</b>")
    line = f'<p class="subject">{" · ".join(items)}</p>' if items else ""
    return f"<header><h1>{_e(data['title'])}</h1>{line}</header>"


def _verdict(drift: Mapping[str, Any] | None) -> str:
    if not drift or not drift.get("columns"):
        return '<div id="verdict" class="verdict none">No drift analysis in this report.</div>'
    n = len(drift["columns"])
    drifted = [str(c) for c in drift.get("drifted_columns") or []]
    yes = bool(drift.get("dataset_drift"))
    names = ", ".join(f"<b>{_e(c)}</b>" for c in drifted) or "none"
    return (
        f'<div id="verdict" class="verdict {"drift" if yes else "ok"}">'
        f"<strong>{'Dataset drift detected' if yes else 'No dataset drift'}</strong>: "
        f"{len(drifted)} of {n} columns drifted ({_pct(drift.get('share_drifted'))}; "
        f"the dataset drifts at {_pct(drift.get('drift_share'))}). Drifted: {names}.</div>"
    )


def _column_row(name: str, c: Mapping[str, Any]) -> tuple[str, list[str]]:
    drifted = bool(c.get("drifted"))
    verdict = ("yes (nulls)" if c.get("null_drift") else "yes") if drifted else "no"
    effect = _num(c.get("effect_size"))
    if effect != DASH and c.get("effect_metric"):
        effect += f" ({_e(c['effect_metric'])})"
    nulls = f"{_pct(c.get('null_share_reference'))} → {_pct(c.get('null_share_current'))}"
    rows = f"{_num(c.get('n_reference'))} / {_num(c.get('n_current'))}"
    p_value = _float(c.get("p_value"))
    p_text = "<0.0001" if p_value is not None and p_value < 1e-4 else _num(p_value)
    cells = [
        _e(name),
        _text(c.get("kind")),
        _text(c.get("test")),
        _num(c.get("statistic")),
        p_text,
        effect,
        _num(c.get("threshold")),
        nulls,
        rows,
        verdict,
    ]
    return ("drifted" if drifted else "", cells)


_COLUMN_HEADERS = (
    "column",
    "kind",
    "test",
    "statistic",
    "p-value",
    "effect size",
    "threshold",
    "nulls",
    "rows (ref / cur)",
    "drifted",
)
_NUM_COLS = {3, 4, 5, 6, 8}


def _drift_section(drift: Mapping[str, Any] | None, prediction: Mapping[str, Any] | None) -> str:
    out = ['<section id="drift"><h2>Data drift</h2>']
    columns: Mapping[str, Any] = (drift or {}).get("columns") or {}
    if not columns:
        out.append('<p class="empty">No columns were compared in this window.</p>')
    else:
        out.append(
            _table(
                _COLUMN_HEADERS, [_column_row(str(k), v) for k, v in columns.items()], _NUM_COLS
            )
        )
        out.append('<h2>Distributions</h2><div class="plots">')
        for name, entry in columns.items():
            out.append(f"<figure><h3>{_e(name)}</h3>{_dist_plot(str(name), entry)}</figure>")
        out.append("</div>")
    out.append("</section>")
    if prediction:
        name = str(prediction.get("column") or "prediction")
        out.append('<section id="prediction-drift"><h2>Prediction drift</h2>')
        out.append(_table(_COLUMN_HEADERS, [_column_row(name, prediction)], _NUM_COLS))
        out.append(
            f"<figure>{_dist_plot(name, prediction, cls='prediction-plot')}</figure></section>"
        )
    return "".join(out)


def _quality_section(quality: Mapping[str, Any] | None) -> str:
    out = ['<section id="quality"><h2>Quality over time</h2>']
    quality = quality or {}
    metrics = [str(m) for m in quality.get("metrics") or []]
    rows, estimated = quality.get("rows") or [], quality.get("estimated") or []
    if not rows and not estimated:
        out.append('<p class="empty">No labelled predictions in this window.</p></section>')
        return "".join(out)
    if not metrics:
        out.append('<p class="empty">No quality metrics were computed.</p>')
    else:
        out.append('<div class="plots">')
        out.extend(f"<figure>{_quality_plot(m, quality)}</figure>" for m in metrics)
        out.append("</div>")
    baseline = quality.get("baseline") or {}
    if baseline:
        out.append(
            "<p>Baseline: "
            + ", ".join(f"{_e(k)} {_num(v)}" for k, v in baseline.items())
            + ".</p>"
        )
    headers = ["window start", "variant", "labelled", *(_e(m) for m in metrics)]
    for title, table_rows in (("", rows), ("Estimated (labels not yet arrived)", estimated)):
        if not table_rows:
            continue
        if title:
            out.append(f"<h3>{title}</h3>")
        cells = [
            (
                "",
                [
                    _text(r.get("window_start")),
                    _text(r.get("variant")),
                    _num(r.get("n_labelled")),
                    *(_num(r.get(m)) for m in metrics),
                ],
            )
            for r in table_rows
        ]
        table = _table(headers, cells, set(range(2, len(headers))))
        if len(cells) > _OPEN_ROWS:  # long tables fold away (<details> needs no script)
            table = f"<details><summary>Table of {len(cells)} rows</summary>{table}</details>"
        out.append(table)
    out.append("</section>")
    return "".join(out)


def _alerts_section(alerts: Sequence[Mapping[str, Any]] | None) -> str:
    out = ['<section id="alerts"><h2>Alerts</h2>']
    if not alerts:
        out.append('<p class="empty">No alerts fired or resolved in this window.</p>')
    else:
        rows = [
            (
                "fired" if a.get("state") == "fired" else "",
                [
                    _text(a.get("at")),
                    _text(a.get("rule")),
                    _text(a.get("state")),
                    _num(a.get("value")),
                    _text(a.get("message")),
                ],
            )
            for a in alerts
        ]
        out.append(_table(["at", "rule", "state", "value", "message"], rows, {3}))
    out.append("</section>")
    return "".join(out)


def render_html(data: Mapping[str, Any]) -> str:
    """The monitoring report as one self-contained HTML page; see the module docstring."""
    if not isinstance(data, Mapping) or not isinstance(data.get("title"), str):
        raise InvalidInput("report data must be a mapping with a 'title' string")
    drift = data.get("drift")
    body = "".join(
        (
            _header(data),
            _verdict(drift),
            _drift_section(drift, data.get("prediction_drift")),
            _quality_section(data.get("quality")),
            _alerts_section(data.get("alerts")),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(data['title'])}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}<footer>Generated by loopml. This file is self-contained: it loads "
        "nothing from the network and runs no scripts.</footer></main></body></html>\n"
    )


def save_html(data: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the report to ``path`` atomically (a temporary file renamed into place)."""
    target = Path(path)
    page = render_html(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
