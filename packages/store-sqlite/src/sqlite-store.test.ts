import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BackendError,
  BackendUnavailableError,
  InputError,
  InternalError,
  PreconditionFailedError,
  decodeJobCursor,
  decodeNodeCursor,
  encodeJobCursor,
  encodeNodeCursor,
} from '@consortium/core';
import { describeStoreContract } from '@consortium/testkit';
import type { Migration } from './migrations.js';
import { applyMigrations, latestVersion, sqliteMigrations } from './migrations.js';
import type { SqliteStore } from './sqlite-store.js';
import { openSqliteStore } from './sqlite-store.js';
import { compileFilter } from './filter-sql.js';

const T0 = 1_700_000_000_000;

type ErrorClass = abstract new (...args: never[]) => Error;

/** Asserts that `fn` throws an instance of `type` with exactly `message`. */
function expectThrow(fn: () => unknown, type: ErrorClass, message: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(type);
  expect((error as Error).message).toBe(message);
}

/** Asserts that `promise` rejects with an instance of `type` with exactly `message`. */
async function expectReject(promise: Promise<unknown>, type: ErrorClass, message: string): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  expect((error as Error).message).toBe(message);
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'consortium-sqlite-'));
}

const NO_CUT =
  'SQLite is embedded: there is no connection to cut (a crash mid-write is undone by its journal)';

describeStoreContract(
  'sqlite',
  async () => {
    const dir = await tempDir();
    const path = join(dir, 'store.db');
    const store = await openSqliteStore({ path });
    return {
      store,
      reopen: () => openSqliteStore({ path }),
      cleanup: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  {
    secondInstance: true,
    cut: NO_CUT,
    freshDatabase: async () => {
      const dir = await tempDir();
      const path = join(dir, 'fresh.db');
      return {
        open: () => openSqliteStore({ path }),
        appliedMigrations: () => {
          const db = new Database(path, { readonly: true });
          try {
            const rows = db
              .prepare<[], { version: number }>('SELECT version FROM schema_migrations ORDER BY version')
              .all();
            return Promise.resolve(rows.map((row) => row.version));
          } finally {
            db.close();
          }
        },
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
);

describeStoreContract(
  'sqlite in memory',
  async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    return { store, cleanup: () => store.close() };
  },
  {
    secondInstance: 'a private in-memory database cannot be opened by a second instance',
    cut: NO_CUT,
    freshDatabase: 'a private in-memory database cannot be opened by a second instance',
  },
);

describe('SqliteStore', () => {
  let dir: string;
  let path: string;
  const open: SqliteStore[] = [];
  const raw: Database.Database[] = [];

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'store.db');
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    for (const db of raw.splice(0)) db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const openStore = async (options: { busyTimeoutMs?: number } = {}): Promise<SqliteStore> => {
    const store = await openSqliteStore({ path, ...options });
    open.push(store);
    return store;
  };

  const openRaw = (): Database.Database => {
    const db = new Database(path);
    raw.push(db);
    return db;
  };

  describe('opening', () => {
    it('puts the file in WAL mode', async () => {
      await openStore();
      const db = openRaw();
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    });

    it('applies every migration once and not again on reopen', async () => {
      const first = await openStore();
      await first.insertNode('host', 'web-01', { a: 1 }, T0);
      await first.close();
      const before = openRaw()
        .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
        .all() as { version: number; name: string; applied_at: number }[];
      expect(before.map((row) => row.version)).toEqual(sqliteMigrations.map((m) => m.version));
      const second = await openStore();
      const after = openRaw()
        .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
        .all();
      expect(after).toStrictEqual(before);
      expect((await second.getNode('host', 'web-01'))?.attrs).toEqual({ a: 1 });
    });

    it('refuses a database written by a newer schema', async () => {
      const store = await openStore();
      await store.close();
      const newer = latestVersion(sqliteMigrations) + 1;
      openRaw()
        .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
        .run(newer, 'from the future', T0);
      const error: unknown = await openSqliteStore({ path }).then(
        (unexpected) => {
          open.push(unexpected);
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BackendError);
      expect((error as Error).message).toBe(
        `The database schema is at version ${newer}, newer than the newest this Consortium knows ` +
          `(${newer - 1}); upgrade Consortium to open it`,
      );
    });

    it('reports a file it cannot open as a BackendError', async () => {
      const missing = join(dir, 'missing-dir', 'store.db');
      await expectReject(
        openSqliteStore({ path: missing }),
        BackendError,
        `Could not open the SQLite store at ${missing}: Cannot open database because the directory does not exist`,
      );
    });
  });

  describe('applyMigrations', () => {
    const steps: Migration[] = [
      { version: 1, name: 'one', up: (db) => db.exec('CREATE TABLE one (x INTEGER)') },
      { version: 2, name: 'two', up: (db) => db.exec('INSERT INTO one (x) VALUES (2)') },
    ];

    it('applies pending steps in order and skips applied ones', () => {
      const db = new Database(':memory:');
      raw.push(db);
      expect(applyMigrations(db, steps.slice(0, 1))).toEqual([1]);
      expect(applyMigrations(db, steps)).toEqual([2]);
      expect(applyMigrations(db, steps)).toEqual([]);
      expect(db.prepare('SELECT x FROM one').all()).toEqual([{ x: 2 }]);
    });

    it('rolls back a failing step and keeps the ones before it', () => {
      const db = new Database(':memory:');
      raw.push(db);
      const failing: Migration = {
        version: 3,
        name: 'broken',
        up: (d) => {
          d.exec('INSERT INTO one (x) VALUES (3)');
          d.exec('THIS IS NOT SQL');
        },
      };
      let error: unknown;
      try {
        applyMigrations(db, [...steps, failing]);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BackendError);
      expect((error as Error).message).toBe('Schema migration 3 (broken) failed');
      expect(db.prepare('SELECT x FROM one').all()).toEqual([{ x: 2 }]);
      expect(db.prepare('SELECT max(version) AS v FROM schema_migrations').get()).toEqual({ v: 2 });
    });

    it('refuses migrations that are not numbered 1, 2, 3, ...', () => {
      const db = new Database(':memory:');
      raw.push(db);
      expectThrow(
        () => applyMigrations(db, [{ ...steps[0]!, version: 2 }]),
        BackendError,
        'Migration "one" has version 2, expected 1',
      );
    });
  });

  describe('two processes on one file', () => {
    it('see each other’s writes and share the revision check', async () => {
      const a = await openStore();
      const b = await openStore();
      await a.insertNode('host', 'web-01', { power: 'off' }, T0);
      expect((await b.getNode('host', 'web-01'))?.attrs).toEqual({ power: 'off' });
      await b.updateNode('host', 'web-01', { power: 'on' }, T0 + 1, 1);
      const error: unknown = await a
        .updateNode('host', 'web-01', { power: 'off' }, T0 + 2, 1)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect((error as Error).message).toBe('Node host/web-01 is at revision 2, not 1');
      expect(await a.getNode('host', 'web-01')).toStrictEqual(await b.getNode('host', 'web-01'));
    });

    it('race for the same revision and reservation with exactly one winner', async () => {
      const a = await openStore();
      const b = await openStore();
      await a.insertNode('host', 'web-01', {}, T0);
      const updates = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? a : b).updateNode('host', 'web-01', { i }, T0 + i, 1),
        ),
      );
      expect(updates.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const reserved = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? a : b).reserve('subnet', '10.0.0.1', `owner-${i}`),
        ),
      );
      expect(reserved.filter(Boolean)).toHaveLength(1);
      expect(await b.listReservations('subnet')).toStrictEqual(await a.listReservations('subnet'));
      await a.createJob({
        id: 'job-1',
        kind: 'host',
        name: 'web-01',
        action: 'patch',
        state: 'queued',
        actor: 'dev',
        updates: [],
        before: null,
        createdAt: T0,
        updatedAt: T0,
      });
      const events = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? a : b).appendEvent('job-1', 'tick', { i }, T0 + i),
        ),
      );
      expect(events.map((e) => e.seq).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    it('waits for a busy writer and then gives up with a retryable error', async () => {
      const store = await openStore({ busyTimeoutMs: 50 });
      await store.insertNode('host', 'web-01', {}, T0);
      const db = openRaw();
      db.exec('BEGIN IMMEDIATE');
      const started = Date.now();
      const error: unknown = await store
        .updateNode('host', 'web-01', { a: 1 }, T0 + 1)
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeGreaterThanOrEqual(40);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as BackendUnavailableError).retryable).toBe(true);
      db.exec('ROLLBACK');
      expect((await store.updateNode('host', 'web-01', { a: 1 }, T0 + 1)).revision).toBe(2);
    });
  });

  it('refuses calls after close', async () => {
    const store = await openStore();
    await store.close();
    await expectReject(
      store.getNode('host', 'web-01'),
      InternalError,
      `The SQLite store at ${path} is closed`,
    );
  });

  it('answers filters on a simple attribute path from an expression index', async () => {
    const store = await openStore();
    openRaw().exec(`CREATE INDEX nodes_datacenter ON nodes (kind, json_extract(attrs, '$.datacenter'))`);
    const filter = compileFilter({ op: 'eq', field: 'datacenter', value: 'pek1' });
    const plan = openRaw()
      .prepare(`EXPLAIN QUERY PLAN SELECT name FROM nodes n WHERE n.kind = ? AND ${filter.sql}`)
      .all('host', ...filter.params) as { detail: string }[];
    expect(plan.map((row) => row.detail).join('\n')).toContain('nodes_datacenter');
    await store.insertNode('host', 'web-01', { datacenter: 'pek1' }, T0);
    expect(
      (await store.listNodes('host', { filter: { op: 'eq', field: 'datacenter', value: 'pek1' }, limit: 5 }))
        .items,
    ).toHaveLength(1);
  });
});

describe('compileFilter', () => {
  it('binds values and never writes them into the SQL', () => {
    const value = "x' OR 1=1 --";
    const compiled = compileFilter({
      op: 'and',
      args: [
        { op: 'eq', field: 'interfaces.ip', value },
        { op: 'glob', field: 'name', pattern: value },
        { op: 'in', field: 'rack', values: [value, 7] },
      ],
    });
    expect(compiled.sql).not.toContain('OR 1=1');
    expect(compiled.params).toEqual([value, value, value, 7]);
  });

  it('escapes [ in glob patterns', () => {
    expect(compileFilter({ op: 'glob', field: 'name', pattern: 'a[b]*' }).params).toEqual(['a[[]b]*']);
  });

  it('refuses filters nested too deep', () => {
    let filter: Parameters<typeof compileFilter>[0] = { op: 'exists', field: 'name' };
    for (let i = 0; i < 70; i += 1) filter = { op: 'not', arg: filter };
    expectThrow(() => compileFilter(filter), InputError, 'Filter is nested more than 64 levels deep');
  });

  // SQLite's expression depth limit is 1,000: 1,200 values as a flat chain are refused as "Expression tree is too large".
  it('evaluates an OR of 1,200 values, which as a flat chain SQLite refuses as "Expression tree is too large"', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      await store.insertNode('host', 'web-0', { present: true, tags: ['t1199'] }, T0);
      await store.insertNode('host', 'web-1', { present: true, tags: ['other'] }, T0);
      const names = Array.from({ length: 1200 }, (_, i) => `web-${i}`);
      const tags = Array.from(
        { length: 1200 },
        (_, i) => ({ op: 'has', field: 'tags', value: `t${i}` }) as const,
      );
      const page = await store.listNodes('host', {
        limit: 10,
        filter: {
          op: 'and',
          args: [
            { op: 'in', field: 'name', values: names },
            { op: 'or', args: tags },
          ],
        },
      });
      expect(page.items.map((n) => n.name)).toEqual(['web-0']);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('refuses an unknown operator', () => {
    const filter = JSON.parse('{"op":"like","field":"name","value":"x"}') as Parameters<
      typeof compileFilter
    >[0];
    expectThrow(() => compileFilter(filter), InputError, 'Unknown filter operator "like"');
  });
});

describe('cursors', () => {
  it('round-trip node names and job positions', () => {
    expect(decodeNodeCursor(encodeNodeCursor('web-01'))).toBe('web-01');
    expect(decodeJobCursor(encodeJobCursor({ createdAt: T0, id: 'job-1' }))).toEqual({
      createdAt: T0,
      id: 'job-1',
    });
  });

  it.each(['', '!!!', 'd2ViLTAx=', Buffer.from('{"a":1}').toString('base64url')])('refuse %j', (cursor) => {
    expectThrow(() => decodeJobCursor(cursor), InputError, 'Invalid cursor');
  });

  it('refuse node cursors that are not canonical base64url', () => {
    expectThrow(() => decodeNodeCursor(''), InputError, 'Invalid cursor');
    expectThrow(() => decodeNodeCursor('d2ViLTAx='), InputError, 'Invalid cursor');
  });
});
