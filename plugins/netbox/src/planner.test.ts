/**
 * netbox through the real planner (`runPlan`, virtual clock) beside inventory configured with
 * `hostAttributes: []`, against the real NetBox test server: create, re-run, patch, delete, retries of a
 * NetBox in maintenance behind its proxy (503), a refused change (400), explain and drift.
 */
import type { Logger, NodeProvider, PlannerState, PluginServices, UpdateRequest } from '@consortium/core';
import {
  buildKindSchemas,
  DEFAULT_PLANNER_OPTIONS,
  explainPlan,
  operationsOf,
  runPlan,
  TransitionPlanner,
} from '@consortium/core';
import { plugin as inventory } from '@consortium/plugin-inventory';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as netbox } from './index.js';
import { virtualClock } from '@consortium/testkit';

const TOKEN = 'feedfacefeedfacefeedfacefeedfacefeedface';

let server: NetboxServer;
let logged: string[];

const logger: Logger = {
  debug: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
  info: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
  warn: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
  error: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
};

function world() {
  const services = { logger, now: () => 0 } as unknown as PluginServices;
  const providers: NodeProvider[] = [
    ...inventory.providers({ hostAttributes: [] }, services),
    ...netbox.providers({ url: server.url, token: TOKEN }, services),
  ];
  const host = buildKindSchemas(inventory.kinds ?? [], providers).get('host')!;
  return {
    planner: new TransitionPlanner(host, DEFAULT_PLANNER_OPTIONS),
    providers: new Map(providers.filter((p) => p.kind === 'host').map((p) => [p.name, p])),
  };
}

type World = ReturnType<typeof world>;

async function run(
  w: World,
  updates: readonly UpdateRequest[],
  current: PlannerState['attrs'] = {},
  clock = virtualClock(),
): Promise<PlannerState> {
  const state = w.planner.start(
    { jobId: 'job-1', kind: 'host', name: 'web-01', current, updates },
    clock.now(),
  );
  return runPlan(w.planner, state, w.providers, { clock, logger });
}

const CREATE: readonly UpdateRequest[] = [
  { path: 'present', op: 'set', value: true },
  { path: 'hostname', op: 'set', value: 'web-01.pek1.example.com' },
  { path: 'datacenter', op: 'set', value: 'pek1' },
  { path: 'subcluster', op: 'set', value: 'web' },
  { path: 'owner', op: 'set', value: 'web-team' },
  { path: 'puppet_roles', op: 'add', value: 'nginx' },
];

const roundShape = (state: PlannerState): string[][] =>
  state.rounds.map((r) => r.tasks.map((t) => t.provider));
const writes = (): string[] =>
  server.state.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);

beforeEach(async () => {
  logged = [];
  server = await startNetboxServer({ tokens: [TOKEN] });
  server.seed({
    sites: [
      { name: 'Beijing 1', slug: 'pek1' },
      { name: 'Shanghai 2', slug: 'sha2' },
    ],
    clusters: [
      { name: 'web', site: 'pek1' },
      { name: 'db', site: 'sha2' },
    ],
    tenants: [{ name: 'Web team', slug: 'web-team' }],
  });
});

afterEach(async () => {
  await server.stop();
  expect(logged.join('\n')).not.toContain(TOKEN);
});

describe('netbox through the planner', () => {
  it('creates the host in one round beside inventory, and NetBox fills in the status it defaulted', async () => {
    const state = await run(world(), CREATE);

    expect(state.failure).toBeUndefined();
    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['inventory', 'netbox']]);
    expect(state.attrs).toEqual({
      present: true,
      hostname: 'web-01.pek1.example.com',
      datacenter: 'pek1',
      subcluster: 'web',
      owner: 'web-team',
      puppet_roles: ['nginx'],
      status: 'active',
    });
    expect(operationsOf(state).map((o) => `${o.provider}:${o.action}`)).toEqual([
      'inventory:record',
      'netbox:create-tag',
      'netbox:create-vm',
    ]);
    const vm = server.state.vm('web-01');
    expect(server.state.tagNames(vm)).toEqual(['nginx']);
    expect(server.state.sites.get(vm.siteId)?.slug).toBe('pek1');
    expect(JSON.stringify(state)).not.toContain(TOKEN);
  });

  it('converges again without a second VM when the same create runs again', async () => {
    const w = world();
    const first = await run(w, CREATE);
    const before = writes();
    const again = await run(w, CREATE, first.attrs);
    expect(again.phase).toBe('succeeded');
    expect(again.attrs).toEqual(first.attrs);
    expect(writes()).toEqual(before);
    expect(server.state.vmsByName('web-01')).toHaveLength(1);
  });

  it('patches roles: adds one and removes another', async () => {
    const w = world();
    const created = await run(w, CREATE);
    const patched = await run(
      w,
      [
        { path: 'puppet_roles', op: 'add', value: 'redis' },
        { path: 'puppet_roles', op: 'remove', value: 'nginx' },
      ],
      created.attrs,
    );
    expect(patched.phase).toBe('succeeded');
    expect(patched.attrs['puppet_roles']).toEqual(['redis']);
    expect(server.state.tagNames(server.state.vm('web-01'))).toEqual(['redis']);
    expect(operationsOf(patched).map((o) => `${o.action}: ${o.detail}`)).toEqual([
      'create-tag: tag redis (slug redis) for a Puppet role',
      'update-vm: roles +redis −nginx',
    ]);
  });

  it('deletes the VM when the host is deleted', async () => {
    const w = world();
    const created = await run(w, CREATE);
    const deleted = await run(w, [{ path: 'present', op: 'unset' }], created.attrs);
    expect(deleted.phase).toBe('succeeded');
    expect(roundShape(deleted)).toEqual([['inventory', 'netbox']]);
    expect(server.state.vmsByName('web-01')).toEqual([]);
    expect(deleted.attrs).toEqual({ hostname: 'web-01.pek1.example.com' });
  });

  it('retries while NetBox answers 503, then succeeds when the fault clears', async () => {
    server.injectFault({ path: '/api/', status: 503, times: 2 });
    const clock = virtualClock();
    const state = await run(world(), CREATE, {}, clock);

    expect(state.phase).toBe('succeeded');
    const task = state.rounds[0]!.tasks.find((t) => t.provider === 'netbox')!;
    expect(task.attempts).toBe(3);
    expect(task.retriedErrors?.map((e) => `${e.code} ${e.retryable}: ${e.message}`)).toEqual([
      'BACKEND_UNAVAILABLE true: NetBox could not look up virtual machine web-01: 503 503 Service Temporarily Unavailable',
      'BACKEND_UNAVAILABLE true: NetBox could not look up virtual machine web-01: 503 503 Service Temporarily Unavailable',
    ]);
    // The planner's retry backoff: 200 ms, then 400 ms.
    expect(clock.sleeps).toEqual([200, 400]);
    expect(server.state.vmsByName('web-01')).toHaveLength(1);
  });

  it('fails after the last attempt when NetBox stays in maintenance', async () => {
    server.setMaintenance(true);
    const state = await run(world(), CREATE);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'BACKEND_UNAVAILABLE',
      message:
        'netbox failed after 5 attempts: NetBox could not create tag nginx: 500 cannot execute INSERT in a read-only transaction',
      providers: ['netbox'],
    });
    expect(server.state.vmsByName('web-01')).toEqual([]);
  });

  it('fails the job with NetBox field message on a 400', async () => {
    server.injectFault({
      method: 'POST',
      path: '/api/virtualization/virtual-machines/',
      status: 400,
      body: { name: ['Ensure this field has no more than 64 characters.'] },
    });
    const injected = await run(world(), CREATE);
    expect(injected.phase).toBe('failed');
    expect(injected.failure).toEqual({
      code: 'BACKEND_ERROR',
      message:
        'netbox failed: NetBox refused to create virtual machine web-01: name: Ensure this field has no more than 64 characters.',
      providers: ['netbox'],
    });
    expect(injected.rounds[0]!.tasks.find((t) => t.provider === 'netbox')!.attempts).toBe(1);

    const w = world();
    const created = await run(w, CREATE);
    const moved = await run(w, [{ path: 'subcluster', op: 'set', value: 'db' }], created.attrs);
    expect(moved.failure?.message).toBe(
      'netbox failed: NetBox refused to update virtual machine web-01: cluster: The selected cluster (db) is not assigned to this site (Beijing 1).',
    );
  });

  it('fails with a clear reason for a site NetBox does not have', async () => {
    const state = await run(world(), [
      { path: 'present', op: 'set', value: true },
      { path: 'datacenter', op: 'set', value: 'pek9' },
    ]);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'REJECTED',
      message: 'netbox rejected datacenter="pek9": NetBox has no site with slug "pek9" (datacenter)',
      providers: ['netbox'],
    });
  });

  it('explains a create without writing to NetBox', async () => {
    const w = world();
    const plan = await explainPlan(
      w.planner,
      { jobId: 'explain-1', kind: 'host', name: 'web-01', current: {}, updates: CREATE },
      w.providers,
    );
    expect(plan.outcome).toBe('succeeded');
    expect(
      plan.rounds[0]!.tasks.find((t) => t.provider === 'netbox')!.outcome?.operations?.map((o) => o.action),
    ).toEqual(['create-tag', 'create-vm']);
    expect(writes()).toEqual([]);
  });

  it('observes what NetBox holds, so drift from the node shows', async () => {
    const w = world();
    const created = await run(w, CREATE);
    const vm = server.state.vm('web-01');
    vm.status = 'offline';
    vm.tagIds = [];
    const observed = await w.providers.get('netbox')!.observe!(
      { kind: 'host', name: 'web-01' },
      { logger, signal: new AbortController().signal, fencingToken: '0', now: () => 0 },
    );
    const drift = Object.keys(observed ?? {})
      .concat(['puppet_roles'])
      .filter((path, i, all) => all.indexOf(path) === i)
      .filter((path) => JSON.stringify(observed?.[path]) !== JSON.stringify(created.attrs[path]));
    expect(observed).toEqual({ datacenter: 'pek1', subcluster: 'web', owner: 'web-team', status: 'offline' });
    expect(drift.sort()).toEqual(['puppet_roles', 'status']);

    // The next change through Consortium takes NetBox's word for the values it owns.
    const next = await run(w, [{ path: 'owner', op: 'set', value: 'web-team' }], created.attrs);
    expect(next.phase).toBe('succeeded');
    expect(next.attrs['status']).toBe('offline');
    expect(next.attrs['puppet_roles']).toBeUndefined();
  });
});
