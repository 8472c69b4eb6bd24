/**
 * What the API's routers share: their dependencies, the body types they take, query and header parsing, and the
 * look-ups every resource starts with (a kind's runtime, a node, a job). Every helper throws a core error.
 */
import type { BodyParserWorker } from './body.js';
import type { Request } from 'express';
import type {
  Clock,
  Coordinator,
  JobRecord,
  JobState,
  JsonValue,
  StoredNode,
  Store,
  UpdateRequest,
} from '@consortium/core';
import {
  InputError,
  NotFoundError,
  PreconditionFailedError,
  UnsupportedMediaTypeError,
  closestMatch,
  isJsonObject,
} from '@consortium/core';
import type winston from 'winston';
import type { HookPublisher } from '../hooks.js';
import type { Metrics } from '../metrics.js';
import type { KindRuntime, Kinds } from '../plugins.js';
import { JOB_TOPIC_PREFIX, decodeJobNotice, jobOfTopic } from '../protocol.js';
import { parseDecimalInteger } from './filters.js';

/** Dependencies of the web role. */
export interface WebDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly bodyLimit: string;
  /** Parses large request bodies off the event loop; one is started on first use when absent. */
  readonly bodyParser?: BodyParserWorker;
  readonly version: string;
  /** True when the process can serve: store reachable, plugins loaded. */
  readonly ready: () => Promise<boolean>;
  /** Proxies whose `X-Forwarded-*` headers are believed (express's `trust proxy`); none when undefined. */
  readonly trustProxy?: string | readonly string[];
  /** The built web console served at `/` (packages/console/dist when undefined). */
  readonly consoleDir?: string;
  /** Hears of nodes made without a job (adoptions: `node.created`); none when undefined. */
  readonly hooks?: HookPublisher;
}

/** RFC 7396 merge patch. */
export const MERGE_PATCH = 'application/merge-patch+json';
/** RFC 6902 JSON patch. */
export const JSON_PATCH = 'application/json-patch+json';
/** A list of proposed updates, as `consort` sends them (`key+=value` needs `add`). */
export const UPDATES = 'application/vnd.consortium.updates+json';
/** Job states after which nothing more happens. */
export const TERMINAL: readonly JobState[] = ['succeeded', 'failed', 'expired', 'cancelled'];
const MAX_WAIT_MS = 10 * 60_000;

/** Parses `?wait=30s` (also `500ms`, `2m`, or plain seconds); throws `InputError`. */
export function parseWait(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? /^(\d+)(ms|s|m)?$/.exec(value) : null;
  if (match === null)
    throw new InputError(`wait must look like 30s, 500ms or 2m, not ${JSON.stringify(value)}`);
  const amount = Number(match[1]);
  const ms = match[2] === 'ms' ? amount : match[2] === 'm' ? amount * 60_000 : amount * 1000;
  if (ms > MAX_WAIT_MS) throw new InputError(`wait is at most ${MAX_WAIT_MS / 60_000}m`);
  return ms;
}

/**
 * Parses `?limit=`: a whole number from 1 to `max` in decimal (`0x10` is refused, not read as 16), `fallback`
 * when absent; throws `InputError`.
 */
export function parseLimit(value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  return parseDecimalInteger('limit', value, 1, max);
}

/** A query parameter that may appear at most once; throws `InputError`. */
export function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InputError(`query parameter ${name} may appear only once`);
  return value;
}

/** Parses `If-Match`: a revision ETag (`"3"`, `W/"3"`) or `*`; throws `PreconditionFailedError` for anything else. */
export function parseIfMatch(header: string | undefined): number | '*' | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  const match = /^\s*(?:W\/)?"(\d+)"\s*$/.exec(header);
  if (match === null)
    throw new PreconditionFailedError(`If-Match must be an ETag such as "3", not ${header}`);
  return Number(match[1]);
}

/**
 * Refuses `__proto__` keys anywhere in a parsed body (JSON.parse makes them own properties; merged into other
 * objects they would reach a prototype); throws `InputError`. An explicit walk rather than a `JSON.parse` reviver,
 * which calls back into JavaScript for every value and held the event loop several times longer on large bodies.
 */
export function assertNoProtoKeys(body: unknown): void {
  const pending: object[] = typeof body === 'object' && body !== null ? [body] : [];
  while (pending.length > 0) {
    const value = pending.pop() as object;
    if (!Array.isArray(value) && Object.hasOwn(value, '__proto__')) {
      throw new InputError('the key "__proto__" is not allowed');
    }
    for (const item of Object.values(value) as unknown[]) {
      if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
}

/** Requires one of `types` as the request's Content-Type; throws `UnsupportedMediaTypeError`. */
export function requireBody(req: Request, types: readonly string[]): void {
  const type = req.headers['content-type'];
  if (type === undefined || req.is(types as string[]) === false) {
    throw new UnsupportedMediaTypeError(
      `Content-Type must be ${types.join(' or ')}${type === undefined ? '' : `, not ${type}`}`,
    );
  }
}

/** The runtime of a loaded kind; throws `NotFoundError` naming the known kinds. */
export function runtimeOf(kinds: Kinds, kind: string): KindRuntime {
  const runtime = kinds.get(kind);
  if (runtime === undefined) {
    const known = [...kinds.keys()].sort();
    const suggestion = closestMatch(kind, known);
    throw new NotFoundError(
      `unknown kind "${kind}" (${suggestion === undefined ? '' : `did you mean "${suggestion}"? `}known: ${known.join(', ')})`,
      { details: { kind } },
    );
  }
  return runtime;
}

/** A stored node; throws `NotFoundError`. */
export async function nodeOf(store: Store, kind: string, name: string): Promise<StoredNode> {
  const node = await store.getNode(kind, name);
  if (node === undefined)
    throw new NotFoundError(`${kind}/${name} does not exist`, { details: { kind, name } });
  return node;
}

/** A stored job; throws `NotFoundError`. */
export async function jobOf(store: Store, id: string): Promise<JobRecord> {
  const job = await store.getJob(id);
  if (job === undefined) throw new NotFoundError(`job ${id} does not exist`);
  return job;
}

/**
 * The wake-ups of the requests waiting for jobs in this process: one subscription to every job's topic, opened by
 * the first wait and kept as long as the coordinator, instead of one per request. A subscription per request cost a
 * watch set up on etcd per wait, and a job that ended before that watch stood was only seen by the next poll.
 * A waiter waits for the job's end, so only the notice of its `ended` event (or one this process cannot read) wakes
 * it: a wake-up per step cost a read of the job per step, to find it still running.
 */
class JobWakeups {
  readonly #waiters = new Map<string, Set<() => void>>();

  constructor(coordinator: Coordinator) {
    coordinator.subscribe(JOB_TOPIC_PREFIX, (topic, message) => {
      const notice = decodeJobNotice(message);
      if (notice?.kind === 'cancel' || (notice?.kind === 'event' && notice.type !== 'ended')) return;
      for (const wake of this.#waiters.get(jobOfTopic(topic)) ?? []) wake();
    });
  }

  /** Calls `wake` on every notice that job `id` may have ended, until the returned function is called. */
  listen(id: string, wake: () => void): () => void {
    let waiters = this.#waiters.get(id);
    if (waiters === undefined) {
      waiters = new Set();
      this.#waiters.set(id, waiters);
    }
    waiters.add(wake);
    return () => {
      waiters.delete(wake);
      if (waiters.size === 0 && this.#waiters.get(id) === waiters) this.#waiters.delete(id);
    };
  }
}

const wakeups = new WeakMap<Coordinator, JobWakeups>();

function jobWakeups(coordinator: Coordinator): JobWakeups {
  let found = wakeups.get(coordinator);
  if (found === undefined) {
    found = new JobWakeups(coordinator);
    wakeups.set(coordinator, found);
  }
  return found;
}

/**
 * Calls `wake` on every notice about job `id` until the returned function is called, through the process's one
 * subscription to every job's topic (one Map lookup per notice, however many requests and streams listen).
 */
export function listenForJob(coordinator: Coordinator, id: string, wake: () => void): () => void {
  return jobWakeups(coordinator).listen(id, wake);
}

/** Waits until a job ends or `ms` pass; returns the job as it then stands. */
export async function waitForJob(
  deps: Pick<WebDeps, 'store' | 'coordinator' | 'clock'>,
  id: string,
  ms: number,
): Promise<JobRecord> {
  const { store, coordinator, clock } = deps;
  const deadline = clock.now() + ms;
  // Listening starts before the first read, so that a notice sent after it wakes the wait.
  const notices = { count: 0 };
  let wake: (() => void) | undefined;
  const stop = jobWakeups(coordinator).listen(id, () => {
    notices.count += 1;
    wake?.();
  });
  try {
    for (;;) {
      const before = notices.count;
      const job = await store.getJob(id);
      if (job === undefined) throw new NotFoundError(`job ${id} does not exist`);
      const left = deadline - clock.now();
      if (TERMINAL.includes(job.state) || left <= 0) return job;
      // A notice during the read: read again rather than sleep past it.
      if (notices.count !== before) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    stop();
  }
}

/** Reads a body of `application/vnd.consortium.updates+json`: `[{path, op, value?}]`; throws `InputError`. */
export function updatesFromBody(body: unknown): UpdateRequest[] {
  if (!Array.isArray(body)) throw new InputError('an updates body must be an array of {path, op, value?}');
  const ops = ['set', 'unset', 'add', 'remove', 'merge'];
  return (body as unknown[]).map((item, i) => {
    if (!isJsonObject(item)) throw new InputError(`update ${i} must be an object`);
    const { path, op, value, ...rest } = item as { path?: unknown; op?: unknown; value?: JsonValue };
    if (Object.keys(rest).length > 0)
      throw new InputError(`update ${i} has unknown field(s) ${Object.keys(rest).join(', ')}`);
    if (typeof path !== 'string') throw new InputError(`update ${i} needs a string path`);
    if (typeof op !== 'string' || !ops.includes(op))
      throw new InputError(`update ${i}: op must be one of ${ops.join(', ')}`);
    return { path, op: op as UpdateRequest['op'], ...(value === undefined ? {} : { value }) };
  });
}
