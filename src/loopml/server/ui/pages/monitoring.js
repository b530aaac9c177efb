// Monitoring: drift per column against the training data (reference versus current
// distributions), live quality over time by variant, alert rules and fired alerts.
import {
  html, useState, get, useApi, ErrorBox, Loading, Empty, Chart, lineOption, fmtTime, fmtNum,
  statusPill, href, enc, navigate,
} from "../lib.js";

const WINDOWS = ["1h", "6h", "24h", "7d", "30d"];
const BUCKETS = ["1s", "1m", "5m", "1h", "1d"];

function distributionOption(column) {
  const d = column.distribution || {};
  const percent = (xs) => (xs || []).map((v) => 100 * v);
  const labels = d.categories || (d.edges || []).slice(0, -1).map((e, i) => `${fmtNum(e, 3)}–${fmtNum(d.edges[i + 1], 3)}`);
  return {
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { bottom: 0 },
    grid: { left: 50, right: 16, top: 16, bottom: 70 },
    xAxis: { type: "category", data: labels, axisLabel: { rotate: labels.length > 8 ? 40 : 0, fontSize: 10 } },
    yAxis: { type: "value", name: "% of rows" },
    series: [
      { name: "reference (training)", type: "bar", data: percent(d.reference), itemStyle: { color: "#94a3b8" } },
      { name: "current (served)", type: "bar", data: percent(d.current), itemStyle: { color: "#2563eb" } },
    ],
  };
}

function Drift({ deployment, window }) {
  const drift = useApi(() => get(`monitoring/deployments/${enc(deployment)}/drift?window=${window}`), [deployment, window]);
  const [picked, setPicked] = useState(null);
  if (drift.error) return html`<${ErrorBox} error=${drift.error} />`;
  if (!drift.data) return html`<${Loading} what="drift" />`;
  const d = drift.data;
  const columns = Object.values(d.columns || {});
  const shown = picked ? d.columns[picked] : columns.find((c) => c.drifted) || columns[0];
  return html`<div>
    <p>${d.dataset_drift ? html`<span class="pill bad">drift</span>` : html`<span class="pill good">no drift</span>`}
      ${fmtNum(100 * (d.share_drifted || 0), 3)}% of columns drifted (threshold ${fmtNum(100 * (d.drift_share || 0), 3)}%)
      ${d.reference ? html` · reference <code>${d.reference}</code>` : null}</p>
    <div class="grid2">
      <div class="tablewrap"><table class="t" aria-label="drift">
        <thead><tr><th></th><th>Column</th><th>Test</th><th class="num">Statistic / threshold</th><th class="num">p</th></tr></thead>
        <tbody>${columns.map((c) => html`<tr data-column=${c.column} onClick=${() => setPicked(c.column)} style="cursor:pointer">
          <td>${c.drifted ? html`<span class="pill bad">drifted</span>` : html`<span class="pill good">ok</span>`}</td>
          <td class=${shown && shown.column === c.column ? "mono ok" : "mono"}>${c.column}</td><td>${c.test}</td>
          <td class="num">${fmtNum(c.statistic, 3)} / ${fmtNum(c.threshold)}</td><td class="num">${fmtNum(c.p_value, 3)}</td></tr>`)}</tbody>
      </table></div>
      ${shown ? html`<div class="panel"><b>${shown.column}</b> <span class="muted">${shown.n_reference} reference rows, ${shown.n_current} current</span>
        <${Chart} label="distribution" option=${distributionOption(shown)} /></div>` : null}
    </div>
  </div>`;
}

function Quality({ deployment, window, bucket }) {
  const quality = useApi(() => get(`monitoring/deployments/${enc(deployment)}/quality?window=${window}&bucket=${bucket}`), [deployment, window, bucket]);
  if (quality.error) return html`<${ErrorBox} error=${quality.error} />`;
  if (!quality.data) return html`<${Loading} what="quality" />`;
  const q = quality.data;
  const metric = q.task === "regression" ? "rmse" : "accuracy";
  const variants = [...new Set((q.buckets || []).map((b) => b.variant))];
  const line = (key) => variants.map((v) => ({
    name: v,
    data: q.buckets.filter((b) => b.variant === v).map((b) => [Date.parse(b.window_start), b[key]]),
  }));
  return html`<div>
    <div class="cards">${Object.entries(q.variants || {}).map(([v, s]) => html`<div class="card">
      <div class="k">${v} · ${s.model} v${s.version}</div><div class="v">${fmtNum(s[metric], 3)}</div>
      <div class="muted">${metric} on ${s.n_labelled} of ${s.n_predictions} predictions</div></div>`)}</div>
    ${variants.length ? html`<div class="grid2">
      <div class="panel"><${Chart} label="quality" option=${lineOption({ series: line(metric), xTime: true, xName: "time", title: metric + " by " + bucket })} /></div>
      <div class="panel"><${Chart} label="requests" option=${lineOption({ series: line("n_predictions"), xTime: true, xName: "time", title: "predictions by " + bucket })} /></div>
    </div>` : html`<${Empty}>No labelled prediction in this window.<//>`}
  </div>`;
}

function Alerts({ deployment }) {
  const alerts = useApi(() => get("monitoring/alerts" + (deployment ? "?deployment=" + enc(deployment) : "")), [deployment]);
  const rules = useApi(() => get("monitoring/rules" + (deployment ? "?deployment=" + enc(deployment) : "")), [deployment]);
  return html`<div class="grid2">
    <div><h2>Alerts</h2><${ErrorBox} error=${alerts.error} />
      ${alerts.data && !alerts.data.alerts.length ? html`<${Empty}>No alert has fired.<//>` : null}
      ${alerts.data && alerts.data.alerts.length ? html`<div class="tablewrap"><table class="t" aria-label="alerts">
        <thead><tr><th>When</th><th>Rule</th><th>State</th><th class="num">Value</th><th>Then</th></tr></thead>
        <tbody>${alerts.data.alerts.map((a) => html`<tr><td>${fmtTime(a.time)}</td><td>${a.rule}</td><td>${statusPill(a.state)}</td>
          <td class="num">${fmtNum(a.value)}</td>
          <td>${(a.deliveries || []).map((d) => d.type === "pipeline" && d.run_id
            ? html`<a href=${href("/pipeline-runs/" + d.run_id)}>${d.pipeline} run</a>`
            : html`<span class=${d.ok ? "ok" : "bad"}>${d.type}</span> `)}</td></tr>`)}</tbody>
      </table></div>` : null}</div>
    <div><h2>Rules</h2><${ErrorBox} error=${rules.error} />
      ${rules.data && !rules.data.rules.length ? html`<${Empty}>No rule.<//>` : null}
      ${rules.data && rules.data.rules.length ? html`<div class="tablewrap"><table class="t" aria-label="rules">
        <thead><tr><th>Rule</th><th>Condition</th><th>Window</th><th>Notifies</th></tr></thead>
        <tbody>${rules.data.rules.map((r) => html`<tr><td title=${r.description}>${r.name}</td>
          <td class="mono">${r.metric} ${r.op} ${r.threshold}</td><td>${r.window}</td>
          <td>${(r.notifiers || []).map((n) => n.type + (n.pipeline ? " " + n.pipeline : "")).join(", ")}</td></tr>`)}</tbody>
      </table></div>` : null}</div>
  </div>`;
}

export function MonitoringPage({ query }) {
  const deps = useApi(() => get("deployments"), []);
  const names = deps.data ? deps.data.deployments.map((d) => d.name) : [];
  const deployment = query.deployment || names[0] || "";
  const window = WINDOWS.includes(query.window) ? query.window : "24h";
  const bucket = BUCKETS.includes(query.bucket) ? query.bucket : "1h";
  const set = (changes) => navigate("/monitoring", { deployment, window, bucket, ...changes }, { replace: true });
  return html`<div>
    <h1>Monitoring</h1>
    <div class="sub">Drift of the served inputs against the training data, live quality, alerts.</div>
    <${ErrorBox} error=${deps.error} />
    <div class="toolbar">
      <label>deployment <select aria-label="deployment" value=${deployment} onChange=${(e) => set({ deployment: e.target.value })}>
        ${names.map((n) => html`<option value=${n}>${n}</option>`)}</select></label>
      <label>window <select aria-label="window" value=${window} onChange=${(e) => set({ window: e.target.value })}>
        ${WINDOWS.map((w) => html`<option value=${w}>last ${w}</option>`)}</select></label>
      <label>bucket <select aria-label="bucket" value=${bucket} onChange=${(e) => set({ bucket: e.target.value })}>
        ${BUCKETS.map((b) => html`<option value=${b}>${b}</option>`)}</select></label>
      ${deployment ? html`<a href=${`/api/v1/monitoring/deployments/${enc(deployment)}/report?window=${window}`} target="_blank" rel="noopener">HTML report</a>` : null}
    </div>
    ${deps.data && !names.length ? html`<${Empty}>No deployment to monitor.<//>` : null}
    ${deployment ? html`<div>
      <h2>Drift</h2><${Drift} deployment=${deployment} window=${window} />
      <h2>Live quality</h2><${Quality} deployment=${deployment} window=${window} bucket=${bucket} />
      <${Alerts} deployment=${deployment} />
    </div>` : null}
  </div>`;
}
