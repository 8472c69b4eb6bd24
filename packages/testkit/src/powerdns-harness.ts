/**
 * A real PowerDNS Authoritative Server for integration tests: Debian's `pdns-server` with the `pdns-backend-sqlite3`
 * backend, its own SQLite database made from Debian's schema in a fresh temporary directory, the HTTP API
 * (webserver) on a free loopback port and DNS (UDP and TCP) on another. Every path it writes (database, control
 * socket, pid file) is inside that directory, so it runs as any user, root or not. Caches are off so that a query
 * answers what the API just wrote. `kill` and `restart` make PowerDNS unreachable and bring it back on the same
 * ports and data; `stop` removes everything.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { killOnExit, sleep, waitForExit } from './servers.js';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { freePort } from './helpers.js';

/** Where Debian's packages put the server, the backend and the backend's schema. */
export const POWERDNS_PATHS = {
  server: '/usr/sbin/pdns_server',
  // pdns-backend-sqlite3's schema; the package also installs the backend module where pdns_server looks.
  schema: '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql',
  dig: '/usr/bin/dig',
} as const;

const installHint =
  'install the Debian packages `pdns-server pdns-backend-sqlite3 dnsutils` (`apt-get install pdns-server ' +
  'pdns-backend-sqlite3 dnsutils`); `.ci/run` and `make test` install them through scripts/install-system-deps.sh';

/** Options of `startPowerDns`. */
export interface PowerDnsHarnessOptions {
  /** The API key; default a fresh random one. */
  readonly apiKey?: string;
  /** Zones to create at start (`example.com`, `2.1.10.in-addr.arpa`), each with NS `ns1.<zone>.`. */
  readonly zones?: readonly string[];
  /** How long to wait for the API to answer; default 20 s. */
  readonly startTimeoutMs?: number;
}

/** One answer of the harness's API helper. */
export interface PowerDnsAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** A running PowerDNS owned by a test. */
export interface PowerDnsHarness {
  /** The API's base URL, `http://127.0.0.1:<port>` (the API lives under `/api/v1`). */
  readonly apiUrl: string;
  /** The API key (header `X-API-Key`). */
  readonly apiKey: string;
  /** The DNS port on 127.0.0.1 (UDP and TCP). */
  readonly dnsPort: number;
  /** The directory holding the config, the database, the control socket and the pid file. */
  readonly dir: string;
  /** Calls the API with the right key: `api('PATCH', '/zones/example.com.', {...})` under `/api/v1/servers/localhost`. */
  api(method: string, path: string, body?: unknown): Promise<PowerDnsAnswer>;
  /** Creates a Native zone (`name` with or without the final dot) with NS `ns1.<zone>.`; an existing one is kept. */
  createZone(name: string): Promise<void>;
  /** Deletes a zone; a missing one is fine. */
  deleteZone(name: string): Promise<void>;
  /** Asks the DNS port with Debian's `dig +short` and returns the answer lines (empty when there is none). */
  dig(name: string, type?: string): Promise<string[]>;
  /**
   * Asks the DNS port from this process (Node's resolver, no `dig` to start: much faster on a busy machine) and
   * returns the A addresses or PTR names (without the final dot), sorted; empty when there is none.
   */
  query(name: string, type?: 'A' | 'PTR'): Promise<string[]>;
  /** Kills the server (SIGKILL) so that it is unreachable; `restart()` brings it back. */
  kill(): Promise<void>;
  /** Starts the server again (after `kill`) on the same ports and database. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory; safe to call more than once. */
  stop(): Promise<void>;
}

/** The first of Debian's files the harness needs that is missing, or undefined when all are there. */
export function missingPowerDnsFile(): string | undefined {
  for (const path of Object.values(POWERDNS_PATHS)) {
    try {
      accessSync(path, fsConstants.R_OK);
    } catch {
      return path;
    }
  }
  return undefined;
}

/** A zone's name as PowerDNS spells it: lowercase, with the final dot. */
function canonical(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/**
 * Makes a database from Debian's schema in a fresh temporary directory and starts PowerDNS on it; waits until the
 * API answers. Throws when a package is missing (saying what to install) or the server does not start in time.
 */
export async function startPowerDns(options: PowerDnsHarnessOptions = {}): Promise<PowerDnsHarness> {
  const missing = missingPowerDnsFile();
  if (missing !== undefined) throw new Error(`PowerDNS is not installed (no ${missing}): ${installHint}`);
  const apiKey = options.apiKey ?? `key-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const dir = await mkdtemp(join(tmpdir(), 'consortium-pdns-'));
  const database = join(dir, 'pdns.sqlite3');
  const db = new Database(database);
  try {
    db.exec(readFileSync(POWERDNS_PATHS.schema, 'utf8'));
  } finally {
    db.close();
  }

  let apiPort = 0;
  let dnsPort = 0;
  let child: ChildProcess | undefined;
  let log = '';
  const apiUrl = (): string => `http://127.0.0.1:${String(apiPort)}`;

  const api = async (method: string, path: string, body?: unknown): Promise<PowerDnsAnswer> => {
    const response = await fetch(`${apiUrl()}/api/v1/servers/localhost${path}`, {
      method,
      headers: {
        'x-api-key': apiKey,
        // PowerDNS answers 400 to `Accept: */*`, fetch's default.
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      // PowerDNS answers some errors (401, 404) in plain text.
    }
    return { status: response.status, body: parsed };
  };

  const answers = async (): Promise<boolean> => {
    try {
      return (await api('GET', '')).status === 200;
    } catch {
      return false;
    }
  };

  const writeConfig = (): Promise<void> =>
    writeFile(
      join(dir, 'pdns.conf'),
      [
        'launch=gsqlite3',
        `gsqlite3-database=${database}`,
        // No fsync per change: a test's writes need not survive a power cut (a killed server keeps them).
        'gsqlite3-pragma-synchronous=0',
        'local-address=127.0.0.1',
        `local-port=${String(dnsPort)}`,
        'api=yes',
        `api-key=${apiKey}`,
        'webserver=yes',
        'webserver-address=127.0.0.1',
        `webserver-port=${String(apiPort)}`,
        'webserver-allow-from=127.0.0.0/8',
        // The control socket and the pid file go here instead of /run/pdns, which only root may write.
        `socket-dir=${dir}`,
        'daemon=no',
        'guardian=no',
        'disable-syslog=yes',
        // No security poll: it would ask the internet's DNS at start.
        'security-poll-suffix=',
        // No caches: a query answers what the API has just written.
        'cache-ttl=0',
        'query-cache-ttl=0',
        'negquery-cache-ttl=0',
        'zone-cache-refresh-interval=0',
        'loglevel=4',
        '',
      ].join('\n'),
    );

  const launch = async (): Promise<void> => {
    log = '';
    await writeConfig();
    const server = spawn(POWERDNS_PATHS.server, [`--config-dir=${dir}`], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = server;
    killOnExit(server, dir);
    const collect = (chunk: string): void => {
      log = (log + chunk).slice(-4000);
    };
    server.stdout.setEncoding('utf8').on('data', collect);
    server.stderr.setEncoding('utf8').on('data', collect);
    const deadline = Date.now() + startTimeoutMs;
    while (!(await answers())) {
      if (server.exitCode !== null || server.signalCode !== null) {
        throw new Error(
          `pdns_server exited during start-up (${String(server.exitCode ?? server.signalCode)}): ${log}`,
        );
      }
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        await waitForExit(server);
        throw new Error(`pdns_server's API did not answer within ${String(startTimeoutMs)} ms: ${log}`);
      }
      await sleep(50);
    }
  };

  // A port picked as free may be taken before PowerDNS binds it (or be free for TCP but not UDP); fresh picks
  // make that race harmless.
  for (let attempt = 1; ; attempt++) {
    apiPort = await freePort();
    dnsPort = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const kill = async (): Promise<void> => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    current.kill('SIGKILL');
    await waitForExit(current);
  };

  const createZone = async (name: string): Promise<void> => {
    const zone = canonical(name.toLowerCase());
    const answer = await api('POST', '/zones', {
      name: zone,
      kind: 'Native',
      nameservers: [`ns1.${zone}`],
    });
    if (answer.status === 201) return;
    if (answer.status === 409) return; // already there
    throw new Error(
      `PowerDNS did not create zone ${zone}: ${String(answer.status)} ${JSON.stringify(answer.body)}`,
    );
  };

  for (const zone of options.zones ?? []) await createZone(zone);

  let stopped = false;
  return {
    apiUrl: apiUrl(),
    apiKey,
    dnsPort,
    dir,
    api,
    createZone,
    deleteZone: async (name) => {
      const answer = await api('DELETE', `/zones/${canonical(name.toLowerCase())}`);
      if (answer.status !== 204 && answer.status !== 404) {
        throw new Error(`PowerDNS did not delete zone ${name}: ${String(answer.status)}`);
      }
    },
    dig: (name, type = 'A') =>
      new Promise((resolve, reject) => {
        execFile(
          POWERDNS_PATHS.dig,
          ['@127.0.0.1', '-p', String(dnsPort), '+short', '+tries=1', '+time=5', name, type],
          { encoding: 'utf8' },
          (error, stdout, stderr) => {
            if (error !== null) reject(new Error(`dig ${name} ${type} failed: ${stderr || error.message}`));
            else resolve(stdout.split('\n').filter((line) => line !== ''));
          },
        );
      }),
    query: async (name, type = 'A') => {
      const resolver = new Resolver({ timeout: 5000, tries: 1 });
      resolver.setServers([`127.0.0.1:${String(dnsPort)}`]);
      try {
        const answers = type === 'A' ? await resolver.resolve4(name) : await resolver.resolvePtr(name);
        return [...answers].sort();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
        throw error;
      }
    },
    kill,
    restart: async () => {
      if (stopped) throw new Error('PowerDNS harness was stopped; start a new one');
      await kill();
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const timer = child === undefined ? undefined : setTimeout(() => child?.kill('SIGKILL'), 10_000);
      try {
        if (child !== undefined && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await waitForExit(child);
        }
      } finally {
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
