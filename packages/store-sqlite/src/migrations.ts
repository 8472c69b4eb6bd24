/**
 * Versioned schema migrations. Each migration runs once, in its own immediate transaction, and is recorded in
 * `schema_migrations`; several processes opening the same file at once apply each migration exactly once.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { BackendError } from '@consortium/core';
import { nodeValueWriter } from './node-values.js';

/** One step of the schema; `version` numbers start at 1 and grow by one. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** Applies the step; runs inside a transaction, so it must not begin or commit one itself. */
  readonly up: (db: BetterSqlite3.Database) => void;
}

/** The schema of the SQLite store, oldest first. Never edit a released migration: add a new one. */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: (db) => {
      db.exec(`
        CREATE TABLE nodes (
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          attrs TEXT NOT NULL CHECK (json_valid(attrs)),
          revision INTEGER NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (kind, name)
        );
        CREATE TABLE observations (
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          provider TEXT NOT NULL,
          attrs TEXT CHECK (attrs IS NULL OR json_valid(attrs)),
          at INTEGER NOT NULL,
          PRIMARY KEY (kind, name, provider),
          FOREIGN KEY (kind, name) REFERENCES nodes (kind, name) ON DELETE CASCADE
        );
        CREATE TABLE jobs (
          id TEXT PRIMARY KEY,
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          state TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          record TEXT NOT NULL CHECK (json_valid(record))
        );
        CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
        CREATE INDEX jobs_by_state ON jobs (state, created_at DESC, id DESC);
        CREATE INDEX jobs_by_node ON jobs (kind, name, created_at DESC, id DESC);
        CREATE TABLE job_events (
          job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          at INTEGER NOT NULL,
          type TEXT NOT NULL,
          data TEXT NOT NULL CHECK (json_valid(data)),
          PRIMARY KEY (job_id, seq)
        );
        CREATE TABLE audit (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at INTEGER NOT NULL,
          actor TEXT NOT NULL,
          action TEXT NOT NULL,
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          job_id TEXT,
          before_attrs TEXT,
          after_attrs TEXT
        );
        CREATE INDEX audit_by_at ON audit (at DESC, id DESC);
        CREATE INDEX audit_by_node ON audit (kind, name, at DESC, id DESC);
        CREATE TABLE tokens (
          id TEXT PRIMARY KEY,
          hash TEXT NOT NULL UNIQUE,
          role TEXT NOT NULL,
          description TEXT,
          created_at INTEGER NOT NULL,
          expires_at INTEGER
        );
        CREATE TABLE reservations (
          namespace TEXT NOT NULL,
          key TEXT NOT NULL,
          owner TEXT NOT NULL,
          PRIMARY KEY (namespace, key)
        );
        CREATE INDEX reservations_by_owner ON reservations (namespace, owner);
      `);
    },
  },
  {
    version: 2,
    name: 'value index of node attributes',
    up: (db) => {
      // The value column has no type (no affinity): strings stay strings and numbers numbers, as in the JSON.
      db.exec(`
        CREATE TABLE node_values (
          kind TEXT NOT NULL,
          path TEXT NOT NULL,
          value NOT NULL,
          name TEXT NOT NULL,
          PRIMARY KEY (kind, path, value, name)
        ) WITHOUT ROWID;
        CREATE INDEX node_values_by_node ON node_values (kind, name);
      `);
      const values = nodeValueWriter(db);
      // A page at a time: better-sqlite3 runs no other statement while an iterator is open.
      const page = db.prepare<[string, string, string], { kind: string; name: string; attrs: string }>(
        'SELECT kind, name, attrs FROM nodes WHERE kind > ? OR (kind = ? AND name > ?) ' +
          'ORDER BY kind, name LIMIT 1000',
      );
      let after = { kind: '', name: '' };
      for (;;) {
        const rows = page.all(after.kind, after.kind, after.name);
        for (const row of rows)
          values.write(row.kind, row.name, JSON.parse(row.attrs) as Record<string, never>);
        const last = rows[rows.length - 1];
        if (last === undefined) break;
        after = last;
      }
    },
  },
  {
    version: 3,
    name: 'hooks and their deliveries',
    up: (db) => {
      db.exec(`
        CREATE TABLE hooks (
          id TEXT PRIMARY KEY,
          created_at INTEGER NOT NULL,
          record TEXT NOT NULL CHECK (json_valid(record))
        );
        CREATE TABLE deliveries (
          id TEXT PRIMARY KEY,
          hook_id TEXT NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
          created_at INTEGER NOT NULL,
          record TEXT NOT NULL CHECK (json_valid(record))
        );
        CREATE INDEX deliveries_by_hook ON deliveries (hook_id, created_at DESC, id DESC);
      `);
    },
  },
];

/** The newest schema version in `migrations`, 0 for none. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/**
 * Brings the database up to the newest of `migrations` and returns the versions it applied. Throws `BackendError`
 * when the database was written by a newer schema than `migrations` knows, or when a migration fails (that
 * migration is rolled back; the ones before it stay applied).
 */
export function applyMigrations(db: BetterSqlite3.Database, migrations: readonly Migration[]): number[] {
  checkMigrations(migrations);
  const known = latestVersion(migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const current = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  const record = db.prepare<[number, string, number]>(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );
  const refuseNewer = (version: number): void => {
    if (version > known) {
      throw new BackendError(
        `The database schema is at version ${version}, newer than the newest this Consortium knows (${known}); ` +
          'upgrade Consortium to open it',
        { details: { version, known } },
      );
    }
  };
  refuseNewer(current.get()?.v ?? 0);
  const applied: number[] = [];
  for (const migration of migrations) {
    // Immediate: take the write lock before reading the version, so two processes never apply the same step.
    const step = db.transaction(() => {
      const version = current.get()?.v ?? 0;
      refuseNewer(version);
      if (version >= migration.version) return false;
      try {
        migration.up(db);
      } catch (error) {
        throw new BackendError(`Schema migration ${migration.version} (${migration.name}) failed`, {
          cause: error,
        });
      }
      record.run(migration.version, migration.name, Date.now());
      return true;
    });
    if (step.immediate()) applied.push(migration.version);
  }
  return applied;
}

function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) {
      throw new BackendError(
        `Migration "${migration.name}" has version ${migration.version}, expected ${i + 1}`,
      );
    }
  });
}
