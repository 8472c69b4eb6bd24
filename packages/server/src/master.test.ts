import { BackendUnavailableError, silentLogger, systemClock } from '@consortium/core';
import type { Coordinator, JobRecord } from '@consortium/core';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import { openSqliteStore } from '@consortium/store-sqlite';
import { Writable } from 'node:stream';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import { Master } from './master.js';
import { JOB_QUEUE } from './protocol.js';
import { buildKinds, importPlugins } from './plugins.js';
import { runAll } from './runnable.js';
import { Worker } from './worker.js';

/** A coordinator whose first `failures` notifications fail as an etcd outage would. */
function flakyNotify(inner: Coordinator, failures: number): Coordinator & { failed: number } {
  const wrapped = {
    failed: 0,
    memberId: inner.memberId,
    campaign: (election: string, signal: AbortSignal) => inner.campaign(election, signal),
    lock: (key: string, signal: AbortSignal) => inner.lock(key, signal),
    queue: (name: string) => inner.queue(name),
    subscribe: (prefix: string, listener: Parameters<Coordinator['subscribe']>[1]) =>
      inner.subscribe(prefix, listener),
    close: () => inner.close(),
    notify: (topic: string, message: Parameters<Coordinator['notify']>[1]) => {
      if (wrapped.failed < failures) {
        wrapped.failed++;
        return Promise.reject(
          new BackendUnavailableError('etcd is unavailable (14 UNAVAILABLE: Connection dropped)'),
        );
      }
      return inner.notify(topic, message);
    },
  };
  return wrapped;
}

describe('Master', () => {
  it('drives a job again after a passing fault instead of leaving it running', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    const coordinator = flakyNotify(new MemoryCoordinator(new MemoryCluster()), 2);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const transports = [new winston.transports.Stream({ stream: sink })];
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston types its transports loosely
    const logger = winston.createLogger({ transports });
    const kinds = buildKinds(await importPlugins([{ module: '@consortium/plugin-inventory' }]), {
      logger: silentLogger,
      store,
      now: () => Date.now(),
    });
    const now = Date.now();
    await store.insertNode('vlan', 'v1', {}, now);
    const job: JobRecord = {
      id: 'j-1',
      kind: 'vlan',
      name: 'v1',
      action: 'create',
      state: 'queued',
      actor: 'test',
      updates: [
        { path: 'present', op: 'set', value: true },
        { path: 'vid', op: 'set', value: 5 },
      ],
      before: null,
      createdAt: now,
      updatedAt: now,
    };
    await store.createJob(job);
    await coordinator.queue(JOB_QUEUE).enqueue({ id: job.id, payload: job.id });
    const stop = new AbortController();
    const running = runAll(
      [
        new Master({ store, coordinator, kinds, logger, clock: systemClock }),
        new Worker({ coordinator, kinds, logger, clock: systemClock, concurrency: 1 }),
      ],
      coordinator,
      logger,
      stop.signal,
    );
    let ended: JobRecord | undefined;
    for (let i = 0; i < 200 && ended === undefined; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const current = await store.getJob('j-1');
      if (current?.endedAt !== undefined) ended = current;
    }
    stop.abort();
    await running;
    expect(coordinator.failed).toBe(2);
    expect(ended?.state).toBe('succeeded');
    expect((await store.getNode('vlan', 'v1'))?.attrs).toEqual({ present: true, vid: 5 });
    expect(lines.filter((l) => l.includes('job runner hit a passing fault; resuming the job'))).toHaveLength(
      2,
    );
    await coordinator.close();
    await store.close();
  });
});
