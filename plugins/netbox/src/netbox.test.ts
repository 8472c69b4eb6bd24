/**
 * The netbox provider and its client against the real NetBox test server: create, idempotent re-runs, role
 * changes, delete, pagination, error translation, explain without writes, observe.
 */
import type {
  Attrs,
  Logger,
  NodeProvider,
  PluginServices,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/core';
import {
  BackendError,
  BackendUnavailableError,
  buildKindSchemas,
  CancelledError,
  ClaimConflictError,
  InputError,
  silentLogger,
} from '@consortium/core';
import { plugin as inventory } from '@consortium/plugin-inventory';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NetboxConfig } from './index.js';
import { describeErrorBody, NetboxClient, plugin, resolveSettings, tagSlug } from './index.js';

const TOKEN = '0123456789abcdef0123456789abcdef01234567';

let server: NetboxServer;
let logged: string[];

const logger: Logger = {
  debug: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
  info: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
  warn: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
  error: (m, meta) => logged.push(`${m} ${JSON.stringify(meta ?? {})}`),
};

function context(signal = new AbortController().signal): ProviderContext {
  return { logger, signal, fencingToken: '0', now: () => 0 };
}

function provider(config: Partial<NetboxConfig> = {}): NodeProvider {
  const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;
  const [netbox] = plugin.providers({ url: server.url, token: TOKEN, ...config }, services);
  return netbox!;
}

let ids = 0;
const u = (path: string, op: ProposedUpdate['op'], value?: ProposedUpdate['value']): ProposedUpdate => ({
  id: `u${++ids}`,
  path,
  op,
  origin: 'user',
  ...(value === undefined ? {} : { value }),
});

function task(node: Attrs, updates: ProposedUpdate[], name = 'web-01'): ProviderTask {
  return {
    id: 'job-1/r1/netbox',
    jobId: 'job-1',
    round: 1,
    attempt: 1,
    provider: 'netbox',
    kind: 'host',
    name,
    node,
    updates,
  };
}

const CREATE = (): ProposedUpdate[] => [
  u('datacenter', 'set', 'pek1'),
  u('subcluster', 'set', 'web'),
  u('status', 'set', 'planned'),
  u('owner', 'set', 'web-team'),
  u('puppet_roles', 'add', 'nginx'),
];

/** What a create leaves in the node: the requested values merged. */
const CREATED: Attrs = {
  present: true,
  datacenter: 'pek1',
  subcluster: 'web',
  status: 'planned',
  owner: 'web-team',
  puppet_roles: ['nginx'],
};

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
      { name: 'web', type: 'kvm', site: 'pek1' },
      { name: 'db', type: 'kvm', site: 'sha2' },
      { name: 'batch', type: 'kvm', site: 'pek1' },
      { name: 'batch', type: 'vmware', site: 'sha2' },
    ],
    tenants: [
      { name: 'Web team', slug: 'web-team' },
      { name: 'DB team', slug: 'db-team' },
    ],
    tags: [{ name: 'backup', slug: 'backup' }],
  });
});

afterEach(async () => {
  await server.stop();
  // The token never reaches a log line.
  expect(logged.join('\n')).not.toContain(TOKEN);
});

describe('config', () => {
  it('normalises the URL, takes the token from the environment, and refuses a missing one', () => {
    expect(resolveSettings({ url: 'https://netbox.example.com/api/', token: 't' })).toMatchObject({
      baseUrl: 'https://netbox.example.com',
      timeoutMs: 10_000,
      roles: { kind: 'tags', prefix: '' },
      pageSize: 100,
    });
    expect(
      resolveSettings(
        { url: 'http://nb.local/netbox', tokenEnv: 'NB_TOKEN', rolesField: 'custom_field' },
        { NB_TOKEN: 'secret' },
      ),
    ).toMatchObject({ baseUrl: 'http://nb.local/netbox', token: 'secret', roles: { field: 'puppet_roles' } });
    expect(() => resolveSettings({ url: 'http://nb.local', tokenEnv: 'NB_TOKEN' }, {})).toThrow(
      new InputError('netbox: the environment variable NB_TOKEN (tokenEnv) is not set'),
    );
    expect(() => resolveSettings({ url: 'nb.local', token: 't' })).toThrow(InputError);
  });

  it('claims the five host paths, which inventory gives up with hostAttributes: []', () => {
    const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;
    const netbox = provider();
    expect(netbox.claims.map((c) => c.path).sort()).toEqual([
      'datacenter',
      'owner',
      'puppet_roles',
      'status',
      'subcluster',
    ]);
    expect(() =>
      buildKindSchemas(inventory.kinds ?? [], [...inventory.providers({}, services), netbox]),
    ).toThrow(ClaimConflictError);
    const host = buildKindSchemas(inventory.kinds ?? [], [
      ...inventory.providers({ hostAttributes: [] }, services),
      netbox,
    ]).get('host')!;
    expect(host.authorityOf([{ prop: 'puppet_roles' }])).toBe('netbox');
    expect(host.authorityOf([{ prop: 'hostname' }])).toBe('inventory');
  });
});

describe('the client', () => {
  const client = (options: Partial<{ timeoutMs: number; pageSize: number; token: string }> = {}) =>
    new NetboxClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 2_000, pageSize: 50, ...options });
  const call = { signal: new AbortController().signal, action: 'list virtual machines', logger };

  it('follows next links through every page', async () => {
    server.seed({
      virtualMachines: Array.from({ length: 120 }, (_, i) => ({ name: `vm-${i}`, cluster: 'web' })),
    });
    const all = await client({ pageSize: 50 }).list('/api/virtualization/virtual-machines/', {}, call);
    expect(all).toHaveLength(120);
    const pages = server.state.requests.filter((r) => r.path === '/api/virtualization/virtual-machines/');
    expect(pages.map((r) => r.query)).toEqual(['?limit=50', '?limit=50&offset=50', '?limit=50&offset=100']);
  });

  it('turns a 400 into a BackendError with NetBox field messages', async () => {
    const error = await client()
      .create(
        '/api/virtualization/virtual-machines/',
        { name: 'x', site: 99 },
        { ...call, action: 'create x' },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toBe(
      'NetBox refused to create x: site: Related object not found using the provided numeric ID: 99',
    );
    expect(describeErrorBody({ __all__: ['a'], tags: [{ non_field_errors: ['b'] }] })).toEqual([
      'a',
      'tags: b',
    ]);
  });

  it('turns 403 into "NetBox refused the token", without the token', async () => {
    const error = await client({ token: 'wrong-token' })
      .list('/api/dcim/sites/', {}, call)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toBe(
      'NetBox refused the token (403: Invalid token) when asked to list virtual machines',
    );
  });

  it('turns 5xx, timeouts and refused connections into retryable BackendUnavailableError', async () => {
    server.injectFault({ status: 503 });
    const proxy = await client()
      .list('/api/dcim/sites/', {}, call)
      .catch((e: unknown) => e);
    expect(proxy).toBeInstanceOf(BackendUnavailableError);
    expect((proxy as BackendUnavailableError).retryable).toBe(true);
    expect((proxy as Error).message).toBe(
      'NetBox could not list virtual machines: 503 503 Service Temporarily Unavailable',
    );

    server.setMaintenance(true);
    const maintenance = await client()
      .create('/api/extras/tags/', { name: 'a', slug: 'a' }, { ...call, action: 'create tag a' })
      .catch((e: unknown) => e);
    expect(maintenance).toBeInstanceOf(BackendUnavailableError);
    expect((maintenance as Error).message).toBe(
      'NetBox could not create tag a: 500 cannot execute INSERT in a read-only transaction',
    );

    server.injectFault({ delayMs: 500 });
    const slow = await client({ timeoutMs: 100 })
      .list('/api/dcim/sites/', {}, call)
      .catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(BackendUnavailableError);
    expect((slow as Error).message).toBe(
      'NetBox did not answer within 100 ms (GET /api/dcim/sites/?limit=50, to list virtual machines)',
    );

    // A port nobody listens on.
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => {
          resolve(port);
        });
      });
    });
    const url = `http://127.0.0.1:${closed}`;
    const down = await new NetboxClient({ baseUrl: url, token: TOKEN, timeoutMs: 1000, pageSize: 50 })
      .list('/api/dcim/sites/', {}, call)
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(BackendUnavailableError);
    expect((down as Error).message).toBe(
      `cannot reach NetBox at ${url} to list virtual machines: ECONNREFUSED`,
    );
  });

  it('does not follow redirects, and says which address to use', async () => {
    const error = await client()
      .get('/api/dcim/sites', call)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toBe(
      'NetBox redirected GET /api/dcim/sites to /api/dcim/sites/; set url to the address NetBox is served at',
    );
  });

  it('stops with CancelledError when the task is cancelled', async () => {
    server.injectFault({ delayMs: 300 });
    const controller = new AbortController();
    const pending = client().list('/api/dcim/sites/', {}, { ...call, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('apply', () => {
  it('creates the VM with site, cluster, tenant, status and role tags (creating missing tags)', async () => {
    const netbox = provider();
    const updates = CREATE();
    const outcome = await netbox.apply(task({ present: true }, updates), context());

    expect(outcome.accepted).toEqual(updates.map((x) => x.id));
    expect(outcome.rejected).toBeUndefined();
    expect(outcome.set).toBeUndefined();
    expect(outcome.operations?.map((o) => `${o.action} ${o.target}`)).toEqual([
      'create-tag netbox/tag/nginx',
      'create-vm netbox/vm/web-01',
    ]);
    expect(outcome.operations?.[1]).toMatchObject({
      detail: 'site pek1, cluster web, tenant web-team, status planned, roles nginx',
      durationMs: 0,
    });
    const vm = server.state.vm('web-01');
    expect(server.state.sites.get(vm.siteId)?.slug).toBe('pek1');
    expect(server.state.clusters.get(vm.clusterId)?.name).toBe('web');
    expect(server.state.tenants.get(vm.tenantId)?.slug).toBe('web-team');
    expect(vm.status).toBe('planned');
    expect(server.state.tagNames(vm)).toEqual(['nginx']);
    expect(server.state.tagByName('nginx')?.slug).toBe('nginx');
  });

  it('is idempotent: running the same task again writes nothing and creates no second VM', async () => {
    const netbox = provider();
    const updates = CREATE();
    await netbox.apply(task({ present: true }, updates), context());
    const before = writes();
    const again = await netbox.apply(task({ present: true }, updates), context());
    const afterCreate = await netbox.apply(task(CREATED, CREATE()), context());
    expect(again.accepted).toHaveLength(5);
    expect(again.operations).toBeUndefined();
    expect(afterCreate.operations).toBeUndefined();
    expect(writes()).toEqual(before);
    expect(server.state.vmsByName('web-01')).toHaveLength(1);
  });

  it('adds and removes roles relative to NetBox, keeping roles added in NetBox and reporting them', async () => {
    const netbox = provider();
    await netbox.apply(task({ present: true }, CREATE()), context());
    // Someone adds a role tag in NetBox's UI.
    server.seed({ tags: [{ name: 'monitoring', slug: 'monitoring' }] });
    server.state.vm('web-01').tagIds.push(server.state.tagByName('monitoring')!.id);

    const add = u('puppet_roles', 'add', 'redis');
    const added = await netbox.apply(task(CREATED, [add]), context());
    expect(added.accepted).toEqual([add.id]);
    expect(added.operations?.map((o) => `${o.action}: ${o.detail}`)).toEqual([
      'create-tag: tag redis (slug redis) for a Puppet role',
      'update-vm: roles +redis',
    ]);
    expect(added.set).toEqual({ puppet_roles: ['monitoring', 'nginx', 'redis'] });
    expect(server.state.tagNames(server.state.vm('web-01'))).toEqual(['monitoring', 'nginx', 'redis']);

    const remove = u('puppet_roles', 'remove', 'nginx');
    const removed = await netbox.apply(
      task({ ...CREATED, puppet_roles: ['monitoring', 'nginx', 'redis'] }, [remove]),
      context(),
    );
    expect(removed.operations?.map((o) => o.detail)).toEqual(['roles −nginx']);
    expect(removed.set).toBeUndefined();
    expect(server.state.tagNames(server.state.vm('web-01'))).toEqual(['monitoring', 'redis']);
  });

  it('leaves tags outside the role prefix alone', async () => {
    const netbox = provider({ rolesTagPrefix: 'role:' });
    server.seed({ virtualMachines: [{ name: 'web-01', cluster: 'web', tags: ['backup'] }] });
    const outcome = await netbox.apply(
      task({ present: true, subcluster: 'web' }, [u('puppet_roles', 'set', ['nginx'])]),
      context(),
    );
    expect(outcome.rejected).toBeUndefined();
    expect(server.state.tagNames(server.state.vm('web-01'))).toEqual(['backup', 'role:nginx']);
    expect(server.state.tagByName('role:nginx')?.slug).toBe('role-nginx');
    expect(tagSlug('role::web server')).toBe('role-web-server');
  });

  it('stores roles in a custom field when configured so', async () => {
    server.seed({ customFields: [{ name: 'puppet_roles', type: 'json' }] });
    const netbox = provider({ rolesField: 'custom_field' });
    await netbox.apply(task({ present: true }, CREATE()), context());
    const vm = server.state.vm('web-01');
    expect(vm.customFields).toEqual({ puppet_roles: ['nginx'] });
    const other = provider({ rolesField: 'custom_field', rolesCustomField: 'roles' });
    await expect(other.apply(task({ present: true }, CREATE(), 'web-02'), context())).rejects.toMatchObject({
      code: 'BACKEND_ERROR',
      message:
        "NetBox refused to create virtual machine web-02: Unknown field name 'roles' in custom field data.",
    });
    expect(vm.tagIds).toEqual([]);
    await netbox.apply(task(CREATED, [u('puppet_roles', 'add', 'base')]), context());
    expect(server.state.vm('web-01').customFields).toEqual({ puppet_roles: ['base', 'nginx'] });
    expect(await netbox.observe!({ kind: 'host', name: 'web-01' }, context())).toMatchObject({
      puppet_roles: ['base', 'nginx'],
    });
  });

  it('reports the site NetBox takes from the cluster when only subcluster is given', async () => {
    const outcome = await provider().apply(
      task({ present: true }, [u('subcluster', 'set', 'web')]),
      context(),
    );
    expect(outcome.set).toEqual({ datacenter: 'pek1', status: 'active' });
  });

  it('rejects an unknown site, cluster or tenant with a clear reason and writes nothing', async () => {
    const netbox = provider();
    const site = u('datacenter', 'set', 'pek9');
    const roles = u('puppet_roles', 'add', 'nginx');
    const outcome = await netbox.apply(task({ present: true }, [site, roles]), context());
    expect(outcome.rejected).toEqual([
      { id: site.id, reason: 'NetBox has no site with slug "pek9" (datacenter)' },
      {
        id: roles.id,
        reason: 'not written to NetBox because NetBox has no site with slug "pek9" (datacenter)',
      },
    ]);
    const cluster = await netbox.apply(task({ present: true }, [u('subcluster', 'set', 'nope')]), context());
    expect(cluster.rejected?.[0]?.reason).toBe('NetBox has no cluster named "nope" (subcluster)');
    const owner = await netbox.apply(
      task({ present: true }, [u('datacenter', 'set', 'pek1'), u('owner', 'set', 'nobody')]),
      context(),
    );
    expect(owner.rejected?.[0]?.reason).toBe('NetBox has no tenant with slug "nobody" (owner)');
    const nowhere = await netbox.apply(task({ present: true }, [u('status', 'set', 'active')]), context());
    expect(nowhere.rejected?.[0]?.reason).toBe(
      'NetBox needs a datacenter (site) or a subcluster (cluster) to create virtual machine web-01',
    );
    expect(writes()).toEqual([]);
  });

  it('picks a cluster by name within the site, and honours clusterType', async () => {
    const ambiguous = await provider().apply(
      task({ present: true }, [u('subcluster', 'set', 'batch')]),
      context(),
    );
    expect(ambiguous.rejected?.[0]?.reason).toBe(
      'NetBox has 2 clusters named "batch" (sites: pek1, sha2); set datacenter to the site of the one to use',
    );
    await provider().apply(
      task({ present: true }, [u('datacenter', 'set', 'sha2'), u('subcluster', 'set', 'batch')]),
      context(),
    );
    expect(server.state.clusters.get(server.state.vm('web-01').clusterId)?.siteId).toBe(
      server.state.siteBySlug('sha2')!.id,
    );
    const typed = await provider({ clusterType: 'kvm' }).apply(
      task({ present: true }, [u('subcluster', 'set', 'batch')], 'web-02'),
      context(),
    );
    expect(typed.rejected).toBeUndefined();
    expect(typed.set).toEqual({ datacenter: 'pek1', status: 'active' });
  });

  it('fails with NetBox field message when NetBox refuses a change (400)', async () => {
    const netbox = provider();
    await netbox.apply(task({ present: true }, CREATE()), context());
    const error = await netbox
      .apply(task(CREATED, [u('subcluster', 'set', 'db')]), context())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toBe(
      'NetBox refused to update virtual machine web-01: cluster: The selected cluster (db) is not assigned to this site (Beijing 1).',
    );
  });

  it('finds its VM by name among more than 50, on any page', async () => {
    server.seed({
      virtualMachines: [
        ...Array.from({ length: 60 }, (_, i) => ({
          name: `web-${String(i + 2).padStart(2, '0')}`,
          cluster: 'web',
        })),
        // One VM of the same name per cluster is allowed: 55 namesakes in clusters of their own.
        ...Array.from({ length: 55 }, (_, i) => ({ name: 'db-01', cluster: `db-${i}` })),
      ],
      clusters: Array.from({ length: 55 }, (_, i) => ({ name: `db-${i}`, site: 'sha2' })),
    });
    const small = await startNetboxServer({ tokens: [TOKEN], maxPageSize: 20 });
    try {
      small.seed({
        sites: [{ name: 'Shanghai 2', slug: 'sha2' }],
        clusters: Array.from({ length: 55 }, (_, i) => ({ name: `db-${i}`, site: 'sha2' })),
      });
      small.seed({
        virtualMachines: Array.from({ length: 55 }, (_, i) => ({ name: 'db-01', cluster: `db-${i}` })),
      });
      const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;
      const [netbox] = plugin.providers({ url: small.url, token: TOKEN, pageSize: 1000 }, services);
      const node = { present: true, datacenter: 'sha2', subcluster: 'db-47' };
      const outcome = await netbox!.apply(task(node, [u('status', 'set', 'offline')], 'db-01'), context());
      expect(outcome.rejected).toBeUndefined();
      const changed = small.state.vmsByName('db-01').filter((v) => v.status === 'offline');
      expect(changed.map((v) => small.state.clusters.get(v.clusterId)?.name)).toEqual(['db-47']);
      // 55 namesakes at NetBox's MAX_PAGE_SIZE of 20: three pages.
      expect(
        small.state.requests.filter((r) => r.path.endsWith('/virtual-machines/') && r.method === 'GET'),
      ).toHaveLength(3);
      expect(small.state.vmsByName('db-01')).toHaveLength(55);
    } finally {
      await small.stop();
    }

    const netbox = provider();
    const outcome = await netbox.apply(
      task({ present: true, subcluster: 'web' }, [u('status', 'set', 'offline')], 'web-33'),
      context(),
    );
    expect(outcome.operations?.map((o) => `${o.action}: ${o.detail}`)).toEqual([
      'update-vm: status active → offline',
    ]);
    expect(server.state.vm('web-33').status).toBe('offline');
    expect(server.state.vmsByName('web-33')).toHaveLength(1);
    await expect(netbox.observe!({ kind: 'host', name: 'db-01' }, context())).rejects.toThrow(
      /^NetBox has 55 virtual machines named db-01 \(clusters: db-0, db-1, .*\); set subcluster to the cluster of the one that is this host$/,
    );
  });

  it('retries when a VM of the same name appears between the look-up and the create', async () => {
    server.injectFault({ method: 'POST', path: '/api/virtualization/virtual-machines/', delayMs: 500 });
    const netbox = provider();
    const pending = netbox.apply(task({ present: true }, CREATE()), context());
    // The role tag is created right before the VM: once it is, the VM's POST is being held back.
    while (!server.state.requests.some((r) => r.method === 'POST' && r.path === '/api/extras/tags/')) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    server.seed({ virtualMachines: [{ name: 'web-01', cluster: 'web', tenant: 'web-team' }] });
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe(
      'virtual machine web-01 appeared in NetBox while it was being created; trying again',
    );
    expect(((error as Error).cause as Error).message).toBe(
      'NetBox refused to create virtual machine web-01: Virtual machine name must be unique per cluster and tenant.',
    );
    const retried = await netbox.apply(task({ present: true }, CREATE()), context());
    expect(retried.operations?.map((o) => o.action)).toEqual(['update-vm']);
    expect(server.state.vm('web-01').status).toBe('planned');
  });

  it('deletes the VM on delete, and treats a VM that is already gone as done', async () => {
    const netbox = provider();
    await netbox.apply(task({ present: true }, CREATE()), context());
    const sync: ProposedUpdate = { id: 's1.1', path: 'present', op: 'sync', origin: 'user' };
    const gone = Object.fromEntries(Object.entries(CREATED).filter(([key]) => key !== 'present'));
    const deleted = await netbox.apply(task(gone, [sync]), context());
    expect(deleted.accepted).toEqual(['s1.1']);
    expect([...(deleted.unset ?? [])].sort()).toEqual([
      'datacenter',
      'owner',
      'puppet_roles',
      'status',
      'subcluster',
    ]);
    expect(deleted.operations?.map((o) => `${o.action} ${o.detail}`)).toEqual([
      'delete-vm virtual machine #1',
    ]);
    expect(server.state.vmsByName('web-01')).toEqual([]);
    const again = await netbox.apply(task(gone, [sync]), context());
    expect(again.accepted).toEqual(['s1.1']);
    expect(again.operations).toBeUndefined();

    // Gone between the look-up and the DELETE: NetBox answers 404.
    await netbox.apply(task({ present: true }, CREATE()), context());
    server.injectFault({ method: 'DELETE', status: 404, body: { detail: 'Not found.' } });
    const raced = await netbox.apply(task(gone, [sync]), context());
    expect(raced.operations?.[0]?.detail).toBe('virtual machine #2 was already gone');
  });

  it('refuses operations netbox cannot do', async () => {
    const outcome = await provider().apply(
      task({ present: true }, [u('status', 'unset'), u('hostname', 'set', 'x')]),
      context(),
    );
    expect(outcome.rejected?.map((r) => r.reason)).toEqual([
      'a NetBox virtual machine always has a status; set one of planned, staged, active, offline, failed, decommissioning instead',
      'netbox provides only datacenter, subcluster, owner, status, puppet_roles; not hostname',
    ]);
  });
});

describe('explain', () => {
  it('predicts the same operations as apply, with reads only', async () => {
    const outcome = await provider().explain(
      task({ present: true }, [u('subcluster', 'set', 'web'), u('puppet_roles', 'add', 'nginx')]),
      context(),
    );
    expect(outcome.operations?.map((o) => o.action)).toEqual(['create-tag', 'create-vm']);
    expect(outcome.set).toEqual({ datacenter: 'pek1', status: 'active' });
    expect(server.state.requests.length).toBeGreaterThan(0);
    expect(writes()).toEqual([]);
  });
});

describe('observe', () => {
  it('reads the VM as host values for drift detection, or null when absent', async () => {
    const netbox = provider();
    expect(await netbox.observe!({ kind: 'host', name: 'web-01' }, context())).toBeNull();
    await netbox.apply(task({ present: true }, CREATE()), context());
    const vm = server.state.vm('web-01');
    vm.status = 'offline';
    vm.tenantId = server.state.tenantBySlug('db-team')!.id;
    expect(await netbox.observe!({ kind: 'host', name: 'web-01' }, context())).toEqual({
      datacenter: 'pek1',
      subcluster: 'web',
      owner: 'db-team',
      status: 'offline',
      puppet_roles: ['nginx'],
    });
  });
});
