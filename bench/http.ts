/**
 * HTTP benchmarks against an in-process `consortium dev`: (1) `GET /api/inventory/host/:name` throughput and p99
 * next to a bare express handler returning the same JSON, measured in the same run (target ratio ≥ 0.7); (2) the
 * end-to-end latency of a no-op job (create a node through two instant providers) with its breakdown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import express from 'express';
import { DEFAULT_PLUGINS, loadConfig, startDev } from '@consortium/server';

const DURATION_S = Number(process.env['BENCH_SECONDS'] ?? 5);

async function cannon(url: string, headers: Record<string, string>) {
  const result = await autocannon({ url, connections: 16, duration: DURATION_S, headers });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

export async function httpBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-bench-'));
  const config = loadConfig({ dataDir: dir, port: 0, logLevel: 'warn' }, {});
  const plugins = [
    ...DEFAULT_PLUGINS.map((p) =>
      p.module === '@consortium/plugin-sandbox' ? { ...p, config: { delayMs: 0 } } : p,
    ),
    { module: fileURLToPath(new URL('./noop-plugin.ts', import.meta.url)) },
  ];
  let ready: { url: string; token: string } | undefined;
  const dev = await startDev({ ...config, plugins }, (r) => (ready = r));
  while (ready === undefined) await new Promise((r) => setTimeout(r, 10));
  const { url, token } = ready;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    return (await response.json()) as Record<string, any>;
  };
  await post('/api/inventory/subnet?wait=30s', {
    name: 'bench',
    attrs: { cidr: '10.7.0.0/16', gateway: '10.7.0.1' },
  });
  const host = await post('/api/inventory/host?wait=30s', {
    name: 'web-01',
    attrs: { hwspec: 'small', subnet: 'bench', datacenter: 'pek1', puppet_roles: ['nginx'], power: 'on' },
  });
  if (host['state'] !== 'succeeded') throw new Error(`setup failed: ${JSON.stringify(host['failure'])}`);
  const body = await (await fetch(`${url}/api/inventory/host/web-01`, { headers })).text();

  const bare = express();
  bare.get('/api/inventory/host/:name', (_req, res) => {
    res.json(JSON.parse(body));
  });
  const bareServer = bare.listen(0, '127.0.0.1');
  await new Promise((r) => bareServer.once('listening', r));
  const barePort = (bareServer.address() as AddressInfo).port;

  const baseline = await cannon(`http://127.0.0.1:${barePort}/api/inventory/host/web-01`, {});
  const ours = await cannon(`${url}/api/inventory/host/web-01`, { authorization: `Bearer ${token}` });
  bareServer.close();

  console.log(`\nhttp: GET one node, ${DURATION_S}s each, 16 connections`);
  console.log(
    `  bare express, same JSON        ${baseline.rps.toFixed(0).padStart(8)} req/s   p50 ${baseline.p50} ms   p99 ${baseline.p99} ms`,
  );
  console.log(
    `  consortium (auth, store, ETag) ${ours.rps.toFixed(0).padStart(8)} req/s   p50 ${ours.p50} ms   p99 ${ours.p99} ms`,
  );
  console.log(`  ratio (target >= 0.7): ${(ours.rps / baseline.rps).toFixed(3)}`);

  // No-op jobs, one at a time, each waited for in the same request.
  const samples: { total: number; queued: number; rounds: number; tasks: number; finish: number }[] = [];
  for (let i = 0; i < 300; i++) {
    const started = performance.now();
    const job = await post('/api/inventory/noop?wait=30s', { name: `n-${i}`, attrs: { a: 'x', b: 'y' } });
    const total = performance.now() - started;
    if (job['state'] !== 'succeeded') throw new Error(`no-op job ${String(job['state'])}`);
    const created = Date.parse(job['createdAt']);
    const begun = Date.parse(job['startedAt']);
    const ended = Date.parse(job['endedAt']);
    // The API shows a round's times as ISO strings, like the job's.
    const rounds = (
      job['rounds'] as { startedAt: string; endedAt: string; tasks: { durationMs: number }[] }[]
    ).map((r) => ({ ...r, startedAt: Date.parse(r.startedAt), endedAt: Date.parse(r.endedAt) }));
    const roundTime = rounds.reduce((s, r) => s + (r.endedAt - r.startedAt), 0);
    const taskTime = rounds.reduce((s, r) => s + Math.max(...r.tasks.map((t) => t.durationMs)), 0);
    if (i >= 20)
      samples.push({
        total,
        queued: begun - created,
        rounds: roundTime,
        tasks: taskTime,
        finish: ended - (rounds.at(-1)?.endedAt ?? ended),
      });
  }
  const totals = samples.map((s) => s.total).sort((a, b) => a - b);
  const mean = (pick: (s: (typeof samples)[number]) => number) =>
    samples.reduce((s, x) => s + pick(x), 0) / samples.length;
  console.log(
    `\nno-op job (two instant providers, one round), ${samples.length} jobs one after another, create?wait`,
  );
  console.log(
    `  client latency p50 ${percentile(totals, 50).toFixed(2)} ms   p99 ${percentile(totals, 99).toFixed(2)} ms   mean ${mean((s) => s.total).toFixed(2)} ms`,
  );
  console.log(
    `  breakdown (means, ms): queued→started ${mean((s) => s.queued).toFixed(2)}, round(s) ${mean((s) => s.rounds).toFixed(2)} of which provider time ${mean((s) => s.tasks).toFixed(2)}, last round→ended ${mean((s) => s.finish).toFixed(2)}, rest (HTTP, validation, insert, wake-up) ${(mean((s) => s.total) - mean((s) => s.queued + s.rounds + s.finish)).toFixed(2)}`,
  );

  dev.stop();
  await dev.done;
  rmSync(dir, { recursive: true, force: true });
}
