"""The HTML monitoring report: escaping, no remote resources, the awkward inputs, atomic saves,
and a real headless Chromium that draws every plot offline with no console error."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.monitoring import detect_drift
from loopml.monitoring._report import render_html, save_html

HOSTILE = "<script>alert(1)</script>"


# -- inputs ------------------------------------------------------------------------------------
def drift_data(*, hostile: bool = False, seed: int = 0) -> dict[str, Any]:
    """``detect_drift(...).to_dict()`` (with its plot distributions) on a shifted sample."""
    rng = np.random.default_rng(seed)
    n = 800
    countries = ["FR", "DE", "ES", "IT", "PL"]
    ref = pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 0.6, n),
            "age": rng.normal(40, 12, n).round(),
            "country": rng.choice(countries, n, p=[0.35, 0.3, 0.15, 0.15, 0.05]),
            "n_items": rng.integers(1, 6, n),
        }
    )
    cur = pd.DataFrame(
        {
            "amount": rng.lognormal(3.3, 0.7, n),
            "age": rng.normal(40, 12, n).round(),
            "country": rng.choice(countries, n, p=[0.2, 0.25, 0.15, 0.15, 0.25]),
            "n_items": rng.integers(1, 6, n),
        }
    )
    cur.loc[: n // 20, "age"] = np.nan
    if hostile:
        ref[HOSTILE] = rng.choice(["a", "<b>"], n, p=[0.7, 0.3])
        cur[HOSTILE] = rng.choice(["a", "<b>"], n, p=[0.4, 0.6])
    drift = detect_drift(ref, cur).to_dict()
    assert all("distribution" in col for col in drift["columns"].values())
    return drift


def report_data(*, hostile: bool = False) -> dict[str, Any]:
    """A full report: a day of hourly quality for two variants, estimates, alerts."""
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2026-03-01T00:00:00Z")
    rows, estimated = [], []
    for hour in range(24):
        for variant, level in (("primary", 0.91), ("canary", 0.88)):
            labelled = int(rng.integers(0, 400)) if hour != 7 else 0
            row: dict[str, Any] = {
                "window_start": (start + pd.Timedelta(hours=hour)).isoformat(),
                "variant": variant,
                "n_labelled": labelled,
                "accuracy": level - 0.004 * max(hour - 14, 0) + rng.normal(0, 0.006),
                "f1": level - 0.03 - 0.005 * max(hour - 14, 0) + rng.normal(0, 0.008),
            }
            if labelled == 0:
                row["accuracy"], row["f1"] = None, float("nan")
            (estimated if hour >= 20 else rows).append(row)
    return {
        "title": f"Monitoring report: fraud {HOSTILE if hostile else ''}".strip(),
        "generated_at": "2026-03-02T00:05:00+00:00",
        "subject": {
            "deployment": "fraud",
            "model": "fraud-model",
            "version": "7",
            "window": "2026-03-01T00:00Z … 2026-03-02T00:00Z (24h)",
            "reference": "training dataset fraud-train@3",
        },
        "drift": drift_data(hostile=hostile),
        "prediction_drift": None,
        "quality": {
            "metrics": ["accuracy", "f1"],
            "rows": rows,
            "baseline": {"accuracy": 0.91, "f1": 0.88},
            "estimated": estimated,
        },
        "alerts": [
            {
                "rule": "accuracy below baseline - 0.03",
                "state": "fired",
                "at": "2026-03-01T18:00:00+00:00",
                "value": 0.874,
                "message": "primary accuracy 0.874 < 0.880 over the last 3 windows",
            },
            {
                "rule": "dataset drift",
                "state": "resolved",
                "at": "2026-03-01T21:00:00+00:00",
                "value": None,
                "message": f"resolved <after> 3 windows {HOSTILE if hostile else ''}",
            },
        ],
    }


class _Tags(HTMLParser):
    """Every start tag with its attributes, and for each ``<svg>`` the tags drawn inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.svgs: list[tuple[dict[str, str | None], list[tuple[str, dict[str, str | None]]]]] = []
        self._in_svg = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "svg":
            self.svgs.append((dict(attrs), []))
            self._in_svg = True
        elif self._in_svg:
            self.svgs[-1][1].append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in_svg = False


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def _plots(parsed: _Tags, cls: str) -> dict[str, list[tuple[str, dict[str, str | None]]]]:
    key = "data-column" if cls != "quality-plot" else "data-metric"
    return {
        str(attrs[key]): children
        for attrs, children in parsed.svgs
        if cls in str(attrs.get("class", "")).split()
    }


# -- the page as text --------------------------------------------------------------------------
def test_user_strings_are_escaped() -> None:
    page = render_html(report_data(hostile=True))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>&lt;b&gt;</b>" not in page  # the category "<b>" never becomes markup
    assert "&lt;after&gt;" in page
    parsed = _parse(page)
    assert [t for t, _ in parsed.tags if t in ("script", "iframe", "object", "img")] == []
    assert HOSTILE in _plots(parsed, "dist-plot")  # the attribute decodes to the raw name


def test_no_remote_resources_and_no_script() -> None:
    page = render_html(report_data(hostile=True))
    assert "http://" not in page and "https://" not in page
    for tag, attrs in _parse(page).tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            assert attrs.get(name) is None, (tag, name, attrs[name])
        assert tag not in ("script", "link", "img", "iframe")
    assert not re.search(r"@import|url\(", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_sections_tables_and_plots() -> None:
    data = report_data()
    page = render_html(data)
    parsed = _parse(page)
    columns = data["drift"]["columns"]
    drifted = data["drift"]["drifted_columns"]
    assert drifted and len(drifted) < len(columns)  # the example has both kinds of row
    assert "Dataset drift" in page
    assert f"{len(drifted)} of {len(columns)} columns drifted" in page
    assert len([1 for t, a in parsed.tags if t == "tr" and a.get("class") == "drifted"]) == len(
        drifted
    )
    plots = _plots(parsed, "dist-plot")
    assert list(plots) == list(columns)
    for name, children in plots.items():
        kinds = {str(a.get("class")) for t, a in children if t in ("rect", "path")}
        want = (
            {"bar ref", "step cur"}
            if columns[name]["kind"] == "numeric"
            else {"bar ref", "bar cur"}
        )
        assert want <= kinds, name
    quality = _plots(parsed, "quality-plot")
    assert list(quality) == ["accuracy", "f1"]
    for children in quality.values():
        lines = [a for t, a in children if t == "path" and a.get("class") == "line"]
        assert len(lines) == 4  # primary, canary, and each one's estimates
        assert any(t == "line" and a.get("class") == "baseline" for t, a in children)
    assert "Estimated (labels not yet arrived)" in page
    assert page.count('<tr class="fired">') == 1


def test_missing_sections_and_values() -> None:
    page = render_html({"title": "empty"})
    assert "No drift analysis in this report." in page
    assert "No labelled predictions in this window." in page
    assert "No alerts fired or resolved in this window." in page
    assert _parse(page).svgs == []
    with pytest.raises(InvalidInput):
        render_html({"drift": None})

    zero = {"categories": ["a", "b"], "reference": [0.0, 0.0], "current": [0.0, 0.0]}
    one = {"categories": ["only"], "reference": [1.0], "current": [1.0]}
    open_ends = {
        "edges": [-math.inf, 0.0, 1.0, 2.0, math.inf],
        "reference": [0.1, 0.4, 0.4, 0.1],
        "current": [0.0, 0.2, 0.5, float("nan")],
    }
    many = {
        "categories": [f"c{i}" for i in range(60)],
        "reference": [1 / 60] * 60,
        "current": [1 / 60] * 60,
    }
    nameless = {"column": "x", "kind": "numeric", "drifted": False}
    columns = {
        "zero": {"kind": "categorical", "p_value": float("nan"), "distribution": zero},
        "one": {"kind": "categorical", "p_value": None, "statistic": None, "distribution": one},
        "open": {"kind": "numeric", "effect_size": math.inf, "distribution": open_ends},
        "many": {"kind": "categorical", "distribution": many},
        "none": nameless,
    }
    page = render_html(
        {
            "title": "awkward",
            "drift": {"dataset_drift": False, "drift_share": 0.5, "columns": columns},
            "quality": {"metrics": ["accuracy"], "rows": [], "baseline": {}},
            "alerts": [],
        }
    )
    body = page[page.index("<body>") :]
    assert not re.search(r"\b(nan|inf|infinity)\b", body, re.IGNORECASE) and "None" not in body
    assert "—" in page and "−∞" in page and "(other)" in page
    assert "No labelled predictions in this window." in page
    plots = _plots(_parse(page), "dist-plot")
    assert list(plots) == list(columns)
    assert sum(t == "rect" for t, _ in plots["many"]) == 2 * 20  # 19 largest and "(other)"
    assert sum(t == "rect" for t, _ in plots["one"]) == 2
    assert [float(str(a["height"])) for t, a in plots["zero"] if t == "rect"] == [0.0] * 4
    assert not any(t in ("rect", "path") for t, _ in plots["none"])  # "no distribution recorded"


def test_quality_with_one_window_and_gaps() -> None:
    quality = {
        "metrics": ["rmse"],
        "rows": [
            {"window_start": "2026-03-01T00:00:00", "variant": "a", "n_labelled": 5, "rmse": 2.0},
            {"window_start": "not a time", "variant": "b", "n_labelled": 0, "rmse": None},
        ],
        "baseline": {"rmse": 2.0},
    }
    parsed = _parse(render_html({"title": "q", "quality": quality}))
    children = _plots(parsed, "quality-plot")["rmse"]
    assert sum(t == "circle" for t, _ in children) == 1


# -- the file ----------------------------------------------------------------------------------
def test_save_html_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    assert save_html({"title": "first"}, path) == path
    assert "<title>first</title>" in path.read_text(encoding="utf-8")
    with pytest.raises(InvalidInput):
        save_html({"no": "title"}, path)
    assert "<title>first</title>" in path.read_text(encoding="utf-8")
    save_html({"title": "second"}, str(path))
    assert "<title>second</title>" in path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left


# -- a real browser ----------------------------------------------------------------------------
_PLOT_STATE = """svgs => svgs.map(svg => {
  const box = svg.getBoundingClientRect();
  const shape = sel => [...svg.querySelectorAll(sel)].map(e => e.getBBox());
  return {
    key: svg.dataset.column ?? svg.dataset.metric,
    width: box.width, height: box.height,
    ref: shape('rect.bar.ref').map(b => b.height),
    cur: shape('rect.bar.cur, path.step.cur').map(b => b.height),
    lines: shape('path.line').map(b => b.width + b.height),
    baseline: shape('line.baseline').map(b => b.width),
  };
})"""


def test_report_renders_offline_in_chromium(chromium_browser: Any, tmp_path: Path) -> None:
    data = report_data(hostile=True)
    path = save_html(data, tmp_path / "report.html")
    context = chromium_browser.new_context(viewport={"width": 1200, "height": 900})
    requests: list[str] = []

    def guard(route: Any) -> None:
        requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    probe = context.new_page()  # the guard sees and blocks a remote request
    probe.set_content('<img src="https://example.invalid/pixel.png">')
    assert "https://example.invalid/pixel.png" in requests
    requests.clear()

    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.goto(path.as_uri(), wait_until="load")

    verdict = page.locator("#verdict")
    assert data["drift"]["dataset_drift"] is True
    assert verdict.is_visible()
    assert verdict.inner_text().startswith("Dataset drift detected: 3 of 5 columns drifted")
    assert page.locator("script").count() == 0
    assert page.locator("h3", has_text=HOSTILE).count() == 1  # shown as text, not run

    columns = data["drift"]["columns"]
    plots = page.locator("svg.dist-plot").evaluate_all(_PLOT_STATE)
    assert [p["key"] for p in plots] == list(columns)
    for plot in plots:
        column = columns[plot["key"]]
        assert plot["width"] > 100 and plot["height"] > 100, plot["key"]
        assert plot["ref"] and max(plot["ref"]) > 0, plot["key"]  # bars drawn, not flat
        assert plot["cur"] and max(plot["cur"]) > 0, plot["key"]
        # drawn reference bar heights are proportional to the reference shares
        shares = column["distribution"]["reference"]
        drawn = np.array(plot["ref"]) / max(plot["ref"])
        assert drawn == pytest.approx(np.array(shares) / max(shares), abs=0.02), plot["key"]

    quality = page.locator("svg.quality-plot").evaluate_all(_PLOT_STATE)
    assert [q["key"] for q in quality] == data["quality"]["metrics"]
    for q in quality:
        assert q["width"] > 100 and q["height"] > 100
        assert len(q["lines"]) == 4 and min(q["lines"]) > 0
        assert q["baseline"] and q["baseline"][0] > 0

    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert [u for u in requests if not u.startswith("file://")] == []
    assert problems == []
    context.close()
