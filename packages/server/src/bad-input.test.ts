/**
 * Every kind of bad input issue 9 found, as one table against the real `consortium dev` binary: request → status
 * and problem code. Nothing in it may answer 5xx, and nothing refused may write (the nodes keep their revisions).
 * Then what a table cannot say: a request that stalls mid-body, an event stream resumed beyond its end, and how
 * fast /healthz answers while the largest body is being handled.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from './test-support/dev-server.js';
import { spawnBinary, tempDir } from './test-support/dev-server.js';

const data = tempDir();
let server: BinaryServer;
let readerToken: string;
let endedJob: string;

/** The config the binary runs with: short request timeouts, so a stalled request is answered within the test. */
const CONFIG = 'web:\n  headersTimeoutSeconds: 1\n  requestTimeoutSeconds: 2\n';

beforeAll(async () => {
  const config = join(data.dir, 'consortium.yaml');
  writeFileSync(config, CONFIG);
  server = await spawnBinary(join(data.dir, 'data'), [], { CONSORTIUM_CONFIG: config });
  const { api } = server;
  const subnet = await api.request('POST', '/api/inventory/subnet?wait=30s', {
    body: { name: 'pek1-web', attrs: { cidr: '10.1.2.0/24', gateway: '10.1.2.1' } },
  });
  expect(subnet.body.state).toBe('succeeded');
  endedJob = subnet.body.id;
  const host = await api.request('POST', '/api/inventory/host?wait=60s', {
    body: {
      name: 'web-01',
      attrs: { hwspec: 'small', subnet: 'pek1-web', tags: ['a', 'b'], power: 'on' },
    },
  });
  expect(host.body.state).toBe('succeeded');
  const vlan = await api.request('POST', '/api/inventory/vlan?wait=30s', {
    body: { name: 'v100', attrs: { vid: 100 } },
  });
  expect(vlan.body.state).toBe('succeeded');
  const reader = await api.request('POST', '/api/tokens', { body: { role: 'reader' } });
  expect(reader.status).toBe(201);
  readerToken = reader.body.token;
}, 120_000);

afterAll(() => {
  server.child.kill('SIGTERM');
  data.remove();
});

interface Case {
  readonly issue: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  readonly raw?: string;
  readonly type?: string;
  readonly headers?: Record<string, string>;
  readonly as?: 'reader';
  readonly status: number;
  readonly code: string;
  /** A part of the problem's detail that must be there (the limit, the field, the hosts). */
  readonly detail?: string;
}

const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const repeated = (param: string, n: number): string =>
  Array.from({ length: n }, (_, i) => `${param}=v${i}`).join('&');
const q = (query: string): string => `/api/search?q=${encodeURIComponent(query)}`;

const CASES: readonly Case[] = [
  // 1: a list far beyond what a node may hold is refused before it is planned.
  {
    issue: '1 50,000 puppet roles (590 KB)',
    method: 'PATCH',
    path: '/api/inventory/host/web-01',
    type: MERGE,
    body: { puppet_roles: Array.from({ length: 50_000 }, (_, i) => `role-number-${i}`) },
    status: 422,
    code: 'SCHEMA_VIOLATION',
  },
  // 2: refused requests (their revisions are checked after the table).
  {
    issue: '2 a reader patches with If-Match',
    method: 'PATCH',
    path: '/api/inventory/host/web-01',
    type: MERGE,
    body: { description: 'x' },
    headers: { 'if-match': '"REVISION"' },
    as: 'reader',
    status: 403,
    code: 'FORBIDDEN',
  },
  {
    issue: '2 a reader deletes with If-Match',
    method: 'DELETE',
    path: '/api/inventory/host/web-01',
    headers: { 'if-match': '"REVISION"' },
    as: 'reader',
    status: 403,
    code: 'FORBIDDEN',
  },
  {
    issue: '2 wait=bogus',
    method: 'PATCH',
    path: '/api/inventory/host/web-01?wait=bogus',
    type: MERGE,
    body: { description: 'x' },
    headers: { 'if-match': '"REVISION"' },
    status: 400,
    code: 'INVALID_INPUT',
  },
  {
    issue: '2 a schema error',
    method: 'PATCH',
    path: '/api/inventory/host/web-01',
    type: MERGE,
    body: { hwspec: 'huge' },
    headers: { 'if-match': '"REVISION"' },
    status: 422,
    code: 'SCHEMA_VIOLATION',
  },
  // 5: integrity.
  {
    issue: '5 deleting a subnet a host uses',
    method: 'DELETE',
    path: '/api/inventory/subnet/pek1-web',
    status: 409,
    code: 'IN_USE',
    detail: 'subnet/pek1-web is used by host/web-01',
  },
  {
    issue: '5 moving a subnet away from its hosts',
    method: 'PATCH',
    path: '/api/inventory/subnet/pek1-web',
    type: MERGE,
    body: { cidr: '10.9.0.0/24', gateway: '10.9.0.1' },
    status: 409,
    code: 'IN_USE',
    detail: 'host/web-01 (10.1.2.',
  },
  {
    issue: '5 explaining a move of a subnet away from its hosts',
    method: 'PATCH',
    path: '/api/inventory/subnet/pek1-web?explain=true',
    type: MERGE,
    body: { cidr: '10.9.0.0/24', gateway: '10.9.0.1' },
    status: 409,
    code: 'IN_USE',
  },
  {
    issue: '5 a gateway outside the network',
    method: 'POST',
    path: '/api/inventory/subnet',
    body: { name: 'bad-gw', attrs: { cidr: '10.3.0.0/24', gateway: '10.4.0.1' } },
    status: 422,
    code: 'SCHEMA_VIOLATION',
    detail: '/gateway: 10.4.0.1 is not a host address of 10.3.0.0/24',
  },
  {
    issue: '5 a network with host bits set',
    method: 'POST',
    path: '/api/inventory/subnet',
    body: { name: 'bad-cidr', attrs: { cidr: '10.0.0.1/24' } },
    status: 422,
    code: 'SCHEMA_VIOLATION',
    detail: '/cidr: 10.0.0.1/24 has host bits set; the network is 10.0.0.0/24',
  },
  {
    issue: '5 an unknown field inside an interfaces item',
    method: 'PATCH',
    path: '/api/inventory/host/web-01',
    type: JSON_PATCH,
    body: [{ op: 'add', path: '/interfaces/0/colour', value: 'red' }],
    status: 422,
    code: 'UNKNOWN_ATTRIBUTE',
    detail: 'colour',
  },
  // 6: limits of the parser and the store.
  {
    issue: '6 a search with 5,000 nested parentheses',
    method: 'GET',
    path: q(`${'('.repeat(5000)}name=x${')'.repeat(5000)}`),
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'nested more than 32 levels deep',
  },
  {
    issue: '6 a list filter repeated 999 times',
    method: 'GET',
    path: `/api/inventory/host?${repeated('tags', 999)}`,
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'at most 500 are allowed',
  },
  {
    issue: '6 a search comparing 600 values',
    method: 'GET',
    path: q(`name in (${Array.from({ length: 600 }, (_, i) => `h${i}`).join(',')})`),
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'at most 500 are allowed',
  },
  // 7: leniency.
  {
    issue: '7 limit=0x10',
    method: 'GET',
    path: '/api/inventory/host?limit=0x10',
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'limit must be a whole number from 1 to 1000, not "0x10"',
  },
  {
    issue: '7 vid=0x10',
    method: 'GET',
    path: '/api/inventory/vlan?vid=0x10',
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'filter vid: "0x10" is not an integer',
  },
  {
    issue: '7 a JSON patch path with a leading zero',
    method: 'PATCH',
    path: '/api/inventory/host/web-01',
    type: JSON_PATCH,
    body: [{ op: 'replace', path: '/tags/01', value: 'c' }],
    status: 400,
    code: 'INVALID_INPUT',
    detail: '"01" is not an array index',
  },
  {
    issue: '7 search vid > abc',
    method: 'GET',
    path: q('vid > abc'),
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'vid: "abc" is not an integer',
  },
  {
    issue: '7 search present=maybe',
    method: 'GET',
    path: q('present=maybe'),
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'present: "maybe" is not true or false',
  },
  {
    issue: '7 list filter present=maybe',
    method: 'GET',
    path: '/api/inventory/host?present=maybe',
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'filter present: "maybe" is not true or false',
  },
  {
    issue: '7 a token with ttlSeconds 1e300',
    method: 'POST',
    path: '/api/tokens',
    raw: '{"role":"reader","ttlSeconds":1e300}',
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'a token TTL must be a whole number of seconds',
  },
  {
    issue: '7 a token with a 500 KB description',
    method: 'POST',
    path: '/api/tokens',
    body: { role: 'reader', description: 'x'.repeat(500_000) },
    status: 400,
    code: 'INVALID_INPUT',
    detail: 'at most 200 characters',
  },
  // 8: tokens.
  {
    issue: '8 revoking a token that does not exist',
    method: 'DELETE',
    path: '/api/tokens/000000000000',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    issue: '8 a reader lists tokens',
    method: 'GET',
    path: '/api/tokens',
    as: 'reader',
    status: 403,
    code: 'FORBIDDEN',
  },
];

describe('bad input against the real binary: a specific 4xx, never a 5xx, nothing written', () => {
  it.each(CASES.map((c) => [c.issue, c] as const))('%s', async (_issue, c) => {
    const revision = (await server.api.request('GET', '/api/inventory/host/web-01')).body.revision as number;
    const headers = Object.fromEntries(
      Object.entries(c.headers ?? {}).map(([k, v]) => [k, v.replace('REVISION', String(revision))]),
    );
    const r = await server.api.request(c.method, c.path, {
      ...(c.body === undefined ? {} : { body: c.body }),
      ...(c.raw === undefined ? {} : { raw: c.raw }),
      ...(c.type === undefined ? {} : { type: c.type }),
      headers,
      ...(c.as === 'reader' ? { token: readerToken } : {}),
    });
    expect({ status: r.status, code: r.body?.code }).toEqual({ status: c.status, code: c.code });
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    if (c.detail !== undefined) expect(r.body.detail).toContain(c.detail);
  });

  it('left every node as it was', async () => {
    const hosts = await server.api.request('GET', '/api/inventory/host');
    expect(hosts.body.items.map((n: any) => [n.name, n.attrs.tags, n.attrs.subnet])).toEqual([
      ['web-01', ['a', 'b'], 'pek1-web'],
    ]);
    const subnets = await server.api.request('GET', '/api/inventory/subnet');
    expect(subnets.body.items.map((n: any) => [n.name, n.attrs.cidr])).toEqual([['pek1-web', '10.1.2.0/24']]);
    const tokens = await server.api.request('GET', '/api/tokens');
    expect(tokens.body.items.map((t: any) => t.role).sort()).toEqual(['admin', 'reader']);
  });
});

describe('what a table cannot say', () => {
  it('answers 408 and closes a request whose body is shorter than its Content-Length', async () => {
    const { port } = new URL(server.api.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(
          `PATCH /api/inventory/host/web-01 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.api.token}\r\n` +
            `Content-Type: ${MERGE}\r\nContent-Length: 1000\r\n\r\n{"description":`,
        );
      });
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      socket.on('error', reject);
      socket.on('close', () => {
        resolve(received);
      });
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  }, 30_000);

  it('ends the event stream of an ended job with its ended event, even after a huge Last-Event-ID', async () => {
    const response = await fetch(`${server.api.url}/api/jobs/${endedJob}/events`, {
      headers: { authorization: `Bearer ${server.api.token}`, 'last-event-id': '999999999999' },
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(/^event: ?ended$/m);
  }, 30_000);

  it('revokes a token at once: list, revoke, and the next request with it is 401', async () => {
    const made = await server.api.request('POST', '/api/tokens', {
      body: { role: 'operator', description: 'ci' },
    });
    const secret = made.body.token as string;
    expect((await server.api.request('GET', '/api/whoami', { token: secret })).status).toBe(200);
    const listed = await server.api.request('GET', '/api/tokens');
    expect(listed.body.items).toContainEqual({
      id: made.body.id,
      role: 'operator',
      description: 'ci',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      expiresAt: null,
    });
    const revoked = await server.api.request('DELETE', `/api/tokens/${made.body.id}`);
    expect(revoked.status).toBe(200);
    const after = await server.api.request('GET', '/api/whoami', { token: secret });
    expect({ status: after.status, code: after.body.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('answers /healthz while the largest body is being handled (the figure is printed, not asserted)', async () => {
    const body = JSON.stringify({
      puppet_roles: Array.from({ length: 80_000 }, (_, i) => `role-${i}`),
    });
    expect(body.length).toBeGreaterThan(900_000);
    expect(body.length).toBeLessThan(1_048_576);
    // A scrape resets prom-client's event-loop delay histogram: the next one gives the worst delay in between.
    await eventLoopLagMaxMs();
    const latencies: number[] = [];
    const big = { done: false };
    const answered = fetch(`${server.api.url}/api/inventory/host/web-01`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${server.api.token}`, 'content-type': MERGE },
      body,
    }).then(async (r) => {
      big.done = true;
      return { status: r.status, code: ((await r.json()) as { code?: string }).code };
    });
    const bigStarted = performance.now();
    while (!big.done || latencies.length < 5) {
      const started = performance.now();
      const health = await fetch(`${server.api.url}/healthz`);
      expect(health.status).toBe(200);
      latencies.push(performance.now() - started);
    }
    const answer = await answered;
    const bigMs = performance.now() - bigStarted;
    const lagMs = await eventLoopLagMaxMs();
    expect(answer).toEqual({ status: 422, code: 'SCHEMA_VIOLATION' });
    const sorted = [...latencies].sort((a, b) => a - b);
    const max = sorted[sorted.length - 1] as number;
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    process.stdout.write(
      `healthz while a ${(body.length / 1024).toFixed(0)} KB body was handled (${bigMs.toFixed(0)} ms): ` +
        `${latencies.length} probes, median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms; ` +
        `the server's event loop was held at most ${lagMs.toFixed(1)} ms\n`,
    );
  }, 60_000);
});

/** The server's worst event-loop delay since the last scrape of /metrics, in milliseconds. */
async function eventLoopLagMaxMs(): Promise<number> {
  const text = await (await fetch(`${server.api.url}/metrics`)).text();
  const line = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
  expect(line).not.toBeNull();
  return Number(line?.[1]) * 1000;
}
