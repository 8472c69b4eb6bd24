/**
 * The README walk-through runs as written, top to bottom: its `sh` blocks (curl, then consort), in order, in one
 * bash, against a fresh `consortium dev` binary. Only the URL and the token are replaced by this server's.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from '@consortium/server/test-support';
import { spawnBinary, tempDir } from '@consortium/server/test-support';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The `sh` blocks of the README's walk-through sections, in order. */
export function walkThrough(readme: string): string[] {
  const start = readme.indexOf('## Walk-through with curl');
  const end = readme.indexOf('### The API in short');
  if (start < 0 || end < start) throw new Error('the README has no walk-through sections');
  return [...readme.slice(start, end).matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

let server: BinaryServer;
const data = tempDir();
const home = tempDir('consort-readme-');

beforeAll(async () => {
  server = await spawnBinary(data.dir);
}, 40_000);
afterAll(() => {
  server.child.kill('SIGTERM');
  data.remove();
  home.remove();
});

describe('README', () => {
  it('the walk-through runs as written, curl then consort, with no error on the way', () => {
    const blocks = walkThrough(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks).toHaveLength(2);
    const script = [
      'set -euo pipefail',
      // The consort block defines an alias, as a reader's shell would take it.
      'shopt -s expand_aliases',
      ...blocks,
    ]
      .join('\n')
      .replaceAll('http://127.0.0.1:8080', server.api.url)
      .replaceAll('cst_...', server.api.token);
    const result = spawnSync('bash', ['-c', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
      env: {
        PATH: process.env['PATH'],
        HOME: home.dir,
        XDG_CONFIG_HOME: join(home.dir, 'config'),
        XDG_CACHE_HOME: join(home.dir, 'cache'),
      },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const out = result.stdout;
    // curl says nothing of an HTTP error: no answer on the way may be a problem (a 409, a 412, ...).
    expect(out).not.toMatch(/"status":\s*[45]\d\d/);
    expect(out).not.toContain('application/problem+json');
    // Each step did what the README says.
    expect(out.match(/"state":"succeeded"/g)?.length).toBeGreaterThanOrEqual(5);
    expect(out).toMatch(/HTTP\/1\.1 200 OK\r?$/m);
    expect(out).toContain('"explain":true');
    expect(out).toMatch(/^event: ?ended/m);
    expect(out).toMatch(/"action":"patch:succeeded"/);
    expect(out).toMatch(/^succeeded in \S+ \(1 round\)$/m);
    expect(out).toMatch(/^succeeded in \S+ \(3 rounds\)$/m);
    expect(out).toMatch(/^NAME,POWER,IP,HWSPEC\r$/m);
    expect(out).toMatch(/create:succeeded {2}by consortium dev/);
    expect(out).toContain('no jobs match\n');
  }, 300_000);
});
