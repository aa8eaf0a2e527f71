// coord's web console: one page, no framework, no build step.
//
// Every request carries the login's token as `Authorization: Bearer`, kept
// in sessionStorage only (this tab, until it closes); the server checks each
// against the nodes' ACLs as it would any ZooKeeper client's. Nothing from
// the server reaches the page as markup: elements are built with
// createElement and filled with textContent, so a znode named "<img ...>"
// is shown as text. The page runs under a CSP without inline scripts.
'use strict';

// ---------------------------------------------------------------- DOM and formatting

const $ = (id) => document.getElementById(id);

// h('td', {class: 'x', dataset: {path: p}, onclick: f}, 'text', child...)
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  return append(el, ...children);
}

function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Session ids and zxids are 64-bit: JSON.parse would round those past
// 2^53, so long integers of those fields are read as strings first.
function parseJson(text) {
  return JSON.parse(text.replace(
      /("(?:ephemeralOwner|czxid|mzxid|pzxid|zxid|id|session)"\s*:\s*)(-?\d{16,})/g, '$1"$2"'));
}

function hex64(v) {
  if (v === null || v === undefined) return '';
  let n = BigInt(v);
  if (n < 0n) n += 1n << 64n;
  return '0x' + n.toString(16);
}

function isZero(v) {
  return v === undefined || v === null || BigInt(v) === 0n;
}

function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(Number(ms));
  const ago = (Date.now() - d.getTime()) / 1000;
  let rel;
  if (Math.abs(ago) < 60) rel = Math.round(ago) + ' s ago';
  else if (Math.abs(ago) < 3600) rel = Math.round(ago / 60) + ' min ago';
  else if (Math.abs(ago) < 86400 * 2) rel = (ago / 3600).toFixed(1) + ' h ago';
  else rel = Math.round(ago / 86400) + ' days ago';
  return d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC (' + rel + ')';
}

function fmtDuration(ms) {
  if (ms === undefined || ms === null) return '';
  if (ms < 1000) return ms + ' ms';
  if (ms < 120000) return (ms / 1000).toFixed(ms % 1000 ? 1 : 0) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}

function fmtNumber(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number(v).toFixed(digits === undefined ? (Number.isInteger(v) ? 0 : 1) : digits);
}

function joinPath(parent, name) {
  return parent === '/' ? '/' + name : parent + '/' + name;
}

function parentOf(path) {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseName(path) {
  return path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
}

function znodeUrl(path) {
  return '/v1/znodes' + (path === '/' ? '/' : path.split('/').map(encodeURIComponent).join('/'));
}

// `{children: '', limit: 10}` → "children&limit=10" (a bare flag for '').
function queryString(query) {
  const parts = [];
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null) continue;
    parts.push(v === '' ? encodeURIComponent(k) : encodeURIComponent(k) + '=' + encodeURIComponent(v));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

function base64OfText(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function bytesOfBase64(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; ++i) out[i] = bin.charCodeAt(i);
  return out;
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, body) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.message || b.error || ('HTTP ' + status));
    this.status = status;
    this.error = b.error || ('HTTP ' + status);
    this.code = b.code;
    this.detail = b.message || '';
  }
  describe() {
    const what = {
      BadVersion: 'the node changed since it was shown',
      NoAuth: 'not allowed for your identities',
      NoNode: 'no such node',
      NodeExists: 'the node exists already',
      NotEmpty: 'the node has children',
      SessionExpired: 'the login expired',
    }[this.error];
    return this.error + (this.status ? ' (' + this.status + ')' : '') +
        (what ? ': ' + what : '') + (this.detail ? ' — ' + this.detail : '');
  }
}

const REQUEST_TIMEOUT_MS = 15000;

const auth = {
  token: sessionStorage.getItem('coord.token'),
  user: sessionStorage.getItem('coord.user'),
  identities: JSON.parse(sessionStorage.getItem('coord.identities') || 'null'),
  isSuper: sessionStorage.getItem('coord.super') === '1',
};

function authHeader() {
  return auth.token ? 'Bearer ' + auth.token : null;
}

async function api(method, path, opts) {
  const {query, body, contentType} = opts || {};
  // X-Coord-Request: a header no other site's page can make a browser send
  // without a preflight, which this server never grants.
  const headers = {'X-Coord-Request': '1'};
  const bearer = authHeader();
  if (bearer) headers.Authorization = bearer;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array) {
      payload = body;
      headers['Content-Type'] = contentType || 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(path + queryString(query), {
      method, headers, body: payload, credentials: 'omit', cache: 'no-store',
      redirect: 'error', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    throw new ApiError(0, {error: 'ConnectionLoss', message: 'no answer from the server (' + e.message + ')'});
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? parseJson(text) : null;
  } catch (e) {
    json = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json && typeof json === 'object' ? json : {message: text.trim()});
    if (res.status === 401 && err.error === 'SessionExpired' && auth.token) loginExpired(err);
    throw err;
  }
  return json === null ? {} : json;
}

// ---------------------------------------------------------------- banner

function showError(err, context) {
  const text = err instanceof ApiError ? err.describe() : String(err && err.message || err);
  $('banner-text').textContent = (context ? context + ': ' : '') + text;
  $('banner').className = 'banner error';
  $('banner').hidden = false;
}

function showInfo(text) {
  $('banner-text').textContent = text;
  $('banner').className = 'banner info';
  $('banner').hidden = false;
}

// ---------------------------------------------------------------- login

async function login(user, password) {
  const headers = {'Content-Type': 'application/json', 'X-Coord-Request': '1'};
  if (user) headers.Authorization = 'Basic ' + base64OfText(user + ':' + password);
  let res;
  try {
    res = await fetch('/v1/auth/login', {
      method: 'POST', headers, body: '{}', credentials: 'omit', cache: 'no-store',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    throw new ApiError(0, {error: 'ConnectionLoss', message: 'no answer from the server (' + e.message + ')'});
  }
  const text = await res.text();
  let body = null;
  try {
    body = parseJson(text);
  } catch (e) {
    body = {message: text.trim()};
  }
  if (!res.ok) throw new ApiError(res.status, body);
  auth.token = body.token;
  auth.user = body.user || null;
  auth.identities = body.identities || [];
  auth.isSuper = !!body.super;
  sessionStorage.setItem('coord.token', auth.token);
  sessionStorage.setItem('coord.user', auth.user || '');
  sessionStorage.setItem('coord.identities', JSON.stringify(auth.identities));
  sessionStorage.setItem('coord.super', auth.isSuper ? '1' : '0');
}

function forgetLogin() {
  auth.token = null;
  auth.user = null;
  auth.identities = null;
  auth.isSuper = false;
  for (const k of ['coord.token', 'coord.user', 'coord.identities', 'coord.super']) sessionStorage.removeItem(k);
}

async function logout() {
  const bearer = authHeader();
  liveStop();
  if (bearer) {
    try {
      await fetch('/v1/auth/logout', {
        method: 'POST', credentials: 'omit', cache: 'no-store', body: '{}',
        headers: {'Authorization': bearer, 'Content-Type': 'application/json', 'X-Coord-Request': '1'},
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      // The token is forgotten here either way; the server expires it.
    }
  }
  forgetLogin();
  showLogin('Logged out.');
}

function loginExpired(err) {
  forgetLogin();
  liveStop();
  showLogin('Your login expired (' + err.detail + '): log in again.');
}

function showLogin(message) {
  stopPolling();
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== 'view-login';
  $('tabs').hidden = true;
  $('logout').hidden = true;
  $('identity').textContent = '';
  $('login-error').textContent = message || '';
  $('login-password').value = '';
  $('login-user').focus();
}

function identityText() {
  const who = auth.user ? auth.user : 'anonymous';
  const ids = (auth.identities || []).map((i) => i.scheme + ':' + i.id.replace(/:.*/, ''));
  return who + (auth.isSuper ? ' (super)' : '') + (ids.length ? ' — ' + ids.join(', ') : '');
}

async function enterApp() {
  $('tabs').hidden = false;
  $('logout').hidden = false;
  $('identity').textContent = identityText();
  $('identity').title = (auth.identities || []).map((i) => i.scheme + ':' + i.id).join('\n');
  tree.reset();
  showView(location.hash.slice(1) || 'tree');
  refreshServerInfo();
}

// ---------------------------------------------------------------- views

const views = ['tree', 'live', 'sessions', 'cluster'];
let currentView = null;
let pollers = [];

function stopPolling() {
  for (const t of pollers) clearInterval(t);
  pollers = [];
}

function poll(fn, everyMs) {
  fn();
  pollers.push(setInterval(fn, everyMs));
}

function showView(name) {
  if (!views.includes(name)) name = 'tree';
  currentView = name;
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== 'view-' + name;
  for (const t of document.querySelectorAll('#tabs .tab')) t.classList.toggle('active', t.dataset.view === name);
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  stopPolling();
  if (name === 'sessions') poll(loadSessions, 5000);
  if (name === 'cluster') {
    poll(loadCluster, 1000);
    poll(loadHistory, 5000);
  }
}

async function refreshServerInfo() {
  try {
    const c = await api('GET', '/v1/cluster');
    showServerInfo(c);
  } catch (e) {
    $('server-info').textContent = '';
  }
}

function showServerInfo(c) {
  $('server-info').textContent = 'server ' + c.node_id + ' · ' + c.role +
      (c.leader_id ? (c.leader_id === c.node_id ? '' : ' · leader ' + c.leader_id) : ' · no leader') +
      (c.read_only ? ' · read-only' : '');
}

// ---------------------------------------------------------------- permissions

const PERM = {READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16};
const PERM_LETTERS = [['c', PERM.CREATE], ['d', PERM.DELETE], ['r', PERM.READ], ['w', PERM.WRITE], ['a', PERM.ADMIN]];

function permsText(perms) {
  return PERM_LETTERS.map(([l, bit]) => (perms & bit ? l : '-')).join('');
}

function permsOfText(text) {
  let perms = 0;
  for (const ch of text.toLowerCase()) {
    const entry = PERM_LETTERS.find(([l]) => l === ch);
    if (!entry) throw new Error('unknown permission "' + ch + '" (use c, d, r, w, a)');
    perms |= entry[1];
  }
  return perms;
}

function ipv4(text) {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

function ipMatches(aclId, ip) {
  const [addr, bitsText] = aclId.split('/');
  if (bitsText === undefined) return addr === ip;
  const a = ipv4(addr);
  const b = ipv4(ip);
  const bits = Number(bitsText);
  if (a === null || b === null || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

// true, false, or null when this page cannot tell (identities unknown, a
// digest masked because the caller lacks ADMIN, another scheme): the
// server decides then, and its refusal makes the controls read-only.
function allowed(acl, perm) {
  if (auth.isSuper) return true;
  if (!acl) return null;
  const ids = auth.identities || [];
  let unsure = !auth.identities;
  for (const a of acl) {
    if (!(a.perms & perm)) continue;
    if (a.scheme === 'world' && a.id === 'anyone') return true;
    if (a.scheme === 'ip') {
      if (ids.some((i) => i.scheme === 'ip' && ipMatches(a.id, i.id))) return true;
    } else if (a.scheme === 'digest') {
      if (ids.some((i) => i.scheme === 'digest' && i.id === a.id)) return true;
      const user = a.id.slice(0, a.id.indexOf(':'));
      if (a.id.endsWith(':x') && ids.some((i) => i.scheme === 'digest' && i.id.startsWith(user + ':'))) unsure = true;
    } else if (a.scheme !== 'world') {
      unsure = true;
    }
  }
  return unsure ? null : false;
}

// ---------------------------------------------------------------- tree

const PAGE = 100;

const tree = {
  items: new Map(),  // path → {li, row, toggle, badges, ul, expanded, shown, total}

  reset() {
    this.items.clear();
    clear($('tree'));
    const root = this.item('/', '/', null);
    $('tree').append(root.li);
    this.expand('/');
    if (!selected.path) selectNode('/');
  },

  item(path, name, info) {
    const toggle = h('button', {type: 'button', class: 'toggle', 'aria-label': 'expand',
      onclick: () => this.toggle(path)}, '▸');
    const label = h('button', {type: 'button', class: 'node-name', onclick: () => selectNode(path)}, name);
    const badges = h('span', {class: 'badges'});
    const row = h('div', {class: 'tree-row'}, toggle, label, badges);
    const ul = h('ul', {class: 'tree-children', hidden: true, role: 'group'});
    const li = h('li', {class: 'tree-item', dataset: {path}, role: 'treeitem'}, row, ul);
    const it = {li, row, toggle, badges, ul, expanded: false, shown: 0, total: null};
    this.items.set(path, it);
    this.describe(path, info);
    if (selected.path === path) row.classList.add('selected');
    return it;
  },

  // Badges from the child entry (detail) or a node's stat.
  describe(path, info) {
    const it = this.items.get(path);
    if (!it || !info) return;
    clear(it.badges);
    if (!isZero(info.ephemeralOwner)) {
      append(it.badges, h('span', {class: 'badge eph', title: 'ephemeral, session ' + hex64(info.ephemeralOwner)}, 'E'));
    }
    if (info.numChildren > 0) append(it.badges, h('span', {class: 'badge count', title: 'children'}, String(info.numChildren)));
    if (info.numChildren === 0) it.toggle.classList.add('leaf');
    else if (info.numChildren > 0) it.toggle.classList.remove('leaf');
  },

  async toggle(path) {
    const it = this.items.get(path);
    if (!it) return;
    if (it.expanded) {
      it.expanded = false;
      it.ul.hidden = true;
      it.toggle.textContent = '▸';
    } else {
      await this.expand(path);
    }
  },

  async expand(path) {
    const it = this.items.get(path);
    if (!it) return;
    it.expanded = true;
    it.ul.hidden = false;
    it.toggle.textContent = '▾';
    await this.load(path, 0, PAGE);
  },

  // Loads `limit` children from `offset` (offset 0 starts the list again).
  async load(path, offset, limit) {
    const it = this.items.get(path);
    if (!it) return;
    let names, total;
    try {
      const r = await api('GET', znodeUrl(path), {query: {children: '', detail: '', offset, limit}});
      names = r.children || [];
      total = r.children_total;
      this.describe(path, r.stat);
    } catch (e) {
      if (offset === 0) clear(it.ul);
      append(it.ul, h('li', {class: 'error'}, e instanceof ApiError ? e.describe() : String(e)));
      return;
    }
    if (offset === 0) {
      clear(it.ul);
      it.shown = 0;
    }
    const more = it.ul.querySelector(':scope > .more');
    if (more) more.remove();
    for (const entry of names) {
      const name = typeof entry === 'string' ? entry : entry.name;
      const childPath = joinPath(path, name);
      const child = this.item(childPath, name, typeof entry === 'string' ? null : entry);
      it.ul.append(child.li);
    }
    it.shown += names.length;
    it.total = total;
    if (it.shown < total) {
      const left = total - it.shown;
      it.ul.append(h('li', {class: 'more'}, h('button', {type: 'button', class: 'load-more',
        onclick: () => this.load(path, it.shown, PAGE)},
        'Load ' + Math.min(left, PAGE) + ' more (' + it.shown + ' of ' + total + ' shown)')));
    }
  },

  // Lists the children again, as many as were shown, keeping what was open.
  async reload(path) {
    const it = this.items.get(path);
    if (!it || !it.expanded) return;
    const open = [...this.items.entries()]
        .filter(([p, x]) => x.expanded && p !== path && p.startsWith(path === '/' ? '/' : path + '/'))
        .map(([p]) => p);
    for (const p of [...this.items.keys()]) {
      if (p !== path && p.startsWith(path === '/' ? '/' : path + '/')) this.items.delete(p);
    }
    await this.load(path, 0, Math.max(PAGE, Math.min(it.shown, 10 * PAGE)));
    for (const p of open.sort()) if (this.items.has(p)) await this.expand(p);
  },

  flash(path) {
    const it = this.items.get(path);
    if (!it) return false;
    it.row.classList.remove('flash');
    void it.row.offsetWidth;  // restarts the animation
    it.row.classList.add('flash');
    clearTimeout(it.flashTimer);
    it.flashTimer = setTimeout(() => it.row.classList.remove('flash'), 4000);
    return true;
  },

  select(path) {
    for (const r of document.querySelectorAll('#tree .tree-row.selected')) r.classList.remove('selected');
    const it = this.items.get(path);
    if (it) it.row.classList.add('selected');
  },

  // Opens every ancestor of `path` so that it shows in the tree.
  async reveal(path) {
    if (path === '/') return;
    const parts = path.split('/').slice(1);
    let at = '/';
    for (const part of parts) {
      const it = this.items.get(at);
      if (!it) return;
      if (!it.expanded) await this.expand(at);
      const next = joinPath(at, part);
      if (!this.items.has(next)) return;
      at = next;
    }
    this.select(path);
    const it = this.items.get(path);
    if (it) it.row.scrollIntoView({block: 'nearest'});
  },
};

// ---------------------------------------------------------------- search

const search = {parent: null, prefix: '', shown: 0};

async function runSearch(offset) {
  let v = $('search-input').value.trim();
  if (!v) return endSearch();
  if (!v.startsWith('/')) v = '/' + v;
  const cut = v.lastIndexOf('/');
  if (offset === 0) Object.assign(search, {parent: cut === 0 ? '/' : v.slice(0, cut), prefix: v.slice(cut + 1), shown: 0});
  const {parent, prefix} = search;
  const box = $('search-results');
  let names, total;
  try {
    const r = await api('GET', znodeUrl(parent), {query: {children: '', detail: '', prefix, offset, limit: PAGE}});
    names = r.children || [];
    total = r.children_total;
  } catch (e) {
    clear(box).hidden = false;
    $('tree').hidden = true;
    append(box, h('p', {class: 'error'}, e instanceof ApiError ? e.describe() : String(e)));
    return;
  }
  if (offset === 0) {
    clear(box);
    append(box, h('p', {class: 'muted', id: 'search-summary'},
        total + (total === 1 ? ' child' : ' children') + ' of ' + parent +
        (prefix ? ' starting with "' + prefix + '"' : '')));
    append(box, h('ul', {class: 'results', id: 'search-list'}));
  }
  const list = $('search-list');
  const oldMore = box.querySelector('.more');
  if (oldMore) oldMore.remove();
  for (const entry of names) {
    const name = typeof entry === 'string' ? entry : entry.name;
    const path = joinPath(parent, name);
    append(list, h('li', {dataset: {path}},
        h('button', {type: 'button', class: 'node-name', onclick: () => selectNode(path)}, path),
        typeof entry !== 'string' && !isZero(entry.ephemeralOwner) ? h('span', {class: 'badge eph'}, 'E') : null,
        typeof entry !== 'string' && entry.numChildren ? h('span', {class: 'badge count'}, String(entry.numChildren)) : null));
  }
  search.shown += names.length;
  if (search.shown < total) {
    append(box, h('p', {class: 'more'}, h('button', {type: 'button', class: 'load-more',
      onclick: () => runSearch(search.shown)}, 'More (' + search.shown + ' of ' + total + ' shown)')));
  }
  box.hidden = false;
  $('tree').hidden = true;
}

function endSearch() {
  $('search-input').value = '';
  clear($('search-results')).hidden = true;
  $('tree').hidden = false;
}

// ---------------------------------------------------------------- the node

const selected = {
  path: null,
  node: null,       // the reply of GET /v1/znodes/<path>?acl
  bytes: null,      // its data
  format: 'text',
  refused: {},      // perm bit → the server's refusal message
  changedAt: null,  // zxid of a change seen on the event stream since shown
  notice: null,
};

async function selectNode(path, keepNotice) {
  showViewIfNeeded('tree');
  let r;
  try {
    r = await api('GET', znodeUrl(path), {query: {acl: ''}});
  } catch (e) {
    selected.path = path;
    selected.node = null;
    renderNodeError(path, e);
    return;
  }
  if (selected.path !== path) selected.refused = {};
  selected.path = path;
  selected.node = r;
  selected.changedAt = null;
  if (!keepNotice) selected.notice = null;
  selected.bytes = r.data_base64 ? bytesOfBase64(r.data_base64) :
      r.data === null || r.data === undefined ? null : new TextEncoder().encode(r.data);
  tree.describe(path, r.stat);
  tree.select(path);
  renderNode();
}

function showViewIfNeeded(name) {
  if (currentView !== name) showView(name);
}

function renderNodeError(path, err) {
  const pane = clear($('node'));
  append(pane, breadcrumbs(path),
      h('p', {class: 'error', id: 'node-error'}, err instanceof ApiError ? err.describe() : String(err)),
      h('button', {type: 'button', onclick: () => selectNode(path)}, 'Try again'));
}

function breadcrumbs(path) {
  const nav = h('h2', {class: 'crumbs', id: 'node-path'});
  append(nav, h('button', {type: 'button', class: 'crumb', onclick: () => selectNode('/')}, '/'));
  let at = '';
  const parts = path === '/' ? [] : path.split('/').slice(1);
  parts.forEach((part, i) => {
    at += '/' + part;
    const target = at;
    if (i > 0) append(nav, h('span', {class: 'sep'}, '/'));
    append(nav, h('button', {type: 'button', class: 'crumb', onclick: () => selectNode(target)}, part));
  });
  return nav;
}

function setNotice(kind, text, action) {
  selected.notice = {kind, text, action};
  renderNotice();
}

function renderNotice() {
  const box = $('node-notice');
  if (!box) return;
  clear(box);
  const n = selected.notice;
  box.hidden = !n && !selected.changedAt;
  if (selected.changedAt) {
    append(box, h('p', {class: 'notice warn', id: 'node-changed'},
        'This node changed at zxid ' + hex64(selected.changedAt) + ' since it was shown. ',
        h('button', {type: 'button', onclick: () => selectNode(selected.path)}, 'Reload')));
  }
  if (n) {
    append(box, h('p', {class: 'notice ' + n.kind, id: 'node-message', role: 'alert'}, n.text, ' ',
        n.action ? h('button', {type: 'button', onclick: n.action.run}, n.action.label) : null));
  }
}

function dataText(bytes) {
  return bytes === null ? '' : new TextDecoder('utf-8', {fatal: false}).decode(bytes);
}

function hexDump(bytes) {
  const LIMIT = 16384;
  const lines = [];
  const n = Math.min(bytes.length, LIMIT);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const hexPart = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(off.toString(16).padStart(8, '0') + '  ' + hexPart.padEnd(47) + '  |' + ascii + '|');
  }
  if (bytes.length > LIMIT) lines.push('… ' + (bytes.length - LIMIT) + ' more bytes');
  return lines.join('\n');
}

function renderData() {
  const out = $('node-data');
  if (!out) return;
  const bytes = selected.bytes;
  out.classList.remove('error');
  if (bytes === null) {
    out.textContent = '(no data: null)';
    return;
  }
  if (selected.format === 'hex') {
    out.textContent = bytes.length ? hexDump(bytes) : '(empty)';
  } else if (selected.format === 'json') {
    const text = dataText(bytes);
    try {
      out.textContent = JSON.stringify(JSON.parse(text), null, 2);
    } catch (e) {
      out.textContent = 'Not JSON: ' + e.message;
      out.classList.add('error');
    }
  } else {
    out.textContent = bytes.length ? dataText(bytes) : '(empty)';
  }
}

function refusalNote(perm, what) {
  if (selected.refused[perm]) return 'read-only: ' + selected.refused[perm];
  const a = allowed(selected.node.acl, perm);
  if (a === false) return 'read-only: none of your identities may ' + what + ' here';
  return null;
}

function renderNode() {
  const node = selected.node;
  const path = selected.path;
  const stat = node.stat;
  const pane = clear($('node'));
  const ephemeral = !isZero(stat.ephemeralOwner);

  append(pane, breadcrumbs(path));
  append(pane, h('div', {id: 'node-notice', hidden: true}));
  const kinds = [];
  if (ephemeral) kinds.push(h('span', {class: 'badge eph', id: 'node-ephemeral'}, 'ephemeral · session ' + hex64(stat.ephemeralOwner)));
  append(pane, h('div', {class: 'row'}, kinds,
      h('button', {type: 'button', id: 'node-reload', onclick: () => selectNode(path)}, 'Reload'),
      h('button', {type: 'button', id: 'node-create', onclick: () => createDialog(path),
        disabled: !!refusalNote(PERM.CREATE, 'create children') || ephemeral,
        title: ephemeral ? 'an ephemeral node has no children' : refusalNote(PERM.CREATE, 'create children') || ''}, 'New child…'),
      path !== '/' && h('button', {type: 'button', id: 'node-delete', onclick: () => deleteDialog(path, false)}, 'Delete…'),
      path !== '/' && stat.numChildren > 0 && h('button', {type: 'button', id: 'node-delete-tree', class: 'danger',
        onclick: () => deleteDialog(path, true)}, 'Delete subtree…')));

  // Data: shown three ways; edited as text.
  const formats = h('div', {class: 'row formats', role: 'radiogroup'}, ['text', 'json', 'hex'].map((f) =>
    h('label', {}, h('input', {type: 'radio', name: 'format', value: f, id: 'format-' + f,
      checked: selected.format === f, onchange: () => { selected.format = f; renderData(); }}),
    {text: 'Text', json: 'JSON', hex: 'Hex'}[f])));
  append(pane, h('h3', {}, 'Data ', h('span', {class: 'muted'}, stat.dataLength + ' bytes')), formats,
      h('pre', {id: 'node-data', class: 'data'}));
  renderData();

  const writeNote = refusalNote(PERM.WRITE, 'write');
  const editor = h('textarea', {id: 'node-edit', rows: 6, spellcheck: 'false', readOnly: !!writeNote,
    'aria-label': 'new data'});
  editor.value = dataText(selected.bytes);
  const save = h('button', {type: 'button', id: 'node-save', disabled: !!writeNote,
    onclick: () => saveData(path, stat.version, editor.value)}, 'Save as version ' + (stat.version + 1));
  if (writeNote) append(pane, h('p', {class: 'readonly', id: 'node-readonly'}, writeNote));
  append(pane, h('details', {id: 'node-editor', open: !writeNote},
      h('summary', {}, writeNote ? 'Edit (read-only)' : 'Edit'),
      selected.node.data_base64 ? h('p', {class: 'muted'}, 'The data is not UTF-8 text: saving replaces it with the text below.') : null,
      editor,
      h('div', {class: 'row'}, save,
          h('span', {class: 'muted'}, 'only if the node is still at version ' + stat.version))));

  // Stat.
  const rows = [
    ['czxid', hex64(stat.czxid), 'created'],
    ['mzxid', hex64(stat.mzxid), 'last changed'],
    ['pzxid', hex64(stat.pzxid), 'children last changed'],
    ['ctime', fmtTime(stat.ctime)],
    ['mtime', fmtTime(stat.mtime)],
    ['version', stat.version, 'data'],
    ['cversion', stat.cversion, 'children'],
    ['aversion', stat.aversion, 'ACL'],
    ['ephemeralOwner', ephemeral ? hex64(stat.ephemeralOwner) : '0 (not ephemeral)'],
    ['dataLength', stat.dataLength],
    ['numChildren', stat.numChildren],
  ];
  append(pane, h('h3', {}, 'Stat'), h('table', {class: 'stat', id: 'node-stat'},
      h('tbody', {}, rows.map(([k, v, note]) => h('tr', {dataset: {field: k}},
          h('th', {}, k), h('td', {}, String(v)), h('td', {class: 'muted'}, note || ''))))));

  // ACL.
  const acl = node.acl || [];
  const aclNote = refusalNote(PERM.ADMIN, 'change the ACL');
  append(pane, h('h3', {}, 'ACL'), h('table', {class: 'grid', id: 'node-acl'},
      h('thead', {}, h('tr', {}, h('th', {}, 'scheme'), h('th', {}, 'id'), h('th', {}, 'perms'))),
      h('tbody', {}, acl.map((a) => h('tr', {}, h('td', {}, a.scheme), h('td', {}, a.id),
          h('td', {class: 'mono', title: String(a.perms)}, permsText(a.perms)))))),
  h('div', {class: 'row'}, h('button', {type: 'button', id: 'node-acl-edit', disabled: !!aclNote,
    onclick: () => aclDialog(path, stat.aversion, acl)}, 'Set ACL…'),
  aclNote ? h('span', {class: 'readonly'}, aclNote) : null));
  renderNotice();
}

// The outcome of a change refused by the server, told on the node.
function refused(err, perm, action) {
  if (!(err instanceof ApiError)) {
    setNotice('error', String(err));
    return;
  }
  if (err.error === 'BadVersion') {
    setNotice('error', 'Not saved: ' + err.describe() +
        '. Nothing was overwritten; reload to see the node as it is now.',
    {label: 'Reload', run: () => selectNode(selected.path)});
    return;
  }
  if (err.status === 403 && perm) {
    selected.refused[perm] = err.detail || err.error;
    setNotice('error', 'Refused: ' + err.describe());
    if (action !== 'dialog') renderNode();
    return;
  }
  setNotice('error', 'Failed: ' + err.describe());
}

async function saveData(path, version, text) {
  try {
    const r = await api('PUT', znodeUrl(path), {query: {version}, body: text, contentType: 'application/octet-stream'});
    await selectNode(path);
    setNotice('ok', 'Saved: version ' + r.stat.version + ' at zxid ' + hex64(r.stat.mzxid) + '.');
  } catch (e) {
    refused(e, PERM.WRITE);
  }
}

// ---------------------------------------------------------------- dialogs

let dialogAction = null;

function openDialog(title, body, okLabel, action) {
  $('dialog-title').textContent = title;
  append(clear($('dialog-body')), body);
  $('dialog-error').textContent = '';
  $('dialog-ok').textContent = okLabel;
  $('dialog-ok').disabled = false;
  dialogAction = action;
  $('dialog').showModal();
}

async function dialogSubmit(ev) {
  ev.preventDefault();
  if (!dialogAction) return;
  $('dialog-ok').disabled = true;
  try {
    await dialogAction();
    $('dialog').close();
  } catch (e) {
    $('dialog-error').textContent = e instanceof ApiError ? e.describe() : String(e.message || e);
  } finally {
    $('dialog-ok').disabled = false;
  }
}

const MODES = ['persistent', 'persistent_sequential', 'ephemeral', 'ephemeral_sequential', 'container',
  'ttl', 'ttl_sequential'];

function aclLines(acl) {
  return acl.map((a) => a.scheme + ':' + a.id + ':' + permsText(a.perms).replace(/-/g, '')).join('\n');
}

// "scheme:id:perms" a line, as zkCli writes ACLs (the id may hold colons).
function parseAcl(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const first = line.indexOf(':');
    const last = line.lastIndexOf(':');
    if (first < 0 || last === first) throw new Error('"' + line + '": write scheme:id:perms');
    out.push({scheme: line.slice(0, first), id: line.slice(first + 1, last), perms: permsOfText(line.slice(last + 1))});
  }
  if (!out.length) throw new Error('an ACL needs at least one entry');
  return out;
}

function myAclLine() {
  const digest = (auth.identities || []).find((i) => i.scheme === 'digest');
  return digest ? 'digest:' + digest.id + ':cdrwa' : null;
}

function createDialog(parent) {
  const name = h('input', {id: 'create-name', required: true, spellcheck: 'false', placeholder: 'name'});
  const mode = h('select', {id: 'create-mode'}, MODES.map((m) => h('option', {value: m}, m.replace('_', ' '))));
  const ttl = h('input', {id: 'create-ttl', type: 'number', min: 1, value: 60000});
  const ttlRow = h('label', {hidden: true}, 'TTL (ms) ', ttl);
  mode.addEventListener('change', () => { ttlRow.hidden = !mode.value.startsWith('ttl'); });
  const data = h('textarea', {id: 'create-data', rows: 4, spellcheck: 'false'});
  const acl = h('textarea', {id: 'create-acl', rows: 3, spellcheck: 'false'});
  acl.value = 'world:anyone:cdrwa';
  const mine = myAclLine();
  const presets = h('div', {class: 'row'},
      h('button', {type: 'button', onclick: () => { acl.value = 'world:anyone:cdrwa'; }}, 'Open'),
      mine && h('button', {type: 'button', onclick: () => { acl.value = mine; }}, 'Only me'),
      mine && h('button', {type: 'button', onclick: () => { acl.value = mine + '\nworld:anyone:r'; }}, 'Me; others read'));
  openDialog('New child of ' + parent,
      [h('label', {}, 'Name ', name), h('label', {}, 'Mode ', mode), ttlRow,
        h('label', {class: 'block'}, 'Data', data),
        h('label', {class: 'block'}, 'ACL (scheme:id:perms a line)', acl), presets],
      'Create', async () => {
        if (!name.value || name.value.includes('/')) throw new Error('a name without "/"');
        const body = {data: data.value, mode: mode.value, acl: parseAcl(acl.value)};
        if (mode.value.startsWith('ttl')) body.ttl_ms = Number(ttl.value);
        let r;
        try {
          r = await api('POST', znodeUrl(joinPath(parent, name.value)), {body});
        } catch (e) {
          if (e.status === 403) {
            selected.refused[PERM.CREATE] = e.detail || e.error;
            renderNode();
          }
          throw e;
        }
        await tree.reload(parent);
        await selectNode(r.path);
        await tree.reveal(r.path);
        setNotice('ok', 'Created ' + r.path + '.');
      });
  name.focus();
}

function deleteDialog(path, recursive) {
  const version = selected.node.stat.version;
  const body = [];
  let confirmInput = null;
  if (recursive) {
    confirmInput = h('input', {id: 'delete-confirm', spellcheck: 'false', autocomplete: 'off'});
    body.push(h('p', {}, 'This deletes ' + path + ' and everything under it (' +
        selected.node.stat.numChildren + ' children, and theirs). It cannot be undone.'),
    h('label', {class: 'block'}, 'Type the path to confirm', confirmInput));
  } else {
    body.push(h('p', {}, 'Delete ' + path + ' (only if still at version ' + version + ')?'));
  }
  openDialog(recursive ? 'Delete subtree' : 'Delete node', body, recursive ? 'Delete all' : 'Delete', async () => {
    if (recursive && confirmInput.value !== path) throw new Error('type ' + path + ' exactly to confirm');
    const query = recursive ? {recursive: '', version} : {version};
    let r;
    try {
      r = await api('DELETE', znodeUrl(path), {query});
    } catch (e) {
      if (e.error === 'NotEmpty') {
        throw new ApiError(e.status, {error: e.error, code: e.code, message: 'use "Delete subtree" to delete its children too'});
      }
      if (e.error === 'BadVersion' || e.status === 403) {
        $('dialog').close();
        refused(e, e.status === 403 ? PERM.DELETE : 0);
        return;
      }
      throw e;
    }
    const parent = parentOf(path);
    tree.items.delete(path);
    await tree.reload(parent);
    await selectNode(parent);
    const count = typeof r.deleted === 'number' ? r.deleted : 1;
    setNotice('ok', 'Deleted ' + path + (count > 1 ? ' and ' + (count - 1) + ' nodes under it' : '') + '.');
  });
  if (confirmInput) confirmInput.focus();
}

function aclDialog(path, aversion, acl) {
  const text = h('textarea', {id: 'acl-text', rows: 5, spellcheck: 'false'});
  text.value = aclLines(acl);
  const mine = myAclLine();
  openDialog('ACL of ' + path, [
    h('p', {class: 'muted'}, 'One entry a line: scheme:id:perms, perms from c d r w a. Applied only if the ACL is still at version ' + aversion + '.'),
    text,
    mine && h('div', {class: 'row'}, h('button', {type: 'button', onclick: () => { text.value = mine + '\nworld:anyone:r'; }}, 'Me; others read')),
  ], 'Set ACL', async () => {
    const list = parseAcl(text.value);
    try {
      await api('PUT', znodeUrl(path), {query: {acl: '', version: aversion}, body: {acl: list}});
    } catch (e) {
      if (e.error === 'BadVersion' || e.status === 403) {
        $('dialog').close();
        refused(e, e.status === 403 ? PERM.ADMIN : 0);
        return;
      }
      throw e;
    }
    await selectNode(path);
    setNotice('ok', 'ACL set.');
  });
}

// ---------------------------------------------------------------- live events

const EVENT_ROWS_MAX = 500;
const RECONNECT_MS_MAX = 10000;

const live = {ws: null, path: null, recursive: true, lastZxid: null, stopping: false, retryMs: 500,
  retryTimer: null, reloadTimers: new Map()};

function liveStatus(text, kind) {
  $('live-status').textContent = text;
  $('live-status').className = kind || 'muted';
}

function liveStart(fresh) {
  if (fresh) {
    liveStop();
    live.path = $('live-path').value.trim() || '/';
    live.recursive = $('live-recursive').checked;
    live.lastZxid = null;
    live.retryMs = 500;
  }
  live.stopping = false;
  const params = new URLSearchParams({path: live.path, recursive: live.recursive ? '1' : '0'});
  if (live.lastZxid !== null) params.set('from_zxid', String(live.lastZxid));
  if (auth.token) params.set('token', auth.token);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(scheme + '//' + location.host + '/v1/events?' + params.toString());
  } catch (e) {
    liveStatus('cannot open the event stream: ' + e.message, 'error');
    return;
  }
  live.ws = ws;
  $('live-start').disabled = true;
  $('live-stop').disabled = false;
  liveStatus(live.lastZxid === null ? 'connecting…' : 'reconnecting from zxid ' + hex64(live.lastZxid) + '…');
  ws.onmessage = (m) => {
    let ev;
    try {
      ev = parseJson(m.data);
    } catch (e) {
      return;
    }
    liveEvent(ev);
  };
  ws.onclose = (c) => {
    if (live.ws !== ws) return;
    live.ws = null;
    const why = 'closed' + (c.code ? ' (' + c.code + (c.reason ? ': ' + c.reason : '') + ')' : '');
    if (live.stopping) {
      liveStatus('not watching');
      return;
    }
    // Back again from the last zxid seen, so that nothing is missed.
    liveStatus(why + '; reconnecting in ' + (live.retryMs / 1000).toFixed(1) + ' s', 'error');
    live.retryTimer = setTimeout(() => liveStart(false), live.retryMs);
    live.retryMs = Math.min(live.retryMs * 2, RECONNECT_MS_MAX);
    // A refused upgrade tells the page nothing: an expired login shows on
    // a plain request, which then asks to log in again.
    api('GET', '/v1/cluster').catch(() => {});
  };
}

function liveStop() {
  live.stopping = true;
  clearTimeout(live.retryTimer);
  if (live.ws) {
    const ws = live.ws;
    live.ws = null;
    ws.close(1000, 'stopped');
  }
  $('live-start').disabled = false;
  $('live-stop').disabled = true;
  liveStatus('not watching');
}

function liveEvent(ev) {
  if (ev.zxid !== undefined) live.lastZxid = ev.zxid;
  if (ev.type === 'sync') {
    live.retryMs = 500;
    liveStatus('live on ' + live.path + (live.recursive ? ' (recursive)' : '') + ' from zxid ' + hex64(ev.zxid), 'ok');
    return;
  }
  if (ev.type === 'resync') {
    live.retryMs = 500;
    liveStatus('live from zxid ' + hex64(ev.zxid) + ' — events were missed, the view was reloaded', 'warn');
    addEventRow({type: 'resync', zxid: ev.zxid, path: live.path, stat: null});
    tree.reload('/');
    if (selected.path) selectNode(selected.path, true);
    return;
  }
  addEventRow(ev);
  const changed = tree.flash(ev.path);
  if (ev.stat) tree.describe(ev.path, ev.stat);
  // The tree lists what it has open as it is now.
  // A recursive stream tells of a child's creation, not of its parent's
  // children changing: the parent has one child at least now.
  const parent = ev.type === 'children' ? ev.path : parentOf(ev.path);
  const parentItem = tree.items.get(parent);
  if (ev.type === 'created' && parentItem) parentItem.toggle.classList.remove('leaf');
  if (ev.type !== 'changed' && parentItem && parentItem.expanded) scheduleReload(parent);
  if (!changed && ev.type !== 'children') tree.flash(parent);
  if (ev.path === selected.path && ev.type !== 'children' && selected.node) {
    selected.changedAt = ev.zxid;
    renderNotice();
  }
}

function scheduleReload(path) {
  if (live.reloadTimers.has(path)) return;
  live.reloadTimers.set(path, setTimeout(async () => {
    live.reloadTimers.delete(path);
    await tree.reload(path);
    tree.flash(path);
  }, 300));
}

function addEventRow(ev) {
  const body = $('live-events');
  const stat = ev.stat || {};
  const row = h('tr', {class: 'event ' + ev.type, dataset: {path: ev.path, type: ev.type}},
      h('td', {}, new Date().toISOString().slice(11, 23)),
      h('td', {class: 'mono'}, hex64(ev.zxid)),
      h('td', {}, ev.type),
      h('td', {}, h('button', {type: 'button', class: 'node-name', onclick: async () => {
        showView('tree');
        await tree.reveal(ev.path);
        selectNode(ev.path);
      }}, ev.path)),
      h('td', {}, stat.version === undefined ? '' : String(stat.version)),
      h('td', {}, stat.numChildren === undefined ? '' : String(stat.numChildren)));
  body.insertBefore(row, body.firstChild);
  while (body.childElementCount > EVENT_ROWS_MAX) body.removeChild(body.lastChild);
}

// ---------------------------------------------------------------- sessions

async function loadSessions() {
  let r;
  try {
    r = await api('GET', '/v1/sessions');
  } catch (e) {
    $('sessions-status').textContent = e instanceof ApiError ? e.describe() : String(e);
    $('sessions-status').className = 'error';
    return;
  }
  const body = clear($('sessions-body'));
  const list = (r.sessions || []).slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const s of list) {
    const server = s.here ? 'this server (' + r.server + ')' : s.server === null || s.server === undefined ? '—' : 'server ' + s.server;
    append(body, h('tr', {dataset: {session: s.id}},
        h('td', {class: 'mono'}, s.id),
        h('td', {}, fmtDuration(s.timeout_ms)),
        h('td', {}, server),
        h('td', {}, (s.ephemerals || []).length ? h('ul', {class: 'plain'}, s.ephemerals.map((p) =>
          h('li', {}, h('button', {type: 'button', class: 'node-name', onclick: async () => {
            showView('tree');
            await tree.reveal(p);
            selectNode(p);
          }}, p)))) : h('span', {class: 'muted'}, 'none'),
        s.ephemerals_hidden ? h('span', {class: 'muted'}, '+ ' + s.ephemerals_hidden + ' you may not read') : null)));
  }
  $('sessions-status').className = 'muted';
  const total = r.total === undefined ? list.length : r.total;
  $('sessions-status').textContent = (total > list.length ? list.length + ' of ' : '') +
      total + (total === 1 ? ' session' : ' sessions') +
      ' · server ' + r.server + ' · ' + new Date().toISOString().slice(11, 19) + ' UTC';
}

// ---------------------------------------------------------------- cluster

async function loadCluster() {
  let c;
  try {
    c = await api('GET', '/v1/cluster');
  } catch (e) {
    $('cluster-status').textContent = e instanceof ApiError ? e.describe() : String(e);
    $('cluster-status').className = 'error';
    return;
  }
  showServerInfo(c);
  $('cluster-status').className = 'muted';
  $('cluster-status').textContent = 'as server ' + c.node_id + ' sees it · ' + new Date().toISOString().slice(11, 19) + ' UTC';
  const summary = clear($('cluster-summary'));
  const facts = [
    ['this server', c.node_id], ['its role', c.role], ['leader', c.leader_id ? c.leader_id : 'none known'],
    ['term', c.term], ['commit index', c.commit_index], ['applied index', c.applied_index],
    ['applied behind commit', c.commit_index - c.applied_index],
    ['read-only', c.read_only ? c.read_only : 'no'],
  ];
  for (const [k, v] of facts) append(summary, h('div', {dataset: {fact: k}}, h('dt', {}, k), h('dd', {}, String(v))));
  const body = clear($('cluster-members'));
  for (const m of c.members || []) {
    const link = m.self ? 'this server' : m.connected === undefined ? '—' : m.connected ? 'up' : 'down';
    append(body, h('tr', {class: 'member ' + m.role + (m.self ? ' self' : ''), dataset: {id: String(m.id), role: m.role}},
        h('td', {}, String(m.id)),
        h('td', {}, h('span', {class: 'role ' + m.role}, m.role)),
        h('td', {}, m.member_role + (m.voter ? '' : ' (non-voting)')),
        h('td', {class: 'mono'}, m.client_address || '—'),
        h('td', {class: 'mono'}, m.peer_address || '—'),
        h('td', {}, m.match_index === null || m.match_index === undefined ? '—' : String(m.match_index)),
        h('td', {class: m.lag > 0 ? 'warn' : ''}, m.lag === null || m.lag === undefined ? '—' : String(m.lag)),
        h('td', {class: link === 'down' ? 'error' : ''}, link),
        h('td', {}, m.rtt_us === undefined || m.rtt_us < 0 ? '—' : (m.rtt_us / 1000).toFixed(2) + ' ms')));
  }
  try {
    const res = await fetch('/readyz', {cache: 'no-store', credentials: 'omit', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)});
    const text = (await res.text()).trim();
    $('health').textContent = (res.ok ? 'ready' : 'not ready') + (text && text !== 'ready' ? ': ' + text : '');
    $('health').className = res.ok ? 'ok' : 'error';
  } catch (e) {
    $('health').textContent = 'no answer from /readyz';
    $('health').className = 'error';
  }
}

const PLOTS = [
  {title: 'Requests', unit: '/s', series: [['requests_per_s', 'requests']]},
  {title: 'Request latency', unit: 'µs', series: [['latency_p50_us', 'p50'], ['latency_p99_us', 'p99']]},
  {title: 'Log fsync latency', unit: 'µs', series: [['fsync_p50_us', 'p50'], ['fsync_p99_us', 'p99']]},
  {title: 'Log index', unit: '', series: [['commit_index', 'commit'], ['applied_index', 'applied']]},
  {title: 'Client connections', unit: '', series: [['connections', 'open']]},
];

async function loadHistory() {
  const box = $('plots');
  let r;
  try {
    r = await api('GET', '/v1/metrics/history');
  } catch (e) {
    append(clear(box), h('p', {class: 'error'}, 'No metrics history: ' + (e instanceof ApiError ? e.describe() : String(e))));
    return;
  }
  clear(box);
  const samples = r.samples || [];
  for (const p of PLOTS) append(box, plot(p, samples, r.interval_ms || 1000));
}

// A small line plot of the samples' fields, drawn as SVG.
function plot(spec, samples, intervalMs) {
  const W = 320, H = 110, L = 44, R = 6, T = 8, B = 18;
  const values = spec.series.map(([field]) => samples.map((s) => Number(s[field])).filter((v) => Number.isFinite(v)));
  const all = values.flat();
  let lo = 0;
  let hi = all.length ? Math.max(...all) : 1;
  if (spec.unit === '' && all.length) lo = Math.min(...all);
  if (hi <= lo) hi = lo + 1;
  const t0 = samples.length ? samples[0].t : 0;
  const t1 = samples.length ? samples[samples.length - 1].t : 1;
  const span = Math.max(t1 - t0, intervalMs);
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const g = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'plot', role: 'img', 'aria-label': spec.title});
  g.append(svg('line', {x1: L, y1: T, x2: L, y2: H - B, class: 'axis'}));
  g.append(svg('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis'}));
  g.append(svg('text', {x: L - 4, y: T + 8, class: 'tick', 'text-anchor': 'end'}, fmtNumber(hi)));
  g.append(svg('text', {x: L - 4, y: H - B, class: 'tick', 'text-anchor': 'end'}, fmtNumber(lo)));
  g.append(svg('text', {x: L, y: H - 4, class: 'tick'}, samples.length ? '−' + fmtDuration(t1 - t0) : 'no samples yet'));
  g.append(svg('text', {x: W - R, y: H - 4, class: 'tick', 'text-anchor': 'end'}, 'now'));
  spec.series.forEach(([field], i) => {
    const pts = samples.filter((s) => Number.isFinite(Number(s[field])))
        .map((s) => x(s.t).toFixed(1) + ',' + y(Number(s[field])).toFixed(1)).join(' ');
    if (pts) g.append(svg('polyline', {points: pts, class: 'series s' + i}));
  });
  const last = samples.length ? samples[samples.length - 1] : {};
  const legend = h('div', {class: 'legend'}, spec.series.map(([field, name], i) =>
    h('span', {class: 's' + i}, name + ' ' + fmtNumber(last[field] === undefined ? NaN : Number(last[field])) + (spec.unit ? ' ' + spec.unit : ''))));
  return h('figure', {class: 'plot-box', dataset: {plot: spec.title}}, h('figcaption', {}, spec.title), g, legend);
}

// ---------------------------------------------------------------- start

function wire() {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const user = $('login-user').value;
    const password = $('login-password').value;
    if (!user) {
      $('login-error').textContent = 'Give a user, or continue anonymously.';
      return;
    }
    try {
      await login(user, password);
    } catch (e) {
      $('login-error').textContent = e instanceof ApiError ? e.describe() : String(e);
      return;
    }
    await enterApp();
  });
  $('login-anonymous').addEventListener('click', async () => {
    try {
      await login('', '');
    } catch (e) {
      $('login-error').textContent = e instanceof ApiError ? e.describe() : String(e);
      return;
    }
    await enterApp();
  });
  $('logout').addEventListener('click', logout);
  $('banner-close').addEventListener('click', () => { $('banner').hidden = true; });
  for (const t of document.querySelectorAll('#tabs .tab')) t.addEventListener('click', () => showView(t.dataset.view));
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    runSearch(0);
  });
  $('search-clear').addEventListener('click', endSearch);
  $('live-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    liveStart(true);
  });
  $('live-stop').addEventListener('click', liveStop);
  $('live-clear').addEventListener('click', () => clear($('live-events')));
  $('sessions-refresh').addEventListener('click', loadSessions);
  $('dialog-form').addEventListener('submit', dialogSubmit);
  $('dialog-cancel').addEventListener('click', () => $('dialog').close());
  window.addEventListener('unhandledrejection', (ev) => showError(ev.reason));
}

async function start() {
  wire();
  if (!auth.token) {
    showLogin('');
    return;
  }
  // A token from earlier in this tab: still good?
  try {
    await api('GET', '/v1/cluster');
  } catch (e) {
    if (e.status === 401) return;  // loginExpired showed the prompt
  }
  await enterApp();
}

document.addEventListener('DOMContentLoaded', start);
