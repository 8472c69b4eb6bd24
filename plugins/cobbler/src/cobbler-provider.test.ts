/**
 * The Cobbler provider against the Cobbler 3.3.7 test server: registration, convergence, watched changes, delete,
 * explain and observe, unsaved edits, the sync policy, with every call the provider makes checked on the server
 * side (what cobblerd holds in memory, what it saved to disk and its PXE files).
 */
import type {
  Attrs,
  NodeProvider,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
  Store,
} from '@consortium/core';
import { BackendError, BackendUnavailableError, InputError, silentLogger } from '@consortium/core';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CobblerConfig } from './index.js';
import { plugin } from './index.js';

let server: CobblerTestServer;

beforeEach(async () => {
  server = await startCobblerServer({
    users: { consortium: 'pxe-secret' },
    profiles: ['debian12', 'rocky9'],
  });
});

afterEach(async () => {
  await server.stop();
});

function provider(config: Partial<CobblerConfig> = {}): NodeProvider {
  const [cobbler] = plugin.providers(
    {
      url: server.url,
      username: 'consortium',
      password: 'pxe-secret',
      defaultProfile: 'debian12',
      ...config,
    },
    { logger: silentLogger, store: {} as Store, now: () => Date.now() },
  );
  return cobbler!;
}

const context: ProviderContext = {
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '0',
  now: () => Date.now(),
};

const MAC1 = '52:54:00:12:34:01';
const MAC2 = '52:54:00:12:34:02';

function node(mac: string | undefined, ip: string | undefined, extra: Attrs = {}): Attrs {
  const eth0: Record<string, string> = { name: 'eth0' };
  if (mac !== undefined) eth0['mac'] = mac;
  if (ip !== undefined) {
    eth0['ip'] = ip;
    eth0['netmask'] = '255.255.255.0';
    eth0['gateway'] = '10.1.2.1';
  }
  return { present: true, interfaces: [eth0], ...extra };
}

const sync = (id = 's1.1', path = 'interfaces'): ProposedUpdate => ({
  id,
  path,
  op: 'sync',
  origin: 'ipam',
  reason: `${path} changed`,
});

function task(updates: readonly ProposedUpdate[], attrs: Attrs, name = 'web-01'): ProviderTask {
  return {
    id: `job/r2/cobbler`,
    jobId: 'job',
    round: 2,
    attempt: 1,
    provider: 'cobbler',
    kind: 'host',
    name,
    node: attrs,
    updates,
  };
}

const writes = (): string[] =>
  server.calls
    .map((c) => c.method)
    .filter((m) => ['new_system', 'modify_system', 'save_system', 'remove_system', 'sync'].includes(m));

describe('the cobbler provider', () => {
  it('claims profile and netboot and watches hostname and interfaces', () => {
    const cobbler = provider();
    expect(cobbler.name).toBe('cobbler');
    expect(cobbler.claims.map((c) => c.path)).toEqual(['profile', 'netboot']);
    expect(cobbler.watches).toEqual(['interfaces', 'hostname']);
  });

  it('takes the password from the environment variable passwordEnv names, and refuses to start without it', async () => {
    const services = { logger: silentLogger, store: {} as Store, now: () => Date.now() };
    const config = {
      url: server.url,
      username: 'consortium',
      passwordEnv: 'TEST_COBBLER_PW',
      defaultProfile: 'debian12',
    };
    delete process.env['TEST_COBBLER_PW'];
    expect(() => plugin.providers(config, services)).toThrow(InputError);
    expect(() => plugin.providers(config, services)).toThrow(
      'plugin cobbler: the environment variable TEST_COBBLER_PW (passwordEnv) is not set',
    );
    process.env['TEST_COBBLER_PW'] = 'pxe-secret';
    try {
      const [cobbler] = plugin.providers(config, services);
      await cobbler!.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
      expect(server.system('web-01')).toBeDefined();
    } finally {
      delete process.env['TEST_COBBLER_PW'];
    }
  });

  it('registers the system with MAC, IP, netmask, gateway, DNS name, profile and netboot', async () => {
    const outcome = await provider().apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    expect(outcome.accepted).toEqual(['s1.1']);
    expect(outcome.set).toEqual({ profile: 'debian12', netboot: true });
    expect(outcome.operations).toHaveLength(1);
    expect(outcome.operations![0]).toMatchObject({
      action: 'add-system',
      target: 'system/web-01',
      detail: `registered system web-01 (mac ${MAC1}, ip 10.1.2.34, profile debian12, netboot on)`,
    });
    expect(outcome.operations![0]!.durationMs).toBeGreaterThanOrEqual(0);

    const system = server.system('web-01')!;
    expect(system.profile).toBe('debian12');
    expect(system.hostname).toBe('web-01');
    expect(system.netboot_enabled).toBe(true);
    expect(system.gateway).toBe('10.1.2.1');
    expect(system.interfaces['eth0']).toMatchObject({
      mac_address: MAC1,
      ip_address: '10.1.2.34',
      netmask: '255.255.255.0',
      dns_name: 'web-01',
    });
    expect(server.calls.map((c) => c.method)).toEqual([
      'get_system',
      'get_profiles',
      'find_system',
      'find_system',
      'find_system',
      'login',
      'new_system',
      'modify_system',
      'modify_system',
      'modify_system',
      'modify_system',
      'modify_system',
      'modify_system',
      'save_system',
    ]);
    expect(server.calls.at(-1)!.params[2]).toBe('new');
  });

  it('converges when the same task runs again: no second system, no write', async () => {
    const cobbler = provider();
    const first = task([sync()], node(MAC1, '10.1.2.34'));
    await cobbler.apply(first, context);
    const before = writes().length;
    const again = await cobbler.apply(first, context);
    expect(again).toEqual({ accepted: ['s1.1'], set: { profile: 'debian12', netboot: true } });
    expect(writes()).toHaveLength(before);
    expect(server.systems().map((s) => s.name)).toEqual(['web-01']);

    // With the values merged into the node, there is nothing left to report either.
    const merged = await cobbler.apply(
      task([sync()], node(MAC1, '10.1.2.34', { profile: 'debian12', netboot: true })),
      context,
    );
    expect(merged).toEqual({ accepted: ['s1.1'] });
  });

  it('updates the interface in place when the MAC changes (a watched sync)', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    const outcome = await cobbler.apply(
      task([sync('s3.1')], node(MAC2, '10.1.2.34', { profile: 'debian12', netboot: true })),
      context,
    );
    expect(outcome.accepted).toEqual(['s3.1']);
    // The default sync policy, mac-change, runs a full sync: saving leaves the old MAC's PXE file behind.
    expect(outcome.operations!.map((o) => [o.action, o.detail])).toEqual([
      ['edit-system', `updated system web-01: mac_address-eth0 ${MAC1} -> ${MAC2}`],
      ['sync', 'ran cobbler sync to delete the PXE file of the old MAC'],
    ]);
    expect(server.pxeFiles()).toEqual(['pxelinux.cfg/01-52-54-00-12-34-02']);
    expect(server.system('web-01')!.interfaces['eth0']!['mac_address']).toBe(MAC2);
    expect(server.systems()).toHaveLength(1);
    const saves = server.calls.filter((c) => c.method === 'save_system').map((c) => c.params[2]);
    expect(saves).toEqual(['new', 'bypass']);
    expect(server.calls.some((c) => c.method === 'get_system_handle')).toBe(true);
  });

  it('follows a hostname change into the system and its DNS name', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    await cobbler.apply(
      task([sync('s2.1', 'hostname')], node(MAC1, '10.1.2.34', { hostname: 'web-01.pek1.example.com' })),
      context,
    );
    const system = server.system('web-01')!;
    expect(system.hostname).toBe('web-01.pek1.example.com');
    expect(system.interfaces['eth0']!['dns_name']).toBe('web-01.pek1.example.com');
  });

  it('applies a profile change and netboot off as requested', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    const outcome = await cobbler.apply(
      task(
        [
          { id: 'u1', path: 'profile', op: 'set', value: 'rocky9', origin: 'user' },
          { id: 'u2', path: 'netboot', op: 'set', value: false, origin: 'user' },
        ],
        node(MAC1, '10.1.2.34', { profile: 'debian12', netboot: true }),
      ),
      context,
    );
    expect(outcome.accepted).toEqual(['u1', 'u2']);
    expect(outcome.set).toBeUndefined();
    expect(server.system('web-01')).toMatchObject({ profile: 'rocky9', netboot_enabled: false });
  });

  it('accepts a watched change it cannot act on yet and defers an explicit request until MAC and IP exist', async () => {
    const outcome = await provider().apply(
      task(
        [sync(), { id: 'u1', path: 'profile', op: 'set', value: 'rocky9', origin: 'user' }],
        node(MAC1, undefined),
      ),
      context,
    );
    expect(outcome).toEqual({
      accepted: ['s1.1'],
      deferred: [{ id: 'u1', reason: 'waiting for a MAC and an IP', waitFor: ['interfaces'] }],
    });
    expect(server.systems()).toEqual([]);
    expect(server.calls.map((c) => c.method)).toEqual(['get_system']);
  });

  it('rejects a profile Cobbler does not have, before writing anything', async () => {
    const outcome = await provider({ defaultProfile: 'centos7' }).apply(
      task([sync()], node(MAC1, '10.1.2.34')),
      context,
    );
    expect(outcome.rejected).toEqual([
      { id: 's1.1', reason: 'Cobbler has no profile "centos7" (profiles: debian12, rocky9)' },
    ]);
    expect(writes()).toEqual([]);
  });

  it('rejects a MAC another Cobbler system has, before writing anything', async () => {
    server.addSystem({ name: 'old-box', profile: 'debian12', interfaces: { eth0: { mac_address: MAC1 } } });
    const outcome = await provider().apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    expect(outcome.rejected).toEqual([
      { id: 's1.1', reason: `MAC ${MAC1} is already registered to Cobbler system old-box` },
    ]);
    expect(writes()).toEqual([]);
  });

  it('rejects a DNS name another Cobbler system has, before writing anything', async () => {
    server.addSystem({
      name: 'old-box',
      profile: 'debian12',
      interfaces: { eth0: { mac_address: MAC2, dns_name: 'web-01.example.com' } },
    });
    const outcome = await provider().apply(
      task([sync()], node(MAC1, '10.1.2.34', { hostname: 'web-01.example.com' })),
      context,
    );
    expect(outcome.rejected).toEqual([
      { id: 's1.1', reason: 'DNS name web-01.example.com is already registered to Cobbler system old-box' },
    ]);
    expect(writes()).toEqual([]);
  });

  it('removes the system on delete, and counts a system already gone as removed', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    const deleting = {
      interfaces: [{ name: 'eth0', mac: MAC1, ip: '10.1.2.34' }],
      profile: 'debian12',
      netboot: true,
    };
    const removed = await cobbler.apply(task([sync('s0.1', 'present')], deleting), context);
    expect(removed.accepted).toEqual(['s0.1']);
    expect(removed.unset).toEqual(['profile', 'netboot']);
    expect(removed.operations!.map((o) => o.action)).toEqual(['remove-system']);
    expect(server.systems()).toEqual([]);

    const again = await cobbler.apply(task([sync('s1.1')], { interfaces: [{ name: 'eth0' }] }), context);
    expect(again).toEqual({ accepted: ['s1.1'] });
  });

  it('treats an older release\'s "cannot delete an object that does not exist" fault as removed', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    server.injectFault('remove_system', 'cannot delete an object that does not exist: web-01');
    const outcome = await cobbler.apply(task([sync('s0.1', 'present')], {}), context);
    expect(outcome.accepted).toEqual(['s0.1']);
  });

  it('runs cobbler sync after every change with sync: always (or true)', async () => {
    for (const policy of ['always', true] as const) {
      const outcome = await provider({ sync: policy }).apply(
        task([sync()], node(MAC1, '10.1.2.34'), `web-${String(policy)}`),
        context,
      );
      expect(outcome.operations!.map((o) => [o.action, o.detail])).toEqual([
        ['add-system', expect.stringMatching(/^registered system/)],
        ['sync', 'ran cobbler sync after every change'],
      ]);
      server.restart();
      await provider().apply(task([sync('s0.1', 'present')], {}, `web-${String(policy)}`), context);
    }
    expect(server.syncs()).toBe(2);
  });

  it("leaves the old MAC's PXE file until a full sync with sync: never (or false), and says nothing about it", async () => {
    for (const policy of ['never', false] as const) {
      const cobbler = provider({ sync: policy });
      await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
      const outcome = await cobbler.apply(
        task([sync('s3.1')], node(MAC2, '10.1.2.34', { profile: 'debian12', netboot: true })),
        context,
      );
      expect(outcome.operations!.map((o) => o.action)).toEqual(['edit-system']);
      expect(server.pxeFiles()).toEqual([
        'pxelinux.cfg/01-52-54-00-12-34-01',
        'pxelinux.cfg/01-52-54-00-12-34-02',
      ]);
      await cobbler.apply(task([sync('s0.1', 'present')], {}), context);
      expect(server.pxeFiles()).toEqual(['pxelinux.cfg/01-52-54-00-12-34-01']);
      expect(server.syncs()).toBe(0);
      await server.stop();
      server = await startCobblerServer({
        users: { consortium: 'pxe-secret' },
        profiles: ['debian12', 'rocky9'],
      });
    }
  });

  it('runs no sync with the default policy when the MAC stays, nor on create and delete', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    await cobbler.apply(
      task([sync('s2.1', 'hostname')], node(MAC1, '10.1.2.35', { hostname: 'web-01.example.com' })),
      context,
    );
    await cobbler.apply(task([sync('s0.1', 'present')], {}), context);
    expect(server.syncs()).toBe(0);
    expect(server.pxeFiles()).toEqual([]);
  });

  it('runs a sync that failed after a MAC change again on the next task, though the system is saved', async () => {
    // sync.py `CobblerSync.run` dies with `cannot find directory: ...` when the TFTP root is missing.
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    const moved = task([sync('s3.1')], node(MAC2, '10.1.2.34', { profile: 'debian12', netboot: true }));
    server.setSyncFailure('cannot find directory: /var/lib/tftpboot');
    await expect(cobbler.apply(moved, context)).rejects.toThrow(
      "Cobbler fault in sync: <class 'cobbler.cexceptions.CX'>:'cannot find directory: /var/lib/tftpboot'",
    );
    expect(server.system('web-01')!.interfaces['eth0']!['mac_address']).toBe(MAC2);
    expect(server.pxeFiles()).toEqual([
      'pxelinux.cfg/01-52-54-00-12-34-01',
      'pxelinux.cfg/01-52-54-00-12-34-02',
    ]);

    // Explain shows the sync still owed and writes nothing.
    const plan = await cobbler.explain(moved, context);
    expect(plan.operations!.map((o) => [o.action, o.detail])).toEqual([
      ['sync', 'ran cobbler sync to delete the PXE file of the old MAC'],
    ]);
    server.setSyncFailure(undefined);
    const retry = await cobbler.apply(moved, context);
    expect(retry.operations!.map((o) => [o.action, o.detail])).toEqual([
      ['sync', 'ran cobbler sync to delete the PXE file of the old MAC'],
    ]);
    expect(server.pxeFiles()).toEqual(['pxelinux.cfg/01-52-54-00-12-34-02']);
    expect(server.calls.filter((c) => c.method === 'save_system')).toHaveLength(2);
    // Done: the next run converges without a write.
    expect(await cobbler.apply(moved, context)).toEqual({ accepted: ['s3.1'] });
    expect(server.syncs()).toBe(1);
  });

  it('never takes a read of a handle-edited, unsaved system as saved: the next task writes it again and saves', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    const renamed = task(
      [sync('s2.1', 'hostname')],
      node(MAC1, '10.1.2.34', { hostname: 'web-01.pek1.example.com', profile: 'debian12', netboot: true }),
    );
    // The connection drops on save_system: the hostname and DNS name edits stay in cobblerd's memory only.
    server.injectFault('save_system', { kind: 'drop' });
    await expect(cobbler.apply(renamed, context)).rejects.toThrow(BackendUnavailableError);
    expect(server.liveSystem('web-01')!['hostname']).toBe('web-01.pek1.example.com');
    expect(server.system('web-01')!['hostname']).toBe('web-01');

    // The retry reads the unsaved edits back; it must not take them for saved.
    const retry = await cobbler.apply(renamed, context);
    expect(retry.accepted).toEqual(['s2.1']);
    expect(retry.operations!.map((o) => [o.action, o.detail])).toEqual([
      [
        'edit-system',
        'updated system web-01: save_system pending (an earlier update stopped before it) -> rewrite and save',
      ],
      ['sync', 'ran cobbler sync to delete the PXE file of a MAC the unsaved edits may have changed'],
    ]);
    expect(server.system('web-01')).toMatchObject({ hostname: 'web-01.pek1.example.com' });
    expect(server.system('web-01')!.interfaces['eth0']).toMatchObject({
      mac_address: MAC1,
      ip_address: '10.1.2.34',
      dns_name: 'web-01.pek1.example.com',
    });
    server.restart();
    expect(server.liveSystem('web-01')!['hostname']).toBe('web-01.pek1.example.com');
    // Saved now: the next run converges without a write.
    const before = writes().length;
    expect(await cobbler.apply(renamed, context)).toEqual({ accepted: ['s2.1'] });
    expect(writes()).toHaveLength(before);
  });

  it('explains the same decision without writing (reads only, no login)', async () => {
    const cobbler = provider();
    const plan = await cobbler.explain(
      {
        ...task([sync()], { present: true, interfaces: [{ name: 'eth0' }] }),
        later: { 'interfaces[eth0].mac': 'libvirt', 'interfaces[eth0].ip': 'ipam' },
      },
      context,
    );
    expect(plan).toEqual({
      accepted: ['s1.1'],
      set: { profile: 'debian12', netboot: true },
      operations: [
        {
          action: 'add-system',
          target: 'system/web-01',
          detail:
            'registered system web-01 (mac <mac from libvirt>, ip <ip from ipam>, profile debian12, netboot on)',
          durationMs: expect.any(Number),
        },
      ],
    });
    // MAC and IP come later and cannot be checked yet; the DNS name (the node's name) can.
    expect(server.calls.map((c) => c.method)).toEqual(['get_system', 'get_profiles', 'find_system']);
    expect(server.calls.at(-1)!.params).toEqual([{ dns_name: 'web-01' }]);
    expect(server.systems()).toEqual([]);

    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    const deleting = await cobbler.explain(task([sync('s0.1', 'present')], { profile: 'debian12' }), context);
    expect(deleting.operations!.map((o) => o.action)).toEqual(['remove-system']);
    expect(server.systems()).toHaveLength(1);
  });

  it('observes the profile and netboot of the system, or null', async () => {
    const cobbler = provider();
    const ref = { kind: 'host', name: 'web-01' };
    expect(await cobbler.observe!(ref, context)).toBeNull();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    expect(await cobbler.observe!(ref, context)).toEqual({ profile: 'debian12', netboot: true });
  });

  it('discovers every system as observe sees it, in one get_systems call and no write, names that are no node left out', async () => {
    const cobbler = provider();
    await cobbler.apply(task([sync()], node(MAC1, '10.1.2.34')), context);
    server.addSystem({ name: 'pxe-07', profile: 'rocky9', netboot_enabled: false });
    server.addSystem({ name: 'Legacy_Box', profile: 'rocky9' });
    const before = server.calls.length;
    const found = await cobbler.discover!('host', context);
    expect(found).toEqual([
      { name: 'web-01', attrs: { profile: 'debian12', netboot: true } },
      { name: 'pxe-07', attrs: { profile: 'rocky9', netboot: false } },
    ]);
    expect(server.calls.slice(before).map((c) => c.method)).toEqual(['get_systems']);
    for (const { name, attrs } of found)
      expect(await cobbler.observe!({ kind: 'host', name }, context)).toEqual(attrs);
    expect(await cobbler.discover!('vlan', context)).toEqual([]);
    server.injectFault('get_systems', 'cannot read the collection');
    const failed = await cobbler.discover!('host', context).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(BackendError);
    expect((failed as Error).message).toBe(
      "Cobbler fault in get_systems: <class 'cobbler.cexceptions.CX'>:'cannot read the collection'",
    );
  });
});
