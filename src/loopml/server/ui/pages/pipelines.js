// Pipelines: runs (what started them, how they ended), a run's DAG with each step's status and
// cache hits, and each step's log; a run can be queued for the scheduler.
import {
  html, useState, get, post, useApi, ErrorBox, Loading, Empty, Chart, Confirm, fmtTime,
  fmtDuration, statusPill, href, enc, shortId,
} from "../lib.js";

function QueueRun({ name, onDone, onCancel }) {
  const [params, setParams] = useState("{}");
  const action = () => {
    let parsed;
    try {
      parsed = JSON.parse(params || "{}");
    } catch {
      throw new Error("params must be a JSON object");
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new Error("params must be a JSON object");
    }
    return post(`pipelines/${enc(name)}/runs`, { params: parsed });
  };
  return html`<${Confirm} title=${`Run ${name}`} label="Queue run" onCancel=${onCancel} onDone=${onDone} action=${action}>
    <p>The run waits in the queue until <span class="mono">loopml scheduler</span> starts it.</p>
    <div class="kv">
      <label for="run-params">params (JSON)</label>
      <input id="run-params" type="text" class="mono" value=${params} onInput=${(e) => setParams(e.target.value)} />
    </div>
  <//>`;
}

const COLORS = { SUCCEEDED: "#16a34a", CACHED: "#0891b2", FAILED: "#dc2626", RUNNING: "#2563eb",
  SKIPPED: "#9ca3af", PENDING: "#cbd5e1", QUEUED: "#cbd5e1" };

export function PipelinesPage() {
  const pipelines = useApi(() => get("pipelines"), []);
  const runs = useApi(() => get("pipeline-runs?limit=200"), []);
  const [queueing, setQueueing] = useState(null);
  const [notice, setNotice] = useState("");
  return html`<div>
    <h1>Pipelines</h1>
    <div class="sub">Registered pipelines and their runs, whether started by hand, on a schedule or by an alert.</div>
    <${ErrorBox} error=${pipelines.error || runs.error} />
    ${notice ? html`<div class="ok" role="status">${notice}</div>` : null}
    ${queueing ? html`<${QueueRun} name=${queueing} onCancel=${() => setQueueing(null)}
      onDone=${(r) => { setQueueing(null); setNotice(`Run ${shortId(r.run.run_id)} of ${r.run.pipeline} queued`); runs.reload(); }} />` : null}
    ${pipelines.data && !pipelines.data.pipelines.length ? html`<${Empty}>No pipeline is registered.<//>` : null}
    ${pipelines.data && pipelines.data.pipelines.length ? html`<div class="tablewrap"><table class="t" aria-label="pipelines">
      <thead><tr><th>Pipeline</th><th>Steps</th><th>Target</th><th>Description</th><th></th></tr></thead>
      <tbody>${pipelines.data.pipelines.map((p) => html`<tr><td>${p.name}</td>
        <td>${p.dag ? p.dag.steps.map((s) => s.name).join(" → ") : ""}</td><td class="mono">${p.target}</td>
        <td class="wrap">${p.description}</td>
        <td><button onClick=${() => setQueueing(p.name)}>Run…</button></td></tr>`)}</tbody></table></div>` : null}
    <h2>Runs</h2>
    ${runs.loading && !runs.data ? html`<${Loading} />` : null}
    ${runs.data && !runs.data.runs.length ? html`<${Empty}>No pipeline has run yet.<//>` : null}
    ${runs.data && runs.data.runs.length ? html`<div class="tablewrap"><table class="t" aria-label="pipeline runs">
      <thead><tr><th>Run</th><th>Pipeline</th><th>Status</th><th>Started by</th><th>Started</th><th>Duration</th></tr></thead>
      <tbody>${runs.data.runs.map((r) => html`<tr><td><a class="mono" href=${href("/pipeline-runs/" + r.run_id)}>${shortId(r.run_id)}</a></td>
        <td>${r.pipeline}</td><td>${statusPill(r.status)}</td><td class="mono">${r.trigger}</td>
        <td>${fmtTime(r.started_at || r.created_at)}</td><td>${fmtDuration(r.started_at, r.ended_at)}</td></tr>`)}</tbody></table></div>` : null}
  </div>`;
}

function dagOption(dag, steps) {
  const byName = Object.fromEntries(steps.map((s) => [s.step, s]));
  const depth = {};
  const level = (name) => {
    if (depth[name] != null) return depth[name];
    const step = dag.steps.find((s) => s.name === name);
    depth[name] = step && step.upstream.length ? 1 + Math.max(...step.upstream.map(level)) : 0;
    return depth[name];
  };
  dag.steps.forEach((s) => level(s.name));
  const rows = {};
  const nodes = dag.steps.map((s) => {
    const d = depth[s.name];
    rows[d] = (rows[d] || 0) + 1;
    const run = byName[s.name] || {};
    const status = run.cache_hit ? "CACHED" : run.status || "PENDING";
    return { name: s.name, x: d * 220, y: rows[d] * 80, value: status,
      itemStyle: { color: COLORS[status] || "#94a3b8" }, label: { formatter: `${s.name}\n${status.toLowerCase()}` } };
  });
  // a link that skips a level curves around the steps in between
  const links = dag.steps.flatMap((s) => s.upstream.map((u) => ({
    source: u, target: s.name, lineStyle: { curveness: depth[s.name] - depth[u] > 1 ? 0.35 : 0 } })));
  return {
    animation: false,
    tooltip: { formatter: (p) => (p.dataType === "node" ? `${p.name}: ${p.value}` : "") },
    series: [{ type: "graph", layout: "none", roam: true, symbol: "roundRect", symbolSize: [130, 44],
      label: { show: true, color: "#fff", fontSize: 11, lineHeight: 15 }, edgeSymbol: ["none", "arrow"], edgeSymbolSize: 9,
      lineStyle: { color: "#94a3b8", width: 2 }, data: nodes, links }],
  };
}

function StepLog({ runId, step }) {
  const log = useApi(() => get(`pipeline-runs/${runId}/steps/${enc(step)}/logs`), [runId, step]);
  if (log.error) return html`<${ErrorBox} error=${log.error} />`;
  if (!log.data) return html`<${Loading} what="the log" />`;
  return html`<div><b>${step}</b> ${statusPill(log.data.status)}
    ${log.data.error ? html`<div class="error">${log.data.error}</div>` : null}
    <pre class="preview" aria-label="step log">${log.data.logs || "(no output)"}</pre></div>`;
}

export function PipelineRunPage({ runId }) {
  const run = useApi(() => get("pipeline-runs/" + runId), [runId]);
  const [step, setStep] = useState(null);
  if (run.error) return html`<div><h1>Pipeline run</h1><${ErrorBox} error=${run.error} /></div>`;
  if (!run.data) return html`<${Loading} what="the run" />`;
  const r = run.data.run;
  return html`<div>
    <div class="crumbs"><a href="#/pipelines">Pipelines</a> /</div>
    <h1>${r.pipeline} ${statusPill(r.status)}</h1>
    <div class="sub mono">${r.run_id} · started by ${r.trigger} · ${r.executor} · ${fmtTime(r.started_at)} · ${fmtDuration(r.started_at, r.ended_at)}</div>
    ${r.error ? html`<div class="error">${r.error}</div>` : null}
    <div class="panel"><${Chart} label="dag" option=${dagOption(r.dag, r.steps)} /></div>
    <div class="tablewrap"><table class="t" aria-label="steps">
      <thead><tr><th>Step</th><th>Status</th><th>Cache</th><th class="num">Attempts</th><th>Duration</th><th>Outputs</th><th>Tracking runs</th><th></th></tr></thead>
      <tbody>${r.steps.map((s) => html`<tr data-step=${s.step}><td>${s.step}</td><td>${statusPill(s.status)}</td>
        <td>${s.cache_hit ? html`<span class="pill good">hit</span> ${s.cached_from ? html`<a class="mono" href=${href("/pipeline-runs/" + s.cached_from)}>${shortId(s.cached_from)}</a>` : ""}` : html`<span class="muted">computed</span>`}</td>
        <td class="num">${s.attempts}</td><td>${fmtDuration(s.started_at, s.ended_at)}</td>
        <td class="mono wrap">${Object.entries(s.outputs || {}).map(([k, o]) => `${k}: ${o.kind}${o.rows != null ? ` (${o.rows} rows)` : ""}`).join(", ")}</td>
        <td>${(s.tracking_runs || []).map((t) => html`<a class="mono" href=${href("/runs/" + t)}>${shortId(t)}</a> `)}</td>
        <td><button onClick=${() => setStep(s.step)}>Log</button></td></tr>`)}</tbody></table></div>
    ${step ? html`<div class="panel" style="margin-top:12px"><${StepLog} runId=${r.run_id} step=${step} /></div>` : null}
    <h2>Parameters</h2>
    <pre class="preview">${JSON.stringify(r.params, null, 2)}</pre>
  </div>`;
}
