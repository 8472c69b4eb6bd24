import {
  BackendError,
  BackendUnavailableError,
  OutcomeBuilder,
  definePlugin,
  silentLogger,
  systemClock,
} from '@consortium/core';
import type { Coordinator, JobRecord, NodeProvider, PluginDefinition } from '@consortium/core';
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

/** A coordinator whose first `failures` node locks or notifications fail as an etcd outage would. */
function flaky(
  inner: Coordinator,
  failures: number,
  what: 'node lock' | 'notify',
): Coordinator & { failed: number } {
  const outage = (): Promise<never> => {
    wrapped.failed++;
    return Promise.reject(
      new BackendUnavailableError('etcd is unavailable (14 UNAVAILABLE: Connection dropped)'),
    );
  };
  const wrapped = {
    failed: 0,
    memberId: inner.memberId,
    campaign: (election: string, signal: AbortSignal) => inner.campaign(election, signal),
    lock: (key: string, signal: AbortSignal) =>
      what === 'node lock' && key.startsWith('node/') && wrapped.failed < failures
        ? outage()
        : inner.lock(key, signal),
    queue: (name: string) => inner.queue(name),
    subscribe: (prefix: string, listener: Parameters<Coordinator['subscribe']>[1]) =>
      inner.subscribe(prefix, listener),
    close: () => inner.close(),
    notify: (topic: string, message: Parameters<Coordinator['notify']>[1]) =>
      what === 'notify' && wrapped.failed < failures ? outage() : inner.notify(topic, message),
  };
  return wrapped;
}

describe('Master', () => {
  /** Runs a create with the first two node locks or notices failing; the job's log lines and its end. */
  async function withFaults(
    what: 'node lock' | 'notify',
  ): Promise<{ lines: string[]; ended: JobRecord | undefined }> {
    const store = await openSqliteStore({ path: ':memory:' });
    const coordinator = flaky(new MemoryCoordinator(new MemoryCluster()), 2, what);
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
    await coordinator.close();
    await store.close();
    return { lines, ended };
  }

  it('drives a job again after a passing fault instead of leaving it running', async () => {
    const { lines, ended } = await withFaults('node lock');
    expect(ended?.state).toBe('succeeded');
    expect(lines.filter((l) => l.includes('job runner hit a passing fault; resuming the job'))).toHaveLength(
      2,
    );
  });

  it('does not hold a job up for a notice that failed: it logs it and goes on', async () => {
    const { lines, ended } = await withFaults('notify');
    expect(ended?.state).toBe('succeeded');
    expect(lines.filter((l) => l.includes('job runner hit a passing fault'))).toHaveLength(0);
    expect(
      lines.filter((l) =>
        l.includes('announcing a job event failed; its watchers see it when they next poll'),
      ),
    ).toHaveLength(2);
  });

  it('applies a change made against a revision only at that revision, and fails it otherwise', async () => {
    const world = await masterWorld();
    const now = Date.now();
    await world.store.insertNode('vlan', 'v2', { present: true, vid: 7 }, now);
    await world.store.updateNode('vlan', 'v2', { present: true, vid: 8 }, now);
    const stale = await world.submit({
      id: 'j-stale',
      kind: 'vlan',
      name: 'v2',
      action: 'patch',
      updates: [{ path: 'vid', op: 'set', value: 9 }],
      expectedRevision: 1,
    });
    expect(stale.state).toBe('failed');
    expect(stale.failure).toEqual({
      code: 'PRECONDITION_FAILED',
      message: 'the request no longer applies to the node: vlan/v2 is at revision 2, not 1',
    });
    expect(await world.store.getNode('vlan', 'v2')).toMatchObject({ revision: 2, attrs: { vid: 8 } });
    const current = await world.submit({
      id: 'j-current',
      kind: 'vlan',
      name: 'v2',
      action: 'patch',
      updates: [{ path: 'vid', op: 'set', value: 9 }],
      expectedRevision: 2,
    });
    expect(current.state).toBe('succeeded');
    expect(await world.store.getNode('vlan', 'v2')).toMatchObject({ revision: 3, attrs: { vid: 9 } });
    await world.close();
  });

  it('fails a job that its master keeps stopping on, instead of resuming it for ever', async () => {
    const world = await masterWorld();
    const now = Date.now();
    const plan = world.kinds.get('vlan')!.planner.start(
      {
        jobId: 'j-crashy',
        kind: 'vlan',
        name: 'v3',
        current: {},
        updates: [
          { path: 'present', op: 'set', value: true },
          { path: 'vid', op: 'set', value: 3 },
        ],
      },
      now,
    );
    // Three masters already resumed it and died before its next step.
    await world.store.createJob({
      ...jobOf({ id: 'j-crashy', kind: 'vlan', name: 'v3', action: 'create', updates: [] }),
      state: 'running',
      plan,
      resumes: 3,
    });
    const ended = await world.run('j-crashy');
    expect(ended.state).toBe('failed');
    expect(ended.failure).toEqual({
      code: 'INTERNAL',
      message:
        'the job was started or resumed 3 times and its master stopped each time before the next step; it was failed so that the others can run',
    });
    expect(await world.store.getNode('vlan', 'v3')).toBeUndefined();
    // The same for a job that never got past planning: it is failed before it is planned again.
    await world.store.createJob({
      ...jobOf({
        id: 'j-never-planned',
        kind: 'vlan',
        name: 'v5',
        action: 'create',
        updates: [{ path: 'present', op: 'set', value: true }],
      }),
      resumes: 3,
    });
    const unplanned = await world.run('j-never-planned');
    expect(unplanned.state).toBe('failed');
    expect(unplanned.plan).toBeUndefined();
    expect(unplanned.failure?.code).toBe('INTERNAL');
    await world.close();
  });

  it('resumes a job that was resumed before, and counts only resumes without a step in between', async () => {
    const world = await masterWorld();
    const now = Date.now();
    const updates = [
      { path: 'present', op: 'set', value: true },
      { path: 'vid', op: 'set', value: 4 },
    ] as const;
    const plan = world.kinds
      .get('vlan')!
      .planner.start(
        { jobId: 'j-resumed', kind: 'vlan', name: 'v4', current: {}, updates: [...updates] },
        now,
      );
    await world.store.createJob({
      ...jobOf({ id: 'j-resumed', kind: 'vlan', name: 'v4', action: 'create', updates: [...updates] }),
      state: 'running',
      plan,
      resumes: 2,
    });
    const ended = await world.run('j-resumed');
    expect(ended.state).toBe('succeeded');
    expect(ended.resumes).toBe(0);
    expect((await world.store.getNode('vlan', 'v4'))?.attrs).toEqual({ present: true, vid: 4 });
    await world.close();
  });
  it('rolls a failed create back; when the rollback fails too, the node stays and a re-run or a delete completes it', async () => {
    const widgets = widgetBackend();
    const world = await masterWorld([widgets.plugin]);
    const create = (id: string, name: string, size: string) =>
      world.submit({
        id,
        kind: 'widget',
        name,
        action: 'create',
        updates: [
          { path: 'present', op: 'set', value: true },
          { path: 'size', op: 'set', value: size },
        ],
      });

    const rolledBack = await create('j-w0', 'w0', 'bad');
    expect(rolledBack.state).toBe('failed');
    expect(rolledBack.failure?.message).toBe('widgets rejected size="bad": no widget comes in size bad');
    expect(rolledBack.rollback?.phase).toBe('succeeded');
    expect(widgets.made.has('w0')).toBe(false);
    expect(await world.store.getNode('widget', 'w0')).toBeUndefined();

    widgets.faults.failDeletes = 2;
    for (const name of ['w1', 'w2']) {
      const stuck = await create(`j-${name}`, name, 'bad');
      expect(stuck.state).toBe('failed');
      expect(stuck.failure?.message).toBe(
        `widgets rejected size="bad": no widget comes in size bad; the rollback failed too (widgets failed: widget ${name} is stuck), so the node stays; create it again or delete it`,
      );
      expect(widgets.made.has(name)).toBe(true);
      expect((await world.store.getNode('widget', name))?.attrs).toEqual({ present: true });
    }
    // Creating it again (not a 409) completes it; so does a delete.
    const again = await create('j-w1-again', 'w1', 'small');
    expect(again.state).toBe('succeeded');
    expect((await world.store.getNode('widget', 'w1'))?.attrs).toEqual({ present: true, size: 'small' });
    const deleted = await world.submit({
      id: 'j-w2-delete',
      kind: 'widget',
      name: 'w2',
      action: 'delete',
      updates: [{ path: 'present', op: 'unset' }],
    });
    expect(deleted.state).toBe('succeeded');
    expect(widgets.made.has('w2')).toBe(false);
    expect(await world.store.getNode('widget', 'w2')).toBeUndefined();
    // A node that exists for real is still a conflict.
    const conflict = await create('j-w1-twice', 'w1', 'small');
    expect(conflict.failure).toEqual({
      code: 'CONFLICT',
      message: 'the request no longer applies to the node: widget/w1 already exists; change it with PATCH',
    });
    await world.close();
  });
});

/**
 * A backend of widgets for rollback tests: a create makes the widget even when it refuses its size ("bad"), as a
 * hypervisor defines a VM before something else fails; a delete removes it, except that the next `failDeletes`
 * deletes fail for good.
 */
function widgetBackend() {
  const made = new Set<string>();
  const faults = { failDeletes: 0 };
  const provider: NodeProvider = {
    name: 'widgets',
    kind: 'widget',
    claims: [{ path: 'size', schema: { type: 'string' } }],
    watches: ['present'],
    apply: (task) => {
      const out = new OutcomeBuilder();
      if (task.node['present'] === undefined) {
        if (faults.failDeletes > 0) {
          faults.failDeletes--;
          return Promise.reject(new BackendError(`widget ${task.name} is stuck`));
        }
        made.delete(task.name);
        out.accept(...task.updates);
        return Promise.resolve(out.build(false));
      }
      made.add(task.name);
      for (const update of task.updates) {
        if (update.path === 'size' && update.value === 'bad')
          out.reject('no widget comes in size bad', update);
        else out.accept(update);
      }
      return Promise.resolve(out.build(false));
    },
    explain: () => Promise.resolve({}),
  };
  const plugin = definePlugin({
    id: 'widgets',
    configSchema: { type: 'object' },
    kinds: [{ name: 'widget' }],
    providers: () => [provider],
  });
  return { plugin, made, faults };
}

/** A job record as the intake writes it. */
function jobOf(
  fields: Pick<JobRecord, 'id' | 'kind' | 'name' | 'action' | 'updates'> & { expectedRevision?: number },
): JobRecord {
  const now = Date.now();
  return { ...fields, state: 'queued', actor: 'test', before: null, createdAt: now, updatedAt: now };
}

/** A store, a memory coordinator, the inventory plugin, and a master with a worker to run jobs through. */
async function masterWorld(extra: readonly PluginDefinition[] = []) {
  const store = await openSqliteStore({ path: ':memory:' });
  const coordinator = new MemoryCoordinator(new MemoryCluster());
  const logger = winston.createLogger({ silent: true });
  const plugins = [
    ...(await importPlugins([{ module: '@consortium/plugin-inventory' }])),
    ...extra.map((plugin) => ({ plugin, config: { module: plugin.id } })),
  ];
  const kinds = buildKinds(plugins, {
    logger: silentLogger,
    store,
    now: () => Date.now(),
  });
  /** Runs the master until the job has ended; returns the ended job. */
  const run = async (id: string): Promise<JobRecord> => {
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
    for (let i = 0; i < 400 && ended === undefined; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const current = await store.getJob(id);
      if (current?.endedAt !== undefined) ended = current;
    }
    stop.abort();
    await running;
    if (ended === undefined) throw new Error(`job ${id} did not end`);
    return ended;
  };
  return {
    store,
    kinds,
    run,
    /** Writes a queued job, queues it and runs it to its end. */
    submit: async (fields: Parameters<typeof jobOf>[0]): Promise<JobRecord> => {
      await store.createJob(jobOf(fields));
      await coordinator.queue(JOB_QUEUE).enqueue({ id: fields.id, payload: fields.id });
      return run(fields.id);
    },
    close: async () => {
      await coordinator.close();
      await store.close();
    },
  };
}
