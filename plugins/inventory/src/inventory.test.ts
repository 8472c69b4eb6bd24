import type { Clock, NodeProvider, PluginServices, ProviderContext, ProviderTask } from '@consortium/core';
import {
  buildKindSchemas,
  ClaimConflictError,
  DEFAULT_PLANNER_OPTIONS,
  InputError,
  runPlan,
  SchemaViolationError,
  silentLogger,
  TransitionPlanner,
} from '@consortium/core';
import { describe, expect, it } from 'vitest';
import type { InventoryConfig } from './index.js';
import { plugin } from './index.js';

const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;
const context: ProviderContext = {
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '0',
  now: () => 0,
};
const clock: Clock = { now: () => 0, sleep: () => Promise.resolve() };

function providers(config: InventoryConfig = {}): NodeProvider[] {
  return [...plugin.providers(config, services)];
}

function provider(kind: string, config: InventoryConfig = {}): NodeProvider {
  const found = providers(config).find((p) => p.kind === kind);
  if (found === undefined) throw new Error(`no inventory provider for ${kind}`);
  return found;
}

function schemas(extra: NodeProvider[] = [], config: InventoryConfig = {}) {
  return buildKindSchemas(plugin.kinds ?? [], [...providers(config), ...extra]);
}

function task(kind: string, node: ProviderTask['node'], updates: ProviderTask['updates']): ProviderTask {
  return {
    id: 'job-1/r1/inventory',
    jobId: 'job-1',
    round: 1,
    attempt: 1,
    provider: 'inventory',
    kind,
    name: 'x1',
    node,
    updates,
  };
}

/** The paths of a provider's claims, sorted. */
const claimed = (p: NodeProvider): string[] => p.claims.map((c) => c.path).sort();

describe('the inventory plugin', () => {
  it('defines the five basic kinds, each with one provider named inventory', () => {
    expect(plugin.id).toBe('inventory');
    expect(plugin.kinds?.map((k) => k.name)).toEqual(['host', 'hypervisor', 'subnet', 'vlan', 'vip']);
    expect(plugin.kinds?.every((k) => (k.description ?? '').length > 0)).toBe(true);
    expect(providers().map((p) => `${p.kind}/${p.name}`)).toEqual([
      'host/inventory',
      'subnet/inventory',
      'vlan/inventory',
      'vip/inventory',
      'hypervisor/inventory',
    ]);
  });

  it('claims the plain attributes of every kind', () => {
    expect(claimed(provider('host'))).toEqual([
      'datacenter',
      'description',
      'hostname',
      'interfaces',
      'owner',
      'puppet_roles',
      'status',
      'subcluster',
      'tags',
    ]);
    expect(claimed(provider('subnet'))).toEqual([
      'cidr',
      'datacenter',
      'description',
      'gateway',
      'reserved',
      'vlan',
    ]);
    expect(claimed(provider('vlan'))).toEqual(['datacenter', 'description', 'vid']);
    expect(claimed(provider('vip'))).toEqual(['address', 'members', 'port']);
    // Capacity is observed by the hypervisor provider (libvirt, the sandbox), not typed into the inventory.
    expect(claimed(provider('hypervisor'))).toEqual([
      'address',
      'datacenter',
      'description',
      'host_key_fingerprint',
      'schedulable',
      'ssh_port',
      'ssh_user',
    ]);
    expect([...schemas().keys()].sort()).toEqual(['host', 'hypervisor', 'subnet', 'vip', 'vlan']);
  });

  it('claims only the optional host attributes its config lists, so another plugin can own the rest', () => {
    expect(claimed(provider('host', { hostAttributes: ['status'] }))).toEqual([
      'description',
      'hostname',
      'interfaces',
      'status',
      'tags',
    ]);
    const netbox: NodeProvider = {
      name: 'netbox',
      kind: 'host',
      claims: [{ path: 'datacenter', schema: { type: 'string' } }],
      apply: () => Promise.resolve({}),
      explain: () => Promise.resolve({}),
    };
    expect(() => schemas([netbox])).toThrow(ClaimConflictError);
    const host = schemas([netbox], { hostAttributes: [] }).get('host')!;
    expect(host.authorityOf([{ prop: 'datacenter' }])).toBe('netbox');
    expect(host.authorityOf([{ prop: 'hostname' }])).toBe('inventory');
  });

  it('refuses an unknown optional host attribute', () => {
    const config = { hostAttributes: ['rack'] } as unknown as InventoryConfig;
    expect(() => providers(config)).toThrow(InputError);
    expect(() => providers(config)).toThrow(
      'inventory: unknown host attribute "rack" in hostAttributes (known: datacenter, subcluster, owner, status, puppet_roles)',
    );
  });

  it('validates values with the claimed schemas', () => {
    const all = schemas();
    const subnet = all.get('subnet')!;
    expect(() => {
      subnet.assertValid({ cidr: '10.1.2.0/24', gateway: '10.1.2.1', vlan: 100, reserved: ['10.1.2.2'] });
    }).not.toThrow();
    expect(subnet.checkValue([{ prop: 'cidr' }], '10.1.2.0/33')).toHaveLength(1);
    expect(subnet.checkValue([{ prop: 'cidr' }], '300.1.2.0/24')).toHaveLength(1);
    expect(subnet.checkValue([{ prop: 'gateway' }], '10.1.2.01')).toHaveLength(1);
    expect(subnet.checkValue([{ prop: 'vlan' }], 4095)).toHaveLength(1);
    expect(subnet.listSemanticsAt([{ prop: 'reserved' }])).toEqual({ type: 'set' });
    expect(all.get('vlan')!.checkValue([{ prop: 'vid' }], 0)).toHaveLength(1);
    expect(all.get('vip')!.checkValue([{ prop: 'port' }], 65536)).toHaveLength(1);
    const hypervisor = all.get('hypervisor')!;
    expect(hypervisor.checkValue([{ prop: 'host_key_fingerprint' }], 'SHA256:short')).toHaveLength(1);
    expect(hypervisor.checkValue([{ prop: 'schedulable' }], 'no')).toHaveLength(1);
    expect(hypervisor.checkValue([{ prop: 'ssh_port' }], 0)).toHaveLength(1);

    const host = all.get('host')!;
    expect(() => {
      host.assertValid({ status: 'retired' });
    }).toThrow(SchemaViolationError);
    expect(host.listSemanticsAt([{ prop: 'interfaces' }])).toEqual({ type: 'map', key: 'name' });
    expect(host.listSemanticsAt([{ prop: 'puppet_roles' }])).toEqual({ type: 'set' });
    expect(host.listSemanticsAt([{ prop: 'tags' }])).toEqual({ type: 'set' });
    expect(host.checkValue([{ prop: 'interfaces' }], [{ name: 'Eth0' }])).toHaveLength(1);
    expect(host.checkValue([{ prop: 'hostname' }], 'Web-01')).toHaveLength(1);
  });

  it('leaves interface items open for fields other plugins claim', () => {
    const ipam: NodeProvider = {
      name: 'ipam',
      kind: 'host',
      claims: [{ path: 'interfaces[*].ip', schema: { type: 'string', pattern: '^[0-9.]+$' } }],
      apply: () => Promise.resolve({}),
      explain: () => Promise.resolve({}),
    };
    const host = schemas([ipam]).get('host')!;
    expect(host.authorityOf([{ prop: 'interfaces' }, { key: 'eth0' }, { prop: 'ip' }])).toBe('ipam');
    expect(host.checkValue([{ prop: 'interfaces' }], [{ name: 'eth0', ip: '10.1.2.3' }])).toEqual([]);
    expect(host.checkValue([{ prop: 'interfaces' }], [{ name: 'eth0', ip: 'ten' }])).toHaveLength(1);
  });

  it('accepts every update and records it; explain decides the same', async () => {
    const p = provider('subnet');
    const t = task('subnet', { present: true }, [
      { id: 'u1', path: 'cidr', op: 'set', value: '10.1.2.0/24', origin: 'user' },
      { id: 'u2', path: 'reserved', op: 'add', value: '10.1.2.2', origin: 'user' },
    ]);
    const expected = {
      accepted: ['u1', 'u2'],
      operations: [
        { action: 'record', target: 'subnet/x1', detail: 'cidr' },
        { action: 'record', target: 'subnet/x1', detail: 'reserved' },
      ],
    };
    expect(await p.apply(t, context)).toEqual(expected);
    expect(await p.explain(t, context)).toEqual(expected);
  });

  it('accepts the removal of a node: the record goes with it', async () => {
    const t = task('host', {}, [
      { id: 's0.1', path: 'present', op: 'sync', origin: 'user', reason: 'present changed' },
    ]);
    expect(await provider('host').apply(t, context)).toEqual({
      accepted: ['s0.1'],
      operations: [{ action: 'remove', target: 'host/x1', detail: 'the record goes with the node' }],
    });
  });

  it('converges a create through the planner in one round', async () => {
    const host = schemas().get('host')!;
    const planner = new TransitionPlanner(host, DEFAULT_PLANNER_OPTIONS);
    const state = planner.start(
      {
        jobId: 'job-1',
        kind: 'host',
        name: 'web-01',
        current: {},
        updates: [
          { path: 'present', op: 'set', value: true },
          { path: 'hostname', op: 'set', value: 'web-01.pek1.example.com' },
          { path: 'status', op: 'set', value: 'planned' },
          { path: 'puppet_roles', op: 'add', value: 'nginx' },
          { path: 'interfaces[eth0]', op: 'merge', value: {} },
        ],
      },
      clock.now(),
    );
    const end = await runPlan(
      planner,
      state,
      new Map(
        providers()
          .filter((p) => p.kind === 'host')
          .map((p) => [p.name, p]),
      ),
      {
        clock,
      },
    );
    expect(end.phase).toBe('succeeded');
    expect(end.rounds).toHaveLength(1);
    expect(end.attrs).toEqual({
      present: true,
      hostname: 'web-01.pek1.example.com',
      status: 'planned',
      puppet_roles: ['nginx'],
      interfaces: [{ name: 'eth0' }],
    });
  });
});
