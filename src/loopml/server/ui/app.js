// The loopml web UI: a shell with navigation, sign-in when access control is on, and one page
// per part of the loop, chosen by the URL's hash.
import {
  html, render, useState, useEffect,
} from "./vendor/preact-htm.js";
import { api, get, session, setSession, onSessionChange, parseHash, ErrorBox } from "./lib.js";
import { ExperimentsPage } from "./pages/experiments.js";
import { RunsPage } from "./pages/runs.js";
import { RunPage } from "./pages/run.js";
import { ComparePage } from "./pages/compare.js";
import { ModelsPage, ModelPage } from "./pages/models.js";
import { DeploymentsPage, DeploymentPage } from "./pages/deployments.js";
import { AbtestsPage, AbtestPage } from "./pages/abtests.js";
import { MonitoringPage } from "./pages/monitoring.js";
import { FeaturesPage, FeatureViewPage } from "./pages/features.js";
import { DatasetsPage, DatasetPage } from "./pages/datasets.js";
import { PipelinesPage, PipelineRunPage } from "./pages/pipelines.js";

const SECTIONS = [
  ["experiments", "Experiments"],
  ["models", "Models"],
  ["deployments", "Deployments"],
  ["abtests", "A/B tests"],
  ["monitoring", "Monitoring"],
  ["features", "Features"],
  ["datasets", "Datasets"],
  ["pipelines", "Pipelines"],
];

function route({ parts, query }) {
  const [head, id] = parts;
  switch (head) {
    case undefined:
    case "experiments":
      return id ? html`<${RunsPage} experimentId=${id} query=${query} />` : html`<${ExperimentsPage} />`;
    case "runs": return html`<${RunPage} runId=${id} query=${query} />`;
    case "compare": return html`<${ComparePage} query=${query} />`;
    case "models": return id ? html`<${ModelPage} name=${id} query=${query} />` : html`<${ModelsPage} />`;
    case "deployments":
      return id ? html`<${DeploymentPage} name=${id} />` : html`<${DeploymentsPage} />`;
    case "abtests": return id ? html`<${AbtestPage} name=${id} />` : html`<${AbtestsPage} />`;
    case "monitoring": return html`<${MonitoringPage} query=${query} />`;
    case "features": return id ? html`<${FeatureViewPage} name=${id} />` : html`<${FeaturesPage} />`;
    case "datasets": return id ? html`<${DatasetPage} name=${id} />` : html`<${DatasetsPage} />`;
    case "pipelines": return html`<${PipelinesPage} />`;
    case "pipeline-runs": return html`<${PipelineRunPage} runId=${id} />`;
    default: return html`<div><h1>Not found</h1><p>No page at <code>#/${parts.join("/")}</code>.</p></div>`;
  }
}

function SignIn({ onSignedIn }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api("POST", "session", { username, password }));
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return html`<form class="login panel" onSubmit=${submit}>
    <h1>Sign in to loopml</h1>
    <label for="u">User name</label>
    <input id="u" name="username" type="text" autocomplete="username" value=${username}
      onInput=${(e) => setUsername(e.target.value)} required />
    <label for="p">Password</label>
    <input id="p" name="password" type="password" autocomplete="current-password" value=${password}
      onInput=${(e) => setPassword(e.target.value)} required />
    <${ErrorBox} error=${error} />
    <p><button class="primary" type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button></p>
  </form>`;
}

function Shell({ where, children }) {
  const [workspaces, setWorkspaces] = useState(null);
  useEffect(() => {
    if (session.admin) get("admin/workspaces").then((d) => setWorkspaces(d.workspaces.map((w) => w.name)), () => {});
  }, []);
  const choices = workspaces || Object.keys(session.roles || {});
  const signOut = async () => {
    await api("DELETE", "session");
    setSession({ user: null, csrf: null });
  };
  return html`<div class="shell">
    <nav class="side" aria-label="sections">
      <div class="brand">loopml</div>
      ${SECTIONS.map(([key, label]) => html`<a href=${"#/" + key} class=${where === key ? "on" : ""}>${label}</a>`)}
      <div class="foot">
        ${session.user ? html`<div>Signed in as <b>${session.user}</b></div>` : html`<div>Open server (no sign-in)</div>`}
        ${choices.length ? html`<label>Workspace
          <select aria-label="workspace" value=${session.workspace} onChange=${(e) => { setSession({ workspace: e.target.value }); location.reload(); }}>
            <option value="">(server default)</option>
            ${choices.map((w) => html`<option value=${w}>${w}</option>`)}
          </select></label>` : null}
        ${session.user ? html`<button onClick=${signOut}>Sign out</button>` : null}
      </div>
    </nav>
    <main>${children}</main>
  </div>`;
}

function App() {
  const [where, setWhere] = useState(parseHash());
  const [ready, setReady] = useState(false);
  const [error, setError] = useState(null);
  const [, setTick] = useState(0);
  useEffect(() => {
    const onHash = () => setWhere(parseHash());
    window.addEventListener("hashchange", onHash);
    const off = onSessionChange(() => setTick((t) => t + 1));
    get("session").then((s) => {
      setSession({ authEnabled: s.auth_enabled, user: s.user, csrf: s.csrf_token || null,
        admin: s.auth_enabled ? !!s.admin : true, roles: s.roles || {} });
      setReady(true);
    }, setError);
    return () => { window.removeEventListener("hashchange", onHash); off(); };
  }, []);
  if (error) return html`<main><${ErrorBox} error=${error} /></main>`;
  if (!ready) return html`<p class="boot">Loading loopml…</p>`;
  if (session.authEnabled && !session.user) {
    return html`<${SignIn} onSignedIn=${(s) => setSession({ user: s.user, csrf: s.csrf_token,
      admin: !!s.admin, roles: s.roles || {} })} />`;
  }
  const head = where.parts[0] || "experiments";
  const section = { runs: "experiments", compare: "experiments", "pipeline-runs": "pipelines" }[head] || head;
  return html`<${Shell} where=${section}>${route(where)}<//>`;
}

render(html`<${App} />`, document.getElementById("app"));
