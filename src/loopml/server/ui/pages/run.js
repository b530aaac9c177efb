// One run: its facts, params, tags, latest metrics, metric charts (several metrics overlaid, by
// step or time, log scale, smoothing), artifacts with previews, the model versions it produced,
// its dataset versions, and its parent and child runs.
import {
  html, useState, useEffect, get, post, api, useApi, ErrorBox, Loading, Empty, KeyValues, Tabs,
  Chart, lineOption, smooth, num, fmtTime, fmtDuration, fmtNum, statusPill, href, enc, shortId,
} from "../lib.js";

export function MetricCharts({ runs, keys }) {
  // runs: [{run_id, name}], keys: metric keys; one chart per key, one line per run
  const [xAxis, setXAxis] = useState("step");
  const [log, setLog] = useState(false);
  const [weight, setWeight] = useState(0);
  const [overlay, setOverlay] = useState(runs.length === 1 && keys.length > 1);
  const histories = useApi(async () => {
    const pairs = runs.flatMap((r) => keys.map((k) => [r, k]));
    const found = await Promise.all(pairs.map(([r, k]) =>
      get(`runs/${r.run_id}/metric-history?key=${enc(k)}`).then((h) => ({ run: r, key: k, h }))));
    return found;
  }, [runs.map((r) => r.run_id).join(), keys.join()]);
  if (!keys.length) return html`<${Empty}>Pick metrics to chart.<//>`;
  const controls = html`<div class="toolbar">
    <label>x axis <select aria-label="x axis" value=${xAxis} onChange=${(e) => setXAxis(e.target.value)}>
      <option value="step">step</option><option value="time">wall time</option><option value="relative">relative time (s)</option></select></label>
    <label><input type="checkbox" checked=${log} onChange=${() => setLog(!log)} /> log scale</label>
    <label>smoothing <input type="range" min="0" max="0.99" step="0.01" value=${weight}
      aria-label="smoothing" onInput=${(e) => setWeight(Number(e.target.value))} /> ${weight.toFixed(2)}</label>
    ${runs.length === 1 && keys.length > 1 ? html`<label><input type="checkbox" checked=${overlay}
      onChange=${() => setOverlay(!overlay)} /> one chart</label>` : null}
  </div>`;
  if (histories.error) return html`<div>${controls}<${ErrorBox} error=${histories.error} /></div>`;
  if (!histories.data) return html`<div>${controls}<${Loading} what="metric history" /></div>`;
  const seriesOf = ({ run, key, h }) => {
    const values = smooth(h.values.map(num), weight);
    const t0 = h.timestamps.length ? h.timestamps[0] : 0;
    const xs = xAxis === "step" ? h.steps : xAxis === "time" ? h.timestamps : h.timestamps.map((t) => (t - t0) / 1000);
    const name = runs.length > 1 ? (overlay ? `${run.name} · ${key}` : run.name) : key;
    return { name, data: xs.map((x, i) => [x, Number.isFinite(values[i]) ? values[i] : null]) };
  };
  const common = { xName: xAxis === "relative" ? "seconds" : xAxis, yLog: log, xTime: xAxis === "time" };
  const charts = overlay
    ? [{ title: keys.join(", "), series: histories.data.map(seriesOf) }]
    : keys.map((k) => ({ title: k, series: histories.data.filter((d) => d.key === k).map(seriesOf) }));
  return html`<div>${controls}<div class="grid2">${charts.map((c) => html`<div class="panel">
    <${Chart} label=${"metric " + c.title} option=${lineOption({ ...common, title: c.title, series: c.series })} /></div>`)}</div></div>`;
}

function Preview({ runId, file }) {
  const [state, setState] = useState({ loading: true });
  const url = `/api/v1/runs/${runId}/artifacts/${file.path.split("/").map(enc).join("/")}`;
  const ext = (file.path.split(".").pop() || "").toLowerCase();
  useEffect(() => {
    let live = true;
    let objectUrl = null;
    setState({ loading: true });
    (async () => {
      if (file.file_size > 5 * 1024 * 1024) return { tooBig: true };
      const response = await api("GET", url, undefined, { raw: true });
      const blob = await response.blob();
      if (["png", "jpg", "jpeg", "gif", "svg", "webp"].includes(ext)) {
        objectUrl = URL.createObjectURL(blob);
        return { image: objectUrl };
      }
      if (ext === "html" || ext === "htm") {
        objectUrl = URL.createObjectURL(new Blob([blob], { type: "text/html" }));
        return { html: objectUrl };
      }
      const text = await blob.text();
      if (ext === "json") {
        try { return { text: JSON.stringify(JSON.parse(text), null, 2) }; } catch { return { text }; }
      }
      if (ext === "csv" || ext === "tsv") {
        const sep = ext === "csv" ? "," : "\t";
        const rows = text.split(/\r?\n/).filter(Boolean).slice(0, 101).map((l) => l.split(sep));
        return { table: rows };
      }
      if (/[\x00-\x08\x0E-\x1F]/.test(text.slice(0, 2000))) return { binary: true };
      return { text: text.length > 200000 ? text.slice(0, 200000) + "\n… (cut)" : text };
    })().then((s) => live && setState(s), (e) => live && setState({ error: e }));
    return () => { live = false; if (objectUrl) URL.revokeObjectURL(objectUrl); };
  }, [url]);
  const download = html`<a href=${url} download>download</a>`;
  return html`<div class="panel"><div class="toolbar"><b class="mono">${file.path}</b>
    <span class="muted">${fmtNum(file.file_size)} bytes</span>${download}</div>
    ${state.loading ? html`<${Loading} />` : null}
    <${ErrorBox} error=${state.error} />
    ${state.tooBig ? html`<${Empty}>Too large to preview.<//>` : null}
    ${state.binary ? html`<${Empty}>A binary file: no preview.<//>` : null}
    ${state.image ? html`<img class="preview" src=${state.image} alt=${file.path} />` : null}
    ${state.html ? html`<iframe class="preview" sandbox="" src=${state.html} title=${file.path}></iframe>` : null}
    ${state.text != null ? html`<pre class="preview">${state.text}</pre>` : null}
    ${state.table ? html`<div class="tablewrap"><table class="t"><thead><tr>${state.table[0].map((c) => html`<th>${c}</th>`)}</tr></thead>
      <tbody>${state.table.slice(1).map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody></table></div>` : null}
  </div>`;
}

function Artifacts({ runId }) {
  const [path, setPath] = useState("");
  const [picked, setPicked] = useState(null);
  const listing = useApi(() => get(`runs/${runId}/artifacts${path ? "?path=" + enc(path) : ""}`), [runId, path]);
  const up = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  return html`<div class="grid2">
    <div class="panel files" aria-label="artifacts">
      <div class="muted mono">/${path}</div>
      ${path ? html`<div><a href="#" onClick=${(e) => { e.preventDefault(); setPath(up); }}>..</a></div>` : null}
      <${ErrorBox} error=${listing.error} />
      ${listing.data && !listing.data.files.length ? html`<${Empty}>No artifact.<//>` : null}
      ${listing.data ? listing.data.files.map((f) => html`<div>
        <a href="#" class=${picked && picked.path === f.path ? "sel" : ""} onClick=${(e) => {
          e.preventDefault();
          f.is_dir ? setPath(f.path) : setPicked(f);
        }}>${f.is_dir ? "📁 " : ""}${f.path.split("/").pop()}</a>
        ${f.is_dir ? null : html` <span class="muted">${fmtNum(f.file_size)} B</span>`}</div>`) : null}
    </div>
    ${picked ? html`<${Preview} runId=${runId} file=${picked} />` : html`<div class="muted">Pick a file to preview it.</div>`}
  </div>`;
}

export function RunPage({ runId }) {
  const run = useApi(() => get("runs/" + runId), [runId]);
  const [tab, setTab] = useState("overview");
  const [chartKeys, setChartKeys] = useState(null);
  const info = run.data && run.data.run.info;
  const data = run.data && run.data.run.data;
  const related = useApi(async () => {
    if (!info) return null;
    const quoted = `'${info.run_id}'`;
    const [versions, datasets, children] = await Promise.all([
      post("model-versions/search", { filter: `run_id = ${quoted}` }).catch(() => ({ model_versions: [] })),
      get("dataset-versions?run_id=" + info.run_id).catch(() => ({ versions: [] })),
      post("runs/search", { experiment_ids: [info.experiment_id], filter: `tags.mlflow.parentRunId = ${quoted}`,
        max_results: 200, columns: { metrics: [], params: [], tags: [] } }),
    ]);
    const parent = info.parent_run_id ? await get("runs/" + info.parent_run_id).catch(() => null) : null;
    return { versions: versions.model_versions, datasets: datasets.versions, children: children.runs, parent };
  }, [info && info.run_id]);
  if (run.error) return html`<div><h1>Run</h1><${ErrorBox} error=${run.error} /></div>`;
  if (!run.data) return html`<${Loading} what="the run" />`;
  const metricKeys = Object.keys(data.metrics).sort();
  const keys = chartKeys || metricKeys.slice(0, 4);
  const toggleKey = (k) => setChartKeys(keys.includes(k) ? keys.filter((x) => x !== k) : [...keys, k]);
  const userTags = Object.entries(data.tags).filter(([k]) => !k.startsWith("mlflow.")).sort();
  return html`<div>
    <div class="crumbs"><a href="#/experiments">Experiments</a> /
      <a href=${href("/experiments/" + info.experiment_id)}>experiment ${info.experiment_id}</a> /</div>
    <h1>${info.run_name || info.run_id} ${statusPill(info.status)}</h1>
    <div class="sub mono">${info.run_id}</div>
    <${Tabs} active=${tab} onPick=${setTab} tabs=${[["overview", "Overview"], ["charts", "Metric charts"], ["artifacts", "Artifacts"]]} />
    ${tab === "overview" ? html`<div class="grid2">
      <div class="panel"><h2 style="margin-top:0">About</h2><div class="kv">
        <span>started</span><span>${fmtTime(info.start_time)}</span>
        <span>duration</span><span>${fmtDuration(info.start_time, info.end_time)}</span>
        <span>user</span><span>${info.user_id}</span>
        <span>artifacts</span><span class="mono">${info.artifact_uri}</span>
        ${related.data && related.data.parent ? html`<span>parent</span><span><a href=${href("/runs/" + info.parent_run_id)}>
          ${related.data.parent.run.info.run_name || shortId(info.parent_run_id)}</a></span>` : null}
      </div>
      <h2>Models</h2>
      ${Object.keys(data.tags).filter((k) => k.startsWith("loopml.model_flavor.")).map((k) => html`<div>
        logged <code>${k.slice("loopml.model_flavor.".length)}</code> <span class="pill">${data.tags[k]}</span></div>`)}
      ${related.data ? (related.data.versions.length ? related.data.versions.map((v) => html`<div>
        <a href=${href("/models/" + v.name, { version: v.version })}>${v.name} v${v.version}</a>
        ${(v.aliases || []).map((a) => html` <span class="pill blue">@${a}</span>`)}</div>`)
        : html`<span class="muted">no registered version</span>`) : html`<${Loading} />`}
      <h2>Datasets</h2>
      ${related.data ? (related.data.datasets.length ? related.data.datasets.map((d) => html`<div class="mono">
        <a href=${href("/datasets/" + d.name)}>${d.name}@${d.version}</a> ${d.role ? html`<span class="pill">${d.role}</span>` : null}</div>`)
        : html`<span class="muted">none linked</span>`) : null}
      <h2>Child runs</h2>
      ${related.data ? (related.data.children.length ? html`<div>${related.data.children.map((c) => html`<div>
        <a href=${href("/runs/" + c.info.run_id)}>${c.info.run_name || c.info.run_id}</a> ${statusPill(c.info.status)}</div>`)}</div>`
        : html`<span class="muted">none</span>`) : null}
      </div>
      <div class="panel"><h2 style="margin-top:0">Metrics</h2>
        <${KeyValues} entries=${metricKeys.map((k) => [k, fmtNum(data.metrics[k], 6)])} />
        <h2>Params</h2>
        <${KeyValues} entries=${Object.entries(data.params).sort()} />
        <h2>Tags</h2>
        <${KeyValues} entries=${userTags} />
      </div>
    </div>` : null}
    ${tab === "charts" ? html`<div>
      <div class="toolbar">${metricKeys.map((k) => html`<label><input type="checkbox" checked=${keys.includes(k)}
        onChange=${() => toggleKey(k)} /> ${k}</label>`)}</div>
      <${MetricCharts} runs=${[{ run_id: info.run_id, name: info.run_name }]} keys=${keys} />
    </div>` : null}
    ${tab === "artifacts" ? html`<${Artifacts} runId=${info.run_id} />` : null}
  </div>`;
}
