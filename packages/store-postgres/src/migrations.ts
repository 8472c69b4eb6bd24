/**
 * Versioned schema migrations of the PostgreSQL store, recorded in `schema_migrations`. A run takes a
 * transaction-scoped advisory lock first, so that several processes starting together apply each migration exactly
 * once: the others wait for the lock and then find nothing left to do. PostgreSQL's DDL is transactional, so a run
 * that fails leaves the schema as it was.
 */
import type { PoolClient } from 'pg';
import { BackendError } from '@consortium/core';

/** One step of the schema; `version` numbers start at 1 and grow by one. */
export interface PostgresMigration {
  readonly version: number;
  readonly name: string;
  /** The statements of the step; they run inside the migration transaction. */
  readonly sql: string;
}

/** The key of the advisory lock migration runs take (an arbitrary constant: "consortium" in ASCII, truncated). */
export const MIGRATION_LOCK_KEY = 0x636f6e736f72;

/** The schema of the PostgreSQL store, oldest first. Never edit a released migration: add a new one. */
export const postgresMigrations: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'initial schema',
    // Names and kinds are ordered by byte value (COLLATE "C"), as the SQLite store orders them, so that cursors
    // and `lt`/`gt` on names do not depend on the database's locale.
    sql: `
      CREATE TABLE nodes (
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        attrs jsonb NOT NULL,
        revision integer NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (kind, name)
      );
      CREATE INDEX nodes_attrs ON nodes USING gin (attrs jsonb_path_ops);
      CREATE TABLE observations (
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        provider text COLLATE "C" NOT NULL,
        attrs jsonb,
        at bigint NOT NULL,
        PRIMARY KEY (kind, name, provider),
        FOREIGN KEY (kind, name) REFERENCES nodes (kind, name) ON DELETE CASCADE
      );
      CREATE TABLE jobs (
        id text COLLATE "C" PRIMARY KEY,
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        state text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        events integer NOT NULL DEFAULT 0,
        record jsonb NOT NULL
      );
      CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
      CREATE INDEX jobs_by_state ON jobs (state, created_at DESC, id DESC);
      CREATE INDEX jobs_by_node ON jobs (kind, name, created_at DESC, id DESC);
      CREATE TABLE job_events (
        job_id text COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        at bigint NOT NULL,
        type text NOT NULL,
        data jsonb NOT NULL,
        PRIMARY KEY (job_id, seq)
      );
      CREATE TABLE audit (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        actor text NOT NULL,
        action text NOT NULL,
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        job_id text,
        before_attrs jsonb,
        after_attrs jsonb
      );
      CREATE INDEX audit_by_at ON audit (at DESC, id DESC);
      CREATE INDEX audit_by_node ON audit (kind, name, at DESC, id DESC);
      CREATE TABLE tokens (
        id text COLLATE "C" PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        role text NOT NULL,
        description text,
        created_at bigint NOT NULL,
        expires_at bigint
      );
      CREATE TABLE reservations (
        namespace text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        owner text NOT NULL,
        PRIMARY KEY (namespace, key)
      );
      CREATE INDEX reservations_by_owner ON reservations (namespace, owner);
    `,
  },
  {
    version: 2,
    name: 'value index of node attributes',
    // Each string (up to 256 characters) and number of a node's attributes under the dotted path a filter names it
    // by (array items under the path of their array), and each IPv4 address once more as a number under
    // "<path>/ipv4"; a trigger keeps the rows of a node in step with every write of it. The filter compiler narrows
    // eq, in, has, CIDR ranges and reference hops through it to index lookups (see filter-sql.ts).
    sql: `
      CREATE TABLE node_values (
        kind text COLLATE "C" NOT NULL,
        path text COLLATE "C" NOT NULL,
        value jsonb NOT NULL,
        name text COLLATE "C" NOT NULL,
        PRIMARY KEY (kind, path, value, name)
      );
      CREATE INDEX node_values_by_node ON node_values (kind, name);
      CREATE FUNCTION consortium_node_values(attrs jsonb) RETURNS TABLE (path text, value jsonb)
      LANGUAGE sql IMMUTABLE AS $fn$
        WITH RECURSIVE walk(path, value, depth) AS (
          SELECT e.key, e.value, 1
          FROM jsonb_each(CASE WHEN jsonb_typeof(attrs) = 'object' THEN attrs ELSE '{}'::jsonb END) e
          WHERE e.key ~ '^[a-z_][a-z0-9_]*$'
          UNION ALL
          SELECT CASE WHEN c.key IS NULL THEN w.path ELSE w.path || '.' || c.key END, c.value, w.depth + 1
          FROM walk w CROSS JOIN LATERAL (
            SELECT o.key, o.value
            FROM jsonb_each(CASE WHEN jsonb_typeof(w.value) = 'object' THEN w.value ELSE '{}'::jsonb END) o
            WHERE o.key ~ '^[a-z_][a-z0-9_]*$'
            UNION ALL
            SELECT NULL, a.value
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(w.value) = 'array' THEN w.value ELSE '[]'::jsonb END) a
          ) c
          WHERE w.depth < 16 AND jsonb_typeof(w.value) IN ('object', 'array')
        )
        SELECT path, value FROM walk
        WHERE jsonb_typeof(value) = 'number' OR (jsonb_typeof(value) = 'string' AND length(value #>> '{}') <= 256)
        UNION
        SELECT path || '/ipv4', to_jsonb((value #>> '{}')::inet - '0.0.0.0'::inet) FROM walk
        WHERE jsonb_typeof(value) = 'string' AND (value #>> '{}') ~
          '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$'
      $fn$;
      CREATE FUNCTION consortium_node_values_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP <> 'INSERT' THEN
          DELETE FROM node_values WHERE kind = OLD.kind AND name = OLD.name;
        END IF;
        IF TG_OP <> 'DELETE' THEN
          INSERT INTO node_values (kind, path, value, name)
          SELECT NEW.kind, v.path, v.value, NEW.name FROM consortium_node_values(NEW.attrs) v
          ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
      END
      $fn$;
      CREATE TRIGGER nodes_values AFTER INSERT OR UPDATE OR DELETE ON nodes
        FOR EACH ROW EXECUTE FUNCTION consortium_node_values_sync();
      INSERT INTO node_values (kind, path, value, name)
      SELECT n.kind, v.path, v.value, n.name FROM nodes n, consortium_node_values(n.attrs) v
      ON CONFLICT DO NOTHING;
    `,
  },
  {
    version: 3,
    name: 'hooks and their deliveries',
    sql: `
      CREATE TABLE hooks (
        id text COLLATE "C" PRIMARY KEY,
        created_at bigint NOT NULL,
        record jsonb NOT NULL
      );
      CREATE TABLE deliveries (
        id text COLLATE "C" PRIMARY KEY,
        hook_id text COLLATE "C" NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
        created_at bigint NOT NULL,
        record jsonb NOT NULL
      );
      CREATE INDEX deliveries_by_hook ON deliveries (hook_id, created_at DESC, id DESC);
    `,
  },
];

/** The newest schema version in `migrations`, 0 for none. */
export function latestPostgresVersion(migrations: readonly PostgresMigration[] = postgresMigrations): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/** The schema version of the database `client` is connected to (0 when it has none yet). */
export async function currentPostgresVersion(client: PoolClient): Promise<number> {
  const exists = await client.query<{ table: string | null }>(
    `SELECT to_regclass('schema_migrations')::text AS table`,
  );
  if (exists.rows[0]?.table == null) return 0;
  const result = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  return result.rows[0]?.v ?? 0;
}

/**
 * Brings the database up to the newest of `migrations` in one transaction under the migration advisory lock and
 * returns the versions it applied (none when another process got there first). Throws `BackendError` when the
 * database is newer than `migrations` or a migration fails; the caller translates connection errors.
 */
export async function applyPostgresMigrations(
  client: PoolClient,
  migrations: readonly PostgresMigration[] = postgresMigrations,
): Promise<number[]> {
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) {
      throw new BackendError(
        `Migration "${migration.name}" has version ${migration.version}, expected ${i + 1}`,
      );
    }
  });
  const known = latestPostgresVersion(migrations);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at bigint NOT NULL
    )`);
    const version = await currentPostgresVersion(client);
    if (version > known) throw newerSchema(version, known);
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= version) continue;
      try {
        await client.query(migration.sql);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new BackendError(
          `Schema migration ${migration.version} (${migration.name}) failed: ${message}`,
          {
            cause: error,
          },
        );
      }
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** The error for a database written by a newer Consortium. */
export function newerSchema(version: number, known: number): BackendError {
  return new BackendError(
    `The database schema is at version ${version}, newer than the newest this Consortium knows (${known}); ` +
      'upgrade Consortium to open it',
    { details: { version, known } },
  );
}
