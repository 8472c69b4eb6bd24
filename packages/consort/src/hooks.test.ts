/**
 * `consort hooks` against the real binaries: create prints the secret once, list shows the hook without it,
 * deliveries lists what was sent (to a receiver on 127.0.0.1), refused requests and unknown hooks exit with the
 * documented codes (2 usage, 4 not found), and delete removes the hook.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from '@consortium/server/test-support';
import { eventually, spawnBinary, tempDir } from '@consortium/server/test-support';

const CONSORT = fileURLToPath(new URL('../bin/consort.js', import.meta.url));

let server: BinaryServer;
let receiver: Server;
let receiverUrl: string;
const received: string[] = [];
const data = tempDir();
const home = tempDir('consort-hooks-');

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push(String(req.headers['consortium-event'] ?? ''));
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  server = await spawnBinary(data.dir);
}, 60_000);

afterAll(() => {
  server.child.kill('SIGTERM');
  receiver.closeAllConnections();
  receiver.close();
  data.remove();
  home.remove();
});

function consort(...args: string[]) {
  const result = spawnSync(process.execPath, [CONSORT, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: home.dir,
      XDG_CONFIG_HOME: join(home.dir, 'config'),
      CONSORT_URL: server.api.url,
      CONSORT_TOKEN: server.api.token,
    },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('consort hooks', () => {
  it('creates, lists, shows deliveries and deletes a hook', async () => {
    const created = consort(
      'hooks',
      'create',
      receiverUrl,
      '-e',
      'node.created,job.succeeded',
      '--kind',
      'subnet',
      '-o',
      'json',
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const hook = JSON.parse(created.stdout) as { id: string; secret: string; enabled: boolean };
    expect(hook.secret).toMatch(/^whsec_/);
    expect(hook.enabled).toBe(true);

    const listed = consort('hooks', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(hook.id);
    expect(listed.stdout).toMatch(/ID\s+ENABLED\s+EVENTS\s+KIND\s+FILTER\s+URL/);
    expect(listed.stdout).not.toContain(hook.secret);

    const subnet = await server.api.request('POST', '/api/inventory/subnet?wait=30s', {
      body: { name: 'hook-net', attrs: { cidr: '10.9.0.0/24', gateway: '10.9.0.1' } },
    });
    expect(subnet.body.state).toBe('succeeded');
    await eventually(
      () => Promise.resolve(received.length >= 2 ? true : undefined),
      60_000,
      'two deliveries',
    );
    const deliveries = consort('hooks', 'deliveries', hook.id, '-o', 'json');
    expect(deliveries.code).toBe(0);
    const page = JSON.parse(deliveries.stdout) as {
      items: { event: string; status: string; attempts: number }[];
    };
    expect(page.items.map((d) => d.event).sort()).toEqual(['job.succeeded', 'node.created']);
    const table = consort('hooks', 'deliveries', hook.id);
    expect(table.stdout).toMatch(/DELIVERY\s+EVENT\s+STATUS\s+ATTEMPTS/);
    expect(table.stdout).toContain('delivered');

    const deleted = consort('hooks', 'delete', hook.id);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe(`deleted hook ${hook.id} (${receiverUrl})\n`);
    const again = consort('hooks', 'delete', hook.id);
    expect(again.code).toBe(4);
    expect(again.stderr).toBe(`consort: Hook ${hook.id} not found [NOT_FOUND]\n`);
  }, 120_000);

  it('exits 2 for a hook the server refuses, and creates nothing', () => {
    const refused = consort('hooks', 'create', 'ftp://example.invalid/', '-e', 'node.created');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('consort: url must be an http:// or https:// URL [INVALID_INPUT]\n');
    const unknownEvent = consort('hooks', 'create', receiverUrl, '-e', 'node.exploded');
    expect(unknownEvent.code).toBe(2);
    expect(consort('hooks', 'list', '-o', 'json').stdout.trim()).toBe('[]');
  });
});
