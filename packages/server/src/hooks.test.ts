/**
 * Hooks end to end against `consortium dev` in-process (the same master, queue and sender code a cluster runs, on the
 * in-process coordinator) and a receiver on 127.0.0.1 that checks every signature: each event of a host's create,
 * change and delete arrives exactly once although the receiver answers 500 to the first two attempts of every
 * delivery; a receiver holding the wrong secret rejects what it gets; a hook whose receiver always fails is
 * disabled with an audit entry; publishing the same events again sends nothing. Waits are on conditions only.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, systemClock, verifyDeliverySignature } from '@consortium/core';
import { HOOK_QUEUE, HookPublisher, jobHookEvents } from './hooks.js';
import type { ProcessParts } from './process.js';
import type { Api } from './test-support/dev-server.js';
import { eventually, startInProcess, tempDir } from './test-support/dev-server.js';

const SECRET = 'receiver-secret-0123456789abcdef';
const OTHER_SECRET = 'another-secret-0123456789abcdefgh';

/** One request the receiver saw, and what it made of it. */
interface Seen {
  readonly path: string;
  readonly delivery: string;
  readonly event: string;
  readonly body: string;
  readonly signature: string;
  readonly answered: number;
  readonly verifyError?: string;
}

const seen: Seen[] = [];
const attemptsByDelivery = new Map<string, number>();
let receiver: Server;
let receiverUrl: string;
let api: Api;
let parts: ProcessParts;
let stop: () => Promise<void>;
const dir = tempDir();

/** `/good` fails each delivery twice, then takes it; `/wrong` checks with a secret it was not given; `/down` fails. */
function answer(path: string, delivery: string, verifyError: string | undefined): number {
  if (verifyError !== undefined) return 401;
  if (path === '/down') return 503;
  const attempt = (attemptsByDelivery.get(delivery) ?? 0) + 1;
  attemptsByDelivery.set(delivery, attempt);
  return attempt <= 2 ? 500 : 200;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signature = String(req.headers['consortium-signature'] ?? '');
      let verifyError: string | undefined;
      try {
        // Every request is checked, on every path, with the secret this receiver holds.
        verifyDeliverySignature(signature, SECRET, body, Math.floor(Date.now() / 1000));
      } catch (error) {
        expect(error).toBeInstanceOf(InputError);
        verifyError = (error as Error).message;
      }
      const path = req.url ?? '';
      const delivery = String(req.headers['consortium-delivery'] ?? '');
      const answered = answer(path, delivery, verifyError);
      seen.push({
        path,
        delivery,
        event: String(req.headers['consortium-event'] ?? ''),
        body,
        signature,
        answered,
        ...(verifyError === undefined ? {} : { verifyError }),
      });
      res.writeHead(answered).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const config = join(dir.dir, 'hooks.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      plugins: [
        { module: '@consortium/plugin-inventory', config: { hostAttributes: ['datacenter', 'owner'] } },
      ],
      hooks: { maxAttempts: 5, maxFailures: 6, timeoutSeconds: 30 },
    }),
  );
  const started = await startInProcess({ CONSORTIUM_CONFIG: config });
  api = started.api;
  parts = started.parts;
  stop = () => started.stop();
}, 60_000);

afterAll(async () => {
  await stop();
  receiver.closeAllConnections();
  receiver.close();
  dir.remove();
});

/** Creates a hook and returns its id. */
async function createHook(body: Record<string, unknown>): Promise<string> {
  const created = await api.request('POST', '/api/hooks', { body });
  expect(created.status).toBe(201);
  return created.body.id as string;
}

/** Waits until the hooks queue holds nothing ready, delayed or claimed. */
async function queueDrained(): Promise<void> {
  await eventually(
    async () => {
      const stats = await parts.coordinator.queue(HOOK_QUEUE).stats();
      return stats.ready + stats.delayed + stats.claimed === 0 ? true : undefined;
    },
    120_000,
    'the hooks queue to drain',
  );
}

describe('hooks', () => {
  it('delivers each event exactly once through two 500s, every signature checked', async () => {
    const good = await createHook({
      url: `${receiverUrl}/good`,
      events: ['job.succeeded', 'node.created', 'node.changed', 'node.deleted'],
      kind: 'host',
      filter: 'datacenter=pek1',
      secret: SECRET,
    });
    await createHook({ url: `${receiverUrl}/wrong`, events: ['node.created'], secret: OTHER_SECRET });
    // Not matched by the filter: a host elsewhere makes no delivery to /good.
    const elsewhere = await api.request('POST', '/api/inventory/host?wait=60s', {
      body: { name: 'hk-elsewhere', attrs: { datacenter: 'sha2' } },
    });
    expect(elsewhere.body.state).toBe('succeeded');

    const jobs: string[] = [];
    const steps = [
      () =>
        api.request('POST', '/api/inventory/host?wait=60s', {
          body: { name: 'hk-01', attrs: { datacenter: 'pek1' } },
        }),
      () =>
        api.request('PATCH', '/api/inventory/host/hk-01?wait=60s', {
          body: { owner: 'alice' },
          type: 'application/merge-patch+json',
        }),
      () => api.request('DELETE', '/api/inventory/host/hk-01?wait=60s'),
    ];
    for (const [i, step] of steps.entries()) {
      const job = await step();
      expect(job.body.state).toBe('succeeded');
      jobs.push(job.body.id as string);
      // One step at a time: each step's two deliveries fail twice each, fewer than maxFailures in a row.
      await waitDelivered(good, 2 * (i + 1));
    }

    const expected = jobs.flatMap((job) => [`${job}.job`, `${job}.node`]);
    const accepted = seen.filter((s) => s.path === '/good' && s.answered === 200);
    const eventIds = accepted.map((s) => (JSON.parse(s.body) as { id: string }).id);
    expect([...eventIds].sort()).toEqual([...expected].sort());
    expect(new Set(accepted.map((s) => s.delivery)).size).toBe(accepted.length);
    expect(accepted.map((s) => s.event).sort()).toEqual([
      'job.succeeded',
      'job.succeeded',
      'job.succeeded',
      'node.changed',
      'node.created',
      'node.deleted',
    ]);
    // Every request to /good passed its signature check, and each delivery took exactly three attempts.
    const toGood = seen.filter((s) => s.path === '/good');
    expect(toGood.filter((s) => s.verifyError !== undefined)).toEqual([]);
    for (const s of accepted)
      expect(toGood.filter((t) => t.delivery === s.delivery).map((t) => t.answered)).toEqual([500, 500, 200]);
    const log = await api.request('GET', `/api/hooks/${good}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.body.items).toHaveLength(6);
    for (const item of log.body.items as { status: string; attempts: number; log: { status: number }[] }[]) {
      expect(item.status).toBe('delivered');
      expect(item.attempts).toBe(3);
      expect(item.log.map((a) => a.status)).toEqual([500, 500, 200]);
    }
    expect((await api.request('GET', `/api/hooks/${good}`)).body).toMatchObject({
      enabled: true,
      consecutiveFailures: 0,
    });

    // The receiver holding the wrong secret refused what it got; the same bytes check out with the hook's secret.
    const toWrong = await eventually(() => {
      const got = seen.filter((s) => s.path === '/wrong');
      return Promise.resolve(got.length > 0 ? got : undefined);
    });
    for (const s of toWrong) {
      expect(s.verifyError).toBe('the signature does not match the body and the secret');
      expect(s.answered).toBe(401);
      expect(() => {
        verifyDeliverySignature(s.signature, OTHER_SECRET, s.body, Math.floor(Date.now() / 1000));
      }).not.toThrow();
    }
  }, 180_000);

  it('sends nothing again when the same events are published again', async () => {
    await queueDrained();
    const before = seen.length;
    const ended = (await parts.store.listJobs({ limit: 10, states: ['succeeded'] })).items;
    const publisher = new HookPublisher({
      store: parts.store,
      coordinator: parts.coordinator,
      kinds: parts.kinds,
      clock: systemClock,
      logger: parts.logger,
      maxAttempts: 5,
    });
    const again = await publisher.publish(ended.flatMap((job) => jobHookEvents(job, job.before)));
    expect(again.length).toBeGreaterThan(0);
    await queueDrained();
    expect(seen.slice(before).filter((s) => s.path === '/good')).toEqual([]);
  }, 180_000);

  it('disables a hook whose receiver keeps failing, with an audit entry', async () => {
    const down = await createHook({
      url: `${receiverUrl}/down`,
      events: ['job.succeeded', 'node.created'],
      secret: SECRET,
    });
    for (const name of ['hk-down-1', 'hk-down-2', 'hk-down-3']) {
      const r = await api.request('POST', '/api/inventory/host?wait=60s', {
        body: { name, attrs: { datacenter: 'sha2' } },
      });
      expect(r.body.state).toBe('succeeded');
    }
    const hook = await eventually(
      async () => {
        const r = await api.request('GET', `/api/hooks/${down}`);
        return r.body.enabled === false ? r.body : undefined;
      },
      120_000,
      'the failing hook to be disabled',
    );
    expect(hook.consecutiveFailures).toBeGreaterThanOrEqual(6);
    const audit = await api.request('GET', `/api/audit?kind=hook&name=${down}`);
    const disabled = (audit.body.items as { action: string; actor: { id: string } }[]).filter(
      (e) => e.action === 'hook:disabled',
    );
    expect(disabled).toHaveLength(1);
    expect(audit.body.items[0].links).toEqual({ hook: `/api/hooks/${down}` });
    expect(seen.filter((s) => s.path === '/down').every((s) => s.answered === 503)).toBe(true);
  }, 180_000);
});

describe('hooks API', () => {
  it('refuses bad hooks with a 400 naming the field, and writes nothing', async () => {
    const hooksBefore = (await api.request('GET', '/api/hooks')).body.items.length as number;
    const auditBefore = (await api.request('GET', '/api/audit?kind=hook&limit=500')).body.items
      .length as number;
    const url = `${receiverUrl}/good`;
    const cases: [Record<string, unknown>, string, string][] = [
      [{ url: 'ftp://x/', events: ['node.created'] }, 'url', 'url must be an http:// or https:// URL'],
      [{ url: 'not a url', events: ['node.created'] }, 'url', 'url must be an http:// or https:// URL'],
      [
        { url, events: [] },
        'events',
        'events must be a non-empty list of job.succeeded, job.failed, job.expired, node.created, node.changed, node.deleted, node.drift',
      ],
      [
        { url, events: ['node.exploded'] },
        'events',
        'unknown event "node.exploded" (known: job.succeeded, job.failed, job.expired, node.created, node.changed, node.deleted, node.drift)',
      ],
      [
        { url, events: ['node.created'], kind: 'toaster' },
        'kind',
        expect.stringMatching(/^unknown kind "toaster" \(known: /),
      ],
      [
        { url, events: ['node.created'], filter: 'datacenter = = pek1' },
        'filter',
        expect.stringMatching(/^filter: /),
      ],
      [
        { url, events: ['node.created'], kind: 'host', filter: 'colour=red' },
        'filter',
        'filter: no host has the attribute "colour"',
      ],
      [
        { url, events: ['node.created'], secret: 'short' },
        'secret',
        'secret must be a string of 16 to 256 characters',
      ],
      [
        { url, events: ['node.created'], colour: 'red' },
        'colour',
        'unknown field(s) colour (known: url, events, kind, filter, secret)',
      ],
    ];
    for (const [body, field, detail] of cases) {
      const r = await api.request('POST', '/api/hooks', { body });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.body).toMatchObject({ code: 'INVALID_INPUT', detail, details: { field } });
    }
    expect((await api.request('GET', '/api/hooks')).body.items).toHaveLength(hooksBefore);
    expect((await api.request('GET', '/api/audit?kind=hook&limit=500')).body.items).toHaveLength(auditBefore);
  });

  it('never shows a secret after the create, and is for admins only', async () => {
    const created = await api.request('POST', '/api/hooks', {
      body: { url: `${receiverUrl}/none`, events: ['node.drift'], kind: 'host', filter: 'datacenter=pek9' },
    });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_[0-9a-f]{48}$/);
    const id = created.body.id as string;
    const one = await api.request('GET', `/api/hooks/${id}`);
    const all = await api.request('GET', '/api/hooks');
    expect(JSON.stringify([one.body, all.body])).not.toContain(created.body.secret as string);
    expect(one.body).toMatchObject({
      id,
      enabled: true,
      events: ['node.drift'],
      kind: 'host',
      filter: 'datacenter=pek9',
    });
    const reader = await api.request('POST', '/api/tokens', { body: { role: 'reader' } });
    const asReader = await api.request('GET', '/api/hooks', { token: reader.body.token as string });
    expect(asReader.status).toBe(403);
    expect(asReader.body.code).toBe('FORBIDDEN');
    const badCursor = await api.request('GET', `/api/hooks/${id}/deliveries?cursor=nope`);
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.detail).toBe('Invalid cursor');
    expect((await api.request('DELETE', `/api/hooks/${id}`)).body.deleted).toBe(true);
    const gone = await api.request('GET', `/api/hooks/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ code: 'NOT_FOUND', detail: `Hook ${id} not found` });
    expect((await api.request('DELETE', `/api/hooks/${id}`)).status).toBe(404);
  });
});

/** Waits until `count` deliveries of the hook are delivered. */
async function waitDelivered(hook: string, count: number): Promise<void> {
  await eventually(
    async () => {
      const r = await api.request('GET', `/api/hooks/${hook}/deliveries`);
      const done = (r.body.items as { status: string }[]).filter((d) => d.status === 'delivered').length;
      return done >= count ? true : undefined;
    },
    120_000,
    `${count} deliveries of ${hook}`,
  );
}
