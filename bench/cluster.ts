/**
 * Cluster benchmarks against a real etcd started for the run:
 * 1. raw etcd put rate from Node (8 puts in flight): the baseline of the queue figures;
 * 2. queue throughput (enqueue → claim → ack of no-op tasks; the producer keeps 8 enqueues in flight, each worker
 *    claims up to 16 tasks at a time and acks them side by side) with 1, 2 and 4 workers, as a ratio of (1);
 * 3. the peer measured the same way: BullMQ on a Redis started here with `appendfsync always` (every write on disk
 *    before the answer, the durability etcd gives), as a ratio of that Redis's own durable write rate;
 * 4. no-op jobs through separate web, master and worker processes, on SQLite and on PostgreSQL: rate, p50 and p99
 *    with 16 clients each waiting for its job, then a burst of 1,000 jobs submitted without waiting.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCoordinator } from '@consortium/coord-etcd';
import { startEtcd, startPostgres } from '@consortium/testkit';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const CONSORTIUM = fileURLToPath(new URL('../packages/server/bin/consortium.js', import.meta.url));
const NOOP = fileURLToPath(new URL('./noop-plugin.ts', import.meta.url));
const REDIS_SERVER = '/usr/bin/redis-server';
/** Writes the baselines and the producers keep in flight. */
const IN_FLIGHT = 8;
/** Tasks each queue worker takes at a time (BullMQ's workers get the same concurrency). */
const WORKER_BATCH = 16;
const E2E_CLIENTS = 16;
/** Jobs of the burst; BENCH_BURST=100 for a quick look on a slow machine. */
const BURST = Number(process.env['BENCH_BURST'] ?? 1000);
/** BENCH_CLUSTER=jobs runs only the no-op jobs through the processes (default: every figure). */
const PARTS = process.env['BENCH_CLUSTER'] ?? 'all';
/** BENCH_STORES=sqlite (or postgres) limits the job figures to one store. */
const STORES = (process.env['BENCH_STORES'] ?? 'sqlite,postgres').split(',');
/** CONSORTIUM_TRACE_JOBS=1: the processes trace each job's stages and the run prints where the time goes. */
const TRACE = process.env['CONSORTIUM_TRACE_JOBS'] === '1';
/** BENCH_CPU_PROF=<dir>: the web, master and worker write V8 CPU profiles there when they stop. */
const CPU_PROF = process.env['BENCH_CPU_PROF'];

/** One traced stage of a job, as a process wrote it on stderr (packages/server/src/trace.ts). */
interface Stage {
  readonly trace: string;
  readonly stage: string;
  readonly at: number;
}

/** CPU time (user + system) process `pid` has used, in ms; NaN once it is gone. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** The pid of the etcd serving `endpoint` (the harness does not tell it). */
function etcdPid(endpoint: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args[0]?.endsWith('etcd') === true && args.some((arg) => arg.includes(endpoint)))
        return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * Where a job's time goes: for each stage, the median over `jobs` of the time from the job's first stage to the
 * first time it reached this one, in the order of those medians.
 */
function timeline(stages: readonly Stage[], jobs: ReadonlySet<string>): string[] {
  const byJob = new Map<string, Map<string, number>>();
  for (const { trace, stage, at } of stages) {
    if (!jobs.has(trace)) continue;
    let seen = byJob.get(trace);
    if (seen === undefined) {
      seen = new Map();
      byJob.set(trace, seen);
    }
    if (!seen.has(stage)) seen.set(stage, at);
  }
  const origin = new Map([...byJob].map(([job, seen]) => [job, Math.min(...seen.values())]));
  const offsets = new Map<string, number[]>();
  for (const [job, seen] of byJob) {
    const start = origin.get(job) ?? 0;
    for (const [stage, at] of seen) {
      let list = offsets.get(stage);
      if (list === undefined) {
        list = [];
        offsets.set(stage, list);
      }
      list.push(at - start);
    }
  }
  const median = (list: number[]): number =>
    [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? NaN;
  const rows = [...offsets].map(([stage, list]) => ({ stage, at: median(list), n: list.length }));
  rows.sort((a, b) => a.at - b.at);
  let previous = 0;
  return rows.map(({ stage, at, n }) => {
    const line = `      ${stage.padEnd(26)} +${at.toFixed(1).padStart(7)} ms  (Δ ${(at - previous).toFixed(1).padStart(6)} ms, ${n} jobs)`;
    previous = at;
    return line;
  });
}

/** Runs `lanes` loops of `step` until `until` (ms since the epoch); returns how many steps ended. */
async function lanes(count: number, until: number, step: () => Promise<unknown>): Promise<number> {
  let n = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (Date.now() < until) {
        await step();
        n++;
      }
    }),
  );
  return n;
}

async function rawPutRate(endpoint: string): Promise<number> {
  const client = new Etcd3({ hosts: endpoint });
  let seq = 0;
  const n = await lanes(IN_FLIGHT, Date.now() + SECONDS * 1000, () =>
    client.put(`/bench/raw/${seq++}`).value('x').exec(),
  );
  client.close();
  return n / SECONDS;
}

async function queueRate(endpoint: string, workers: number): Promise<number> {
  const prefix = `/bench/q${workers}-${Date.now()}/`;
  const producer = new EtcdCoordinator({ endpoints: endpoint, prefix, memberId: 'producer' });
  const members = Array.from(
    { length: workers },
    (_, i) => new EtcdCoordinator({ endpoints: endpoint, prefix, memberId: `w${i}` }),
  );
  const stop = new AbortController();
  let acked = 0;
  let seq = 0;
  const queue = producer.queue('bench');
  const produce = lanes(IN_FLIGHT, Date.now() + SECONDS * 1000, () =>
    queue.enqueue({ id: `t${seq++}`, payload: null }),
  );
  const consume = members.map(async (member) => {
    const mine = member.queue('bench');
    while (!stop.signal.aborted) {
      try {
        const tasks = await mine.claimMany(member.memberId, WORKER_BATCH, stop.signal);
        const acks = await Promise.all(tasks.map((task) => mine.ack(task)));
        acked += acks.filter(Boolean).length;
      } catch {
        return;
      }
    }
  });
  await produce;
  const measured = acked;
  stop.abort();
  await Promise.allSettled(consume);
  await Promise.all([producer.close(), ...members.map((m) => m.close())]);
  return measured / SECONDS;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
  });
}

/** A Redis on a free loopback port, every write fsynced before the answer, in a temporary directory. */
async function startRedis(): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-bench-redis-'));
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (data: Buffer): void => {
      log += data.toString();
      if (log.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      reject(new Error(`redis-server exited with ${String(code)}: ${log}`));
    });
  });
  return {
    port,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Redis's durable write rate (SET, 8 in flight) and BullMQ's no-op job rate measured like the queue above. */
async function bullmqRates(workers: number): Promise<{ raw: number; bull: number }> {
  const redis = await startRedis();
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
  try {
    const client = new Redis(connection);
    let seq = 0;
    const raw =
      (await lanes(IN_FLIGHT, Date.now() + SECONDS * 1000, () => client.set(`raw:${seq++}`, 'x'))) / SECONDS;
    await client.flushall();
    client.disconnect();
    const queue = new BullQueue('bench', { connection });
    let done = 0;
    const consumers = Array.from({ length: workers }, () => {
      const worker = new BullWorker('bench', () => Promise.resolve(null), {
        connection,
        concurrency: WORKER_BATCH,
      });
      worker.on('completed', () => {
        done++;
      });
      return worker;
    });
    await Promise.all(consumers.map((worker) => worker.waitUntilReady()));
    const options = { removeOnComplete: true, removeOnFail: true };
    await lanes(IN_FLIGHT, Date.now() + SECONDS * 1000, () => queue.add('noop', null, options));
    const bull = done / SECONDS;
    await Promise.all(consumers.map((worker) => worker.close(true)));
    await queue.close();
    return { raw, bull };
  } finally {
    await redis.stop();
  }
}

interface EndToEnd {
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly n: number;
  readonly burstRate: number;
  readonly burstFailed: number;
  /** With CONSORTIUM_TRACE_JOBS=1: the median timeline of the jobs of the 16-client run. */
  readonly timeline: readonly string[];
  /** CPU ms per job of the 16-client run, by process (on a busy machine, the figure that moves least). */
  readonly cpuPerJob: Readonly<Record<string, number>>;
  /** With CONSORTIUM_TRACE_JOBS=1: etcd calls per job of the 16-client run, by process and by what they do. */
  readonly callsPerJob: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

async function endToEnd(
  endpoint: string,
  store: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<EndToEnd> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-cluster-bench-'));
  const config = join(dir, 'cluster.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      cluster: 'bench',
      dataDir: dir,
      store,
      coordinator: { driver: 'etcd', endpoints: [endpoint], prefix: `/bench/e2e-${Date.now()}/` },
      observe: { intervalSeconds: 0 },
      log: { level: 'warn', format: 'json' },
      plugins: [{ module: NOOP }],
    }),
  );
  const childEnv = { ...process.env, ...env, ...(TRACE ? { CONSORTIUM_TRACE_ETCD: '1' } : {}) };
  const created = spawnSync(
    process.execPath,
    ['--import', 'tsx', CONSORTIUM, 'token', 'create', '--role', 'admin', '--config', config],
    { encoding: 'utf8', env: childEnv },
  );
  const token = created.stdout.trim();
  if (token === '') throw new Error(`consortium token create failed: ${created.stderr}`);
  const children: ChildProcess[] = [];
  const stages: Stage[] = [];
  /** The latest running totals of etcd calls each process reported (CONSORTIUM_TRACE_ETCD). */
  const calls: Record<string, Record<string, number>> = {};
  const pids: Record<string, number | undefined> = { etcd: etcdPid(endpoint) };
  const start = (role: string): ChildProcess => {
    const child = spawn(
      process.execPath,
      [
        ...(CPU_PROF === undefined
          ? []
          : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=${role}.cpuprofile`]),
        '--import',
        'tsx',
        CONSORTIUM,
        role,
        '--config',
        config,
        '--port',
        '0',
      ],
      { stdio: ['ignore', 'pipe', TRACE ? 'pipe' : 'inherit'], env: childEnv },
    );
    if (TRACE) {
      let rest = '';
      child.stderr?.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (line.startsWith('{"trace":')) stages.push(JSON.parse(line) as Stage);
          else if (line.startsWith('{"etcdCalls":'))
            calls[role] = (JSON.parse(line) as { etcdCalls: Record<string, number> }).etcdCalls;
          else process.stderr.write(`${line}\n`);
        }
      });
    }
    children.push(child);
    pids[role] = child.pid;
    return child;
  };
  try {
    const web = start('web');
    start('master');
    start('worker');
    const url = await new Promise<string>((resolve) => {
      let out = '';
      web.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const match = /^url: (\S+)$/m.exec(out);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
    });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const submit = async (name: string, wait: string): Promise<{ id?: string; state?: string }> => {
      const r = await fetch(`${url}/api/inventory/noop${wait}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name, attrs: { a: 'x', b: 'y' } }),
      });
      return (await r.json()) as { id?: string; state?: string };
    };
    // Warm up until the master leads and every process has its connections.
    for (let i = 0; ; i++) {
      if ((await submit(`warm-${i}`, '?wait=30s')).state === 'succeeded' && i >= 20) break;
    }
    const cpuBefore = Object.fromEntries(Object.entries(pids).map(([role, pid]) => [role, cpuMs(pid)]));
    // The totals are reported every 250 ms: wait for fresh ones on both sides of the measured run.
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, TRACE ? 600 : 0));
    await settle();
    const callsBefore = structuredClone(calls);
    const latencies: number[] = [];
    const measured = new Set<string>();
    const started = Date.now();
    let k = 0;
    await lanes(E2E_CLIENTS, started + SECONDS * 2000, async () => {
      const t0 = performance.now();
      const job = await submit(`n-${k++}`, '?wait=30s');
      if (job.state !== 'succeeded') throw new Error(`no-op job ${String(job.state)}`);
      latencies.push(performance.now() - t0);
      if (job.id !== undefined) measured.add(job.id);
    });
    const elapsed = (Date.now() - started) / 1000;
    await settle();
    const callsPerJob = Object.fromEntries(
      Object.entries(calls).map(([role, totals]) => [
        role,
        Object.fromEntries(
          Object.entries(totals).map(([what, n]) => [
            what,
            (n - (callsBefore[role]?.[what] ?? 0)) / Math.max(1, latencies.length),
          ]),
        ),
      ]),
    );
    const cpuPerJob = Object.fromEntries(
      Object.entries(pids).map(([role, pid]) => [
        role,
        (cpuMs(pid) - (cpuBefore[role] ?? NaN)) / Math.max(1, latencies.length),
      ]),
    );
    latencies.sort((a, b) => a - b);
    const at = (p: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;

    // The burst: every job submitted at once (16 connections' worth at a time), then waited for.
    const burstStart = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: E2E_CLIENTS }, async () => {
        while (next < BURST) {
          const job = await submit(`burst-${next++}`, '');
          if (job.id === undefined) throw new Error(`burst submission refused: ${JSON.stringify(job)}`);
          ids.push(job.id);
        }
      }),
    );
    let failed = 0;
    let waited = 0;
    await Promise.all(
      Array.from({ length: E2E_CLIENTS }, async () => {
        while (waited < ids.length) {
          const id = ids[waited++] as string;
          const r = await fetch(`${url}/api/jobs/${id}?wait=60s`, { headers });
          const job = (await r.json()) as { state?: string };
          if (job.state !== 'succeeded') failed++;
        }
      }),
    );
    const burstRate = BURST / ((performance.now() - burstStart) / 1000);
    return {
      rate: latencies.length / elapsed,
      p50: at(0.5),
      p99: at(0.99),
      n: latencies.length,
      burstRate,
      burstFailed: failed,
      timeline: timeline(stages, measured),
      cpuPerJob,
      callsPerJob,
    };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

function printEndToEnd(store: string, e2e: EndToEnd): void {
  console.log(
    `  no-op jobs web→master→worker, ${store.padEnd(10)} ${e2e.rate.toFixed(1).padStart(8)} jobs/s   p50 ${e2e.p50.toFixed(1)} ms  p99 ${e2e.p99.toFixed(1)} ms  (${E2E_CLIENTS} clients, ${e2e.n} jobs; target p50 < 20, p99 < 60, ≥ 200/s)`,
  );
  console.log(
    `    burst of ${BURST} submitted without waiting ${e2e.burstRate.toFixed(1).padStart(8)} jobs/s   ${BURST - e2e.burstFailed} ended succeeded, ${e2e.burstFailed} not`,
  );
  const cpu = Object.entries(e2e.cpuPerJob);
  const total = cpu.reduce((sum, [, ms]) => sum + ms, 0);
  console.log(
    `    CPU per job: ${cpu.map(([role, ms]) => `${role} ${ms.toFixed(1)}`).join(', ')}, total ${total.toFixed(1)} ms (2 cores: ≤ 10 ms for 200 jobs/s)`,
  );
  for (const [role, byWhat] of Object.entries(e2e.callsPerJob)) {
    const rows = Object.entries(byWhat).filter(([, n]) => n >= 0.05);
    rows.sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((sum, [, n]) => sum + n, 0);
    console.log(
      `    etcd calls per job, ${role}: ${total.toFixed(1)} (${rows.map(([what, n]) => `${what} ${n.toFixed(2)}`).join(', ')})`,
    );
  }
  if (e2e.timeline.length > 0) {
    console.log('    median timeline of a job (CONSORTIUM_TRACE_JOBS=1), from its first stage:');
    for (const line of e2e.timeline) console.log(line);
  }
}

/** `make bench BENCH=cluster`. */
export async function clusterBench(): Promise<void> {
  const etcd = await startEtcd();
  try {
    if (PARTS !== 'jobs') await queueFigures(etcd.endpoint);
    if (STORES.includes('sqlite')) {
      printEndToEnd('SQLite', await endToEnd(etcd.endpoint, { driver: 'sqlite' }, {}));
    }
    if (STORES.includes('postgres')) {
      const postgres = await startPostgres();
      try {
        const url = await postgres.createDatabase('cluster_bench');
        printEndToEnd(
          'PostgreSQL',
          await endToEnd(etcd.endpoint, { driver: 'postgres' }, { CONSORTIUM_STORE_URL: url }),
        );
      } finally {
        await postgres.stop();
      }
    }
  } finally {
    await etcd.stop();
  }
}

/** The raw etcd put rate, the queue's rates against it and the BullMQ peer's. */
async function queueFigures(endpoint: string): Promise<void> {
  const raw = await rawPutRate(endpoint);
  console.log(`\ncluster (etcd ${endpoint}, ${SECONDS}s per figure)`);
  console.log(
    `  raw etcd put rate from Node (${IN_FLIGHT} in flight)   ${raw.toFixed(0).padStart(8)} puts/s   (baseline)`,
  );
  const rates = new Map<number, number>();
  for (const workers of [1, 2, 4]) {
    const rate = await queueRate(endpoint, workers);
    rates.set(workers, rate);
    console.log(
      `  queue enqueue→claim→ack, ${workers} worker(s)        ${rate.toFixed(0).padStart(8)} tasks/s  ratio ${(rate / raw).toFixed(3)}`,
    );
  }
  if (existsSync(REDIS_SERVER)) {
    const peer = await bullmqRates(4);
    const ours = (rates.get(4) ?? NaN) / raw;
    console.log(
      `  Redis durable SET rate (appendfsync always)  ${peer.raw.toFixed(0).padStart(8)} sets/s   (peer baseline)`,
    );
    console.log(
      `  BullMQ add→process→complete, 4 workers      ${peer.bull.toFixed(0).padStart(8)} jobs/s   ratio ${(peer.bull / peer.raw).toFixed(3)}`,
    );
    console.log(
      `  4 workers, each against its own store:   Consortium/etcd ${ours.toFixed(3)}  vs  BullMQ/Redis ${(peer.bull / peer.raw).toFixed(3)}  (target ≥ 0.25)`,
    );
  } else {
    console.log(
      `  BullMQ peer skipped: ${REDIS_SERVER} is missing (scripts/install-system-deps.sh installs it)`,
    );
  }
}
