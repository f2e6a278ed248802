// errand's dashboard: the tasks a token may see, filtered and paged, with
// their details; cancel and retry where the token may; for operators, the
// counts, the throughput of the last hour, the live workers, the queues
// (paused and resumed by superusers) and the schedules (`?view=schedules`).
// Plain DOM, no build step; it talks to errand through errand's own
// JavaScript client.
import { createClient, ProblemError } from '/ui/client.js';

const TOKEN_KEY = 'errand.token';
const REFRESH_MS = 5000;
const PAGE = 50;
const FILTER_KEYS = ['status', 'kind', 'queue', 'owner', 'schedule'];
const ENDED = ['completed', 'failed', 'cancelled', 'dropped', 'expired'];
const RETRYABLE = ['failed', 'cancelled', 'dropped', 'expired'];
const STATUSES = ['waiting', 'queued', 'running', ...ENDED];

const $ = (selector) => document.querySelector(selector);

const view = {
  client: null,
  me: null,
  /** `tasks` or `schedules`: which view the board shows. */
  page: 'tasks',
  filter: {},
  /** How many rows are shown: a refresh reloads them all. */
  shown: PAGE,
  next: null,
  detail: null,
  timer: null,
  busy: false,
  /** A refresh was asked for while one ran: another follows at once. */
  again: false,
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
  for (const child of children.flat(Infinity)) {
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

// A token is a UUIDv7: its first characters are its creation time, the
// same for every task of a minute; its last ones are random.
const short = (token) => token.slice(-8);

/** Sets `row`'s cells from `cells` ([version, render] each), redrawing only those whose version changed. */
function syncCells(row, cells) {
  cells.forEach(([version, render], index) => {
    const old = row.children[index];
    if (old && old.dataset.version === version) return;
    const cell = render();
    cell.dataset.version = version;
    if (!old) return row.append(cell);
    // Focus in a redrawn cell moves to its counterpart (a Pause that became Resume).
    const focused = old.contains(document.activeElement);
    old.replaceWith(cell);
    if (focused) cell.querySelector('button, a')?.focus();
  });
}

/** Keeps `body`'s rows in step with `items`, in order: one row each, keyed by its `attr`. */
function syncRows(body, items, attr, key, cells) {
  const rows = new Map([...body.children].map((row) => [row.getAttribute(attr), row]));
  const wanted = items.map((item) => {
    const row = rows.get(key(item)) ?? el('tr', { [attr]: key(item) });
    syncCells(row, cells(item));
    return row;
  });
  const keep = new Set(wanted);
  for (const row of rows.values()) if (!keep.has(row)) row.remove();
  let at = body.firstElementChild;
  for (const row of wanted) {
    if (row !== at) body.insertBefore(row, at);
    else at = at.nextElementSibling;
  }
}

// ---- time ----

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const exact = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });

/** "3 min ago", with the exact time on hover. */
function timeAgo(iso) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const at = new Date(iso);
  return el('time', { datetime: iso, title: exact.format(at), text: ago(at) });
}

/** A wait in seconds, for people: "42 s", "3 min", "2 h 5 min", "3 d 4 h". */
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  if (s < 86400) return m ? `${h} h ${m} min` : `${h} h`;
  const [d, hh] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600)];
  return hh ? `${d} d ${hh} h` : `${d} d`;
}

/** A moment as its exact time, with how far off it is on hover. */
function timeAt(iso) {
  const at = new Date(iso);
  return el('time', { datetime: iso, title: ago(at), text: exact.format(at) });
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
  $('#retry-matching').addEventListener('click', retryMatching);
  for (const link of document.querySelectorAll('#views a')) {
    link.addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      goTo(link.dataset.view);
    });
  }
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
  $('#views').hidden = true;
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
  const { may } = view.me;
  $('#overview').hidden = !may.stats;
  // The queues panel has the counts by queue, and more.
  $('#stats-queues').hidden = Boolean(may.queues);
  $('#cancel-matching').hidden = !may.cancel_matching;
  $('#retry-matching').hidden = !may.retry_matching;
  $('#views').hidden = !may.schedules;
  readUrl();
  await refresh();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(view.timer);
  view.client = null;
  view.me = null;
  for (const body of document.querySelectorAll('#tasks tbody, #queues tbody, #schedules tbody')) body.replaceChildren();
  showSignIn();
}

// ---- the URL holds the view, the filters and the open task ----

function readUrl() {
  const query = new URLSearchParams(location.search);
  view.page = query.get('view') === 'schedules' && view.me?.may.schedules ? 'schedules' : 'tasks';
  view.filter = {};
  for (const key of FILTER_KEYS) {
    const value = query.get(key);
    if (value) view.filter[key] = value;
  }
  view.detail = query.get('task');
  const form = $('#filters');
  for (const key of FILTER_KEYS) form.elements[key].value = view.filter[key] ?? '';
  view.shown = PAGE;
  showPage();
}

function writeUrl() {
  // The schedules view has no filters; they are kept for going back.
  const query = new URLSearchParams(view.page === 'schedules' ? { view: 'schedules' } : view.filter);
  if (view.detail) query.set('task', view.detail);
  const text = query.toString();
  history.pushState(null, '', `${location.pathname}${text ? `?${text}` : ''}`);
}

/** Shows the board's view `page` (`tasks` or `schedules`). */
function showPage() {
  const schedules = view.page === 'schedules';
  $('#tasks-view').hidden = schedules;
  $('#schedules-view').hidden = !schedules;
  $('#queues-panel').hidden = schedules || !view.me?.may.queues;
  for (const link of document.querySelectorAll('#views a')) {
    if (link.dataset.view === view.page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = schedules ? 'Schedules · errand' : 'errand';
}

/** Goes to a view of the board, keeping the open task. */
function goTo(page) {
  if (page === view.page) return;
  view.page = page;
  writeUrl();
  showPage();
  refresh();
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
  view.page = 'tasks';
  showPage();
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
  if (!view.client) return;
  if (view.busy) {
    view.again = true;
    return;
  }
  view.busy = true;
  view.again = false;
  clearTimeout(view.timer);
  try {
    const { may } = view.me;
    const work = [];
    if (view.page === 'schedules') {
      work.push(loadSchedules());
    } else {
      work.push(loadTasks());
      if (may.stats) work.push(loadStats());
      if (may.workers) work.push(loadWorkers());
      if (may.queues) work.push(loadQueues());
    }
    if (view.detail) work.push(loadDetail());
    await Promise.all(work);
    showLoadError(null);
    const updated = `updated ${new Date().toLocaleTimeString()}`;
    $(view.page === 'schedules' ? '#schedules-refreshed' : '#refreshed').textContent = updated;
  } catch (error) {
    if (error instanceof ProblemError && error.status === 401) return signOut();
    showLoadError(error);
  } finally {
    view.busy = false;
    if (view.client) view.timer = setTimeout(refresh, view.again ? 0 : REFRESH_MS);
  }
}

function showLoadError(error) {
  for (const id of ['#load-error', '#schedules-error']) {
    const box = $(id);
    box.hidden = !error;
    box.textContent = error ? `Could not load: ${error.message}` : '';
  }
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

/** Asks first; resolves true if confirmed. `danger: false` for an action that undoes nothing. */
function confirmAction(title, text, { danger = true } = {}) {
  const dialog = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-yes').className = danger ? 'danger' : '';
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

const ENDED_HOW = {
  dropped: 'was dropped',
  expired: 'expired (it was not started by its start deadline)',
};

async function retryTask(task) {
  const ok = await confirmAction(
    `Retry ${task.kind} ${short(task.token)}?`,
    `It ${ENDED_HOW[task.status] ?? `is ${task.status}`}: it will be queued to run once more.`,
    { danger: false },
  );
  if (ok) await act(() => view.client.retry(task.token));
}

/**
 * What a bulk action on the filtered tasks would touch: how many are in
 * each of `statuses` (from the stats), said for a confirmation; null if
 * the stats could not be read.
 */
async function matching(statuses) {
  let stats;
  try {
    stats = await view.client.stats(view.filter);
  } catch (error) {
    showLoadError(error);
    return null;
  }
  const counts = statuses.map((s) => [s, stats.by_status[s] ?? 0]);
  const filtered = Object.keys(view.filter).length > 0;
  return {
    total: counts.reduce((sum, [, n]) => sum + n, 0),
    detail: counts.filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', '),
    what: filtered ? 'matching the filters' : 'of every kind, in every queue',
    body: { ...view.filter, all: !filtered },
  };
}

const taskCount = (n) => `${n} ${n === 1 ? 'task' : 'tasks'}`;

async function cancelMatching() {
  const m = await matching(['queued', 'waiting', 'running']);
  if (!m) return;
  const ok = await confirmAction(
    `Cancel ${taskCount(m.total)}?`,
    m.total
      ? `Every task ${m.what} that has not ended: ${m.detail}. Running ones are asked to stop.`
      : `No task ${m.what} is waiting, queued or running.`,
  );
  if (ok && m.total) await act(() => view.client.cancelMatching(m.body));
}

async function retryMatching() {
  const m = await matching(RETRYABLE);
  if (!m) return;
  const ok = await confirmAction(
    `Retry ${taskCount(m.total)}?`,
    m.total
      ? `Every task ${m.what} that ended without a result: ${m.detail}. Each is queued to run once more, keeping its history.`
      : `No task ${m.what} has failed, been cancelled, dropped or expired.`,
    { danger: false },
  );
  if (ok && m.total) await act(() => view.client.retryMatching(m.body));
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
  if (task.snoozes > 0) {
    facts.push(['Snoozes', `${task.snoozes} · queued again without using an attempt`]);
  }
  if (task.start_by) {
    facts.push(['Start by', [timeAt(task.start_by), el('span', { class: 'muted', text: ` · ${ago(new Date(task.start_by))}` })]]);
  }
  if (task.schedule) {
    facts.push(['Schedule', [scheduleLink(task.schedule),
      task.scheduled_for ? [' · tick ', timeAt(task.scheduled_for)] : null]]);
  }
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
      el('li', {}, el('strong', { text: e.attempt ? `Attempt ${e.attempt}` : 'Before any attempt' }), ' ', timeAgo(e.at),
        el('pre', { text: e.message })))));
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
    // Attempt 0: an end before any attempt (an expiry), told by the end itself.
    if (e.attempt === 0) continue;
    if (e.started_at) events.push([e.started_at, `attempt ${e.attempt} started`]);
    events.push([e.at, `attempt ${e.attempt} ended`, e.message]);
  }
  const recorded = task.errors.some((e) => e.attempt === task.attempt);
  if (task.started_at && !recorded) events.push([task.started_at, `attempt ${task.attempt} started`]);
  if (task.finished_at) {
    const note = task.status === 'expired' ? (task.error ?? 'not started by its start deadline') : null;
    events.push([task.finished_at, task.status, note]);
  }
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

const COLOURS = Object.fromEntries(ENDED.map((s) => [s, `c-${s}`]));

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

// ---- operators: queues, paused and resumed by superusers ----

async function loadQueues() {
  const { queues } = await view.client.queues();
  syncRows($('#queues tbody'), queues, 'data-queue', (q) => q.name, queueCells);
}

function queueCells(queue) {
  const { counts } = queue;
  const waited = queue.oldest_queued_seconds;
  const limit = queue.global_limit === null ? '' : `at most ${queue.global_limit} at once`;
  const state = JSON.stringify([queue.paused, queue.paused_by, queue.paused_at && ago(new Date(queue.paused_at))]);
  return [
    [JSON.stringify([queue.name, limit]), () =>
      el('th', { scope: 'row', 'data-label': 'Queue' },
        el('span', { class: 'name', text: queue.name }),
        limit ? el('div', { class: 'muted small', text: limit }) : null)],
    [state, () => el('td', { 'data-label': 'State' }, pausedState(queue))],
    [String(counts.queued), () => el('td', { class: 'num', 'data-label': 'Queued', text: String(counts.queued ?? 0) })],
    [String(counts.running), () => el('td', { class: 'num', 'data-label': 'Running', text: String(counts.running ?? 0) })],
    [String(counts.waiting), () => el('td', { class: 'num', 'data-label': 'Waiting', text: String(counts.waiting ?? 0) })],
    [waited === null ? '' : duration(waited), () => el('td', { 'data-label': 'Oldest queued' },
      waited === null
        ? el('span', { class: 'muted', text: '—' })
        : el('span', { title: `The task due longest ago has waited ${waited.toFixed(1)} s`, text: duration(waited) }))],
    [JSON.stringify([queue.paused, view.me.may.pause_queues]), () =>
      el('td', { class: 'actions' }, view.me.may.pause_queues ? pauseButton('queue', queue, () => toggleQueue(queue)) : null)],
  ];
}

/** "paused since 3 min ago by root", or "active". */
function pausedState(thing) {
  if (!thing.paused) return el('span', { class: 'state s-active', text: 'active' });
  return [
    el('span', { class: 'state s-paused', text: 'paused' }),
    el('div', { class: 'muted small' }, thing.paused_by ? `by ${thing.paused_by} · ` : '', timeAgo(thing.paused_at)),
  ];
}

/** A Pause or Resume button for a queue or a schedule. */
function pauseButton(what, thing, onclick) {
  const verb = thing.paused ? 'Resume' : 'Pause';
  return el('button', {
    type: 'button',
    class: thing.paused ? 'small' : 'danger small',
    'aria-label': `${verb} ${what} ${thing.name}`,
    onclick,
  }, verb);
}

async function toggleQueue(queue) {
  const { name, counts } = queue;
  const waiting = `${counts.queued} queued, ${counts.running} running, ${counts.waiting} waiting now`;
  if (queue.paused) {
    const ok = await confirmAction(`Resume queue ${name}?`, `Workers start its tasks again (${waiting}).`, { danger: false });
    if (ok) await act(() => view.client.resumeQueue(name));
  } else {
    const ok = await confirmAction(
      `Pause queue ${name}?`,
      `No worker starts its tasks until it is resumed; running ones finish, and new ones are accepted and wait (${waiting}).`,
    );
    if (ok) await act(() => view.client.pauseQueue(name));
  }
}

// ---- schedules (`?view=schedules`) ----

async function loadSchedules() {
  const { schedules } = await view.client.schedules();
  syncRows($('#schedules tbody'), schedules, 'data-schedule', (s) => s.name, scheduleCells);
  $('#schedules-empty').hidden = schedules.length > 0;
}

function scheduleCells(schedule) {
  const s = schedule;
  const who = [s.owner, s.product, s.source === 'config' ? 'configured' : null].filter(Boolean).join(' · ');
  const makes = [s.kind, s.queue ? `queue ${s.queue}` : null, s.priority ? `priority ${s.priority}` : null];
  const state = JSON.stringify([s.paused, s.paused_by, s.paused_at && ago(new Date(s.paused_at))]);
  const last = s.last_task;
  return [
    [JSON.stringify([s.name, who]), () =>
      el('th', { scope: 'row', 'data-label': 'Schedule' },
        el('span', { class: 'name', text: s.name }),
        el('div', { class: 'muted small', text: who }))],
    [JSON.stringify([s.cron, s.timezone, s.missed, s.overlap]), () =>
      el('td', { 'data-label': 'When' },
        el('code', { text: s.cron }),
        el('div', { class: 'muted small', text: [s.timezone,
          s.missed === 'once' ? 'missed ticks: once' : null,
          s.overlap === 'skip' ? 'no overlap' : null].filter(Boolean).join(' · ') }))],
    [JSON.stringify(makes), () =>
      el('td', { 'data-label': 'Makes' },
        el('span', { text: makes.filter(Boolean).join(' · ') }),
        el('div', { class: 'small' }, el('a', {
          href: `/ui?schedule=${encodeURIComponent(s.name)}`,
          onclick: (event) => {
            event.preventDefault();
            applyFilters({ schedule: s.name });
          },
        }, 'its tasks')))],
    [state, () => el('td', { 'data-label': 'State' }, pausedState(s))],
    [JSON.stringify([s.next_ticks, s.timezone, s.paused]), () =>
      el('td', { 'data-label': 'Next ticks' }, nextTicks(s))],
    [JSON.stringify(last), () => el('td', { 'data-label': 'Last task' }, lastTask(last))],
    [String(s.paused), () =>
      el('td', { class: 'actions' }, pauseButton('schedule', s, () => toggleSchedule(s)))],
  ];
}

/** The next ticks, each in the schedule's time zone (the viewer's exact time on hover). */
function nextTicks(schedule) {
  const seconds = schedule.next_ticks.some((t) => new Date(t).getUTCSeconds() !== 0);
  const options = { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (seconds) options.second = '2-digit';
  let format;
  try {
    format = new Intl.DateTimeFormat('en', { ...options, timeZone: schedule.timezone });
  } catch {
    format = new Intl.DateTimeFormat('en', options);
  }
  return el('ol', {
    class: `ticks${schedule.paused ? ' paused' : ''}`,
    'aria-label': `Next ticks of ${schedule.name}${schedule.paused ? ' (if resumed)' : ''}`,
  }, schedule.next_ticks.map((tick) => {
    const at = new Date(tick);
    return el('li', {}, el('time', { datetime: tick, title: `${exact.format(at)}, your time`, text: format.format(at) }));
  }));
}

function lastTask(last) {
  if (!last) return el('span', { class: 'muted', text: 'none yet' });
  return [
    el('a', {
      href: `/ui?task=${encodeURIComponent(last.token)}`,
      class: 'task-link',
      title: `Details of ${last.token}`,
      onclick: (event) => {
        event.preventDefault();
        openDetail(last.token);
      },
    }, el('span', { class: `status s-${last.status}`, text: last.status }), el('span', { class: 'token', text: ` ${short(last.token)}` })),
    last.scheduled_for ? el('div', { class: 'muted small' }, 'tick ', timeAgo(last.scheduled_for)) : null,
  ];
}

async function toggleSchedule(schedule) {
  const { name } = schedule;
  if (schedule.paused) {
    const ok = await confirmAction(
      `Resume schedule ${name}?`,
      'It fires again from its next tick; the ticks it was paused over make no task.',
      { danger: false },
    );
    if (ok) await act(() => view.client.resumeSchedule(name));
  } else {
    const ok = await confirmAction(`Pause schedule ${name}?`, 'Its ticks make no task until it is resumed.');
    if (ok) await act(() => view.client.pauseSchedule(name));
  }
}

/** A task's schedule: a link to the schedules for those who may see them. */
function scheduleLink(name) {
  if (!view.me?.may.schedules) return el('span', { text: name });
  return el('a', {
    href: '/ui?view=schedules',
    title: 'The schedules',
    onclick: (event) => {
      event.preventDefault();
      goTo('schedules');
    },
  }, name);
}

boot();
