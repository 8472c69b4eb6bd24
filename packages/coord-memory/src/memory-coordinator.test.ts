import { CancelledError, ConflictError, InputError, LeaseLostError, NotFoundError } from '@consortium/core';
import type { ErrorInfo, JsonValue } from '@consortium/core';
import { describeCoordinatorContract } from '@consortium/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryCluster } from './memory-cluster.js';
import { MemoryCoordinator } from './memory-coordinator.js';

describeCoordinatorContract('memory', ({ retryBackoff }) => {
  const cluster = new MemoryCluster();
  const first = new MemoryCoordinator(cluster, { memberId: 'm0', retryBackoff });
  const second = new MemoryCoordinator(cluster, { memberId: 'm1', retryBackoff });
  const members = [first, second] as const;
  return Promise.resolve({
    members,
    cleanup: async () => {
      await Promise.all(members.map((member) => member.close()));
    },
    kill: (i: 0 | 1) => {
      cluster.kill(members[i].memberId);
      return Promise.resolve();
    },
  });
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

function expectError(
  error: unknown,
  errorClass: abstract new (...args: never[]) => Error,
  message: string,
): void {
  expect(error).toBeInstanceOf(errorClass);
  expect((error as Error).message).toBe(message);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const failure: ErrorInfo = { code: 'BACKEND_UNAVAILABLE', message: 'bmc timed out', retryable: true };
const backoff = { initialMs: 100, factor: 2, maxMs: 500 };

describe('MemoryCoordinator', () => {
  const stop = new AbortController();
  afterEach(() => {
    vi.useRealTimers();
  });

  function pair(
    options: { retryBackoff?: typeof backoff } = {},
  ): [MemoryCluster, MemoryCoordinator, MemoryCoordinator] {
    const cluster = new MemoryCluster();
    return [
      cluster,
      new MemoryCoordinator(cluster, { memberId: 'm0', ...options }),
      new MemoryCoordinator(cluster, { memberId: 'm1', ...options }),
    ];
  }

  describe('construction', () => {
    it('rejects a bad retry backoff with InputError', () => {
      const cluster = new MemoryCluster();
      const make = (retryBackoff: typeof backoff) => () => new MemoryCoordinator(cluster, { retryBackoff });
      expectError(
        thrown(make({ initialMs: -1, factor: 2, maxMs: 10 })),
        InputError,
        'retryBackoff.initialMs must be a finite number >= 0, got -1',
      );
      expectError(
        thrown(make({ initialMs: 1, factor: 0.5, maxMs: 10 })),
        InputError,
        'retryBackoff.factor must be a finite number >= 1, got 0.5',
      );
      expectError(
        thrown(make({ initialMs: 100, factor: 2, maxMs: 10 })),
        InputError,
        'retryBackoff.maxMs must be a finite number >= initialMs, got 10',
      );
      expect(cluster.memberIds()).toEqual([]);
    });

    it('refuses an id that an open member has, and takes it again once that member closed', async () => {
      const cluster = new MemoryCluster();
      const member = new MemoryCoordinator(cluster, { memberId: 'm0' });
      expectError(
        thrown(() => new MemoryCoordinator(cluster, { memberId: 'm0' })),
        ConflictError,
        'Member m0 has already joined this cluster',
      );
      expectError(
        thrown(() => new MemoryCoordinator(cluster, { memberId: '' })),
        InputError,
        'memberId must not be empty',
      );
      await member.close();
      expect(new MemoryCoordinator(cluster, { memberId: 'm0' }).memberId).toBe('m0');
    });

    it('makes up distinct ids and lists open members in joining order', async () => {
      const cluster = new MemoryCluster();
      const x = new MemoryCoordinator(cluster);
      const y = new MemoryCoordinator(cluster);
      expect(x.memberId).toMatch(/^memory-[0-9a-f-]{36}$/);
      expect(x.memberId).not.toBe(y.memberId);
      expect(cluster.memberIds()).toEqual([x.memberId, y.memberId]);
      await x.close();
      expect(cluster.memberIds()).toEqual([y.memberId]);
    });

    it('keeps clusters apart', async () => {
      const [, m0] = pair();
      const [, other] = pair();
      await m0.lock('k', stop.signal);
      await other.lock('k', stop.signal);
      await m0.queue('q').enqueue({ id: 't1', payload: null });
      expect(await other.queue('q').stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
    });
  });

  describe('sessions', () => {
    it('kill() expires the session: lost, pending waits and later calls fail with LeaseLostError', async () => {
      const [cluster, m0, m1] = pair();
      const lock = await m1.lock('k', stop.signal);
      const held = await m0.lock('other', stop.signal);
      const waiting = rejection(m0.lock('k', stop.signal));
      const claiming = rejection(m0.queue('q').claim('w', stop.signal));
      cluster.kill('m0');

      expect(held.lost.aborted).toBe(true);
      expectError(held.lost.reason, LeaseLostError, 'Session of member m0 expired');
      expectError(await waiting, LeaseLostError, 'Session of member m0 expired');
      expectError(await claiming, LeaseLostError, 'Session of member m0 expired');
      expectError(await rejection(m0.lock('x', stop.signal)), LeaseLostError, 'Session of member m0 expired');
      expectError(await rejection(m0.notify('t', null)), LeaseLostError, 'Session of member m0 expired');
      expect(lock.lost.aborted).toBe(false);
      expect(cluster.memberIds()).toEqual(['m1']);
      await m0.close();
      expectError(await rejection(m0.queue('q').stats()), LeaseLostError, 'Session of member m0 expired');
    });

    it('kill() of an unknown or ended member throws NotFoundError', async () => {
      const [cluster, m0] = pair();
      expectError(
        thrown(() => {
          cluster.kill('nope');
        }),
        NotFoundError,
        'No open member nope in this cluster',
      );
      await m0.close();
      expectError(
        thrown(() => {
          cluster.kill('m0');
        }),
        NotFoundError,
        'No open member m0 in this cluster',
      );
    });

    it('close() loses holds with LeaseLostError and refuses later calls with CancelledError', async () => {
      const [, m0] = pair();
      const held = await m0.campaign('e', stop.signal);
      const unsubscribe = m0.subscribe('', () => undefined);
      await m0.close();
      expectError(held.lost.reason, LeaseLostError, 'Session of member m0 closed');
      const closed = 'Coordinator m0 closed';
      expectError(await rejection(m0.campaign('e', stop.signal)), CancelledError, closed);
      expectError(await rejection(m0.queue('q').enqueue({ id: 't', payload: null })), CancelledError, closed);
      expectError(await rejection(m0.queue('q').deadLetters()), CancelledError, closed);
      expectError(
        thrown(() => m0.subscribe('', () => undefined)),
        CancelledError,
        closed,
      );
      unsubscribe();
      await held.release();
    });

    it('dead-letters a task whose last attempt was lost with its member', async () => {
      const [cluster, m0, m1] = pair();
      await m0.queue('q').enqueue({ id: 't1', payload: 'p', maxAttempts: 1 });
      await m0.queue('q').claim('worker-7', stop.signal);
      cluster.kill('m0');
      expect(await m1.queue('q').stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 1 });
      expect(await m1.queue('q').deadLetters()).toEqual([
        {
          id: 't1',
          payload: 'p',
          attempts: 1,
          error: {
            code: 'LEASE_LOST',
            message: 'Worker worker-7 of member m0 lost its lease',
            retryable: true,
          },
        },
      ]);
    });
  });

  describe('holds', () => {
    it('aborts lost with CancelledError on release', async () => {
      const [, m0] = pair();
      const lock = await m0.lock('k', stop.signal);
      const leadership = await m0.campaign('e', stop.signal);
      await lock.release();
      await leadership.release();
      expectError(lock.lost.reason, CancelledError, 'Lock "k" released');
      expectError(leadership.lost.reason, CancelledError, 'Leadership of election "e" released');
    });

    it('excludes two lock() calls of the same member, too', async () => {
      const [, m0] = pair();
      const first = await m0.lock('k', stop.signal);
      let second = false;
      const next = m0.lock('k', stop.signal).then((held) => {
        second = true;
        return held;
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(second).toBe(false);
      await first.release();
      expect(BigInt((await next).token)).toBeGreaterThan(BigInt(first.token));
    });

    it('passes a cancelled signal reason on as the cause', async () => {
      const [, m0] = pair();
      const reason = new Error('shutting down');
      const error = await rejection(m0.lock('k', AbortSignal.abort(reason)));
      expectError(error, CancelledError, 'Waiting for lock "k" cancelled');
      expect((error as Error).cause).toBe(reason);
    });
  });

  describe('queue', () => {
    it('rejects malformed tasks with InputError', async () => {
      const [, m0] = pair();
      const q = m0.queue('q');
      expectError(
        await rejection(q.enqueue({ id: '', payload: null })),
        InputError,
        'Task id must be a non-empty string',
      );
      expectError(
        await rejection(q.enqueue({ id: 't', payload: null, priority: Number.NaN })),
        InputError,
        'Task t: priority must be a finite number',
      );
      expectError(
        await rejection(q.enqueue({ id: 't', payload: null, notBefore: Number.POSITIVE_INFINITY })),
        InputError,
        'Task t: notBefore must be a finite number',
      );
      expectError(
        await rejection(q.enqueue({ id: 't', payload: null, maxAttempts: 0 })),
        InputError,
        'Task t: maxAttempts must be a positive integer',
      );
      expect(await q.stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
    });

    it('stores copies of payloads, errors and messages', async () => {
      const [, m0, m1] = pair({ retryBackoff: { initialMs: 0, factor: 1, maxMs: 0 } });
      const payload = { list: [1, 2] };
      await m0.queue('q').enqueue({ id: 't1', payload, maxAttempts: 2 });
      payload.list.push(3);
      const task = await m1.queue('q').claim('w', stop.signal);
      expect(task.payload).toEqual({ list: [1, 2] });
      (task.payload as { list: number[] }).list.push(4);
      const details = { attempt: 1 };
      await m1.queue('q').fail(task, { ...failure, details });
      details.attempt = 2;

      const received: JsonValue[] = [];
      m1.subscribe('t', (_, message) => {
        received.push(message);
      });
      const message = { n: 1 };
      await m0.notify('t', message);
      message.n = 2;
      await new Promise((resolve) => setImmediate(resolve));
      expect(received).toEqual([{ n: 1 }]);

      const again = await m1.queue('q').claim('w', stop.signal);
      expect(again.payload).toEqual({ list: [1, 2] });
      await m1.queue('q').fail(again, { ...failure, details });
      expect(await m0.queue('q').deadLetters()).toEqual([
        { id: 't1', payload: { list: [1, 2] }, attempts: 2, error: { ...failure, details: { attempt: 2 } } },
      ]);
    });

    it('serves waiting claims in arrival order', async () => {
      const [, m0, m1] = pair();
      const claims = [
        m1.queue('q').claim('w1', stop.signal),
        m0.queue('q').claim('w2', stop.signal),
        m1.queue('q').claim('w3', stop.signal),
      ];
      for (const id of ['t1', 't2', 't3']) await m0.queue('q').enqueue({ id, payload: null });
      expect((await Promise.all(claims)).map((task) => task.id)).toEqual(['t1', 't2', 't3']);
    });

    it('holds a retried task back for exactly its backoff and keeps no timer without waiters', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const [, m0, m1] = pair({ retryBackoff: backoff });
      const q = m0.queue('q');
      await q.enqueue({ id: 't1', payload: null });
      expect(await q.fail(await q.claim('w', stop.signal), failure)).toBe('retry');
      expect(vi.getTimerCount()).toBe(0);

      let claimed = false;
      const next = m1
        .queue('q')
        .claim('w', stop.signal)
        .then((task) => {
          claimed = true;
          return task;
        });
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(backoff.initialMs - 1);
      expect(claimed).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(claimed).toBe(true);
      expect((await next).attempt).toBe(2);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('clears its timer when the last waiter leaves', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const [, m0, m1] = pair();
      await m0.queue('q').enqueue({ id: 't1', payload: null, notBefore: Date.now() + 1000 });
      const controller = new AbortController();
      const aborted = rejection(m0.queue('q').claim('w', controller.signal));
      const closed = rejection(m1.queue('q').claim('w', stop.signal));
      expect(vi.getTimerCount()).toBe(1);
      controller.abort();
      expect(vi.getTimerCount()).toBe(1);
      await m1.close();
      expect(vi.getTimerCount()).toBe(0);
      expectError(await aborted, CancelledError, 'Claim on queue "q" cancelled');
      expectError(await closed, CancelledError, 'Coordinator m1 closed');
      expect(await m0.queue('q').stats()).toEqual({ ready: 0, delayed: 1, claimed: 0, dead: 0 });
    });

    it('waits out a notBefore beyond the longest timer delay without firing early', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const [, m0] = pair();
      const month = 30 * 24 * 3600 * 1000;
      await m0.queue('q').enqueue({ id: 't1', payload: null, notBefore: Date.now() + month });
      let claimed = false;
      const next = m0
        .queue('q')
        .claim('w', stop.signal)
        .then((task) => {
          claimed = true;
          return task;
        });
      await vi.advanceTimersByTimeAsync(2 ** 31);
      expect(claimed).toBe(false);
      await vi.advanceTimersByTimeAsync(month - 2 ** 31 - 1);
      expect(claimed).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect((await next).id).toBe('t1');
    });

    it('orders a task that came due before a later enqueue first, though nothing claimed in between', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const [, m0] = pair();
      const q = m0.queue('q');
      await q.enqueue({ id: 'delayed', payload: null, notBefore: Date.now() + 100 });
      vi.advanceTimersByTime(200);
      await q.enqueue({ id: 'fresh', payload: null });
      expect((await q.claim('w', stop.signal)).id).toBe('delayed');
      expect((await q.claim('w', stop.signal)).id).toBe('fresh');
    });
  });

  describe('notifications', () => {
    it('logs a throwing listener and still delivers to the others', async () => {
      const cluster = new MemoryCluster();
      const errors: [string, Record<string, unknown> | undefined][] = [];
      const m0 = new MemoryCoordinator(cluster, {
        logger: {
          error: (message, meta) => {
            errors.push([message, meta]);
          },
        },
      });
      const received: string[] = [];
      m0.subscribe('jobs/', () => {
        throw new NotFoundError('no such job');
      });
      m0.subscribe('jobs/', (topic) => {
        received.push(topic);
      });
      await m0.notify('jobs/j1', null);
      await new Promise((resolve) => setImmediate(resolve));
      expect(received).toEqual(['jobs/j1']);
      expect(errors).toEqual([
        [
          'Notification listener failed',
          {
            topic: 'jobs/j1',
            prefix: 'jobs/',
            error: { code: 'NOT_FOUND', message: 'no such job', retryable: false },
          },
        ],
      ]);
    });

    it('stops delivering to a member once it closed', async () => {
      const [, m0, m1] = pair();
      const received: string[] = [];
      m1.subscribe('', (topic) => {
        received.push(topic);
      });
      await m0.notify('before', null);
      await m1.close();
      await m0.notify('after', null);
      await new Promise((resolve) => setImmediate(resolve));
      expect(received).toEqual(['before']);
    });
  });
});

describe('MemoryCluster firstRevision', () => {
  it('starts fencing tokens after the given revision, so a restarted process outranks its earlier runs', async () => {
    const member = new MemoryCoordinator(new MemoryCluster({ firstRevision: 1_700_000_000_000 }));
    const held = await member.campaign('master', new AbortController().signal);
    expect(BigInt(held.token)).toBeGreaterThan(1_700_000_000_000n);
    await held.release();
    await member.close();
  });
});
