import type {
  Attrs,
  NodeProvider,
  PluginServices,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/plugin-api';
import { silentLogger } from '@consortium/plugin-api';
import { beforeEach, describe, expect, it } from 'vitest';
import { plugin } from './index.js';
import { MemoryStore } from './memory-store.js';

const context: ProviderContext = {
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '0',
  now: () => 0,
};

let store: MemoryStore;
let ipam: NodeProvider;

function makeIpam(config: { interface?: string } = {}): NodeProvider {
  const services: PluginServices = { logger: silentLogger, store, now: () => 0 };
  const [provider] = plugin.providers(config, services);
  return provider!;
}

beforeEach(async () => {
  store = new MemoryStore();
  ipam = makeIpam();
  await store.insertNode(
    'subnet',
    'pek1-web',
    { present: true, cidr: '10.1.2.0/24', gateway: '10.1.2.1', reserved: ['10.1.2.2', '10.1.2.3'] },
    0,
  );
  await store.insertNode('subnet', 'pek1-db', { present: true, cidr: '10.1.3.0/24' }, 0);
  await store.insertNode('subnet', 'tiny', { present: true, cidr: '10.9.0.0/30', gateway: '10.9.0.1' }, 0);
});

let nextId = 0;
const set = (path: string, value: ProposedUpdate['value']): ProposedUpdate => ({
  id: `u${++nextId}`,
  path,
  op: 'set',
  origin: 'user',
  ...(value === undefined ? {} : { value }),
});
const unset = (path: string): ProposedUpdate => ({ id: `u${++nextId}`, path, op: 'unset', origin: 'user' });
const removal = (): ProposedUpdate => ({
  id: `s${++nextId}`,
  path: 'present',
  op: 'sync',
  origin: 'user',
  reason: 'present changed',
});

function task(name: string, updates: ProposedUpdate[], node: Attrs = { present: true }): ProviderTask {
  return {
    id: `job/r1/ipam`,
    jobId: 'job',
    round: 1,
    attempt: 1,
    provider: 'ipam',
    kind: 'host',
    name,
    node,
    updates,
  };
}

/** The node after an outcome's values are merged (enough for the paths ipam reports). */
function withEth0(node: Attrs, eth0: Attrs): Attrs {
  return { ...node, interfaces: [{ name: 'eth0', ...eth0 }] };
}

const held = async (subnet: string) =>
  (await store.listReservations(`ipam/${subnet}`)).map((r) => `${r.key}=${r.owner}`).sort();

describe('the ipam plugin', () => {
  it('claims the subnet and the address fields of interfaces', () => {
    expect(plugin.id).toBe('ipam');
    expect(ipam.name).toBe('ipam');
    expect(ipam.kind).toBe('host');
    expect(ipam.claims.map((c) => c.path)).toEqual([
      'subnet',
      'interfaces[*].ip',
      'interfaces[*].netmask',
      'interfaces[*].gateway',
    ]);
  });

  it('allocates the lowest free address, skipping network, gateway and reserved addresses', async () => {
    const update = set('subnet', 'pek1-web');
    expect(await ipam.apply(task('web-01', [update]), context)).toEqual({
      accepted: [update.id],
      set: {
        'interfaces[eth0].ip': '10.1.2.4',
        'interfaces[eth0].netmask': '255.255.255.0',
        'interfaces[eth0].gateway': '10.1.2.1',
      },
      operations: [
        {
          action: 'allocate-ip',
          target: 'subnet/pek1-web',
          detail: '10.1.2.4 for host/web-01',
          durationMs: 0,
        },
      ],
    });
    const second = await ipam.apply(task('web-02', [set('subnet', 'pek1-web')]), context);
    expect(second.set?.['interfaces[eth0].ip']).toBe('10.1.2.5');
    expect(await held('pek1-web')).toEqual(['10.1.2.4=host/web-01', '10.1.2.5=host/web-02']);
  });

  it('is idempotent: running the same task again reports the address it already holds', async () => {
    const t = task('web-01', [set('subnet', 'pek1-web')]);
    await ipam.apply(t, context);
    const again = await ipam.apply(t, context);
    expect(again.set?.['interfaces[eth0].ip']).toBe('10.1.2.4');
    expect(again.operations).toEqual([
      {
        action: 'allocate-ip',
        target: 'subnet/pek1-web',
        detail: '10.1.2.4 for host/web-01 (already held)',
        durationMs: 0,
      },
    ]);
    expect(await held('pek1-web')).toEqual(['10.1.2.4=host/web-01']);
  });

  it('fills the gap a deleted host left', async () => {
    for (const name of ['a', 'b', 'c']) await ipam.apply(task(name, [set('subnet', 'pek1-web')]), context);
    await ipam.apply(task('b', [removal()], { subnet: 'pek1-web' }), context);
    const d = await ipam.apply(task('d', [set('subnet', 'pek1-web')]), context);
    expect(d.set?.['interfaces[eth0].ip']).toBe('10.1.2.5');
  });

  it('rejects an unknown subnet', async () => {
    const update = set('subnet', 'nowhere');
    expect(await ipam.apply(task('web-01', [update]), context)).toEqual({
      rejected: [{ id: update.id, reason: 'subnet "nowhere" does not exist' }],
    });
  });

  it('rejects a subnet without a valid cidr', async () => {
    await store.insertNode('subnet', 'broken', { present: true, description: 'no cidr yet' }, 0);
    const update = set('subnet', 'broken');
    expect((await ipam.apply(task('web-01', [update]), context)).rejected).toEqual([
      { id: update.id, reason: 'subnet "broken" has no valid cidr (found null)' },
    ]);
  });

  it('rejects when the subnet is full', async () => {
    const first = await ipam.apply(task('a', [set('subnet', 'tiny')]), context);
    expect(first.set?.['interfaces[eth0].ip']).toBe('10.9.0.2');
    const update = set('subnet', 'tiny');
    expect(await ipam.apply(task('b', [update]), context)).toEqual({
      rejected: [{ id: update.id, reason: 'subnet "tiny" has no free address' }],
    });
    expect(await held('tiny')).toEqual(['10.9.0.2=host/a']);
  });

  it('releases the old address when the subnet changes, and drops a gateway the new subnet lacks', async () => {
    const created = await ipam.apply(task('web-01', [set('subnet', 'pek1-web')]), context);
    const node = withEth0(
      { present: true, subnet: 'pek1-web' },
      { ip: '10.1.2.4', netmask: '255.255.255.0', gateway: '10.1.2.1' },
    );
    expect(created.accepted).toHaveLength(1);
    const update = set('subnet', 'pek1-db');
    expect(await ipam.apply(task('web-01', [update], node), context)).toEqual({
      accepted: [update.id],
      set: { 'interfaces[eth0].ip': '10.1.3.1', 'interfaces[eth0].netmask': '255.255.255.0' },
      unset: ['interfaces[eth0].gateway'],
      operations: [
        { action: 'release-ip', target: 'subnet/pek1-web', detail: '10.1.2.4 of host/web-01' },
        {
          action: 'allocate-ip',
          target: 'subnet/pek1-db',
          detail: '10.1.3.1 for host/web-01',
          durationMs: 0,
        },
      ],
    });
    expect(await held('pek1-web')).toEqual([]);
    expect(await held('pek1-db')).toEqual(['10.1.3.1=host/web-01']);
  });

  it('on delete releases the addresses and unsets what it reported; again, it has nothing left to do', async () => {
    await ipam.apply(task('web-01', [set('subnet', 'pek1-web')]), context);
    const node = withEth0(
      { subnet: 'pek1-web' },
      { ip: '10.1.2.4', netmask: '255.255.255.0', gateway: '10.1.2.1', mac: 'x' },
    );
    const sync = removal();
    expect(await ipam.apply(task('web-01', [sync], node), context)).toEqual({
      accepted: [sync.id],
      unset: ['interfaces[eth0].ip', 'interfaces[eth0].netmask', 'interfaces[eth0].gateway'],
      operations: [{ action: 'release-ip', target: 'subnet/pek1-web', detail: '10.1.2.4 of host/web-01' }],
    });
    expect(await held('pek1-web')).toEqual([]);
    expect(await ipam.apply(task('web-01', [sync], { subnet: 'pek1-web' }), context)).toEqual({
      accepted: [sync.id],
    });
  });

  it('releases the address when the subnet is unset', async () => {
    await ipam.apply(task('web-01', [set('subnet', 'pek1-web')]), context);
    const node = withEth0(
      { present: true, subnet: 'pek1-web' },
      { ip: '10.1.2.4', netmask: '255.255.255.0', gateway: '10.1.2.1' },
    );
    const update = unset('subnet');
    const outcome = await ipam.apply(task('web-01', [update], node), context);
    expect(outcome.accepted).toEqual([update.id]);
    expect(outcome.unset).toEqual([
      'interfaces[eth0].ip',
      'interfaces[eth0].netmask',
      'interfaces[eth0].gateway',
    ]);
    expect(await held('pek1-web')).toEqual([]);
  });

  it('takes an address an operator asks for, if it is free and usable', async () => {
    await ipam.apply(task('web-01', [set('subnet', 'pek1-web')]), context);
    const subnet = set('subnet', 'pek1-web');
    const ip = set('interfaces[eth0].ip', '10.1.2.50');
    expect(await ipam.apply(task('web-02', [subnet, ip]), context)).toEqual({
      accepted: [subnet.id, ip.id],
      set: { 'interfaces[eth0].netmask': '255.255.255.0', 'interfaces[eth0].gateway': '10.1.2.1' },
      operations: [
        {
          action: 'allocate-ip',
          target: 'subnet/pek1-web',
          detail: '10.1.2.50 for host/web-02',
          durationMs: 0,
        },
      ],
    });

    const node = { present: true, subnet: 'pek1-web' };
    const cases: [string, string][] = [
      ['10.1.2.4', '10.1.2.4 in subnet "pek1-web" (10.1.2.0/24) is already allocated to host/web-01'],
      [
        '10.1.2.1',
        '10.1.2.1 is the network, broadcast, gateway or a reserved address of subnet "pek1-web" (10.1.2.0/24)',
      ],
      [
        '10.1.2.3',
        '10.1.2.3 is the network, broadcast, gateway or a reserved address of subnet "pek1-web" (10.1.2.0/24)',
      ],
      ['10.1.9.9', '10.1.9.9 is not in subnet "pek1-web" (10.1.2.0/24)'],
    ];
    for (const [address, reason] of cases) {
      const update = set('interfaces[eth0].ip', address);
      expect(await ipam.apply(task('web-03', [update], node), context)).toEqual({
        rejected: [{ id: update.id, reason }],
      });
    }
    expect(await held('pek1-web')).toEqual(['10.1.2.4=host/web-01', '10.1.2.50=host/web-02']);
  });

  it('moves a host to the address an operator asks for, releasing its old one', async () => {
    await ipam.apply(task('web-01', [set('subnet', 'pek1-web')]), context);
    const update = set('interfaces[eth0].ip', '10.1.2.60');
    const outcome = await ipam.apply(
      task('web-01', [update], { present: true, subnet: 'pek1-web' }),
      context,
    );
    expect(outcome.accepted).toEqual([update.id]);
    expect(outcome.operations).toContainEqual({
      action: 'release-ip',
      target: 'subnet/pek1-web',
      detail: '10.1.2.4 of host/web-01',
    });
    expect(await held('pek1-web')).toEqual(['10.1.2.60=host/web-01']);
  });

  it('answers a nudge for the address (another provider waits for it) by waiting for a subnet when there is none', async () => {
    const nudge: ProposedUpdate = { id: 'n2.1', path: 'interfaces[eth0].ip', op: 'sync', origin: 'provider' };
    expect(await ipam.apply(task('web-01', [nudge]), context)).toEqual({
      deferred: [{ id: nudge.id, reason: 'the host has no subnet', waitFor: ['subnet'] }],
    });
    const withSubnet = await ipam.apply(
      task('web-01', [nudge], { present: true, subnet: 'pek1-web' }),
      context,
    );
    expect(withSubnet.accepted).toEqual([nudge.id]);
  });

  it('rejects an address without a subnet, derived values that disagree, and other interfaces', async () => {
    const ip = set('interfaces[eth0].ip', '10.1.2.60');
    expect((await ipam.apply(task('web-01', [ip]), context)).rejected).toEqual([
      { id: ip.id, reason: 'the host has no subnet: set subnet too' },
    ]);
    const node = { present: true, subnet: 'pek1-web' };
    const good = set('interfaces[eth0].netmask', '255.255.255.0');
    const bad = set('interfaces[eth0].gateway', '10.1.2.254');
    const other = set('interfaces[eth1].ip', '10.1.2.61');
    expect(await ipam.apply(task('web-01', [good, bad, other], node), context)).toEqual({
      accepted: [good.id],
      rejected: [
        {
          id: other.id,
          reason: 'ipam manages the addresses of interface eth0 only (plugin config "interface")',
        },
        {
          id: bad.id,
          reason: 'interfaces[eth0].gateway follows subnet "pek1-web" (10.1.2.1); change the subnet instead',
        },
      ],
    });
  });

  it('manages the interface its config names', async () => {
    const bond = makeIpam({ interface: 'bond0' });
    const outcome = await bond.apply(task('db-01', [set('subnet', 'pek1-db')]), context);
    expect(outcome.set).toEqual({
      'interfaces[bond0].ip': '10.1.3.1',
      'interfaces[bond0].netmask': '255.255.255.0',
    });
  });

  it('explains without reserving: the address comes later, netmask and gateway are known', async () => {
    const update = set('subnet', 'pek1-web');
    expect(await ipam.explain(task('web-01', [update]), context)).toEqual({
      accepted: [update.id],
      set: { 'interfaces[eth0].netmask': '255.255.255.0', 'interfaces[eth0].gateway': '10.1.2.1' },
      later: ['interfaces[eth0].ip'],
      operations: [
        {
          action: 'allocate-ip',
          target: 'subnet/pek1-web',
          detail: 'the lowest free address of 10.1.2.0/24 for host/web-01 (now 10.1.2.4)',
        },
      ],
    });
    expect(await held('pek1-web')).toEqual([]);
    const unknown = set('subnet', 'nowhere');
    expect((await ipam.explain(task('web-01', [unknown]), context)).rejected).toEqual([
      { id: unknown.id, reason: 'subnet "nowhere" does not exist' },
    ]);
    await ipam.apply(task('x', [set('subnet', 'tiny')]), context);
    const full = set('subnet', 'tiny');
    expect((await ipam.explain(task('web-01', [full]), context)).rejected).toEqual([
      { id: full.id, reason: 'subnet "tiny" has no free address' },
    ]);
  });

  it('explains a delete without releasing anything', async () => {
    await ipam.apply(task('web-01', [set('subnet', 'pek1-web')]), context);
    const sync = removal();
    const node = withEth0({ subnet: 'pek1-web' }, { ip: '10.1.2.4' });
    expect(await ipam.explain(task('web-01', [sync], node), context)).toEqual({
      accepted: [sync.id],
      unset: ['interfaces[eth0].ip'],
      operations: [{ action: 'release-ip', target: 'subnet/pek1-web', detail: '10.1.2.4 of host/web-01' }],
    });
    expect(await held('pek1-web')).toEqual(['10.1.2.4=host/web-01']);
  });

  it('never gives one address to two hosts: 100 concurrent allocations in one subnet', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        ipam.apply(task(`host-${i}`, [set('subnet', 'pek1-web')]), context),
      ),
    );
    const ips = outcomes.map((o) => o.set?.['interfaces[eth0].ip']);
    expect(ips.every((ip) => typeof ip === 'string')).toBe(true);
    expect(new Set(ips).size).toBe(100);
    // The allocations really raced: most of them lost a reservation to another host and moved on.
    expect(store.stats.refused).toBeGreaterThan(0);
    const reservations = await store.listReservations('ipam/pek1-web');
    expect(reservations).toHaveLength(100);
    expect(new Set(reservations.map((r) => r.owner)).size).toBe(100);
    expect(ips).not.toContain('10.1.2.1');
    expect(ips).not.toContain('10.1.2.2');
    expect(ips).not.toContain('10.1.2.3');
    // Lowest first: together they fill .4 to .103.
    expect([...ips].sort()).toEqual(Array.from({ length: 100 }, (_, i) => `10.1.2.${i + 4}`).sort());
  });
});
