// Types of errand's JavaScript client (index.js).

/** Where a task is in its life. */
export type Status =
  | 'waiting'
  | 'queued'
  | 'running'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'dropped';

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

/** A filter of `GET /v1/tasks` (and of stats and bulk cancel). */
export interface TaskFilter {
  status?: Status | Status[];
  kind?: string | string[];
  queue?: string | string[];
  owner?: string | string[];
  product?: string | string[];
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
    intervals: Array<{ start: string; ended: Record<'completed' | 'failed' | 'cancelled' | 'dropped', number> }>;
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
    retry: boolean;
    cancel_matching: boolean;
    stats: boolean;
    workers: boolean;
  };
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
   * `TaskFailedError` if it fails, is cancelled or dropped, with a
   * `ProblemError` if errand refuses it.
   */
  run(kind: string, payload?: unknown, opts?: RunOptions): Promise<Task>;
  cancel(token: string, opts?: RequestOptions): Promise<Task>;
  retry(token: string, opts?: RequestOptions): Promise<Task>;
  list(filter?: TaskFilter & { limit?: number; cursor?: string }, opts?: RequestOptions): Promise<TaskPage>;
  stats(params?: TaskFilter & { interval?: string; since?: string | Date }, opts?: RequestOptions): Promise<TaskStats>;
  cancelMatching(
    filter: TaskFilter & { all?: boolean },
    opts?: RequestOptions,
  ): Promise<{ cancelled: number; cancel_requested: number }>;
  workers(opts?: RequestOptions): Promise<{ workers: Worker[] }>;
  me(opts?: RequestOptions): Promise<Me>;
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

export class TaskFailedError extends ErrandError {
  task: Task;
  status: Status;
}
