// Datasets: versions, schema and column statistics of a version, and the diff of two versions.
import {
  html, useState, get, useApi, ErrorBox, Loading, Empty, fmtTime, fmtAgo, fmtNum, href, enc,
} from "../lib.js";

export function DatasetsPage() {
  const sets = useApi(() => get("datasets"), []);
  return html`<div>
    <h1>Datasets</h1>
    <div class="sub">Versioned data: every version content-addressed, with its schema and statistics.</div>
    <${ErrorBox} error=${sets.error} />
    ${sets.loading && !sets.data ? html`<${Loading} />` : null}
    ${sets.data && !sets.data.datasets.length ? html`<${Empty}>No dataset yet.<//>` : null}
    ${sets.data && sets.data.datasets.length ? html`<div class="tablewrap"><table class="t" aria-label="datasets">
      <thead><tr><th>Name</th><th class="num">Versions</th><th>Latest</th><th>Aliases</th><th>Updated</th></tr></thead>
      <tbody>${sets.data.datasets.map((d) => html`<tr><td><a href=${href("/datasets/" + d.name)}>${d.name}</a></td>
        <td class="num">${d.num_versions}</td><td>v${d.latest_version}</td>
        <td>${Object.entries(d.aliases || {}).map(([a, v]) => html`<span class="pill blue">@${a} → v${v}</span>`)}</td>
        <td title=${fmtTime(d.updated_at)}>${fmtAgo(d.updated_at)}</td></tr>`)}</tbody>
    </table></div>` : null}
  </div>`;
}

function Profile({ version }) {
  const profile = version.profile;
  if (!profile) return html`<${Empty}>No profile (not a table, or stored by reference).<//>`;
  return html`<div class="tablewrap"><table class="t" aria-label="schema">
    <thead><tr><th>Column</th><th>Type</th><th class="num">Nulls</th><th class="num">Distinct</th><th class="num">Min</th><th class="num">Mean</th><th class="num">Max</th><th class="num">Std</th></tr></thead>
    <tbody>${profile.schema.map((c) => {
      const s = (profile.columns || {})[c.name] || {};
      return html`<tr><td class="mono">${c.name}</td><td class="mono">${c.type}</td>
        <td class="num">${fmtNum(100 * (s.null_share || 0), 3)}%</td><td class="num">${s.distinct ?? ""}</td>
        <td class="num">${fmtNum(s.min)}</td><td class="num">${fmtNum(s.mean)}</td><td class="num">${fmtNum(s.max)}</td><td class="num">${fmtNum(s.std)}</td></tr>`;
    })}</tbody></table></div>`;
}

function Diff({ name, a, b }) {
  const diff = useApi(() => get(`datasets/${enc(name)}/diff?a=${a}&b=${b}`), [name, a, b]);
  if (diff.error) return html`<${ErrorBox} error=${diff.error} />`;
  if (!diff.data) return html`<${Loading} what="the diff" />`;
  const d = diff.data.diff;
  const drift = Object.entries((d.drift && d.drift.columns) || {});
  return html`<div>
    <div class="cards">
      <div class="card"><div class="k">rows</div><div class="v">${fmtNum(d.rows.a)} → ${fmtNum(d.rows.b)}</div></div>
      <div class="card"><div class="k">bytes</div><div class="v">${fmtNum(d.size_bytes.delta)}</div></div>
      <div class="card"><div class="k">files changed</div><div class="v">${d.files.changed.length + d.files.added.length + d.files.removed.length}</div></div>
      <div class="card"><div class="k">schema</div><div class="v">${d.schema.added.length + d.schema.removed.length + d.schema.type_changed.length ? "changed" : "same"}</div></div>
    </div>
    ${d.schema.added.length ? html`<p>Columns added: <code>${d.schema.added.join(", ")}</code></p>` : null}
    ${d.schema.removed.length ? html`<p>Columns removed: <code>${d.schema.removed.join(", ")}</code></p>` : null}
    ${drift.length ? html`<div class="tablewrap"><table class="t" aria-label="diff">
      <thead><tr><th>Column</th><th class="num">PSI</th><th class="num">mean shift (sd)</th><th>null share</th><th></th></tr></thead>
      <tbody>${drift.map(([c, x]) => html`<tr><td class="mono">${c}</td><td class="num">${fmtNum(x.psi)}</td><td class="num">${fmtNum(x.mean_shift)}</td>
        <td>${fmtNum(100 * x.null_share_a, 3)}% → ${fmtNum(100 * x.null_share_b, 3)}%</td>
        <td>${x.drifted ? html`<span class="pill bad">drifted</span>` : html`<span class="pill good">ok</span>`}</td></tr>`)}</tbody>
    </table></div>` : null}
  </div>`;
}

export function DatasetPage({ name }) {
  const versions = useApi(() => get(`datasets/${enc(name)}/versions`), [name]);
  const [picked, setPicked] = useState(null);
  const [pair, setPair] = useState(null);
  if (versions.error) return html`<div><h1>${name}</h1><${ErrorBox} error=${versions.error} /></div>`;
  if (!versions.data) return html`<${Loading} what="the dataset" />`;
  const all = versions.data.versions;
  if (!all.length) return html`<div><h1>${name}</h1><${Empty}>No version.<//></div>`;
  const shown = all.find((v) => v.version === picked) || all[0];
  const [a, b] = pair || [all.length > 1 ? all[1].version : all[0].version, all[0].version];
  const pick = (value, i) => html`<select aria-label=${i ? "version b" : "version a"} value=${value}
    onChange=${(e) => setPair(i ? [a, Number(e.target.value)] : [Number(e.target.value), b])}>
    ${all.map((v) => html`<option value=${v.version}>v${v.version}</option>`)}</select>`;
  return html`<div>
    <div class="crumbs"><a href="#/datasets">Datasets</a> /</div>
    <h1>${name}</h1>
    <div class="tablewrap"><table class="t" aria-label="versions">
      <thead><tr><th>Version</th><th class="num">Rows</th><th class="num">Bytes</th><th class="num">Files</th><th>Mode</th><th>Content hash</th><th>Created</th></tr></thead>
      <tbody>${all.map((v) => html`<tr data-version=${v.version} onClick=${() => setPicked(v.version)} style="cursor:pointer">
        <td class=${v.version === shown.version ? "ok" : ""}>v${v.version}</td><td class="num">${fmtNum(v.num_rows)}</td>
        <td class="num">${fmtNum(v.size_bytes)}</td><td class="num">${v.num_files}</td><td>${v.mode}</td>
        <td class="mono">${v.content_hash.slice(0, 16)}</td><td>${fmtTime(v.created_at)}</td></tr>`)}</tbody>
    </table></div>
    <h2>Schema and statistics of v${shown.version}</h2>
    <${Profile} version=${shown} />
    ${all.length > 1 ? html`<div><h2>Diff</h2><div class="toolbar">Compare ${pick(a, 0)} with ${pick(b, 1)}</div>
      <${Diff} name=${name} a=${a} b=${b} /></div>` : null}
  </div>`;
}
