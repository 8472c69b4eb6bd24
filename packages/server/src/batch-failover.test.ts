/**
 * A batch survives its master: `consortium dev` is killed (-9) in the middle of a batch, a new process on the same
 * data dir carries the batch on from its jobs (held ones released, running ones resumed), and the concurrency holds
 * across the restart (checked from the jobs' events).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { afterAll, describe, expect, it } from 'vitest';
import type { Api, BinaryServer } from './test-support/dev-server.js';
import { eventually, spawnBinary, tempDir } from './test-support/dev-server.js';

const data = tempDir();
afterAll(() => {
  data.remove();
});

async function events(api: Api, job: string): Promise<{ type: string; at: string; data: any }[]> {
  const response = await fetch(`${api.url}/api/jobs/${job}/events`, {
    headers: { authorization: `Bearer ${api.token}` },
  });
  const parsed: { type: string; at: string; data: any }[] = [];
  const parser = createParser({ onEvent: (e) => parsed.push(JSON.parse(e.data)) });
  const decoder = new TextDecoder();
  for await (const chunk of response.body!)
    parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
  return parsed;
}

describe('a batch across a crash of its master', () => {
  it('is carried on by the next process, never more than its concurrency at once', async () => {
    const config = join(data.dir, 'slow.yaml');
    writeFileSync(
      config,
      [
        'plugins:',
        "  - module: '@consortium/plugin-inventory'",
        "  - module: '@consortium/plugin-ipam'",
        "  - module: '@consortium/plugin-sandbox'",
        '    config: { delayMs: 200 }',
        '',
      ].join('\n'),
    );
    let server: BinaryServer = await spawnBinary(data.dir, ['--config', config]);
    const subnet = await server.api.request('POST', '/api/inventory/subnet?wait=30s', {
      body: { name: 'fo-net', attrs: { cidr: '10.8.0.0/24', gateway: '10.8.0.1' } },
    });
    expect(subnet.body.state).toBe('succeeded');
    const names = Array.from({ length: 12 }, (_, i) => `fo-${String(i + 1).padStart(2, '0')}`);
    const created = await Promise.all(
      names.map((name) =>
        server.api.request('POST', '/api/inventory/host?wait=60s', {
          body: { name, attrs: { hwspec: 'small', subnet: 'fo-net' } },
        }),
      ),
    );
    for (const r of created) expect(r.body.state).toBe('succeeded');

    const r = await server.api.request('POST', '/api/batches', {
      body: {
        kind: 'host',
        selector: 'name ~ "fo-*"',
        updates: [{ path: 'power', op: 'set', value: 'on' }],
        concurrency: 3,
      },
    });
    expect(r.status).toBe(202);
    const id = r.body.id as string;
    // Kill it once some jobs have ended and others are held, mid-batch.
    await eventually(
      async () => {
        const b = await server.api.request('GET', `/api/batches/${id}`);
        return b.body.counts.succeeded >= 3 && b.body.counts.held > 0 ? true : undefined;
      },
      60_000,
      'the first jobs to end',
    );
    server.child.kill('SIGKILL');
    await new Promise((resolve) => server.child.once('exit', resolve));

    server = await spawnBinary(data.dir, ['--config', config]);
    try {
      const batch = await eventually(
        async () => {
          const b = await server.api.request('GET', `/api/batches/${id}`);
          return ['running', 'stopping'].includes(b.body.state) ? undefined : b.body;
        },
        90_000,
        'the batch to end',
      );
      expect(batch.state).toBe('succeeded');
      expect(batch.counts.succeeded).toBe(12);
      const spans: [number, number][] = [];
      for (const node of batch.nodes) {
        const list = await events(server.api, node.job);
        const released = list.filter((e) => e.type === 'state' && e.data.state === 'queued');
        expect(released).toHaveLength(1);
        const ended = list.find((e) => e.type === 'ended');
        spans.push([Date.parse(released[0]!.at), Date.parse(ended!.at)]);
      }
      const points = spans
        .flatMap(([from, to]) => [
          [from, 1],
          [to, -1],
        ])
        .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
      let now = 0;
      let most = 0;
      for (const [, delta] of points) {
        now += delta!;
        most = Math.max(most, now);
      }
      expect(most).toBe(3);
    } finally {
      server.child.kill('SIGTERM');
      await new Promise((resolve) => server.child.once('exit', resolve));
    }
  }, 180_000);
});
