// The client against a real errand process (`errand serve`), started by
// `cargo test --test clients`, which passes where it listens and three tokens:
//
//   ERRAND_URL=http://127.0.0.1:8080 ERRAND_TOKEN=… ERRAND_ROOT_TOKEN=… \
//   ERRAND_ADMIN_TOKEN=… node --test test/
//
// (ERRAND_ADMIN_TOKEN: an admin of product "shop".)
//
// Imported exactly as a frontend imports it: the package's own entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, ErrandError, ProblemError, TaskFailedError } from '@errand/client';

const baseUrl = process.env.ERRAND_URL;
const token = process.env.ERRAND_TOKEN;
const rootToken = process.env.ERRAND_ROOT_TOKEN;
const adminToken = process.env.ERRAND_ADMIN_TOKEN;
if (!baseUrl || !token || !rootToken || !adminToken) {
  throw new Error(
    'these tests need a running errand: ERRAND_URL, ERRAND_TOKEN (a user), ERRAND_ROOT_TOKEN ' +
      '(a superuser) and ERRAND_ADMIN_TOKEN (an admin of product "shop"); ' +
      '`cargo test --test clients` starts one and sets them',
  );
}

const errand = createClient({ baseUrl, token });
const root = createClient({ baseUrl, token: rootToken });
const admin = createClient({ baseUrl, token: adminToken });

/** A fetch that counts what it sends, and may be told to break. */
function recordingFetch(breakWhen = () => null) {
  const sent = [];
  const fetchImpl = async (url, init) => {
    const request = { url: String(url), method: init?.method ?? 'GET', headers: init?.headers ?? {} };
    sent.push(request);
    const broken = breakWhen(request, sent);
    if (broken === 'before') throw new TypeError('fetch failed (test: connection refused)');
    const response = await fetch(url, init);
    if (broken === 'after') throw new TypeError('fetch failed (test: connection reset)');
    if (broken instanceof Response) return broken;
    return response;
  };
  return { sent, fetchImpl };
}

/** Resolves once `check` is true, polling every 20 ms, or fails after `ms`. */
async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('run resolves with the completed task, reporting each change of progress', async () => {
  const seen = [];
  const task = await errand.run('sleep', { seconds: 1.5 }, {
    onProgress: (progress, t) => seen.push({ ...progress, status: t.status }),
  });
  assert.equal(task.status, 'completed');
  assert.deepEqual(task.result, { slept: 1.5 });
  assert.ok(seen.length >= 3, `progress seen along the way: ${JSON.stringify(seen)}`);
  const fractions = seen.map((p) => p.fraction);
  assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), 'progress only grows');
  for (let i = 1; i < seen.length; i++) {
    const same = seen[i].fraction === seen[i - 1].fraction && seen[i].message === seen[i - 1].message;
    assert.ok(!same, `reported once per change: ${JSON.stringify(seen)}`);
  }
  assert.ok(seen.some((p) => p.status === 'running' && p.fraction > 0 && p.fraction < 1));
});

test('run rejects with a TaskFailedError carrying the failed task', async () => {
  const failing = errand.run('sleep', { seconds: 0.2, fail: true }, { maxAttempts: 1 });
  await assert.rejects(failing, (error) => {
    assert.ok(error instanceof TaskFailedError);
    assert.ok(error instanceof ErrandError && error instanceof Error);
    assert.equal(error.task.status, 'failed');
    assert.equal(error.status, 'failed');
    assert.match(error.task.error, /failed on purpose/);
    assert.equal(error.task.errors.length, 1);
    return true;
  });
});

test('a task cancelled while waited for rejects with its cancelled task', async () => {
  let running;
  const started = new Promise((resolve) => (running = resolve));
  const waiting = errand.run('sleep', { seconds: 60 }, {
    onProgress: (_, task) => task.status === 'running' && running(task),
  });
  const task = await started;
  const asked = await root.cancel(task.token);
  assert.equal(asked.cancel_requested, true);
  await assert.rejects(waiting, (error) => {
    assert.ok(error instanceof TaskFailedError);
    assert.equal(error.task.status, 'cancelled');
    return true;
  });
});

test('an AbortSignal stops the wait within 100 ms, and the task goes on', async () => {
  const controller = new AbortController();
  let running;
  const started = new Promise((resolve) => (running = resolve));
  const waiting = errand.run('sleep', { seconds: 30 }, {
    signal: controller.signal,
    onProgress: (_, task) => task.status === 'running' && running(task),
  });
  const task = await started;
  // Now a long poll is in flight: aborting must not wait for it to end.
  await new Promise((r) => setTimeout(r, 200));
  const abortedAt = performance.now();
  controller.abort();
  await assert.rejects(waiting, (error) => error.name === 'AbortError');
  const took = performance.now() - abortedAt;
  assert.ok(took < 100, `stopped in ${took.toFixed(1)} ms`);
  const after = await errand.get(task.token);
  assert.equal(after.status, 'running', 'aborting a wait does not cancel the task');
  assert.equal(after.cancel_requested, false);
  await root.cancel(task.token);
});

test('cancelOnAbort cancels the task too', async () => {
  const controller = new AbortController();
  let created;
  const gotIt = new Promise((resolve) => (created = resolve));
  const waiting = root.run('sleep', { seconds: 30 }, {
    signal: controller.signal,
    cancelOnAbort: true,
    onProgress: (_, task) => created(task),
  });
  const task = await gotIt;
  controller.abort();
  await assert.rejects(waiting, (error) => error.name === 'AbortError');
  await until('the task to be cancelled', async () => {
    const t = await root.get(task.token);
    return t.status === 'cancelled' || t.cancel_requested;
  });
});

test('a create whose answer is lost is sent again with its key, and makes one task', async () => {
  // A payload no other test sends: the task is found by it.
  const seconds = 0.1 + Math.floor(Math.random() * 1e6) / 1e9;
  let lost = 0;
  const { sent, fetchImpl } = recordingFetch((request) =>
    request.method === 'POST' && lost++ === 0 ? 'after' : null,
  );
  const flaky = createClient({ baseUrl, token, fetch: fetchImpl, backoffBase: 20 });
  const task = await flaky.run('sleep', { seconds }, {});
  assert.equal(task.status, 'completed');
  const posts = sent.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 2, 'the create was sent twice');
  const keys = posts.map((r) => r.headers['idempotency-key']);
  assert.ok(keys[0] && keys[0] === keys[1], `one Idempotency-Key: ${keys}`);
  const { tasks } = await errand.list({ kind: 'sleep', limit: 1000 });
  const made = tasks.filter((t) => t.payload.seconds === seconds);
  assert.equal(made.length, 1, 'no duplicate task');
  assert.equal(made[0].token, task.token);
});

test('a refused create rejects with a ProblemError carrying the detail', async () => {
  await assert.rejects(errand.run('sleep', { seconds: 'soon' }), (error) => {
    assert.ok(error instanceof ProblemError);
    assert.equal(error.status, 422);
    assert.equal(error.problem.status, 422);
    assert.match(error.detail, /seconds/);
    assert.match(error.message, /seconds/);
    return true;
  });
  await assert.rejects(errand.create('no-such-kind', {}), (error) => {
    assert.ok(error instanceof ProblemError);
    assert.equal(error.status, 422);
    assert.match(error.detail, /no-such-kind/);
    return true;
  });
  const stranger = createClient({ baseUrl, token: 'errand_not_a_real_token' });
  await assert.rejects(stranger.get('0123456789abcdef0123456789abcdef'), (error) => {
    assert.ok(error instanceof ProblemError);
    assert.equal(error.status, 401);
    return true;
  });
});

test('wait rides out lost requests and busy answers', async () => {
  const created = await errand.create('sleep', { seconds: 0.5 });
  let gets = 0;
  const { fetchImpl } = recordingFetch((request) => {
    if (request.method !== 'GET') return null;
    gets++;
    if (gets === 1) return 'before';
    if (gets === 2) {
      return new Response('{"status":503,"title":"Service Unavailable"}', {
        status: 503,
        headers: { 'retry-after': '0', 'content-type': 'application/problem+json' },
      });
    }
    return null;
  });
  const flaky = createClient({ baseUrl, token, fetch: fetchImpl, backoffBase: 20 });
  const task = await flaky.wait(created.token);
  assert.equal(task.status, 'completed');
  assert.ok(gets >= 3);
});

test('without long polls, wait polls at the pace Retry-After asks', async () => {
  const { sent, fetchImpl } = recordingFetch();
  const plain = createClient({ baseUrl, token, fetch: fetchImpl });
  const created = await plain.create('sleep', { seconds: 3 });
  const task = await plain.wait(created.token, { longPoll: false });
  assert.equal(task.status, 'completed');
  const gets = sent.filter((r) => r.method === 'GET');
  assert.ok(gets.every((r) => !r.url.includes('wait=')), 'no long polls');
  // A running task asks for a poll every 2 s: about 3 s of work is 2 or 3 polls.
  assert.ok(gets.length >= 2 && gets.length <= 4, `${gets.length} polls`);
});

test('long polls send the ETag and are answered when the task changes', async () => {
  const { sent, fetchImpl } = recordingFetch();
  const watching = createClient({ baseUrl, token, fetch: fetchImpl });
  const created = await watching.create('sleep', { seconds: 1 });
  const task = await watching.wait(created.token);
  assert.equal(task.status, 'completed');
  const gets = sent.filter((r) => r.method === 'GET');
  assert.ok(gets.every((r) => r.url.includes('wait=')), 'long polls');
  assert.ok(gets.slice(1).every((r) => r.headers['if-none-match']), 'each after the first sends the ETag');
});

test('createBatch creates every task in one request, all or none', async () => {
  const tokens = await errand.createBatch([
    { kind: 'sleep', payload: { seconds: 0 } },
    { kind: 'sleep', payload: { seconds: 0 }, priority: 5 },
  ]);
  assert.equal(tokens.length, 2);
  for (const t of tokens) assert.equal((await errand.wait(t)).status, 'completed');
  await assert.rejects(
    errand.createBatch([{ kind: 'sleep', payload: { seconds: 0 } }, { kind: 'nope' }]),
    (error) => {
      assert.ok(error instanceof ProblemError);
      assert.equal(error.status, 422);
      assert.equal(error.problem.errors[0].index, 1);
      return true;
    },
  );
});

/** Asserts that `promise` rejects with a ProblemError of `status` whose detail matches `detail`. */
async function refused(promise, status, detail = /./) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ProblemError, `a ProblemError: ${error}`);
    assert.equal(error.status, status, error.detail);
    assert.match(error.detail ?? error.title, detail);
    return true;
  });
}

/** Runs `body` with queue `default` paused, resuming it whatever happens. */
async function whileDefaultPaused(body) {
  await root.pauseQueue('default');
  try {
    return await body();
  } finally {
    await root.resumeQueue('default');
  }
}

test('me says who the token is', async () => {
  const me = await errand.me();
  assert.equal(me.role, 'user');
  assert.equal(me.may.retry, false);
  for (const flag of ['retry_matching', 'queues', 'pause_queues', 'schedules']) {
    assert.equal(me.may[flag], false, `a user may not ${flag}`);
  }
  const rootMe = await root.me();
  assert.equal(rootMe.may.retry, true);
  for (const flag of ['retry_matching', 'queues', 'pause_queues', 'schedules']) {
    assert.equal(rootMe.may[flag], true, `a superuser may ${flag}`);
  }
  const adminMe = await admin.me();
  assert.deepEqual([adminMe.role, adminMe.product], ['admin', 'shop']);
  assert.equal(adminMe.may.queues, true);
  assert.equal(adminMe.may.schedules, true);
  assert.equal(adminMe.may.pause_queues, false);
  assert.equal(adminMe.may.retry_matching, false);
});

test('a task shows its new fields; startBy and expiresIn set its start deadline', async () => {
  const plain = await errand.create('sleep', { seconds: 0 });
  assert.equal(plain.snoozes, 0);
  assert.equal(plain.start_by, null);
  assert.equal(plain.schedule, null);
  assert.equal(plain.scheduled_for, null);

  const deadline = new Date(Date.now() + 60_000);
  const byDate = await errand.create('sleep', { seconds: 0 }, { startBy: deadline });
  assert.equal(new Date(byDate.start_by).getTime(), deadline.getTime());
  const byText = await errand.create('sleep', { seconds: 0 }, { startBy: deadline.toISOString() });
  assert.equal(new Date(byText.start_by).getTime(), deadline.getTime());
  const bySpan = await errand.create('sleep', { seconds: 0 }, { delay: 5, expiresIn: 30 });
  const span = new Date(bySpan.start_by) - new Date(bySpan.run_at);
  assert.ok(Math.abs(span - 30_000) < 5, `expires_in counts from when it is due: ${span} ms`);

  await refused(
    errand.create('sleep', { seconds: 0 }, { startBy: deadline, expiresIn: 30 }),
    422,
    /start_by|expires_in/,
  );
  await refused(errand.create('sleep', { seconds: 0 }, { expiresIn: 0 }), 422, /expires_in/);
  for (const t of [plain, byDate, byText]) assert.equal((await errand.wait(t.token)).status, 'completed');
  await root.cancel(bySpan.token);
});

test('a task not started by its deadline ends expired: run rejects with it, and it can be retried', async () => {
  const ended = await whileDefaultPaused(async () => {
    const waiting = errand.run('sleep', { seconds: 0 }, { expiresIn: 0.3 });
    const error = await waiting.then(
      () => assert.fail('an expired task does not complete'),
      (e) => e,
    );
    assert.ok(error instanceof TaskFailedError, `a TaskFailedError: ${error}`);
    assert.equal(error.status, 'expired');
    assert.equal(error.task.status, 'expired');
    assert.equal(error.task.done, true);
    assert.equal(error.task.attempt, 0, 'it never started');
    assert.ok(error.task.start_by);
    return error.task;
  });
  const { tasks } = await errand.list({ status: 'expired' });
  assert.ok(tasks.some((t) => t.token === ended.token), 'the listing filters by expired');
  const stats = await root.stats({ status: 'expired' });
  assert.ok(stats.by_status.expired >= 1, JSON.stringify(stats.by_status));
  // Retried, its deadline no longer holds: it runs (the queue is resumed).
  const retried = await root.retry(ended.token);
  assert.equal(retried.status, 'queued');
  assert.equal((await errand.wait(retried.token)).status, 'completed');
});

test('queues: each with its counts; superusers pause and resume, others are refused', async () => {
  const { queues } = await root.queues();
  const names = queues.map((q) => q.name);
  assert.deepEqual(names, [...names].sort(), 'by name');
  const first = queues.find((q) => q.name === 'default');
  assert.ok(first, `default is listed: ${names}`);
  assert.equal(first.paused, false);
  assert.deepEqual(Object.keys(first.counts).sort(), ['queued', 'running', 'waiting']);
  assert.ok((await admin.queues()).queues.some((q) => q.name === 'default'), 'admins read the queues');
  await refused(errand.queues(), 403);
  await refused(admin.pauseQueue('default'), 403);
  await refused(errand.resumeQueue('default'), 403);
  await refused(root.pauseQueue('no-such-queue'), 404, /no-such-queue/);
  await refused(root.pauseQueue('not a queue/name'), 422, /queue/);

  let task;
  await whileDefaultPaused(async () => {
    const again = await root.pauseQueue('default');
    assert.equal(again.name, 'default');
    assert.equal(again.paused, true, 'pausing a paused queue is harmless');
    assert.equal(again.paused_by, 'root');
    assert.ok(Date.parse(again.paused_at) <= Date.now());
    task = await errand.create('sleep', { seconds: 0 });
    await new Promise((r) => setTimeout(r, 700));
    assert.equal((await errand.get(task.token)).status, 'queued', 'no worker starts it while paused');
    const seen = (await root.queues()).queues.find((q) => q.name === 'default');
    assert.equal(seen.paused, true);
    assert.ok(seen.counts.queued >= 1, JSON.stringify(seen.counts));
    assert.ok(seen.oldest_queued_seconds >= 0.5, `oldest waited ${seen.oldest_queued_seconds} s`);
  });
  const resumed = (await root.queues()).queues.find((q) => q.name === 'default');
  assert.equal(resumed.paused, false);
  assert.equal(resumed.paused_at, null);
  assert.equal(resumed.paused_by, null);
  assert.equal((await errand.wait(task.token)).status, 'completed', 'resumed, it runs');
  const twice = await root.resumeQueue('default');
  assert.equal(twice.paused, false, 'resuming a running queue is harmless');
});

test('retryMatching re-queues the matching failed, cancelled, dropped or expired tasks only', async () => {
  // A queue no worker serves: its tasks expire there, and wait once retried.
  const queue = `retry${Date.now()}`;
  const expiring = await Promise.all([1, 2].map(() =>
    root.create('sleep', { seconds: 0 }, { queue, expiresIn: 0.2 })));
  const cancelled = await root.create('sleep', { seconds: 0 }, { queue });
  await root.cancel(cancelled.token);
  const parked = await root.create('sleep', { seconds: 0 }, { queue, delay: 3600 });
  await until('the tasks to expire', async () => {
    const { tasks } = await root.list({ queue, status: 'expired' });
    return tasks.length === 2;
  });
  await refused(root.retryMatching({}), 422, /all/);
  await refused(errand.retryMatching({ queue }), 403);
  await refused(admin.retryMatching({ queue }), 403);
  assert.deepEqual(await root.retryMatching({ queue, status: 'completed' }), { retried: 0 });
  assert.deepEqual(await root.retryMatching({ queue }), { retried: 3 });
  for (const t of [...expiring, cancelled]) {
    const now = await root.get(t.token);
    assert.equal(now.status, 'queued', `${t.token} is queued again`);
    assert.equal(now.start_by, null, 'its deadline no longer holds');
  }
  assert.equal((await root.get(parked.token)).run_at, parked.run_at, 'a task that has not ended is left');
  assert.deepEqual(await root.retryMatching({ queue }), { retried: 0 }, 'nothing left to retry');
  await root.cancelMatching({ queue });
});

test('schedules: made, read, changed by merge patch, paused, resumed and deleted', async () => {
  const name = `js-nightly-${Date.now()}`;
  const made = await root.createSchedule({
    name,
    cron: '0 3 * * *',
    timezone: 'Europe/Berlin',
    kind: 'sleep',
    payload: { seconds: 0 },
    maxAttempts: 2,
    missed: 'once',
  });
  assert.equal(made.name, name);
  assert.equal(made.max_attempts, 2);
  assert.equal(made.missed, 'once');
  assert.equal(made.overlap, 'allow');
  assert.deepEqual([made.owner, made.product, made.source, made.paused], ['root', null, 'api', false]);
  assert.equal(made.last_task, null);
  assert.equal(made.next_ticks.length, 5);
  const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' });
  for (const tick of made.next_ticks) assert.equal(berlin.format(new Date(tick)), '03:00', tick);
  assert.deepEqual(made.links, { self: `/v1/schedules/${name}`, tasks: `/v1/tasks?schedule=${name}` });

  const payload = { seconds: 0 };
  await refused(root.createSchedule({ name, cron: '0 3 * * *', kind: 'sleep', payload }), 409, new RegExp(name));
  await refused(root.createSchedule({ name: `${name}-x`, cron: 'every day', kind: 'sleep', payload }), 422, /cron/);
  await refused(root.createSchedule({ name: `${name}-y`, cron: '0 3 * * *', kind: 'sleep', payload: { seconds: 'x' } }), 422, /seconds/);
  await refused(errand.schedules(), 403);
  await refused(errand.createSchedule({ name: `${name}-z`, cron: '0 3 * * *', kind: 'sleep', payload }), 403);

  assert.equal((await root.schedule(name)).cron, '0 3 * * *');
  assert.ok((await root.schedules()).schedules.some((s) => s.name === name));

  const { sent, fetchImpl } = recordingFetch();
  const watched = createClient({ baseUrl, token: rootToken, fetch: fetchImpl });
  const changed = await watched.updateSchedule(name, { cron: '30 4 * * *', maxAttempts: null, priority: 3 });
  assert.equal(sent[0].method, 'PATCH');
  assert.equal(sent[0].headers['content-type'], 'application/merge-patch+json');
  assert.equal(changed.cron, '30 4 * * *');
  assert.equal(changed.max_attempts, undefined, 'null takes a field back to its default');
  assert.equal(changed.priority, 3);
  assert.equal(changed.timezone, 'Europe/Berlin', 'what the patch leaves out stays');
  for (const tick of changed.next_ticks) assert.equal(berlin.format(new Date(tick)), '04:30', tick);

  const paused = await root.pauseSchedule(name);
  assert.deepEqual([paused.paused, paused.paused_by], [true, 'root']);
  assert.equal((await root.pauseSchedule(name)).paused, true, 'pausing twice is harmless');
  const resumed = await root.resumeSchedule(name);
  assert.deepEqual([resumed.paused, resumed.paused_at, resumed.paused_by], [false, null, null]);

  assert.equal(await root.deleteSchedule(name), null);
  await refused(root.schedule(name), 404);
  await refused(root.deleteSchedule(name), 404);
  await refused(root.schedule('not/a name'), 404);
});

test("a schedule's ticks make tasks that name it, and its view shows the last", async () => {
  const name = `js-every-second-${Date.now()}`;
  await root.createSchedule({ name, cron: '* * * * * *', kind: 'sleep', payload: { seconds: 0 } });
  try {
    let last;
    await until('a tick to make a task', async () => {
      last = (await root.schedule(name)).last_task;
      return last !== null;
    });
    assert.equal(last.self, `/v1/tasks/${last.token}`);
    const task = await root.get(last.token);
    assert.equal(task.schedule, name);
    assert.equal(task.scheduled_for, last.scheduled_for);
    assert.equal(task.owner, 'root');
    assert.equal(new Date(task.scheduled_for).getMilliseconds(), 0, 'a tick is on the second');
    const { tasks } = await root.list({ schedule: name });
    assert.ok(tasks.length >= 1 && tasks.every((t) => t.schedule === name));
    const { tasks: none } = await root.list({ schedule: `${name}-other` });
    assert.equal(none.length, 0);
  } finally {
    await root.deleteSchedule(name);
  }
});

test("a product admin steers its product's schedules only", async () => {
  const mine = `shop-hourly-${Date.now()}`;
  const theirs = `root-hourly-${Date.now()}`;
  const made = await admin.createSchedule({ name: mine, cron: '@hourly', kind: 'sleep', payload: { seconds: 0 } });
  assert.deepEqual([made.owner, made.product], ['shop-admin', 'shop']);
  await root.createSchedule({ name: theirs, cron: '@hourly', kind: 'sleep', payload: { seconds: 0 } });
  try {
    const seen = (await admin.schedules()).schedules.map((s) => s.name);
    assert.ok(seen.includes(mine) && !seen.includes(theirs), `an admin sees its product's: ${seen}`);
    const all = (await root.schedules()).schedules.map((s) => s.name);
    assert.ok(all.includes(mine) && all.includes(theirs), 'a superuser sees all');
    await refused(admin.schedule(theirs), 404);
    await refused(admin.pauseSchedule(theirs), 404);
    assert.equal((await admin.pauseSchedule(mine)).paused, true);
    assert.equal((await admin.resumeSchedule(mine)).paused, false);
  } finally {
    await admin.deleteSchedule(mine);
    await root.deleteSchedule(theirs);
  }
});
