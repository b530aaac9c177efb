// Experiments: each with its run count and last activity.
import { html, get, useApi, ErrorBox, Loading, Empty, fmtAgo, fmtTime, href } from "../lib.js";

export function ExperimentsPage() {
  const { data, error, loading } = useApi(() => get("experiments?stats=true&max_results=1000"), []);
  return html`<div>
    <h1>Experiments</h1>
    <div class="sub">Tracked experiments of this workspace, with their runs.</div>
    <${ErrorBox} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data && !data.experiments.length ? html`<${Empty}>No experiment yet: log a run with the SDK or run <code>loopml demo</code>.<//>` : null}
    ${data && data.experiments.length ? html`<div class="tablewrap"><table class="t" aria-label="experiments">
      <thead><tr><th>Name</th><th>ID</th><th class="num">Runs</th><th>Last run</th><th>Created</th></tr></thead>
      <tbody>${data.experiments.map((e) => html`<tr>
        <td><a href=${href("/experiments/" + e.experiment_id)}>${e.name}</a></td>
        <td class="mono">${e.experiment_id}</td>
        <td class="num">${e.runs}</td>
        <td title=${fmtTime(e.last_run_time)}>${fmtAgo(e.last_run_time)}</td>
        <td>${fmtTime(e.creation_time)}</td>
      </tr>`)}</tbody></table></div>` : null}
  </div>`;
}
