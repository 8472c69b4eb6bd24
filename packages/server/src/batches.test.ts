/**
 * Batches against `consortium dev` in-process with the real NetBox plugin and the NetBox test server: a batch of
 * 30 hosts never has more than its concurrency of jobs queued or running (checked from the jobs' events), stops
 * starting jobs when its failure budget is spent (faults injected in NetBox), and cancel stops the rest.
 */
import { writeFileSync } from 'node:fs';
import { createParser } from 'eventsource-parser';
import { join } from 'node:path';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Api } from './test-support/dev-server.js';
import { eventually, startInProcess, tempDir } from './test-support/dev-server.js';

const TOKEN = '0123456789abcdef0123456789abcdef01234567';
const HOSTS = Array.from({ length: 30 }, (_, i) => `bt-${String(i + 1).padStart(2, '0')}`);
const VM_PATH = '/api/virtualization/virtual-machines/';

let netbox: NetboxServer;
let api: Api;
let stop: () => Promise<void>;
const dir = tempDir();

beforeAll(async () => {
  netbox = await startNetboxServer({ tokens: [TOKEN] });
  netbox.seed({
    sites: [{ name: 'Peking 1', slug: 'pek1' }],
    clusters: [{ name: 'web', type: 'kvm', site: 'pek1' }],
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
  stop = () => started.stop();
  for (let i = 0; i < HOSTS.length; i += 6) {
    await Promise.all(
      HOSTS.slice(i, i + 6).map(async (name) => {
        const r = await api.request('POST', '/api/inventory/host?wait=30s', {
          body: { name, attrs: { datacenter: 'pek1', subcluster: 'web' } },
        });
        expect(r.body.state).toBe('succeeded');
      }),
    );
  }
}, 120_000);

afterAll(async () => {
  await stop();
  await netbox.stop();
  dir.remove();
});

beforeEach(() => {
  netbox.clearFaults();
});

const vmWrites = (): number =>
  netbox.state.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith(VM_PATH)).length;

async function batchEnded(id: string): Promise<any> {
  return eventually(
    async () => {
      const r = await api.request('GET', `/api/batches/${id}`);
      return ['running', 'stopping'].includes(r.body.state) ? undefined : r.body;
    },
    60_000,
    `batch ${id} to end`,
  );
}

/** Per job of the batch: when it was released (queued) and when it ended, from its events; null if never released. */
async function intervals(batch: any): Promise<({ from: number; to: number } | null)[]> {
  const out: ({ from: number; to: number } | null)[] = [];
  for (const node of batch.nodes) {
    const response = await fetch(`${api.url}/api/jobs/${node.job}/events`, {
      headers: { authorization: `Bearer ${api.token}` },
    });
    const parsed: { type: string; at: string; data: { state?: string } }[] = [];
    const parser = createParser({ onEvent: (e) => parsed.push(JSON.parse(e.data)) });
    const decoder = new TextDecoder();
    for await (const chunk of response.body!)
      parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
    const released = parsed.find((e) => e.type === 'state' && e.data.state === 'queued');
    const ended = parsed.find((e) => e.type === 'ended');
    expect(ended).toBeDefined();
    out.push(released === undefined ? null : { from: Date.parse(released.at), to: Date.parse(ended!.at) });
  }
  return out;
}

/** The most jobs queued or running at one moment (an end at the same millisecond as a start comes first). */
function mostAtOnce(spans: readonly ({ from: number; to: number } | null)[]): number {
  const points = spans
    .filter((s): s is { from: number; to: number } => s !== null)
    .flatMap((s) => [
      [s.from, 1],
      [s.to, -1],
    ])
    .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let most = 0;
  for (const [, delta] of points) {
    now += delta!;
    most = Math.max(most, now);
  }
  return most;
}

describe('batches', () => {
  it('explains a batch per node without writing anything', async () => {
    const before = vmWrites();
    const r = await api.request('POST', '/api/batches?explain=true', {
      body: {
        kind: 'host',
        selector: 'datacenter=pek1 and name ~ "bt-0*"',
        updates: [{ path: 'puppet_roles', op: 'add', value: 'nginx' }],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(9);
    expect(r.body.counts).toEqual({ succeeded: 9, blocked: 0, failed: 0, refused: 0 });
    expect(r.body.nodes[0]).toEqual({ name: 'bt-01', outcome: 'succeeded' });
    expect(vmWrites()).toBe(before);
    const jobs = await api.request('GET', '/api/jobs?state=held,queued,running');
    expect(jobs.body.items).toEqual([]);
  });

  it('refuses a bad batch and writes nothing', async () => {
    const bad = [
      [
        {
          kind: 'host',
          selector: 'name ~ "zz-*"',
          updates: [{ path: 'puppet_roles', op: 'add', value: 'x' }],
        },
        400,
        'the selector matches no host',
      ],
      [{ kind: 'host', selector: ['bt-01', 'nope-1'], delete: true }, 404, 'host nope-1 do(es) not exist'],
      [{ kind: 'host', selector: 'colour=red', delete: true }, 400, 'no host has the attribute "colour"'],
      [
        { kind: 'host', selector: 'kind=subnet', delete: true },
        400,
        'the selector names kind subnet but the batch is of host',
      ],
      [
        { kind: 'host', selector: 'name ~ "bt-*"', delete: true, failureBudget: '0%' },
        400,
        'failureBudget must be a whole number of failures (1 or more) or a percentage such as "10%", not "0%"',
      ],
      [
        { kind: 'host', selector: 'name ~ "bt-*"', delete: true, concurrency: 0 },
        400,
        'concurrency must be a whole number from 1 to 1000',
      ],
      [
        { kind: 'host', selector: 'name ~ "bt-*"' },
        400,
        'a batch needs updates [{path, op, value}] or delete: true',
      ],
      [
        { kind: 'host', selector: 'name ~ "bt-*"', updates: [{ path: 'colour', op: 'set', value: 'red' }] },
        422,
        undefined,
      ],
    ] as const;
    for (const [body, status, detail] of bad) {
      const r = await api.request('POST', '/api/batches', { body });
      expect(r.status, JSON.stringify(body)).toBe(status);
      if (detail !== undefined) expect(r.body.detail).toBe(detail);
    }
    const jobs = await api.request('GET', '/api/jobs?state=held,queued,running');
    expect(jobs.body.items).toEqual([]);
  });

  it('never has more than its concurrency of jobs queued or running', async () => {
    const r = await api.request('POST', '/api/batches', {
      body: {
        kind: 'host',
        selector: 'datacenter=pek1 and name ~ "bt-*"',
        updates: [{ path: 'puppet_roles', op: 'add', value: 'nginx' }],
        concurrency: 5,
      },
    });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/api/batches/${r.body.id}`);
    expect(r.body).toMatchObject({ total: 30, concurrency: 5, state: 'running' });
    const batch = await batchEnded(r.body.id);
    expect(batch.state).toBe('succeeded');
    expect(batch.counts.succeeded).toBe(30);
    const spans = await intervals(batch);
    expect(spans.every((s) => s !== null)).toBe(true);
    // Five at once (so the limit was reached, and the check could fail), never six.
    expect(mostAtOnce(spans)).toBe(5);
    const host = await api.request('GET', '/api/inventory/host/bt-17');
    expect(host.body.attrs.puppet_roles).toEqual(['nginx']);
  }, 90_000);

  it('stops starting jobs once its failure budget is spent', async () => {
    netbox.injectFault({ method: 'PATCH', path: VM_PATH, status: 400, times: 1000 });
    const before = vmWrites();
    const r = await api.request('POST', '/api/batches', {
      body: {
        kind: 'host',
        selector: HOSTS,
        updates: [{ path: 'puppet_roles', op: 'add', value: 'haproxy' }],
        concurrency: 5,
        failureBudget: 3,
      },
    });
    expect(r.status).toBe(202);
    const batch = await batchEnded(r.body.id);
    expect(batch).toMatchObject({ state: 'failed', stopped: 'budget', failureBudget: 3 });
    // Every job it started failed; at most budget - 1 had failed when it last started five more.
    const started = (await intervals(batch)).filter((s) => s !== null).length;
    expect(batch.counts.failed).toBe(started);
    expect(started).toBeGreaterThanOrEqual(3);
    expect(started).toBeLessThanOrEqual(2 + 5);
    expect(batch.counts.cancelled).toBe(30 - started);
    const skipped = batch.nodes.filter((n: any) => n.state === 'cancelled');
    expect(skipped[0].reason).toBe("not started: the batch's failure budget (3 failed jobs) was spent");
    expect(batch.nodes.find((n: any) => n.state === 'failed').reason).toMatch(
      /^netbox failed: NetBox refused to update virtual machine bt-\d+: injected fault \(400\)$/,
    );
    expect(vmWrites() - before).toBe(started);
  }, 90_000);

  it('cancel stops the rest: held jobs never start, running ones are cancelled', async () => {
    // Every NetBox write takes 2 s: the first five are still running when the cancel comes.
    const slow = netbox.injectFault({ method: 'PATCH', path: VM_PATH, delayMs: 2000, times: 1000 });
    const r = await api.request('POST', '/api/batches', {
      body: {
        kind: 'host',
        selector: 'name ~ "bt-*"',
        updates: [{ path: 'puppet_roles', op: 'add', value: 'memcached' }],
        concurrency: 5,
      },
    });
    await slow.hit;
    const cancel = await api.request('POST', `/api/batches/${r.body.id}/cancel`);
    expect(cancel.status).toBe(202);
    const batch = await batchEnded(r.body.id);
    expect(batch).toMatchObject({ state: 'cancelled', stopped: 'cancel' });
    const started = (await intervals(batch)).filter((s) => s !== null).length;
    expect(started).toBe(5);
    expect((batch.counts.cancelled as number) + (batch.counts.succeeded as number)).toBe(30);
    expect(batch.counts.cancelled).toBeGreaterThanOrEqual(25);
    expect(batch.nodes[29]).toMatchObject({
      state: 'cancelled',
      reason: `cancelled by ${cancelledBy(cancel.body)} before it started`,
    });
    const again = await api.request('POST', `/api/batches/${r.body.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.detail).toBe(`batch ${r.body.id} has already ended`);
  }, 90_000);
});

function cancelledBy(batch: any): string {
  return batch.actor as string;
}
