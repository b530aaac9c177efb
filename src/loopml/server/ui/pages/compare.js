// Compare runs (up to 200): params and metrics side by side with differences highlighted,
// a parallel-coordinates plot, and overlaid metric charts.
import {
  html, useState, post, useApi, ErrorBox, Loading, Chart, num, fmtNum, href,
} from "../lib.js";
import { MetricCharts } from "./run.js";

const MAX_RUNS = 200;

function parallelOption(runs, params, metrics) {
  const dims = [...params.map((k) => ({ key: k, kind: "params" })), ...metrics.map((k) => ({ key: k, kind: "metrics" }))];
  const axes = dims.map((d, i) => {
    const values = runs.map((r) => r.data[d.kind][d.key]);
    const numeric = values.every((v) => v == null || num(v) != null);
    if (numeric) return { dim: i, name: d.key, type: "value", scale: true };
    const cats = [...new Set(values.filter((v) => v != null).map(String))].sort();
    return { dim: i, name: d.key, type: "category", data: cats };
  });
  const rows = runs.map((r) => ({
    name: r.info.run_name || r.info.run_id,
    value: dims.map((d, i) => {
      const v = r.data[d.kind][d.key];
      if (v == null) return null;
      return axes[i].type === "value" ? num(v) : String(v);
    }),
  }));
  const last = metrics.length ? dims.length - 1 : null;
  return {
    animation: false,
    tooltip: { trigger: "item" },
    parallelAxis: axes,
    parallel: { left: 50, right: 80, top: 40, bottom: 30 },
    visualMap: last != null && axes[last].type === "value" ? {
      type: "continuous", dimension: last, orient: "vertical", right: 0, top: 40, calculable: true,
      min: Math.min(...rows.map((r) => r.value[last]).filter(Number.isFinite)),
      max: Math.max(...rows.map((r) => r.value[last]).filter(Number.isFinite)),
      inRange: { color: ["#93c5fd", "#1d4ed8"] },
    } : undefined,
    series: [{ type: "parallel", lineStyle: { width: 1.5, opacity: 0.7 }, data: rows }],
  };
}

export function ComparePage({ query }) {
  const ids = (query.runs || "").split(",").filter(Boolean).slice(0, MAX_RUNS);
  const experiments = (query.experiments || "").split(",").filter(Boolean);
  const [onlyDiff, setOnlyDiff] = useState(false);
  const [chartKeys, setChartKeys] = useState(null);
  const found = useApi(() => post("runs/search", {
    experiment_ids: experiments,
    filter: `attributes.run_id IN (${ids.map((i) => `'${i}'`).join(", ")})`,
    max_results: MAX_RUNS,
  }), [query.runs, query.experiments]);
  if (!ids.length) return html`<div><h1>Compare runs</h1><p class="muted">Select runs in an experiment's table first.</p></div>`;
  if (found.error) return html`<div><h1>Compare runs</h1><${ErrorBox} error=${found.error} /></div>`;
  if (!found.data) return html`<${Loading} what="runs" />`;
  const runs = found.data.runs;
  const keysOf = (kind) => [...new Set(runs.flatMap((r) => Object.keys(r.data[kind])))].sort();
  const params = keysOf("params");
  const metrics = keysOf("metrics");
  const differs = (kind, k) => new Set(runs.map((r) => JSON.stringify(r.data[kind][k] ?? null))).size > 1;
  const rows = (kind, keys) => keys.filter((k) => !onlyDiff || differs(kind, k)).map((k) => html`<tr class=${differs(kind, k) ? "diff" : ""}>
    <td class="mono">${k}</td>${runs.map((r) => html`<td class=${kind === "metrics" ? "num" : "mono"}>${kind === "metrics" ? fmtNum(r.data.metrics[k]) : r.data.params[k] ?? ""}</td>`)}</tr>`);
  const keys = chartKeys || metrics.slice(0, 2);
  const pcKeys = params.filter((k) => differs("params", k)).slice(0, 12);
  const pcMetrics = keys.slice(0, 3);
  return html`<div>
    <div class="crumbs"><a href="#/experiments">Experiments</a> / ${experiments.map((e) => html`<a href=${href("/experiments/" + e)}>experiment ${e}</a> `)}/</div>
    <h1>Compare ${runs.length} runs</h1>
    <div class="toolbar"><label><input type="checkbox" checked=${onlyDiff} onChange=${() => setOnlyDiff(!onlyDiff)} /> only differences</label>
      <span class="muted">rows that differ are highlighted</span></div>
    <div class="tablewrap"><table class="t" aria-label="comparison">
      <thead><tr><th>Run</th>${runs.map((r) => html`<th><a href=${href("/runs/" + r.info.run_id)}>${r.info.run_name || r.info.run_id}</a></th>`)}</tr></thead>
      <tbody>
        <tr><td colspan=${runs.length + 1}><b>Params</b></td></tr>${rows("params", params)}
        <tr><td colspan=${runs.length + 1}><b>Metrics</b></td></tr>${rows("metrics", metrics)}
      </tbody></table></div>
    <h2>Parallel coordinates</h2>
    ${pcKeys.length + pcMetrics.length >= 2 ? html`<div class="panel"><${Chart} tall label="parallel coordinates"
      option=${parallelOption(runs, pcKeys, pcMetrics)} /></div>` : html`<p class="muted">Needs at least two params or metrics that vary.</p>`}
    <h2>Metric charts</h2>
    <div class="toolbar">${metrics.map((k) => html`<label><input type="checkbox" checked=${keys.includes(k)}
      onChange=${() => setChartKeys(keys.includes(k) ? keys.filter((x) => x !== k) : [...keys, k])} /> ${k}</label>`)}</div>
    <${MetricCharts} runs=${runs.slice(0, 30).map((r) => ({ run_id: r.info.run_id, name: r.info.run_name || r.info.run_id }))} keys=${keys} />
    ${runs.length > 30 ? html`<p class="muted">Charts show the first 30 runs; the table and the parallel plot show all ${runs.length}.</p>` : null}
  </div>`;
}
