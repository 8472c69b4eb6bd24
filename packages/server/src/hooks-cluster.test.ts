/**
 * Hooks in cluster mode: web, two masters and a worker as processes of the real binary over a real etcd. Deliveries
 * go through etcd's `hooks` queue; the receiver on 127.0.0.1 checks every signature and answers 500 to the first
 * two attempts of each delivery, and still gets each event once. After the leading master is killed (-9) the new
 * leader publishes the recent events again; none of them arrives a second time, and the events of a job run after
 * the failover arrive as before.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyDeliverySignature } from '@consortium/core';
import type { Cluster } from './test-support/cluster.js';
import { startCluster } from './test-support/cluster.js';
import { eventually } from './test-support/dev-server.js';

const SECRET = 'cluster-receiver-secret-0123456789';

interface Received {
  readonly delivery: string;
  readonly eventId: string;
  readonly answered: number;
  readonly verified: boolean;
}

const received: Received[] = [];
const attempts = new Map<string, number>();
let receiver: Server;
let cluster: Cluster;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = true;
      try {
        verifyDeliverySignature(String(req.headers['consortium-signature']), SECRET, body, Date.now() / 1000);
      } catch {
        verified = false;
      }
      const delivery = String(req.headers['consortium-delivery']);
      const attempt = (attempts.get(delivery) ?? 0) + 1;
      attempts.set(delivery, attempt);
      const answered = !verified ? 401 : attempt <= 2 ? 500 : 200;
      received.push({ delivery, eventId: (JSON.parse(body) as { id: string }).id, answered, verified });
      res.writeHead(answered).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  cluster = await startCluster();
  await cluster.spawn('master', 'master-a');
  await cluster.spawn('master', 'master-b');
  await cluster.spawn('worker', 'worker-1');
}, 120_000);

afterAll(async () => {
  await cluster.stop();
  receiver.closeAllConnections();
  receiver.close();
});

/** Creates a subnet and waits until both its events were taken (answered 200). */
async function createSubnet(name: string, cidr: string): Promise<string> {
  const r = await cluster.api.request('POST', '/api/inventory/subnet?wait=60s', {
    body: { name, attrs: { cidr, gateway: cidr.replace(/0\/24$/, '1') } },
  });
  expect(r.body.state).toBe('succeeded');
  const job = r.body.id as string;
  await eventually(
    () => {
      const taken = received.filter((e) => e.answered === 200 && e.eventId.startsWith(`${job}.`));
      return Promise.resolve(taken.length === 2 ? true : undefined);
    },
    120_000,
    `the events of ${job}`,
  );
  return job;
}

describe('hooks in cluster mode', () => {
  it('delivers each event once through two 500s over etcd, also across a master failover', async () => {
    const hook = await cluster.api.request('POST', '/api/hooks', {
      body: {
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`,
        events: ['job.succeeded', 'node.created'],
        kind: 'subnet',
        secret: SECRET,
      },
    });
    expect(hook.status).toBe(201);
    const first = await createSubnet('hk-a', '10.41.0.0/24');

    const leader = await cluster.leader();
    leader.child.kill('SIGKILL');
    const next = await eventually(
      async () => {
        const now = await cluster.leader().catch(() => undefined);
        return now !== undefined && now.name !== leader.name ? now : undefined;
      },
      60_000,
      'a new leader',
    );
    await eventually(
      () => Promise.resolve(next.lines('master ready').length > 0 ? true : undefined),
      60_000,
      'the new leader to be ready',
    );
    const republished = await eventually(
      () => Promise.resolve(next.lines('hook events of recent jobs published again')[0]),
      60_000,
      'the new leader to publish recent events again',
    );
    // At least the first subnet's two events (the seeded and earlier jobs may add more).
    expect(republished['deliveries']).toBeGreaterThanOrEqual(2);
    const second = await createSubnet('hk-b', '10.42.0.0/24');

    expect(received.every((e) => e.verified)).toBe(true);
    const taken = received.filter((e) => e.answered === 200).map((e) => e.eventId);
    expect([...taken].sort()).toEqual(
      [`${first}.job`, `${first}.node`, `${second}.job`, `${second}.node`].sort(),
    );
    for (const delivery of new Set(received.map((e) => e.delivery))) {
      expect(received.filter((e) => e.delivery === delivery).map((e) => e.answered)).toEqual([500, 500, 200]);
    }
    const log = await cluster.api.request('GET', `/api/hooks/${hook.body.id as string}/deliveries`);
    expect(
      (log.body.items as { status: string; attempts: number }[]).map((d) => [d.status, d.attempts]),
    ).toEqual([
      ['delivered', 3],
      ['delivered', 3],
      ['delivered', 3],
      ['delivered', 3],
    ]);
  }, 300_000);
});
