/** Test helpers: start `consortium dev` (in this process or as the real binary) and talk to it over HTTP. */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config.js';
import type { ProcessParts, RunningProcess } from '../process.js';
import { startDev } from '../process.js';

/** The path of the built binary. */
export const BINARY = fileURLToPath(new URL('../../bin/consortium.js', import.meta.url));

/** A client bound to a server URL and a token. */
export interface Api {
  readonly url: string;
  readonly token: string;
  request(
    method: string,
    path: string,
    options?: RequestOptions,
  ): Promise<{ status: number; headers: Headers; body: any }>;
}

/** Options of one request. */
export interface RequestOptions {
  readonly body?: unknown;
  readonly raw?: string;
  readonly type?: string;
  readonly headers?: Record<string, string>;
  readonly token?: string | null;
}

/** Makes a small JSON client for tests. */
export function apiClient(url: string, token: string): Api {
  return {
    url,
    token,
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const auth = options.token === undefined ? token : options.token;
      if (auth !== null) headers['authorization'] = `Bearer ${auth}`;
      let body: string | undefined;
      if (options.raw !== undefined) body = options.raw;
      else if (options.body !== undefined) body = JSON.stringify(options.body);
      if (body !== undefined) headers['content-type'] = options.type ?? 'application/json';
      const response = await fetch(`${url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed };
    },
  };
}

/** A fresh temporary data dir. */
export function tempDir(prefix = 'consortium-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts `consortium dev` in this process on a free port with a temp data dir. */
export async function startInProcess(
  env: Record<string, string> = {},
): Promise<{ api: Api; parts: RunningProcess & ProcessParts; stop(): Promise<void> }> {
  const data = tempDir();
  const config = loadConfig({ dataDir: data.dir, port: 0, logLevel: 'warn' }, { ...env });
  let ready: { url: string; token: string } | undefined;
  const parts = await startDev(config, (r) => (ready = r));
  for (let i = 0; i < 200 && ready === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  if (ready === undefined) throw new Error('consortium dev did not start');
  return {
    api: apiClient(ready.url, ready.token),
    parts,
    stop: async () => {
      parts.stop();
      await parts.done;
      data.remove();
    },
  };
}

/** A running `consortium dev` binary. */
export interface BinaryServer {
  readonly api: Api;
  readonly child: ChildProcessWithoutNullStreams;
  readonly output: () => string;
}

/** Spawns the real binary and waits for its `url:` and `token:` lines. */
export async function spawnBinary(
  dataDir: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<BinaryServer> {
  const child = spawn(process.execPath, [BINARY, 'dev', '--port', '0', '--data-dir', dataDir, ...extraArgs], {
    env: { ...process.env, CONSORTIUM_LOG_FORMAT: 'json', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no url/token within 30s; stderr:\n${stderr}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const url = /^url: (\S+)$/m.exec(stdout)?.[1];
      const token = /^token: (\S+)$/m.exec(stdout)?.[1];
      if (url !== undefined && token !== undefined) {
        clearTimeout(timer);
        resolve({ url, token });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`consortium dev exited with ${String(code)}; stderr:\n${stderr}`));
    });
  });
  return { api: apiClient(ready.url, ready.token), child, output: () => `${stdout}\n${stderr}` };
}

/** Waits until `check` returns a value other than undefined, polling; fails after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  ms = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
