// The dashboard at /ui in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core), against a real errand started by
// `cargo test --test clients`, which sets:
//
//   ERRAND_URL         where errand listens
//   ERRAND_ROOT_TOKEN  a superuser's token; ERRAND_USER_TOKEN a user's;
//                      ERRAND_ADMIN_TOKEN an admin's, of product "shop"
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
const adminToken = process.env.ERRAND_ADMIN_TOKEN;
const pagePort = Number(process.env.ERRAND_PAGE_PORT);
const shots = process.env.ERRAND_SCREENSHOTS;
if (!base || !rootToken || !userToken || !adminToken || !pagePort) {
  throw new Error('run by `cargo test --test clients`, which starts errand and sets ERRAND_URL and the tokens');
}

const root = createClient({ baseUrl: base, token: rootToken });
const user = createClient({ baseUrl: base, token: userToken });
const admin = createClient({ baseUrl: base, token: adminToken });

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
const queueRow = (page, name) => page.locator(`#queues tr[data-queue="${name}"]`);
const scheduleRow = (page, name) => page.locator(`#schedules tr[data-schedule="${name}"]`);

/** Clicks `button`, checks the confirm dialog says `says`, and confirms. */
async function confirmed(page, button, says) {
  await button.click();
  const dialog = page.locator('#confirm');
  await dialog.waitFor();
  assert.match(await dialog.innerText(), says);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await dialog.waitFor({ state: 'hidden' });
}

/** Resolves once `locator`'s text matches `pattern`. */
async function shows(locator, pattern, what = String(pattern)) {
  await until(`${what} to show`, async () => pattern.test(await locator.innerText()));
}

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
  assert.match(await page.locator('#detail-title').innerText(), new RegExp(tokens[5].slice(-8)));
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
  await root.createSchedule({
    name: 'report.weekly-for-the-whole-team',
    cron: '30 6 * * 1',
    timezone: 'America/Argentina/Buenos_Aires',
    kind: 'sleep',
    payload: { seconds: 0 },
    queue: 'default',
    overlap: 'skip',
  });
  await root.pauseQueue('default');
  try {
    for (const width of [1280, 390]) {
      const { page, context, problems } = await open(rootToken, { width, height: 844 });
      await page.locator('#tasks tbody tr').first().waitFor();
      await queueRow(page, 'default').waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${width} px: ${overflow} px wider than the screen`);
      await shot(page, `dashboard-${width}`);
      await page.locator('#queues-panel').scrollIntoViewIfNeeded();
      await shot(page, `queues-${width}`);
      await page.locator('#views').getByRole('link', { name: 'Schedules' }).click();
      await scheduleRow(page, 'report.weekly-for-the-whole-team').waitFor();
      const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(wide <= 0, `${width} px, schedules: ${wide} px wider than the screen`);
      await shot(page, `schedules-${width}`);
      assert.deepEqual(problems, []);
      await context.close();
    }
  } finally {
    await root.resumeQueue('default');
    await root.deleteSchedule('report.weekly-for-the-whole-team');
  }
});

test('a queue is paused and resumed from the Queues panel, after a confirm', async () => {
  const { page, context, problems } = await open(rootToken);
  const queue = queueRow(page, 'default');
  try {
    await queue.waitFor();
    await shows(queue, /active/);
    await confirmed(page, queue.getByRole('button', { name: 'Pause queue default' }), /Pause queue default\?/);
    await until('the queue to be paused', async () =>
      (await root.queues()).queues.find((q) => q.name === 'default').paused);
    await shows(queue, /paused/);
    await shows(queue, /by root/);
    // While it is paused a new task waits, and the panel counts it and its wait.
    const task = await root.create('sleep', { seconds: 0 });
    await until('the panel to count it', async () =>
      Number(await queue.locator('td[data-label=Queued]').innerText()) >= 1);
    await shows(queue.locator('td[data-label="Oldest queued"]'), /^\d+ s$/, 'its age');
    assert.equal((await root.get(task.token)).status, 'queued', 'a paused queue starts nothing');
    await shot(page, 'queues-paused');
    const resume = queue.getByRole('button', { name: 'Resume queue default' });
    // Backing out changes nothing.
    await resume.click();
    await page.locator('#confirm').getByRole('button', { name: 'Keep' }).click();
    assert.equal((await root.queues()).queues.find((q) => q.name === 'default').paused, true);
    await confirmed(page, resume, /Resume queue default\?/);
    await shows(queue, /active/);
    assert.equal((await root.queues()).queues.find((q) => q.name === 'default').paused, false);
    assert.equal((await root.wait(task.token)).status, 'completed', 'resumed, it runs');
    assert.deepEqual(problems, []);
  } finally {
    await root.resumeQueue('default');
    await context.close();
  }
});

test('an admin sees the queues without Pause, and its product\'s schedules with Pause; a user neither', async () => {
  const mine = await admin.createSchedule({ name: 'shop-hourly', cron: '@hourly', kind: 'sleep', payload: { seconds: 0 } });
  assert.equal(mine.product, 'shop');
  await root.createSchedule({ name: 'root-hourly', cron: '@hourly', kind: 'sleep', payload: { seconds: 0 } });
  try {
    const { page, context, problems } = await open(adminToken);
    await queueRow(page, 'default').waitFor();
    assert.equal(await page.locator('#queues').getByRole('button').count(), 0, 'no Pause for an admin');
    assert.ok(await page.getByRole('button', { name: 'Retry matching…' }).isHidden());
    await page.locator('#views').getByRole('link', { name: 'Schedules' }).click();
    const schedule = scheduleRow(page, 'shop-hourly');
    await schedule.waitFor();
    assert.equal(await scheduleRow(page, 'root-hourly').count(), 0, "another product's is not listed");
    await confirmed(page, schedule.getByRole('button', { name: 'Pause schedule shop-hourly' }), /Pause schedule/);
    await until('it to be paused', async () => (await admin.schedule('shop-hourly')).paused);
    await shows(schedule, /paused/);
    assert.deepEqual(problems, []);
    await context.close();

    const asUser = await open(userToken, { query: '?view=schedules' });
    await asUser.page.locator('#tasks-view').waitFor();
    assert.ok(await asUser.page.locator('#schedules-view').isHidden(), 'a user gets the tasks');
    assert.ok(await asUser.page.locator('#queues-panel').isHidden());
    assert.ok(await asUser.page.locator('#views').isHidden(), 'no Schedules link for a user');
    assert.ok(await asUser.page.getByRole('button', { name: 'Retry matching…' }).isHidden());
    await asUser.page.locator('#refreshed').getByText(/updated/).waitFor();
    assert.deepEqual(asUser.problems, []);
    await asUser.context.close();
  } finally {
    await admin.deleteSchedule('shop-hourly');
    await root.deleteSchedule('root-hourly');
  }
});

test('the Schedules view lists a schedule with its five next ticks; pause and resume it there', async () => {
  const made = await root.createSchedule({ name: 'nightly', cron: '0 3 * * *', kind: 'sleep', payload: { seconds: 0 } });
  assert.equal(made.next_ticks.length, 5);
  const { page, context, problems } = await open(rootToken);
  try {
    // Reached from the header, and kept in the address.
    await page.locator('#views').getByRole('link', { name: 'Schedules' }).click();
    await until('the address to say so', () => page.url().includes('view=schedules'));
    const schedule = scheduleRow(page, 'nightly');
    await schedule.waitFor();
    assert.equal(await page.locator('#views a[aria-current=page]').innerText(), 'Schedules');
    assert.ok(await page.locator('#tasks-view').isHidden(), 'the tasks are not shown meanwhile');
    const ticks = await schedule.locator('.ticks time').evaluateAll((times) => times.map((t) => t.getAttribute('datetime')));
    assert.deepEqual(ticks.map((t) => new Date(t).getTime()), made.next_ticks.map((t) => new Date(t).getTime()));
    for (const text of await schedule.locator('.ticks time').allInnerTexts()) {
      assert.match(text, /03:00/, 'each tick as a time, in the schedule\'s zone');
    }
    assert.match(await schedule.innerText(), /0 3 \* \* \*/);
    assert.match(await schedule.innerText(), /UTC/);
    assert.match(await schedule.innerText(), /sleep/);
    assert.match(await schedule.innerText(), /none yet/);
    await shot(page, 'schedules');

    await confirmed(page, schedule.getByRole('button', { name: 'Pause schedule nightly' }), /Pause schedule nightly\?/);
    await shows(schedule, /paused/);
    await shows(schedule, /by root/);
    assert.equal((await root.schedule('nightly')).paused, true);
    await confirmed(page, schedule.getByRole('button', { name: 'Resume schedule nightly' }), /Resume schedule nightly\?/);
    await shows(schedule, /active/);
    assert.equal((await root.schedule('nightly')).paused, false);

    // A reload keeps the view; the Tasks link goes back.
    await page.reload();
    await scheduleRow(page, 'nightly').waitFor();
    await page.locator('#views').getByRole('link', { name: 'Tasks' }).click();
    await page.locator('#tasks-view').waitFor();
    assert.ok(!page.url().includes('view=schedules'));
    assert.ok(await page.locator('#schedules-view').isHidden());
    assert.deepEqual(problems, []);
  } finally {
    await root.deleteSchedule('nightly');
    await context.close();
  }
});

test("a schedule's last task links to its detail, which names the schedule and its tick", async () => {
  await root.createSchedule({ name: 'every-second', cron: '* * * * * *', kind: 'sleep', payload: { seconds: 0 } });
  try {
    await until('a tick to make a task', async () => (await root.schedule('every-second')).last_task !== null);
    // Stopped, so that its last task stays put.
    await root.pauseSchedule('every-second');
    const { last_task: last } = await root.schedule('every-second');
    const { page, context, problems } = await open(rootToken, { query: '?view=schedules' });
    const schedule = scheduleRow(page, 'every-second');
    await schedule.waitFor();
    const link = schedule.getByRole('link', { name: new RegExp(last.token.slice(-8)) });
    await link.click();
    const detail = page.locator('#detail');
    await detail.waitFor();
    await shows(detail, /every-second/, 'the schedule');
    await detail.locator(`time[datetime="${last.scheduled_for}"]`).waitFor();
    assert.doesNotMatch(await detail.innerText(), /object/);
    assert.match(await page.locator('#detail-title').innerText(), new RegExp(last.token.slice(-8)));
    assert.ok(page.url().includes('view=schedules') && page.url().includes(`task=${last.token}`));
    await shot(page, 'schedule-task');
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    await root.deleteSchedule('every-second');
  }
});

test('Retry matching… re-queues the matching failed tasks, after a confirm with their count', async () => {
  const failed = await Promise.all([1, 2].map(async () => {
    const task = await user.create('sleep', { seconds: 0, fail: true }, { maxAttempts: 1 });
    assert.equal((await user.wait(task.token)).status, 'failed');
    return task;
  }));
  const { page, context, problems } = await open(rootToken, { query: '?status=failed&owner=alice' });
  for (const t of failed) await row(page, t.token).waitFor();
  await confirmed(page, page.getByRole('button', { name: 'Retry matching…' }), /Retry 2 tasks\?[\s\S]*2 failed/);
  await until('a second attempt of each', async () => {
    const tasks = await Promise.all(failed.map((t) => root.get(t.token)));
    return tasks.every((t) => t.attempt === 2 && t.done);
  });
  for (const t of failed) assert.equal((await root.get(t.token)).errors.length, 2, 'the history is kept');
  assert.deepEqual(problems, []);
  await context.close();
});

test('expired tasks are listed, counted, coloured and retryable; the detail shows the deadline', async () => {
  const queue = `expiring${Date.now()}`;
  const task = await root.create('sleep', { seconds: 0 }, { queue, expiresIn: 0.2 });
  await until('it to expire', async () => (await root.get(task.token)).status === 'expired');
  const { page, context, problems } = await open(rootToken, { query: `?queue=${queue}` });
  await shows(row(page, task.token).locator('.status'), /^expired$/, 'its status');
  const colour = await row(page, task.token).locator('.status').evaluate((e) => getComputedStyle(e).color);
  assert.equal(colour, 'rgb(161, 61, 122)', 'expired has a colour of its own');
  await page.locator('#stats-status .chip.s-expired').waitFor();
  assert.match(await page.locator('#stats-status').innerText(), /\d+ expired/);
  assert.match(await page.locator('#chart-legend').innerText(), /expired \d+/);
  await page.locator('#filters select[name=status]').selectOption('expired');
  await page.getByRole('button', { name: 'Apply' }).click();
  await until('the filter to apply', () => page.url().includes('status=expired'));
  await row(page, task.token).getByRole('button', { name: /^sleep/ }).click();
  const detail = page.locator('#detail');
  await shows(detail, /Start by/, 'its deadline');
  await shows(detail.locator('.timeline'), /not started by its start deadline/, 'why it ended');
  await shot(page, 'expired-detail');
  await confirmed(page, detail.getByRole('button', { name: 'Retry', exact: true }), /expired/);
  await until('it to be queued again', async () => (await root.get(task.token)).status === 'queued');
  assert.deepEqual(problems, []);
  await root.cancel(task.token);
  await context.close();
});

test('two tasks created in the same second show different short tokens', async () => {
  const [a, b] = await root.createBatch([
    { kind: 'sleep', payload: { seconds: 1 }, delay: 3600, queue: 'twins' },
    { kind: 'sleep', payload: { seconds: 1 }, delay: 3600, queue: 'twins' },
  ]);
  assert.equal(a.slice(0, 8), b.slice(0, 8), 'made in the same moment, their tokens begin alike');
  const { page, context, problems } = await open(rootToken, { query: '?queue=twins' });
  const shown = await Promise.all([a, b].map(async (t) => {
    await row(page, t).waitFor();
    return (await row(page, t).locator('.token').innerText()).trim();
  }));
  assert.notEqual(shown[0], shown[1], `the short tokens differ: ${shown}`);
  assert.equal(shown[0], a.slice(-8));
  assert.equal(shown[1], b.slice(-8));
  assert.deepEqual(problems, []);
  await root.cancelMatching({ queue: 'twins' });
  await context.close();
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
