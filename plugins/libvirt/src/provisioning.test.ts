/**
 * The DESIGN.md §2 flow end to end through the real planner: the inventory and ipam plugins on the SQLite store,
 * the Cobbler plugin against the Cobbler 3.3 test server, and the libvirt plugin against the real lab (libvirtd
 * over sshd). Round 1 inventory, ipam and libvirt (defines the domain, defers power); round 2 Cobbler registers the
 * system with the domain's MAC; round 3 libvirt starts the domain.
 */
import type { Attrs, NodeProvider, PlannerState, PluginServices, UpdateRequest } from '@consortium/core';
import {
  buildKindSchemas,
  DEFAULT_PLANNER_OPTIONS,
  explainPlan,
  operationsOf,
  runPlan,
  silentLogger,
  TransitionPlanner,
} from '@consortium/core';
import { plugin as cobbler } from '@consortium/plugin-cobbler';
import { plugin as inventory } from '@consortium/plugin-inventory';
import { plugin as ipam } from '@consortium/plugin-ipam';
import type { SqliteStore } from '@consortium/store-sqlite';
import { openSqliteStore } from '@consortium/store-sqlite';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LibvirtHypervisorConfig, LibvirtProvider } from './index.js';
import { plugin as libvirt } from './index.js';
import { virtualClock } from '@consortium/testkit';

const PREFIX = 'lve-';

const CREATE: readonly UpdateRequest[] = [
  { path: 'present', op: 'set', value: true },
  { path: 'hwspec', op: 'set', value: 'small' },
  { path: 'datacenter', op: 'set', value: 'pek1' },
  { path: 'subnet', op: 'set', value: 's1' },
  { path: 'puppet_roles', op: 'add', value: 'nginx' },
  { path: 'power', op: 'set', value: 'on' },
];

let lab: LibvirtLab;
let store: SqliteStore;
let server: CobblerTestServer;
const opened: LibvirtProvider[] = [];

beforeAll(async () => {
  lab = await startLibvirtLab();
}, 120_000);

afterAll(async () => {
  await lab.stop();
});

beforeEach(async () => {
  store = await openSqliteStore({ path: ':memory:' });
  await store.insertNode(
    'subnet',
    's1',
    { present: true, cidr: '10.1.2.0/24', gateway: '10.1.2.1' },
    Date.now(),
  );
  // The hypervisor node the plugin's config seeds when the server starts; placement goes by it.
  await store.insertNode('hypervisor', 'lab', { present: true, schedulable: true }, Date.now());
  server = await startCobblerServer({ users: { consortium: 'pxe-secret' }, profiles: ['debian12'] });
});

afterEach(async () => {
  for (const provider of opened.splice(0)) provider.close();
  await server.stop();
  await store.close();
  // Powering a TCG domain off takes a second or two; remove them all at once.
  const names = (await lab.domains()).filter((name) => name.startsWith(PREFIX));
  await Promise.all(names.map((name) => lab.removeDomain(name)));
});

function world(overrides: Partial<LibvirtHypervisorConfig> = {}) {
  const services: PluginServices = { logger: silentLogger, store, now: () => Date.now() };
  const vm = libvirt.providers(
    {
      hypervisors: [
        {
          name: 'lab',
          host: lab.host,
          port: lab.port,
          user: lab.user,
          privateKey: lab.privateKey,
          hostKey: lab.hostKey,
          memoryMib: 1_000_000,
          domainType: 'qemu',
          network: { type: 'user' },
          ...overrides,
        },
      ],
      hwspecs: { small: { vcpus: 1, memoryMib: 48 }, large: { vcpus: 1, memoryMib: 96 } },
    },
    services,
  )[0] as LibvirtProvider;
  opened.push(vm);
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
    planner: new TransitionPlanner(host, DEFAULT_PLANNER_OPTIONS),
    providers: new Map(providers.filter((p) => p.kind === 'host').map((p) => [p.name, p])),
  };
}

type World = ReturnType<typeof world>;

function run(
  w: World,
  name: string,
  updates: readonly UpdateRequest[],
  current: Attrs = {},
  clock = virtualClock(),
): Promise<PlannerState> {
  const state = w.planner.start({ jobId: `job-${name}`, kind: 'host', name, current, updates }, clock.now());
  return runPlan(w.planner, state, w.providers, { clock });
}

const roundShape = (state: PlannerState): string[][] =>
  state.rounds.map((r) => r.tasks.map((t) => t.provider));
const operations = (state: PlannerState): string[] =>
  operationsOf(state).map((o) => `${o.round}:${o.provider}:${o.action}`);

/** The MAC of the domain's interface, as `virsh domiflist` shows it. */
async function domainMac(name: string): Promise<string | undefined> {
  const lines = (await lab.virsh(['domiflist', name])).split('\n').slice(2);
  return lines.map((line) => line.trim().split(/\s+/)[4]).find((mac) => mac !== undefined);
}

describe('provisioning a VM with inventory, ipam, Cobbler and libvirt (DESIGN.md §2)', () => {
  it('creates in three rounds and the running domain has the MAC Cobbler registered', async () => {
    const w = world();
    const name = `${PREFIX}web-01`;
    const created = await run(w, name, CREATE);

    expect(created.failure).toBeUndefined();
    expect(created.phase).toBe('succeeded');
    expect(roundShape(created)).toEqual([['inventory', 'ipam', 'libvirt'], ['cobbler'], ['libvirt']]);
    expect(created.rounds[0]!.tasks[2]!.outcome?.deferred).toEqual([
      { id: 'u6', reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] },
    ]);
    expect(operations(created)).toEqual([
      '1:inventory:record',
      '1:inventory:record',
      '1:ipam:allocate-ip',
      '1:libvirt:define',
      '2:cobbler:add-system',
      '3:libvirt:start',
    ]);

    const system = server.system(name)!;
    const mac = system.interfaces['eth0']!['mac_address'];
    expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect((await lab.virsh(['domstate', name])).trim()).toBe('running');
    expect(await domainMac(name)).toBe(mac);
    expect(created.attrs).toMatchObject({
      present: true,
      hwspec: 'small',
      power: 'on',
      hypervisor: 'lab',
      profile: 'debian12',
      netboot: true,
      interfaces: [{ name: 'eth0', ip: '10.1.2.2', mac }],
    });

    const deleted = await run(w, name, [{ path: 'present', op: 'unset' }], created.attrs);
    expect(deleted.failure).toBeUndefined();
    expect(deleted.phase).toBe('succeeded');
    expect(operations(deleted)).toEqual([
      '1:cobbler:remove-system',
      '1:inventory:remove',
      '1:ipam:release-ip',
      '1:libvirt:destroy',
      '1:libvirt:undefine',
    ]);
    expect(await lab.domains()).not.toContain(name);
    expect(server.systems()).toEqual([]);
    expect(deleted.attrs['hypervisor']).toBeUndefined();
  });

  it('explains the same three rounds without defining anything', async () => {
    const w = world();
    const name = `${PREFIX}explain`;
    const plan = await explainPlan(
      w.planner,
      { jobId: 'explain', kind: 'host', name, current: {}, updates: CREATE },
      w.providers,
    );
    expect(plan.failure).toBeUndefined();
    expect(plan.outcome).toBe('succeeded');
    expect(plan.rounds.map((r) => r.tasks.map((t) => t.provider))).toEqual([
      ['inventory', 'ipam', 'libvirt'],
      ['cobbler'],
      ['libvirt'],
    ]);
    expect(plan.rounds[2]!.tasks[0]!.outcome?.operations?.map((o) => o.detail)).toEqual([
      `started domain ${name}`,
    ]);
    expect(await lab.domains()).not.toContain(name);
    expect(server.systems()).toEqual([]);
  });

  it("fails the job with virsh's reason when the domain cannot start", async () => {
    const w = world({ network: { type: 'network', source: 'consortium-missing-net' } });
    const name = `${PREFIX}nostart`;
    const failed = await run(w, name, CREATE);
    expect(failed.phase).toBe('failed');
    expect(failed.failure).toEqual({
      code: 'BACKEND_ERROR',
      message:
        `libvirt failed: virsh start ${name} on lab: Failed to start domain '${name}': ` +
        "Network not found: no network with matching name 'consortium-missing-net'",
      providers: ['libvirt'],
    });
    expect(failed.rounds[2]!.tasks[0]!.attempts).toBe(1);
    expect((await lab.virsh(['domstate', name])).trim()).toBe('shut off');
  });

  it('rejects a host no hypervisor has room for, before anything is registered', async () => {
    const w = world({ memoryMib: 40 });
    const name = `${PREFIX}noroom`;
    const failed = await run(w, name, CREATE);
    expect(failed.phase).toBe('failed');
    expect(failed.failure?.code).toBe('REJECTED');
    expect(failed.failure?.message).toMatch(
      /^libvirt rejected hwspec="small": no hypervisor has room for a small: 1 vcpus, 48 MiB VM: lab has -?\d+ MiB free of 40 MiB$/,
    );
    expect(await lab.domains()).not.toContain(name);
  });

  it('retries while the hypervisor is unreachable, then fails as unavailable', async () => {
    const w = world({ port: 1 });
    const clock = virtualClock();
    const failed = await run(w, `${PREFIX}refused`, CREATE, {}, clock);
    expect(failed.phase).toBe('failed');
    expect(failed.failure).toEqual({
      code: 'BACKEND_UNAVAILABLE',
      message: `libvirt failed after 5 attempts: hypervisor lab (ssh ${lab.user}@127.0.0.1:1) is unreachable: connect ECONNREFUSED 127.0.0.1:1`,
      providers: ['libvirt'],
    });
    expect(clock.sleeps).toEqual([200, 400, 800, 1600]);
  });
});
