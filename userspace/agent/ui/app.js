// The sluice /ui page: polls the agent's /stats/window once a second and
// draws, per service port, each subset's configured share against the share
// it really got (last 10 s), with every configuration change marked. Plain
// DOM and SVG, no framework; every text is set with textContent (service
// names come from configuration files).
'use strict';

const POLL_MS = 1000;
const HISTORY_S = 600;          // the plots keep this much of what the page has seen
const PLOT_W = 560, PLOT_H = 170, PAD_L = 34, PAD_R = 8, PAD_T = 8, PAD_B = 18;
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = {
  history: new Map(),           // "service:port" -> Map(t -> {configured, observed})
  changes: new Map(),           // "started_at/version/kind/at" -> change (kept across agent restarts)
  restarts: [],                 // times the page saw the agent start again
  startedAt: null,
  explainVersion: null,
  lastOk: null,
  unreachableSince: null,
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

const pct = (v) => (v === null || v === undefined ? '–' : (100 * v).toFixed(1) + '%');
const num = (v, digits) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits));
const clock = (t) => new Date(t * 1000).toLocaleTimeString();
const subsetName = (n) => (n === '' ? '(all)' : n);

async function getJson(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 3000);
  try {
    const r = await fetch(path, { signal: ctl.signal, cache: 'no-store' });
    if (!r.ok) throw new Error(path + ' answered ' + r.status);
    return await r.json();
  } finally {
    clearTimeout(timer);
  }
}

async function getText(path) {
  const r = await fetch(path, { cache: 'no-store' });
  return { ok: r.ok, text: await r.text() };
}

function remember(win) {
  if (state.startedAt !== null && win.started_at !== state.startedAt) state.restarts.push(win.started_at);
  state.startedAt = win.started_at;
  for (const c of win.changes || []) state.changes.set([win.started_at, c.version, c.kind, c.at].join('/'), c);
  const oldest = Date.now() / 1000 - HISTORY_S;
  for (const p of win.ports) {
    const key = p.service + ':' + p.port;
    if (!state.history.has(key)) {
      // First sight of this port: draw the seconds the agent still holds,
      // each with the traffic from the first of them up to it.
      const h = new Map();
      const counts = {};
      let total = 0;
      for (const s of p.seconds || []) {
        for (const [name, share] of Object.entries(s.observed)) counts[name] = (counts[name] || 0) + share * s.total;
        total += s.total;
        const observed = {};
        if (total > 0) for (const [name, c] of Object.entries(counts)) observed[name] = c / total;
        h.set(s.t, { configured: s.configured, observed });
      }
      state.history.set(key, h);
    }
    if (win.sampled_at === null) continue;
    const configured = {}, observed = {};
    for (const s of p.subsets) {
      if (s.configured !== null) configured[s.name] = s.configured;
      if (s.observed !== null) observed[s.name] = s.observed;
    }
    const h = state.history.get(key);
    h.set(win.sampled_at, { configured, observed });
    for (const t of [...h.keys()]) if (t < oldest) h.delete(t);
  }
  for (const [k, c] of state.changes) if (c.at < oldest) state.changes.delete(k);
}

function renderAgent(win) {
  const st = win.status;
  const agent = document.getElementById('agent');
  const planes = Object.entries(st.planes).filter(([, on]) => on).map(([p]) => p).join(', ') || 'none';
  agent.textContent = st.version
    ? `version ${st.version} (${st.origin}), applied ${st.applied_at} · planes: ${planes} · sluiced up since ${clock(win.started_at)}`
    : 'no valid configuration applied yet';
  agent.dataset.version = st.version;
  const notices = document.getElementById('notices');
  notices.replaceChildren();
  if (st.last_error) {
    notices.append(el('div', { class: 'notice error', id: 'refused' },
      el('strong', {}, `Last change REFUSED at ${st.last_error.at}; still serving version ${st.version}:`),
      el('pre', {}, st.last_error.messages.join('\n'))));
  }
  for (const w of st.warnings || []) notices.append(el('div', { class: 'notice warn' }, w));
  const overrides = Object.entries(st.overrides || {});
  if (overrides.length) {
    // Client namespaces with a VirtualService of their own keep the files' weights.
    const kept = st.override_views_kept || {};
    notices.append(el('div', { class: 'notice warn', id: 'overrides' },
      'Runtime weight overrides (until the files change their routes): ' +
      overrides.map(([h, w]) => h + ' ' + Object.entries(w).map(([s, v]) => s + '=' + v).join(' ') +
        (kept[h] ? ' (not for clients of ' + kept[h].join('; ') + ')' : '')).join('; ')));
  }
  if (state.restarts.length) {
    notices.append(el('div', { class: 'notice warn', id: 'restarted' },
      `sluiced restarted at ${clock(state.restarts[state.restarts.length - 1])}: its 10 s window started again`));
  }
}

function renderUnreachable(err) {
  if (state.unreachableSince === null) state.unreachableSince = Date.now() / 1000;
  const agent = document.getElementById('agent');
  agent.textContent = `agent unreachable since ${clock(state.unreachableSince)} (${err.message}); retrying every second`;
  agent.dataset.version = '';
  for (const cell of document.querySelectorAll('.observed, .configured')) cell.dataset.stale = '1';
}

function plot(key, subsets, colorOf) {
  const h = state.history.get(key) || new Map();
  const now = Date.now() / 1000;
  const times = [...h.keys()].sort((a, b) => a - b);
  const t0 = Math.min(times.length ? times[0] : now - 60, now - 60);
  const x = (t) => PAD_L + ((t - t0) / Math.max(now - t0, 1)) * (PLOT_W - PAD_L - PAD_R);
  const y = (v) => PAD_T + (1 - v) * (PLOT_H - PAD_T - PAD_B);
  const s = svg('svg', { class: 'plot', width: PLOT_W, height: PLOT_H, viewBox: `0 0 ${PLOT_W} ${PLOT_H}`, role: 'img' });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    s.append(svg('line', { class: v === 0 ? 'axis' : 'grid', x1: PAD_L, x2: PLOT_W - PAD_R, y1: y(v), y2: y(v) }));
    const label = svg('text', { class: 'label', x: 2, y: y(v) + 3 });
    label.textContent = (100 * v) + '%';
    s.append(label);
  }
  const tl = svg('text', { class: 'label', x: PAD_L, y: PLOT_H - 4 });
  tl.textContent = clock(t0);
  const tr = svg('text', { class: 'label', x: PLOT_W - PAD_R - 48, y: PLOT_H - 4 });
  tr.textContent = clock(now);
  s.append(tl, tr);
  const [service, port] = key.split(':');
  for (const c of state.changes.values()) {
    if (c.at < t0 || (c.kind !== 'refused' && !c.what.includes(service))) continue;
    const line = svg('line', { class: c.kind === 'refused' ? 'refused' : 'change', x1: x(c.at), x2: x(c.at), y1: PAD_T, y2: PLOT_H - PAD_B });
    const title = svg('title');
    title.textContent = `${clock(c.at)} version ${c.version} ${c.kind}: ${c.what}`;
    line.append(title);
    s.append(line);
  }
  for (const t of state.restarts) {
    if (t >= t0) s.append(svg('line', { class: 'restart', x1: x(t), x2: x(t), y1: PAD_T, y2: PLOT_H - PAD_B }));
  }
  for (const name of subsets) {
    for (const kind of ['configured', 'observed']) {
      let d = '';
      let prev = null;
      for (const t of times) {
        const v = h.get(t)[kind][name];
        if (v === undefined) { prev = null; continue; }
        // A gap of more than 3 s (agent down) breaks the line.
        d += (prev === null || t - prev > 3 ? 'M' : 'L') + x(t).toFixed(1) + ',' + y(v).toFixed(1);
        prev = t;
      }
      if (d) s.append(svg('path', { class: `${kind} ${colorOf(name)}`, d }));
    }
  }
  return s;
}

function renderPorts(win) {
  const box = document.getElementById('ports');
  box.replaceChildren();
  if (!win.ports.length) box.append(el('p', {}, 'No service ports in the serving configuration.'));
  for (const p of win.ports) {
    const key = p.service + ':' + p.port;
    const names = new Set(p.subsets.map((s) => s.name));
    const h = state.history.get(key);
    if (h) for (const pt of h.values()) for (const n of Object.keys(pt.configured)) names.add(n);
    const ordered = [...names].sort();
    const colorOf = (n) => 'c' + (ordered.indexOf(n) % 6);
    const l7 = p.plane === 'l7';
    const summary = l7
      ? `${num(p.requests_per_s, 1)} req/s · errors ${pct(p.error_rate)} · p50 ${num(p.p50_ms, 1)} ms · p99 ${num(p.p99_ms, 1)} ms`
      : `${num(p.connections_per_s, 1)} new conn/s`;
    const table = el('table', { class: 'subsets' },
      el('thead', {}, el('tr', {}, el('th', { class: 'text' }, 'subset'), el('th', {}, 'configured'), el('th', {}, 'observed'),
        el('th', {}, l7 ? 'req/s' : 'conn/s'), ...(l7 ? [el('th', {}, 'errors'), el('th', {}, 'p50 ms'), el('th', {}, 'p99 ms')] : []),
        el('th', { class: 'text' }, l7 ? 'endpoints (active requests)' : 'endpoints (active flows)'), el('th', {}, 'ejected'))));
    const body = el('tbody');
    for (const s of p.subsets) {
      const eps = (s.endpoints || []).map((e) => {
        const load = l7 ? e.l7_active_requests : e.l4_active_flows;
        return `${e.name} ${load === undefined ? '–' : load}${e.ejected ? ' EJECTED' : ''}`;
      }).join(', ');
      body.append(el('tr', { 'data-subset': s.name },
        el('td', { class: 'text' }, el('span', { class: 'swatch ' + colorOf(s.name) }), subsetName(s.name)),
        el('td', { class: 'configured', 'data-subset': s.name, 'data-value': s.configured === null ? '' : s.configured }, pct(s.configured)),
        el('td', { class: 'observed', 'data-subset': s.name, 'data-value': s.observed === null ? '' : s.observed }, pct(s.observed)),
        el('td', {}, num(l7 ? s.requests_per_s : s.connections_per_s, 1)),
        ...(l7 ? [el('td', {}, pct(s.error_rate)), el('td', {}, num(s.p50_ms, 1)), el('td', {}, num(s.p99_ms, 1))] : []),
        el('td', { class: 'endpoints' }, eps || '–'),
        el('td', { class: s.ejected ? 'ejected' : '' }, s.ejected === undefined ? '–' : s.ejected)));
    }
    table.append(body);
    const section = el('div', { class: 'port', 'data-service': p.service, 'data-port': p.port, 'data-plane': p.plane },
      el('h3', {}, `${p.service}:${p.port} `, el('span', {}, l7 ? 'L7 (requests)' : 'L4 (new connections)'),
        el('span', { class: 'summary' }, summary)),
      el('div', { class: 'port-body' }, plot(key, ordered, colorOf), table));
    box.append(section);
  }
}

function renderChanges() {
  const body = document.querySelector('#changes tbody');
  body.replaceChildren();
  const all = [...state.changes.values()].sort((a, b) => b.at - a.at).slice(0, 20);
  for (const c of all) body.append(el('tr', { class: c.kind }, el('td', {}, clock(c.at)), el('td', {}, c.version),
    el('td', { class: 'text' }, c.kind), el('td', { class: 'text' }, c.what)));
}

async function refreshRoutes(version) {
  if (version === state.explainVersion) return;
  const r = await getText('/explain');
  document.getElementById('routes').textContent = r.text;
  if (r.ok) state.explainVersion = version;
}

async function tick() {
  try {
    const win = await getJson('/stats/window');
    state.unreachableSince = null;
    remember(win);
    renderAgent(win);
    renderPorts(win);
    renderChanges();
    document.body.dataset.sampledAt = win.sampled_at === null ? '' : win.sampled_at;
    await refreshRoutes(win.status.version);
  } catch (err) {
    renderUnreachable(err);
  } finally {
    setTimeout(tick, POLL_MS);
  }
}

tick();
