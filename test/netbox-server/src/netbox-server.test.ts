import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NetboxServer } from './index.js';
import { startNetboxServer } from './index.js';

let server: NetboxServer;

beforeEach(async () => {
  server = await startNetboxServer({ tokens: ['0123456789abcdef0123456789abcdef01234567'] });
  server.seed({
    sites: [
      { name: 'Beijing 1', slug: 'pek1' },
      { name: 'Shanghai 2', slug: 'sha2' },
    ],
    clusters: [
      { name: 'web', type: 'kvm', site: 'pek1' },
      { name: 'db', type: 'kvm', site: 'sha2' },
    ],
    tenants: [{ name: 'Web team', slug: 'web-team' }],
    tags: [{ name: 'nginx', slug: 'nginx' }],
  });
});

afterEach(async () => {
  await server.stop();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { authorization: `Token ${server.token}` },
): Promise<{ status: number; body: any; text: string }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    redirect: 'manual',
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text };
}

describe('authentication', () => {
  it('refuses requests without a token, with a bad header and with an unknown token as NetBox does', async () => {
    expect(await call('GET', '/api/dcim/sites/', undefined, {})).toMatchObject({
      status: 403,
      body: { detail: 'Authentication credentials were not provided.' },
    });
    expect(await call('GET', '/api/dcim/sites/', undefined, { authorization: 'Token' })).toMatchObject({
      status: 403,
      body: { detail: 'Invalid token header. No credentials provided.' },
    });
    expect(await call('GET', '/api/dcim/sites/', undefined, { authorization: 'Token a b' })).toMatchObject({
      status: 403,
      body: { detail: 'Invalid token header. Token string should not contain spaces.' },
    });
    expect(await call('GET', '/api/dcim/sites/', undefined, { authorization: 'Token nope' })).toMatchObject({
      status: 403,
      body: { detail: 'Invalid token' },
    });
  });

  it('lets a read-only token read but not write', async () => {
    const ro = await startNetboxServer({ tokens: ['rw'], readOnlyTokens: ['ro'] });
    try {
      const headers = { authorization: 'Token ro', 'content-type': 'application/json' };
      expect((await fetch(`${ro.url}/api/extras/tags/`, { headers })).status).toBe(200);
      const refused = await fetch(`${ro.url}/api/extras/tags/`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: 'x', slug: 'x' }),
      });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual({ detail: 'You do not have permission to perform this action.' });
    } finally {
      await ro.stop();
    }
  });
});

describe('lists', () => {
  it('pages with limit and offset, with DRF next and previous links', async () => {
    server.seed({
      virtualMachines: Array.from({ length: 120 }, (_, i) => ({ name: `vm-${i + 1}`, cluster: 'web' })),
    });
    const first = await call('GET', '/api/virtualization/virtual-machines/');
    expect(first.status).toBe(200);
    expect(first.body.count).toBe(120);
    expect(first.body.results).toHaveLength(50);
    expect(first.body.results[0].name).toBe('vm-1');
    expect(first.body.results[1].name).toBe('vm-2');
    expect(first.body.previous).toBeNull();
    expect(first.body.next).toBe(`${server.url}/api/virtualization/virtual-machines/?limit=50&offset=50`);

    const last = await call('GET', '/api/virtualization/virtual-machines/?offset=100&cluster=web&limit=50');
    expect(last.body.results).toHaveLength(20);
    expect(last.body.results[19].name).toBe('vm-120');
    expect(last.body.next).toBeNull();
    expect(last.body.previous).toBe(
      `${server.url}/api/virtualization/virtual-machines/?cluster=web&limit=50&offset=50`,
    );
    const zero = await call('GET', '/api/virtualization/virtual-machines/?limit=0');
    expect(zero.body.results).toHaveLength(120);
  });

  it('filters, and refuses related-object filters that match nothing', async () => {
    server.seed({
      virtualMachines: [
        { name: 'Web-01', cluster: 'web' },
        { name: 'db-01', cluster: 'db' },
      ],
    });
    const byName = await call('GET', '/api/virtualization/virtual-machines/?name=web-01');
    expect(byName.body.results.map((v: any) => v.name)).toEqual(['Web-01']);
    const bySite = await call('GET', '/api/virtualization/virtual-machines/?site=sha2');
    expect(bySite.body.results.map((v: any) => v.name)).toEqual(['db-01']);
    expect(await call('GET', '/api/virtualization/virtual-machines/?site_id=99')).toMatchObject({
      status: 400,
      body: { site_id: ['Select a valid choice. 99 is not one of the available choices.'] },
    });
    expect(await call('GET', '/api/virtualization/clusters/?type=vmware')).toMatchObject({
      status: 400,
      body: { type: ['Select a valid choice. vmware is not one of the available choices.'] },
    });
    const sites = await call('GET', '/api/dcim/sites/?slug=pek1');
    expect(sites.body.results).toEqual([expect.objectContaining({ name: 'Beijing 1', slug: 'pek1' })]);
  });
});

describe('virtual machines', () => {
  const site = (): number => server.state.siteBySlug('pek1')!.id;
  const cluster = (name: string): number => server.state.clustersByName(name)[0]!.id;

  it('creates, reads, patches and deletes', async () => {
    const created = await call('POST', '/api/virtualization/virtual-machines/', {
      name: 'web-01',
      status: 'planned',
      cluster: cluster('web'),
      tags: [{ name: 'nginx' }],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'web-01',
      status: { value: 'planned', label: 'Planned' },
      site: { id: site(), slug: 'pek1', name: 'Beijing 1' },
      cluster: { id: cluster('web'), name: 'web' },
      tenant: null,
      tags: [{ name: 'nginx', slug: 'nginx' }],
      custom_fields: {},
    });
    const id = created.body.id as number;
    const patched = await call('PATCH', `/api/virtualization/virtual-machines/${id}/`, {
      tenant: server.state.tenantBySlug('web-team')!.id,
      tags: [],
    });
    expect(patched.body).toMatchObject({ tenant: { slug: 'web-team' }, tags: [] });
    expect((await call('GET', `/api/virtualization/virtual-machines/${id}/`)).body.tenant.slug).toBe(
      'web-team',
    );
    const deleted = await call('DELETE', `/api/virtualization/virtual-machines/${id}/`);
    expect(deleted).toMatchObject({ status: 204, text: '' });
    expect(await call('GET', `/api/virtualization/virtual-machines/${id}/`)).toMatchObject({
      status: 404,
      body: { detail: 'Not found.' },
    });
    expect(await call('DELETE', `/api/virtualization/virtual-machines/${id}/`)).toMatchObject({
      status: 404,
    });
  });

  it('refuses invalid writes with NetBox field errors', async () => {
    const vms = '/api/virtualization/virtual-machines/';
    expect(await call('POST', vms, { name: 'x', site: 99, status: 'retired' })).toMatchObject({
      status: 400,
      body: {
        status: ['retired is not a valid choice.'],
        site: ['Related object not found using the provided numeric ID: 99'],
      },
    });
    expect(await call('POST', vms, { status: 'active' })).toMatchObject({
      status: 400,
      body: { name: ['This field is required.'] },
    });
    expect(await call('POST', vms, { name: 'x' })).toMatchObject({
      status: 400,
      body: { __all__: ['A virtual machine must be assigned to a site and/or cluster.'] },
    });
    expect(await call('POST', vms, { name: 'x', site: site(), cluster: cluster('db') })).toMatchObject({
      status: 400,
      body: { cluster: ['The selected cluster (db) is not assigned to this site (Beijing 1).'] },
    });
    expect(await call('POST', vms, { name: 'x', site: { slug: 'nowhere' } })).toMatchObject({
      status: 400,
      body: { site: ["Related object not found using the provided attributes: {'slug': 'nowhere'}"] },
    });
    expect(await call('POST', vms, { name: 'dup', cluster: cluster('web') })).toMatchObject({ status: 201 });
    expect(await call('POST', vms, { name: 'DUP', cluster: cluster('web') })).toMatchObject({
      status: 400,
      body: { __all__: ['Virtual machine name must be unique per cluster.'] },
    });
    expect(
      await call('POST', vms, { name: 'y', site: site(), custom_fields: { roles: ['a'] } }),
    ).toMatchObject({
      status: 400,
      body: { __all__: ["Unknown field name 'roles' in custom field data."] },
    });
  });

  it('keeps custom fields not named in a PATCH and lists every field of the model', async () => {
    server.seed({
      customFields: [
        { name: 'puppet_roles', type: 'json' },
        { name: 'owner_email', type: 'text' },
      ],
    });
    const created = await call('POST', '/api/virtualization/virtual-machines/', {
      name: 'web-02',
      site: site(),
      custom_fields: { puppet_roles: ['nginx'], owner_email: 'ops@example.com' },
    });
    expect(created.status).toBe(201);
    const patched = await call('PATCH', `/api/virtualization/virtual-machines/${created.body.id}/`, {
      custom_fields: { puppet_roles: ['nginx', 'redis'] },
    });
    expect(patched.body.custom_fields).toEqual({
      owner_email: 'ops@example.com',
      puppet_roles: ['nginx', 'redis'],
    });
    const bad = await call('PATCH', `/api/virtualization/virtual-machines/${created.body.id}/`, {
      custom_fields: { owner_email: 7 },
    });
    expect(bad).toMatchObject({
      status: 400,
      body: { __all__: ["Invalid value for custom field 'owner_email': Value must be a string."] },
    });
  });
});

describe('tags', () => {
  it('creates tags and refuses duplicates and bad slugs', async () => {
    expect(await call('POST', '/api/extras/tags/', { name: 'redis', slug: 'redis' })).toMatchObject({
      status: 201,
      body: { name: 'redis', slug: 'redis', color: '9e9e9e' },
    });
    expect(await call('POST', '/api/extras/tags/', { name: 'redis', slug: 're dis' })).toMatchObject({
      status: 400,
      body: {
        name: ['tag with this name already exists.'],
        slug: ['Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.'],
      },
    });
  });
});

describe('faults and quirks', () => {
  it('answers injected faults the given number of times, then serves normally', async () => {
    server.injectFault({ path: '/api/dcim/', status: 503, times: 2 });
    const first = await call('GET', '/api/dcim/sites/');
    expect(first.status).toBe(503);
    expect(first.text).toContain('503 Service Temporarily Unavailable');
    expect((await call('GET', '/api/dcim/sites/')).status).toBe(503);
    expect((await call('GET', '/api/dcim/sites/')).status).toBe(200);
    server.injectFault({ method: 'POST', status: 400, body: { name: ['nope'] } });
    expect((await call('GET', '/api/extras/tags/')).status).toBe(200);
    expect(await call('POST', '/api/extras/tags/', { name: 'a', slug: 'a' })).toMatchObject({
      status: 400,
      body: { name: ['nope'] },
    });
  });

  it('refuses writes in maintenance mode with NetBox 500 body, while reads work', async () => {
    server.setMaintenance(true);
    expect((await call('GET', '/api/extras/tags/')).status).toBe(200);
    expect(await call('POST', '/api/extras/tags/', { name: 'a', slug: 'a' })).toMatchObject({
      status: 500,
      body: { exception: 'InternalError', error: 'cannot execute INSERT in a read-only transaction\n' },
    });
  });

  it('redirects paths without a trailing slash, and refuses non-JSON bodies and unknown methods', async () => {
    const redirected = await call('GET', '/api/dcim/sites?slug=pek1');
    expect(redirected.status).toBe(301);
    const bad = await fetch(`${server.url}/api/extras/tags/`, {
      method: 'POST',
      headers: { authorization: `Token ${server.token}`, 'content-type': 'text/plain' },
      body: 'name=x',
    });
    expect(bad.status).toBe(415);
    expect(await bad.json()).toEqual({ detail: 'Unsupported media type "text/plain" in request.' });
    expect(await call('PUT', '/api/dcim/sites/1/', {})).toMatchObject({
      status: 405,
      body: { detail: 'Method "PUT" not allowed.' },
    });
    expect((await call('GET', '/api/dcim/nothing/')).status).toBe(404);
  });
});
