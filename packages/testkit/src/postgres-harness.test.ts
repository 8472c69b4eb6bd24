import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_TEST_USER, findPostgresBinDir, startPostgres } from './postgres-harness.js';
import type { PostgresHarness } from './postgres-harness.js';

async function one(url: string, sql: string): Promise<Record<string, unknown> | undefined> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(sql)).rows[0];
  } finally {
    await client.end();
  }
}

describe('PostgreSQL harness', () => {
  let server: PostgresHarness;

  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);

  afterAll(async () => {
    await server.stop();
  });

  it('finds Debian’s binaries', () => {
    expect(findPostgresBinDir()).toMatch(/^\/usr\/lib\/postgresql\/\d+(\.\d+)?\/bin$/);
  });

  it('runs the server as an unprivileged user that owns its directory', () => {
    const pid = Number(readFileSync(`${server.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    const user = execFileSync('ps', ['-o', 'user=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    if (process.getuid?.() === 0) {
      expect(server.osUser).toBe(POSTGRES_TEST_USER);
      expect(user).toBe(POSTGRES_TEST_USER);
      const uid = Number(execFileSync('id', ['-u', POSTGRES_TEST_USER], { encoding: 'utf8' }).trim());
      expect(statSync(server.dataDir).uid).toBe(uid);
    } else {
      expect(user).not.toBe('root');
    }
  });

  it('listens on loopback only and refuses a wrong password', async () => {
    expect(server.url).toBe(
      `postgres://postgres:${encodeURIComponent(server.password)}@127.0.0.1:${server.port}/postgres`,
    );
    expect(await one(server.url, "SELECT current_setting('listen_addresses') AS a")).toEqual({
      a: '127.0.0.1',
    });
    const wrong = new URL(server.url);
    wrong.password = 'nope';
    await expect(one(wrong.toString(), 'SELECT 1')).rejects.toThrow(
      'password authentication failed for user "postgres"',
    );
  });

  it('creates fresh, separate databases and drops them', async () => {
    const a = await server.createDatabase();
    const b = await server.createDatabase();
    expect(a).not.toBe(b);
    await one(a, 'CREATE TABLE t (x int)');
    expect(await one(b, "SELECT to_regclass('t') AS t")).toEqual({ t: null });
    await server.dropDatabase(a);
    await server.dropDatabase(a);
    const names = await server.query('SELECT datname FROM pg_database WHERE datname = $1', [
      new URL(a).pathname.slice(1),
    ]);
    expect(names).toEqual([]);
    await server.dropDatabase(b);
  });

  it('keeps the data across a kill and a restart on the same port', async () => {
    const url = await server.createDatabase();
    await one(url, 'CREATE TABLE kept (x int)');
    await one(url, 'INSERT INTO kept VALUES (42)');
    await server.kill('SIGKILL');
    await expect(one(url, 'SELECT 1')).rejects.toThrow();
    await server.restart();
    expect(await one(url, 'SELECT x FROM kept')).toEqual({ x: 42 });
    await server.restart();
    expect(await one(url, 'SELECT x FROM kept')).toEqual({ x: 42 });
    await server.dropDatabase(url);
  });

  it('removes everything when stopped, once or twice', async () => {
    const other = await startPostgres();
    const root = dirname(other.dataDir);
    expect(existsSync(root)).toBe(true);
    await other.stop();
    await other.stop();
    expect(existsSync(root)).toBe(false);
    await expect(one(other.url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await expect(other.restart()).rejects.toThrow('PostgreSQL harness was stopped; start a new one');
  }, 60_000);
});
