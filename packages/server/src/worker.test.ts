import { BackendUnavailableError, PayloadTooLargeError } from '@consortium/core';
import type {
  ApplyOutcome,
  ClaimedTask,
  Clock,
  Coordinator,
  Held,
  NodeProvider,
  ProviderTask,
  Queue,
} from '@consortium/core';
import { Writable } from 'node:stream';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskMessage } from './protocol.js';
import { RESULT_QUEUE, TASK_QUEUE, decodeResultMessage, encodeTaskMessage } from './protocol.js';
import type { WorkerDeps } from './worker.js';
import { Worker } from './worker.js';

/** Failures to throw, in order, before the real call; one list per operation. */
interface Faults {
  readonly enqueueResult: Error[];
  readonly ackTask: Error[];
  /** Every lock is granted at once, as if etcd had dropped the one held (a restart). */
  readonly locksDropped?: boolean;
}

/** Stands for a lock that was dropped: held by nobody, lost already. */
const droppedLock: Held = { token: '0', lost: AbortSignal.abort(), release: () => Promise.resolve() };

/** A coordinator whose `results` enqueues and `tasks` acks first fail with `faults` (etcd restarting). */
function flaky(inner: Coordinator, faults: Faults): Coordinator {
  const wrap = (name: string, queue: Queue): Queue => ({
    enqueue: (task) => {
      const fault = name === RESULT_QUEUE ? faults.enqueueResult.shift() : undefined;
      return fault === undefined ? queue.enqueue(task) : Promise.reject(fault);
    },
    claim: (worker, signal) => queue.claim(worker, signal),
    claimMany: (worker, max, signal) => queue.claimMany(worker, max, signal),
    ack: (task) => {
      const fault = name === TASK_QUEUE ? faults.ackTask.shift() : undefined;
      return fault === undefined ? queue.ack(task) : Promise.reject(fault);
    },
    fail: (task, error) => queue.fail(task, error),
    stats: () => queue.stats(),
    deadLetters: () => queue.deadLetters(),
  });
  return {
    memberId: inner.memberId,
    campaign: (election, signal) => inner.campaign(election, signal),
    lock: (key, signal) =>
      faults.locksDropped === true ? Promise.resolve(droppedLock) : inner.lock(key, signal),
    queue: (name) => wrap(name, inner.queue(name)),
    notify: (topic, message) => inner.notify(topic, message),
    subscribe: (prefix, listener) => inner.subscribe(prefix, listener),
    close: () => inner.close(),
  };
}

/** A winston logger that keeps `level: message` lines for assertions. */
function recordingLogger(): { logger: winston.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, next): void {
      lines.push(chunk.toString('utf8').trimEnd());
      next();
    },
  });
  const format = winston.format.printf((info) => `${info.level}: ${String(info.message)}`);
  const transports = [new winston.transports.Stream({ stream })];
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston types its transports loosely
  return { logger: winston.createLogger({ level: 'debug', format, transports }), lines };
}

/** Real time with short sleeps, so that retries do not slow the test. */
const fastClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.min(ms, 10));
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    }),
};

/** A provider that accepts every update, after `delayMs`, and counts how many runs of one task overlap. */
function countingProvider(delayMs = 0): { provider: NodeProvider; runs: string[]; maxOverlap: () => number } {
  const running = new Map<string, number>();
  const runs: string[] = [];
  let maxOverlap = 0;
  const provider: NodeProvider = {
    name: 'p',
    kind: 'host',
    claims: [],
    apply: async (task: ProviderTask): Promise<ApplyOutcome> => {
      const now = (running.get(task.id) ?? 0) + 1;
      running.set(task.id, now);
      maxOverlap = Math.max(maxOverlap, now);
      runs.push(`${task.id}#${task.attempt}`);
      try {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        return { accepted: task.updates.map((u) => u.id) };
      } finally {
        running.set(task.id, (running.get(task.id) ?? 1) - 1);
      }
    },
    explain: () => Promise.resolve({}),
  };
  return { provider, runs, maxOverlap: () => maxOverlap };
}

function kindsOf(provider: NodeProvider): WorkerDeps['kinds'] {
  return new Map([['host', { providers: new Map([['p', provider]]) }]]);
}

function taskMessage(jobId: string, attempt = 1): TaskMessage {
  const task: ProviderTask = {
    id: `${jobId}/r1/p`,
    jobId,
    round: 1,
    attempt,
    provider: 'p',
    kind: 'host',
    name: 'h1',
    node: {},
    updates: [],
  };
  return { task, fencingToken: '1' };
}

async function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`Timed out after ${ms} ms waiting for ${what}`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('Worker', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  /** Options of `start`. */
  interface Start {
    readonly faults?: Faults;
    readonly provider?: NodeProvider;
    readonly concurrency?: number;
    /** Worker processes (members), each running a `Worker`. */
    readonly workers?: number;
  }

  /** Workers over (flaky) members of a fresh cluster, and a member playing the master. */
  function start(options: Start = {}): { master: MemoryCoordinator; done: Promise<void>; lines: string[] } {
    const cluster = new MemoryCluster();
    const master = new MemoryCoordinator(cluster, { memberId: 'master' });
    const { logger, lines } = recordingLogger();
    const kinds = kindsOf(options.provider ?? countingProvider().provider);
    const stop = new AbortController();
    const members: MemoryCoordinator[] = [];
    const runs: Promise<void>[] = [];
    for (let i = 0; i < (options.workers ?? 1); i++) {
      const member = new MemoryCoordinator(cluster, {
        memberId: `worker-${i}`,
        retryBackoff: { initialMs: 10, factor: 1, maxMs: 10 },
      });
      members.push(member);
      const worker = new Worker({
        coordinator: options.faults === undefined ? member : flaky(member, options.faults),
        kinds,
        logger,
        clock: fastClock,
        concurrency: options.concurrency ?? 1,
      });
      runs.push(worker.run(stop.signal));
    }
    const done = Promise.all(runs).then(() => undefined);
    done.catch(() => undefined);
    stops.push(async () => {
      stop.abort();
      await done.catch(() => undefined);
      await Promise.all([...members, master].map((m) => m.close()));
    });
    return { master, done, lines };
  }

  /** Claims the next result as the master would; fails at once, with its error, when the worker stopped. */
  async function claimResult(master: Coordinator, done: Promise<void>): Promise<ClaimedTask> {
    const scope = new AbortController();
    const stopped = done.then(
      () => Promise.reject(new Error('the worker stopped')),
      (error: unknown) => Promise.reject(new Error(`the worker died: ${String(error)}`)),
    );
    try {
      return await within(
        Promise.race([master.queue(RESULT_QUEUE).claim('master', scope.signal), stopped]),
        'a result',
      );
    } finally {
      scope.abort();
    }
  }

  it('keeps running while etcd is unavailable; hands the result back once it returns', async () => {
    const unavailable = (): Error =>
      new BackendUnavailableError('etcd is unavailable (14 UNAVAILABLE: Connection dropped)');
    const { master, done, lines } = start({
      faults: { enqueueResult: [unavailable(), unavailable()], ackTask: [unavailable()] },
    });
    const tasks = master.queue(TASK_QUEUE);
    await tasks.enqueue({ id: 'j1/r1/p#1', payload: encodeTaskMessage(taskMessage('j1')) });

    const first = await claimResult(master, done);
    expect(first.id).toBe('j1/r1/p#1');
    expect(decodeResultMessage(first.payload).jobId).toBe('j1');
    expect(await master.queue(RESULT_QUEUE).ack(first)).toBe(true);
    await expect.poll(async () => (await tasks.stats()).claimed).toBe(0);
    expect(await tasks.stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
    expect(lines.filter((line) => line.includes('failed; retrying'))).toEqual([
      'warn: enqueueing a result failed; retrying',
      'warn: enqueueing a result failed; retrying',
      'warn: acking a task failed; retrying',
    ]);

    // The worker is still there and claims the next task.
    await tasks.enqueue({ id: 'j2/r1/p#1', payload: encodeTaskMessage(taskMessage('j2')) });
    expect((await claimResult(master, done)).id).toBe('j2/r1/p#1');
    const settled = await Promise.race([
      done.then(
        () => 'resolved',
        (error: unknown) => `rejected: ${String(error)}`,
      ),
      new Promise((resolve) => {
        setTimeout(() => {
          resolve('running');
        }, 50);
      }),
    ]);
    expect(settled).toBe('running');
  });

  it('gives a task whose result is refused for good back to the queue, not keeping its claim', async () => {
    const { master, done, lines } = start({
      faults: { enqueueResult: [new PayloadTooLargeError('the task record is too large')], ackTask: [] },
    });
    const tasks = master.queue(TASK_QUEUE);
    await tasks.enqueue({ id: 'j1/r1/p#1', payload: encodeTaskMessage(taskMessage('j1')) });

    // Given back with a backoff, then claimed and run again; the second result goes through.
    const result = await claimResult(master, done);
    expect(result.id).toBe('j1/r1/p#1');
    expect(lines).toContain('error: the result was refused; the task is given back to run again');
    expect(lines.some((line) => line.includes('retrying'))).toBe(false);
  });

  it.each([
    ['slots of one worker', { concurrency: 2, workers: 1 }],
    ['workers', { concurrency: 1, workers: 2 }],
  ])('never runs two attempts of one task at the same time, across %s', async (_, shape) => {
    // A resumed job's new attempt while the old one is still queued: run side by side, two look-ups that both
    // miss would make two VMs.
    const counting = countingProvider(100);
    const { master, done } = start({ provider: counting.provider, ...shape });
    const tasks = master.queue(TASK_QUEUE);
    await tasks.enqueue({ id: 'j1/r1/p#1', payload: encodeTaskMessage(taskMessage('j1', 1)) });
    await tasks.enqueue({ id: 'j1/r1/p#2', payload: encodeTaskMessage(taskMessage('j1', 2)) });
    await tasks.enqueue({ id: 'j2/r1/p#1', payload: encodeTaskMessage(taskMessage('j2', 1)) });

    const results = [];
    for (let i = 0; i < 3; i++) results.push((await claimResult(master, done)).id);
    expect(results.sort()).toEqual(['j1/r1/p#1', 'j1/r1/p#2', 'j2/r1/p#1']);
    expect(counting.runs.sort()).toEqual(['j1/r1/p#1', 'j1/r1/p#2', 'j2/r1/p#1']);
    expect(counting.maxOverlap()).toBe(1);
  });

  it('keeps attempts of one task apart in one worker even when etcd dropped the lock', async () => {
    const counting = countingProvider(100);
    const { master, done } = start({
      provider: counting.provider,
      concurrency: 2,
      faults: { enqueueResult: [], ackTask: [], locksDropped: true },
    });
    const tasks = master.queue(TASK_QUEUE);
    await tasks.enqueue({ id: 'j1/r1/p#1', payload: encodeTaskMessage(taskMessage('j1', 1)) });
    await tasks.enqueue({ id: 'j1/r1/p#2', payload: encodeTaskMessage(taskMessage('j1', 2)) });

    const results = [(await claimResult(master, done)).id, (await claimResult(master, done)).id];
    expect(results.sort()).toEqual(['j1/r1/p#1', 'j1/r1/p#2']);
    expect(counting.maxOverlap()).toBe(1);
  });
});
