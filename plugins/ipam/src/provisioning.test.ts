/**
 * The DESIGN.md §2 flow with the real built-in plugins (inventory, ipam, sandbox) through the real planner and
 * the real SQLite store: create a host in three rounds, explain one without side effects, delete it again.
 */
import type { Store, NodeProvider, PlannerState, PluginServices } from '@consortium/core';
import {
  buildKindSchemas,
  DEFAULT_PLANNER_OPTIONS,
  explainPlan,
  operationsOf,
  runPlan,
  silentLogger,
  TransitionPlanner,
} from '@consortium/core';
import { CREATE_WEB_01 } from '@consortium/testkit';
import type { SqliteStore } from '@consortium/store-sqlite';
import { openSqliteStore } from '@consortium/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as inventory } from '@consortium/plugin-inventory';
import { plugin as sandbox } from '@consortium/plugin-sandbox';
import { plugin as ipam } from './index.js';
import { macFor } from '@consortium/plugin-api';
import { virtualClock } from '@consortium/testkit';

/** The addresses .2 to .33 are kept for network gear, so the first host gets 10.1.2.34 as in DESIGN.md §2. */
const PEK1_WEB = {
  present: true,
  cidr: '10.1.2.0/24',
  gateway: '10.1.2.1',
  vlan: 100,
  datacenter: 'pek1',
  reserved: Array.from({ length: 32 }, (_, i) => `10.1.2.${i + 2}`),
};

let store: SqliteStore;
let refused: number;

/** The store as plugins see it, counting refused reservations to show that allocations really raced. */
function countingStore(inner: Store): Store {
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'reserve') {
        return async (namespace: string, key: string, owner: string) => {
          const ok = await target.reserve(namespace, key, owner);
          if (!ok) refused++;
          return ok;
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function world() {
  const services: PluginServices = { logger: silentLogger, store: countingStore(store), now: () => 0 };
  const providers: NodeProvider[] = [
    ...inventory.providers({}, services),
    ...ipam.providers({}, services),
    ...sandbox.providers({ delayMs: 1 }, services),
  ];
  const schemas = buildKindSchemas(inventory.kinds ?? [], providers);
  const host = schemas.get('host')!;
  const hostProviders = new Map(providers.filter((p) => p.kind === 'host').map((p) => [p.name, p]));
  return { schemas, planner: new TransitionPlanner(host, DEFAULT_PLANNER_OPTIONS), providers: hostProviders };
}

type World = ReturnType<typeof world>;

function create(w: World, name: string, jobId = `create-${name}`): Promise<PlannerState> {
  const clock = virtualClock();
  const state = w.planner.start(
    { jobId, kind: 'host', name, current: {}, updates: CREATE_WEB_01 },
    clock.now(),
  );
  return runPlan(w.planner, state, w.providers, { clock });
}

const roundShape = (state: PlannerState): string[][] =>
  state.rounds.map((r) => r.tasks.map((t) => t.provider));

beforeEach(async () => {
  store = await openSqliteStore({ path: ':memory:' });
  refused = 0;
  await store.insertNode('subnet', 'pek1-web', PEK1_WEB, 0);
});

afterEach(async () => {
  await store.close();
});

describe('provisioning a host with inventory, ipam and sandbox (DESIGN.md §2)', () => {
  it('accepts the subnet node it allocates from under the subnet schema', () => {
    expect(() => {
      world().schemas.get('subnet')!.assertValid(PEK1_WEB);
    }).not.toThrow();
  });

  it('creates in three rounds, then deletes and gives everything back', async () => {
    const w = world();
    const created = await create(w, 'web-01');

    expect(created.failure).toBeUndefined();
    expect(created.phase).toBe('succeeded');
    expect(roundShape(created)).toEqual([
      ['inventory', 'ipam', 'sandbox-vm'],
      ['sandbox-pxe'],
      ['sandbox-vm'],
    ]);
    const [r1, r2, r3] = created.rounds;
    const vm1 = r1!.tasks.find((t) => t.provider === 'sandbox-vm')!;
    expect(vm1.outcome?.deferred).toEqual([
      { id: 'u7', reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] },
    ]);
    expect(r2!.tasks[0]!.updates.map((u) => `${u.op} ${u.path}`)).toEqual(['sync interfaces']);
    expect(r2!.tasks[0]!.outcome?.set).toEqual({ profile: 'sandbox-debian-12', netboot: true });
    expect(r3!.tasks[0]!.updates.map((u) => u.id)).toEqual(['u7']);

    const mac = created.attrs['interfaces'] as { mac: string }[];
    expect(mac[0]!.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(created.attrs).toEqual({
      present: true,
      hwspec: 'small',
      datacenter: 'pek1',
      subcluster: 'web',
      subnet: 'pek1-web',
      puppet_roles: ['nginx'],
      power: 'on',
      hypervisor: 'sandbox-hv-1',
      profile: 'sandbox-debian-12',
      netboot: true,
      interfaces: [
        { name: 'eth0', ip: '10.1.2.34', netmask: '255.255.255.0', gateway: '10.1.2.1', mac: mac[0]!.mac },
      ],
    });
    expect(operationsOf(created).map((o) => `${o.round}:${o.provider}:${o.action}`)).toEqual([
      '1:inventory:record',
      '1:inventory:record',
      '1:inventory:record',
      '1:ipam:allocate-ip',
      '1:sandbox-vm:define',
      '2:sandbox-pxe:add-system',
      '3:sandbox-vm:start',
    ]);
    for (const op of operationsOf(created).filter((o) => o.provider.startsWith('sandbox-'))) {
      expect(op.detail).toMatch(/^\[simulated\] /);
    }
    expect(await store.listReservations('ipam/pek1-web')).toEqual([
      { key: '10.1.2.34', owner: 'host/web-01' },
    ]);
    const ref = { kind: 'host', name: 'web-01' };
    const context = {
      logger: silentLogger,
      signal: new AbortController().signal,
      fencingToken: '0',
      now: () => 0,
    };
    expect(await w.providers.get('sandbox-vm')!.observe?.(ref, context)).toEqual({
      hwspec: 'small',
      power: 'on',
      hypervisor: 'sandbox-hv-1',
      interfaces: [{ name: 'eth0', mac: mac[0]!.mac }],
    });
    expect(await w.providers.get('sandbox-pxe')!.observe?.(ref, context)).toEqual({
      profile: 'sandbox-debian-12',
      netboot: true,
    });

    const clock = virtualClock();
    const deleting = w.planner.start(
      {
        jobId: 'delete-web-01',
        kind: 'host',
        name: 'web-01',
        current: created.attrs,
        updates: [{ path: 'present', op: 'unset' }],
      },
      clock.now(),
    );
    const deleted = await runPlan(w.planner, deleting, w.providers, { clock });
    expect(deleted.failure).toBeUndefined();
    expect(deleted.phase).toBe('succeeded');
    // Everyone removes what it owns; the unset addresses wake the PXE watcher once more, which finds nothing left.
    expect(roundShape(deleted)).toEqual([
      ['inventory', 'ipam', 'sandbox-pxe', 'sandbox-vm'],
      ['sandbox-pxe'],
    ]);
    expect(deleted.rounds[1]!.tasks[0]!.outcome).toEqual({
      accepted: [deleted.rounds[1]!.tasks[0]!.updates[0]!.id],
    });
    expect(operationsOf(deleted).map((o) => `${o.round}:${o.provider}:${o.action}`)).toEqual([
      '1:inventory:remove',
      '1:ipam:release-ip',
      '1:sandbox-pxe:remove-system',
      '1:sandbox-vm:stop',
      '1:sandbox-vm:undefine',
    ]);
    expect(deleted.attrs).toEqual({
      datacenter: 'pek1',
      subcluster: 'web',
      subnet: 'pek1-web',
      puppet_roles: ['nginx'],
      interfaces: [{ name: 'eth0' }],
    });
    expect(await store.listReservations('ipam/pek1-web')).toEqual([]);
    expect(await w.providers.get('sandbox-vm')!.observe?.(ref, context)).toBeNull();
    expect(await w.providers.get('sandbox-pxe')!.observe?.(ref, context)).toBeNull();

    // The address is free again for the next host.
    const next = await create(w, 'web-02');
    expect((next.attrs['interfaces'] as { ip: string }[])[0]!.ip).toBe('10.1.2.34');
  });

  it('explains the same three rounds without reserving, defining or registering anything', async () => {
    const w = world();
    const plan = await explainPlan(
      w.planner,
      { jobId: 'explain', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 },
      w.providers,
    );
    expect(plan.failure).toBeUndefined();
    expect(plan.outcome).toBe('succeeded');
    expect(plan.rounds.map((r) => r.tasks.map((t) => t.provider))).toEqual([
      ['inventory', 'ipam', 'sandbox-vm'],
      ['sandbox-pxe'],
      ['sandbox-vm'],
    ]);
    // The hypervisor decision (shared with libvirt) predicts the placement and the MAC, which is derived from the
    // name; only the address waits for its reservation.
    expect(plan.later).toEqual([{ path: 'interfaces[eth0].ip', provider: 'ipam' }]);
    expect(plan.rounds[0]!.tasks[2]!.outcome?.set).toEqual({
      hypervisor: 'sandbox-hv-1',
      'interfaces[eth0].mac': macFor('web-01', new Set()),
    });
    const pxe = plan.rounds[1]!.tasks[0]!.outcome?.operations?.[0]?.detail;
    expect(pxe).toBe(
      `[simulated] registered system web-01 (mac ${macFor('web-01', new Set())}, ip <ip from ipam>, profile sandbox-debian-12, netboot on)`,
    );
    expect(await store.listReservations('ipam/pek1-web')).toEqual([]);
    const ref = { kind: 'host', name: 'web-01' };
    const context = {
      logger: silentLogger,
      signal: new AbortController().signal,
      fencingToken: '0',
      now: () => 0,
    };
    expect(await w.providers.get('sandbox-vm')!.observe?.(ref, context)).toBeNull();
    expect(await w.providers.get('sandbox-pxe')!.observe?.(ref, context)).toBeNull();
  });

  it('fails the job when the subnet does not exist', async () => {
    const w = world();
    const clock = virtualClock();
    const updates = CREATE_WEB_01.map((u) => (u.path === 'subnet' ? { ...u, value: 'pek9-nowhere' } : u));
    const state = w.planner.start(
      { jobId: 'j', kind: 'host', name: 'web-01', current: {}, updates },
      clock.now(),
    );
    const end = await runPlan(w.planner, state, w.providers, { clock });
    expect(end.phase).toBe('failed');
    expect(end.failure).toEqual({
      code: 'REJECTED',
      message: 'ipam rejected subnet="pek9-nowhere": subnet "pek9-nowhere" does not exist',
      providers: ['ipam'],
    });
  });

  it('creates 20 hosts at once: distinct addresses and MACs, until the simulated hypervisors are full', async () => {
    const w = world();
    const names = Array.from({ length: 20 }, (_, i) => `web-${String(i + 1).padStart(2, '0')}`);
    const states = await Promise.all(names.map((name) => create(w, name)));
    // Two simulated hypervisors of 16 vcpus take eight small VMs each.
    const done = states.filter((s) => s.phase === 'succeeded');
    const failed = states.filter((s) => s.phase !== 'succeeded');
    expect(done).toHaveLength(16);
    expect(failed.map((s) => s.failure)).toEqual(
      failed.map(() => ({
        code: 'REJECTED',
        message:
          'sandbox-vm rejected hwspec="small": no simulated hypervisor has room for a small: 2 vcpus, 4096 MiB VM',
        providers: ['sandbox-vm'],
      })),
    );
    const eth0 = done.map((s) => (s.attrs['interfaces'] as { ip: string; mac: string }[])[0]!);
    expect(new Set(eth0.map((i) => i.ip)).size).toBe(16);
    expect(new Set(eth0.map((i) => i.mac)).size).toBe(16);
    expect(done.filter((s) => s.attrs['hypervisor'] === 'sandbox-hv-1')).toHaveLength(8);
    // A failed create keeps what the other providers did in the same round, as any partial failure does; deleting
    // the host gives its address back.
    const reservations = await store.listReservations('ipam/pek1-web');
    expect(new Set(reservations.map((r) => r.key)).size).toBe(20);
  });

  it('never gives one address to two hosts: 100 concurrent allocations against SQLite', async () => {
    const provider = world().providers.get('ipam')!;
    const context = {
      logger: silentLogger,
      signal: new AbortController().signal,
      fencingToken: '0',
      now: () => 0,
    };
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        provider.apply(
          {
            id: `j${i}/r1/ipam`,
            jobId: `j${i}`,
            round: 1,
            attempt: 1,
            provider: 'ipam',
            kind: 'host',
            name: `host-${i}`,
            node: { present: true },
            updates: [{ id: 'u1', path: 'subnet', op: 'set', value: 'pek1-web', origin: 'user' }],
          },
          context,
        ),
      ),
    );
    const ips = outcomes.map((o) => o.set?.['interfaces[eth0].ip']);
    expect(new Set(ips).size).toBe(100);
    expect(ips.every((ip) => typeof ip === 'string' && ip.startsWith('10.1.2.'))).toBe(true);
    expect(refused).toBeGreaterThan(0);
    const reservations = await store.listReservations('ipam/pek1-web');
    expect(reservations).toHaveLength(100);
    expect(new Set(reservations.map((r) => r.key)).size).toBe(100);
  });
});
