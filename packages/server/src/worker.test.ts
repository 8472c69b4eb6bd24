import { BackendUnavailableError, PayloadTooLargeError } from '@consortium/core';
import type {
  ApplyOutcome,
  ClaimedTask,
  Clock,
  Coordinator,
  JsonValue,
  NodeProvider,
  ProviderTask,
  Queue,
} from '@consortium/core';
import { Writable } from 'node:stream';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResultMessage, TaskMessage } from './master.js';
import { RESULT_QUEUE, TASK_QUEUE } from './master.js';
import type { KindRuntime, Kinds } from './plugins.js';
import { Worker } from './worker.js';

/** Failures to throw, in order, before the real call; one list per operation. */
interface Faults {
  readonly enqueueResult: Error[];
  readonly ackTask: Error[];
}

/** A coordinator whose `results` enqueues and `tasks` acks fail first with the given errors, as etcd does while it restarts. */
function flaky(inner: Coordinator, faults: Faults): Coordinator {
  const wrap = (name: string, queue: Queue): Queue => ({
    enqueue: (task) => {
      const fault = name === RESULT_QUEUE ? faults.enqueueResult.shift() : undefined;
      return fault === undefined ? queue.enqueue(task) : Promise.reject(fault);
    },
    claim: (worker, signal) => queue.claim(worker, signal),
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
    lock: (key, signal) => inner.lock(key, signal),
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
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston types its transports loosely
  const transports = [new winston.transports.Stream({ stream })];
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

const provider: NodeProvider = {
  apply: (task): Promise<ApplyOutcome> => Promise.resolve({ accepted: task.updates.map((u) => u.id) }),
  explain: () => Promise.resolve({}),
} as unknown as NodeProvider;

const kinds: Kinds = new Map([['host', { providers: new Map([['p', provider]]) } as unknown as KindRuntime]]);

function taskMessage(jobId: string): TaskMessage {
  const task: ProviderTask = {
    id: `${jobId}/r1/p`,
    jobId,
    round: 1,
    attempt: 1,
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

  /** A worker over a flaky member of a fresh cluster, and a second member playing the master. */
  function start(faults: Faults): {
    master: MemoryCoordinator;
    done: Promise<void>;
    lines: string[];
  } {
    const cluster = new MemoryCluster();
    const master = new MemoryCoordinator(cluster, { memberId: 'master' });
    const member = new MemoryCoordinator(cluster, {
      memberId: 'worker',
      retryBackoff: { initialMs: 10, factor: 1, maxMs: 10 },
    });
    const { logger, lines } = recordingLogger();
    const worker = new Worker({
      coordinator: flaky(member, faults),
      kinds,
      logger,
      clock: fastClock,
      concurrency: 1,
    });
    const stop = new AbortController();
    const done = worker.run(stop.signal);
    done.catch(() => undefined);
    stops.push(async () => {
      stop.abort();
      await done.catch(() => undefined);
      await Promise.all([member.close(), master.close()]);
    });
    return { master, done, lines };
  }

  async function claimResult(master: Coordinator): Promise<ClaimedTask> {
    const scope = new AbortController();
    try {
      return await within(master.queue(RESULT_QUEUE).claim('master', scope.signal), 'a result');
    } finally {
      scope.abort();
    }
  }

  it('keeps running while the coordinator is unavailable: the result is handed back and the task acked once it is back', async () => {
    const unavailable = (): Error =>
      new BackendUnavailableError('etcd is unavailable (14 UNAVAILABLE: Connection dropped)');
    const { master, done, lines } = start({
      enqueueResult: [unavailable(), unavailable()],
      ackTask: [unavailable()],
    });
    const tasks = master.queue(TASK_QUEUE);
    await tasks.enqueue({ id: 'j1/r1/p#1', payload: taskMessage('j1') as unknown as JsonValue });

    const first = await claimResult(master);
    expect(first.id).toBe('j1/r1/p#1');
    expect((first.payload as unknown as ResultMessage).jobId).toBe('j1');
    expect(await master.queue(RESULT_QUEUE).ack(first)).toBe(true);
    await expect.poll(async () => (await tasks.stats()).claimed).toBe(0);
    expect(await tasks.stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
    expect(lines.filter((line) => line.includes('failed; retrying'))).toEqual([
      'warn: enqueueing a result failed; retrying',
      'warn: enqueueing a result failed; retrying',
      'warn: acking a task failed; retrying',
    ]);

    // The worker is still there and claims the next task.
    await tasks.enqueue({ id: 'j2/r1/p#1', payload: taskMessage('j2') as unknown as JsonValue });
    expect((await claimResult(master)).id).toBe('j2/r1/p#1');
    const settled = await Promise.race([
      done.then(
        () => 'resolved',
        (error: unknown) => `rejected: ${String(error)}`,
      ),
      new Promise((resolve) => setTimeout(() => resolve('running'), 50)),
    ]);
    expect(settled).toBe('running');
  });

  it('gives a task whose result is refused for good back to the queue rather than holding its claim', async () => {
    const { master, lines } = start({
      enqueueResult: [new PayloadTooLargeError('the task record is too large')],
      ackTask: [],
    });
    const tasks = master.queue(TASK_QUEUE);
    await tasks.enqueue({ id: 'j1/r1/p#1', payload: taskMessage('j1') as unknown as JsonValue });

    // Given back with a backoff, then claimed and run again; the second result goes through.
    const result = await claimResult(master);
    expect(result.id).toBe('j1/r1/p#1');
    expect(lines).toContain('error: the result was refused; the task is given back to run again');
    expect(lines.some((line) => line.includes('retrying'))).toBe(false);
  });
});
