// errand's dashboard: the tasks a token may see, filtered and paged, with
// their details; cancel and retry where the token may; for operators, the
// counts, the throughput of the last hour and the live workers. Plain DOM,
// no build step; it talks to errand through errand's own JavaScript client.
import { createClient, ProblemError } from '/ui/client.js';

const TOKEN_KEY = 'errand.token';
const REFRESH_MS = 5000;
const PAGE = 50;
const FILTER_KEYS = ['status', 'kind', 'queue', 'owner'];
const ENDED = ['completed', 'failed', 'cancelled', 'dropped'];
const RETRYABLE = ['failed', 'cancelled', 'dropped'];
const STATUSES = ['waiting', 'queued', 'running', ...ENDED];

const $ = (selector) => document.querySelector(selector);

const view = {
  client: null,
  me: null,
  filter: {},
  /** How many rows are shown: a refresh reloads them all. */
  shown: PAGE,
  next: null,
  detail: null,
  timer: null,
  busy: false,
};

// ---- small DOM helpers ----

/** An element with attributes (`text` sets its text) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const short = (token) => token.slice(0, 8);

// ---- time ----

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const exact = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });

/** "3 min ago", with the exact time on hover. */
function timeAgo(iso) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const at = new Date(iso);
  return el('time', { datetime: iso, title: exact.format(at), text: ago(at) });
}

function ago(at) {
  const seconds = Math.round((at.getTime() - Date.now()) / 1000);
  const steps = [
    [60, 'second'],
    [3600, 'minute', 60],
    [86400, 'hour', 3600],
    [Infinity, 'day', 86400],
  ];
  for (const [limit, unit, size = 1] of steps) {
    if (Math.abs(seconds) < limit) return relative.format(Math.round(seconds / size), unit);
  }
  return '';
}

// ---- sign-in ----

function boot() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has('token')) {
    sessionStorage.setItem(TOKEN_KEY, hash.get('token'));
    hash.delete('token');
    const rest = hash.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  }
  $('#sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    signIn($('#token-input').value.trim());
  });
  $('#sign-out').addEventListener('click', signOut);
  $('#filters').addEventListener('submit', (event) => {
    event.preventDefault();
    applyFilters(readFilterForm());
  });
  $('#clear-filters').addEventListener('click', () => applyFilters({}));
  $('#older').addEventListener('click', older);
  $('#cancel-matching').addEventListener('click', cancelMatching);
  $('#detail-close').addEventListener('click', () => openDetail(null));
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && view.detail && !$('#confirm').open) openDetail(null);
  });
  document.addEventListener('visibilitychange', () => document.hidden || refresh());
  window.addEventListener('popstate', () => {
    readUrl();
    refresh();
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else showSignIn();
}

function showSignIn(error) {
  $('#board').hidden = true;
  $('#who').hidden = true;
  $('#detail').hidden = true;
  $('#sign-in').hidden = false;
  const message = $('#sign-in-error');
  message.hidden = !error;
  message.textContent = error ?? '';
  $('#token-input').focus();
}

async function signIn(token) {
  if (!token) return showSignIn('Paste a token first.');
  const client = createClient({ baseUrl: location.origin, token });
  try {
    view.me = await client.me();
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    const refused = error instanceof ProblemError && error.status === 401;
    return showSignIn(refused ? 'errand refused that token.' : `Could not reach errand: ${error.message}`);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  view.client = client;
  $('#token-input').value = '';
  $('#sign-in').hidden = true;
  $('#who').hidden = false;
  const { name, role, product } = view.me;
  $('#who-name').textContent = `${name} · ${role}${product ? ` of ${product}` : ''}`;
  $('#board').hidden = false;
  $('#overview').hidden = !view.me.may.stats;
  $('#cancel-matching').hidden = !view.me.may.cancel_matching;
  readUrl();
  await refresh();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(view.timer);
  view.client = null;
  view.me = null;
  $('#tasks tbody').replaceChildren();
  showSignIn();
}

// ---- the URL holds the filters and the open task ----

function readUrl() {
  const query = new URLSearchParams(location.search);
  view.filter = {};
  for (const key of FILTER_KEYS) {
    const value = query.get(key);
    if (value) view.filter[key] = value;
  }
  view.detail = query.get('task');
  const form = $('#filters');
  for (const key of FILTER_KEYS) form.elements[key].value = view.filter[key] ?? '';
  view.shown = PAGE;
}

function writeUrl() {
  const query = new URLSearchParams(view.filter);
  if (view.detail) query.set('task', view.detail);
  const text = query.toString();
  history.pushState(null, '', `${location.pathname}${text ? `?${text}` : ''}`);
}

function readFilterForm() {
  const form = $('#filters');
  const filter = {};
  for (const key of FILTER_KEYS) {
    const value = form.elements[key].value.trim();
    if (value) filter[key] = value;
  }
  return filter;
}

function applyFilters(filter) {
  view.filter = filter;
  view.shown = PAGE;
  const form = $('#filters');
  for (const key of FILTER_KEYS) form.elements[key].value = filter[key] ?? '';
  $('#tasks tbody').replaceChildren();
  writeUrl();
  refresh();
}

// ---- loading ----

async function refresh() {
  if (!view.client || view.busy) return;
  view.busy = true;
  clearTimeout(view.timer);
  try {
    const work = [loadTasks()];
    if (view.me.may.stats) work.push(loadStats());
    if (view.me.may.workers) work.push(loadWorkers());
    if (view.detail) work.push(loadDetail());
    await Promise.all(work);
    showLoadError(null);
    $('#refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof ProblemError && error.status === 401) return signOut();
    showLoadError(error);
  } finally {
    view.busy = false;
    if (view.client) view.timer = setTimeout(refresh, REFRESH_MS);
  }
}

function showLoadError(error) {
  const box = $('#load-error');
  box.hidden = !error;
  box.textContent = error ? `Could not load: ${error.message}` : '';
}

async function loadTasks() {
  const limit = Math.min(Math.max(view.shown, PAGE), 1000);
  const page = await view.client.list({ ...view.filter, limit });
  renderRows(page.tasks, { replace: true });
  view.next = page.next_cursor;
  $('#older').hidden = !view.next;
  $('#empty').hidden = page.tasks.length > 0;
}

async function older() {
  if (!view.next) return;
  const page = await view.client.list({ ...view.filter, limit: PAGE, cursor: view.next });
  renderRows(page.tasks, { replace: false });
  view.shown += page.tasks.length;
  view.next = page.next_cursor;
  $('#older').hidden = !view.next;
}

// ---- the task table ----

/** Updates the rows in place (so scrolling and focus stay), in the server's order. */
function renderRows(tasks, { replace }) {
  const body = $('#tasks tbody');
  const rows = new Map([...body.children].map((row) => [row.dataset.token, row]));
  const wanted = [];
  for (const task of tasks) {
    let row = rows.get(task.token);
    const version = rowVersion(task);
    if (!row) {
      row = el('tr', { 'data-token': task.token });
    }
    if (row.dataset.version !== version) {
      row.dataset.version = version;
      row.replaceChildren(...rowCells(task));
    }
    wanted.push(row);
  }
  if (replace) {
    const keep = new Set(wanted);
    for (const row of rows.values()) if (!keep.has(row)) row.remove();
    let at = body.firstElementChild;
    for (const row of wanted) {
      if (row !== at) body.insertBefore(row, at);
      else at = at.nextElementSibling;
    }
  } else {
    body.append(...wanted.filter((row) => !row.isConnected));
  }
}

/** What a row shows, so an unchanged task is not redrawn. */
function rowVersion(task) {
  return JSON.stringify([task.status, task.progress, task.cancel_requested, ago(new Date(task.created_at))]);
}

function rowCells(task) {
  return [
    el('td', { 'data-label': 'Status' }, statusBadge(task)),
    el('td', { 'data-label': 'Kind' },
      el('button', {
        type: 'button',
        class: 'link',
        title: `Details of ${task.token}`,
        onclick: () => openDetail(task.token),
      }, task.kind, el('span', { class: 'token', text: ` ${short(task.token)}` }))),
    el('td', { class: 'wide', 'data-label': 'Queue', text: task.queue }),
    el('td', { class: 'wide', 'data-label': 'Owner', text: task.owner }),
    el('td', { 'data-label': 'Progress' }, progressBar(task)),
    el('td', { 'data-label': 'Created' }, timeAgo(task.created_at)),
    el('td', { class: 'actions' }, actionButtons(task)),
  ];
}

function statusBadge(task) {
  const badge = el('span', { class: `status s-${task.status}`, text: task.status });
  if (task.cancel_requested && !task.done) {
    return [badge, el('span', { class: 'muted small', text: ' cancelling' })];
  }
  return badge;
}

function progressBar(task) {
  const fraction = Math.max(0, Math.min(1, task.progress?.fraction ?? 0));
  const percent = Math.round(fraction * 100);
  const fill = el('span', { class: `fill s-${task.status}` });
  fill.style.width = `${percent}%`;
  const label = task.progress?.message ?? `${percent}%`;
  return el('div', { class: 'progress' },
    el('div', {
      class: 'track',
      role: 'progressbar',
      'aria-valuemin': '0',
      'aria-valuemax': '100',
      'aria-valuenow': String(percent),
      'aria-label': `${task.kind} ${short(task.token)} progress`,
    }, fill),
    el('span', { class: 'progress-label', title: label, text: label }));
}

function mayCancel(task) {
  if (task.done || !view.me) return false;
  const reach = view.me.may.cancel;
  return reach === 'seen' || (reach === 'own' && task.owner === view.me.name);
}

function mayRetry(task) {
  return Boolean(view.me?.may.retry) && RETRYABLE.includes(task.status);
}

function actionButtons(task) {
  const buttons = [];
  if (mayCancel(task) && !task.cancel_requested) {
    buttons.push(el('button', { type: 'button', class: 'danger small', onclick: () => cancelTask(task) }, 'Cancel'));
  }
  if (mayRetry(task)) {
    buttons.push(el('button', { type: 'button', class: 'small', onclick: () => retryTask(task) }, 'Retry'));
  }
  return buttons;
}

// ---- actions, each confirmed first ----

function confirmAction(title, text) {
  const dialog = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
  });
}

async function act(what) {
  try {
    await what();
  } catch (error) {
    showLoadError(error);
  }
  await refresh();
}

async function cancelTask(task) {
  const running = task.status === 'running';
  const ok = await confirmAction(
    `Cancel ${task.kind} ${short(task.token)}?`,
    running
      ? 'It is running: its worker will be asked to stop it.'
      : `It is ${task.status}: it will not run.`,
  );
  if (ok) await act(() => view.client.cancel(task.token));
}

async function retryTask(task) {
  const ok = await confirmAction(
    `Retry ${task.kind} ${short(task.token)}?`,
    `It ${task.status === 'dropped' ? 'was dropped' : `is ${task.status}`}: it will be queued to run once more.`,
  );
  if (ok) await act(() => view.client.retry(task.token));
}

async function cancelMatching() {
  let stats;
  try {
    stats = await view.client.stats(view.filter);
  } catch (error) {
    return showLoadError(error);
  }
  const counts = ['queued', 'waiting', 'running'].map((s) => [s, stats.by_status[s] ?? 0]);
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  const filtered = Object.keys(view.filter).length > 0;
  const what = filtered ? 'matching the filters' : 'of every kind, in every queue';
  const detail = counts.filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ');
  const ok = await confirmAction(
    `Cancel ${total} ${total === 1 ? 'task' : 'tasks'}?`,
    total
      ? `Every task ${what} that has not ended: ${detail}. Running ones are asked to stop.`
      : `No task ${what} is waiting, queued or running.`,
  );
  if (ok && total) await act(() => view.client.cancelMatching({ ...view.filter, all: !filtered }));
}

// ---- the detail view ----

function openDetail(token) {
  view.detail = token;
  writeUrl();
  const panel = $('#detail');
  if (!token) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  $('#detail-body').replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  loadDetail().then(() => panel.focus()).catch(showLoadError);
}

async function loadDetail() {
  const token = view.detail;
  let task;
  try {
    task = await view.client.get(token);
  } catch (error) {
    if (error instanceof ProblemError && error.status === 404) {
      $('#detail-body').replaceChildren(el('p', { class: 'muted', text: 'No such task (it may have been deleted).' }));
      return;
    }
    throw error;
  }
  if (view.detail !== token) return;
  $('#detail').hidden = false;
  $('#detail-title').textContent = `${task.kind} ${short(task.token)}`;
  const body = $('#detail-body');
  const version = JSON.stringify(task);
  if (body.dataset.version === version) return;
  body.dataset.version = version;
  body.replaceChildren(...detailParts(task));
}

function detailParts(task) {
  const facts = [
    ['Status', statusBadge(task)],
    ['Token', el('code', { text: task.token })],
    ['Queue', `${task.queue} · priority ${task.priority}`],
    ['Owner', `${task.owner}${task.product ? ` · ${task.product}` : ''}`],
    ['Attempt', `${task.attempt} of ${task.max_attempts}`],
    ['Progress', progressBar(task)],
  ];
  const parts = [
    el('div', { class: 'detail-actions' }, actionButtons(task)),
    el('dl', { class: 'facts' }, facts.flatMap(([name, value]) => [el('dt', { text: name }), el('dd', {}, value)])),
    el('h3', { text: 'Timeline' }),
    el('ol', { class: 'timeline' }, timeline(task).map(([at, what, note]) =>
      el('li', {}, timeAgo(at), ' ', el('span', { text: what }), note ? el('div', { class: 'note', text: note }) : null))),
    el('h3', { text: 'Payload' }),
    el('pre', { class: 'json', text: JSON.stringify(task.payload, null, 2) }),
  ];
  if (task.result !== null && task.result !== undefined) {
    parts.push(el('h3', { text: 'Result' }), el('pre', { class: 'json', text: JSON.stringify(task.result, null, 2) }));
  }
  if (task.errors.length) {
    parts.push(el('h3', { text: 'Errors' }), el('ol', { class: 'errors' }, task.errors.map((e) =>
      el('li', {}, el('strong', { text: `Attempt ${e.attempt}` }), ' ', timeAgo(e.at), el('pre', { text: e.message })))));
  }
  if (task.depends_on.length) {
    parts.push(el('h3', { text: 'Depends on' }), el('ul', { class: 'plain' }, task.depends_on.map((parent) =>
      el('li', {}, el('button', { type: 'button', class: 'link', onclick: () => openDetail(parent) }, el('code', { text: parent }))))));
  }
  const files = [...(task.files?.inputs ?? []).map((f) => ['input', f]), ...(task.files?.outputs ?? []).map((f) => ['output', f])];
  if (files.length) {
    parts.push(el('h3', { text: 'Files' }), el('ul', { class: 'plain files' }, files.map(([side, f]) =>
      el('li', {},
        el('button', { type: 'button', class: 'link', onclick: () => download(f) }, f.name),
        el('span', { class: 'muted', text: ` ${side} · ${size(f.size)} · ${f.content_type}` }),
        el('div', { class: 'note' }, el('code', { text: `sha256 ${f.sha256}` }))))));
  }
  return parts;
}

/** When each thing happened: created, each attempt's start and end, the end. */
function timeline(task) {
  const events = [[task.created_at, 'created']];
  if (new Date(task.run_at) > new Date(task.created_at) && !task.started_at) {
    events.push([task.run_at, 'due']);
  }
  for (const e of task.errors) {
    if (e.started_at) events.push([e.started_at, `attempt ${e.attempt} started`]);
    events.push([e.at, `attempt ${e.attempt} ended`, e.message]);
  }
  const recorded = task.errors.some((e) => e.attempt === task.attempt);
  if (task.started_at && !recorded) events.push([task.started_at, `attempt ${task.attempt} started`]);
  if (task.finished_at) events.push([task.finished_at, task.status]);
  return events.sort((a, b) => new Date(a[0]) - new Date(b[0]));
}

function size(bytes) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let n = bytes;
  let unit = 0;
  while (n >= 1000 && unit < units.length - 1) {
    n /= 1000;
    unit++;
  }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** Downloads a task's file with the token (a plain link could not send it). */
async function download(file) {
  try {
    const response = await fetch(file.href, {
      headers: { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
    });
    if (!response.ok) throw new Error(`errand answered ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    el('a', { href: url, download: file.name }).click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    showLoadError(error);
  }
}

// ---- operators: counts, throughput, workers ----

const COLOURS = { completed: 'c-completed', failed: 'c-failed', cancelled: 'c-cancelled', dropped: 'c-dropped' };

async function loadStats() {
  const stats = await view.client.stats({ interval: '1m' });
  $('#stats-status').replaceChildren(...STATUSES.map((status) =>
    el('li', { class: `chip s-${status}` },
      el('button', {
        type: 'button',
        class: 'chip-button',
        title: `Show ${status} tasks`,
        onclick: () => applyFilters({ ...view.filter, status }),
      }, el('span', { class: 'count', text: String(stats.by_status[status] ?? 0) }), ` ${status}`))));
  const queues = Object.entries(stats.by_queue);
  $('#stats-queues tbody').replaceChildren(...(queues.length ? queues : [['default', {}]]).map(([queue, counts]) =>
    el('tr', {},
      el('th', { scope: 'row', text: queue }),
      el('td', { text: String(counts.queued ?? 0) }),
      el('td', { text: String(counts.running ?? 0) }),
      el('td', { text: String(counts.waiting ?? 0) }))));
  drawChart(stats.throughput);
}

function drawChart(throughput) {
  const width = 600;
  const height = 140;
  const intervals = throughput?.intervals ?? [];
  const totals = intervals.map((i) => ENDED.reduce((sum, s) => sum + (i.ended[s] ?? 0), 0));
  const top = Math.max(1, ...totals);
  const slot = width / Math.max(1, intervals.length);
  const bars = [];
  intervals.forEach((interval, index) => {
    let y = height;
    const parts = [];
    for (const status of ENDED) {
      const n = interval.ended[status] ?? 0;
      if (!n) continue;
      const h = (n / top) * (height - 4);
      y -= h;
      parts.push(`${n} ${status}`);
      bars.push(svg('rect', {
        x: (index * slot + 1).toFixed(1),
        y: y.toFixed(1),
        width: Math.max(1, slot - 2).toFixed(1),
        height: h.toFixed(1),
        class: COLOURS[status],
        'data-status': status,
        'data-count': String(n),
      }));
    }
    const start = new Date(interval.start);
    const label = `${start.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}: ${parts.join(', ') || 'none'}`;
    // A full-height target per minute, so hovering anywhere on it tells.
    bars.push(svg('rect', { x: (index * slot).toFixed(1), y: '0', width: slot.toFixed(1), height: String(height), class: 'hover' },
      svg('title', {}, label)));
  });
  // Stretched to the card's width: the labels are text beside it, not in it.
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', class: 'bars' },
    svg('line', { x1: '0', y1: String(height), x2: String(width), y2: String(height), class: 'axis' }),
    ...bars);
  $('#chart').replaceChildren(
    el('div', { class: 'tick', text: `${top} per minute` }),
    chart,
    el('div', { class: 'ticks' }, el('span', { text: 'an hour ago' }), el('span', { text: 'now' })));
  const sums = Object.fromEntries(ENDED.map((s) => [s, intervals.reduce((sum, i) => sum + (i.ended[s] ?? 0), 0)]));
  $('#chart').setAttribute('aria-label', `Tasks finished in the last hour: ${ENDED.map((s) => `${sums[s]} ${s}`).join(', ')}`);
  $('#chart-legend').replaceChildren(...ENDED.map((s) =>
    el('li', {}, el('span', { class: `swatch ${COLOURS[s]}` }), ` ${s} ${sums[s]}`)));
}

async function loadWorkers() {
  const { workers } = await view.client.workers();
  const list = $('#workers');
  if (!workers.length) {
    list.replaceChildren(el('li', { class: 'muted', text: 'No live workers.' }));
    return;
  }
  list.replaceChildren(...workers.map((w) =>
    el('li', { 'data-worker': w.id },
      el('div', {}, el('strong', { text: w.host }), el('span', { class: 'muted', text: ` pid ${w.pid}` })),
      el('div', { class: 'small' },
        `${w.running} of ${w.concurrency} running · `,
        Object.entries(w.queues).map(([q, n]) => `${q}=${n}`).join(', ')),
      el('div', { class: 'small muted' }, 'heartbeat ', timeAgo(w.heartbeat_at)))));
}

boot();
