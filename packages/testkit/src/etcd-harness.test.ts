import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEtcd, startTcpProxy } from './etcd-harness.js';
import type { EtcdHarness, TcpProxy } from './etcd-harness.js';

// Without etcd installed every test fails (from beforeEach, so that the run counts failures) with the install hint.
let etcd: EtcdHarness | undefined;
let startError: Error | undefined;

beforeAll(async () => {
  try {
    etcd = await startEtcd();
  } catch (error) {
    startError = error instanceof Error ? error : new Error(String(error));
  }
}, 30_000);

afterAll(async () => {
  await etcd?.stop();
});

function server(): EtcdHarness {
  if (startError !== undefined) throw startError;
  if (etcd === undefined) throw new Error('etcd did not start');
  return etcd;
}

beforeEach(() => {
  server();
  // A test that fails while the server is frozen must not leave it frozen for the tests after it.
  return async () => {
    await etcd?.kill('SIGCONT');
  };
});

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function healthy(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok && ((await response.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

describe('startEtcd', () => {
  it('runs a healthy server on loopback with its own data dir, and compacts at the current revision', async () => {
    const { endpoint, dataDir } = server();
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(existsSync(dataDir)).toBe(true);
    expect(await healthy(endpoint)).toBe(true);
    expect(await server().compact()).toBeGreaterThan(0);
  });

  it('freezes, thaws, kills and restarts the server on the same endpoint', async () => {
    const { endpoint } = server();
    await server().kill('SIGSTOP');
    expect(await healthy(endpoint, 300)).toBe(false);
    await server().kill('SIGCONT');
    // Thawed, it answers again; on a loaded machine that may take more than one probe.
    await expect.poll(() => healthy(endpoint, 5000), { timeout: 20_000, interval: 100 }).toBe(true);
    await server().kill();
    expect(await healthy(endpoint, 300)).toBe(false);
    await server().restart();
    expect(await healthy(endpoint)).toBe(true);
  }, 60_000);

  it('does not adopt another server that holds the port it picked (parallel test files race for ports)', async () => {
    const taken = server().clientPort;
    const other = await startEtcd({
      pickClientPort: async (attempt) => (attempt === 1 ? taken : freePort()),
    });
    try {
      expect(other.clientPort).not.toBe(taken);
      expect(await healthy(other.endpoint)).toBe(true);
    } finally {
      await other.stop();
    }
    expect(await healthy(server().endpoint)).toBe(true);
  }, 60_000);

  it('removes the data dir on stop', async () => {
    const other = await startEtcd();
    await other.stop();
    await other.stop();
    expect(existsSync(other.dataDir)).toBe(false);
    expect(await healthy(other.endpoint, 300)).toBe(false);
  });
});

describe('startTcpProxy', () => {
  let proxy: TcpProxy;

  beforeEach(async () => {
    proxy = await startTcpProxy(server().endpoint);
    return () => proxy.close();
  });

  it('forwards, holds bytes back while paused, and carries on after a cut', async () => {
    const url = `http://127.0.0.1:${proxy.port}`;
    expect(await healthy(url)).toBe(true);
    proxy.pause();
    expect(await healthy(url, 300)).toBe(false);
    proxy.resume();
    expect(await healthy(url)).toBe(true);
    proxy.cut();
    // A client may first trip over its pooled connection that the cut destroyed; new connections go through.
    let after = false;
    for (let attempt = 0; attempt < 3 && !after; attempt++) after = await healthy(url);
    expect(after).toBe(true);
  });

  it('destroys open connections on cut', async () => {
    const socket = connect(proxy.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write('GET /health HTTP/1.1\r\nHost: etcd\r\n\r\n');
    await once(socket, 'data');
    const closed = once(socket, 'close');
    proxy.cut();
    await closed;
    expect(socket.destroyed).toBe(true);
  });

  it('stops listening on close, which is safe to call twice', async () => {
    await proxy.close();
    await proxy.close();
    expect(await healthy(`http://127.0.0.1:${proxy.port}`, 300)).toBe(false);
  });
});
