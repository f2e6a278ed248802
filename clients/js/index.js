// errand's client for browsers and Node (20+): hand slow work to errand and
// wait for it. No dependencies; the global fetch by default.
//
//   import { createClient } from '@errand/client';
//   const errand = createClient({ baseUrl: 'https://errand.example.com', token });
//   const task = await errand.run('transcribe', { audio_url }, {
//     onProgress: (p) => bar.value = p.fraction,
//     signal: controller.signal,
//   });
//
// Types are in index.d.ts; README.md says what each call does.

/** Anything this client throws on purpose. */
export class ErrandError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'ErrandError';
  }
}

/** errand refused the request: `.status` and its problem details (RFC 9457). */
export class ProblemError extends ErrandError {
  constructor(status, problem) {
    super(problem.detail || problem.title || `errand answered ${status}`);
    this.name = 'ProblemError';
    this.status = status;
    this.problem = problem;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
  }
}

/** The task ended without completing (failed, cancelled, dropped or expired): `.task`. */
export class TaskFailedError extends ErrandError {
  constructor(task) {
    super(`task ${task.token} ${task.status}${task.error ? `: ${task.error}` : ''}`);
    this.name = 'TaskFailedError';
    this.task = task;
    this.status = task.status;
  }
}

/** What a create body takes, in the client's camelCase. */
const CREATE_FIELDS = {
  queue: 'queue',
  priority: 'priority',
  delay: 'delay',
  runAt: 'run_at',
  startBy: 'start_by',
  expiresIn: 'expires_in',
  maxAttempts: 'max_attempts',
  timeout: 'timeout',
  dependsOn: 'depends_on',
  callbackUrl: 'callback_url',
  files: 'files',
};

/** What a schedule's body takes, in the client's camelCase (other keys are sent as they are). */
const SCHEDULE_FIELDS = {
  maxAttempts: 'max_attempts',
};

/** Dates a create body takes, sent as RFC 3339. */
const DATE_OPTIONS = new Set(['runAt', 'startBy']);

/** Answers worth trying again: errand or a proxy in front of it is busy or down. */
const TRANSIENT = new Set([429, 502, 503, 504]);

const DEFAULTS = {
  /** Seconds one long poll may be held (errand caps it at http.max_wait). */
  pollWait: 25,
  /** Backoff after a network error or a busy answer: base and cap, in ms. */
  backoffBase: 250,
  backoffMax: 15000,
  /** Tries of a create that has an Idempotency-Key (safe to repeat). */
  createTries: 6,
};

/**
 * A client of one errand server, as one token.
 * @param {import('./index.js').ClientOptions} options
 */
export function createClient({ baseUrl, token, fetch: fetchImpl, ...tuning } = {}) {
  if (!baseUrl) throw new TypeError('createClient: baseUrl is required');
  const doFetch = fetchImpl || globalThis.fetch.bind(globalThis);
  const base = String(baseUrl).replace(/\/+$/, '');
  const settings = { ...DEFAULTS, ...tuning };

  /** One request; the Response, whatever its status. */
  function send(method, path, { body, headers = {}, signal } = {}) {
    const all = { accept: 'application/json' };
    let payload;
    if (body !== undefined) {
      all['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    Object.assign(all, headers);
    if (token) all.authorization = `Bearer ${token}`;
    return doFetch(`${base}${path}`, { method, headers: all, body: payload, signal });
  }

  /** A request whose answer must be 2xx: its JSON (or null for 204). */
  async function call(method, path, options = {}) {
    let response;
    try {
      response = await send(method, path, options);
    } catch (e) {
      throwIfAborted(options.signal);
      throw new ErrandError(`could not reach errand: ${e.message}`, { cause: e });
    }
    if (!response.ok) throw await problemOf(response);
    return response.status === 204 ? null : response.json();
  }

  async function create(kind, payload, opts = {}) {
    const body = { kind, payload: payload ?? {}, ...createBody(opts) };
    const key = opts.idempotencyKey;
    const headers = key ? { 'idempotency-key': key } : {};
    if (!key) return call('POST', '/v1/tasks', { body, headers, signal: opts.signal });
    // With a key, a create can be sent again safely: the same key and body
    // answer the same task, so a lost answer never makes two.
    return retrying(settings.createTries, opts.signal, async () => {
      const response = await send('POST', '/v1/tasks', { body, headers, signal: opts.signal });
      // 409: the first request with this key is still being handled.
      if (TRANSIENT.has(response.status) || response.status === 409) return busy(response);
      if (!response.ok) throw await problemOf(response);
      return { done: await response.json() };
    });
  }

  async function createBatch(tasks, opts = {}) {
    const body = {
      tasks: tasks.map(({ kind, payload, ...rest }) => ({
        kind,
        payload: payload ?? {},
        ...createBody(rest),
      })),
    };
    const key = opts.idempotencyKey ?? newKey();
    const headers = { 'idempotency-key': key };
    return retrying(settings.createTries, opts.signal, async () => {
      const response = await send('POST', '/v1/tasks/batch', { body, headers, signal: opts.signal });
      if (TRANSIENT.has(response.status) || response.status === 409) return busy(response);
      if (!response.ok) throw await problemOf(response);
      return { done: (await response.json()).tokens };
    });
  }

  /** Waits until `token`'s task has ended; the ended task, whatever its status. */
  async function wait(taskToken, opts = {}) {
    const { onProgress, signal } = opts;
    const report = progressReporter(onProgress);
    let etag = null;
    if (opts.from) {
      // What the caller already holds (a create's answer).
      report(opts.from);
      if (opts.from.done) return opts.from;
    }
    let longPoll = opts.longPoll ?? true;
    let failures = 0;
    let brokenPolls = 0;
    for (;;) {
      throwIfAborted(signal);
      const query = longPoll ? `?wait=${settings.pollWait}` : '';
      const headers = etag ? { 'if-none-match': etag } : {};
      const started = Date.now();
      let response;
      try {
        response = await send('GET', `/v1/tasks/${encodeURIComponent(taskToken)}${query}`, {
          headers,
          signal,
        });
      } catch (error) {
        throwIfAborted(signal);
        // A long poll a proxy keeps cutting is given up for plain polling.
        if (longPoll && ++brokenPolls >= 2) longPoll = false;
        await pause(backoff(++failures), signal);
        continue;
      }
      if (TRANSIENT.has(response.status)) {
        await pause(retryAfterMs(response) ?? backoff(++failures), signal);
        continue;
      }
      if (response.status !== 304 && !response.ok) throw await problemOf(response);
      failures = 0;
      const quick = Date.now() - started < 1000;
      if (response.status === 304) {
        // Unchanged. A long poll answers that only after holding on; one that
        // answers at once is not held (by a proxy, say): poll at the pace asked.
        if (longPoll && quick) longPoll = false;
        if (!longPoll) await pause(retryAfterMs(response) ?? 2000, signal);
        continue;
      }
      const task = await response.json();
      etag = response.headers.get('etag');
      report(task);
      if (task.done) return task;
      if (!longPoll) await pause(retryAfterMs(response) ?? 2000, signal);
    }
  }

  async function run(kind, payload, opts = {}) {
    const { onProgress, signal } = opts;
    const idempotencyKey = opts.idempotencyKey ?? newKey();
    const created = await create(kind, payload, { ...opts, idempotencyKey });
    const task = await wait(created.token, {
      onProgress,
      signal,
      longPoll: opts.longPoll,
      from: created,
    }).catch(async (error) => {
      if (signal?.aborted && opts.cancelOnAbort) await cancel(created.token).catch(() => {});
      throw error;
    });
    if (task.status !== 'completed') throw new TaskFailedError(task);
    return task;
  }

  const get = (taskToken, opts = {}) =>
    call('GET', `/v1/tasks/${encodeURIComponent(taskToken)}`, opts);
  const cancel = (taskToken, opts = {}) =>
    call('POST', `/v1/tasks/${encodeURIComponent(taskToken)}/cancel`, opts);
  const retry = (taskToken, opts = {}) =>
    call('POST', `/v1/tasks/${encodeURIComponent(taskToken)}/retry`, opts);
  const list = (filter = {}, opts = {}) => call('GET', `/v1/tasks${queryString(filter)}`, opts);
  const stats = (params = {}, opts = {}) =>
    call('GET', `/v1/tasks/stats${queryString(params)}`, opts);
  const cancelMatching = (filter, opts = {}) =>
    call('POST', '/v1/tasks/cancel', { ...opts, body: filter });
  const retryMatching = (filter, opts = {}) =>
    call('POST', '/v1/tasks/retry', { ...opts, body: filter });
  const workers = (opts = {}) => call('GET', '/v1/workers', opts);
  const me = (opts = {}) => call('GET', '/v1/me', opts);

  const queues = (opts = {}) => call('GET', '/v1/queues', opts);
  const queuePath = (name) => `/v1/queues/${encodeURIComponent(name)}`;
  const pauseQueue = (name, opts = {}) => call('POST', `${queuePath(name)}/pause`, opts);
  const resumeQueue = (name, opts = {}) => call('POST', `${queuePath(name)}/resume`, opts);

  const schedulePath = (name) => `/v1/schedules/${encodeURIComponent(name)}`;
  const schedules = (opts = {}) => call('GET', '/v1/schedules', opts);
  const schedule = (name, opts = {}) => call('GET', schedulePath(name), opts);
  const createSchedule = (body, opts = {}) =>
    call('POST', '/v1/schedules', { ...opts, body: scheduleBody(body) });
  // A JSON merge patch (RFC 7396): the fields to change; null takes one back to its default.
  const updateSchedule = (name, patch, opts = {}) =>
    call('PATCH', schedulePath(name), {
      ...opts,
      body: scheduleBody(patch),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
  const deleteSchedule = (name, opts = {}) => call('DELETE', schedulePath(name), opts);
  const pauseSchedule = (name, opts = {}) => call('POST', `${schedulePath(name)}/pause`, opts);
  const resumeSchedule = (name, opts = {}) => call('POST', `${schedulePath(name)}/resume`, opts);

  return {
    create,
    createBatch,
    get,
    wait,
    run,
    cancel,
    retry,
    list,
    stats,
    cancelMatching,
    retryMatching,
    workers,
    me,
    queues,
    pauseQueue,
    resumeQueue,
    schedules,
    schedule,
    createSchedule,
    updateSchedule,
    deleteSchedule,
    pauseSchedule,
    resumeSchedule,
  };

  /** Runs `attempt` until it says done, pausing as it says between tries. */
  async function retrying(tries, signal, attempt) {
    let error;
    for (let n = 1; n <= tries; n++) {
      throwIfAborted(signal);
      let outcome;
      try {
        outcome = await attempt();
      } catch (e) {
        throwIfAborted(signal);
        if (e instanceof ErrandError) throw e;
        // The request, or its answer, was lost on the way.
        error = new ErrandError(`could not reach errand: ${e.message}`, { cause: e });
        await pause(backoff(n), signal);
        continue;
      }
      if ('done' in outcome) return outcome.done;
      error = outcome.error;
      await pause(outcome.wait ?? backoff(n), signal);
    }
    throw error;
  }

  /** Delay before try `n + 1`: exponential, capped, with jitter. */
  function backoff(n) {
    const ceiling = Math.min(settings.backoffMax, settings.backoffBase * 2 ** Math.min(n, 20));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

/** The create body's optional fields from the client's options. */
function createBody(opts) {
  const body = {};
  for (const [option, field] of Object.entries(CREATE_FIELDS)) {
    let value = opts[option];
    if (value === undefined) continue;
    if (DATE_OPTIONS.has(option) && value instanceof Date) value = value.toISOString();
    if (option === 'dependsOn') value = value.map((t) => (typeof t === 'string' ? t : t.token));
    body[field] = value;
  }
  return body;
}

/** A schedule's body (or merge patch) from the client's options: camelCase keys renamed, the rest as they are. */
function scheduleBody(fields) {
  const body = {};
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    body[SCHEDULE_FIELDS[key] ?? key] = value;
  }
  return body;
}

/** Calls `onProgress` when what a task shows of its progress changed. */
function progressReporter(onProgress) {
  let last;
  return (task) => {
    if (!onProgress || !task.progress) return;
    const seen = `${task.progress.fraction}\u0000${task.progress.message ?? ''}`;
    if (seen === last) return;
    last = seen;
    onProgress(task.progress, task);
  };
}

/** A busy answer: try again when it says. */
async function busy(response) {
  return { error: await problemOf(response), wait: retryAfterMs(response) };
}

/** The problem an answer carries (or one made up for a body that is none). */
async function problemOf(response) {
  let problem;
  try {
    problem = await response.json();
  } catch {
    problem = null;
  }
  if (!problem || typeof problem !== 'object') {
    problem = { title: response.statusText || `HTTP ${response.status}`, status: response.status };
  }
  return new ProblemError(response.status, problem);
}

/** `Retry-After` in milliseconds, if the answer has one (seconds or a date). */
function retryAfterMs(response) {
  const value = response.headers.get('retry-after');
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** Waits `ms`, or rejects as soon as `signal` is aborted. */
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(abortReason(signal));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function throwIfAborted(signal) {
  if (signal?.aborted) throw abortReason(signal);
}

function abortReason(signal) {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** `?a=1&b=x&b=y` from an object (arrays repeat their key; empty values are left out). */
function queryString(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one === undefined || one === null || one === '') continue;
      query.append(key, one instanceof Date ? one.toISOString() : String(one));
    }
  }
  const text = query.toString();
  return text ? `?${text}` : '';
}

/** A fresh Idempotency-Key: 128 random bits (getRandomValues works on plain http too). */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
