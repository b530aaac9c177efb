"""The web UI's runs page vs MLflow's UI on the same runs: API calls and first render.

Usage::

    pip install -e ".[dev]"                  # loopml and Playwright in this interpreter
    bash benchmarks/setup_mlflow.sh          # once: MLflow in benchmarks/.venv-mlflow
    apt-get install -y chromium              # if /usr/bin/chromium is missing
    python benchmarks/ui.py [--runs 100000] [--quick] [--json benchmarks/results/ui.json]

**Data.** One experiment of ``--runs`` runs (default 100,000; ``--quick``: 5,000), each with 10
string params ``p0..p9`` (small cardinalities, ``p0`` in ``v0..v9``) and 20 float metrics
``m0..m19`` (one value each, step 0), generated from a fixed seed by ``_ui_worker.py`` and
written into loopml's SQLite store (``SqlTrackingStore.create_run`` + ``write_batches``) and into
MLflow's (``SqlAlchemyStore``; past its first 100 runs, copies of the rows it wrote, see
``_ui_worker.py``; ``--mlflow-fill api`` writes every run through it, ~36 min for 100,000).
Both are cached under ``--cache`` (default ``/tmp/loopml-ui-bench``), keyed by runs, seed and data
version, so a rerun skips the fill (``--refill`` forces it).

**Servers.** Each tool is measured alone: ``python -m loopml server --workers 1`` with
``LOOPML_HOME`` = its cached store, then ``mlflow server --backend-store-uri sqlite:///...
--workers 1`` (MLflow 3 serves with uvicorn, one worker), each on a free 127.0.0.1 port, used
once ``GET /health`` answers, stopped (process group) afterwards. Before each step the script
waits up to ``--idle-wait`` s for an idle CPU.

**View.** The runs page of the experiment filtered by ``params.p0 = 'v3'`` and sorted by ``m0``
descending, both from the URL: loopml ``/#/experiments/<id>?filter=...&order=metrics.m0%20DESC``,
MLflow ``/#/experiments/<id>/runs?searchFilter=...&orderByKey=metrics.%60m0%60&orderByAsc=false``
(the query parameters its experiment page reads).

**Measured.**

1. API. A first load of each page (untimed, it warms the server) records every fetch/XHR the
   page sends. Then over one keep-alive connection (``http.client``), one untimed and
   ``--api-repeats`` (10) timed calls of: the filtered, sorted runs/search exactly as the page
   sent it (loopml: ``POST /api/v1/runs/search``, 50 runs, the first six metric and param keys
   as columns; MLflow: ``POST /ajax-api/2.0/mlflow/runs/search``, 100 runs, everything); loopml's
   ``GET /api/v1/experiments/<id>/keys`` (its page waits for it before it searches) and the two
   in sequence; loopml's search with MLflow's shape (100 runs, all keys); and every read the page
   sent, replayed one after the other (sum of medians).
2. Render. Headless ``/usr/bin/chromium`` through Playwright (viewport 1280x720): the time from
   ``page.goto(url)`` until the first row of the filtered, sorted table, that is the expected top
   run, is visible (loopml: ``table[aria-label=runs] tr[data-run]``; MLflow: ag-grid row 0),
   ``--render-repeats`` (5) times each in a fresh browser context (cold: empty cache and storage)
   and as many reloads in one context after an untimed load (warm). Three more cold loads with
   a MutationObserver record, on the browser's clock (from navigation start), when the row
   entered the DOM, and the timing of every file and API call (``render.probe`` in the JSON:
   where the time goes). The floor row is the same steps for the server's ``/health`` (a
   one-line page): what a new context's first navigation and Playwright's round trips cost.

Every answer and every page is checked: the run names of the first page must be the expected
ones, in order, and the page must show the filter (``MISMATCH`` warnings otherwise);
screenshots of a cold and a warm load go to ``--shots`` (default ``<cache>/shots``). The table
shows medians and the ratio MLflow / loopml (above 1: loopml is faster), then the issue's
targets: the first page under 300 ms, at least 10x faster than MLflow. ``--json`` writes every
figure, the exact requests, versions (MLflow, Chromium, Playwright), the data shape, the
commit and whether loopml's UI or search sources changed during the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _ui_worker import CARDINALITY, N_METRICS, N_PARAMS, expected_page

from serving import wait_idle
from tracking import MLFLOW_VENV, Server, clean_env, free_port, log, render_table, tail

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_ui_worker.py"
CHROMIUM = Path("/usr/bin/chromium")
DATA_VERSION = 1  # bump when _ui_worker's data or fill changes: the cache key
SEED = 20250101
FILTER = "params.p0 = 'v3'"
FILTER_PARAM, FILTER_VALUE, ORDER_METRIC = "p0", "v3", "m0"
LOOPML_ORDER = "metrics.m0 DESC"
# MLflow's UI keeps the sort in orderByKey/orderByAsc and the filter in searchFilter (read from
# the URL by its experiment page); sorting by the m0 column in its table writes metrics.`m0`.
MLFLOW_ORDER_KEY = "metrics.`m0`"
LOOPML_PAGE_SIZE = 50  # what loopml's runs page asks for by default
MLFLOW_PAGE_SIZE = 100  # what MLflow's runs page asks for
TARGET_MS = 300.0
TARGET_RATIO = 10.0
API_WARMUP = 1  # untimed calls of each request after the warm-up page load has sent it once
WAIT_MS = 180_000  # the longest a load may take before it counts as failed
SHOTS = Path("/tmp/loopml-ui-bench/shots")  # screenshots (set from --shots)
# Replayed from what the page sent: only reads (GET, and POSTs that search or query).
READ_POSTS = ("/search", "/search-datasets", "/graphql")
SRC_WATCH = [
    "src/loopml/server/ui",
    "src/loopml/server/_ui.py",
    "src/loopml/server/_tracking_api.py",
    "src/loopml/tracking/_sql.py",
    "src/loopml/tracking/_search_plan.py",
    "src/loopml/tracking/_search_sql.py",
]


# -- small helpers -----------------------------------------------------------------------------
def med(xs: list[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(xs) if xs else None


def git(*args: str) -> str:
    """Output of a read-only git command in the repository ('' if it fails)."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout


def src_digest() -> str:
    """The first 16 hex digits of the SHA-256 of the watched source files (UI, search route)."""
    h = hashlib.sha256()
    for rel in SRC_WATCH:
        p = REPO / rel
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        for f in files:
            if f.exists() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(REPO)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def dump(obj: Any) -> bytes:
    """Compact JSON, as a browser's ``JSON.stringify`` writes it."""
    return json.dumps(obj, separators=(",", ":")).encode()


# -- the data ----------------------------------------------------------------------------------
def ensure_filled(
    tool: str, n: int, cache: Path, method: str, refill: bool, env: dict[str, str]
) -> dict[str, Any]:
    """Fill ``tool``'s store once per (runs, seed, data version, method); return its stats."""
    key = f"runs{n}-seed{SEED}-v{DATA_VERSION}"
    folder = cache / key / (tool if tool == "loopml" else f"mlflow-{method}")
    marker = folder / "fill.json"
    if marker.exists() and not refill:
        stats = json.loads(marker.read_text())
        log(f"{tool}: reusing the filled store in {folder} ({n:,} runs)")
        return {**stats, "folder": str(folder), "cached": True}
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = folder / "fill.tmp.json"
    if tool == "loopml":
        cmd = [sys.executable, str(WORKER), "fill-loopml", "--home", str(folder)]
        env = {**env, "LOOPML_HOME": str(folder)}
    else:
        py = MLFLOW_VENV / "bin" / "python"
        cmd = [str(py), str(WORKER), "fill-mlflow", "--dir", str(folder), "--method", method]
    cmd += ["--runs", str(n), "--seed", str(SEED), "--out", str(out)]
    log(f"{tool}: filling {n:,} runs into {folder} ({' '.join(cmd[1:3])})")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=folder, check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{tool} fill exited with {proc.returncode} (state in {folder})")
    stats = json.loads(out.read_text())
    stats["fill_wall_seconds"] = time.perf_counter() - t0
    out.rename(marker)
    marker.write_text(json.dumps(stats, indent=2))
    log(f"{tool}: filled in {stats['fill_wall_seconds']:.0f} s")
    return {**stats, "folder": str(folder), "cached": False}


# -- HTTP --------------------------------------------------------------------------------------
class Http:
    """One keep-alive HTTP/1.1 connection to a server; every call timed to the last byte."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_MS / 1000)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        """(milliseconds, status, body) of one request."""
        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # a dropped keep-alive connection: reconnect once
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_MS / 1000)
            t0 = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        return (time.perf_counter() - t0) * 1000, resp.status, data

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """The parsed answer of one request (raises on a status >= 400)."""
        _, status, data = self.call(method, path, None if body is None else dump(body))
        if status >= 400:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
        return json.loads(data)

    def timed(
        self, method: str, path: str, body: bytes | None, warmup: int, repeats: int
    ) -> dict[str, Any]:
        """``warmup`` untimed calls, then ``repeats`` timed ones: times, median, sizes."""
        for _ in range(warmup):
            self.call(method, path, body)
        times, sizes, statuses = [], set(), set()
        data = b""
        for _ in range(repeats):
            ms, status, data = self.call(method, path, body)
            times.append(ms)
            sizes.add(len(data))
            statuses.add(status)
        return {
            "method": method,
            "path": path,
            "body": None if body is None else body.decode(),
            "times_ms": times,
            "median_ms": med(times),
            "min_ms": min(times),
            "status": sorted(statuses),
            "response_bytes": sorted(sizes),
            "_last": data,
        }

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def run_names(answer: dict[str, Any]) -> list[str]:
    """The run names of a runs/search answer, in order."""
    return [r["info"]["run_name"] for r in answer.get("runs", [])]


def check_page(
    what: str, names: list[str], expected: dict[str, Any], limit: int, problems: list[str]
) -> dict[str, Any]:
    """Compare a page of run names with the expected first ``limit`` runs."""
    want = expected["top_names"][: min(limit, expected["matching"])]
    ok = names == want
    if not ok:
        problems.append(
            f"MISMATCH: {what} returned {len(names)} runs {names[:3]}..., expected "
            f"{len(want)} {want[:3]}..."
        )
    return {"rows": len(names), "expected_rows": len(want), "first": names[:3], "ok": ok}


def replayable(req: dict[str, Any]) -> bool:
    """Whether a request the page sent only reads (safe to replay)."""
    if req["method"] == "GET":
        return True
    path = urllib.parse.urlsplit(req["url"]).path
    body = req.get("post_data") or ""
    if path.endswith("/graphql"):
        return "mutation" not in body
    return req["method"] == "POST" and path.endswith(READ_POSTS)


# -- the browser -------------------------------------------------------------------------------
ROWS_JS = {
    "loopml": """() => Array.from(document.querySelectorAll(
        'table[aria-label=runs] tbody tr[data-run]')).slice(0, 10)
        .map((tr) => (tr.querySelector('a') || tr).textContent.trim())""",
    # ag-grid draws one element per row and pinned part; row-index is the display order.
    "mlflow": """() => { const m = new Map();
        for (const r of document.querySelectorAll('.ag-row[row-index]')) {
          for (const a of r.querySelectorAll('a')) {
            const t = a.textContent.trim();
            if (t.startsWith('run-')) m.set(Number(r.getAttribute('row-index')), t);
          }
        }
        return [...m.entries()].sort((a, b) => a[0] - b[0]).slice(0, 10).map((e) => e[1]); }""",
}
FILTER_SHOWN_JS = (
    "(f) => Array.from(document.querySelectorAll('input, textarea')).some((i) => i.value === f)"
)
VIEWPORT = {"width": 1280, "height": 720}
NAV_JS = """() => { const n = performance.getEntriesByType('navigation')[0];
    return n ? {response_end_ms: n.responseEnd, dom_content_loaded_ms: n.domContentLoadedEventEnd,
                load_ms: n.loadEventEnd} : null; }"""


def first_row_selector(tool: str, top_name: str) -> str:
    """The element that is visible once the first row of the expected page is drawn."""
    if tool == "loopml":
        return f'table[aria-label=runs] tbody tr[data-run]:first-child a:has-text("{top_name}")'
    return f'.ag-row[row-index="0"] a:has-text("{top_name}")'


def page_url(tool: str, base: str, exp_id: str) -> str:
    """The runs page of the experiment with the filter and the order in the URL."""
    q = urllib.parse.quote
    if tool == "loopml":
        return f"{base}/#/experiments/{exp_id}?filter={q(FILTER)}&order={q(LOOPML_ORDER)}"
    return (
        f"{base}/#/experiments/{exp_id}/runs?searchFilter={q(FILTER)}"
        f"&orderByKey={q(MLFLOW_ORDER_KEY)}&orderByAsc=false"
    )


class Recorder:
    """The fetch/XHR requests of one page load, with their timing relative to its start."""

    def __init__(self, page: Any) -> None:
        self.t0 = time.perf_counter()
        self.reqs: list[dict[str, Any]] = []
        self._by_req: dict[int, dict[str, Any]] = {}
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_finished)

    def _now(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 1)

    def _on_request(self, req: Any) -> None:
        if req.resource_type not in ("fetch", "xhr"):
            return
        entry = {
            "method": req.method,
            "url": req.url,
            "post_data": req.post_data,
            "start_ms": self._now(),
        }
        self._by_req[id(req)] = entry
        self.reqs.append(entry)

    def _on_finished(self, req: Any) -> None:
        entry = self._by_req.get(id(req))
        if entry is not None:
            entry["end_ms"] = self._now()
            resp = req.response()
            entry["status"] = resp.status if resp is not None else None


def load_once(
    ctx: Any, tool: str, url: str, top_name: str, record: bool = False, page: Any = None
) -> dict[str, Any]:
    """One measured load: ``page.goto(url)`` (or a reload of ``page``) until the first row."""
    page = page or ctx.new_page()
    rec = Recorder(page) if record else None
    sel = first_row_selector(tool, top_name)
    t0 = time.perf_counter()
    if rec is not None:
        rec.t0 = t0
    if page.url.startswith("http"):
        page.reload(wait_until="commit")
    else:
        page.goto(url, wait_until="commit")
    try:
        page.wait_for_selector(sel, state="visible", timeout=WAIT_MS)
    except Exception as exc:  # keep what the page showed instead
        shot = SHOTS / f"{tool}-failed.png"
        page.screenshot(path=str(shot))
        (SHOTS / f"{tool}-failed.html").write_text(page.content())
        raise RuntimeError(f"no first row {sel!r} (page saved as {shot}): {exc}") from exc
    ms = (time.perf_counter() - t0) * 1000
    out: dict[str, Any] = {"ms": ms, "page": page}
    out["rows"] = page.evaluate(ROWS_JS[tool])
    out["filter_shown"] = page.evaluate(FILTER_SHOWN_JS, FILTER)
    out["navigation"] = page.evaluate(NAV_JS)
    if rec is not None:
        page.wait_for_timeout(3000)  # let late requests finish; they are recorded, not timed
        out["requests"] = rec.reqs
    return out


ROW_IN_DOM_JS = {
    "loopml": """(() => { const a = document.querySelector(
        'table[aria-label=runs] tbody tr[data-run] a');
        return !!a && a.textContent.trim() === TOP; })()""",
    "mlflow": """Array.from(document.querySelectorAll('.ag-row[row-index="0"] a'))
        .some((a) => a.textContent.trim() === TOP)""",
}
PROBE_INIT_JS = """(() => {
  const TOP = %s;
  const obs = new MutationObserver(() => {
    if (!window.__firstRowAt && %s) { window.__firstRowAt = performance.now(); obs.disconnect(); }
  });
  obs.observe(document, {childList: true, subtree: true, characterData: true});
})();"""
PROBE_READ_JS = """() => ({
  first_row_in_dom_ms: window.__firstRowAt || null,
  first_contentful_paint_ms: (performance.getEntriesByName('first-contentful-paint')[0]
    || {}).startTime || null,
  resources: performance.getEntriesByType('resource').map((e) => ({
    name: e.name, type: e.initiatorType, start_ms: e.startTime, end_ms: e.responseEnd,
    transfer_bytes: e.transferSize, body_bytes: e.encodedBodySize,
    decoded_bytes: e.decodedBodySize})),
})"""


def probe_load(browser: Any, tool: str, url: str, expected: dict[str, Any]) -> dict[str, Any]:
    """One more cold load, not counted: when (browser clock, from navigation start) the first
    row entered the DOM, and the timing of every resource, to see where the time goes."""
    top = expected["top_names"][0]
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        ctx.add_init_script(PROBE_INIT_JS % (json.dumps(top), ROW_IN_DOM_JS[tool]))
        load = load_once(ctx, tool, url, top)
        load["page"].wait_for_timeout(500)
        got = load["page"].evaluate(PROBE_READ_JS)
    finally:
        ctx.close()
    res = got["resources"]
    scripts = [r for r in res if r["type"] in ("script", "link", "css", "other")]
    calls = [r for r in res if r["type"] in ("fetch", "xmlhttprequest")]
    return {
        "playwright_ms": load["ms"],
        "navigation": load["navigation"],
        "first_row_in_dom_ms": got["first_row_in_dom_ms"],
        "first_contentful_paint_ms": got["first_contentful_paint_ms"],
        "static_files": len(scripts),
        "static_transfer_bytes": sum(r["transfer_bytes"] for r in scripts),
        "static_decoded_bytes": sum(r["decoded_bytes"] for r in scripts),
        "static_last_end_ms": max((r["end_ms"] for r in scripts), default=None),
        "api_calls": [
            {k: r[k] for k in ("name", "start_ms", "end_ms", "transfer_bytes")} for r in calls
        ],
        "resources": res,
    }


def check_load(
    tool: str, what: str, load: dict[str, Any], expected: dict[str, Any], problems: list[str]
) -> None:
    """The page shows the expected first runs, in order, and the filter."""
    want = expected["top_names"][:10]
    rows = load["rows"]
    if not rows or rows != want[: len(rows)]:
        problems.append(f"MISMATCH: {tool} {what}: first rows {rows[:3]}, expected {want[:3]}")
    if not load["filter_shown"]:
        problems.append(f"{tool} {what}: the filter box does not show {FILTER!r}")


def warmup_load(
    browser: Any, tool: str, url: str, expected: dict[str, Any], problems: list[str]
) -> dict[str, Any]:
    """One untimed load in a fresh context, recording the requests the page sends."""
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        load = load_once(ctx, tool, url, expected["top_names"][0], record=True)
        check_load(tool, "warm-up load", load, expected, problems)
    finally:
        ctx.close()
    return {"ms": load["ms"], "requests": load["requests"], "navigation": load["navigation"]}


def measure_render(
    browser: Any,
    tool: str,
    url: str,
    expected: dict[str, Any],
    repeats: int,
    shots: Path,
    problems: list[str],
) -> dict[str, Any]:
    """``repeats`` loads each in a fresh context (cold), then ``repeats`` reloads in one context
    after an untimed first load (warm); screenshots of the first cold and the last warm load."""
    top = expected["top_names"][0]
    res: dict[str, Any] = {"url": url, "first_row_selector": first_row_selector(tool, top)}
    # The floor: the same steps for the server's /health (a one-line text page), which a new
    # context's first navigation (a new renderer process) and Playwright's round trips cost.
    floor = []
    health = url.split("/#", 1)[0] + "/health"
    for _ in range(repeats):
        ctx = browser.new_context(viewport=VIEWPORT)
        try:
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(health, wait_until="commit")
            page.wait_for_selector("pre", state="visible", timeout=WAIT_MS)
            floor.append((time.perf_counter() - t0) * 1000)
        finally:
            ctx.close()
    res["floor"] = {"url": health, "times_ms": floor, "median_ms": med(floor)}
    cold_ms, nav = [], []
    for i in range(repeats):
        ctx = browser.new_context(viewport=VIEWPORT)
        try:
            load = load_once(ctx, tool, url, top)
            cold_ms.append(load["ms"])
            nav.append(load["navigation"])
            check_load(tool, f"cold load {i + 1}", load, expected, problems)
            if i == 0:
                shot = shots / f"{tool}-cold.png"
                load["page"].screenshot(path=str(shot))
                res["screenshot_cold"] = str(shot)
                res["rows_shown"] = load["rows"]
        finally:
            ctx.close()
    res["cold"] = {"times_ms": cold_ms, "median_ms": med(cold_ms), "navigation": nav}
    probes = [probe_load(browser, tool, url, expected) for _ in range(min(3, repeats))]
    in_dom = [p["first_row_in_dom_ms"] for p in probes if p["first_row_in_dom_ms"] is not None]
    res["probe"] = probes[len(probes) // 2] if probes else None  # one with every resource
    res["cold_in_browser"] = {
        "what": "navigation start to the first row in the DOM, browser clock (MutationObserver)",
        "times_ms": in_dom,
        "median_ms": med(in_dom),
        "playwright_ms": [p["playwright_ms"] for p in probes],
    }
    warm_ms = []
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        load = load_once(ctx, tool, url, top)  # fills the context's cache; not timed
        page = load["page"]
        for i in range(repeats):
            load = load_once(ctx, tool, url, top, page=page)
            warm_ms.append(load["ms"])
            check_load(tool, f"warm reload {i + 1}", load, expected, problems)
        shot = shots / f"{tool}-warm.png"
        page.screenshot(path=str(shot))
        res["screenshot_warm"] = str(shot)
        res["warm_final_url"] = page.url
    finally:
        ctx.close()
    res["warm"] = {"times_ms": warm_ms, "median_ms": med(warm_ms)}
    return res


# -- one tool ----------------------------------------------------------------------------------
def server_cmd(tool: str, folder: Path, port: int) -> list[str]:
    """``loopml server`` (one worker, its default) or ``mlflow server --workers 1``."""
    if tool == "loopml":
        return [sys.executable, "-m", "loopml", "server", "--host", "127.0.0.1"] + [
            "--port",
            str(port),
            "--workers",
            "1",
        ]
    return [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "art"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def measure_api(
    tool: str,
    h: Http,
    exp_id: str,
    page_requests: list[dict[str, Any]],
    expected: dict[str, Any],
    args: argparse.Namespace,
    problems: list[str],
) -> dict[str, Any]:
    """The runs page's API requests, each warmed up and timed over one connection."""
    reps, warm = args.api_repeats, API_WARMUP
    res: dict[str, Any] = {}
    search_path = "/api/v1/runs/search" if tool == "loopml" else "/ajax-api/2.0/mlflow/runs/search"
    sent = [
        r
        for r in page_requests
        if r["method"] == "POST"
        and urllib.parse.urlsplit(r["url"]).path == search_path
        and FILTER in (r.get("post_data") or "")
    ]
    if tool == "loopml":
        keys_path = f"/api/v1/experiments/{exp_id}/keys"
        keys = h.timed("GET", keys_path, None, warm, reps)
        kd = json.loads(keys.pop("_last"))
        cols = {"metrics": kd["metrics"][:6], "params": kd["params"][:6], "tags": []}
        body = {
            "experiment_ids": [exp_id],
            "filter": FILTER,
            "order_by": [LOOPML_ORDER],
            "max_results": LOOPML_PAGE_SIZE,
            "page_token": None,
            "columns": cols,
        }
        limit = LOOPML_PAGE_SIZE
        res["keys"] = keys
        # the same request as MLflow's page: 100 runs, every metric, param and tag
        same = {k: v for k, v in body.items() if k not in ("columns", "page_token")}
        same["max_results"] = MLFLOW_PAGE_SIZE
        res["same_shape"] = h.timed("POST", search_path, dump(same), warm, reps)
        names = run_names(json.loads(res["same_shape"].pop("_last")))
        res["same_shape"]["check"] = check_page(
            "loopml search (100 runs, all keys)", names, expected, MLFLOW_PAGE_SIZE, problems
        )
    else:
        body = {
            "experiment_ids": [exp_id],
            "filter": FILTER,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": MLFLOW_PAGE_SIZE,
            "order_by": [f"{MLFLOW_ORDER_KEY} DESC"],
        }
        limit = MLFLOW_PAGE_SIZE
    raw = dump(body)
    res["search_assumed_body"] = raw.decode()
    if sent:  # time exactly what the page sent
        page_body = json.loads(sent[-1]["post_data"])
        if page_body != body:
            problems.append(
                f"{tool}: the page sent {sent[-1]['post_data']} for the filtered search, the "
                f"benchmark assumed {raw.decode()}: timing what the page sent"
            )
            limit = int(page_body.get("max_results", limit))
        raw = sent[-1]["post_data"].encode()
        same = "the same as" if page_body == body else "NOT the same as"
        res["search_body_from"] = f"recorded from the page ({same} the assumed request)"
    else:
        problems.append(f"{tool}: the page sent no filtered runs/search; timing {raw.decode()}")
        res["search_body_from"] = "assumed (the page sent none)"
    res["search"] = h.timed("POST", search_path, raw, warm, reps)
    names = run_names(json.loads(res["search"].pop("_last")))
    res["search"]["check"] = check_page(
        f"{tool} search as the page sends it", names, expected, limit, problems
    )
    if tool == "loopml":
        pair = []
        for _ in range(reps):  # keys then search, as the page (the search waits for the keys)
            a, _, _ = h.call("GET", f"/api/v1/experiments/{exp_id}/keys")
            b, _, _ = h.call("POST", search_path, raw)
            pair.append(a + b)
        res["keys_then_search"] = {"times_ms": pair, "median_ms": med(pair)}
    # Every read the page sent, one after the other: the page's API work as a whole.
    # (A request timed above is not sent again: MLflow's search takes a minute at 100,000 runs.)
    done = {(t["method"], t["path"], t["body"]): t for t in (res["search"], res.get("keys")) if t}
    replay = []
    for r in page_requests:
        if not replayable(r):
            continue
        parts = urllib.parse.urlsplit(r["url"])
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        pd = r.get("post_data")
        seen = done.get((r["method"], path, pd))
        if seen is not None:
            replay.append({**seen, "same_as_timed_above": True})
            continue
        t = h.timed(r["method"], path, pd.encode() if pd is not None else None, warm, reps)
        t.pop("_last")
        replay.append(t)
    res["page_requests_replayed"] = replay
    res["page_requests_sum_ms"] = sum(t["median_ms"] for t in replay)
    return res


def run_tool(
    tool: str,
    fill: dict[str, Any],
    expected: dict[str, Any],
    browser: Any,
    args: argparse.Namespace,
    problems: list[str],
) -> dict[str, Any]:
    """Start ``tool``'s server on the filled store, measure the API and the page, stop it."""
    folder = Path(fill["folder"])
    exp_id = fill["experiment_id"]
    port = free_port()
    env = clean_env({"LOOPML_HOME": str(folder)} if tool == "loopml" else {})
    srv = Server(server_cmd(tool, folder, port), env, folder, port)
    info: dict[str, Any] = {"server_cmd": srv.cmd, "loadavg_before": os.getloadavg()}
    t_start = time.perf_counter()
    h: Http | None = None
    try:
        log(f"{tool}: starting {' '.join(srv.cmd)}")
        info["server_start_seconds"] = srv.start()
        h = Http(port)
        url = page_url(tool, srv.url, exp_id)
        info["url"] = url
        log(f"{tool}: healthy after {info['server_start_seconds']:.1f} s; warming up, then API")
        if args.idle_wait:
            info["idle_before_api"] = wait_idle(args.idle_wait)
        # Warm-up: the page once (recording what it sends), then every request timed.
        info["warmup_load"] = warmup_load(browser, tool, url, expected, problems)
        reqs = info["warmup_load"]["requests"]
        info["api"] = measure_api(tool, h, exp_id, reqs, expected, args, problems)
        log(
            f"{tool}: search {info['api']['search']['median_ms']:.1f} ms; "
            f"render x{args.render_repeats} cold + warm"
        )
        if args.idle_wait:
            info["idle_before_render"] = wait_idle(args.idle_wait)
        info["render"] = measure_render(
            browser, tool, url, expected, args.render_repeats, args.shots, problems
        )
        log(
            f"{tool}: render cold {info['render']['cold']['median_ms']:.0f} ms, "
            f"warm {info['render']['warm']['median_ms']:.0f} ms"
        )
    except Exception as exc:  # report it and go on with the other tool
        info["error"] = f"{type(exc).__name__}: {exc}"
        log(f"{tool}: FAILED: {info['error']}")
    finally:
        if h is not None:
            h.close()
        srv.stop()
        info["server_log_tail"] = tail(srv.log_path, 30)
        info["loadavg_after"] = os.getloadavg()
        info["wall_seconds"] = time.perf_counter() - t_start
    return info


# -- report ------------------------------------------------------------------------------------
def dig(d: Any, *path: str) -> Any:
    """``d[p0][p1]...`` or None."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def ratio(loop: Any, mlf: Any) -> float | None:
    """MLflow's time / loopml's time (above 1: loopml is faster)."""
    if isinstance(loop, int | float) and isinstance(mlf, int | float) and loop > 0:
        return mlf / loop
    return None


def table_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of both tools side by side."""
    lo, ml = res.get("loopml", {}), res.get("mlflow", {})
    spec = [
        (
            "API runs/search, as each page sends it (ms)",
            ("api", "search", "median_ms"),
            ("api", "search", "median_ms"),
        ),
        ("API keys, loopml's page only (ms)", ("api", "keys", "median_ms"), None),
        (
            "API keys then search (loopml) / search (MLflow) (ms)",
            ("api", "keys_then_search", "median_ms"),
            ("api", "search", "median_ms"),
        ),
        (
            "API runs/search, same request: 100 runs, all keys (ms)",
            ("api", "same_shape", "median_ms"),
            ("api", "search", "median_ms"),
        ),
        (
            "API every read the page sent, one after another (ms)",
            ("api", "page_requests_sum_ms"),
            ("api", "page_requests_sum_ms"),
        ),
        (
            "render cold: goto to first filtered row (ms)",
            ("render", "cold", "median_ms"),
            ("render", "cold", "median_ms"),
        ),
        (
            "render warm: reload to first filtered row (ms)",
            ("render", "warm", "median_ms"),
            ("render", "warm", "median_ms"),
        ),
        (
            "  cold, browser clock: navigation to row in DOM (ms)",
            ("render", "cold_in_browser", "median_ms"),
            ("render", "cold_in_browser", "median_ms"),
        ),
        (
            "  floor: fresh context, goto /health until shown (ms)",
            ("render", "floor", "median_ms"),
            ("render", "floor", "median_ms"),
        ),
    ]
    out = []
    for label, lp, mp in spec:
        lv = dig(lo, *lp)
        mv = dig(ml, *mp) if mp else None
        r = None if "floor" in label else ratio(lv, mv)  # the floor is not the tools' work
        out.append({"label": label, "loopml": lv, "mlflow": mv, "ratio": r})
    return out


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: first page under 300 ms, at least 10x faster than MLflow."""
    rows = {r["label"]: r for r in table_rows(res)}
    out = []
    for label, key in (
        ("API search under 300 ms", "API runs/search, as each page sends it (ms)"),
        (
            "API keys then search under 300 ms",
            "API keys then search (loopml) / search (MLflow) (ms)",
        ),
        ("cold render under 300 ms", "render cold: goto to first filtered row (ms)"),
        ("warm render under 300 ms", "render warm: reload to first filtered row (ms)"),
    ):
        v = rows[key]["loopml"]
        out.append({"target": label, "value": v, "pass": None if v is None else v < TARGET_MS})
    for label, key in (
        ("API search >= 10x MLflow", "API runs/search, as each page sends it (ms)"),
        ("API keys+search >= 10x MLflow", "API keys then search (loopml) / search (MLflow) (ms)"),
        ("cold render >= 10x MLflow", "render cold: goto to first filtered row (ms)"),
        ("warm render >= 10x MLflow", "render warm: reload to first filtered row (ms)"),
    ):
        v = rows[key]["ratio"]
        out.append({"target": label, "value": v, "pass": None if v is None else v >= TARGET_RATIO})
    return out


def print_report(res: dict[str, Any], meta: dict[str, Any], problems: list[str]) -> None:
    """The side-by-side table, the targets and any problem."""
    fmt = lambda v, s="{:,.1f}": "-" if v is None else s.format(v)  # noqa: E731
    cells = [
        [r["label"], fmt(r["loopml"]), fmt(r["mlflow"]), fmt(r["ratio"], "{:,.1f}x")]
        for r in table_rows(res)
    ]
    title = (
        f"runs page, {meta['runs']:,} runs: loopml {meta['loopml_version']} vs MLflow "
        f"{meta['mlflow_version'] or '-'} | Chromium {meta['chromium_version'] or '-'} | "
        f"{meta['date']} | nproc={meta['nproc']}{' | QUICK' if meta['quick'] else ''}"
    )
    caption = (
        f"medians: API x{meta['api_repeats']}, render x{meta['render_repeats']}; "
        f"filter {FILTER}, order m0 DESC; ratio = MLflow time / loopml time (>1: loopml faster)"
    )
    render_table(title, ["measure", "loopml", "MLflow", "ratio"], cells, caption)
    for t in targets(res):
        v = t["value"]
        shown = "-" if v is None else (f"{v:,.1f}x" if "x MLflow" in t["target"] else f"{v:,.0f}")
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        print(f"target: {t['target']:<32} {shown:>10}  {verdict}")
    for tool, date in meta.get("reused", {}).items():
        print(f"NOTE: {tool}'s figures are reused from an earlier run ({date})")
    for p in problems:
        print(f"WARNING: {p}")
    if not problems:
        print("checks: both APIs and both pages showed the expected runs in the expected order")


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Fill (or reuse) both stores, measure each server alone, report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=None, help="runs in the experiment (100,000)")
    ap.add_argument("--quick", action="store_true", help="5,000 runs, fewer repeats")
    ap.add_argument("--only", choices=["loopml", "mlflow"], help="measure one tool only")
    ap.add_argument("--api-repeats", type=int, default=None, help="timed API calls (10)")
    ap.add_argument("--render-repeats", type=int, default=None, help="cold and warm loads (5)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/loopml-ui-bench"))
    ap.add_argument(
        "--mlflow-fill",
        choices=["template", "api"],
        default="template",
        help="MLflow: copy the rows its store writes (fast) or write every run through it",
    )
    ap.add_argument("--refill", action="store_true", help="fill the stores again")
    ap.add_argument(
        "--reuse",
        type=Path,
        help="take the tool not measured now (--only) from an earlier --json file (same runs)",
    )
    ap.add_argument(
        "--idle-wait",
        type=float,
        default=120.0,
        metavar="S",
        help="before each tool's API and render steps, wait up to S s for an idle CPU (0: no)",
    )
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--shots", type=Path, help="screenshots folder (default: <cache>/shots)")
    args = ap.parse_args(argv)
    args.runs = args.runs or (5_000 if args.quick else 100_000)
    args.api_repeats = args.api_repeats or (5 if args.quick else 10)
    args.render_repeats = args.render_repeats or (3 if args.quick else 5)
    global SHOTS
    SHOTS = args.shots = args.shots or args.cache / "shots"
    args.shots.mkdir(parents=True, exist_ok=True)

    tools = [args.only] if args.only else ["loopml", "mlflow"]
    if "mlflow" in tools and not (MLFLOW_VENV / "bin" / "mlflow").exists():
        ap.error(f"{MLFLOW_VENV} has no mlflow: run `bash benchmarks/setup_mlflow.sh` first")
    if not CHROMIUM.exists():
        ap.error(f"{CHROMIUM} not found: `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    import loopml

    t_all = time.perf_counter()
    digest_before = src_digest()
    env = clean_env({})
    fills = {
        t: ensure_filled(t, args.runs, args.cache, args.mlflow_fill, args.refill, env)
        for t in tools
    }
    log(f"expected page: runs with {FILTER} by m0 DESC")
    expected = expected_page(
        args.runs, SEED, FILTER_PARAM, FILTER_VALUE, ORDER_METRIC, MLFLOW_PAGE_SIZE
    )
    problems: list[str] = []
    results: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        chromium_version = browser.version
        try:
            for tool in tools:
                results[tool] = run_tool(tool, fills[tool], expected, browser, args, problems)
        finally:
            browser.close()
    if args.reuse:
        old = json.loads(args.reuse.read_text())
        for tool in ("loopml", "mlflow"):
            if tool in results or tool not in old.get("results", {}):
                continue
            if old["meta"]["runs"] != args.runs:
                log(
                    f"{tool}: not reused from {args.reuse}: measured on {old['meta']['runs']} runs"
                )
                continue
            results[tool] = {**old["results"][tool], "reused": str(args.reuse)}
            fills[tool] = old["fills"][tool]
            results[tool]["reused_date"] = old["meta"]["date"]
            log(f"{tool}: figures reused from {args.reuse} ({old['meta']['date']})")
    for tool, r in results.items():
        if "error" in r:
            problems.append(f"{tool}: {r['error']}")
    notes = []
    for tool, r in results.items():
        for step in ("api", "render"):
            idle = r.get(f"idle_before_{step}")
            if idle and idle["busy_cores"] >= 0.3:
                notes.append(
                    f"NOTE: {idle['busy_cores']:.2f} cores busy with other work before {tool}'s "
                    f"{step} step (waited {idle['waited_seconds']:.0f} s): its figures may be "
                    "noisy; rerun on an idle machine"
                )
    digest_after = src_digest()
    if digest_after != digest_before:
        problems.append("loopml's UI or search sources changed during the run: rerun")
    mlflow_version = fills.get("mlflow", {}).get("version")
    reused = {t: r["reused_date"] for t, r in results.items() if r.get("reused")}
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": args.runs,
        "quick": args.quick,
        "argv": sys.argv[1:],
        "api_repeats": args.api_repeats,
        "render_repeats": args.render_repeats,
        "loopml_version": loopml.__version__,
        "mlflow_version": mlflow_version,
        "chromium_version": chromium_version,
        "playwright_version": importlib.metadata.version("playwright"),
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "commit": git("rev-parse", "HEAD").strip(),
        "src_changed": git("status", "--porcelain", "--", "src").splitlines(),
        "src_digest_before": digest_before,
        "src_digest_after": digest_after,
        "total_wall_seconds": time.perf_counter() - t_all,
        "reused": reused,
    }
    data = {
        "runs": args.runs,
        "seed": SEED,
        "experiments": 1,
        "params": {f"p{j}": f"strings v0..v{k - 1}" for j, k in enumerate(CARDINALITY)},
        "metrics": f"m0..m{N_METRICS - 1}: one float in [0, 1) each, step 0",
        "n_params": N_PARAMS,
        "n_metrics": N_METRICS,
        "run_tags": "mlflow.runName only",
        "filter": FILTER,
        "order": "metrics.m0 DESC",
        "matching_runs": expected["matching"],
        "expected_first_names": expected["top_names"][:10],
        "cache": str(args.cache),
    }
    print_report(results, meta, problems)
    for n in notes:
        print(n)
    if args.json:
        payload = {
            "meta": meta,
            "data": data,
            "fills": fills,
            "results": results,
            "table": table_rows(results),
            "targets": targets(results),
            "problems": problems,
            "notes": notes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        print(f"all figures written to {args.json}")
    return 1 if any("error" in r for r in results.values() if not r.get("reused")) else 0


if __name__ == "__main__":
    sys.exit(main())
