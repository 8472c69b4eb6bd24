/**
 * The store on SQLite and on PostgreSQL, through Consortium and directly: GET of one node and a list page of 100
 * through the web process (HTTP, auth, store adapter, JSON) against the same query issued with the driver in this
 * process, and a no-op job through separate web → master → worker processes over etcd against one committed
 * single-row write with the driver. Each figure is printed with its ratio to the driver's (how many times slower).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Store } from '@consortium/core';
import { openPostgresStore } from '@consortium/store-postgres';
import { openSqliteStore } from '@consortium/store-sqlite';
import { startEtcd, startPostgres } from '@consortium/testkit';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const NODES = 1_000;
const CONSORTIUM = fileURLToPath(new URL('../packages/server/bin/consortium.js', import.meta.url));
const NOOP = fileURLToPath(new URL('./noop-plugin.ts', import.meta.url));

/** Latencies of one figure, in milliseconds. */
interface Figure {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

/** Runs `fn` one call at a time for `SECONDS` (after a short warm-up) and keeps every latency. */
async function timed(fn: () => Promise<unknown>, seconds = SECONDS): Promise<Figure> {
  const warm = performance.now() + 300;
  while (performance.now() < warm) await fn();
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const t0 = performance.now();
    await fn();
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const at = (p: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
  return { n: latencies.length, p50: at(0.5), p99: at(0.99), mean };
}

/** The direct driver queries of one store: what Consortium's figures are compared with. */
interface Direct {
  getNode(name: string): Promise<unknown>;
  listPage(): Promise<unknown>;
  write(i: number): Promise<unknown>;
  close(): Promise<void>;
}

function sqliteDirect(path: string): Direct {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS bench_writes (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)');
  const get = db.prepare('SELECT kind, name, attrs, revision FROM nodes WHERE kind = ? AND name = ?');
  const list = db.prepare(
    'SELECT kind, name, attrs, revision FROM nodes WHERE kind = ? ORDER BY name LIMIT 100',
  );
  const write = db.prepare('INSERT INTO bench_writes (at) VALUES (?)');
  return {
    getNode: (name) => Promise.resolve(get.get('noop', name)),
    listPage: () => Promise.resolve(list.all('noop')),
    write: (i) => Promise.resolve(write.run(i)),
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}

function postgresDirect(url: string): Direct {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  let ready: Promise<unknown> | undefined;
  const table = (): Promise<unknown> =>
    (ready ??= pool.query(
      'CREATE TABLE IF NOT EXISTS bench_writes (id bigserial PRIMARY KEY, at bigint NOT NULL)',
    ));
  return {
    getNode: (name) =>
      pool.query('SELECT kind, name, attrs, revision FROM nodes WHERE kind = $1 AND name = $2', [
        'noop',
        name,
      ]),
    listPage: () =>
      pool.query('SELECT kind, name, attrs, revision FROM nodes WHERE kind = $1 ORDER BY name LIMIT 100', [
        'noop',
      ]),
    write: async (i) => {
      await table();
      return pool.query('INSERT INTO bench_writes (at) VALUES ($1)', [i]);
    },
    close: () => pool.end(),
  };
}

/** Web, master and worker as separate processes over etcd, on the store `store` names. */
async function cluster(
  etcd: string,
  store: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; token: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-store-bench-'));
  const config = join(dir, 'cluster.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      cluster: 'bench',
      dataDir: dir,
      store,
      coordinator: { driver: 'etcd', endpoints: [etcd], prefix: `/bench/store-${Date.now()}/` },
      observe: { intervalSeconds: 0 },
      log: { level: 'warn', format: 'json' },
      plugins: [{ module: NOOP }],
    }),
  );
  const made = spawnSync(
    process.execPath,
    [CONSORTIUM, 'token', 'create', '--role', 'admin', '--config', config],
    {
      encoding: 'utf8',
      env,
    },
  );
  if (made.status !== 0) throw new Error(`token create failed: ${made.stderr}`);
  const children: ChildProcess[] = [];
  const start = (role: string): ChildProcess => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CONSORTIUM, role, '--config', config, '--port', '0'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env,
      },
    );
    children.push(child);
    return child;
  };
  const web = start('web');
  start('master');
  start('worker');
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    web.once('exit', (code) => {
      reject(new Error(`the web process exited with ${String(code)}`));
    });
    web.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /^url: (\S+)$/m.exec(out);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
  });
  return {
    url,
    token: made.stdout.trim(),
    stop: async () => {
      for (const child of children) child.kill('SIGTERM');
      await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function fill(store: Store): Promise<void> {
  for (let i = 0; i < NODES; i++) {
    await store.insertNode(
      'noop',
      `n-${String(i).padStart(5, '0')}`,
      { a: `value-${i}`, b: 'x' },
      Date.now(),
    );
  }
  await store.close();
}

function row(name: string, through: Figure, direct: Figure): string {
  return (
    `  ${name.padEnd(34)} p50 ${through.p50.toFixed(2).padStart(7)} ms  p99 ${through.p99.toFixed(2).padStart(7)} ms` +
    `   driver p50 ${direct.p50.toFixed(3).padStart(7)} ms   ratio ${(through.p50 / direct.p50).toFixed(1).padStart(6)}×`
  );
}

async function measureStore(
  label: string,
  etcd: string,
  storeConfig: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  direct: Direct,
): Promise<void> {
  const running = await cluster(etcd, storeConfig, env);
  try {
    const headers = { authorization: `Bearer ${running.token}`, 'content-type': 'application/json' };
    const get = async (path: string): Promise<void> => {
      const r = await fetch(`${running.url}${path}`, { headers });
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
      await r.arrayBuffer();
    };
    let k = 0;
    const pick = (): string => `n-${String(k++ % NODES).padStart(5, '0')}`;
    const getApi = await timed(() => get(`/api/inventory/noop/${pick()}`));
    const getDirect = await timed(() => direct.getNode(pick()));
    const listApi = await timed(() => get('/api/inventory/noop?limit=100'));
    const listDirect = await timed(() => direct.listPage());
    let j = 0;
    const job = async (): Promise<void> => {
      const r = await fetch(`${running.url}/api/inventory/noop?wait=30s`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: `job-${j++}`, attrs: { a: 'x', b: 'y' } }),
      });
      const body = (await r.json()) as { state?: string };
      if (body.state !== 'succeeded') throw new Error(`no-op job ${String(body.state)}`);
    };
    // The first jobs wait for a leader; they are not measured.
    await job();
    const jobApi = await timed(job);
    let w = 0;
    const writeDirect = await timed(() => direct.write(w++));
    console.log(`\n${label}`);
    console.log(row('GET one node (1,000 nodes)', getApi, getDirect));
    console.log(row('list page of 100', listApi, listDirect));
    console.log(row('no-op job web→master→worker', jobApi, writeDirect));
    console.log(
      `  (${jobApi.n} jobs one at a time; the driver figure of a job is one committed single-row insert)`,
    );
  } finally {
    await running.stop();
  }
}

/** `make bench BENCH=store`. */
export async function storeBench(): Promise<void> {
  const etcd = await startEtcd();
  const postgres = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'consortium-store-bench-sqlite-'));
  try {
    const sqlitePath = join(dir, 'consortium.db');
    await fill(await openSqliteStore({ path: sqlitePath }));
    const sqlite = sqliteDirect(sqlitePath);
    try {
      await measureStore(
        `store: SQLite (${SECONDS}s per figure)`,
        etcd.endpoint,
        { driver: 'sqlite', path: sqlitePath },
        process.env,
        sqlite,
      );
    } finally {
      await sqlite.close();
    }
    const url = await postgres.createDatabase('bench');
    await fill(await openPostgresStore({ url }));
    const direct = postgresDirect(url);
    try {
      const parsed = new URL(url);
      const password = decodeURIComponent(parsed.password);
      parsed.password = '';
      await measureStore(
        `store: PostgreSQL (${SECONDS}s per figure)`,
        etcd.endpoint,
        { driver: 'postgres', url: parsed.toString() },
        { ...process.env, CONSORTIUM_STORE_PASSWORD: password },
        direct,
      );
    } finally {
      await direct.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await postgres.stop();
    await etcd.stop();
  }
}
