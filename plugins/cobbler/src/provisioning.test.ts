/**
 * The DESIGN.md §2 flow through the real planner with the real inventory and ipam plugins, the real SQLite store,
 * the Cobbler plugin against the Cobbler 3.3.7 test server, and a small in-test hypervisor provider (libvirt is not
 * built yet): round 1 inventory, ipam and the VM; round 2 Cobbler registers the system; round 3 the VM powers on.
 */
import type {
  Attrs,
  AttributeClaim,
  ExplainOutcome,
  NodeProvider,
  PlannerState,
  PluginServices,
  ProposedUpdate,
  ProviderTask,
  UpdateRequest,
} from '@consortium/core';
import {
  buildKindSchemas,
  DEFAULT_PLANNER_OPTIONS,
  explainPlan,
  operationsOf,
  runPlan,
  silentLogger,
  TransitionPlanner,
} from '@consortium/core';
import { plugin as inventory } from '@consortium/plugin-inventory';
import { plugin as ipam } from '@consortium/plugin-ipam';
import type { SqliteStore } from '@consortium/store-sqlite';
import { openSqliteStore } from '@consortium/store-sqlite';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as cobbler } from './index.js';
import { virtualClock } from '@consortium/testkit';

const MAC = '52:54:00:00:00:01';

/**
 * A stand-in hypervisor provider, in memory: `hwspec` defines the VM (hypervisor hv-1, a fixed MAC), `power: on`
 * waits until the host is registered for PXE (`netboot: true`), delete removes the VM.
 */
function fakeVmProvider(): NodeProvider & { vms: Map<string, { running: boolean }> } {
  const vms = new Map<string, { running: boolean }>();
  const claims: AttributeClaim[] = [
    { path: 'hwspec', schema: { type: 'string', enum: ['small', 'large'] } },
    { path: 'power', schema: { type: 'string', enum: ['on', 'off'] } },
    { path: 'hypervisor', schema: { type: 'string' } },
    { path: 'interfaces[*].mac', schema: { type: 'string', pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' } },
  ];
  function decide(task: ProviderTask, dry: boolean): Promise<ExplainOutcome> {
    const accepted: string[] = [];
    const deferred: { id: string; reason: string; waitFor: string[] }[] = [];
    const set: Record<string, string> = {};
    const operations: { action: string; target: string; durationMs: number }[] = [];
    const target = `hv-1/${task.name}`;
    if (task.node['present'] === undefined) {
      if (vms.has(task.name)) operations.push({ action: 'undefine', target, durationMs: 0 });
      if (!dry) vms.delete(task.name);
      const unset = ['hwspec', 'power', 'hypervisor'].filter((p) => task.node[p] !== undefined);
      return Promise.resolve({ accepted: task.updates.map((u) => u.id), unset, operations });
    }
    for (const update of task.updates as ProposedUpdate[]) {
      if (update.path === 'hwspec' && !vms.has(task.name)) {
        if (!dry) vms.set(task.name, { running: false });
        operations.push({ action: 'define', target, durationMs: 0 });
        set['hypervisor'] = 'hv-1';
        set['interfaces[eth0].mac'] = MAC;
        accepted.push(update.id);
      } else if (update.path === 'power' && update.value === 'on' && task.node['netboot'] !== true) {
        deferred.push({
          id: update.id,
          reason: 'waiting for PXE registration (netboot)',
          waitFor: ['netboot'],
        });
      } else {
        if (update.path === 'power' && update.value === 'on') {
          operations.push({ action: 'start', target, durationMs: 0 });
          if (!dry) vms.set(task.name, { running: true });
        }
        accepted.push(update.id);
      }
    }
    return Promise.resolve({
      accepted,
      ...(deferred.length > 0 ? { deferred } : {}),
      ...(Object.keys(set).length > 0 ? { set } : {}),
      ...(operations.length > 0 ? { operations } : {}),
    });
  }
  return {
    name: 'fake-vm',
    kind: 'host',
    claims,
    vms,
    apply: (task) => decide(task, false),
    explain: (task) => decide(task, true),
  };
}

const CREATE: readonly UpdateRequest[] = [
  { path: 'present', op: 'set', value: true },
  { path: 'hwspec', op: 'set', value: 'small' },
  { path: 'datacenter', op: 'set', value: 'pek1' },
  { path: 'subnet', op: 'set', value: 's1' },
  { path: 'puppet_roles', op: 'add', value: 'nginx' },
  { path: 'power', op: 'set', value: 'on' },
];

let store: SqliteStore;
let server: CobblerTestServer;

beforeEach(async () => {
  store = await openSqliteStore({ path: ':memory:' });
  await store.insertNode(
    'subnet',
    's1',
    { present: true, cidr: '10.1.2.0/24', gateway: '10.1.2.1' },
    Date.now(),
  );
  server = await startCobblerServer({ users: { consortium: 'pxe-secret' }, profiles: ['debian12'] });
});

afterEach(async () => {
  await server.stop();
  await store.close();
});

function world() {
  const services: PluginServices = { logger: silentLogger, store, now: () => Date.now() };
  const vm = fakeVmProvider();
  const providers: NodeProvider[] = [
    ...inventory.providers({}, services),
    ...ipam.providers({}, services),
    ...cobbler.providers(
      { url: server.url, username: 'consortium', password: 'pxe-secret', defaultProfile: 'debian12' },
      services,
    ),
    vm,
  ];
  const host = buildKindSchemas(inventory.kinds ?? [], providers).get('host')!;
  return {
    vm,
    planner: new TransitionPlanner(host, DEFAULT_PLANNER_OPTIONS),
    providers: new Map(providers.filter((p) => p.kind === 'host').map((p) => [p.name, p])),
  };
}

type World = ReturnType<typeof world>;

function run(
  w: World,
  updates: readonly UpdateRequest[],
  current: Attrs = {},
  clock = virtualClock(),
): Promise<PlannerState> {
  const state = w.planner.start(
    { jobId: 'job-1', kind: 'host', name: 'web-01', current, updates },
    clock.now(),
  );
  return runPlan(w.planner, state, w.providers, { clock });
}

const roundShape = (state: PlannerState): string[][] =>
  state.rounds.map((r) => r.tasks.map((t) => t.provider));

describe('provisioning a host with inventory, ipam, a VM and Cobbler (DESIGN.md §2)', () => {
  it('creates in three rounds: inventory, ipam and the VM; then Cobbler; then the VM powers on', async () => {
    const w = world();
    const created = await run(w, CREATE);

    expect(created.failure).toBeUndefined();
    expect(created.phase).toBe('succeeded');
    expect(roundShape(created)).toEqual([['fake-vm', 'inventory', 'ipam'], ['cobbler'], ['fake-vm']]);
    const [r1, r2, r3] = created.rounds;
    expect(r1!.tasks[0]!.outcome?.deferred).toEqual([
      { id: 'u6', reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] },
    ]);
    expect(r2!.tasks[0]!.updates.map((u) => `${u.op} ${u.path}`)).toEqual(['sync interfaces']);
    expect(r2!.tasks[0]!.outcome?.set).toEqual({ profile: 'debian12', netboot: true });
    expect(r3!.tasks[0]!.updates.map((u) => u.id)).toEqual(['u6']);
    expect(operationsOf(created).map((o) => `${o.round}:${o.provider}:${o.action}`)).toEqual([
      '1:fake-vm:define',
      '1:inventory:record',
      '1:inventory:record',
      '1:ipam:allocate-ip',
      '2:cobbler:add-system',
      '3:fake-vm:start',
    ]);
    expect(created.attrs).toMatchObject({
      present: true,
      power: 'on',
      hypervisor: 'hv-1',
      profile: 'debian12',
      netboot: true,
      interfaces: [{ name: 'eth0', ip: '10.1.2.2', netmask: '255.255.255.0', gateway: '10.1.2.1', mac: MAC }],
    });

    const system = server.system('web-01')!;
    expect(system).toMatchObject({ profile: 'debian12', netboot_enabled: true, gateway: '10.1.2.1' });
    expect(system.interfaces['eth0']).toMatchObject({ mac_address: MAC, ip_address: '10.1.2.2' });
    expect(w.vm.vms.get('web-01')).toEqual({ running: true });
  });

  it('deletes: every provider removes what it owns, Cobbler logs in again after its token expired', async () => {
    const w = world();
    const created = await run(w, CREATE);
    server.expireTokens();
    const deleted = await run(w, [{ path: 'present', op: 'unset' }], created.attrs);

    expect(deleted.failure).toBeUndefined();
    expect(deleted.phase).toBe('succeeded');
    // The released address wakes the Cobbler watcher once more, which finds nothing left to remove.
    expect(roundShape(deleted)).toEqual([['cobbler', 'fake-vm', 'inventory', 'ipam'], ['cobbler']]);
    expect(operationsOf(deleted).map((o) => `${o.round}:${o.provider}:${o.action}`)).toEqual([
      '1:cobbler:remove-system',
      '1:fake-vm:undefine',
      '1:inventory:remove',
      '1:ipam:release-ip',
    ]);
    expect(server.systems()).toEqual([]);
    expect(server.calls.filter((c) => c.method === 'login')).toHaveLength(2);
    expect(deleted.attrs['profile']).toBeUndefined();
    expect(deleted.attrs['netboot']).toBeUndefined();
  });

  it('follows a new MAC into the Cobbler system through its watch on interfaces', async () => {
    const w = world();
    const created = await run(w, CREATE);
    const changed = await run(
      w,
      [{ path: 'interfaces[eth0].mac', op: 'set', value: '52:54:00:00:00:99' }],
      created.attrs,
    );

    expect(changed.failure).toBeUndefined();
    expect(roundShape(changed)).toEqual([['fake-vm'], ['cobbler']]);
    const cobblerTask = changed.rounds[1]!.tasks[0]!;
    expect(cobblerTask.updates.map((u) => `${u.op} ${u.path}`)).toEqual(['sync interfaces']);
    expect(cobblerTask.outcome?.operations?.map((o) => o.detail)).toEqual([
      `updated system web-01: mac_address-eth0 ${MAC} -> 52:54:00:00:00:99`,
      'ran cobbler sync to delete the PXE file of the old MAC',
    ]);
    expect(server.systems()).toHaveLength(1);
    expect(server.system('web-01')!.interfaces['eth0']!['mac_address']).toBe('52:54:00:00:00:99');
    expect(server.pxeFiles()).toEqual(['pxelinux.cfg/01-52-54-00-00-00-99']);
  });

  it('runs again without a second system and without writing to Cobbler', async () => {
    const w = world();
    const first = await run(w, CREATE);
    const saves = server.calls.filter((c) => c.method === 'save_system').length;
    // A host whose MAC and IP hold already: the same registration again must converge.
    const again = await run(w, [{ path: 'profile', op: 'set', value: 'debian12' }], first.attrs);
    expect(again.phase).toBe('succeeded');
    expect(server.systems()).toHaveLength(1);
    expect(server.calls.filter((c) => c.method === 'save_system')).toHaveLength(saves);
  });

  it("fails the job with the fault's reason when Cobbler refuses the save", async () => {
    const w = world();
    server.injectFault('save_system', 'Error with system web-01 - disk full');
    const failed = await run(w, CREATE);
    expect(failed.phase).toBe('failed');
    expect(failed.failure).toEqual({
      code: 'BACKEND_ERROR',
      message:
        "cobbler failed: Cobbler fault in save_system: <class 'cobbler.cexceptions.CX'>:'Error with system web-01 - disk full'",
      providers: ['cobbler'],
    });
    // A fault is permanent: no retry.
    expect(failed.rounds[1]!.tasks[0]!.attempts).toBe(1);
    expect(server.systems()).toEqual([]);
  });

  it('retries a task while Cobbler is unreachable and succeeds once it is back', async () => {
    const w = world();
    await server.stop();
    const clock = virtualClock(1_000, async () => {
      await server.start();
    });
    const created = await run(w, CREATE, {}, clock);

    expect(created.failure).toBeUndefined();
    expect(created.phase).toBe('succeeded');
    const task = created.rounds[1]!.tasks[0]!;
    expect(task.provider).toBe('cobbler');
    expect(task.attempts).toBe(2);
    expect(task.retriedErrors).toEqual([
      {
        code: 'BACKEND_UNAVAILABLE',
        message: `Cobbler at ${server.url} is unreachable: connect ECONNREFUSED 127.0.0.1:${server.port}`,
        retryable: true,
        details: { method: 'get_system', code: 'ECONNREFUSED' },
      },
    ]);
    expect(clock.sleeps).toEqual([DEFAULT_PLANNER_OPTIONS.retryBackoff.initialMs]);
    expect(server.system('web-01')?.netboot_enabled).toBe(true);
  });

  it('explains the same three rounds without writing to Cobbler', async () => {
    const w = world();
    const plan = await explainPlan(
      w.planner,
      { jobId: 'explain', kind: 'host', name: 'web-01', current: {}, updates: CREATE },
      w.providers,
    );
    expect(plan.failure).toBeUndefined();
    expect(plan.outcome).toBe('succeeded');
    expect(plan.rounds.map((r) => r.tasks.map((t) => t.provider))).toEqual([
      ['fake-vm', 'inventory', 'ipam'],
      ['cobbler'],
      ['fake-vm'],
    ]);
    expect(plan.rounds[1]!.tasks[0]!.outcome?.operations?.[0]?.detail).toMatch(
      /^registered system web-01 \(mac 52:54:00:00:00:01, ip .*, profile debian12, netboot on\)$/,
    );
    expect(server.systems()).toEqual([]);
    expect(
      server.calls.map((c) => c.method).filter((m) => !m.startsWith('get_') && m !== 'find_system'),
    ).toEqual([]);
  });
});
