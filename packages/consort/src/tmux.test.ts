/** The live job view in a real terminal (tmux): it draws, ends cleanly, and Ctrl-C stops watching, not the job. */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from '@consortium/server/test-support';
import { spawnBinary, tempDir } from '@consortium/server/test-support';

const CONSORT = fileURLToPath(new URL('../bin/consort.js', import.meta.url));
const socket = `consort-test-${process.pid}`;
const tmux = (...args: string[]): string =>
  execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

let server: BinaryServer;
const data = tempDir();
const home = tempDir('consort-tty-');

beforeAll(async () => {
  if (!hasTmux)
    throw new Error(
      'tmux is not installed: scripts/install-system-deps.sh installs it (apt-get install tmux)',
    );
  // Slow simulated backends (2 s per operation): a job runs long enough to be interrupted while it runs.
  const config = join(data.dir, 'slow-sandbox.yaml');
  writeFileSync(
    config,
    [
      'plugins:',
      "  - module: '@consortium/plugin-inventory'",
      "  - module: '@consortium/plugin-ipam'",
      "  - module: '@consortium/plugin-sandbox'",
      '    config: { delayMs: 2000 }',
      '',
    ].join('\n'),
  );
  server = await spawnBinary(data.dir, ['--config', config]);
  const subnet = await server.api.request('POST', '/api/inventory/subnet?wait=30s', {
    body: { name: 'tty-net', attrs: { cidr: '10.5.0.0/24', gateway: '10.5.0.1' } },
  });
  expect(subnet.body.state).toBe('succeeded');
}, 40_000);
afterAll(() => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
  server.child.kill('SIGTERM');
  data.remove();
  home.remove();
});

function startInTerminal(session: string, args: string[]): void {
  const env = `HOME=${home.dir} CONSORT_URL=${server.api.url} CONSORT_TOKEN=${server.api.token}`;
  const command = `env ${env} ${process.execPath} ${CONSORT} ${args.join(' ')}; echo EXIT=$?; sleep 120`;
  tmux('new-session', '-d', '-x', '120', '-y', '30', '-s', session, command);
}

async function waitForScreen(session: string, pattern: RegExp, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const screen = tmux('capture-pane', '-p', '-t', session);
    if (pattern.test(screen)) return screen;
    if (Date.now() > deadline) throw new Error(`screen never matched ${String(pattern)}:\n${screen}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

describe('consort in a terminal', () => {
  it('draws a live status line while the job runs and leaves clean lines when it ends', async () => {
    startInTerminal('draw', ['create', 'host', 'tty-1', 'hwspec=small', 'subnet=tty-net', 'power=on']);
    const live = await waitForScreen('draw', /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] (round \d|running|queued)/);
    expect(live).toMatch(/job j-\S+: create host\/tty-1/);
    const screen = await waitForScreen('draw', /EXIT=\d+/);
    expect(screen).toContain('EXIT=0');
    expect(screen).toMatch(/round 3\s+sandbox-vm\s+start /);
    expect(screen).toMatch(/^succeeded in \S+ \(3 rounds\)$/m);
    expect(screen).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
  }, 60_000);

  it('Ctrl-C stops watching, says so, and the job keeps running', async () => {
    // The VM waits for PXE registration after round 1; with 2 s operations the job runs for seconds more.
    startInTerminal('interrupt', ['create', 'host', 'tty-2', 'hwspec=small', 'subnet=tty-net', 'power=on']);
    await waitForScreen('interrupt', /waits: power: waiting for PXE registration/);
    tmux('send-keys', '-t', 'interrupt', 'C-c');
    const screen = await waitForScreen('interrupt', /EXIT=\d+/);
    expect(screen).toMatch(/stopped watching; job (j-\S+) keeps running/);
    expect(screen).toContain('EXIT=130');
    const id = /stopped watching; job (j-\S+) keeps running/.exec(screen)![1]!;
    const job = await server.api.request('GET', `/api/jobs/${id}`);
    expect(job.body.state).toBe('running');
    await server.api.request('POST', `/api/jobs/${id}/cancel`);
    expect((await server.api.request('GET', `/api/jobs/${id}?wait=30s`)).body.state).toBe('cancelled');
  }, 60_000);
});
