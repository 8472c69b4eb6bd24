import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from './test-support/dev-server.js';
import { startInProcess } from './test-support/dev-server.js';

let api: Api;
let stop: () => Promise<void>;

beforeAll(async () => {
  const started = await startInProcess();
  api = started.api;
  stop = () => started.stop();
  const subnet = await api.request('POST', '/api/inventory/subnet?wait=30s', {
    body: { name: 'pek1-web', attrs: { cidr: '10.1.2.0/24', gateway: '10.1.2.1' } },
  });
  expect(subnet.status).toBe(200);
  expect(subnet.body.state).toBe('succeeded');
}, 60_000);

afterAll(async () => {
  await stop();
});

/** Asserts a problem+json answer with this status and code, and no stack trace. */
function expectProblem(
  response: { status: number; headers: Headers; body: any },
  status: number,
  code: string,
): void {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body.code).toBe(code);
  expect(response.body.status).toBe(status);
  expect(JSON.stringify(response.body)).not.toMatch(/\n\s+at /);
}

describe('bad input gets a specific problem, never a 500', () => {
  it('unknown kind', async () => {
    const r = await api.request('GET', '/api/inventory/toaster');
    expectProblem(r, 404, 'NOT_FOUND');
    expect(r.body.detail).toBe('unknown kind "toaster" (known: host, hypervisor, subnet, vip, vlan)');
  });

  it('invalid name', async () => {
    const r = await api.request('POST', '/api/inventory/host', { body: { name: 'Web_01', attrs: {} } });
    expectProblem(r, 400, 'INVALID_NAME');
  });

  it('schema violation', async () => {
    const r = await api.request('POST', '/api/inventory/host', {
      body: { name: 'web-x', attrs: { hwspec: 'huge' } },
    });
    expectProblem(r, 422, 'SCHEMA_VIOLATION');
    expect(r.body.detail).toContain('/hwspec: must be equal to one of the allowed values');
  });

  it('an attribute nobody provides, with a suggestion', async () => {
    const r = await api.request('POST', '/api/inventory/host', {
      body: { name: 'web-x', attrs: { hwsepc: 'small' } },
    });
    expectProblem(r, 422, 'UNKNOWN_ATTRIBUTE');
    expect(r.body.detail).toBe('unknown attribute "hwsepc" for kind host (did you mean "hwspec"?)');
  });

  it('wrong content type', async () => {
    const r = await api.request('POST', '/api/inventory/host', {
      raw: 'name=web-x',
      type: 'application/x-www-form-urlencoded',
    });
    expectProblem(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const patch = await api.request('PATCH', '/api/inventory/subnet/pek1-web', {
      body: { description: 'x' },
    });
    expectProblem(patch, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(patch.body.detail).toBe(
      'Content-Type must be application/merge-patch+json or application/json-patch+json or application/vnd.consortium.updates+json, not application/json',
    );
  });

  it('malformed JSON and __proto__ keys', async () => {
    expectProblem(
      await api.request('POST', '/api/inventory/host', { raw: '{"name":' }),
      400,
      'INVALID_INPUT',
    );
    const r = await api.request('PATCH', '/api/inventory/subnet/pek1-web', {
      raw: '{"__proto__": {"cidr": "0.0.0.0/0"}}',
      type: 'application/merge-patch+json',
    });
    expectProblem(r, 400, 'INVALID_INPUT');
  });

  it('oversized body', async () => {
    const r = await api.request('POST', '/api/inventory/host', {
      body: { name: 'big', attrs: { description: 'x'.repeat(2 * 1024 * 1024) } },
    });
    expectProblem(r, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('stale If-Match', async () => {
    const r = await api.request('PATCH', '/api/inventory/subnet/pek1-web', {
      body: { description: 'edge' },
      type: 'application/merge-patch+json',
      headers: { 'if-match': '"999"' },
    });
    expectProblem(r, 412, 'PRECONDITION_FAILED');
  });

  it('missing, malformed and wrong tokens', async () => {
    const none = await api.request('GET', '/api/inventory/host', { token: null });
    expectProblem(none, 401, 'UNAUTHENTICATED');
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expectProblem(
      await api.request('GET', '/api/inventory/host', { token: 'cst_nope' }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('a reader may read but not write', async () => {
    const created = await api.request('POST', '/api/tokens', { body: { role: 'reader' } });
    expect(created.status).toBe(201);
    const reader = created.body.token as string;
    expect((await api.request('GET', '/api/inventory/subnet', { token: reader })).status).toBe(200);
    const r = await api.request('POST', '/api/inventory/host', {
      body: { name: 'web-r', attrs: {} },
      token: reader,
    });
    expectProblem(r, 403, 'FORBIDDEN');
  });

  it('unknown list filters, bad limits and unknown routes', async () => {
    const r = await api.request('GET', '/api/inventory/host?colour=red');
    expectProblem(r, 400, 'INVALID_INPUT');
    expect(r.body.detail).toBe('unknown filter "colour": host has no attribute "colour"');
    expectProblem(await api.request('GET', '/api/inventory/host?hwspec__zz=1'), 400, 'INVALID_INPUT');
    expectProblem(await api.request('GET', '/api/inventory/host?limit=0'), 400, 'INVALID_INPUT');
    expectProblem(await api.request('GET', '/api/nothing-here'), 404, 'NOT_FOUND');
    expectProblem(await api.request('GET', '/api/jobs/j-nope'), 404, 'NOT_FOUND');
  });

  it('creating a node that exists is a conflict', async () => {
    const r = await api.request('POST', '/api/inventory/subnet', { body: { name: 'pek1-web', attrs: {} } });
    expectProblem(r, 409, 'CONFLICT');
  });
});

describe('concurrency', () => {
  it('50 simultaneous patches with If-Match: one success per revision, and no lost update', async () => {
    const created = await api.request('POST', '/api/inventory/host?wait=30s', {
      body: { name: 'conc-1', attrs: {} },
    });
    expect(created.body.state).toBe('succeeded');
    const first = await api.request('GET', '/api/inventory/host/conc-1');
    const etag = first.headers.get('etag')!;
    const patch = (i: number, ifMatch: string) =>
      api.request('PATCH', '/api/inventory/host/conc-1', {
        body: [{ path: 'tags', op: 'add', value: `t${i}` }],
        type: 'application/vnd.consortium.updates+json',
        headers: { 'if-match': ifMatch },
      });
    const racing = await Promise.all(Array.from({ length: 50 }, (_, i) => patch(i, etag)));
    expect(racing.filter((r) => r.status === 202 || r.status === 200)).toHaveLength(1);
    expect(racing.filter((r) => r.status === 412)).toHaveLength(49);
    // Every client retries on 412 with the current ETag until its change is accepted; none may be lost.
    const winner = racing.findIndex((r) => r.status !== 412);
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        if (i === winner) return;
        for (;;) {
          const current = await api.request('GET', '/api/inventory/host/conc-1');
          const r = await patch(i, current.headers.get('etag')!);
          if (r.status !== 412) {
            expect(r.status).toBe(202);
            return;
          }
        }
      }),
    );
    const done = await api.request('GET', '/api/jobs?kind=host&name=conc-1&state=queued,running');
    for (const job of done.body.items) await api.request('GET', `/api/jobs/${job.id}?wait=60s`);
    const final = await api.request('GET', '/api/inventory/host/conc-1');
    expect([...final.body.attrs.tags].sort()).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`).sort());
  }, 120_000);

  it('100 hosts created at once in one subnet get 100 distinct addresses', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        api.request('POST', '/api/inventory/host?wait=120s', {
          body: { name: `many-${i}`, attrs: { subnet: 'pek1-web' } },
        }),
      ),
    );
    expect(results.map((r) => r.body.state)).toEqual(Array(100).fill('succeeded'));
    const ips = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const host = await api.request('GET', `/api/inventory/host/many-${i}`);
      ips.add(host.body.attrs.interfaces[0].ip);
    }
    expect(ips.size).toBe(100);
  }, 180_000);
});
