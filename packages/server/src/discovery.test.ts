/**
 * Discovery and adoption against the NetBox test server (the only backend whose provider implements discover()
 * so far): a VM made by hand is adoptable, adoption writes no backend and leaves no drift, a node deleted behind
 * Consortium's back is orphaned.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessParts } from './process.js';
import type { Api } from './test-support/dev-server.js';
import { startInProcess, tempDir } from './test-support/dev-server.js';

const TOKEN = '0123456789abcdef0123456789abcdef01234567';
let netbox: NetboxServer;
let api: Api;
let parts: ProcessParts;
let stop: () => Promise<void>;
const dir = tempDir();

beforeAll(async () => {
  netbox = await startNetboxServer({ tokens: [TOKEN] });
  netbox.seed({
    sites: [{ name: 'Peking 1', slug: 'pek1' }],
    clusters: [{ name: 'web', type: 'kvm', site: 'pek1' }],
    tags: [{ name: 'nginx', slug: 'nginx' }],
    virtualMachines: [{ name: 'web-09', status: 'active', site: 'pek1', cluster: 'web', tags: ['nginx'] }],
  });
  const config = join(dir.dir, 'netbox.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      plugins: [
        { module: '@consortium/plugin-inventory', config: { hostAttributes: [] } },
        { module: '@consortium/plugin-netbox', config: { url: netbox.url, token: TOKEN } },
      ],
    }),
  );
  const started = await startInProcess({ CONSORTIUM_CONFIG: config });
  api = started.api;
  parts = started.parts;
  stop = () => started.stop();
  const made = await api.request('POST', '/api/inventory/host?wait=30s', {
    body: { name: 'web-01', attrs: { datacenter: 'pek1', subcluster: 'web' } },
  });
  expect(made.body.state).toBe('succeeded');
}, 60_000);

afterAll(async () => {
  await stop();
  await netbox.stop();
  dir.remove();
});

const writes = (): number => netbox.state.requests.filter((r) => r.method !== 'GET').length;

describe('discovery and adoption', () => {
  it('lists known, adoptable and orphaned hosts, and adopts without a backend write', async () => {
    const first = await api.request('GET', '/api/discovery?kind=host');
    expect(first.status).toBe(200);
    expect(first.body.known).toEqual([{ name: 'web-01', providers: ['netbox'], drift: [] }]);
    expect(first.body.adoptable.map((o: any) => o.name)).toEqual(['web-09']);
    expect(first.body.adoptable[0].attrs).toMatchObject({
      present: true,
      datacenter: 'pek1',
      subcluster: 'web',
      puppet_roles: ['nginx'],
    });
    expect(first.body.orphaned).toEqual([]);

    // A hook for new hosts hears of the adoption, though no job made the node (nothing listens at port 9).
    const hook = await api.request('POST', '/api/hooks', {
      body: { url: 'http://127.0.0.1:9/hook', events: ['node.created'], kind: 'host' },
    });
    expect(hook.status).toBe(201);
    const before = writes();
    const adopted = await api.request('POST', '/api/discovery/adopt', {
      body: { kind: 'host', names: ['web-09'] },
    });
    expect(adopted.status).toBe(201);
    expect(writes()).toBe(before);
    const deliveries = await api.request('GET', `/api/hooks/${hook.body.id as string}/deliveries`);
    expect(deliveries.body.items.map((d: any) => [d.event, d.payload.node.name])).toEqual([
      ['node.created', 'web-09'],
    ]);
    expect(deliveries.body.items[0].payload.adoption).toEqual({ actor: expect.any(String) });
    const node = await api.request('GET', '/api/inventory/host/web-09?show=authority');
    expect(node.body.attrs).toMatchObject({ datacenter: 'pek1', subcluster: 'web', puppet_roles: ['nginx'] });
    expect(node.body.drift).toEqual([]);
    // The next observe sees exactly what was adopted.
    const netboxProvider = parts.kinds.get('host')!.providers.get('netbox')!;
    const observed = await netboxProvider.observe!(
      { kind: 'host', name: 'web-09' },
      {
        logger: parts.logger,
        signal: new AbortController().signal,
        fencingToken: '0',
        now: () => Date.now(),
      },
    );
    for (const [path, value] of Object.entries(observed!)) expect(node.body.attrs[path]).toEqual(value);
    const again = await api.request('POST', '/api/discovery/adopt', {
      body: { kind: 'host', names: ['web-09'] },
    });
    expect(again.status).toBe(409);
    expect(again.body.detail).toBe('host/web-09 already exists; nothing to adopt');

    // Deleted behind Consortium's back: the VM is still in NetBox, the node is gone, its jobs remain.
    await parts.store.deleteNode('host', 'web-01');
    const after = await api.request('GET', '/api/discovery?kind=host');
    expect(after.body.orphaned.map((o: any) => o.name)).toEqual(['web-01']);
    expect(after.body.known.map((o: any) => o.name)).toEqual(['web-09']);
    expect(after.body.adoptable).toEqual([]);
    expect(writes()).toBe(before);
  });

  it('refuses to adopt a name while a change of it is queued or running, and writes nothing', async () => {
    netbox.seed({ virtualMachines: [{ name: 'web-10', status: 'active', site: 'pek1', cluster: 'web' }] });
    const before = writes();
    // A create of web-10 accepted a moment ago: its record is written, the master has not run it yet.
    const now = Date.now();
    await parts.store.createJob({
      id: 'j-adopt-busy',
      kind: 'host',
      name: 'web-10',
      action: 'create',
      state: 'running',
      actor: 'dev',
      updates: [],
      before: null,
      createdAt: now,
      updatedAt: now,
    });
    const refused = await api.request('POST', '/api/discovery/adopt', {
      body: { kind: 'host', names: ['web-10'] },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toBe(
      'host/web-10 is being changed by job j-adopt-busy; adopt it once that ends',
    );
    expect((await api.request('GET', '/api/inventory/host/web-10')).status).toBe(404);
    expect(writes()).toBe(before);
  });
});
