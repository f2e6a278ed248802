// Checked by `tsc -p .` (never run): the types say what the README shows.
import {
  createClient,
  ProblemError,
  TaskFailedError,
  type Progress,
  type Queue,
  type Schedule,
  type SchedulePatch,
  type Status,
  type Task,
} from '../index.js';

const errand = createClient({ baseUrl: 'http://127.0.0.1:8080', token: 'errand_…' });

async function example(signal: AbortSignal): Promise<string> {
  const shown: number[] = [];
  try {
    const task: Task = await errand.run(
      'transcribe',
      { audio_url: 'https://example.com/talk.wav' },
      {
        queue: 'media',
        maxAttempts: 2,
        runAt: new Date(),
        dependsOn: ['6f1c2a9e0d3b4c5f8a7e6d5c4b3a2f10'],
        onProgress: (p: Progress) => shown.push(p.fraction),
        signal,
      },
    );
    return JSON.stringify(task.result);
  } catch (e) {
    if (e instanceof TaskFailedError) return `${e.task.status}: ${e.task.error ?? ''}`;
    if (e instanceof ProblemError) return `${e.status}: ${e.detail ?? ''}`;
    throw e;
  }
}

async function operator(): Promise<number> {
  const page = await errand.list({ status: ['failed', 'dropped'], limit: 10 });
  const stats = await errand.stats({ interval: '1m' });
  const tokens = await errand.createBatch([{ kind: 'sleep', payload: { seconds: 1 }, priority: 2 }]);
  const me = await errand.me();
  const { workers } = await errand.workers();
  if (me.may.retry) await errand.retry(page.tasks[0].token);
  const waited = await errand.wait(tokens[0], { longPoll: false });
  return stats.total + workers.length + (waited.done ? 1 : 0);
}

async function deadlines(): Promise<string> {
  const byDate = await errand.create('sleep', { seconds: 1 }, { startBy: new Date(Date.now() + 60_000) });
  const byText = await errand.create('sleep', { seconds: 1 }, { startBy: '2030-01-01T00:00:00Z', runAt: new Date() });
  const bySpan = await errand.create('sleep', { seconds: 1 }, { delay: 5, expiresIn: 30 });
  const ended: Status = 'expired';
  const shown = [byDate, byText, bySpan].map(
    (t: Task) => `${t.status} ${t.snoozes} ${t.start_by ?? '-'} ${t.schedule ?? '-'} ${t.scheduled_for ?? '-'}`,
  );
  try {
    await errand.run('sleep', { seconds: 1 }, { expiresIn: 1 });
  } catch (e) {
    if (e instanceof TaskFailedError && e.status === ended) shown.push(e.task.start_by ?? '');
  }
  return shown.join('\n');
}

async function control(): Promise<number> {
  const me = await errand.me();
  let n = 0;
  if (me.may.retry_matching) n += (await errand.retryMatching({ status: ['failed', 'expired'], queue: 'media' })).retried;
  if (me.may.retry_matching) n += (await errand.retryMatching({ all: true })).retried;
  if (me.may.queues) {
    const { queues } = await errand.queues();
    const first: Queue | undefined = queues[0];
    if (first && me.may.pause_queues) {
      const paused: Queue = first.paused ? await errand.resumeQueue(first.name) : await errand.pauseQueue(first.name);
      n += paused.counts.queued + paused.counts.running + paused.counts.waiting + (paused.oldest_queued_seconds ?? 0);
      n += paused.global_limit ?? 0;
    }
  }
  if (me.may.schedules) {
    const made: Schedule = await errand.createSchedule({
      name: 'nightly-report',
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      kind: 'report',
      payload: { period: 'day' },
      maxAttempts: 3,
      timeout: 1800,
      missed: 'once',
      overlap: 'skip',
    });
    const patch: SchedulePatch = { cron: '30 3 * * *', queue: null, maxAttempts: 5 };
    const changed = await errand.updateSchedule(made.name, patch);
    const paused = await errand.pauseSchedule(changed.name);
    const resumed = await errand.resumeSchedule(paused.name);
    const again = await errand.schedule(resumed.name);
    const { schedules } = await errand.schedules();
    const last = again.last_task;
    if (last && last.status === 'expired') n += 1;
    n += again.next_ticks.length + schedules.length + (again.max_attempts ?? 0);
    n += again.source === 'config' ? 1 : 0;
    const tasks = await errand.list({ schedule: again.name, status: 'expired' });
    n += tasks.tasks.length;
    const gone: null = await errand.deleteSchedule(again.name);
    n += gone === null ? 0 : 1;
  }
  return n;
}

export { example, operator, deadlines, control };
