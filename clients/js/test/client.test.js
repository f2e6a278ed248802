// The client against a real errand process (`errand serve`), started by
// `cargo test --test clients`, which passes where it listens and two tokens:
//
//   ERRAND_URL=http://127.0.0.1:8080 ERRAND_TOKEN=… ERRAND_ROOT_TOKEN=… node --test test/
//
// Imported exactly as a frontend imports it: the package's own entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, ErrandError, ProblemError, TaskFailedError } from '@errand/client';

const baseUrl = process.env.ERRAND_URL;
const token = process.env.ERRAND_TOKEN;
const rootToken = process.env.ERRAND_ROOT_TOKEN;
if (!baseUrl || !token || !rootToken) {
  throw new Error(
    'these tests need a running errand: ERRAND_URL, ERRAND_TOKEN (a user) and ERRAND_ROOT_TOKEN ' +
      '(a superuser); `cargo test --test clients` starts one and sets them',
  );
}

const errand = createClient({ baseUrl, token });
const root = createClient({ baseUrl, token: rootToken });

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

test('me says who the token is', async () => {
  const me = await errand.me();
  assert.equal(me.role, 'user');
  assert.equal(me.may.retry, false);
  assert.equal((await root.me()).may.retry, true);
});
