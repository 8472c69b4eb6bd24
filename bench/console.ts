/**
 * The web console: the JavaScript it ships (gzipped; target ≤ 200 KB) and the time until the inventory page of
 * 1,000 hosts is drawn in headless Chromium (target < 1 s), next to the time the same page takes to fetch the
 * 1,000 hosts' JSON from the API in the same browser (the floor the drawing adds to).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { launchChromium } from '@consortium/console/browser';
import { openSqliteStore } from '@consortium/store-sqlite';

const HOSTS = 1_000;
const RUNS = Number(process.env['BENCH_RUNS'] ?? 7);
const CONSORTIUM = fileURLToPath(new URL('../packages/server/bin/consortium.js', import.meta.url));
const ASSETS = fileURLToPath(new URL('../packages/console/dist/assets/', import.meta.url));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function gzipped(ext: string): { raw: number; gz: number } {
  let raw = 0;
  let gz = 0;
  for (const file of readdirSync(ASSETS).filter((f) => f.endsWith(ext))) {
    const bytes = readFileSync(join(ASSETS, file));
    raw += bytes.length;
    gz += gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gz };
}

/** Hosts as a provisioned inventory holds them: an interface with its address, power, placement. */
async function fill(path: string): Promise<void> {
  const store = await openSqliteStore({ path });
  for (let i = 0; i < HOSTS; i++) {
    const name = `host-${String(i).padStart(4, '0')}`;
    await store.insertNode(
      'host',
      name,
      {
        present: true,
        interfaces: [
          { name: 'eth0', ip: `10.1.${Math.floor(i / 250)}.${(i % 250) + 2}`, mac: '52:54:00:00:00:01' },
        ],
        subnet: `net-${Math.floor(i / 250)}`,
        hwspec: ['small', 'medium', 'large'][i % 3] as string,
        power: i % 7 === 0 ? 'off' : 'on',
        hypervisor: `hv-${i % 16}`,
        datacenter: 'pek1',
      },
      Date.now(),
    );
  }
  await store.close();
}

export async function consoleBench(): Promise<void> {
  const js = gzipped('.js');
  const css = gzipped('.css');
  console.log('\nweb console');
  console.log(
    `  JavaScript shipped: ${(js.gz / 1024).toFixed(1)} KB gzipped (${(js.raw / 1024).toFixed(1)} KB minified; target ≤ 200 KB)`,
  );
  console.log(`  CSS shipped:        ${(css.gz / 1024).toFixed(1)} KB gzipped`);

  const dir = mkdtempSync(join(tmpdir(), 'console-bench-'));
  await fill(join(dir, 'consortium.db'));
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
  const browser = await launchChromium();
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
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(`${url}/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Sections' }).waitFor();

    const drawn: number[] = [];
    const fetched: number[] = [];
    const drawing: number[] = [];
    for (let run = 0; run < RUNS + 1; run++) {
      await page.goto('about:blank');
      await page.goto(`${url}/#/inventory/host?limit=${HOSTS}`);
      await page.locator(`table.inventory[data-count="${HOSTS}"]`).waitFor({ timeout: 60_000 });
      // Milliseconds since this navigation started until the rows were painted (the page marks it), and of those
      // the part after the API's answer had arrived: drawing 1,000 rows.
      const [ms, draw] = await page.evaluate<[number, number]>(`(() => {
        const mark = performance.getEntriesByName('inventory-drawn').at(-1);
        const answer = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/inventory/host'));
        return [mark.startTime, mark.startTime - answer.responseEnd];
      })()`);
      const api = await page.evaluate<number>(`(async () => {
        const t0 = performance.now();
        const r = await fetch('/api/inventory/host?limit=${HOSTS}', {
          headers: { authorization: 'Bearer ' + sessionStorage.getItem('consortium.token') },
        });
        await r.json();
        return performance.now() - t0;
      })()`);
      if (run > 0) {
        drawn.push(ms);
        drawing.push(draw);
        fetched.push(api);
      }
    }
    const total = median(drawn);
    const api = median(fetched);
    console.log(
      `  list page of ${HOSTS} hosts drawn: ${total.toFixed(0)} ms from navigation (median of ${RUNS}; target < 1000 ms)`,
    );
    console.log(`    of which drawing the rows after the API answered: ${median(drawing).toFixed(0)} ms`);
    console.log(
      `  the same ${HOSTS} hosts fetched as JSON by the page: ${api.toFixed(0)} ms  (page / fetch: ${(total / api).toFixed(1)}x)`,
    );
    // Wall-clock figures on a shared machine: the load says how far they are from an idle one.
    console.log(`  load average during the run: ${loadavg()[0]?.toFixed(1) ?? '?'} on ${cpus().length} CPUs`);
  } finally {
    await browser.close();
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}
