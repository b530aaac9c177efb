// The model registry: models, their versions, aliases and stages, the alias history, a
// comparison of two versions, lineage as a graph, and moving or rolling back an alias (with a
// confirmation; the change goes through the same API as the CLI).
import {
  html, useState, get, post, api, useApi, ErrorBox, Loading, Empty, Confirm, Tabs, Chart,
  fmtTime, fmtAgo, statusPill, href, enc, shortId,
} from "../lib.js";

export function ModelsPage() {
  const models = useApi(() => post("models/search", { max_results: 1000 }), []);
  return html`<div>
    <h1>Models</h1>
    <div class="sub">Registered models, their versions and which version plays which role.</div>
    <${ErrorBox} error=${models.error} />
    ${models.loading && !models.data ? html`<${Loading} />` : null}
    ${models.data && !models.data.registered_models.length ? html`<${Empty}>No registered model yet.<//>` : null}
    ${models.data && models.data.registered_models.length ? html`<div class="tablewrap"><table class="t" aria-label="models">
      <thead><tr><th>Name</th><th>Aliases</th><th>Latest version</th><th>Updated</th><th>Description</th></tr></thead>
      <tbody>${models.data.registered_models.map((m) => html`<tr>
        <td><a href=${href("/models/" + m.name)}>${m.name}</a></td>
        <td>${Object.entries(m.aliases || {}).map(([a, v]) => html`<span class="pill blue">@${a} → v${v}</span>`)}</td>
        <td>${(m.latest_versions || []).map((v) => "v" + v.version).join(", ")}</td>
        <td title=${fmtTime(m.last_updated_timestamp)}>${fmtAgo(m.last_updated_timestamp)}</td>
        <td class="wrap">${m.description}</td></tr>`)}</tbody></table></div>` : null}
  </div>`;
}

function MoveAlias({ name, versions, aliases, initial, onDone, onCancel }) {
  const [alias, setAlias] = useState(initial.alias || "production");
  const [version, setVersion] = useState(initial.version || (versions[0] && versions[0].version) || "");
  const [reason, setReason] = useState("");
  const current = aliases[alias];
  return html`<${Confirm} title=${`Move an alias of ${name}`} label="Move alias" onCancel=${onCancel} onDone=${onDone}
    action=${() => api("PUT", `models/${enc(name)}/aliases/${enc(alias)}`, { version, reason: reason || null })}>
    <div class="kv">
      <label for="alias">alias</label>
      <input id="alias" type="text" list="aliases" value=${alias} onInput=${(e) => setAlias(e.target.value)} />
      <label for="version">version</label>
      <select id="version" value=${version} onChange=${(e) => setVersion(e.target.value)}>
        ${versions.map((v) => html`<option value=${v.version}>v${v.version}${(v.aliases || []).length ? " (" + v.aliases.map((a) => "@" + a).join(", ") + ")" : ""}</option>`)}
      </select>
      <label for="reason">reason</label>
      <input id="reason" type="text" value=${reason} placeholder="why (kept in the history)" onInput=${(e) => setReason(e.target.value)} />
    </div>
    <datalist id="aliases">${Object.keys(aliases).map((a) => html`<option value=${a} />`)}</datalist>
    <p>${current ? html`<b>@${alias}</b> moves from v${current} to <b>v${version}</b>.` : html`<b>@${alias}</b> will point at <b>v${version}</b>.`}</p>
  <//>`;
}

function RollBack({ name, alias, current, onDone, onCancel }) {
  return html`<${Confirm} title=${`Roll back @${alias}`} label="Roll back" danger onCancel=${onCancel} onDone=${onDone}
    action=${() => post(`models/${enc(name)}/aliases/${enc(alias)}/rollback`, { reason: "rolled back from the web UI" })}>
    <p><b>@${alias}</b> (now v${current}) goes back to the version it pointed at before.</p>
  <//>`;
}

function History({ name }) {
  const events = useApi(() => get(`models/${enc(name)}/history?max_results=200`), [name]);
  if (events.error) return html`<${ErrorBox} error=${events.error} />`;
  if (!events.data) return html`<${Loading} />`;
  return html`<div class="tablewrap"><table class="t" aria-label="history">
    <thead><tr><th>When</th><th>What</th><th>Who</th><th>Reason</th></tr></thead>
    <tbody>${events.data.events.map((e) => html`<tr>
      <td>${fmtTime(e.timestamp)}</td>
      <td>${e.kind === "alias" ? html`<b>@${e.alias}</b> ${e.from_version ? `v${e.from_version} → ` : ""}${e.to_version ? `v${e.to_version}` : "removed"}`
        : e.kind === "version_created" ? `v${e.version} registered`
        : e.kind === "stage" ? `v${e.version}: ${e.from_stage} → ${e.to_stage}` : `${e.kind} v${e.version || ""}`}</td>
      <td>${e.user_id}</td><td class="wrap">${e.reason}</td></tr>`)}</tbody></table></div>`;
}

function CompareVersions({ name, versions }) {
  const [a, setA] = useState(versions.length > 1 ? versions[1].version : "");
  const [b, setB] = useState(versions.length ? versions[0].version : "");
  const result = useApi(() => (a && b ? get(`models/${enc(name)}/compare?a=${enc(a)}&b=${enc(b)}`) : null), [name, a, b]);
  const pick = (value, set, label) => html`<select aria-label=${label} value=${value} onChange=${(e) => set(e.target.value)}>
    ${versions.map((v) => html`<option value=${v.version}>v${v.version}</option>`)}</select>`;
  const c = result.data && result.data.comparison;
  const section = (title, entries) => html`<tr><td colspan="3"><b>${title}</b></td></tr>
    ${Object.entries(entries || {}).map(([k, [x, y]]) => html`<tr class=${JSON.stringify(x) !== JSON.stringify(y) ? "diff" : ""}>
      <td class="mono">${k}</td><td class="mono wrap">${JSON.stringify(x)}</td><td class="mono wrap">${JSON.stringify(y)}</td></tr>`)}`;
  return html`<div>
    <div class="toolbar">Compare ${pick(a, setA, "version a")} with ${pick(b, setB, "version b")}</div>
    <${ErrorBox} error=${result.error} />
    ${c ? html`<div class="tablewrap"><table class="t" aria-label="version comparison">
      <thead><tr><th></th><th>v${c.version_a}</th><th>v${c.version_b}</th></tr></thead>
      <tbody>${section("Version", c.fields)}${section("Params", c.params)}${section("Metrics", c.metrics)}</tbody>
    </table></div>` : null}
  </div>`;
}

function lineageOption(model, versions, deployments) {
  const nodes = [];
  const links = [];
  const add = (id, label, category) => { if (!nodes.find((n) => n.id === id)) nodes.push({ id, name: label, category }); };
  versions.forEach((v) => {
    const vid = "v" + v.version;
    add(vid, `${model} v${v.version}${(v.aliases || []).map((a) => " @" + a).join("")}`, 0);
    if (v.run_id) { add("run:" + v.run_id, "run " + shortId(v.run_id), 1); links.push({ source: "run:" + v.run_id, target: vid }); }
    (v.dataset_versions || []).forEach((d) => { add("ds:" + d, d, 2); links.push({ source: "ds:" + d, target: v.run_id ? "run:" + v.run_id : vid }); });
    (v.feature_views || []).forEach((f) => { add("fv:" + f, f, 3); links.push({ source: "fv:" + f, target: v.run_id ? "run:" + v.run_id : vid }); });
  });
  deployments.forEach((d) => d.variants.forEach((variant) => {
    const m = /^models:\/([^/]+)\/(\d+)$/.exec(variant.model_uri);
    if (m && m[1] === model) {
      add("dep:" + d.name, `deployment ${d.name}`, 4);
      links.push({ source: "v" + m[2], target: "dep:" + d.name, label: { show: true, formatter: `${variant.name} ${variant.weight}%` } });
    }
  }));
  // layered layout: columns by category, rows by order of appearance
  const column = { 3: 0, 2: 0, 1: 1, 0: 2, 4: 3 };
  const rows = {};
  nodes.forEach((n) => {
    const c = column[n.category];
    rows[c] = (rows[c] || 0) + 1;
    n.x = c * 260;
    n.y = rows[c] * 70;
  });
  return {
    animation: false,
    tooltip: {},
    legend: { data: ["model version", "run", "dataset", "feature view", "deployment"], bottom: 0 },
    series: [{
      type: "graph", layout: "none", roam: true, symbolSize: 16, edgeSymbol: ["none", "arrow"],
      label: { show: true, position: "right", fontSize: 11 },
      categories: [{ name: "model version" }, { name: "run" }, { name: "dataset" }, { name: "feature view" }, { name: "deployment" }],
      data: nodes, links, lineStyle: { color: "#94a3b8", width: 1.5 },
    }],
  };
}

export function ModelPage({ name }) {
  const model = useApi(() => get("models/" + enc(name)), [name]);
  const versions = useApi(() => post("model-versions/search", { filter: `name = '${name.replace(/'/g, "''")}'`, max_results: 1000 }), [name]);
  const deployments = useApi(() => get("deployments").catch(() => ({ deployments: [] })), []);
  const [tab, setTab] = useState("versions");
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState("");
  const reload = (message) => { setDialog(null); setNotice(message); model.reload(); versions.reload(); };
  if (model.error) return html`<div><h1>${name}</h1><${ErrorBox} error=${model.error} /></div>`;
  if (!model.data || !versions.data) return html`<${Loading} what="the model" />`;
  const m = model.data.registered_model;
  const all = versions.data.model_versions;
  const aliases = m.aliases || {};
  return html`<div>
    <div class="crumbs"><a href="#/models">Models</a> /</div>
    <h1>${m.name}</h1>
    <div class="sub">${m.description || "no description"} · updated ${fmtAgo(m.last_updated_timestamp)}</div>
    ${notice ? html`<div class="ok" role="status">${notice}</div>` : null}
    <div class="cards">${Object.entries(aliases).map(([alias, version]) => html`<div class="card" data-alias=${alias}>
      <div class="k">@${alias}</div><div class="v">v${version}</div>
      <div class="toolbar" style="margin:6px 0 0">
        <button onClick=${() => setDialog({ kind: "move", alias })}>Move…</button>
        <button onClick=${() => setDialog({ kind: "rollback", alias })}>Roll back…</button></div></div>`)}
      <div class="card"><div class="k">aliases</div><button class="primary" onClick=${() => setDialog({ kind: "move", alias: "" })}>Set an alias…</button></div>
    </div>
    ${dialog && dialog.kind === "move" ? html`<${MoveAlias} name=${m.name} versions=${all} aliases=${aliases}
      initial=${{ alias: dialog.alias, version: dialog.version }} onCancel=${() => setDialog(null)}
      onDone=${(r) => reload(`@${r.event.alias} now points at v${r.event.to_version}`)} />` : null}
    ${dialog && dialog.kind === "rollback" ? html`<${RollBack} name=${m.name} alias=${dialog.alias} current=${aliases[dialog.alias]}
      onCancel=${() => setDialog(null)} onDone=${() => reload(`@${dialog.alias} rolled back`)} />` : null}
    <${Tabs} active=${tab} onPick=${setTab} tabs=${[["versions", "Versions"], ["history", "Alias history"], ["compare", "Compare versions"], ["lineage", "Lineage"]]} />
    ${tab === "versions" ? html`<div class="tablewrap"><table class="t" aria-label="versions">
      <thead><tr><th>Version</th><th>Aliases</th><th>Stage</th><th>Status</th><th>Run</th><th>Datasets</th><th>Features</th><th>Registered</th><th></th></tr></thead>
      <tbody>${all.map((v) => html`<tr data-version=${v.version}>
        <td>v${v.version}</td>
        <td>${(v.aliases || []).map((a) => html`<span class="pill blue">@${a}</span>`)}</td>
        <td>${v.current_stage}</td><td>${statusPill(v.status)}</td>
        <td>${v.run_id ? html`<a href=${href("/runs/" + v.run_id)} class="mono">${shortId(v.run_id)}</a>` : ""}</td>
        <td class="mono">${(v.dataset_versions || []).map((d) => html`<a href=${href("/datasets/" + d.split("@")[0])}>${d}</a> `)}</td>
        <td class="mono">${(v.feature_views || []).map((f) => html`<a href=${href("/features/" + f.split("@")[0])}>${f}</a> `)}</td>
        <td>${fmtTime(v.creation_timestamp)}</td>
        <td><button onClick=${() => setDialog({ kind: "move", alias: "production", version: v.version })}>Promote…</button></td>
      </tr>`)}</tbody></table></div>` : null}
    ${tab === "history" ? html`<${History} name=${m.name} key=${notice} />` : null}
    ${tab === "compare" ? (all.length > 1 ? html`<${CompareVersions} name=${m.name} versions=${all} />` : html`<${Empty}>One version only.<//>`) : null}
    ${tab === "lineage" ? html`<div class="panel"><${Chart} tall label="lineage"
      option=${lineageOption(m.name, all, (deployments.data && deployments.data.deployments) || [])} /></div>` : null}
  </div>`;
}
