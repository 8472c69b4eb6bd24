/**
 * The test server's answers for every operation the netbox plugin uses, validated against NetBox's own response
 * schemas (`openapi-subset.ts`, from NetBox's `contrib/openapi.json`, checked for v4.6.8): the list pages, a created
 * tag, a created, patched and deleted virtual machine, with every nested object filled in at least once.
 */
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetboxServer } from './index.js';
import { NETBOX_VERSION, startNetboxServer } from './index.js';
import { OPENAPI_NETBOX_VERSION, PLUGIN_OPERATIONS } from './openapi-subset.js';

let server: NetboxServer;
let vmId = 0;

beforeAll(async () => {
  server = await startNetboxServer({ tokens: ['0123456789abcdef0123456789abcdef01234567'] });
  server.seed({
    sites: [{ name: 'Beijing 1', slug: 'pek1' }],
    clusters: [
      { name: 'web', type: 'kvm', site: 'pek1' },
      { name: 'spare', type: 'kvm' },
    ],
    tenants: [{ name: 'Web team', slug: 'web-team' }],
    tags: [{ name: 'nginx', slug: 'nginx' }],
    customFields: [{ name: 'owner_team', type: 'text' }],
    virtualMachines: [{ name: 'db-01', cluster: 'web', tenant: 'web-team', tags: ['nginx'] }],
  });
});

afterAll(async () => {
  await server.stop();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Token ${server.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** `schema` with every listed property required: NetBox writes every serializer field, optional or not. */
function everyField(schema: Record<string, unknown>): Record<string, unknown> {
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (typeof value !== 'object' || value === null) return value;
    const copy = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    const properties = copy['properties'];
    if (copy['type'] === 'object' && typeof properties === 'object' && properties !== null) {
      copy['required'] = Object.keys(properties);
    }
    return copy;
  };
  return walk(schema) as Record<string, unknown>;
}

/** The bodies the plugin's requests send, per operation (ids filled in as the run goes). */
const requests: Record<string, () => { path: string; body?: unknown }> = {
  'GET /api/dcim/sites/': () => ({ path: '/api/dcim/sites/?slug=pek1' }),
  'GET /api/virtualization/clusters/': () => ({ path: '/api/virtualization/clusters/' }),
  'GET /api/tenancy/tenants/': () => ({ path: '/api/tenancy/tenants/?slug=web-team' }),
  'GET /api/extras/tags/': () => ({ path: '/api/extras/tags/?name=nginx' }),
  'POST /api/extras/tags/': () => ({
    path: '/api/extras/tags/',
    body: { name: 'role:web', slug: 'role-web' },
  }),
  'GET /api/virtualization/virtual-machines/': () => ({ path: '/api/virtualization/virtual-machines/' }),
  'POST /api/virtualization/virtual-machines/': () => ({
    path: '/api/virtualization/virtual-machines/',
    body: {
      name: 'web-01',
      status: 'active',
      site: { slug: 'pek1' },
      cluster: { name: 'web' },
      tenant: { slug: 'web-team' },
      tags: [{ name: 'nginx' }],
      custom_fields: { owner_team: 'web' },
    },
  }),
  'PATCH /api/virtualization/virtual-machines/{id}/': () => ({
    path: `/api/virtualization/virtual-machines/${String(vmId)}/`,
    body: { status: 'offline', description: 'retiring' },
  }),
  'DELETE /api/virtualization/virtual-machines/{id}/': () => ({
    path: `/api/virtualization/virtual-machines/${String(vmId)}/`,
  }),
};

describe(`the NetBox test server against NetBox ${OPENAPI_NETBOX_VERSION}'s OpenAPI schemas`, () => {
  it('claims the version it was checked against', async () => {
    expect(NETBOX_VERSION).toBe(OPENAPI_NETBOX_VERSION);
    const status = await call('GET', '/api/status/');
    expect(status.body).toMatchObject({ 'netbox-version': OPENAPI_NETBOX_VERSION });
  });

  it('answers every operation the plugin uses as the schema says, in the order the plugin calls them', async () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const failures: string[] = [];
    for (const operation of PLUGIN_OPERATIONS) {
      const key = `${operation.method} ${operation.path}`;
      const request = requests[key]?.();
      if (request === undefined) throw new Error(`no request for ${key}`);
      const answer = await call(operation.method, request.path, request.body);
      if (answer.status !== operation.status) {
        failures.push(`${key}: status ${String(answer.status)}, not ${String(operation.status)}`);
        continue;
      }
      if (key === 'POST /api/virtualization/virtual-machines/') vmId = (answer.body as { id: number }).id;
      if (operation.schema === undefined) {
        if (answer.body !== undefined) failures.push(`${key}: a body where NetBox sends none`);
        continue;
      }
      // First NetBox's schema; then "every field": a serializer writes all its fields, optional or not.
      for (const schema of [operation.schema, everyField(operation.schema)]) {
        const validate = ajv.compile(schema);
        if (!validate(answer.body)) {
          for (const error of validate.errors ?? []) {
            failures.push(
              `${key}: ${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`,
            );
          }
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('fills the nested objects it validates: site, cluster, tenant, tag, scope and cluster type', async () => {
    const vms = (await call('GET', '/api/virtualization/virtual-machines/?name=db-01')).body as {
      results: Record<string, unknown>[];
    };
    const vm = vms.results[0]!;
    expect(vm['site']).not.toBeNull();
    expect(vm['cluster']).not.toBeNull();
    expect(vm['tenant']).not.toBeNull();
    expect(vm['tags']).toHaveLength(1);
    const clusters = (await call('GET', '/api/virtualization/clusters/?name=web')).body as {
      results: Record<string, unknown>[];
    };
    expect(clusters.results[0]!['scope']).not.toBeNull();
    expect(clusters.results[0]!['type']).not.toBeNull();
  });
});
