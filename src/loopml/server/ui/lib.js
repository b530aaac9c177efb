// Shared pieces of the UI: the API client, the hash router, formatting, and small components.
// Every read and change goes through the server's JSON API, like the CLI and the SDK.
import { html, useState, useEffect, useRef, useCallback } from "./vendor/preact-htm.js";

export { html, useState, useEffect, useRef, useCallback };

// -- session and the API ------------------------------------------------------------------------
export const session = {
  workspace: localStorage.getItem("loopml.workspace") || "",
  csrf: null,
  user: null,
  authEnabled: false,
  admin: true,
  roles: {},
};
const listeners = new Set();
export function onSessionChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export function setSession(values) {
  Object.assign(session, values);
  if (values.workspace !== undefined) localStorage.setItem("loopml.workspace", values.workspace);
  listeners.forEach((fn) => fn());
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body, { raw = false } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (session.workspace) headers["X-Loopml-Workspace"] = session.workspace;
  if (session.csrf && method !== "GET") headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path.startsWith("/") ? path : "/api/v1/" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401 && session.authEnabled) {
    setSession({ user: null, csrf: null });
  }
  if (raw && response.ok) return response;
  const text = await response.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!response.ok) {
    throw new ApiError(response.status, data.error_code || "", data.message || response.statusText);
  }
  return data;
}
export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);

// useApi(() => get("..."), [deps]) -> {data, error, loading, reload}
export function useApi(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    Promise.resolve()
      .then(load)
      .then(
        (data) => live && setState({ data, error: null, loading: false }),
        (error) => live && setState({ data: null, error, loading: false }),
      );
    return () => { live = false; };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

// -- routing: #/path?query ---------------------------------------------------------------------
function decodeSegment(segment) {
  try { return decodeURIComponent(segment); } catch { return segment; }
}
export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const at = raw.indexOf("?");
  const path = at < 0 ? raw : raw.slice(0, at);
  const query = at < 0 ? "" : raw.slice(at + 1);
  return { path, parts: path.split("/").filter(Boolean).map(decodeSegment),
    query: Object.fromEntries(new URLSearchParams(query)) };
}
// "#/models/<name>": each path segment is encoded, so a name may hold "%", "?" or "/"
export function href(path, query) {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v != null)).toString() : "";
  const encoded = path.split("/").map((segment) => encodeURIComponent(segment)).join("/");
  return "#" + encoded + (q ? "?" + q : "");
}
export function navigate(path, query, { replace = false } = {}) {
  const target = href(path, query);
  if (replace) history.replaceState(null, "", target);
  else location.hash = target;
  if (replace) window.dispatchEvent(new HashChangeEvent("hashchange"));
}
export const enc = encodeURIComponent;

// -- formatting ----------------------------------------------------------------------------------
export function fmtTime(ms) {
  if (ms == null) return "";
  const d = new Date(Number(ms));
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fmtAgo(ms) {
  if (ms == null) return "never";
  const s = (Date.now() - Number(ms)) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
export function fmtDuration(start, end) {
  if (start == null || end == null) return "";
  const s = (end - start) / 1000;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
export function fmtNum(v, digits = 4) {
  if (v == null || v === "") return "";
  if (typeof v === "string") return v; // "NaN", "Infinity" as the API sends them
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(digits + 1)));
}
export function num(v) {
  if (typeof v === "number") return v;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
export function shortId(id) { return id ? String(id).slice(0, 8) : ""; }
export function statusPill(status) {
  const s = String(status || "");
  const kind = /FINISHED|SUCCEEDED|READY|active|passed|ok|CACHED/i.test(s) ? "good"
    : /FAILED|KILLED|firing|failed|error/i.test(s) ? "bad"
    : /RUNNING|QUEUED|SCHEDULED|running|pending/i.test(s) ? "blue" : "";
  return html`<span class=${"pill " + kind}>${s}</span>`;
}

// -- components ----------------------------------------------------------------------------------
export function ErrorBox({ error }) {
  if (!error) return null;
  const code = error.code ? `${error.code}: ` : "";
  return html`<div class="error" role="alert">${code}${error.message || String(error)}</div>`;
}
export function Loading({ what = "" }) {
  return html`<p class="muted">Loading${what ? " " + what : ""}…</p>`;
}
export function Empty({ children }) { return html`<p class="muted">${children}</p>`; }

// A confirmation dialog whose action is an API call; the server's error is shown in place.
export function Confirm({ title, children, action, label = "Confirm", danger = false, onDone, onCancel }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      const result = await action();
      onDone && onDone(result);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<div class="modal-bg" onClick=${(e) => e.target === e.currentTarget && onCancel()}>
    <div class="modal" role="dialog" aria-label=${title}>
      <h2 style="margin-top:0">${title}</h2>
      ${children}
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button onClick=${onCancel} disabled=${busy}>Cancel</button>
        <button class=${danger ? "danger" : "primary"} onClick=${go} disabled=${busy}>${busy ? "Working…" : label}</button>
      </div>
    </div>
  </div>`;
}

export function Tabs({ tabs, active, onPick }) {
  return html`<div class="tabs" role="tablist">${tabs.map(([key, label]) => html`<button role="tab"
    class=${key === active ? "on" : ""} onClick=${() => onPick(key)}>${label}</button>`)}</div>`;
}

export function KeyValues({ entries, empty = "none" }) {
  if (!entries.length) return html`<span class="muted">${empty}</span>`;
  return html`<table class="t"><tbody>${entries.map(([k, v]) => html`<tr>
    <td class="mono">${k}</td><td class="mono wrap">${v}</td></tr>`)}</tbody></table>`;
}

// -- charts: ECharts, loaded on first use so pages render before it arrives ----------------------
let echartsLoading = null;
export function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  if (!echartsLoading) {
    echartsLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/ui/vendor/echarts.min.js";
      script.onload = () => resolve(window.echarts);
      script.onerror = () => reject(new Error("could not load the charting library"));
      document.head.appendChild(script);
    });
  }
  return echartsLoading;
}

export function Chart({ option, tall = false, label = "chart" }) {
  const ref = useRef(null);
  const chart = useRef(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    loadECharts().then((echarts) => {
      if (!live || !ref.current) return;
      if (!chart.current) chart.current = echarts.init(ref.current, null, { renderer: "canvas" });
      chart.current.setOption(option, true);
    }, setError);
    return () => { live = false; };
  }, [option]);
  useEffect(() => {
    const resize = () => chart.current && chart.current.resize();
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      if (chart.current) chart.current.dispose();
      chart.current = null;
    };
  }, []);
  return html`<div><${ErrorBox} error=${error} /><div ref=${ref} class=${tall ? "chart tall" : "chart"}
    data-chart=${label} role="img" aria-label=${label}></div></div>`;
}

export function lineOption({ series, xName = "step", yLog = false, xTime = false, title = "" }) {
  return {
    animation: false,
    title: title ? { text: title, textStyle: { fontSize: 13 } } : undefined,
    tooltip: { trigger: "axis" },
    legend: { type: "scroll", bottom: 0 },
    grid: { left: 56, right: 20, top: title ? 36 : 16, bottom: 48 },
    xAxis: { type: xTime ? "time" : "value", name: xName, nameLocation: "middle", nameGap: 26, scale: true },
    yAxis: { type: yLog ? "log" : "value", scale: true },
    dataZoom: [{ type: "inside" }],
    series: series.map((s) => ({ type: "line", showSymbol: s.data.length < 40, sampling: "lttb", ...s })),
  };
}

// exponential moving average with MLflow-style debiasing; weight in [0, 1)
export function smooth(values, weight) {
  if (!weight) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - Math.pow(weight, n));
  });
}
