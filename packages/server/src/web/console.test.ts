/** The console's static files: headers, caching, and what `/` says when the console has not been built. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, consoleRouter } from './console.js';

describe('consoleRouter', () => {
  const dist = mkdtempSync(join(tmpdir(), 'console-dist-'));
  const missing = join(dist, 'not-built');
  const servers: ReturnType<typeof createServer>[] = [];
  let built = '';
  let unbuilt = '';
  const serve = async (dir: string): Promise<string> => {
    const app = express();
    app.use(consoleRouter(dir));
    const server = createServer(app);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  beforeAll(async () => {
    mkdirSync(join(dist, 'assets'));
    writeFileSync(
      join(dist, 'index.html'),
      '<!doctype html><script type="module" src="/assets/app-X1.js"></script>',
    );
    writeFileSync(join(dist, 'assets', 'app-X1.js'), 'export {};');
    built = await serve(dist);
    unbuilt = await serve(missing);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    rmSync(dist, { recursive: true, force: true });
  });

  it('serves index.html uncached and hashed assets for a year, both under the CSP', async () => {
    const index = await fetch(`${built}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    const asset = await fetch(`${built}/assets/app-X1.js`);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).not.toMatch(/unsafe-(inline|eval)/);
  });

  it('answers / with a problem naming the missing build when the console is not built', async () => {
    const index = await fetch(`${unbuilt}/`);
    expect(index.status).toBe(404);
    const body = (await index.json()) as { code: string; detail: string };
    expect(body.code).toBe('NOT_FOUND');
    expect(body.detail).toBe(
      `the web console is not built (${join(missing, 'index.html')} is missing; run make build)`,
    );
  });
});
