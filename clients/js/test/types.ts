// Checked by `tsc -p .` (never run): the types say what the README shows.
import {
  createClient,
  ProblemError,
  TaskFailedError,
  type Progress,
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

export { example, operator };
