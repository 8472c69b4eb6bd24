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
    const nested = await api.request('POST', '/api/inventory/host', {
      raw: '{"name": "proto-1", "attrs": {"interfaces": [{"name": "eth0", "__proto__": {"x": 1}}]}}',
    });
    expectProblem(nested, 400, 'INVALID_INPUT');
    expect(nested.body.detail).toBe('the key "__proto__" is not allowed');
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

describe('refused requests write nothing', () => {
  it('a refused or explained change with a matching If-Match leaves the revision as it was', async () => {
    const created = await api.request('POST', '/api/inventory/vlan?wait=30s', {
      body: { name: 'quiet-1', attrs: { vid: 301 } },
    });
    expect(created.body.state).toBe('succeeded');
    const before = await api.request('GET', '/api/inventory/vlan/quiet-1');
    const etag = before.headers.get('etag')!;
    const reader = (await api.request('POST', '/api/tokens', { body: { role: 'reader' } })).body
      .token as string;
    const merge = (body: unknown, query = '', token?: string) =>
      api.request('PATCH', `/api/inventory/vlan/quiet-1${query}`, {
        body,
        type: 'application/merge-patch+json',
        headers: { 'if-match': etag },
        ...(token === undefined ? {} : { token }),
      });
    expectProblem(await merge({ vid: 302 }, '', reader), 403, 'FORBIDDEN');
    expectProblem(
      await api.request('DELETE', '/api/inventory/vlan/quiet-1', {
        headers: { 'if-match': etag },
        token: reader,
      }),
      403,
      'FORBIDDEN',
    );
    const explained = await merge({ vid: 302 }, '?explain=true');
    expect(explained.status).toBe(200);
    expect(explained.body.plan.outcome).toBe('succeeded');
    expectProblem(await merge({ vid: 302 }, '?wait=bogus'), 400, 'INVALID_INPUT');
    expectProblem(await merge({ vid: 'three' }), 422, 'SCHEMA_VIOLATION');
    const after = await api.request('GET', '/api/inventory/vlan/quiet-1');
    expect(after.headers.get('etag')).toBe(etag);
    expect(after.body.attrs).toEqual({ present: true, vid: 301 });
    // The ETag still holds: the change it guards is accepted.
    const accepted = await merge({ vid: 302 }, '?wait=30s');
    expect(accepted.status).toBe(200);
    expect(accepted.body.state).toBe('succeeded');
  });

  it('explain writes nothing: no node, no job', async () => {
    const explained = await api.request('POST', '/api/inventory/vlan?explain=true', {
      body: { name: 'quiet-2', attrs: { vid: 303 } },
    });
    expect(explained.status).toBe(200);
    expect(explained.body.plan.outcome).toBe('succeeded');
    expectProblem(await api.request('GET', '/api/inventory/vlan/quiet-2'), 404, 'NOT_FOUND');
    expect((await api.request('GET', '/api/jobs?kind=vlan&name=quiet-2')).body.items).toEqual([]);
  });

  it('a stale If-Match is refused even when the patch changes nothing', async () => {
    const r = await api.request('PATCH', '/api/inventory/subnet/pek1-web', {
      body: { cidr: '10.1.2.0/24' },
      type: 'application/merge-patch+json',
      headers: { 'if-match': '"999"' },
    });
    expectProblem(r, 412, 'PRECONDITION_FAILED');
    expect(r.body.detail).toMatch(/^subnet\/pek1-web is at revision \d+, not 999$/);
  });

  it('a change that makes nothing different does not raise the revision', async () => {
    const before = await api.request('GET', '/api/inventory/subnet/pek1-web');
    const r = await api.request('PATCH', '/api/inventory/subnet/pek1-web?wait=30s', {
      body: [{ path: 'gateway', op: 'set', value: before.body.attrs.gateway }],
      type: 'application/vnd.consortium.updates+json',
    });
    expect(r.status).toBe(200);
    expect(r.body.state).toBe('succeeded');
    const after = await api.request('GET', '/api/inventory/subnet/pek1-web');
    expect(after.body.revision).toBe(before.body.revision);
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

describe('lists, filters and pagination', () => {
  it('filters NetBox-style and pages with a cursor without losing or repeating a node', async () => {
    for (const [name, hwspec, dc] of [
      ['list-a', 'small', 'pek1'],
      ['list-b', 'medium', 'pek1'],
      ['list-c', 'large', 'sfo2'],
      ['list-d', 'small', 'sfo2'],
    ] as const) {
      const r = await api.request('POST', '/api/inventory/host?wait=60s', {
        body: {
          name,
          attrs: {
            datacenter: dc,
            description: `${hwspec} box`,
            puppet_roles: [hwspec === 'small' ? 'nginx' : 'db'],
          },
        },
      });
      expect(r.body.state).toBe('succeeded');
    }
    const names = async (query: string) =>
      (await api.request('GET', `/api/inventory/host?name__isw=list-&${query}`)).body.items.map(
        (n: any) => n.name,
      );
    expect(await names('datacenter=pek1')).toEqual(['list-a', 'list-b']);
    expect(await names('datacenter__n=pek1')).toEqual(['list-c', 'list-d']);
    expect(await names('puppet_roles=nginx')).toEqual(['list-a', 'list-d']);
    expect(await names('datacenter=pek1&datacenter=sfo2&puppet_roles=db')).toEqual(['list-b', 'list-c']);
    expect(await names('description__ic=medium')).toEqual(['list-b']);
    const fields = await api.request('GET', '/api/inventory/host?name=list-a&fields=datacenter');
    expect(fields.body.items[0].attrs).toEqual({ datacenter: 'pek1' });

    const seen: string[] = [];
    let path = '/api/inventory/host?name__isw=list-&limit=3';
    for (;;) {
      const page = await api.request('GET', path);
      seen.push(...page.body.items.map((n: any) => n.name));
      if (page.body.next === undefined) break;
      expect(page.headers.get('link')).toContain('rel="next"');
      path = `/api/inventory/host?name__isw=list-&limit=3&cursor=${encodeURIComponent(page.body.next)}`;
    }
    expect(seen).toEqual(['list-a', 'list-b', 'list-c', 'list-d']);
  }, 60_000);
});

describe('jobs', () => {
  it('a failing job carries the provider reason', async () => {
    const r = await api.request('POST', '/api/inventory/host?wait=30s', {
      body: { name: 'lost-1', attrs: { subnet: 'nowhere' } },
    });
    expect(r.body.state).toBe('failed');
    expect(r.body.failure.code).toBe('REJECTED');
    expect(r.body.failure.message).toContain('subnet "nowhere" does not exist');
  });

  it('a job no provider can complete fails at once, saying what is missing and who waits for it', async () => {
    // Power on without a subnet: the VM waits for PXE, which waits for an IP that ipam cannot give without one.
    const r = await api.request('POST', '/api/inventory/host', {
      body: { name: 'blocked-1', attrs: { hwspec: 'small', power: 'on' } },
    });
    expect(r.status).toBe(202);
    const job = (await api.request('GET', `/api/jobs/${r.body.id as string}?wait=30s`)).body;
    expect(job.state).toBe('failed');
    expect(job.failure.code).toBe('BLOCKED');
    expect(job.failure.message).toBe(
      'no provider can make progress: interfaces[eth0].ip is never supplied: ipam needs subnet, which no update ' +
        'of this change supplies (the host has no subnet); held up by it: sandbox-vm waits for netboot from ' +
        'sandbox-pxe (waiting for PXE registration (netboot)); sandbox-pxe waits for interfaces[eth0].ip from ipam ' +
        '(waiting for a MAC and an IP)',
    );
    expect(job.failure.providers).toEqual(['ipam', 'sandbox-pxe', 'sandbox-vm']);
  });

  it('cancel ends a running job, and a second cancel conflicts', async () => {
    // Three rounds of simulated backend work (define, register, start) keep the job running past the cancel.
    const r = await api.request('POST', '/api/inventory/host', {
      body: { name: 'cancelled-1', attrs: { hwspec: 'small', power: 'on', subnet: 'pek1-web' } },
    });
    expect(r.status).toBe(202);
    const id = r.body.id as string;
    const cancelled = await api.request('POST', `/api/jobs/${id}/cancel`);
    expect(cancelled.status).toBe(202);
    const ended = await api.request('GET', `/api/jobs/${id}?wait=30s`);
    expect(ended.body.state).toBe('cancelled');
    expect(ended.body.failure.code).toBe('CANCELLED');
    const again = await api.request('POST', `/api/jobs/${id}/cancel`);
    expectProblem(again, 409, 'CONFLICT');
  });

  it('lists jobs newest first and rejects unknown job filters', async () => {
    const r = await api.request('GET', '/api/jobs?kind=host&limit=2');
    expect(r.body.items).toHaveLength(2);
    expect(Date.parse(r.body.items[0].createdAt)).toBeGreaterThanOrEqual(
      Date.parse(r.body.items[1].createdAt),
    );
    expectProblem(await api.request('GET', '/api/jobs?colour=red'), 400, 'INVALID_INPUT');
    expectProblem(await api.request('GET', '/api/jobs?state=sleeping'), 400, 'INVALID_INPUT');
  });
});

describe('schema, OpenAPI, health and metrics', () => {
  it('serves the compiled schema with authority and watchers, and an OpenAPI 3.1 document', async () => {
    const kinds = await api.request('GET', '/api/schema');
    expect(kinds.body.kinds.map((k: any) => k.name)).toEqual(['host', 'hypervisor', 'subnet', 'vlan', 'vip']);
    const host = await api.request('GET', '/api/schema/host');
    expect(host.headers.get('content-type')).toMatch(/^application\/schema\+json/);
    expect(host.body.properties.hwspec['x-authority']).toBe('sandbox-vm');
    expect(host.body.properties.interfaces['x-watchers']).toEqual(['sandbox-pxe']);
    expect(host.body.properties.interfaces.items.properties.ip['x-authority']).toBe('ipam');
    const cached = await api.request('GET', '/api/schema/host', {
      headers: { 'if-none-match': host.headers.get('etag')! },
    });
    expect(cached.status).toBe(304);
    const openapi = await api.request('GET', '/api/openapi.json');
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(openapi.body.paths['/api/inventory/host/{name}'].patch).toBeDefined();
    expect(openapi.body.components.schemas.HostAttrs.properties.power['x-authority']).toBe('sandbox-vm');
  });

  it('answers health, readiness and Prometheus metrics without a token', async () => {
    expect((await api.request('GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
    expect((await api.request('GET', '/readyz', { token: null })).body).toEqual({ status: 'ready' });
    const metrics = await api.request('GET', '/metrics', { token: null });
    expect(metrics.body).toMatch(/^consortium_jobs_total\{kind="subnet",state="succeeded"\} \d+$/m);
    expect(metrics.body).toMatch(/^consortium_queue_tasks\{queue="tasks",state="ready"\} 0$/m);
    expect(metrics.body).toMatch(/^consortium_leader 1$/m);
  });
});

describe('audit', () => {
  it('records every ended change with the actor and the node before and after', async () => {
    const started = await startInProcess();
    try {
      const r = await started.api.request('POST', '/api/inventory/vlan?wait=30s', {
        body: { name: 'v7', attrs: { vid: 7 } },
      });
      const p = await started.api.request('PATCH', '/api/inventory/vlan/v7?wait=30s', {
        body: { vid: 8 },
        type: 'application/merge-patch+json',
      });
      expect(p.body.state).toBe('succeeded');
      const entries = await started.parts.store.listAudit({ kind: 'vlan', name: 'v7', limit: 10 });
      expect(entries.map((e) => [e.action, e.before, e.after, e.actor, e.jobId])).toEqual([
        ['patch:succeeded', { present: true, vid: 7 }, { present: true, vid: 8 }, r.body.actor, p.body.id],
        ['create:succeeded', null, { present: true, vid: 7 }, r.body.actor, r.body.id],
      ]);
    } finally {
      await started.stop();
    }
  });
});

describe('search', () => {
  it('takes the query language across kinds, typed by the schema', async () => {
    const names = async (q: string) =>
      (await api.request('GET', `/api/search?q=${encodeURIComponent(q)}`)).body.items.map(
        (n: any) => `${n.kind}/${n.name}`,
      );
    expect(await names('kind=host and name ~ "list-*" and datacenter=pek1')).toEqual([
      'host/list-a',
      'host/list-b',
    ]);
    expect(
      await names('kind=host and puppet_roles has nginx and not datacenter=pek1 and name ~ "list-*"'),
    ).toEqual(['host/list-d']);
    expect(await names('name in (pek1-web, list-c)')).toEqual(['host/list-c', 'subnet/pek1-web']);
    expect(await names('cidr exists')).toEqual(['subnet/pek1-web']);
    const bad = await api.request('GET', `/api/search?q=${encodeURIComponent('kind=host and colour=red')}`);
    expectProblem(bad, 400, 'INVALID_INPUT');
    expect(bad.body.detail).toBe('no host has the attribute "colour"');
    expectProblem(
      await api.request('GET', `/api/search?q=${encodeURIComponent('a=1 b=2')}`),
      400,
      'INVALID_INPUT',
    );
    expectProblem(await api.request('GET', '/api/search?q=kind%3Dtoaster'), 404, 'NOT_FOUND');
  });

  it('matches addresses by network and follows one reference (subnet.vlan, members.subnet)', async () => {
    for (const [name, cidr, vlan] of [
      ['srch-a', '10.7.1.0/24', 701],
      ['srch-b', '10.7.2.0/24', 702],
    ] as const) {
      const r = await api.request('POST', '/api/inventory/subnet?wait=30s', {
        body: { name, attrs: { cidr, vlan } },
      });
      expect(r.body.state).toBe('succeeded');
    }
    for (const [name, subnet] of [
      ['srch-1', 'srch-a'],
      ['srch-2', 'srch-b'],
    ]) {
      const r = await api.request('POST', '/api/inventory/host?wait=30s', {
        body: { name, attrs: { subnet } },
      });
      expect(r.body.state).toBe('succeeded');
    }
    const vip = await api.request('POST', '/api/inventory/vip?wait=30s', {
      body: { name: 'srch-vip', attrs: { address: '10.7.9.9', members: ['srch-2'] } },
    });
    expect(vip.body.state).toBe('succeeded');
    const search = (q: string) => api.request('GET', `/api/search?q=${encodeURIComponent(q)}`);
    const names = async (q: string) => {
      const r = await search(q);
      if (r.body.items === undefined) throw new Error(JSON.stringify(r.body));
      return r.body.items.map((n: any) => `${n.kind}/${n.name}`);
    };
    expect(await names('interfaces.ip in 10.7.0.0/16')).toEqual(['host/srch-1', 'host/srch-2']);
    expect(await names('interfaces.ip in 10.7.2.0/24')).toEqual(['host/srch-2']);
    expect(await names('address in 10.7.9.0/24 or interfaces.ip in 10.7.1.7/24')).toEqual([
      'host/srch-1',
      'vip/srch-vip',
    ]);
    expect(await names('subnet.vlan=701')).toEqual(['host/srch-1']);
    expect(await names('kind=host and subnet.vlan >= 701 and not subnet.name=srch-a')).toEqual([
      'host/srch-2',
    ]);
    expect(await names('members.subnet=srch-b')).toEqual(['vip/srch-vip']);
    expect(await names('subnet.cidr="10.7.2.0/24"')).toEqual(['host/srch-2']);
    // One hop only, and only along references.
    for (const [q, detail] of [
      ['subnet.colour=red', 'no kind has the attribute "subnet.colour"'],
      ['datacenter.vlan=1', 'no kind has the attribute "datacenter.vlan"'],
      ['members.subnet.vlan=702', 'no kind has the attribute "members.subnet.vlan"'],
      [
        'interfaces.ip in 10.7.0.0/33',
        '"10.7.0.0/33" is not an IPv4 network in CIDR notation (such as 10.1.0.0/16)',
      ],
    ]) {
      const bad = await search(q as string);
      expectProblem(bad, 400, 'INVALID_INPUT');
      expect(bad.body.detail).toBe(detail);
    }
  });
});

describe('periodic observe and drift', () => {
  it("reports an attribute changed behind Consortium's back, naming the provider that saw it", async () => {
    const started = await startInProcess({ CONSORTIUM_OBSERVE_SECONDS: '0.2' });
    try {
      const { api: local } = started;
      await local.request('POST', '/api/inventory/subnet?wait=30s', {
        body: { name: 'd-net', attrs: { cidr: '10.3.0.0/24', gateway: '10.3.0.1' } },
      });
      const created = await local.request('POST', '/api/inventory/host?wait=30s', {
        body: { name: 'drift-1', attrs: { hwspec: 'small', subnet: 'd-net', power: 'on' } },
      });
      expect(created.body.state).toBe('succeeded');
      const before = await local.request('GET', '/api/inventory/host/drift-1?show=authority');
      expect(before.body.drift).toEqual([]);
      // Someone resizes and stops the VM directly in the (simulated) hypervisor.
      const vm = started.parts.kinds.get('host')!.providers.get('sandbox-vm')!;
      await vm.apply(
        {
          id: 'behind/r1/sandbox-vm',
          jobId: 'behind',
          round: 1,
          attempt: 1,
          provider: 'sandbox-vm',
          kind: 'host',
          name: 'drift-1',
          node: before.body.attrs,
          updates: [
            { id: 'b1', path: 'hwspec', op: 'set', value: 'large', origin: 'user' },
            { id: 'b2', path: 'power', op: 'set', value: 'off', origin: 'user' },
          ],
        },
        {
          logger: started.parts.logger,
          signal: new AbortController().signal,
          fencingToken: '0',
          now: () => Date.now(),
        },
      );
      let drift: any[] = [];
      for (let i = 0; i < 100 && drift.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        drift = (await local.request('GET', '/api/inventory/host/drift-1?show=authority')).body.drift;
      }
      expect(drift.map((d) => [d.path, d.provider, d.expected, d.observed])).toEqual([
        ['hwspec', 'sandbox-vm', 'small', 'large'],
        ['power', 'sandbox-vm', 'on', 'off'],
      ]);
    } finally {
      await started.stop();
    }
  }, 60_000);
});
