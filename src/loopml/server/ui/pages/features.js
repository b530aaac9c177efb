// The feature catalog: views (fields, versions, statistics, freshness), entities and feature
// services.
import {
  html, get, useApi, ErrorBox, Loading, Empty, fmtTime, fmtAgo, fmtNum, href, enc,
} from "../lib.js";

function freshness(view) {
  if (!view.materialized_at) return html`<span class="pill">not materialized</span>`;
  return html`<span title=${fmtTime(view.materialized_at)}>materialized ${fmtAgo(view.materialized_at)}</span>`;
}

export function FeaturesPage() {
  const views = useApi(() => get("features/views"), []);
  const services = useApi(() => get("features/services"), []);
  const entities = useApi(() => get("features/entities"), []);
  return html`<div>
    <h1>Features</h1>
    <div class="sub">Feature views, the entities they are keyed by, and the services that group them for a model.</div>
    <h2>Feature views</h2>
    <${ErrorBox} error=${views.error} />
    ${views.loading && !views.data ? html`<${Loading} />` : null}
    ${views.data && !views.data.views.length ? html`<${Empty}>No feature view is registered (loopml features apply).<//>` : null}
    ${views.data && views.data.views.length ? html`<div class="tablewrap"><table class="t" aria-label="feature views">
      <thead><tr><th>View</th><th>Version</th><th>Entities</th><th>Fields</th><th>TTL</th><th>Freshness</th><th>Description</th></tr></thead>
      <tbody>${views.data.views.map((v) => html`<tr>
        <td><a href=${href("/features/" + v.name)}>${v.name}</a>${v.kind !== "feature_view" ? html` <span class="pill">${v.kind}</span>` : null}</td>
        <td>${v.version}</td><td>${((v.spec && v.spec.entities) || []).join(", ")}</td>
        <td class="wrap">${v.features.map((f) => f.name).join(", ")}</td>
        <td>${v.spec && v.spec.ttl ? fmtNum(v.spec.ttl / 3600) + " h" : ""}</td>
        <td>${freshness(v)}</td><td class="wrap">${(v.spec && v.spec.description) || ""}</td></tr>`)}</tbody>
    </table></div>` : null}
    <div class="grid2">
      <div><h2>Feature services</h2><${ErrorBox} error=${services.error} />
        ${services.data && !services.data.services.length ? html`<${Empty}>None.<//>` : null}
        ${services.data ? services.data.services.map((s) => html`<div class="panel" data-service=${s.name}><b>${s.name}</b> <span class="muted">v${s.version}</span>
          ${s.spec.features.map((f) => html`<div class="mono">${f.view}: ${f.features.join(", ")}</div>`)}</div>`) : null}</div>
      <div><h2>Entities</h2><${ErrorBox} error=${entities.error} />
        ${entities.data ? entities.data.entities.map((e) => html`<div class="panel"><b>${e.name}</b>
          <span class="mono muted">${((e.spec && e.spec.join_keys) || []).join(", ")}</span> ${(e.spec && e.spec.description) || ""}</div>`) : null}</div>
    </div>
  </div>`;
}

export function FeatureViewPage({ name }) {
  const view = useApi(() => get("features/views/" + enc(name)), [name]);
  if (view.error) return html`<div><h1>${name}</h1><${ErrorBox} error=${view.error} /></div>`;
  if (!view.data) return html`<${Loading} what="the view" />`;
  const v = view.data;
  const stats = v.stats || {};
  const source = (v.spec && v.spec.source) || {};
  return html`<div>
    <div class="crumbs"><a href="#/features">Features</a> /</div>
    <h1>${v.name}</h1>
    <div class="sub">${(v.spec && v.spec.description) || ""} · version ${v.version} · ${freshness(v)}</div>
    <div class="grid2">
      <div class="panel"><h2 style="margin-top:0">Fields</h2>
        <table class="t" aria-label="fields"><thead><tr><th>Field</th><th>Type</th><th>Statistics</th></tr></thead>
        <tbody>${v.features.map((f) => html`<tr><td class="mono">${f.name}</td><td>${f.dtype}</td>
          <td class="mono wrap">${stats[f.name] ? Object.entries(stats[f.name]).map(([k, x]) => `${k} ${fmtNum(x)}`).join(" · ") : ""}</td></tr>`)}</tbody></table></div>
      <div class="panel"><h2 style="margin-top:0">Source</h2><div class="kv">
        <span>type</span><span>${source.type}</span><span>path</span><span class="mono">${source.path || source.query || ""}</span>
        <span>timestamp</span><span class="mono">${source.timestamp_field || ""}</span>
        <span>join keys</span><span class="mono">${((v.spec && v.spec.join_keys) || []).join(", ")}</span>
        <span>online</span><span>${v.spec && v.spec.online ? "yes" : "no"}${v.online_rows != null ? ` (${v.online_rows} rows)` : ""}</span></div>
        <h2>Versions</h2>
        ${(v.versions || []).map((x) => html`<div>v${x.version} <span class="muted">${fmtTime(x.created_at)}</span> <code>${x.spec_hash.slice(0, 12)}</code></div>`)}</div>
    </div>
  </div>`;
}
