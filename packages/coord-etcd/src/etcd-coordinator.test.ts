import { randomUUID } from 'node:crypto';
import { BackendUnavailableError, LeaseLostError } from '@consortium/core';
import type { Held, JsonValue, Logger } from '@consortium/core';
import {
  describeCoordinatorContract,
  eventually as eventuallyHolds,
  startEtcd,
  startTcpProxy,
} from '@consortium/testkit';
import type { EtcdHarness } from '@consortium/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EtcdCoordinator } from './etcd-coordinator.js';
import { countEtcdCalls, etcdCallCounts } from './etcd-kv.js';
import type { EtcdCoordinatorOptions } from './etcd-coordinator.js';

// A real etcd from the harness. Without one installed every test here fails (from beforeEach, so that the run
// counts failures, not skips) with the harness's install hint.
let etcd: EtcdHarness | undefined;
let admin: Etcd3 | undefined;
let startError: Error | undefined;

beforeAll(async () => {
  try {
    etcd = await startEtcd();
    admin = new Etcd3({ hosts: etcd.endpoint });
  } catch (error) {
    startError = error instanceof Error ? error : new Error(String(error));
  }
}, 30_000);

beforeEach(() => {
  server();
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

function server(): { etcd: EtcdHarness; admin: Etcd3 } {
  if (startError !== undefined) throw startError;
  if (etcd === undefined || admin === undefined) throw new Error('etcd did not start (see beforeAll)');
  return { etcd, admin };
}

/** Keeps the output quiet but records everything, so tests can assert on what was logged. */
function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const record =
    (level: string) =>
    (message: string): void => {
      lines.push(`${level}: ${message}`);
    };
  return {
    lines,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  };
}

const ttlSeconds = 3;

function member(
  prefix: string,
  memberId: string,
  options: Partial<EtcdCoordinatorOptions> = {},
): EtcdCoordinator {
  return new EtcdCoordinator({
    endpoints: [server().etcd.endpoint],
    prefix,
    memberId,
    leaseTtlSeconds: ttlSeconds,
    requestTimeoutMs: 2000,
    logger: recordingLogger(),
    ...options,
  });
}

/** Revokes a member's session lease from outside, as if it had expired. */
async function revokeSession(coordinator: EtcdCoordinator): Promise<void> {
  const leaseId = coordinator.leaseId;
  if (leaseId === undefined) throw new Error(`${coordinator.memberId} has no session to revoke`);
  await server().admin.leaseClient.leaseRevoke({ ID: leaseId });
}

describeCoordinatorContract('etcd', ({ retryBackoff }) => {
  const prefix = `/test/${randomUUID()}/`;
  const members = [member(prefix, 'm0', { retryBackoff }), member(prefix, 'm1', { retryBackoff })] as const;
  return Promise.resolve({
    members,
    cleanup: async () => {
      await Promise.all(members.map((m) => m.close()));
      await server().admin.delete().prefix(prefix);
    },
    kill: (i: 0 | 1) => revokeSession(members[i]),
  });
});

const waitMs = 10_000;

async function within<T>(promise: Promise<T>, what: string, ms = waitMs): Promise<T> {
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

/** Polls `check` every 50 ms (its checks read etcd) until it holds; fails after `waitMs`. */
function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  return eventuallyHolds(check, what, { everyMs: 50, timeoutMs: waitMs });
}

/** Retries `fn` while etcd is unavailable (just after a restart). */
async function whenAvailable<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof BackendUnavailableError) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function isPending(promise: Promise<unknown>, ms = 200): Promise<boolean> {
  const marker = Symbol('pending');
  const settled = await Promise.race([
    promise.then(
      () => 'fulfilled',
      () => 'rejected',
    ),
    new Promise((resolve) => {
      setTimeout(() => {
        resolve(marker);
      }, ms);
    }),
  ]);
  return settled === marker;
}

type Received = [string, JsonValue][];

function collect(coordinator: EtcdCoordinator, prefix: string): Received {
  const got: Received = [];
  coordinator.subscribe(prefix, (topic, message) => {
    got.push([topic, message]);
  });
  return got;
}

const has = (got: Received, topic: string): boolean => got.some(([t]) => t === topic);

describe('EtcdCoordinator against a real etcd', () => {
  let prefix: string;
  let scope: AbortController;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(() => {
    prefix = `/test/${randomUUID()}/`;
    scope = new AbortController();
  });

  afterEach(async () => {
    scope.abort();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await admin?.delete().prefix(prefix);
  });

  function pair(options: Partial<EtcdCoordinatorOptions> = {}): [EtcdCoordinator, EtcdCoordinator] {
    const a = member(prefix, 'a', options);
    const b = member(prefix, 'b', options);
    cleanups.push(async () => {
      await Promise.all([a.close(), b.close()]);
    });
    return [a, b];
  }

  /** The leader's election key: the one whose create revision is the token. */
  async function electionKey(election: string, held: Held): Promise<string> {
    const response = await server().admin.kv.range({
      key: Buffer.from(`${prefix}master/elect/${election}/`),
      range_end: Buffer.from(`${prefix}master/elect/${election}0`),
    });
    const kv = response.kvs.find((entry) => entry.create_revision === held.token);
    if (kv === undefined) throw new Error(`No election key with create revision ${held.token}`);
    return kv.key.toString();
  }

  /** A write guarded the way a leader guards its writes: `Create(key) == token`. */
  async function guardedPut(key: string, token: string, value: string): Promise<boolean> {
    const { admin: client } = server();
    const result = await client
      .if(key, 'Create', '==', token)
      .then(client.put(`${prefix}fenced`).value(value))
      .commit();
    return result.succeeded;
  }

  it('holds many locks at once (a master resuming its jobs) without a MaxListenersExceededWarning', async () => {
    const prefix = `/test/${randomUUID()}/`;
    const coordinator = member(prefix, 'm0');
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(`${warning.name}: ${warning.message}`);
    };
    process.on('warning', onWarning);
    try {
      const stop = new AbortController();
      const held = await Promise.all(
        Array.from({ length: 20 }, (_, i) => coordinator.lock(`node/host/web-${i}`, stop.signal)),
      );
      await Promise.all(held.map((h) => h.release()));
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await coordinator.close();
      await server().admin.delete().prefix(prefix);
    }
  });

  it('fences a stale leader: its guarded writes are rejected once another member leads', async () => {
    const [a, b] = pair();
    const first = await within(a.campaign('master', scope.signal), 'a to lead');
    const firstKey = await electionKey('master', first);
    expect(firstKey).toBe(
      `${prefix}master/elect/master/${BigInt(a.leaseId ?? '0')
        .toString(16)
        .padStart(16, '0')}`,
    );
    expect(await guardedPut(firstKey, first.token, 'from a')).toBe(true);
    const second = b.campaign('master', scope.signal);
    expect(await isPending(second)).toBe(true);

    await revokeSession(a);
    const next = await within(second, 'b to lead');
    await eventually(() => first.lost.aborted, 'a to step down');
    expect(first.lost.reason).toBeInstanceOf(LeaseLostError);
    expect(BigInt(next.token)).toBeGreaterThan(BigInt(first.token));

    expect(await guardedPut(firstKey, first.token, 'stale write from a')).toBe(false);
    expect(await guardedPut(await electionKey('master', next), next.token, 'from b')).toBe(true);
    expect(await server().admin.get(`${prefix}fenced`).string()).toBe('from b');
  });

  it('steps a leader down within TTL/2 when its keepalives stop, and the other member takes over', async () => {
    const ttl = 2;
    const proxy = await startTcpProxy(server().etcd.clientPort);
    const a = member(prefix, 'cut-off', {
      endpoints: [`http://127.0.0.1:${proxy.port}`],
      leaseTtlSeconds: ttl,
      requestTimeoutMs: 1000,
    });
    const b = member(prefix, 'healthy', { leaseTtlSeconds: ttl });
    cleanups.push(async () => {
      proxy.resume();
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    });
    const first = await within(a.campaign('master', scope.signal), 'a to lead');
    let lostAt = 0;
    first.lost.addEventListener('abort', () => {
      lostAt = Date.now();
    });
    let ledAt = 0;
    const second = b.campaign('master', scope.signal).then((held) => {
      ledAt = Date.now();
      return held;
    });
    expect(await isPending(second)).toBe(true);

    const pausedAt = Date.now();
    proxy.pause();
    const next = await within(second, 'b to take over');
    expect(first.lost.aborted).toBe(true);
    expect(first.lost.reason).toBeInstanceOf(LeaseLostError);
    const stepDownMs = lostAt - pausedAt;
    const takeOverMs = ledAt - pausedAt;
    console.info(`keepalives stopped: a stepped down after ${stepDownMs} ms, b led after ${takeOverMs} ms`);
    // The last acknowledged keepalive was sent at most TTL/6 before the pause; a steps down TTL/2 after it.
    expect(stepDownMs).toBeGreaterThan((ttl * 1000) / 2 - (ttl * 1000) / 6 - 100);
    expect(stepDownMs).toBeLessThan((ttl * 1000) / 2 + 500);
    expect(lostAt).toBeLessThan(ledAt);
    expect(takeOverMs).toBeLessThan(ttl * 1000 + 2000);
    expect(BigInt(next.token)).toBeGreaterThan(BigInt(first.token));

    // Once the network is back, the cut-off member gets a new session and stands in line again.
    proxy.resume();
    const again = a.campaign('master', scope.signal);
    expect(await isPending(again, 500)).toBe(true);
    await next.release();
    const last = await within(again, 'a to lead again');
    expect(BigInt(last.token)).toBeGreaterThan(BigInt(next.token));
  });

  it('claims past a ready key whose record is gone (its copy of the record is stale), and drops that key', async () => {
    const { admin: client } = server();
    const [a] = pair();
    const queue = a.queue('q');
    await queue.enqueue({ id: 't0', payload: 0 });
    const [real] = await client.getAll().prefix(`${prefix}q/q/ready/`).keys();
    const priority = real?.slice(`${prefix}q/q/ready/`.length).split('/')[0] ?? '';
    // First in dispatch order, with a copy of a record that says it is ready, but no record at tasks/ghost.
    const ghost = `q/q/ready/${priority}/0000000000000000/ghost`;
    await client
      .put(prefix + ghost)
      .value(JSON.stringify({ p: 'boo', r: 100, m: 5, a: 0, s: 'ready', k: ghost }));
    const claimed: string[] = [];
    for (let i = 0; ; i++) {
      const task = await within(queue.claim('w', scope.signal), `task t${i} past the ghost key`);
      claimed.push(task.id);
      expect(await queue.ack(task)).toBe(true);
      if ((await client.get(prefix + ghost).string()) === null) break;
      if (i >= 20) throw new Error(`the ghost key is still there after ${i + 1} claims`);
      await queue.enqueue({ id: `t${i + 1}`, payload: i + 1 });
    }
    expect(claimed).toEqual(claimed.map((_, i) => `t${i}`));
  });

  it('once a claim found the queue empty, claims take their picks from the watch, in dispatch order', async () => {
    countEtcdCalls();
    const [a, b] = pair();
    const first = a.queue('q').claim('w', scope.signal);
    expect(await isPending(first)).toBe(true);
    await b.queue('q').enqueue({ id: 't0', payload: 0 });
    expect((await within(first, 'a to claim t0')).id).toBe('t0');
    const readsBefore = etcdCallCounts()['range q/q/ready'] ?? 0;
    const claimed: string[] = [];
    for (let round = 0; round < 5; round++) {
      // Enqueued in one turn, so in one transaction: the watch shows both at once.
      await Promise.all([
        b.queue('q').enqueue({ id: `low-${round}`, payload: round, priority: 200 }),
        b.queue('q').enqueue({ id: `high-${round}`, payload: round, priority: 50 }),
      ]);
      const tasks = await within(a.queue('q').claimMany('w', 2, scope.signal), `round ${round}`);
      claimed.push(...tasks.map((task) => task.id));
      if (tasks.length === 1)
        claimed.push((await within(a.queue('q').claim('w', scope.signal), 'the other')).id);
    }
    expect(claimed).toEqual([0, 1, 2, 3, 4].flatMap((round) => [`high-${round}`, `low-${round}`]));
    expect((etcdCallCounts()['range q/q/ready'] ?? 0) - readsBefore).toBe(0);
  });

  it('reaps a task whose claimer lost its lease as soon as a waiting member sees the claim go', async () => {
    // A long reconcile interval leaves the watch on claims/ as the only way to notice the orphan in time.
    const [a, b] = pair({ reconcileIntervalMs: 600_000 });
    await a.queue('q').enqueue({ id: 't1', payload: 'p' });
    await a.queue('q').enqueue({ id: 'last-try', payload: 'x', maxAttempts: 1 });
    const orphan = await within(a.queue('q').claim('w', scope.signal), 'a to claim t1');
    const doomed = await within(a.queue('q').claim('w', scope.signal), 'a to claim last-try');
    expect([orphan.id, doomed.id]).toEqual(['t1', 'last-try']);
    const waiting = b.queue('q').claim('w', scope.signal);
    expect(await isPending(waiting)).toBe(true);

    const revokedAt = Date.now();
    await revokeSession(a);
    const task = await within(waiting, 'b to get the orphan');
    console.info(`orphaned task reclaimed ${Date.now() - revokedAt} ms after its claimer's lease went`);
    expect(task).toEqual({ id: 't1', payload: 'p', attempt: 2, claim: task.claim });
    expect(Date.now() - revokedAt).toBeLessThan(2000);
    await eventually(
      async () => (await b.queue('q').stats()).dead === 1,
      'the out-of-attempts orphan to die',
    );
    expect(await b.queue('q').deadLetters()).toEqual([
      {
        id: 'last-try',
        payload: 'x',
        attempts: 1,
        error: { code: 'LEASE_LOST', message: 'Worker w@a lost its lease', retryable: true },
      },
    ]);
    expect(await a.queue('q').ack(orphan)).toBe(false);
    expect(await b.queue('q').ack(task)).toBe(true);
  });

  it('carries on after an etcd restart: an open subscription and a waiting claim reconnect', async () => {
    const [a, b] = pair();
    const got = collect(a, 'jobs/');
    await eventually(async () => {
      await b.notify('jobs/probe', null);
      return has(got, 'jobs/probe');
    }, 'the subscription to be live');
    const claim = a.queue('q').claim('w', scope.signal);
    claim.catch(() => undefined);
    expect(await isPending(claim)).toBe(true);

    const restartedAt = Date.now();
    await server().etcd.restart();
    console.info(`etcd restarted in ${Date.now() - restartedAt} ms`);

    await eventually(async () => {
      await whenAvailable(() => b.notify('jobs/after-restart', { n: 1 }));
      return has(got, 'jobs/after-restart');
    }, 'a notification after the restart');
    expect(got).toContainEqual(['jobs/after-restart', { n: 1 }]);
    expect(await whenAvailable(() => b.queue('q').enqueue({ id: 't1', payload: 'p' }))).toBe(true);
    const task = await within(claim, 'the claim that waited across the restart');
    expect(task).toEqual({ id: 't1', payload: 'p', attempt: 1, claim: task.claim });
    expect(await a.queue('q').ack(task)).toBe(true);
  });

  it('relists after compaction: a subscription and a claim that fell behind catch up and carry on', async () => {
    const proxy = await startTcpProxy(server().etcd.clientPort);
    const logger = recordingLogger();
    const a = member(prefix, 'behind', { endpoints: [`http://127.0.0.1:${proxy.port}`], logger });
    const b = member(prefix, 'ahead');
    cleanups.push(async () => {
      proxy.resume();
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    });
    const got = collect(a, 'jobs/');
    await eventually(async () => {
      await b.notify('jobs/probe', null);
      return has(got, 'jobs/probe');
    }, 'the subscription to be live');
    const claim = a.queue('q').claim('w', scope.signal);
    claim.catch(() => undefined);
    expect(await isPending(claim)).toBe(true);

    proxy.pause();
    await b.notify('jobs/while-away', { n: 1 });
    expect(await b.queue('q').enqueue({ id: 't1', payload: null })).toBe(true);
    const compactedAt = await server().etcd.compact();
    expect(has(got, 'jobs/while-away')).toBe(false);
    proxy.cut();
    proxy.resume();

    await eventually(() => has(got, 'jobs/while-away'), 'the relist to deliver what was missed');
    expect(got).toContainEqual(['jobs/while-away', { n: 1 }]);
    expect(logger.lines).toContain('warn: etcd watch history was compacted; relisting');
    const task = await within(claim, 'the claim to find the task enqueued meanwhile');
    expect(task.id).toBe('t1');
    expect(await b.queue('q').ack(task)).toBe(true);

    await b.notify('jobs/after', 2);
    await eventually(() => has(got, 'jobs/after'), 'delivery to go on after the relist');
    expect(compactedAt).toBeGreaterThan(0);
  });

  it('a claim waiting across an etcd restart and a compaction gets what was enqueued meanwhile, then more', async () => {
    // The member is cut off for the whole outage, so its watch comes back to compacted history.
    const proxy = await startTcpProxy(server().etcd.clientPort);
    const a = member(prefix, 'waiting', { endpoints: [`http://127.0.0.1:${proxy.port}`] });
    const b = member(prefix, 'enqueuer');
    cleanups.push(async () => {
      proxy.resume();
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    });
    const first = a.queue('q').claim('w', scope.signal);
    first.catch(() => undefined);
    expect(await isPending(first)).toBe(true);

    proxy.pause();
    await server().etcd.restart();
    expect(await whenAvailable(() => b.queue('q').enqueue({ id: 'during', payload: 1 }))).toBe(true);
    await server().etcd.compact();
    proxy.cut();
    proxy.resume();

    const during = await within(first, 'the claim to get the task enqueued during the outage');
    expect(during).toEqual({ id: 'during', payload: 1, attempt: 1, claim: during.claim });
    expect(await whenAvailable(() => a.queue('q').ack(during))).toBe(true);
    const next = a.queue('q').claim('w', scope.signal);
    next.catch(() => undefined);
    expect(await isPending(next)).toBe(true);
    expect(await b.queue('q').enqueue({ id: 'after', payload: 2 })).toBe(true);
    const after = await within(next, 'the next claim to get a task enqueued after the outage');
    expect(after.id).toBe('after');
    expect(await a.queue('q').ack(after)).toBe(true);
  });
});
