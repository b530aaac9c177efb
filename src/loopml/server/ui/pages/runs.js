// The runs of one experiment: a table paged, sorted and filtered on the server (the search_runs
// filter grammar, with autocompletion of keys), a column chooser (only the chosen columns are
// fetched), and selection for compare.
import {
  html, useState, useEffect, useRef, get, post, useApi, ErrorBox, Loading, Empty,
  fmtTime, fmtDuration, fmtNum, statusPill, navigate, href,
} from "../lib.js";

const PAGE_SIZES = [10, 25, 50, 100, 200];
const ATTRIBUTES = ["attributes.status", "attributes.run_name", "attributes.start_time",
  "attributes.end_time", "attributes.run_id", "attributes.user_id"];
const OPERATORS = ["=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "AND"];

// a key as the filter grammar reads it: bare, else in backticks (or double quotes when the
// key holds a backtick)
export function quoteKey(key) {
  if (/^[A-Za-z_][\w.]*$/.test(key)) return key;
  return key.includes("`") ? `"${key}"` : "`" + key + "`";
}

function storedColumns(experimentId) {
  try { return JSON.parse(localStorage.getItem("loopml.columns." + experimentId)); } catch { return null; }
}

function defaultColumns(keys) {
  return { metrics: keys.metrics.slice(0, 6), params: keys.params.slice(0, 6) };
}

// The word being typed at the cursor, and suggestions for it.
function suggestionsFor(text, cursor, keys) {
  const before = text.slice(0, cursor);
  const match = /[\w.`-]*$/.exec(before);
  const word = match ? match[0] : "";
  if (!word) return { word, items: [] };
  const pool = keys ? [
    ...keys.metrics.map((k) => "metrics." + quoteKey(k)),
    ...keys.params.map((k) => "params." + quoteKey(k)),
    ...keys.tags.map((k) => "tags." + quoteKey(k)),
    ...ATTRIBUTES,
  ] : ATTRIBUTES;
  const lower = word.toLowerCase();
  const items = pool.filter((k) => k.toLowerCase().startsWith(lower) && k !== word);
  const contains = pool.filter((k) => !k.toLowerCase().startsWith(lower) && k.toLowerCase().includes(lower));
  return { word, items: [...items, ...contains].slice(0, 12) };
}

function FilterBox({ value, keys, onApply }) {
  const [text, setText] = useState(value);
  const [suggest, setSuggest] = useState({ word: "", items: [] });
  const [active, setActive] = useState(0);
  const input = useRef(null);
  useEffect(() => setText(value), [value]);
  const update = (e) => {
    setText(e.target.value);
    setSuggest(suggestionsFor(e.target.value, e.target.selectionStart, keys));
    setActive(0);
  };
  const pick = (item, word = suggest.word) => {
    // read the box itself: a key typed just before may not have re-rendered yet
    const current = input.current.value;
    const cursor = input.current.selectionStart;
    const start = cursor - word.length;
    const next = current.slice(0, start) + item + " " + current.slice(cursor);
    input.current.value = next;
    setText(next);
    setSuggest({ word: "", items: [] });
    requestAnimationFrame(() => {
      input.current.focus();
      const at = start + item.length + 1;
      input.current.setSelectionRange(at, at);
    });
  };
  const onKey = (e) => {
    // suggestions from the box itself: the last keys typed may not have re-rendered yet
    const fresh = suggestionsFor(e.target.value, e.target.selectionStart, keys);
    const open = suggest.items.length > 0 && fresh.items.length > 0;
    const item = open ? fresh.items[Math.min(active, fresh.items.length - 1)] : null;
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActive((a) => (a + step + fresh.items.length) % fresh.items.length);
    } else if (open && (e.key === "Tab" || (e.key === "Enter" && !e.ctrlKey))) {
      e.preventDefault();
      pick(item, fresh.word);
    } else if (e.key === "Enter") {
      setSuggest({ word: "", items: [] });
      onApply(e.target.value.trim());
    } else if (e.key === "Escape") {
      setSuggest({ word: "", items: [] });
    }
  };
  return html`<div class="grow">
    <input ref=${input} class="filter" type="text" aria-label="filter" spellcheck="false" value=${text}
      placeholder="metrics.accuracy > 0.8 AND params.model = 'gbm'   (Tab completes keys, Enter applies)"
      onInput=${update} onKeyDown=${onKey} onBlur=${() => setTimeout(() => setSuggest({ word: "", items: [] }), 150)} />
    ${suggest.items.length ? html`<div class="suggest" role="listbox">${suggest.items.map((item, i) => html`<div
      role="option" class=${i === active ? "on" : ""} onMouseDown=${(e) => { e.preventDefault(); pick(item); }}>${item}</div>`)}</div>` : null}
  </div>`;
}
export { OPERATORS };

function ColumnChooser({ keys, columns, onChange, onClose }) {
  const [search, setSearch] = useState("");
  const toggle = (kind, key) => {
    const have = columns[kind];
    const next = have.includes(key) ? have.filter((k) => k !== key) : [...have, key];
    onChange({ ...columns, [kind]: next });
  };
  const show = (kind) => keys[kind].filter((k) => k.toLowerCase().includes(search.toLowerCase())).slice(0, 500);
  return html`<div class="panel" aria-label="columns">
    <div class="toolbar"><b>Columns</b>
      <input type="text" placeholder="find a key" aria-label="find a column" value=${search} onInput=${(e) => setSearch(e.target.value)} />
      <button onClick=${() => onChange({ metrics: [], params: [] })}>None</button>
      <button onClick=${onClose}>Done</button>
      <span class="muted">${keys.metrics.length} metrics, ${keys.params.length} params</span></div>
    ${["metrics", "params"].map((kind) => html`<div><b class="muted">${kind}</b><div class="columns">
      ${show(kind).map((k) => html`<label title=${k}><input type="checkbox" checked=${columns[kind].includes(k)}
        onChange=${() => toggle(kind, k)} /> ${k}</label>`)}</div></div>`)}
  </div>`;
}

export function RunsPage({ experimentId, query }) {
  const filter = query.filter || "";
  const order = query.order || "attributes.start_time DESC";
  const size = PAGE_SIZES.includes(Number(query.size)) ? Number(query.size) : 50;
  const experiment = useApi(() => get("experiments/" + experimentId), [experimentId]);
  const keys = useApi(() => get(`experiments/${experimentId}/keys`), [experimentId]);
  const [columns, setColumns] = useState(storedColumns(experimentId));
  const [choosing, setChoosing] = useState(false);
  const pagingKey = `${experimentId}|${filter}|${order}|${size}`;
  const [paging, setPaging] = useState({ key: pagingKey, tokens: [null] });
  const tokens = paging.key === pagingKey ? paging.tokens : [null];
  const setTokens = (next) => setPaging({ key: pagingKey, tokens: next });
  const [selected, setSelected] = useState(new Set());
  const shown = columns || (keys.data ? defaultColumns(keys.data) : null);
  const pageIndex = tokens.length - 1;
  const runs = useApi(() => {
    if (!shown) return null;
    return post("runs/search", {
      experiment_ids: [experimentId], filter, order_by: [order], max_results: size,
      page_token: tokens[pageIndex], columns: { metrics: shown.metrics, params: shown.params, tags: [] },
    });
  }, [pagingKey, tokens[tokens.length - 1], JSON.stringify(shown)]);

  const setQuery = (changes) => navigate("/experiments/" + experimentId, { filter, order, size: size === 50 ? "" : size, ...changes }, { replace: true });
  const saveColumns = (next) => {
    setColumns(next);
    localStorage.setItem("loopml.columns." + experimentId, JSON.stringify(next));
  };
  const sortBy = (key) => {
    const [current, dir] = order.split(/ (?=ASC$|DESC$)/);
    setQuery({ order: `${key} ${current === key && dir === "DESC" ? "ASC" : "DESC"}` });
  };
  const arrow = (key) => {
    const [current, dir] = order.split(/ (?=ASC$|DESC$)/);
    return current === key ? (dir === "ASC" ? " ▲" : " ▼") : "";
  };
  const toggle = (id) => {
    const next = new Set(selected);
    next.has(id) ? next.delete(id) : next.add(id);
    setSelected(next);
  };
  const page = runs.data && runs.data.runs;
  const th = (key, label, cls = "") => html`<th class=${"sort " + cls} onClick=${() => sortBy(key)}
    title=${"sort by " + key} data-key=${key}>${label}${arrow(key)}</th>`;
  return html`<div>
    <div class="crumbs"><a href="#/experiments">Experiments</a> /</div>
    <h1>${experiment.data ? experiment.data.experiment.name : "Experiment " + experimentId}</h1>
    <${ErrorBox} error=${experiment.error} />
    <div class="toolbar">
      <${FilterBox} value=${filter} keys=${keys.data} onApply=${(f) => setQuery({ filter: f })} />
      ${filter ? html`<button onClick=${() => setQuery({ filter: "" })}>Clear</button>` : null}
      <button onClick=${() => setChoosing(!choosing)} disabled=${!keys.data}>Columns</button>
      <button class="primary" disabled=${selected.size < 2}
        onClick=${() => navigate("/compare", { experiments: experimentId, runs: [...selected].join(",") })}>
        Compare ${selected.size || ""}</button>
    </div>
    ${choosing && keys.data ? html`<${ColumnChooser} keys=${keys.data} columns=${shown}
      onChange=${saveColumns} onClose=${() => setChoosing(false)} />` : null}
    <${ErrorBox} error=${runs.error || keys.error} />
    ${!page && runs.loading ? html`<${Loading} what="runs" />` : null}
    ${page && !page.length ? html`<${Empty}>No run matches.<//>` : null}
    ${page && page.length ? html`<div class="tablewrap"><table class="t" aria-label="runs">
      <thead><tr><th></th>
        ${th("attributes.run_name", "Run")}${th("attributes.status", "Status")}
        ${th("attributes.start_time", "Started")}<th>Duration</th>
        ${shown.metrics.map((k) => th("metrics." + quoteKey(k), k, "num"))}
        ${shown.params.map((k) => th("params." + quoteKey(k), k))}
      </tr></thead>
      <tbody>${page.map((r) => html`<tr data-run=${r.info.run_id}>
        <td><input type="checkbox" aria-label=${"select " + r.info.run_name} checked=${selected.has(r.info.run_id)}
          onChange=${() => toggle(r.info.run_id)} /></td>
        <td><a href=${href("/runs/" + r.info.run_id)}>${r.info.run_name || r.info.run_id}</a>
          ${r.info.parent_run_id ? html` <span class="muted" title="child run">↳</span>` : null}</td>
        <td>${statusPill(r.info.status)}</td>
        <td>${fmtTime(r.info.start_time)}</td>
        <td>${fmtDuration(r.info.start_time, r.info.end_time)}</td>
        ${shown.metrics.map((k) => html`<td class="num">${fmtNum(r.data.metrics[k])}</td>`)}
        ${shown.params.map((k) => html`<td class="mono">${r.data.params[k] ?? ""}</td>`)}
      </tr>`)}</tbody></table></div>` : null}
    ${page ? html`<div class="pager">
      <button disabled=${pageIndex === 0} onClick=${() => setTokens(tokens.slice(0, -1))}>← Previous</button>
      <span aria-label="page">Page ${pageIndex + 1}</span>
      <button disabled=${!runs.data.next_page_token} onClick=${() => setTokens([...tokens, runs.data.next_page_token])}>Next →</button>
      <select aria-label="page size" value=${size} onChange=${(e) => setQuery({ size: e.target.value })}>
        ${PAGE_SIZES.map((n) => html`<option value=${n}>${n} per page</option>`)}</select>
      ${runs.loading ? html`<span class="muted">loading…</span>` : null}
    </div>` : null}
  </div>`;
}
