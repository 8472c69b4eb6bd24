/**
 * A lab of separate hosts on one machine, for tests of a cluster across machines: Linux network namespaces
 * (`ip netns`), one per host, each with an `eth0` that is one end of a veth pair whose other end is a port of a
 * bridge in a switch namespace of the lab's own. Addresses (10.231.0.0/24 by default) live only on interfaces inside
 * the lab's namespaces: nothing is added to the machine's own interfaces and nothing is routed off it. A host's
 * cable can be pulled (`linkDown`) and put back. The test process, which stays in the machine's namespace, reaches
 * a service in the lab through a relay (`exposeToTest`: a loopback port here, a Unix socket, a relay inside the
 * lab), and the lab reaches a service of the test process the other way round (`exposeToLab`). `remove()` kills
 * every process inside the lab and deletes its namespaces, links and files; it also runs when the test process
 * exits, and `startLab` first removes what a crashed earlier run left (namespaces named `cslab-<pid>-...` whose
 * process is gone).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Namespaces of every lab start with this; the pid of the test process that made them follows. */
const LAB_PREFIX = 'cslab-';

/** One host of the lab: a network namespace with `eth0` on the lab's bridge. */
export interface LabHost {
  /** The name the test gave it. */
  readonly name: string;
  /** Its network namespace (`ip netns exec <netns> ...`). */
  readonly netns: string;
  /** Its address on the lab's network, e.g. `10.231.0.3`. */
  readonly address: string;
}

/** A port on 127.0.0.1 of the test process that leads into the lab (`exposeToTest`). */
export interface LabPort {
  readonly port: number;
  close(): Promise<void>;
}

/** A running lab. */
export interface Lab {
  /** The lab's network, e.g. `10.231.0.0/24`. */
  readonly network: string;
  /** A directory of the lab's own, removed with it (relays' sockets live here; tests may put files here too). */
  readonly dir: string;
  /** Adds a host: a namespace, its cable to the switch and its address. */
  addHost(name: string): Promise<LabHost>;
  /** Starts `file args` inside `host` (`ip netns exec`, which execs: the child's pid is the program's). */
  spawn(host: LabHost, file: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Runs `file args` inside `host` to the end; resolves with stdout, rejects with stderr on a failure. */
  run(host: LabHost, file: string, args: readonly string[]): Promise<string>;
  /** Pulls `host`'s cable: its switch port goes down and nothing reaches it or leaves it until `linkUp`. */
  linkDown(host: LabHost): Promise<void>;
  /** Puts `host`'s cable back. */
  linkUp(host: LabHost): Promise<void>;
  /**
   * A loopback port of the test process that leads to `target:port` as seen from `from` (a client host of the lab):
   * bytes go through a Unix socket to a relay inside `from`, which connects across the lab's network.
   */
  exposeToTest(from: LabHost, target: string, port: number): Promise<LabPort>;
  /** Makes `port` on 127.0.0.1 of the test process reachable inside the lab at `on.address:labPort`. */
  exposeToLab(on: LabHost, labPort: number, port: number): Promise<{ close(): Promise<void> }>;
  /** Kills every process in the lab and removes its namespaces, links and directory; safe to call twice. */
  remove(): Promise<void>;
}

/** Options of `startLab`. */
export interface LabOptions {
  /** The first three octets of the lab's /24; default `10.231.0`. */
  readonly subnet?: string;
}

function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
    });
  });
}

function ipSync(args: readonly string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/**
 * Why a lab cannot run here, or undefined when it can: it needs root, `ip` (iproute2) and the right to make network
 * namespaces (a container without CAP_SYS_ADMIN has not). Makes and removes one namespace to find out.
 */
export async function labUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces exist only on Linux';
  if (process.getuid?.() !== 0) return 'making network namespaces needs root';
  const probe = `${LAB_PREFIX}${process.pid}-probe`;
  try {
    await ip(['netns', 'add', probe]);
  } catch (error) {
    const message = (error as Error).message;
    return /ENOENT|not found/.test(message)
      ? 'the ip command (Debian package iproute2) is not installed'
      : `cannot make a network namespace: ${message}`;
  } finally {
    ipSync(['netns', 'delete', probe]);
  }
  return undefined;
}

/** Kills every process in `netns` and deletes it; quiet when it is already gone. */
function destroyNamespace(netns: string): void {
  for (const pid of ipSync(['netns', 'pids', netns])
    .split(/\s+/)
    .filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  // Deleting a namespace takes its veth ends, and so their peers, with it.
  ipSync(['netns', 'delete', netns]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the namespaces of labs whose test process is gone (a crashed or killed earlier run). */
export function removeStaleLabs(): readonly string[] {
  const removed: string[] = [];
  for (const line of ipSync(['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = new RegExp(`^${LAB_PREFIX}(\\d+)-`).exec(name)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    destroyNamespace(name);
    removed.push(name);
  }
  return removed;
}

/** A relay run with `node -e` inside a namespace: listens on `argv[1]`, connects each client to `argv[2]`. */
const RELAY = `
const net = require('node:net');
const where = (s) => (s.startsWith('/') ? { path: s } : { host: s.split(':')[0], port: Number(s.split(':')[1]) });
const server = net.createServer((client) => {
  const upstream = net.connect(where(process.argv[2]));
  const drop = () => { client.destroy(); upstream.destroy(); };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(where(process.argv[1]), () => process.stdout.write('ready\\n'));
`;

/** Pipes each connection `server` accepts to a new connection made by `dial`. */
function relayTo(server: Server, dial: () => Socket, links: Set<Socket>): void {
  server.on('connection', (client) => {
    const upstream = dial();
    links.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      links.delete(client);
      links.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

function closeServer(server: Server, links: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const link of links) link.destroy();
    links.clear();
    server.close(() => {
      resolve();
    });
  });
}

/**
 * Starts an empty lab: a switch namespace with a bridge. Removes leftovers of crashed runs first. Throws when
 * `labUnavailable()` would say why.
 */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const unavailable = await labUnavailable();
  if (unavailable !== undefined) throw new Error(unavailable);
  removeStaleLabs();
  const subnet = options.subnet ?? '10.231.0';
  const stem = `${LAB_PREFIX}${process.pid}-${Math.random().toString(36).slice(2, 6)}-`;
  const namespaces: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'consortium-lab-'));
  const children = new Set<ChildProcess>();
  const closers: (() => Promise<void>)[] = [];
  let removed = false;

  const removeNow = (): void => {
    if (removed) return;
    removed = true;
    for (const child of children) child.kill('SIGKILL');
    for (const netns of namespaces.reverse()) destroyNamespace(netns);
    rmSync(dir, { recursive: true, force: true });
  };
  const onExit = (): void => {
    removeNow();
  };
  process.once('exit', onExit);

  const switchNs = `${stem}switch`;
  try {
    await ip(['netns', 'add', switchNs]);
    namespaces.push(switchNs);
    await ip(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', switchNs, 'link', 'set', 'br0', 'up']);
  } catch (error) {
    removeNow();
    throw error;
  }

  const hosts: LabHost[] = [];
  const portOf = (host: LabHost): string => `p${hosts.indexOf(host)}`;

  const spawnIn = (host: LabHost, file: string, args: readonly string[], spawnOptions: SpawnOptions = {}) => {
    const child = spawn('ip', ['netns', 'exec', host.netns, file, ...args], spawnOptions);
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };

  /** Starts a relay inside `host` and waits until it listens. */
  const relayIn = async (host: LabHost, listen: string, target: string): Promise<ChildProcess> => {
    const child = spawnIn(host, process.execPath, ['-e', RELAY, listen, target], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready')) resolve();
      });
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code) => {
        reject(new Error(`relay in ${host.name} (${listen} -> ${target}) exited ${String(code)}: ${output}`));
      });
    });
    return child;
  };

  const lab: Lab = {
    network: `${subnet}.0/24`,
    dir,
    addHost: async (name) => {
      if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`lab host names are [a-z0-9-]{1,20}, not ${name}`);
      if (hosts.some((h) => h.name === name)) throw new Error(`the lab already has a host ${name}`);
      const host: LabHost = { name, netns: `${stem}${name}`, address: `${subnet}.${hosts.length + 2}` };
      hosts.push(host);
      await ip(['netns', 'add', host.netns]);
      namespaces.push(host.netns);
      const port = portOf(host);
      // Both ends are made where they live: no interface ever appears in the machine's own namespace.
      await ip([
        '-n',
        switchNs,
        'link',
        'add',
        port,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        host.netns,
      ]);
      await ip(['-n', switchNs, 'link', 'set', port, 'master', 'br0']);
      await ip(['-n', switchNs, 'link', 'set', port, 'up']);
      await ip(['-n', host.netns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', host.netns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      await ip(['-n', host.netns, 'link', 'set', 'eth0', 'up']);
      return host;
    },
    spawn: spawnIn,
    run: (host, file, args) =>
      new Promise((resolve, reject) => {
        execFile('ip', ['netns', 'exec', host.netns, file, ...args], (error, stdout, stderr) => {
          if (error === null) resolve(stdout);
          else
            reject(
              new Error(
                `${file} ${args.join(' ')} in ${host.name} failed: ${stderr.trim() || error.message}`,
              ),
            );
        });
      }),
    linkDown: async (host) => {
      await ip(['-n', switchNs, 'link', 'set', portOf(host), 'down']);
    },
    linkUp: async (host) => {
      await ip(['-n', switchNs, 'link', 'set', portOf(host), 'up']);
    },
    exposeToTest: async (from, target, port) => {
      const socket = join(dir, `to-${target}-${port}-${from.name}.sock`);
      const relay = await relayIn(from, socket, `${target}:${port}`);
      const links = new Set<Socket>();
      const server = createServer();
      relayTo(server, () => connect({ path: socket }), links);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          resolve();
        });
      });
      const close = async (): Promise<void> => {
        relay.kill('SIGKILL');
        await closeServer(server, links);
      };
      closers.push(close);
      return { port: (server.address() as AddressInfo).port, close };
    },
    exposeToLab: async (on, labPort, port) => {
      const socket = join(dir, `from-${port}-${on.name}.sock`);
      const links = new Set<Socket>();
      const server = createServer();
      relayTo(server, () => connect({ port, host: '127.0.0.1' }), links);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: socket }, () => {
          resolve();
        });
      });
      const relay = await relayIn(on, `${on.address}:${labPort}`, socket);
      const close = async (): Promise<void> => {
        relay.kill('SIGKILL');
        await closeServer(server, links);
      };
      closers.push(close);
      return { close };
    },
    remove: async () => {
      if (removed) return;
      for (const close of closers.splice(0)) await close().catch(() => undefined);
      removeNow();
      process.off('exit', onExit);
    },
  };
  return lab;
}
