/**
 * One-command provisioning against real backends (the libvirt lab, the NetBox and Cobbler test servers, PowerDNS):
 * the wall time of each job next to the backend operations' own durations recorded in it. Consortium's overhead is
 * the ratio of the wall time to the critical path of those operations (per round, the slowest provider's total);
 * target ≤ 1.10 (issue 12). The sum of all operations is printed too (rounds run providers in parallel).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackends } from '@consortium/server/test-support/backends';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const CONSORTIUM = fileURLToPath(new URL('../packages/server/bin/consortium.js', import.meta.url));

interface Job {
  state: string;
  createdAt: string;
  endedAt: string;
  rounds: {
    tasks: { provider: string; durationMs?: number; outcome?: { operations?: { durationMs?: number }[] } }[];
  }[];
}

export async function provisionBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-provision-bench-'));
  const backends = await startBackends(dir);
  const server = spawn(process.execPath, [
    CONSORTIUM,
    'dev',
    '--port',
    '0',
    '--data-dir',
    dir,
    '--config',
    backends.configFile,
    '--log-level',
    'warn',
  ]);
  try {
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
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const post = async (path: string, body: unknown) =>
      (await (
        await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) })
      ).json()) as Job;
    await post('/api/inventory/subnet?wait=30s', {
      name: 'bench-net',
      attrs: { cidr: '10.9.0.0/24', gateway: '10.9.0.1' },
    });
    const rows: { wall: number; critical: number; sum: number; tasks: number }[] = [];
    /** Per round and provider: summed task time and operation time over the measured runs. */
    const breakdown = new Map<string, { task: number; ops: number; n: number }>();
    for (let i = 0; i < RUNS + 1; i++) {
      const job = await post('/api/inventory/host?wait=120s', {
        name: `bench-${i}`,
        attrs: {
          hwspec: 'small',
          datacenter: 'pek1',
          subnet: 'bench-net',
          puppet_roles: ['nginx'],
          power: 'on',
        },
      });
      if (job.state !== 'succeeded') throw new Error(`provisioning ended ${job.state}`);
      const opsOf = (t: Job['rounds'][number]['tasks'][number]) =>
        (t.outcome?.operations ?? []).reduce((s, o) => s + (o.durationMs ?? 0), 0);
      const wall = Date.parse(job.endedAt) - Date.parse(job.createdAt);
      const critical = job.rounds.reduce((s, r) => s + Math.max(0, ...r.tasks.map(opsOf)), 0);
      const sum = job.rounds.reduce((s, r) => s + r.tasks.reduce((x, t) => x + opsOf(t), 0), 0);
      // Provider time, reads included (virsh dominfo, NetBox lookups), which operations do not list.
      const tasks = job.rounds.reduce((s, r) => s + Math.max(0, ...r.tasks.map((t) => t.durationMs ?? 0)), 0);
      if (i > 0) {
        // The first run warms SSH and QEMU up.
        rows.push({ wall, critical, sum, tasks });
        job.rounds.forEach((round, r) => {
          for (const t of round.tasks) {
            const key = `round ${r + 1} ${t.provider}`;
            const entry = breakdown.get(key) ?? { task: 0, ops: 0, n: 0 };
            breakdown.set(key, {
              task: entry.task + (t.durationMs ?? 0),
              ops: entry.ops + opsOf(t),
              n: entry.n + 1,
            });
          }
        });
      }
    }
    const mean = (pick: (r: (typeof rows)[number]) => number) =>
      rows.reduce((s, r) => s + pick(r), 0) / rows.length;
    console.log(
      `\nprovisioning: one create (3 rounds: netbox, ipam, libvirt; cobbler, powerdns; libvirt start), ${rows.length} runs`,
    );
    console.log(`  wall time of the job (mean)                ${mean((r) => r.wall).toFixed(0)} ms`);
    console.log(`  backend operations, critical path (mean)   ${mean((r) => r.critical).toFixed(0)} ms`);
    console.log(`  backend operations, all summed (mean)      ${mean((r) => r.sum).toFixed(0)} ms`);
    console.log(
      `  provider task time, critical path (mean)   ${mean((r) => r.tasks).toFixed(0)} ms  (operations plus reads)`,
    );
    console.log('  where the time goes (mean per job): task time / of which operations');
    for (const [key, { task, ops, n }] of breakdown)
      console.log(
        `    ${key.padEnd(24)} ${(task / rows.length).toFixed(0).padStart(5)} ms / ${(ops / rows.length).toFixed(0).padStart(5)} ms  (${n / rows.length} tasks)`,
      );
    console.log(
      `  ratio wall / operations' critical path (target ≤ 1.10): ${(mean((r) => r.wall) / mean((r) => r.critical)).toFixed(3)}`,
    );
    console.log(
      `  ratio wall / provider task time:                        ${(mean((r) => r.wall) / mean((r) => r.tasks)).toFixed(3)}`,
    );
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await backends.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
