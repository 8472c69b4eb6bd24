/**
 * `consort` start-up: `consort get host x -o json` against a running server, next to `node -e 0` measured in the
 * same run (target: under 150 ms above bare node).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 20);
const CONSORT = fileURLToPath(new URL('../packages/consort/bin/consort.js', import.meta.url));
const CONSORTIUM = fileURLToPath(new URL('../packages/server/bin/consortium.js', import.meta.url));

function timeRuns(args: string[], env: NodeJS.ProcessEnv): number[] {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const started = performance.now();
    const result = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
    const took = performance.now() - started;
    if (result.status !== 0)
      throw new Error(`${args.join(' ')} exited ${String(result.status)}: ${result.stderr}`);
    if (i >= 2) times.push(took);
  }
  return times.sort((a, b) => a - b);
}

const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)] ?? NaN;

export async function consortStartupBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'consort-bench-'));
  // The server runs in its own process: timing with spawnSync blocks this one.
  const server = spawn(process.execPath, [
    CONSORTIUM,
    'dev',
    '--port',
    '0',
    '--data-dir',
    dir,
    '--log-level',
    'warn',
  ]);
  const { url, token } = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const u = /^url: (\S+)$/m.exec(out)?.[1];
      const t = /^token: (\S+)$/m.exec(out)?.[1];
      if (u !== undefined && t !== undefined) resolve({ url: u, token: t });
    });
    server.once('exit', (code) => {
      reject(new Error(`consortium dev exited ${String(code)}`));
    });
  });
  await fetch(`${url}/api/inventory/vlan?wait=30s`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'x', attrs: { vid: 10 } }),
  });
  const env = { ...process.env, CONSORT_URL: url, CONSORT_TOKEN: token, HOME: dir };
  const bare = timeRuns(['-e', '0'], env);
  const consort = timeRuns([CONSORT, 'get', 'vlan', 'x', '-o', 'json'], env);
  console.log(`\nconsort start-up, ${RUNS} runs each (medians)`);
  console.log(`  node -e 0                         ${median(bare).toFixed(1)} ms`);
  console.log(
    `  consort get vlan x -o json        ${median(consort).toFixed(1)} ms  (p90 ${consort[Math.floor(consort.length * 0.9)]?.toFixed(1)} ms)`,
  );
  console.log(
    `  difference (target < 150 ms): ${(median(consort) - median(bare)).toFixed(1)} ms; ratio ${(median(consort) / median(bare)).toFixed(2)}`,
  );
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
