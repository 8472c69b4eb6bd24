/**
 * Cluster mode against a real etcd: web, masters and workers as separate processes of the real binary, NetBox (test
 * server) as the shared backend whose answers the tests slow down to catch jobs mid-flight.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InjectedFault } from '@consortium/test-netbox-server';
import type { Cluster, ClusterProcess } from './test-support/cluster.js';
import { startCluster } from './test-support/cluster.js';

let cluster: Cluster | undefined;
afterEach(async (context) => {
  // A failed test leaves every process's log under .ci/out/cluster/ and their tails on stderr, for CI to show.
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    const dir = join('.ci', 'out', 'cluster', context.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60));
    mkdirSync(dir, { recursive: true });
    for (const p of cluster.processes) {
      writeFileSync(join(dir, `${p.name}.log`), p.log());
      console.error(
        `--- ${p.name} (last 30 lines; whole log in ${dir})\n${p.log().split('\n').slice(-30).join('\n')}`,
      );
    }
  }
  await cluster?.stop();
  cluster = undefined;
});

const TERMINAL = ['succeeded', 'failed', 'expired', 'cancelled'];

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup(c: Cluster): Promise<void> {
  const subnet = await c.api.request('POST', '/api/inventory/subnet?wait=30s', {
    body: { name: 's1', attrs: { cidr: '10.8.0.0/24', gateway: '10.8.0.1' } },
  });
  expect(subnet.body.state).toBe('succeeded');
}

async function createHosts(c: Cluster, prefix: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await c.api.request('POST', '/api/inventory/host', {
      body: { name: `${prefix}-${i}`, attrs: { datacenter: 'pek1', subnet: 's1' } },
    });
    expect(r.status).toBe(202);
    ids.push(r.body.id as string);
  }
  return ids;
}

/** Waits for every job to end and checks that each ended exactly once and made exactly one VM. */
async function expectAllSucceededOnce(
  c: Cluster,
  ids: string[],
  names: string[],
  ms = 60_000,
): Promise<void> {
  for (const id of ids) {
    const job = await until(
      `job ${id}`,
      async () => {
        const r = await c.api.request('GET', `/api/jobs/${id}`);
        return TERMINAL.includes(r.body.state) ? r.body : undefined;
      },
      ms,
    );
    expect([id, job.state, job.failure?.message]).toEqual([id, 'succeeded', undefined]);
  }
  const store = await c.store();
  for (const id of ids) {
    const ended = (await store.listEvents(id, 0)).filter((e) => e.type === 'ended');
    expect(ended).toHaveLength(1);
  }
  for (const name of names) expect(c.netbox.state.vmsByName(name)).toHaveLength(1);
}

/** Slows down the next `times` VM creations in NetBox by `delayMs` each, to catch jobs mid-flight. */
function slowVmCreates(c: Cluster, delayMs: number, times: number): InjectedFault {
  return c.netbox.injectFault({
    method: 'POST',
    path: '/api/virtualization/virtual-machines/',
    delayMs,
    times,
  });
}

/**
 * Waits until a worker is inside the slowed-down NetBox call (`slow` was hit) and the job's other tasks of the round
 * are folded in: no new event for a while, so the master is idle, waiting for that one result. Freezing the master
 * at that point, not in the middle of a store write, matters: a process stopped inside an SQLite write transaction
 * holds the database's write lock until it runs again (a limit of the single-host store, see the README).
 */
async function midCall(c: Cluster, jobId: string, slow: InjectedFault): Promise<void> {
  await slow.hit;
  const store = await c.store();
  let seen = -1;
  let quietSince = Date.now();
  await until('the master to be idle, waiting for the slow task', async () => {
    const count = (await store.listEvents(jobId, 0)).length;
    if (count !== seen) {
      seen = count;
      quietSince = Date.now();
      return undefined;
    }
    return Date.now() - quietSince >= 400 ? true : undefined;
  });
}

const alive = (p: ClusterProcess): boolean => p.child.exitCode === null && p.child.signalCode === null;

describe('cluster mode over etcd', () => {
  it('kill -9 of the leader mid-job: the standby takes over within the lease TTL and every job finishes once', async () => {
    cluster = await startCluster({ leaseTtlSeconds: 3 });
    const c = cluster;
    await c.spawn('master', 'master-a');
    await c.spawn('master', 'master-b');
    await c.spawn('worker', 'worker-a');
    await c.spawn('worker', 'worker-b');
    await setup(c);
    const slow = slowVmCreates(c, 2500, 6);
    const ids = await createHosts(c, 'fo', 6);
    const leader = await c.leader();
    await midCall(c, ids[0]!, slow);
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const standby = c.processes.find((p) => p.role === 'master' && p !== leader)!;
    await until(
      'the standby to lead',
      () => (standby.lines('leadership acquired').length > 0 ? true : undefined),
      20_000,
    );
    const takeover = Date.now() - killedAt;
    expect(takeover).toBeLessThan(3_000 + 5_000);
    await expectAllSucceededOnce(
      c,
      ids,
      ids.map((_, i) => `fo-${i}`),
    );
    // The new leader's own /metrics: leadership, lease health, queues, and the tasks it had to run again.
    const metrics = await (await fetch(`${standby.url()}/metrics`)).text();
    expect(metrics).toMatch(/^consortium_leader 1$/m);
    expect(metrics).toMatch(/^consortium_lease_keepalive_lag_seconds \d+(\.\d+)?$/m);
    expect(metrics).toMatch(/^consortium_queue_tasks\{queue="tasks",state="dead"\} 0$/m);
    expect(metrics).toMatch(/^consortium_task_retries_total\{provider="(netbox|ipam)"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^consortium_jobs_total\{kind="host",state="succeeded"\} [1-9]\d*$/m);
  }, 120_000);

  it("a worker frozen past its lease: the task moves to another worker, and the frozen one's late ack is refused", async () => {
    cluster = await startCluster({ leaseTtlSeconds: 3, workerConcurrency: 1 });
    const c = cluster;
    await c.spawn('master', 'master');
    const frozen = await c.spawn('worker', 'worker-frozen');
    await setup(c);
    const slow = slowVmCreates(c, 3000, 1);
    const ids = await createHosts(c, 'fz', 1);
    await midCall(c, ids[0]!, slow);
    frozen.child.kill('SIGSTOP');
    await c.spawn('worker', 'worker-b');
    await expectAllSucceededOnce(c, ids, ['fz-0'], 60_000);
    frozen.child.kill('SIGCONT');
    await until(
      'the refused late ack',
      () => (frozen.log().includes('late result') ? true : undefined),
      20_000,
    );
    const job = await c.api.request('GET', `/api/jobs/${ids[0]!}`);
    expect(job.body.state).toBe('succeeded');
  }, 120_000);

  it('a leader frozen past its lease: the standby finishes the job; the old leader stops without changing it', async () => {
    cluster = await startCluster({ leaseTtlSeconds: 3 });
    const c = cluster;
    await c.spawn('master', 'master-a');
    await c.spawn('worker', 'worker');
    await setup(c);
    const first = await c.leader();
    await c.spawn('master', 'master-b');
    const slow = slowVmCreates(c, 3000, 1);
    const ids = await createHosts(c, 'fl', 1);
    await midCall(c, ids[0]!, slow);
    first.child.kill('SIGSTOP');
    const second = c.processes.find((p) => p.role === 'master' && p !== first)!;
    await until(
      'the standby to lead',
      () => (second.lines('leadership acquired').length > 0 ? true : undefined),
      20_000,
    );
    await expectAllSucceededOnce(c, ids, ['fl-0'], 60_000);
    first.child.kill('SIGCONT');
    await until(
      'the old leader to notice',
      () => (/fenced out|leadership lost|job handed over/.test(first.log()) ? true : undefined),
      20_000,
    );
    const store = await c.store();
    expect((await store.listEvents(ids[0]!, 0)).filter((e) => e.type === 'ended')).toHaveLength(1);
    expect((await store.getJob(ids[0]!))?.state).toBe('succeeded');
  }, 120_000);

  it('a worker killed mid-task: the task is claimed again after the lease expires and completes', async () => {
    cluster = await startCluster({ leaseTtlSeconds: 3, workerConcurrency: 1 });
    const c = cluster;
    await c.spawn('master', 'master');
    const doomed = await c.spawn('worker', 'worker-doomed');
    await setup(c);
    const slow = slowVmCreates(c, 3000, 1);
    const ids = await createHosts(c, 'wk', 1);
    await midCall(c, ids[0]!, slow);
    doomed.child.kill('SIGKILL');
    await c.spawn('worker', 'worker-b');
    await expectAllSucceededOnce(c, ids, ['wk-0'], 60_000);
  }, 120_000);

  it('etcd restarted under load and a forced compaction: processes reconnect and every job ends', async () => {
    cluster = await startCluster({ leaseTtlSeconds: 3 });
    const c = cluster;
    await c.spawn('master', 'master');
    await c.spawn('worker', 'worker');
    await setup(c);
    slowVmCreates(c, 300, 10);
    const ids = await createHosts(c, 'er', 10);
    await c.etcd.restart();
    await c.etcd.compact();
    await expectAllSucceededOnce(
      c,
      ids,
      ids.map((_, i) => `er-${i}`),
      60_000,
    );
    expect(c.processes.every(alive)).toBe(true);
  }, 150_000);

  it('two jobs on one node never run at the same time, across processes', async () => {
    cluster = await startCluster({ leaseTtlSeconds: 3 });
    const c = cluster;
    await c.spawn('master', 'master-a');
    await c.spawn('master', 'master-b');
    await c.spawn('worker', 'worker-a');
    await c.spawn('worker', 'worker-b');
    await setup(c);
    const created = await c.api.request('POST', '/api/inventory/host?wait=30s', {
      body: { name: 'lk-0', attrs: { datacenter: 'pek1' } },
    });
    expect(created.body.state).toBe('succeeded');
    c.netbox.injectFault({
      method: 'PATCH',
      path: '/api/virtualization/virtual-machines/',
      delayMs: 300,
      times: 20,
    });
    const ids: string[] = [];
    for (const status of ['offline', 'planned', 'staged', 'decommissioning']) {
      const r = await c.api.request('PATCH', '/api/inventory/host/lk-0', {
        body: { status },
        type: 'application/merge-patch+json',
      });
      expect(r.status).toBe(202);
      ids.push(r.body.id as string);
    }
    const jobs = [];
    for (const id of ids) jobs.push((await c.api.request('GET', `/api/jobs/${id}?wait=60s`)).body);
    expect(jobs.map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const spans = jobs
      .map((j) => [Date.parse(j.startedAt), Date.parse(j.endedAt)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  }, 120_000);
});
