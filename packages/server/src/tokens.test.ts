import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '@consortium/core';
import { InputError, NotFoundError } from '@consortium/core';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import { openSqliteStore } from '@consortium/store-sqlite';
import {
  DEV_TOKEN_FILE,
  MAX_TOKEN_DESCRIPTION,
  MAX_TOKEN_TTL_SECONDS,
  createToken,
  devAdminToken,
  hashToken,
  revokeToken,
} from './tokens.js';
import { authenticate } from './web/auth.js';
import { problemHandler } from './web/problem.js';

const T0 = 1_700_000_000_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function memoryStore(): Promise<Store> {
  const store = await openSqliteStore({ path: ':memory:' });
  cleanups.push(() => store.close());
  return store;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error,
  );
}

describe('createToken', () => {
  it.each([
    [
      { ttlSeconds: 1e300 },
      `a token TTL must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS} (ten years)`,
    ],
    [
      { ttlSeconds: 0.5 },
      `a token TTL must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS} (ten years)`,
    ],
    [
      { description: 'x'.repeat(500_000) },
      `a token description has at most ${MAX_TOKEN_DESCRIPTION} characters`,
    ],
  ])('refuses %#', async (options, message) => {
    const store = await memoryStore();
    const error = await rejection(createToken(store, { role: 'reader', now: T0, ...options }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(message);
    expect(await store.listTokens()).toEqual([]);
  });

  it('takes the longest TTL and description', async () => {
    const store = await memoryStore();
    const { record } = await createToken(store, {
      role: 'reader',
      now: T0,
      ttlSeconds: MAX_TOKEN_TTL_SECONDS,
      description: 'x'.repeat(MAX_TOKEN_DESCRIPTION),
    });
    expect(record.expiresAt).toBe(T0 + MAX_TOKEN_TTL_SECONDS * 1000);
  });
});

describe('devAdminToken', () => {
  it('keeps one admin token in the data dir (0600) and reuses it while the store knows it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'consortium-tokens-'));
    cleanups.push(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    writeFileSync(join(dir, 'consortium.db'), '', { mode: 0o644 });
    const store = await memoryStore();
    const first = await devAdminToken(store, dir, T0);
    const second = await devAdminToken(store, dir, T0 + 1);
    expect(second).toBe(first);
    expect(await store.listTokens()).toHaveLength(1);
    expect((await readFile(join(dir, DEV_TOKEN_FILE), 'utf8')).trim()).toBe(first);
    expect(statSync(join(dir, DEV_TOKEN_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'consortium.db')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    // Revoked (or a fresh store): a new one replaces the file.
    const [token] = await store.listTokens();
    await store.deleteToken(token!.id);
    const third = await devAdminToken(store, dir, T0 + 2);
    expect(third).not.toBe(first);
    expect((await store.findToken(hashToken(third)))?.role).toBe('admin');
    expect((await readFile(join(dir, DEV_TOKEN_FILE), 'utf8')).trim()).toBe(third);
  });
});

describe('revokeToken', () => {
  it('stops a cached token at once on every web process', async () => {
    const store = await memoryStore();
    const cluster = new MemoryCluster();
    const webA = new MemoryCoordinator(cluster, { memberId: 'web-a' });
    const webB = new MemoryCoordinator(cluster, { memberId: 'web-b' });
    cleanups.push(
      () => webA.close(),
      () => webB.close(),
    );
    const { secret, record } = await createToken(store, { role: 'operator', now: T0 });

    // Web process B, whose cache would trust the token for TOKEN_CACHE_MS.
    const app = express();
    const auth = authenticate(store, webB, () => T0);
    cleanups.push(() => {
      auth.close();
    });
    app.use(auth);
    app.get('/whoami', (_req, res) => {
      res.json(res.locals['caller']);
    });
    app.use(problemHandler(winston.createLogger({ silent: true })));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) =>
          server.close(() => {
            resolve();
          }),
        ),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/whoami`;
    const call = () => fetch(url, { headers: { authorization: `Bearer ${secret}` } });

    expect((await call()).status).toBe(200);
    await revokeToken(store, webA, record.id);
    // No waiting: the in-process coordinator delivers before `notify` resolves, as etcd does within its latency.
    const after = await call();
    expect(after.status).toBe(401);
    expect(await after.json()).toMatchObject({ code: 'UNAUTHENTICATED', detail: 'unknown token' });

    const error = await rejection(revokeToken(store, webA, record.id));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(`token ${record.id} does not exist`);
  });
});
