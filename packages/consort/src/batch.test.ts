/**
 * `consort set|delete <kind> -l <query>` against the real binaries: the dry run, the progress bar with counts in a
 * real terminal (tmux), plain count lines without one, and the nodes that failed listed with their reasons.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from '@consortium/server/test-support';
import { spawnBinary, tempDir } from '@consortium/server/test-support';

const CONSORT = fileURLToPath(new URL('../bin/consort.js', import.meta.url));
const socket = `consort-batch-${process.pid}`;
const tmux = (...args: string[]): string =>
  execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

let server: BinaryServer;
const data = tempDir();
const home = tempDir('consort-batch-');

beforeAll(async () => {
  // Simulated backends at 300 ms per operation: a batch runs long enough to be seen drawing.
  const config = join(data.dir, 'sandbox.yaml');
  writeFileSync(
    config,
    [
      'plugins:',
      "  - module: '@consortium/plugin-inventory'",
      "  - module: '@consortium/plugin-ipam'",
      "  - module: '@consortium/plugin-sandbox'",
      '    config: { delayMs: 300 }',
      '',
    ].join('\n'),
  );
  server = await spawnBinary(data.dir, ['--config', config]);
  const { api } = server;
  const subnet = await api.request('POST', '/api/inventory/subnet?wait=30s', {
    body: { name: 'batch-net', attrs: { cidr: '10.6.0.0/24', gateway: '10.6.0.1' } },
  });
  expect(subnet.body.state).toBe('succeeded');
  // Eight hosts with an address, two without (powering those on can never work: they never get an IP to boot).
  const hosts = [
    ...Array.from({ length: 8 }, (_, i) => ({
      name: `tb-${i + 1}`,
      attrs: { hwspec: 'small', subnet: 'batch-net' },
    })),
    { name: 'nb-1', attrs: { hwspec: 'small' } },
    { name: 'nb-2', attrs: { hwspec: 'small' } },
  ];
  const created = await Promise.all(
    hosts.map((body) => api.request('POST', '/api/inventory/host?wait=60s', { body })),
  );
  for (const r of created) expect(r.body.state).toBe('succeeded');
}, 120_000);

afterAll(() => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
  server.child.kill('SIGTERM');
  data.remove();
  home.remove();
});

function consort(args: string[]) {
  const result = spawnSync(process.execPath, [CONSORT, ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    env: {
      PATH: process.env['PATH'],
      HOME: home.dir,
      XDG_CONFIG_HOME: join(home.dir, 'config'),
      XDG_CACHE_HOME: join(home.dir, 'cache'),
      CONSORT_URL: server.api.url,
      CONSORT_TOKEN: server.api.token,
    },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function waitForScreen(session: string, pattern: RegExp, ms = 60_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const screen = tmux('capture-pane', '-p', '-t', session);
    if (pattern.test(screen)) return screen;
    if (Date.now() > deadline) throw new Error(`screen never matched ${String(pattern)}:\n${screen}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

describe('consort batches', () => {
  it('--dry-run says what every node would do and changes nothing', () => {
    const r = consort(['set', 'host', '-l', 'name ~ "tb-*"', 'puppet_roles+=nginx', '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tb-1\s+succeed\s*$/m);
    expect(r.stdout).toContain(
      '8 host nodes: 8 would succeed, 0 would block, 0 would fail, 0 would be refused',
    );
    const jobs = consort(['jobs', 'list', '--state', 'held,queued,running', '-o', 'json']);
    expect(JSON.parse(jobs.stdout)).toEqual({ items: [] });
  });

  it('draws a progress bar with counts in a terminal, then the result', async () => {
    const env = `HOME=${home.dir} CONSORT_URL=${server.api.url} CONSORT_TOKEN=${server.api.token}`;
    const command = `env ${env} ${process.execPath} ${CONSORT} set host -l 'name ~ "tb-*"' power=on --concurrency 2; echo EXIT=$?; sleep 120`;
    tmux('new-session', '-d', '-x', '120', '-y', '30', '-s', 'bar', command);
    const live = await waitForScreen('bar', /[█░]+ [1-7]\/8 done · \d succeeded · [12] running · \d waiting/);
    expect(live).toMatch(/^batch b-\S+: patch 8 host nodes, 2 at a time, stopping after 8 failed$/m);
    const screen = await waitForScreen('bar', /EXIT=\d+/);
    expect(screen).toContain('EXIT=0');
    expect(screen).toMatch(/^batch succeeded: 8\/8 done · 8 succeeded · 0 running$/m);
  }, 90_000);

  it('without a terminal prints a line per change of the counts, and the failed nodes with their reasons', () => {
    const r = consort([
      'set',
      'host',
      '-l',
      'name ~ "tb-*" or name ~ "nb-*"',
      'power=on',
      '--concurrency',
      '4',
      '--failure-budget',
      '50%',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^batch b-\S+: patch 10 host nodes, 4 at a time, stopping after 5 failed$/m);
    expect(r.stdout).toMatch(/^0\/10 done · 0 succeeded · [1-4] running · \d waiting$/m);
    expect(r.stdout).toMatch(
      /^nb-1\s+failed\s+no provider can make progress: interfaces\[eth0\]\.ip is never supplied: ipam needs subnet.*\s+b-\S+\.n0$/m,
    );
    expect(r.stdout).toMatch(/^nb-2\s+failed\s+/m);
    expect(r.stdout).toMatch(/^batch failed: 10\/10 done · 8 succeeded · 0 running · 2 failed$/m);
  }, 90_000);

  it('refuses -l together with a name, and a delete with neither', () => {
    const both = consort(['delete', 'host', 'tb-1', '-l', 'name=tb-1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('consort: give a node name or -l <query>, not both\n');
    const neither = consort(['delete', 'host']);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toBe('consort: name the node to delete, or select nodes with -l <query>\n');
  });
});
