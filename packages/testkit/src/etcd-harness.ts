/**
 * A real etcd server for integration tests, started from the installed `etcd` binary on free loopback ports with its
 * own data directory, and a TCP proxy that simulates network faults in front of it (after microsoft/etcd3
 * `src/test/util.ts`). Tests share one server and isolate themselves with a fresh key prefix each.
 */
import { freePort } from './helpers.js';
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { isExecutable, killOnExit, sleep, waitForExit } from './servers.js';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
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
  /** Picks the client port for each start attempt; default a free one. For testing the harness's own port races. */
  readonly pickClientPort?: (attempt: number) => Promise<number>;
  /**
   * Serve clients over TLS (`https://` endpoint) with this server certificate and key (PEM files), requiring client
   * certificates signed by `ca` (`--client-cert-auth`); `client` is the certificate the harness's own `etcdctl` uses.
   */
  readonly tls?: {
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly client: { readonly cert: string; readonly key: string };
  };
  /**
   * Turn on etcd's authentication once started: a `root` user with `rootPassword`, and each of `users` with a role of
   * its own that may read and write keys under its `prefix` and nothing else.
   */
  readonly auth?: {
    readonly rootPassword: string;
    readonly users?: readonly { readonly name: string; readonly password: string; readonly prefix: string }[];
  };
  /** The address clients reach etcd on; default 127.0.0.1. */
  readonly host?: string;
  /**
   * Run etcd (and the harness's `etcdctl`) inside this network namespace (`ip netns exec`, see `netns.ts`); its ports
   * are then 2379 and 2380, which are free in a namespace of the test's own, unless `clientPort` says otherwise.
   */
  readonly netns?: string;
  /** The client port; default a free one (2379 in a namespace). */
  readonly clientPort?: number;
}

/** A running etcd server owned by a test. */
export interface EtcdHarness {
  /** Client URL, e.g. `http://127.0.0.1:23790` (`https://` with TLS). */
  readonly endpoint: string;
  /** The server's client port (on 127.0.0.1 unless `host` says otherwise). */
  readonly clientPort: number;
  /** The server's data directory; kept across `kill` and `restart`, removed by `stop`. */
  readonly dataDir: string;
  /** Stops the server for good and removes its data directory; safe to call more than once. */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL) to the server and waits for it to exit; `restart()` brings it back. SIGSTOP
   * freezes it and SIGCONT thaws it; both wait until every thread of the server is stopped, or running again.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server gracefully if it runs, then starts it again on the same ports and data; waits until healthy. */
  restart(): Promise<void>;
  /** Compacts the key-value history at the current revision with `etcdctl`; returns that revision. */
  compact(): Promise<number>;
  /** Runs `etcdctl` against this server (as root once authentication is on, in its namespace) and returns stdout. */
  etcdctl(args: readonly string[]): Promise<string>;
}

/** Binaries looked for when PATH has none. */
const fallbackEtcd = '/usr/bin/etcd';
const fallbackEtcdctl = '/usr/bin/etcdctl';
const installHint =
  'install the Debian packages `etcd-server` and `etcd-client` (`apt-get install etcd-server etcd-client`); ' +
  '`.ci/run` and `make test` install them through scripts/install-system-deps.sh';

/** Finds `name` on PATH, else `fallback`; undefined when neither is executable. */
function findBinary(name: string, fallback: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && isExecutable(join(dir, name))) return join(dir, name);
  }
  return isExecutable(fallback) ? fallback : undefined;
}

/**
 * True when the server at `endpoint` is healthy and is the member `name`. Ports are picked free and then bound by
 * etcd, so under parallel test files another harness's etcd may hold the port ours failed to bind: asking for the
 * member's name keeps a harness from adopting (and later freezing or killing) someone else's server.
 */
async function isHealthyMember(endpoint: string, name: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { health?: unknown };
    if (!response.ok || body.health !== 'true') return false;
    const members = await fetch(`${endpoint}/v3/cluster/member/list`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(1000),
    });
    const list = (await members.json()) as { members?: { name?: unknown }[] };
    return members.ok && (list.members ?? []).some((member) => member.name === name);
  } catch {
    return false;
  }
}

/** True when every thread of `pid` is stopped (state `T` in /proc), false when any runs; undefined when it is gone. */
async function isStopped(pid: number): Promise<boolean | undefined> {
  try {
    const threads = await readdir(`/proc/${pid}/task`);
    for (const thread of threads) {
      const stat = await readFile(`/proc/${pid}/task/${thread}/stat`, 'utf8');
      // The state follows the command name in parentheses, which may itself hold spaces or parentheses.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'T' && state !== 't') return false;
    }
    return true;
  } catch {
    return undefined;
  }
}

/**
 * Waits until the kernel has carried out a SIGSTOP (`stopped` true) or SIGCONT (false) on every thread of `child`.
 * `kill` only queues the signal: on a loaded machine a multi-threaded etcd may go on answering for a while after it,
 * and a test that probes it at once sees a server that is not frozen yet.
 */
async function waitForStopState(child: ChildProcess, stopped: boolean): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = await isStopped(pid);
    if (state === undefined || state === stopped) return;
    if (Date.now() > deadline) {
      throw new Error(`etcd (pid ${pid}) did not ${stopped ? 'stop' : 'continue'} within 10 s of the signal`);
    }
    await sleep(5);
  }
}

function runEtcdctl(etcdctl: string, args: readonly string[], netns?: string): Promise<string> {
  const [file, argv] = inNamespace(netns, etcdctl, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { env: { ...process.env, ETCDCTL_API: '3' } }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`etcdctl ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** `file args`, run inside network namespace `netns` when given (`ip netns exec` execs: the pid is the program's). */
function inNamespace(netns: string | undefined, file: string, args: readonly string[]): [string, string[]] {
  return netns === undefined ? [file, [...args]] : ['ip', ['netns', 'exec', netns, file, ...args]];
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
  const dataDir = await mkdtemp(join(tmpdir(), 'consortium-etcd-'));
  const name = `harness-${randomBytes(6).toString('hex')}`;

  let clientPort = 0;
  let peerPort = 0;
  let child: ChildProcess | undefined;
  let log = '';

  const scheme = options.tls === undefined ? 'http' : 'https';
  const host = options.host ?? '127.0.0.1';
  const etcdctl = findBinary('etcdctl', fallbackEtcdctl);
  let authEnabled = false;
  const ctl = (args: readonly string[]): Promise<string> => {
    if (etcdctl === undefined) throw new Error(`etcdctl is not installed: ${installHint}`);
    const tls = options.tls;
    return runEtcdctl(
      etcdctl,
      [
        `--endpoints=${scheme}://${host}:${clientPort}`,
        '--dial-timeout=2s',
        '--command-timeout=5s',
        ...(tls === undefined
          ? []
          : [`--cacert=${tls.ca}`, `--cert=${tls.client.cert}`, `--key=${tls.client.key}`]),
        ...(authEnabled && options.auth !== undefined ? [`--user=root:${options.auth.rootPassword}`] : []),
        ...args,
      ],
      options.netns,
    );
  };
  // Over TLS or inside a namespace this process cannot fetch /health itself; etcdctl can.
  const healthy =
    options.tls === undefined && options.netns === undefined
      ? (endpoint: string) => isHealthyMember(endpoint, name)
      : () =>
          ctl(['endpoint', 'health']).then(
            () => true,
            () => false,
          );

  const launch = async (): Promise<void> => {
    const endpoint = `${scheme}://${host}:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    log = '';
    const tls = options.tls;
    const [file, args] = inNamespace(options.netns, binary, [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${name}=${peer}`,
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=1000',
      '--logger=zap',
      '--log-level=warn',
      ...(tls === undefined
        ? []
        : [
            `--cert-file=${tls.cert}`,
            `--key-file=${tls.key}`,
            `--trusted-ca-file=${tls.ca}`,
            '--client-cert-auth',
          ]),
    ]);
    const server = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = server;
    killOnExit(server);
    server.stderr.setEncoding('utf8');
    server.stderr.on('data', (chunk: string) => {
      log = (log + chunk).slice(-4000);
    });
    const deadline = Date.now() + startTimeoutMs;
    while (!(await healthy(endpoint))) {
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
    clientPort =
      options.clientPort ??
      (options.netns === undefined ? await (options.pickClientPort?.(attempt) ?? freePort()) : 2379);
    peerPort = options.netns === undefined ? await freePort() : clientPort + 1;
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

  const endpoint = `${scheme}://${host}:${clientPort}`;
  let stopped = false;
  if (options.auth !== undefined) {
    try {
      await enableAuth(ctl, options.auth);
      authEnabled = true;
    } catch (error) {
      child?.kill('SIGKILL');
      if (child !== undefined) await waitForExit(child);
      await rm(dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    current.kill(signal);
    // SIGSTOP freezes the server (a hung etcd) and SIGCONT thaws it; neither ends it. Both are waited for, so that
    // the caller meets the server in the state it asked for.
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      await waitForStopState(current, signal === 'SIGSTOP');
      return;
    }
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
      const status = JSON.parse(await ctl(['endpoint', 'status', '--write-out=json'])) as {
        Status: { header: { revision: number } };
      }[];
      const revision = status[0]?.Status.header.revision;
      if (revision === undefined) throw new Error('etcdctl endpoint status returned no revision');
      await ctl(['compaction', '--physical', String(revision)]);
      return revision;
    },
    etcdctl: ctl,
  };
}

/** Adds root and the users of `auth`, each with a role of its own on its prefix, then turns authentication on. */
async function enableAuth(
  ctl: (args: readonly string[]) => Promise<string>,
  auth: NonNullable<EtcdHarnessOptions['auth']>,
): Promise<void> {
  // --interactive=false reads the password from the argument; etcd wants root to hold the root role.
  await ctl(['user', 'add', `root:${auth.rootPassword}`, '--interactive=false']);
  await ctl(['user', 'grant-role', 'root', 'root']);
  for (const user of auth.users ?? []) {
    await ctl(['user', 'add', `${user.name}:${user.password}`, '--interactive=false']);
    await ctl(['role', 'add', user.name]);
    await ctl(['role', 'grant-permission', user.name, '--prefix=true', 'readwrite', user.prefix]);
    await ctl(['user', 'grant-role', user.name, user.name]);
  }
  await ctl(['auth', 'enable']);
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
