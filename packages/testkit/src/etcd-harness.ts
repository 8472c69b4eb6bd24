/**
 * A real etcd server for integration tests, started from the installed `etcd` binary on free loopback ports with its
 * own data directory, and a TCP proxy that simulates network faults in front of it (after microsoft/etcd3
 * `src/test/util.ts`). Tests share one server and isolate themselves with a fresh key prefix each.
 */
import { freePort } from './helpers.js';
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Options of `startEtcd`. */
export interface EtcdHarnessOptions {
  /** Path of the `etcd` binary; default the one on PATH, else `/usr/bin/etcd`. */
  readonly binary?: string;
  /** How long to wait for the server to report healthy; default 15 s. */
  readonly startTimeoutMs?: number;
}

/** A running etcd server owned by a test. */
export interface EtcdHarness {
  /** Client URL, e.g. `http://127.0.0.1:23790`. */
  readonly endpoint: string;
  /** The server's client port on 127.0.0.1. */
  readonly clientPort: number;
  /** The server's data directory; kept across `kill` and `restart`, removed by `stop`. */
  readonly dataDir: string;
  /** Stops the server for good and removes its data directory; safe to call more than once. */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL) to the server and waits for it to exit; `restart()` brings it back. SIGSTOP
   * freezes it and SIGCONT thaws it, without waiting.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server gracefully if it runs, then starts it again on the same ports and data; waits until healthy. */
  restart(): Promise<void>;
  /** Compacts the key-value history at the current revision with `etcdctl`; returns that revision. */
  compact(): Promise<number>;
}

/** Binaries looked for when PATH has none. */
const fallbackEtcd = '/usr/bin/etcd';
const fallbackEtcdctl = '/usr/bin/etcdctl';
const installHint =
  'install the Debian packages `etcd-server` and `etcd-client` (`apt-get install etcd-server etcd-client`); ' +
  '`.ci/run` and `make test` install them through scripts/install-system-deps.sh';

/** Servers still running, killed when the test process exits so that none outlives it. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds `name` on PATH, else `fallback`; undefined when neither is executable. */
function findBinary(name: string, fallback: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && isExecutable(join(dir, name))) return join(dir, name);
  }
  return isExecutable(fallback) ? fallback : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when the server's `/health` endpoint answers healthy. */
async function isHealthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { health?: unknown };
    return response.ok && body.health === 'true';
  } catch {
    return false;
  }
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
}

function runEtcdctl(etcdctl: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(etcdctl, args, { env: { ...process.env, ETCDCTL_API: '3' } }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`etcdctl ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * Starts a single-member etcd on free loopback ports with a fresh data directory and revision auto-compaction, and
 * waits until it is healthy. Throws when `etcd` is not installed (telling the operator what to install) or when
 * the server does not become healthy in time.
 */
export async function startEtcd(options: EtcdHarnessOptions = {}): Promise<EtcdHarness> {
  const binary = options.binary ?? findBinary('etcd', fallbackEtcd);
  if (binary === undefined) throw new Error(`etcd is not installed: ${installHint}`);
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  installExitHook();
  const dataDir = await mkdtemp(join(tmpdir(), 'consortium-etcd-'));

  let clientPort = 0;
  let peerPort = 0;
  let child: ChildProcess | undefined;
  let log = '';

  const launch = async (): Promise<void> => {
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    log = '';
    const server = spawn(
      binary,
      [
        '--name=harness',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${endpoint}`,
        `--advertise-client-urls=${endpoint}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=harness=${peer}`,
        '--auto-compaction-mode=revision',
        '--auto-compaction-retention=1000',
        '--logger=zap',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = server;
    running.add(server);
    server.once('exit', () => {
      running.delete(server);
    });
    server.stderr.setEncoding('utf8');
    server.stderr.on('data', (chunk: string) => {
      log = (log + chunk).slice(-4000);
    });
    const deadline = Date.now() + startTimeoutMs;
    while (!(await isHealthy(endpoint))) {
      if (server.exitCode !== null || server.signalCode !== null) {
        throw new Error(`etcd exited during start-up (${server.exitCode ?? server.signalCode}): ${log}`);
      }
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        await waitForExit(server);
        throw new Error(`etcd did not become healthy within ${startTimeoutMs} ms: ${log}`);
      }
      await sleep(50);
    }
  };

  // A port picked as free may be taken before etcd binds it; a few fresh picks make that race harmless.
  for (let attempt = 1; ; attempt++) {
    clientPort = await freePort();
    peerPort = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= 3) {
        await rm(dataDir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const endpoint = `http://127.0.0.1:${clientPort}`;
  let stopped = false;

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    current.kill(signal);
    // SIGSTOP freezes the server (a hung etcd) and SIGCONT thaws it; neither ends it.
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') return;
    await waitForExit(current);
  };

  const terminate = async (): Promise<void> => {
    const current = child;
    if (current === undefined) return;
    const timer = setTimeout(() => current.kill('SIGKILL'), 5000);
    try {
      current.kill('SIGCONT');
      await kill('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    endpoint,
    clientPort,
    dataDir,
    kill,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await terminate();
      await rm(dataDir, { recursive: true, force: true });
    },
    restart: async () => {
      if (stopped) throw new Error('etcd harness was stopped; start a new one');
      await terminate();
      await launch();
    },
    compact: async () => {
      const etcdctl = findBinary('etcdctl', fallbackEtcdctl);
      if (etcdctl === undefined) throw new Error(`etcdctl is not installed: ${installHint}`);
      const status = JSON.parse(
        await runEtcdctl(etcdctl, [`--endpoints=${endpoint}`, 'endpoint', 'status', '--write-out=json']),
      ) as { Status: { header: { revision: number } } }[];
      const revision = status[0]?.Status.header.revision;
      if (revision === undefined) throw new Error('etcdctl endpoint status returned no revision');
      await runEtcdctl(etcdctl, [`--endpoints=${endpoint}`, 'compaction', '--physical', String(revision)]);
      return revision;
    },
  };
}

/** A TCP proxy in front of a server, for simulating network faults. */
export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /** Destroys every open connection at once, as a network cut would; new connections are still accepted. */
  cut(): void;
  /** Stops forwarding bytes on every connection, open or new, without closing any: a silent network. */
  pause(): void;
  /** Forwards bytes again after `pause()`, including what was held back. */
  resume(): void;
  /** Closes the proxy and every connection; safe to call more than once. */
  close(): Promise<void>;
}

/** One proxied connection: the client's socket and the socket to the target. */
interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * Starts a TCP proxy on a free loopback port that forwards to `target` (`host:port`, `http://host:port` or a port on
 * 127.0.0.1).
 */
export async function startTcpProxy(target: string | number): Promise<TcpProxy> {
  const { host, port } = parseTarget(target);
  const links = new Set<Link>();
  let paused = false;

  const plumb = (link: Link): void => {
    link.client.pipe(link.upstream);
    link.upstream.pipe(link.client);
  };
  const unplumb = (link: Link): void => {
    link.client.unpipe(link.upstream);
    link.upstream.unpipe(link.client);
    link.client.pause();
    link.upstream.pause();
  };

  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    const link: Link = { client, upstream };
    links.add(link);
    const drop = (): void => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (paused) {
      client.pause();
      upstream.pause();
    } else {
      plumb(link);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve();
    });
  });
  const proxyPort = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    port: proxyPort,
    cut: () => {
      for (const link of [...links]) {
        link.client.destroy();
        link.upstream.destroy();
      }
      links.clear();
    },
    pause: () => {
      if (paused) return;
      paused = true;
      for (const link of links) unplumb(link);
    },
    resume: () => {
      if (!paused) return;
      paused = false;
      for (const link of links) plumb(link);
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const link of [...links]) {
          link.client.destroy();
          link.upstream.destroy();
        }
        links.clear();
      });
      return closing;
    },
  };
}

function parseTarget(target: string | number): { host: string; port: number } {
  if (typeof target === 'number') return { host: '127.0.0.1', port: target };
  const match = /^(?:[a-z]+:\/\/)?([^:/]+):(\d+)\/?$/.exec(target);
  if (match === null) throw new Error(`Not a host:port proxy target: ${target}`);
  return { host: match[1] ?? '127.0.0.1', port: Number(match[2]) };
}
