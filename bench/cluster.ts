/**
 * Cluster benchmarks against a real etcd started for the run: (1) raw etcd put rate from Node — the baseline;
 * (2) queue throughput (enqueue → claim → ack of no-op tasks) with 1, 2 and 4 workers as a ratio of that rate;
 * (3) end-to-end no-op job rate and p50 / p99 latency through separate web, master and worker processes.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCoordinator } from '@consortium/coord-etcd';
import { startEtcd } from '@consortium/testkit';
import { Etcd3 } from 'etcd3';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const CONSORTIUM = fileURLToPath(new URL('../packages/server/bin/consortium.js', import.meta.url));
const NOOP = fileURLToPath(new URL('./noop-plugin.ts', import.meta.url));

async function rawPutRate(endpoint: string): Promise<number> {
  const client = new Etcd3({ hosts: endpoint });
  let n = 0;
  const until = Date.now() + SECONDS * 1000;
  // 8 puts in flight, as the queue benchmark has at most 4 workers plus the producer.
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      while (Date.now() < until) {
        await client.put(`/bench/raw/${w}/${n++}`).value('x');
      }
    }),
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
  const until = Date.now() + SECONDS * 1000;
  const produce = (async () => {
    const queue = producer.queue('bench');
    while (Date.now() < until) {
      const batch = [];
      for (let i = 0; i < 8; i++) batch.push(queue.enqueue({ id: `t${seq++}`, payload: null }));
      await Promise.all(batch);
    }
  })();
  const consume = members.map(async (member) => {
    const queue = member.queue('bench');
    while (!stop.signal.aborted) {
      try {
        const task = await queue.claim(member.memberId, stop.signal);
        if (await queue.ack(task)) acked++;
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

async function endToEnd(endpoint: string): Promise<{ rate: number; p50: number; p99: number; n: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-cluster-bench-'));
  const config = join(dir, 'cluster.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      cluster: 'bench',
      dataDir: dir,
      coordinator: { driver: 'etcd', endpoints: [endpoint], prefix: `/bench/e2e-${Date.now()}/` },
      observe: { intervalSeconds: 0 },
      log: { level: 'warn', format: 'json' },
      plugins: [{ module: NOOP }],
    }),
  );
  const token = spawnSync(
    process.execPath,
    [CONSORTIUM, 'token', 'create', '--role', 'admin', '--config', config],
    {
      encoding: 'utf8',
    },
  ).stdout.trim();
  const children: ChildProcess[] = [];
  const start = (role: string): ChildProcess => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CONSORTIUM, role, '--config', config, '--port', '0'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    return child;
  };
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
  const latencies: number[] = [];
  const until = Date.now() + SECONDS * 1000 * 2;
  let i = 0;
  // Warm up until the master leads.
  for (;;) {
    const r = await fetch(`${url}/api/inventory/noop?wait=30s`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: `warm-${i++}`, attrs: { a: 'x' } }),
    });
    if (((await r.json()) as { state?: string }).state === 'succeeded') break;
  }
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 4 }, async (_, c) => {
      let k = 0;
      while (Date.now() < until) {
        const t0 = performance.now();
        const r = await fetch(`${url}/api/inventory/noop?wait=30s`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ name: `n-${c}-${k++}`, attrs: { a: 'x', b: 'y' } }),
        });
        const job = (await r.json()) as { state?: string };
        if (job.state !== 'succeeded') throw new Error(`no-op job ${String(job.state)}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rate: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), n: latencies.length };
}

export async function clusterBench(): Promise<void> {
  const etcd = await startEtcd();
  try {
    const raw = await rawPutRate(etcd.endpoint);
    console.log(`\ncluster (etcd ${etcd.endpoint}, ${SECONDS}s per figure)`);
    console.log(
      `  raw etcd put rate from Node (8 in flight)   ${raw.toFixed(0).padStart(8)} puts/s   (baseline)`,
    );
    for (const workers of [1, 2, 4]) {
      const rate = await queueRate(etcd.endpoint, workers);
      console.log(
        `  queue enqueue→claim→ack, ${workers} worker(s)        ${rate.toFixed(0).padStart(8)} tasks/s  ratio ${(rate / raw).toFixed(3)}`,
      );
    }
    const e2e = await endToEnd(etcd.endpoint);
    console.log(
      `  no-op jobs web→master→worker (4 clients)    ${e2e.rate.toFixed(1).padStart(8)} jobs/s   p50 ${e2e.p50.toFixed(1)} ms  p99 ${e2e.p99.toFixed(1)} ms  (${e2e.n} jobs)`,
    );
  } finally {
    await etcd.stop();
  }
}
