// The dashboard at /ui in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core), against a real errand started by
// `cargo test --test clients`, which sets:
//
//   ERRAND_URL         where errand listens
//   ERRAND_ROOT_TOKEN  a superuser's token; ERRAND_USER_TOKEN a user's
//   ERRAND_PAGE_PORT   a free port for a page of another origin, which
//                      errand lists in http.cors_origins
//   ERRAND_SCREENSHOTS where to leave screenshots (optional)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { chromium } from 'playwright-core';

import { createClient } from '../../clients/js/index.js';

const base = process.env.ERRAND_URL;
const rootToken = process.env.ERRAND_ROOT_TOKEN;
const userToken = process.env.ERRAND_USER_TOKEN;
const pagePort = Number(process.env.ERRAND_PAGE_PORT);
const shots = process.env.ERRAND_SCREENSHOTS;
if (!base || !rootToken || !userToken || !pagePort) {
  throw new Error('run by `cargo test --test clients`, which starts errand and sets ERRAND_URL and the tokens');
}

const root = createClient({ baseUrl: base, token: rootToken });
const user = createClient({ baseUrl: base, token: userToken });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
});
after(async () => {
  await browser?.close();
});

/** The dashboard signed in with `token`, its console watched. */
async function open(token, { width = 1280, height = 900, query = '' } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  await page.goto(`${base}/ui${query}#token=${token}`);
  await page.locator('#board').waitFor();
  return { page, context, problems };
}

/** Resolves once `check` is true, or fails after `ms`. */
async function until(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const row = (page, token) => page.locator(`tr[data-token="${token}"]`);

async function runningTask(client, seconds = 120) {
  const task = await client.create('sleep', { seconds });
  await until('the task to run', async () => (await client.get(task.token)).status === 'running');
  return task;
}

async function failedTask() {
  const task = await root.create('sleep', { seconds: 0, fail: true }, { maxAttempts: 1 });
  assert.equal((await root.wait(task.token)).status, 'failed');
  return task;
}

async function shot(page, name) {
  if (!shots) return;
  await mkdir(shots, { recursive: true });
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: false });
}

test('signs in from the address, lists the tasks and shows one in detail', async () => {
  const done = await root.create('sleep', { seconds: 0 });
  await root.wait(done.token);
  const failed = await failedTask();
  const running = await runningTask(root);
  const { page, context, problems } = await open(rootToken);
  assert.ok(!page.url().includes('token='), `the token left the address bar: ${page.url()}`);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('errand.token')), rootToken);
  for (const t of [done, failed, running]) await row(page, t.token).waitFor();
  await row(page, running.token).locator('[role=progressbar]').waitFor();
  assert.match(await row(page, done.token).locator('time').getAttribute('title'), /\d{4}/);
  assert.match(await row(page, done.token).locator('time').innerText(), /ago|now/);

  await row(page, failed.token).getByRole('button', { name: /^sleep/ }).click();
  const detail = page.locator('#detail');
  await detail.getByText('failed on purpose (fail: true)').first().waitFor();
  const timeline = await detail.locator('.timeline').innerText();
  for (const step of ['created', 'attempt 1 started', 'attempt 1 ended', 'failed']) {
    assert.ok(timeline.includes(step), `timeline has "${step}": ${timeline}`);
  }
  assert.ok((await detail.locator('pre.json').first().innerText()).includes('"fail": true'));
  assert.ok(page.url().includes(`task=${failed.token}`), 'the open task is in the address');
  await page.keyboard.press('Escape');
  await detail.waitFor({ state: 'hidden' });
  await shot(page, 'dashboard');
  assert.deepEqual(problems, []);
  await root.cancel(running.token);
  await context.close();
});

test('filters apply, are kept in the address, and survive a reload', async () => {
  const failed = await failedTask();
  const { page, context, problems } = await open(rootToken);
  await page.locator('#filters select[name=status]').selectOption('failed');
  await page.getByRole('button', { name: 'Apply' }).click();
  await until('the address to hold the filter', () => page.url().includes('status=failed'));
  await row(page, failed.token).waitFor();
  await until('only failed rows', async () => {
    const statuses = await page.locator('#tasks tbody .status').allInnerTexts();
    return statuses.length > 0 && statuses.every((s) => s === 'failed');
  });
  await page.reload();
  await row(page, failed.token).waitFor();
  assert.equal(await page.locator('#filters select[name=status]').inputValue(), 'failed');
  await page.getByRole('button', { name: 'Clear' }).click();
  await until('the filter to go', () => !page.url().includes('status='));
  assert.deepEqual(problems, []);
  await context.close();
});

test("a running task's Cancel button cancels it, after a confirm", async () => {
  const running = await runningTask(root);
  const { page, context, problems } = await open(rootToken);
  const cancel = row(page, running.token).getByRole('button', { name: 'Cancel', exact: true });
  await cancel.click();
  const dialog = page.locator('#confirm');
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Cancel sleep/);
  // Backing out changes nothing.
  await dialog.getByRole('button', { name: 'Keep' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await root.get(running.token)).cancel_requested, false);
  await cancel.click();
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await until('the task to be cancelled', async () => (await root.get(running.token)).status === 'cancelled');
  await until('its row to say so', async () =>
    (await row(page, running.token).locator('.status').innerText()) === 'cancelled');
  assert.equal(await row(page, running.token).getByRole('button', { name: 'Cancel', exact: true }).count(), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a failed task's Retry button runs it again, after a confirm", async () => {
  const failed = await failedTask();
  const { page, context, problems } = await open(rootToken);
  await row(page, failed.token).getByRole('button', { name: 'Retry', exact: true }).click();
  await page.locator('#confirm').getByRole('button', { name: 'Confirm' }).click();
  await until('a second attempt', async () => {
    const task = await root.get(failed.token);
    return task.attempt === 2 && task.done;
  });
  const task = await root.get(failed.token);
  assert.equal(task.errors.length, 2, 'the history is kept');
  assert.deepEqual(problems, []);
  await context.close();
});

test('bulk cancel of the filtered tasks says how many first', async () => {
  const queue = `bulk${Date.now()}`;
  const parked = await Promise.all([1, 2, 3].map(() =>
    root.create('sleep', { seconds: 1 }, { queue, delay: 3600 })));
  const { page, context, problems } = await open(rootToken, { query: `?queue=${queue}` });
  for (const t of parked) await row(page, t.token).waitFor();
  await page.getByRole('button', { name: 'Cancel matching…' }).click();
  const dialog = page.locator('#confirm');
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Cancel 3 tasks\?/);
  assert.match(await dialog.innerText(), /3 queued/);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await until('every one to be cancelled', async () => {
    const tasks = await Promise.all(parked.map((t) => root.get(t.token)));
    return tasks.every((t) => t.status === 'cancelled');
  });
  assert.deepEqual(problems, []);
  await context.close();
});

test('the stats strip, the throughput chart and the workers show what happened', async () => {
  const tokens = await root.createBatch([0, 0, 0].map(() => ({ kind: 'sleep', payload: { seconds: 0 } })));
  for (const t of tokens) await root.wait(t);
  const { page, context, problems } = await open(rootToken);
  await page.locator('#chart svg').waitFor();
  const label = await page.locator('#chart').getAttribute('aria-label');
  const completed = Number(/(\d+) completed/.exec(label)?.[1]);
  assert.ok(completed >= 3, `the chart counts the tasks that just finished: ${label}`);
  assert.ok(await page.locator('#chart rect[data-status=completed]').count() >= 1);
  const last = page.locator('#chart rect[data-status=completed]').last();
  assert.ok(Number(await last.getAttribute('data-count')) >= 1);
  assert.match(await page.locator('#stats-status').innerText(), /\d+ completed/);
  await page.locator('#workers li[data-worker]').first().waitFor();
  assert.match(await page.locator('#workers').innerText(), /running/);
  assert.deepEqual(problems, []);
  await context.close();
});

test('a user sees its own tasks, no Cancel button by default, and no operator panels', async () => {
  const mine = await runningTask(user, 60);
  const { page, context, problems } = await open(userToken);
  await row(page, mine.token).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Cancel', exact: true }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Retry', exact: true }).count(), 0);
  assert.ok(await page.locator('#overview').isHidden());
  assert.ok(await page.getByRole('button', { name: 'Cancel matching…' }).isHidden());
  assert.deepEqual(problems, []);
  await root.cancel(mine.token);
  await context.close();
});

test('auto-refresh keeps the scroll position and the open detail', async () => {
  const tokens = await root.createBatch(Array.from({ length: 40 }, () => ({
    kind: 'sleep', payload: { seconds: 1 }, delay: 3600, queue: 'scroll',
  })));
  const { page, context, problems } = await open(rootToken, { height: 600, query: '?queue=scroll' });
  const target = row(page, tokens[5]);
  await target.waitFor();
  await target.scrollIntoViewIfNeeded();
  await target.getByRole('button', { name: /^sleep/ }).click();
  await page.locator('#detail').waitFor();
  const scrolled = await page.evaluate(() => window.scrollY);
  assert.ok(scrolled > 0, 'the page is scrolled');
  const before = await page.locator('#refreshed').innerText();
  await until('a refresh', async () => (await page.locator('#refreshed').innerText()) !== before, 15000);
  assert.ok(Math.abs((await page.evaluate(() => window.scrollY)) - scrolled) <= 2, 'the scroll position stays');
  assert.ok(await page.locator('#detail').isVisible(), 'the detail stays open');
  assert.match(await page.locator('#detail-title').innerText(), new RegExp(tokens[5].slice(0, 8)));
  assert.deepEqual(problems, []);
  await root.cancelMatching({ queue: 'scroll' });
  await context.close();
});

test('keyboard alone opens a task, confirms and backs out', async () => {
  const running = await runningTask(root);
  const { page, context, problems } = await open(rootToken);
  const open_ = row(page, running.token).getByRole('button', { name: /^sleep/ });
  await open_.focus();
  await page.keyboard.press('Enter');
  await page.locator('#detail').waitFor();
  await page.keyboard.press('Escape');
  await page.locator('#detail').waitFor({ state: 'hidden' });
  await row(page, running.token).getByRole('button', { name: 'Cancel', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.locator('#confirm').waitFor();
  await page.keyboard.press('Escape');
  await page.locator('#confirm').waitFor({ state: 'hidden' });
  assert.equal((await root.get(running.token)).cancel_requested, false, 'Escape changes nothing');
  assert.deepEqual(problems, []);
  await root.cancel(running.token);
  await context.close();
});

test('clean at 1280 px and at 390 px: nothing wider than the screen', async () => {
  for (const width of [1280, 390]) {
    const { page, context, problems } = await open(rootToken, { width, height: 844 });
    await page.locator('#tasks tbody tr').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${width} px: ${overflow} px wider than the screen`);
    await shot(page, `dashboard-${width}`);
    assert.deepEqual(problems, []);
    await context.close();
  }
});

test('the client works from a page of another origin that errand lists', async () => {
  const client = await readFile(new URL('../../clients/js/index.js', import.meta.url));
  const html = `<!doctype html><meta charset="utf-8"><title>shop</title><link rel="icon" href="data:,">
    <p id="out">working</p>
    <script type="module">
      import { createClient } from './client.js';
      const errand = createClient({ baseUrl: ${JSON.stringify(base)}, token: ${JSON.stringify(userToken)} });
      const seen = [];
      errand.run('sleep', { seconds: 0.5 }, { onProgress: (p) => seen.push(p.fraction) })
        .then((t) => { document.getElementById('out').textContent = t.status + ' ' + seen.length; })
        .catch((e) => { document.getElementById('out').textContent = 'error ' + e.message; });
    </script>`;
  const server = createServer((req, res) => {
    if (req.url === '/client.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(client);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise((resolve) => server.listen(pagePort, '127.0.0.1', resolve));
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  await page.goto(`http://127.0.0.1:${pagePort}/`);
  await until('the task to run', async () => !(await page.locator('#out').innerText()).startsWith('working'));
  assert.match(await page.locator('#out').innerText(), /^completed \d+/);
  assert.deepEqual(problems, []);
  await context.close();
  server.close();
});
