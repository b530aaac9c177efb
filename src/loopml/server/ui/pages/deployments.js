// Deployments: variants and their traffic split, live requests/s, latency and errors, the rollout and its steps, every change
// (revision history); change traffic, promote a variant, roll back — each confirmed, each through
// the same API as the CLI.
import {
  html, useState, useEffect, get, post, useApi, ErrorBox, Loading, Empty, Confirm, Chart, fmtTime, fmtAgo,
  fmtNum, statusPill, href, enc,
} from "../lib.js";

function modelLink(uri) {
  const m = /^models:\/([^/]+)\/(\d+)$/.exec(uri || "");
  return m ? html`<a href=${href("/models/" + m[1])}>${m[1]} v${m[2]}</a>` : html`<span class="mono">${uri}</span>`;
}

export function DeploymentsPage() {
  const deps = useApi(() => get("deployments"), []);
  return html`<div>
    <h1>Deployments</h1>
    <div class="sub">Which model versions answer requests, and with what share of the traffic.</div>
    <${ErrorBox} error=${deps.error} />
    ${deps.loading && !deps.data ? html`<${Loading} />` : null}
    ${deps.data && !deps.data.deployments.length ? html`<${Empty}>No deployment yet.<//>` : null}
    ${deps.data && deps.data.deployments.length ? html`<div class="tablewrap"><table class="t" aria-label="deployments">
      <thead><tr><th>Name</th><th>Variants</th><th>Rollout</th><th>Revision</th><th>Updated</th></tr></thead>
      <tbody>${deps.data.deployments.map((d) => html`<tr>
        <td><a href=${href("/deployments/" + d.name)}>${d.name}</a></td>
        <td>${d.variants.map((v) => html`<div>${v.name} <span class="pill">${v.role}</span> ${modelLink(v.model_uri)} · ${v.weight}%</div>`)}</td>
        <td>${d.rollout ? statusPill(d.rollout.status) : html`<span class="muted">none</span>`}</td>
        <td>${d.revision}</td>
        <td title=${fmtTime(d.updated_at)}>${fmtAgo(d.updated_at)}</td></tr>`)}</tbody></table></div>` : null}
  </div>`;
}

function TrafficForm({ dep, onDone, onCancel }) {
  const [weights, setWeights] = useState(Object.fromEntries(dep.variants.map((v) => [v.name, v.weight])));
  const total = Object.values(weights).reduce((a, b) => a + Number(b || 0), 0);
  return html`<${Confirm} title=${`Traffic of ${dep.name}`} label="Apply" onCancel=${onCancel} onDone=${onDone}
    action=${() => post(`deployments/${enc(dep.name)}/traffic`, { weights: Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, Number(v)])) })}>
    <div class="kv">${dep.variants.map((v) => html`<label for=${"w-" + v.name}>${v.name} (${v.role})</label>
      <input id=${"w-" + v.name} type="number" min="0" max="100" step="any" value=${weights[v.name]}
        onInput=${(e) => setWeights({ ...weights, [v.name]: e.target.value })} />`)}</div>
    <p class=${Math.abs(total - 100) < 1e-6 ? "muted" : "warn"}>Total ${total}% (the server checks the weights).</p>
  <//>`;
}

const LIVE_WINDOWS = ["1m", "5m", "1h", "24h"];

// requests/s, latency percentiles and error rate per variant from the prediction log, refreshed
// every 10 s
function Live({ name }) {
  const [window, setWindow] = useState("5m");
  const live = useApi(() => get(`monitoring/deployments/${enc(name)}/traffic?window=${window}`), [name, window]);
  useEffect(() => {
    const timer = setInterval(live.reload, 10_000);
    return () => clearInterval(timer);
  }, [name, window]);
  const variants = live.data ? Object.entries(live.data.variants) : [];
  return html`<div>
    <div class="toolbar"><label>over the last <select aria-label="live window" value=${window}
      onChange=${(e) => setWindow(e.target.value)}>${LIVE_WINDOWS.map((w) => html`<option value=${w}>${w}</option>`)}</select></label>
      <span class="muted">from the prediction log, refreshed every 10 s</span></div>
    <${ErrorBox} error=${live.error} />
    ${live.data && !variants.length ? html`<${Empty}>No request in this window.<//>` : null}
    ${variants.length ? html`<table class="t" aria-label="live traffic"><thead><tr><th>Variant</th><th class="num">Requests</th>
      <th class="num">Requests/s</th><th class="num">p50 ms</th><th class="num">p99 ms</th><th class="num">Error rate</th></tr></thead>
      <tbody>${variants.map(([v, x]) => html`<tr data-variant=${v}><td>${v}</td><td class="num">${x.requests}</td>
        <td class="num">${fmtNum(x.requests_per_s, 3)}</td><td class="num">${fmtNum(x.p50_ms, 3)}</td><td class="num">${fmtNum(x.p99_ms, 3)}</td>
        <td class=${"num " + (x.error_rate > 0.01 ? "bad" : "")}>${fmtNum(100 * x.error_rate, 3)}%</td></tr>`)}</tbody></table>` : null}
  </div>`;
}

function Rollout({ rollout }) {
  if (!rollout) return html`<p class="muted">No rollout in progress or on record.</p>`;
  return html`<div class="panel">
    <div class="toolbar"><b>Rollout of</b> ${modelLink(rollout.target_uri)} ${statusPill(rollout.status)}
      <span class="muted">started ${fmtTime(rollout.started_at)}</span></div>
    <div class="toolbar">${rollout.steps.map((s, i) => html`<span class=${"pill " + (i < rollout.step ? "good" : i === rollout.step ? "blue" : "")}>
      step ${i + 1}: ${s}%</span>`)}</div>
    ${rollout.reason ? html`<p>Decision: ${rollout.reason}</p>` : null}
    <p class="muted">Every ${rollout.interval_seconds} s at least; guardrails: ${JSON.stringify(rollout.guardrails)}</p>
  </div>`;
}

export function DeploymentPage({ name }) {
  const dep = useApi(() => get("deployments/" + enc(name)), [name]);
  const events = useApi(() => get(`deployments/${enc(name)}/events`), [name]);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState("");
  const done = (message) => { setDialog(null); setNotice(message); dep.reload(); events.reload(); };
  if (dep.error) return html`<div><h1>${name}</h1><${ErrorBox} error=${dep.error} /></div>`;
  if (!dep.data) return html`<${Loading} what="the deployment" />`;
  const d = dep.data.deployment;
  const canary = d.variants.filter((v) => v.role !== "primary");
  const split = {
    animation: false,
    tooltip: { trigger: "item", formatter: "{b}: {c}%" },
    series: [{ type: "pie", radius: ["45%", "70%"], label: { formatter: "{b}\n{c}%" },
      data: d.variants.map((v) => ({ name: `${v.name} (${v.model_uri.replace("models:/", "")})`, value: v.weight })) }],
  };
  return html`<div>
    <div class="crumbs"><a href="#/deployments">Deployments</a> /</div>
    <h1>${d.name}</h1>
    <div class="sub">${d.description || ""} · revision ${d.revision} · routed by <code>${d.unit_key || "request"}</code>
      · <a href=${href("/monitoring", { deployment: d.name })}>monitoring</a></div>
    ${notice ? html`<div class="ok" role="status">${notice}</div>` : null}
    <div class="grid2">
      <div class="panel"><h2 style="margin-top:0">Variants</h2>
        <table class="t" aria-label="variants"><thead><tr><th>Variant</th><th>Role</th><th>Model</th><th class="num">Traffic</th><th></th></tr></thead>
        <tbody>${d.variants.map((v) => html`<tr data-variant=${v.name}><td>${v.name}</td><td>${v.role}</td><td>${modelLink(v.model_uri)}</td>
          <td class="num">${v.weight}%</td>
          <td>${v.role !== "primary" ? html`<button onClick=${() => setDialog({ kind: "promote", variant: v.name })}>Promote…</button>` : null}</td></tr>`)}</tbody></table>
        <div class="toolbar" style="margin-top:10px">
          <button onClick=${() => setDialog({ kind: "traffic" })} disabled=${d.variants.length < 2}>Change traffic…</button>
          <button class="danger" onClick=${() => setDialog({ kind: "rollback" })}>Roll back…</button>
        </div>
      </div>
      <div class="panel"><h2 style="margin-top:0">Traffic split</h2><${Chart} label="traffic split" option=${split} /></div>
    </div>
    ${dialog && dialog.kind === "traffic" ? html`<${TrafficForm} dep=${d} onCancel=${() => setDialog(null)} onDone=${() => done("Traffic changed")} />` : null}
    ${dialog && dialog.kind === "promote" ? html`<${Confirm} title=${`Promote ${dialog.variant}`} label="Promote"
      onCancel=${() => setDialog(null)} onDone=${() => done(`${dialog.variant} promoted`)}
      action=${() => post(`deployments/${enc(name)}/promote`, { variant: dialog.variant })}>
      <p><b>${dialog.variant}</b> becomes the primary with all the traffic.</p><//>` : null}
    ${dialog && dialog.kind === "rollback" ? html`<${Confirm} title=${`Roll back ${name}`} label="Roll back" danger
      onCancel=${() => setDialog(null)} onDone=${() => done("Rolled back to the previous revision's variants")}
      action=${() => post(`deployments/${enc(name)}/rollback`, {})}>
      <p>The deployment goes back to the variants it had before its last change${canary.length ? " (the canary is dropped)" : ""}.</p><//>` : null}
    <h2>Live</h2>
    <${Live} name=${name} />
    <h2>Rollout</h2>
    <${Rollout} rollout=${d.rollout} />
    <h2>Changes</h2>
    <${ErrorBox} error=${events.error} />
    ${events.data ? html`<div class="tablewrap"><table class="t" aria-label="changes">
      <thead><tr><th>Revision</th><th>When</th><th>What</th><th>Who</th><th>Variants after</th></tr></thead>
      <tbody>${[...events.data.events].reverse().map((e) => html`<tr><td>${e.revision}</td><td>${fmtTime(e.time)}</td>
        <td>${e.kind}${e.detail && e.detail.fields ? ": " + e.detail.fields.join(", ") : ""}</td><td>${e.user_id || ""}</td>
        <td>${((e.detail && e.detail.variants) || []).map((v) => html`<div>${v.name} ${v.model_uri.replace("models:/", "")} ${v.weight}%</div>`)}</td></tr>`)}</tbody>
    </table></div>` : null}
  </div>`;
}
