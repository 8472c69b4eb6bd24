/**
 * The value index follows every write of a node (insert, update, delete, import) and is built for the nodes of a
 * store written before it existed, so that filters narrowed through it find exactly what they find without it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Filter } from '@consortium/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyMigrations, sqliteMigrations } from './migrations.js';
import { nodeValues } from './node-values.js';
import { openSqliteStore } from './sqlite-store.js';
import type { SqliteStore } from './sqlite-store.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-values-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const names = async (store: SqliteStore, filter: Filter): Promise<string[]> =>
  (await store.listNodes('host', { filter, limit: 100 })).items.map((n) => n.name);

describe('nodeValues', () => {
  it('lists strings and numbers under their dotted paths, array items under their array, addresses twice', () => {
    expect(
      nodeValues({
        present: true,
        rack: 3,
        roles: ['a', 'b', 'a'],
        interfaces: [{ name: 'eth0', ip: '10.0.0.1', vlans: [[7]] }],
        'Bad-Key': 'x',
        nothing: null,
        long: 'x'.repeat(257),
      }),
    ).toEqual([
      ['rack', 3],
      ['roles', 'a'],
      ['roles', 'b'],
      ['interfaces.name', 'eth0'],
      ['interfaces.ip', '10.0.0.1'],
      ['interfaces.ip/ipv4', 167772161],
      ['interfaces.vlans', 7],
    ]);
  });
});

describe('the value index of the SQLite store', () => {
  it('follows updates and deletes', async () => {
    const store = await openSqliteStore({ path: join(dir, 'a.db') });
    try {
      await store.insertNode('host', 'web-01', { present: true, datacenter: 'pek1', tags: ['x'] }, 0);
      await store.insertNode('host', 'web-02', { present: true, datacenter: 'pek1' }, 0);
      const pek1: Filter = { op: 'eq', field: 'datacenter', value: 'pek1' };
      const pek2: Filter = { op: 'eq', field: 'datacenter', value: 'pek2' };
      expect(await names(store, pek1)).toEqual(['web-01', 'web-02']);
      await store.updateNode('host', 'web-01', { present: true, datacenter: 'pek2', tags: ['y'] }, 1);
      expect(await names(store, pek1)).toEqual(['web-02']);
      expect(await names(store, pek2)).toEqual(['web-01']);
      expect(await names(store, { op: 'has', field: 'tags', value: 'x' })).toEqual([]);
      expect(await names(store, { op: 'has', field: 'tags', value: 'y' })).toEqual(['web-01']);
      await store.deleteNode('host', 'web-02');
      await store.deleteNode('host', 'web-01', 2);
      expect(await names(store, pek1)).toEqual([]);
      expect(await names(store, pek2)).toEqual([]);
      // A node of the same name later starts from its own values only.
      await store.insertNode('host', 'web-01', { present: true }, 2);
      expect(await names(store, pek2)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('is built for the nodes of a store written before it existed', async () => {
    const path = join(dir, 'old.db');
    const db = new Database(path);
    applyMigrations(db, sqliteMigrations.slice(0, 1));
    const insert = db.prepare(
      'INSERT INTO nodes (kind, name, attrs, revision, created_at, updated_at) VALUES (?, ?, ?, 1, 0, 0)',
    );
    db.transaction(() => {
      for (let i = 0; i < 2500; i++) {
        const attrs = { present: true, group: `g${i % 1000}` };
        insert.run('host', `h${String(i).padStart(4, '0')}`, JSON.stringify(attrs));
      }
    })();
    db.close();
    const store = await openSqliteStore({ path });
    try {
      expect(await names(store, { op: 'eq', field: 'group', value: 'g7' })).toEqual([
        'h0007',
        'h1007',
        'h2007',
      ]);
    } finally {
      await store.close();
    }
  });

  it('is written by an import', async () => {
    const store = await openSqliteStore({ path: join(dir, 'b.db') });
    try {
      await store.importRecords([
        {
          type: 'node',
          node: {
            kind: 'host',
            name: 'imported',
            attrs: { present: true, interfaces: [{ name: 'eth0', ip: '10.1.2.3' }] },
            revision: 4,
            observed: {},
            createdAt: 0,
            updatedAt: 0,
          },
        },
      ]);
      expect(await names(store, { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.2.0/24' })).toEqual([
        'imported',
      ]);
    } finally {
      await store.close();
    }
  });
});
