// Types of errand's JavaScript client (index.js).

/** Where a task is in its life. */
export type Status =
  | 'waiting'
  | 'queued'
  | 'running'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'dropped'
  | 'expired';

/** The statuses of a task that has ended. */
export type EndedStatus = 'completed' | 'failed' | 'cancelled' | 'dropped' | 'expired';

/** The statuses a superuser may retry (`retry`, `retryMatching`). */
export type RetryableStatus = 'failed' | 'cancelled' | 'dropped' | 'expired';

export interface Progress {
  /** 0 to 1. */
  fraction: number;
  message: string | null;
}

/** One attempt that did not succeed. */
export interface ErrorEntry {
  attempt: number;
  message: string;
  at: string;
}

/** A task's input or output file. */
export interface TaskFile {
  name: string;
  size: number;
  sha256: string;
  content_type: string;
  /** Where to download it (same server, same token). */
  href: string;
}

/** A task, as `GET /v1/tasks/{token}` shows it. */
export interface Task {
  token: string;
  kind: string;
  queue: string;
  priority: number;
  status: Status;
  progress: Progress;
  attempt: number;
  max_attempts: number;
  /** Times its handler said "not yet" and it was queued again without using an attempt. */
  snoozes: number;
  owner: string;
  product: string | null;
  payload: unknown;
  result: unknown;
  error: string | null;
  errors: ErrorEntry[];
  done: boolean;
  cancel_requested: boolean;
  depends_on: string[];
  files?: { inputs: TaskFile[]; outputs: TaskFile[] };
  created_at: string;
  run_at: string;
  /** Its start deadline: not started by then, it ends `expired`. */
  start_by: string | null;
  /** The schedule that made it, and that schedule's tick it was made for. */
  schedule: string | null;
  scheduled_for: string | null;
  started_at: string | null;
  finished_at: string | null;
  links: { self: string };
}

/** RFC 9457 problem details, as errand answers every refusal. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** A refused batch: each bad task's place and problem. */
  errors?: Array<Problem & { index: number }>;
  [extension: string]: unknown;
}

export interface ClientOptions {
  /** Where errand answers, e.g. `https://errand.example.com`. */
  baseUrl: string;
  /** An API token (`errand token create`), sent as `Authorization: Bearer`. */
  token?: string;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  /** Seconds one long poll is held (errand caps it at `http.max_wait`); 25. */
  pollWait?: number;
  /** Backoff after a lost request or a busy answer, in ms: 250 doubling to 15000, with jitter. */
  backoffBase?: number;
  backoffMax?: number;
  /** Tries of a create with an Idempotency-Key before giving up; 6. */
  createTries?: number;
}

/** The optional fields of a create, in camelCase. */
export interface CreateOptions {
  queue?: string;
  /** Higher runs first. */
  priority?: number;
  /** Seconds before it may start. */
  delay?: number;
  /** Not before this time. */
  runAt?: Date | string;
  /** A start deadline: not started by then, it ends `expired`. Not with `expiresIn`. */
  startBy?: Date | string;
  /** A start deadline this many seconds after it is due (> 0). Not with `startBy`. */
  expiresIn?: number;
  maxAttempts?: number;
  /** Seconds one attempt may run. */
  timeout?: number;
  /** Tasks (or their tokens) that must complete first. */
  dependsOn?: Array<string | { token: string }>;
  /** Where errand POSTs the task when it ends (signed). */
  callbackUrl?: string;
  /** Uploaded files (`POST /v1/files`) by the names the kind expects. */
  files?: Record<string, string>;
  /** Sent as the `Idempotency-Key` header: a create sent again with it answers the same task. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Called with the task's progress each time it differs from the last call (never for a 304). */
  onProgress?: (progress: Progress, task: Task) => void;
  /** Stops waiting at once: the request in flight is aborted, the task goes on. */
  signal?: AbortSignal;
  /** Hold long polls (`?wait=`); false: plain polling paced by `Retry-After`. Default true. */
  longPoll?: boolean;
}

export interface RunOptions extends CreateOptions, WaitOptions {
  /** Cancel the task too when `signal` aborts the wait. Default false. */
  cancelOnAbort?: boolean;
}

export type BatchTask = { kind: string; payload?: unknown } & Omit<
  CreateOptions,
  'idempotencyKey' | 'signal'
>;

/** A filter of `GET /v1/tasks` (and of stats, bulk cancel and bulk retry). */
export interface TaskFilter {
  status?: Status | Status[];
  kind?: string | string[];
  queue?: string | string[];
  owner?: string | string[];
  product?: string | string[];
  /** The schedule that made them. */
  schedule?: string | string[];
  created_after?: string | Date;
  created_before?: string | Date;
  finished_after?: string | Date;
  finished_before?: string | Date;
  cancel_requested?: boolean;
}

export interface TaskPage {
  tasks: Task[];
  next_cursor: string | null;
}

export interface TaskStats {
  by_status: Record<Status, number>;
  by_kind: Record<string, Partial<Record<Status, number>>>;
  by_queue: Record<string, Partial<Record<Status, number>>>;
  total: number;
  throughput?: {
    interval: number;
    since: string;
    intervals: Array<{ start: string; ended: Record<EndedStatus, number> }>;
  };
}

export interface Worker {
  id: string;
  host: string;
  pid: number;
  /** Each queue it serves, with its slots. */
  queues: Record<string, number>;
  concurrency: number;
  started_at: string;
  heartbeat_at: string;
  /** Tasks it runs now. */
  running: number;
}

export interface Me {
  name: string;
  role: 'user' | 'admin' | 'superuser';
  product: string | null;
  may: {
    cancel: 'seen' | 'own' | 'nothing';
    /** Retry ended tasks, one or by filter; cancel by filter (superusers). */
    retry: boolean;
    cancel_matching: boolean;
    retry_matching: boolean;
    /** Read stats, workers and queues (admins, superusers). */
    stats: boolean;
    workers: boolean;
    queues: boolean;
    /** Pause and resume queues (superusers). */
    pause_queues: boolean;
    /** See and steer schedules (superusers; admins, their product's). */
    schedules: boolean;
  };
}

/** A queue, as `GET /v1/queues` shows it. */
export interface Queue {
  name: string;
  /** While paused, no worker starts its tasks (running ones finish; new ones wait). */
  paused: boolean;
  paused_at: string | null;
  /** The name of the token that paused it. */
  paused_by: string | null;
  /** Most of its tasks running at once across all workers, if limited. */
  global_limit: number | null;
  /** Its unfinished tasks by status. */
  counts: { waiting: number; queued: number; running: number };
  /** Seconds the task that has waited longest since it became due has waited; null when none waits. */
  oldest_queued_seconds: number | null;
}

/** What `createSchedule` takes (and, as a merge patch, `updateSchedule`), in camelCase. */
export interface ScheduleInput {
  /** Its name: letters, digits, `-`, `_`, `.`; it can't change. */
  name: string;
  /** Five fields (or six, seconds first), or `@daily` and the like. */
  cron: string;
  /** An IANA zone the expression is read in; "UTC" by default. */
  timezone?: string;
  /** The kind of the task each tick makes, and its payload. */
  kind: string;
  payload?: unknown;
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  /** Seconds one attempt may run. */
  timeout?: number;
  /** Ticks that passed while no errand ran: none (`skip`) or one task for them all (`once`). */
  missed?: 'skip' | 'once';
  /** `skip`: no task while its last one has not ended. */
  overlap?: 'allow' | 'skip';
}

/** A merge patch of a schedule (RFC 7396): the fields to change; `null` takes one back to its default. */
export type SchedulePatch = {
  [K in Exclude<keyof ScheduleInput, 'name'>]?: ScheduleInput[K] | null;
};

/** A schedule, as `GET /v1/schedules/{name}` shows it. */
export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  kind: string;
  payload: unknown;
  queue?: string;
  priority?: number;
  max_attempts?: number;
  timeout?: number;
  missed: 'skip' | 'once';
  overlap: 'allow' | 'skip';
  /** Whose its tasks are, and their product. */
  owner: string;
  product: string | null;
  /** `config`: declared in the configuration (here only paused and resumed); `api`: made here. */
  source: 'config' | 'api';
  /** While paused, its ticks make no task. */
  paused: boolean;
  paused_at: string | null;
  paused_by: string | null;
  /** Its next five ticks. */
  next_ticks: string[];
  /** The task of its latest tick that made one, if it still exists. */
  last_task: { token: string; status: Status; scheduled_for: string | null; self: string } | null;
  created_at: string;
  updated_at: string;
  links: { self: string; tasks: string };
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface Client {
  /** Creates a task: the task as accepted (`202`). Retried when lost only with an `idempotencyKey`. */
  create(kind: string, payload?: unknown, opts?: CreateOptions): Promise<Task>;
  /** Creates up to `http.max_batch` tasks in one request, all or none: their tokens, in order. */
  createBatch(tasks: BatchTask[], opts?: { idempotencyKey?: string; signal?: AbortSignal }): Promise<string[]>;
  get(token: string, opts?: RequestOptions): Promise<Task>;
  /** Resolves with the task once it has ended, whatever its status. */
  wait(token: string, opts?: WaitOptions): Promise<Task>;
  /**
   * Creates a task and waits for it: the completed task; rejects with a
   * `TaskFailedError` if it fails, is cancelled, dropped or expires, with a
   * `ProblemError` if errand refuses it.
   */
  run(kind: string, payload?: unknown, opts?: RunOptions): Promise<Task>;
  cancel(token: string, opts?: RequestOptions): Promise<Task>;
  retry(token: string, opts?: RequestOptions): Promise<Task>;
  list(filter?: TaskFilter & { limit?: number; cursor?: string }, opts?: RequestOptions): Promise<TaskPage>;
  stats(params?: TaskFilter & { interval?: string; since?: string | Date }, opts?: RequestOptions): Promise<TaskStats>;
  /** Cancels every task the filter matches that has not ended (superusers); `all: true` with an empty filter. */
  cancelMatching(
    filter: TaskFilter & { all?: boolean },
    opts?: RequestOptions,
  ): Promise<{ cancelled: number; cancel_requested: number }>;
  /** Re-queues every failed, cancelled, dropped or expired task the filter matches (superusers); `all: true` with an empty filter. */
  retryMatching(filter: TaskFilter & { all?: boolean }, opts?: RequestOptions): Promise<{ retried: number }>;
  workers(opts?: RequestOptions): Promise<{ workers: Worker[] }>;
  me(opts?: RequestOptions): Promise<Me>;
  /** Every queue errand knows of, by name (admins, superusers). */
  queues(opts?: RequestOptions): Promise<{ queues: Queue[] }>;
  /** No worker starts the queue's tasks until it is resumed (superusers); pausing a paused queue is harmless. */
  pauseQueue(name: string, opts?: RequestOptions): Promise<Queue>;
  resumeQueue(name: string, opts?: RequestOptions): Promise<Queue>;
  /** The schedules the token may see, by name (superusers: all; admins: their product's). */
  schedules(opts?: RequestOptions): Promise<{ schedules: Schedule[] }>;
  schedule(name: string, opts?: RequestOptions): Promise<Schedule>;
  /** Makes a schedule whose tasks are the token's; a `ProblemError` 409 if the name is taken. */
  createSchedule(schedule: ScheduleInput, opts?: RequestOptions): Promise<Schedule>;
  /** Changes a schedule made over the API (one of the configuration is 409). */
  updateSchedule(name: string, patch: SchedulePatch, opts?: RequestOptions): Promise<Schedule>;
  /** Deletes a schedule made over the API; its tasks stay. */
  deleteSchedule(name: string, opts?: RequestOptions): Promise<null>;
  /** Its ticks make no task until it is resumed. */
  pauseSchedule(name: string, opts?: RequestOptions): Promise<Schedule>;
  /** It fires again from its first tick after now. */
  resumeSchedule(name: string, opts?: RequestOptions): Promise<Schedule>;
}

export function createClient(options: ClientOptions): Client;

export class ErrandError extends Error {}

export class ProblemError extends ErrandError {
  status: number;
  problem: Problem;
  type?: string;
  title?: string;
  detail?: string;
}

/** The task ended without completing: failed, cancelled, dropped or expired (not started by its start deadline). */
export class TaskFailedError extends ErrandError {
  task: Task;
  status: Status;
}
