/**
 * End to end against the real `consortium dev` binary: the README walk-through (with fetch standing in for curl),
 * the event stream, and restart safety after kill -9.
 */
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from './test-support/dev-server.js';
import { eventually, spawnBinary, tempDir } from './test-support/dev-server.js';

/** Reads a job's event stream until the server ends it; returns the events. */
async function readEvents(
  server: BinaryServer,
  jobId: string,
): Promise<{ event: string; id: string; data: any }[]> {
  const response = await fetch(`${server.api.url}/api/jobs/${jobId}/events`, {
    headers: { authorization: `Bearer ${server.api.token}` },
  });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: { event: string; id: string; data: any }[] = [];
  const parser = createParser({
    onEvent: (e) => events.push({ event: e.event ?? 'message', id: e.id ?? '', data: JSON.parse(e.data) }),
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body!)
    parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
  return events;
}

describe('the README walk-through against the real binary', () => {
  const data = tempDir();
  let server: BinaryServer;
  beforeAll(async () => {
    server = await spawnBinary(data.dir);
  }, 40_000);
  afterAll(() => {
    server.child.kill('SIGTERM');
    data.remove();
  });

  it('prints url and token, then provisions, reads, patches, explains, streams and deletes', async () => {
    const { api } = server;
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(api.token).toMatch(/^cst_/);

    const subnet = await api.request('POST', '/api/inventory/subnet?wait=30s', {
      body: { name: 'pek1-web', attrs: { cidr: '10.1.2.0/24', gateway: '10.1.2.1', datacenter: 'pek1' } },
    });
    expect(subnet.status).toBe(200);
    expect(subnet.body.state).toBe('succeeded');

    const created = await api.request('POST', '/api/inventory/host?wait=60s', {
      body: {
        name: 'web-01',
        attrs: {
          hwspec: 'small',
          datacenter: 'pek1',
          subcluster: 'web',
          subnet: 'pek1-web',
          puppet_roles: ['nginx'],
          power: 'on',
        },
      },
    });
    expect(created.status).toBe(200);
    expect(created.headers.get('location')).toBe(`/api/jobs/${created.body.id}`);
    expect(created.body.state).toBe('succeeded');
    const providersByRound = created.body.rounds.map((r: any) => r.tasks.map((t: any) => t.provider));
    expect(providersByRound.length).toBeGreaterThanOrEqual(3);
    expect(providersByRound.flat()).toEqual(
      expect.arrayContaining(['ipam', 'sandbox-vm', 'sandbox-pxe', 'inventory']),
    );

    const host = await api.request('GET', '/api/inventory/host/web-01?show=authority');
    expect(host.status).toBe(200);
    const eth0 = host.body.attrs.interfaces.find((i: any) => i.name === 'eth0');
    expect(eth0.ip).toMatch(/^10\.1\.2\.\d+$/);
    expect(eth0.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(host.body.attrs.netboot).toBe(true);
    expect(host.body.attrs.power).toBe('on');
    expect(host.body.authority['interfaces[eth0].ip']).toBe('ipam');
    expect(host.body.authority['interfaces[eth0].mac']).toBe('sandbox-vm');
    expect(host.body.authority['hwspec']).toBe('sandbox-vm');
    const etag = host.headers.get('etag')!;

    const patched = await api.request('PATCH', '/api/inventory/host/web-01?wait=60s', {
      body: { description: 'front end', hwspec: 'medium' },
      type: 'application/merge-patch+json',
      headers: { 'if-match': etag },
    });
    expect(patched.body.state).toBe('succeeded');
    const after = await api.request('GET', '/api/inventory/host/web-01');
    expect(after.body.attrs.description).toBe('front end');
    expect(after.body.attrs.hwspec).toBe('medium');

    const explained = await api.request('PATCH', '/api/inventory/host/web-01?explain=true', {
      body: { power: 'off' },
      type: 'application/merge-patch+json',
    });
    expect(explained.status).toBe(200);
    expect(explained.body.plan.outcome).toBe('succeeded');
    expect(explained.body.plan.rounds[0].tasks[0].provider).toBe('sandbox-vm');
    const unchanged = await api.request('GET', '/api/inventory/host/web-01');
    expect(unchanged.body.attrs.power).toBe('on');
    expect(unchanged.body.revision).toBe(after.body.revision);

    const events = await readEvents(server, created.body.id);
    expect(events[0]!.event).toBe('state');
    expect(events.at(-1)!.event).toBe('ended');
    expect(events.at(-1)!.data.data.state).toBe('succeeded');
    expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'task').length).toBeGreaterThanOrEqual(4);

    const deleted = await api.request('DELETE', '/api/inventory/host/web-01?wait=60s');
    expect(deleted.body.state).toBe('succeeded');
    expect((await api.request('GET', '/api/inventory/host/web-01')).status).toBe(404);
    const jobs = await api.request('GET', '/api/jobs?name=web-01');
    expect(jobs.body.items.map((j: any) => j.action)).toEqual(['delete', 'patch', 'create']);
  }, 120_000);
});

describe('restart safety', () => {
  it('after kill -9 mid-jobs, every job reaches a terminal state on restart; none stays running', async () => {
    const data = tempDir();
    try {
      let server = await spawnBinary(data.dir);
      const subnet = await server.api.request('POST', '/api/inventory/subnet?wait=30s', {
        body: { name: 'lab', attrs: { cidr: '10.9.0.0/24', gateway: '10.9.0.1' } },
      });
      expect(subnet.body.state).toBe('succeeded');
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await server.api.request('POST', '/api/inventory/host', {
          body: { name: `crash-${i}`, attrs: { hwspec: 'small', subnet: 'lab', power: 'on' } },
        });
        expect(r.status).toBe(202);
        ids.push(r.body.id);
      }
      // Kill while jobs are mid-flight: at least one has started and none has finished.
      await eventually(
        async () => {
          const running = await server.api.request('GET', '/api/jobs?state=running');
          return running.body.items.length > 0 ? true : undefined;
        },
        20_000,
        'a running job',
      );
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));

      server = await spawnBinary(data.dir);
      try {
        for (const id of ids) {
          const job = await server.api.request('GET', `/api/jobs/${id}?wait=90s`);
          expect(['succeeded', 'failed', 'expired', 'cancelled']).toContain(job.body.state);
          expect(job.body.state).toBe('succeeded');
        }
        const stuck = await server.api.request('GET', '/api/jobs?state=running,queued');
        expect(stuck.body.items).toEqual([]);
        const ips = new Set<string>();
        for (let i = 0; i < 6; i++) {
          const host = await server.api.request('GET', `/api/inventory/host/crash-${i}`);
          expect(host.body.attrs.power).toBe('on');
          ips.add(host.body.attrs.interfaces[0].ip);
        }
        expect(ips.size).toBe(6);
      } finally {
        server.child.kill('SIGTERM');
      }
    } finally {
      data.remove();
    }
  }, 180_000);
});
