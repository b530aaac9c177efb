// A/B tests: each metric's lift with its interval, the frequentist, sequential and Bayesian
// read-outs, the sample-ratio check and the verdict; a running test can be stopped.
import {
  html, useState, get, post, useApi, ErrorBox, Loading, Empty, Tabs, Chart, Confirm, fmtTime,
  fmtNum, statusPill, href, enc,
} from "../lib.js";

function StopTest({ name, onDone, onCancel }) {
  const [reason, setReason] = useState("");
  return html`<${Confirm} title=${`Stop ${name}`} label="Stop test" danger onCancel=${onCancel} onDone=${onDone}
    action=${() => post(`abtests/${enc(name)}/stop`, { reason })}>
    <p>Assignment ends and the analysis stops reading traffic at this moment. This cannot be undone.</p>
    <div class="kv">
      <label for="stop-reason">reason</label>
      <input id="stop-reason" type="text" value=${reason} placeholder="why (kept with the test)" onInput=${(e) => setReason(e.target.value)} />
    </div>
  <//>`;
}

export function AbtestsPage() {
  const tests = useApi(() => get("abtests"), []);
  return html`<div>
    <h1>A/B tests</h1>
    <div class="sub">Experiments that split a deployment's traffic, and what they found.</div>
    <${ErrorBox} error=${tests.error} />
    ${tests.loading && !tests.data ? html`<${Loading} />` : null}
    ${tests.data && !tests.data.experiments.length ? html`<${Empty}>No A/B test yet.<//>` : null}
    ${tests.data && tests.data.experiments.length ? html`<div class="tablewrap"><table class="t" aria-label="ab tests">
      <thead><tr><th>Name</th><th>Status</th><th>Deployment</th><th>Variants</th><th>Metrics</th><th>Method</th><th>Created</th></tr></thead>
      <tbody>${tests.data.experiments.map((e) => html`<tr>
        <td><a href=${href("/abtests/" + e.name)}>${e.name}</a></td><td>${statusPill(e.status)}</td>
        <td>${e.deployment ? html`<a href=${href("/deployments/" + e.deployment)}>${e.deployment}</a>` : ""}</td>
        <td>${Object.entries(e.variants).map(([v, w]) => `${v} ${w}%`).join(", ")}</td>
        <td>${e.metrics.map((m) => m.name).join(", ")}</td><td>${e.method}</td><td>${fmtTime(e.created_at)}</td></tr>`)}</tbody>
    </table></div>` : null}
  </div>`;
}

// the relative interval; Bayesian rows carry the absolute one, so divide by the control's mean
function relative(r, side) {
  const rel = r["relative_" + side];
  if (rel != null) return rel;
  const abs = r["lift_" + side];
  return abs != null && r.control_mean ? abs / r.control_mean : r.relative;
}

function liftOption(rows) {
  const labels = rows.map((r) => `${r.metric} · ${r.variant}`);
  return {
    animation: false,
    tooltip: { trigger: "item", formatter: (p) => {
      const r = rows[p.dataIndex];
      return `${labels[p.dataIndex]}<br/>relative lift ${fmtNum(100 * r.relative)}%<br/>interval ${fmtNum(100 * relative(r, "low"))}% … ${fmtNum(100 * relative(r, "high"))}%`;
    } },
    grid: { left: 160, right: 30, top: 16, bottom: 36 },
    xAxis: { type: "value", name: "relative lift vs control (%)", nameLocation: "middle", nameGap: 24 },
    yAxis: { type: "category", data: labels },
    series: [{
      type: "boxplot", boxWidth: [4, 10],
      itemStyle: { borderColor: "#1d4ed8", borderWidth: 2 },
      data: rows.map((r) => {
        const low = 100 * relative(r, "low");
        const high = 100 * relative(r, "high");
        const mid = 100 * r.relative;
        return [low, low, mid, high, high];
      }),
      markLine: { symbol: "none", silent: true, lineStyle: { color: "#94a3b8", type: "dashed" }, data: [{ xAxis: 0 }] },
    }],
  };
}

export function AbtestPage({ name }) {
  const test = useApi(() => get("abtests/" + enc(name)), [name]);
  const [method, setMethod] = useState("");
  const [stopping, setStopping] = useState(false);
  const analysis = useApi(() => get(`abtests/${enc(name)}/analysis${method ? "?method=" + method : ""}`), [name, method]);
  if (test.error) return html`<div><h1>${name}</h1><${ErrorBox} error=${test.error} /></div>`;
  if (!test.data) return html`<${Loading} what="the test" />`;
  const e = test.data.experiment;
  const a = analysis.data;
  const bayes = a && a.method === "bayesian";
  return html`<div>
    <div class="crumbs"><a href="#/abtests">A/B tests</a> /</div>
    <h1>${e.name} ${statusPill(e.status)}</h1>
    <div class="sub">${e.description}</div>
    ${e.stopped_at ? null : html`<div class="actions"><button class="danger" onClick=${() => setStopping(true)}>Stop test…</button></div>`}
    ${stopping ? html`<${StopTest} name=${e.name} onCancel=${() => setStopping(false)}
      onDone=${() => { setStopping(false); test.reload(); analysis.reload(); }} />` : null}
    <div class="cards">
      <div class="card"><div class="k">control</div><div class="v">${e.control}</div></div>
      ${a ? Object.entries(a.variants).map(([v, n]) => html`<div class="card"><div class="k">${v} units</div><div class="v">${n}</div></div>`) : null}
      ${a ? html`<div class="card" data-srm=${a.srm.flagged ? "flagged" : "ok"}><div class="k">sample ratio</div>
        <div class="v ${a.srm.flagged ? "bad" : "ok"}">${a.srm.flagged ? "mismatch" : "ok"}</div>
        <div class="muted">p = ${fmtNum(a.srm.p_value)}</div></div>` : null}
      ${a ? html`<div class="card" data-verdict=${a.verdict.decision}><div class="k">verdict</div><div class="v">${a.verdict.decision}</div>
        <div class="muted">${a.verdict.reason}</div></div>` : null}
    </div>
    ${e.stopped_at ? html`<p class="muted">Stopped ${fmtTime(e.stopped_at)}: ${e.stop_reason}</p>` : null}
    <${Tabs} active=${method || e.method} onPick=${setMethod}
      tabs=${[["frequentist", "Frequentist"], ["sequential", "Sequential"], ["bayesian", "Bayesian"]]} />
    <${ErrorBox} error=${analysis.error} />
    ${!a && analysis.loading ? html`<${Loading} what="the analysis" />` : null}
    ${a ? html`<div>
      ${a.rows.length ? html`<div class="panel"><${Chart} label="lift" option=${liftOption(a.rows)} /></div>` : html`<${Empty}>No outcome yet.<//>`}
      <div class="tablewrap"><table class="t" aria-label="analysis">
        <thead><tr><th>Metric</th><th>Variant</th><th class="num">n</th><th class="num">control</th><th class="num">variant</th>
          <th class="num">lift</th><th>interval</th>${bayes ? html`<th class="num">P(better)</th><th class="num">expected loss</th>` : html`<th class="num">p</th><th class="num">p adjusted</th>`}<th></th></tr></thead>
        <tbody>${a.rows.map((r) => html`<tr>
          <td>${r.metric}${r.guardrail ? html` <span class="pill warn">guardrail</span>` : null}</td><td>${r.variant}</td>
          <td class="num">${r.n}</td><td class="num">${fmtNum(r.control_mean)}</td><td class="num">${fmtNum(r.mean)}</td>
          <td class="num">${fmtNum(100 * r.relative)}%</td>
          <td>${fmtNum(100 * relative(r, "low"))}% … ${fmtNum(100 * relative(r, "high"))}%</td>
          ${bayes ? html`<td class="num">${fmtNum(r.prob_better)}</td><td class="num">${fmtNum(r.expected_loss)}</td>`
            : html`<td class="num">${fmtNum(r.p_value)}</td><td class="num">${fmtNum(r.p_adjusted)}</td>`}
          <td>${r.significant ? html`<span class="pill good">significant</span>` : html`<span class="pill">not significant</span>`}</td></tr>`)}</tbody>
      </table></div>
      ${(a.notes || []).map((n) => html`<p class="warn">${n}</p>`)}
    </div>` : null}
  </div>`;
}
