/**
 * A real PostgreSQL server for integration tests: Debian's binaries (`/usr/lib/postgresql/<version>/bin`), `initdb`
 * into a fresh temporary directory, `postgres` on a free loopback port with durability switched off for speed.
 * PostgreSQL refuses to run as root, so when the tests run as root the server runs as an unprivileged system user
 * (`consortium-test`, created on first use, else `nobody`) that owns the directory. Tests share one server per
 * test file and isolate themselves with a fresh database each (`createDatabase`).
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { isExecutable, killOnExit, sleep, waitForExit } from './servers.js';
import { readdirSync } from 'node:fs';
import { chmod, chown, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './helpers.js';

/** Options of `startPostgres`. */
export interface PostgresHarnessOptions {
  /** The directory of `initdb` and `postgres`; default the newest `/usr/lib/postgresql/<version>/bin`. */
  readonly binDir?: string;
  /** How long to wait for the server to accept connections; default 30 s. */
  readonly startTimeoutMs?: number;
  /** The address to listen on; default 127.0.0.1. */
  readonly host?: string;
  /**
   * Run the server inside this network namespace (`ip netns exec`, see `netns.ts`) on port 5432 unless `port` says
   * otherwise; the harness itself then talks to it over its Unix socket, which namespaces do not separate.
   */
  readonly netns?: string;
  /** The port; default a free one (5432 in a namespace). */
  readonly port?: number;
  /**
   * Serve TLS (`ssl=on`) with this certificate and key, and trust client certificates signed by `ca` (PEM files,
   * copied into the server's directory for its user: PostgreSQL wants its key readable by itself only).
   */
  readonly ssl?: { readonly cert: string; readonly key: string; readonly ca: string };
  /**
   * pg_hba.conf lines replacing initdb's, e.g. `hostssl all consortium 10.231.0.0/24 cert`; the harness keeps
   * `local all all trust` first and then talks to the server over its Unix socket.
   */
  readonly hba?: readonly string[];
}

/** A running PostgreSQL server owned by a test. */
export interface PostgresHarness {
  /** The superuser's URL of the `postgres` database, password included (`postgres://postgres:...@127.0.0.1:port/postgres`). */
  readonly url: string;
  /** The server's port (on 127.0.0.1 unless `host` says otherwise). */
  readonly port: number;
  /** The superuser's password (the server refuses loopback TCP connections without it). */
  readonly password: string;
  /** The data directory; kept across `kill` and `restart`, removed by `stop`. */
  readonly dataDir: string;
  /** The OS user the server runs as. */
  readonly osUser: string;
  /** Creates an empty database (named `name`, or a fresh name) and returns the superuser's URL of it. */
  createDatabase(name?: string): Promise<string>;
  /** Drops a database made by `createDatabase`, ending its connections first; a missing one is a no-op. */
  dropDatabase(url: string): Promise<void>;
  /** Runs one SQL statement on the `postgres` database as the superuser and returns its rows. */
  query(sql: string, params?: readonly unknown[]): Promise<readonly Record<string, unknown>[]>;
  /** Sends `signal` (default SIGKILL) to the postmaster and waits for it to exit; `restart()` brings it back. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server (fast shutdown) if it runs and starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Stops the server for good and removes its directory; safe to call more than once. */
  stop(): Promise<void>;
}

const installHint =
  'install the Debian package `postgresql` (`apt-get install postgresql`); `.ci/run` and `make test` install it ' +
  'through scripts/install-system-deps.sh';

/** The system user created to run test servers when the tests run as root. */
export const POSTGRES_TEST_USER = 'consortium-test';

/** The newest Debian PostgreSQL bin directory with `initdb` and `postgres`; undefined when there is none. */
export function findPostgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(root);
  } catch {
    return undefined;
  }
  const usable = versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, 'bin'))
    .filter((dir) => isExecutable(join(dir, 'initdb')) && isExecutable(join(dir, 'postgres')));
  return usable[0];
}

function run(file: string, args: readonly string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${file} ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** The uid and gid of `user`, or undefined when there is no such user. */
async function lookupUser(user: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const uid = Number((await run('id', ['-u', user])).trim());
    const gid = Number((await run('id', ['-g', user])).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Who runs the server: the current user unless that is root; as root, `consortium-test` (created as a system user
 * when missing), falling back to `nobody` when it cannot be created.
 */
async function serverUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  let found = await lookupUser(POSTGRES_TEST_USER);
  if (found === undefined) {
    try {
      await run('useradd', [
        '--system',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        POSTGRES_TEST_USER,
      ]);
    } catch {
      // Another test process may have created it at the same moment; look again below.
    }
    found = await lookupUser(POSTGRES_TEST_USER);
  }
  if (found !== undefined) return { name: POSTGRES_TEST_USER, ...found };
  const nobody = await lookupUser('nobody');
  if (nobody === undefined) throw new Error('Cannot find an unprivileged user to run PostgreSQL as');
  return { name: 'nobody', ...nobody };
}

/** `file args` run as `user` (through setpriv, which execs: the child's pid is the program's). */
function asUser(user: OsUser | undefined, file: string, args: readonly string[]): [string, string[]] {
  if (user === undefined) return [file, [...args]];
  return [
    'setpriv',
    [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--reset-env', file, ...args],
  ];
}

/** Quotes an SQL identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

let databases = 0;

/**
 * Initialises a cluster in a fresh temporary directory and starts PostgreSQL on a free loopback port; waits until it
 * accepts connections. Throws when PostgreSQL is not installed (saying what to install) or does not start in time.
 */
export async function startPostgres(options: PostgresHarnessOptions = {}): Promise<PostgresHarness> {
  const binDir = options.binDir ?? findPostgresBinDir();
  if (binDir === undefined) throw new Error(`PostgreSQL is not installed: ${installHint}`);
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const user = await serverUser();
  const root = await mkdtemp(join(tmpdir(), 'consortium-pg-'));
  const dataDir = join(root, 'data');
  const password = `test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const cleanupRoot = (): Promise<void> => rm(root, { recursive: true, force: true });
  try {
    if (user !== undefined) await chown(root, user.uid, user.gid);
    const pwfile = join(root, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (user !== undefined) await chown(pwfile, user.uid, user.gid);
    const [file, args] = asUser(user, join(binDir, 'initdb'), [
      `--pgdata=${dataDir}`,
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await run(file, args, root);
    await rm(pwfile);
    if (options.hba !== undefined) {
      await writeFile(join(dataDir, 'pg_hba.conf'), ['local all all trust', ...options.hba, ''].join('\n'));
    }
    if (options.ssl !== undefined) {
      for (const [from, to] of [
        [options.ssl.cert, 'server.crt'],
        [options.ssl.key, 'server.key'],
        [options.ssl.ca, 'ca.crt'],
      ] as const) {
        await copyFile(from, join(root, to));
        await chmod(join(root, to), 0o600);
        if (user !== undefined) await chown(join(root, to), user.uid, user.gid);
      }
    }
  } catch (error) {
    await cleanupRoot();
    throw error;
  }

  let port = 0;
  let child: ChildProcess | undefined;
  let log = '';
  const host = options.host ?? '127.0.0.1';
  const urlOf = (database: string): string =>
    `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
  // Inside a namespace, or with pg_hba.conf of the test's own, the harness comes in through the Unix socket.
  const overSocket = options.netns !== undefined || options.hba !== undefined;
  const adminConfig = (database: string): pg.ClientConfig =>
    overSocket ? { host: root, port, user: 'postgres', database } : { connectionString: urlOf(database) };

  const canConnect = async (): Promise<boolean> => {
    const client = new pg.Client({ ...adminConfig('postgres'), connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  const launch = async (): Promise<void> => {
    log = '';
    // fsync=off: nothing waits for the disk, yet a killed server keeps what it committed (the OS has it). Not
    // synchronous_commit=off, which would lose the last commits on a kill and make crash tests lie.
    const ssl = options.ssl;
    const [userFile, userArgs] = asUser(user, join(binDir, 'postgres'), [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      `listen_addresses=${host}`,
      ...(ssl === undefined
        ? []
        : [
            '-c',
            'ssl=on',
            '-c',
            `ssl_cert_file=${join(root, 'server.crt')}`,
            '-c',
            `ssl_key_file=${join(root, 'server.key')}`,
            '-c',
            `ssl_ca_file=${join(root, 'ca.crt')}`,
          ]),
      '-c',
      `unix_socket_directories=${root}`,
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=32MB',
      '-c',
      'log_min_messages=warning',
      '-c',
      'logging_collector=off',
    ]);
    const [file, args] =
      options.netns === undefined
        ? [userFile, userArgs]
        : ['ip', ['netns', 'exec', options.netns, userFile, ...userArgs]];
    const server = spawn(file, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    child = server;
    killOnExit(server, root);
    server.stderr.setEncoding('utf8');
    server.stderr.on('data', (chunk: string) => {
      log = (log + chunk).slice(-4000);
    });
    const deadline = Date.now() + startTimeoutMs;
    while (!(await canConnect())) {
      if (server.exitCode !== null || server.signalCode !== null) {
        throw new Error(`postgres exited during start-up (${server.exitCode ?? server.signalCode}): ${log}`);
      }
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        await waitForExit(server);
        throw new Error(`postgres did not accept connections within ${startTimeoutMs} ms: ${log}`);
      }
      await sleep(50);
    }
  };

  // A port picked as free may be taken before postgres binds it; a few fresh picks make that race harmless.
  for (let attempt = 1; ; attempt++) {
    port = options.port ?? (options.netns === undefined ? await freePort() : 5432);
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= 3) {
        await cleanupRoot();
        throw error;
      }
    }
  }

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    current.kill(signal);
    await waitForExit(current);
  };

  const shutdown = async (): Promise<void> => {
    const current = child;
    if (current === undefined) return;
    // SIGINT is PostgreSQL's fast shutdown: it ends every session and exits without waiting for clients.
    const timer = setTimeout(() => current.kill('SIGKILL'), 10_000);
    try {
      await kill('SIGINT');
    } finally {
      clearTimeout(timer);
    }
  };

  const query = async (sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> => {
    const client = new pg.Client(adminConfig('postgres'));
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<Record<string, unknown>>(sql, [...params])).rows;
    } finally {
      await client.end();
    }
  };

  let stopped = false;
  return {
    get url() {
      return urlOf('postgres');
    },
    port,
    password,
    dataDir,
    osUser: user?.name ?? 'the current user',
    createDatabase: async (name) => {
      databases += 1;
      const database = name ?? `test_${process.pid}_${databases}`;
      await query(`CREATE DATABASE ${ident(database)}`);
      return urlOf(database);
    },
    dropDatabase: async (url) => {
      const database = decodeURIComponent(new URL(url).pathname.slice(1));
      await query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
    },
    query,
    kill,
    restart: async () => {
      if (stopped) throw new Error('PostgreSQL harness was stopped; start a new one');
      await shutdown();
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await shutdown();
      await cleanupRoot();
    },
  };
}
