/** The `consortium` binary's own commands: token creation, usage errors, and graceful stop on SIGINT. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BINARY, spawnBinary, tempDir } from './test-support/dev-server.js';

const run = (...args: string[]) =>
  spawnSync(process.execPath, [BINARY, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('consortium CLI', () => {
  it('token create prints a token that the server then accepts with its role', async () => {
    const data = tempDir();
    try {
      const made = run('token', 'create', '--role', 'reader', '--data-dir', data.dir);
      expect(made.status).toBe(0);
      const token = made.stdout.trim();
      expect(token).toMatch(/^cst_[A-Za-z0-9_-]{32}$/);
      const server = await spawnBinary(data.dir);
      try {
        const whoami = await server.api.request('GET', '/api/whoami', { token });
        expect(whoami.body.role).toBe('reader');
      } finally {
        server.child.kill('SIGTERM');
      }
    } finally {
      data.remove();
    }
  }, 40_000);

  // Four spawns of the binary: a loaded machine needs more than the default 20 s.
  it('usage errors: one line, exit 2, no stack trace', () => {
    const badRole = run('token', 'create', '--role', 'root');
    expect(badRole.status).toBe(2);
    expect(badRole.stderr).toContain('Invalid values');
    expect(badRole.stderr).not.toMatch(/\n\s+at /);
    const badPort = run('dev', '--port', '70000', '--data-dir', '/tmp/never-used-consortium');
    expect(badPort.status).toBe(2);
    expect(badPort.stderr.trim()).toBe('consortium: invalid configuration: /web/port: must be <= 65535');
    const nothing = run();
    expect(nothing.status).toBe(2);
    const cluster = run('worker', '--data-dir', '/tmp/never-used-consortium');
    expect(cluster.status).toBe(2);
    expect(cluster.stderr.trim()).toBe(
      'consortium: consortium worker runs one role of a cluster and needs etcd: set coordinator.driver: etcd and coordinator.endpoints (or CONSORTIUM_ETCD_ENDPOINTS); for one process use `consortium dev`',
    );
  }, 90_000);

  it('SIGINT stops gracefully: the job in flight is finished on the next start, nothing lost', async () => {
    const data = tempDir();
    try {
      let server = await spawnBinary(data.dir);
      const r = await server.api.request('POST', '/api/inventory/host', {
        body: { name: 'ctrl-c', attrs: { hwspec: 'small' } },
      });
      expect(r.status).toBe(202);
      server.child.kill('SIGINT');
      const code = await new Promise((resolve) => server.child.once('exit', resolve));
      expect(code).toBe(0);
      expect(server.output()).toContain('shutting down');
      server = await spawnBinary(data.dir);
      try {
        const job = await server.api.request('GET', `/api/jobs/${r.body.id}?wait=30s`);
        expect(job.body.state).toBe('succeeded');
        expect((await server.api.request('GET', '/api/inventory/host/ctrl-c')).body.attrs.hwspec).toBe(
          'small',
        );
      } finally {
        server.child.kill('SIGTERM');
      }
    } finally {
      data.remove();
    }
  }, 60_000);
});
