/**
 * The ArangoDB schema: collections and persistent indexes, created idempotently, and a version document
 * (`meta/schema`) so that an older Consortium refuses a database a newer one has migrated. Every step only creates
 * what is missing (a collection another process created meanwhile is fine: error 1207; `ensureIndex` returns an
 * existing index), so several processes may open the same database at once.
 */
import type { Database } from 'arangojs';
import type { EnsurePersistentIndexOptions } from 'arangojs/indexes';
import { BackendError } from '@consortium/core';
import { ArangoErrorNum, arangoErrorNum } from './errors.js';

/** The collections of the store; their names are fixed, one store per database. */
export const Collections = {
  nodes: 'nodes',
  jobs: 'jobs',
  events: 'events',
  audit: 'audit',
  tokens: 'tokens',
  reservations: 'reservations',
  /** Hooks (webhooks) and their deliveries. */
  hooks: 'hooks',
  deliveries: 'deliveries',
  /** Edges from a node to the nodes its `x-ref` fields name; see `references.ts`. */
  refs: 'refs',
  /** The schema version document and the references the edges were derived with. */
  meta: 'meta',
} as const;

/** The `_key` of the schema version document in `meta`. */
export const SCHEMA_DOCUMENT = 'schema';

interface CollectionSpec {
  readonly name: string;
  readonly edge?: boolean;
  /** `padded` keys grow in lexicographic order; the audit log sorts ties by them. */
  readonly paddedKeys?: boolean;
  readonly indexes: readonly EnsurePersistentIndexOptions[];
}

/** One step of the schema; `version` numbers start at 1 and grow by one. */
export interface ArangoMigration {
  readonly version: number;
  readonly name: string;
  readonly collections: readonly CollectionSpec[];
}

const persistent = (
  name: string,
  fields: string[],
  options: { unique?: boolean } = {},
): EnsurePersistentIndexOptions => ({ type: 'persistent', name, fields, ...options });

/** The schema of the ArangoDB store, oldest first. Never edit a released migration: add a new one. */
export const arangoMigrations: readonly ArangoMigration[] = [
  {
    version: 1,
    name: 'initial collections and indexes',
    // `meta` is made before any migration runs, since it holds the version.
    collections: [
      {
        name: Collections.nodes,
        // Unique, and the order of listNodes pages: kind equal, name ascending, `name > cursor`.
        indexes: [persistent('nodes_kind_name', ['kind', 'name'], { unique: true })],
      },
      {
        name: Collections.refs,
        edge: true,
        // The edge index covers _from and _to; this one serves the hop's `_from == … AND field == …` and the
        // rebuild that drops the edges of one kind.
        indexes: [
          persistent('refs_from_field', ['_from', 'field']),
          persistent('refs_from_kind', ['fromKind']),
        ],
      },
      {
        name: Collections.jobs,
        indexes: [
          persistent('jobs_created', ['createdAt', 'id']),
          persistent('jobs_state_created', ['state', 'createdAt', 'id']),
          persistent('jobs_node_created', ['kind', 'name', 'createdAt', 'id']),
        ],
      },
      {
        name: Collections.events,
        // Unique: two appends that computed the same next number cannot both land.
        indexes: [persistent('events_job_seq', ['jobId', 'seq'], { unique: true })],
      },
      {
        name: Collections.audit,
        paddedKeys: true,
        indexes: [persistent('audit_at', ['at']), persistent('audit_node_at', ['kind', 'name', 'at'])],
      },
      {
        name: Collections.tokens,
        indexes: [persistent('tokens_hash', ['hash'], { unique: true })],
      },
      {
        name: Collections.reservations,
        // Unique: the index, not a read before the write, decides who gets a key.
        indexes: [
          persistent('reservations_namespace_key', ['namespace', 'key'], { unique: true }),
          persistent('reservations_namespace_owner', ['namespace', 'owner']),
        ],
      },
    ],
  },
  {
    version: 2,
    name: 'hooks and their deliveries',
    collections: [
      { name: Collections.hooks, indexes: [persistent('hooks_created', ['createdAt', 'id'])] },
      {
        name: Collections.deliveries,
        indexes: [persistent('deliveries_hook_created', ['hookId', 'createdAt', 'id'])],
      },
    ],
  },
];

/** The newest schema version in `migrations`, 0 for none. */
export function latestVersion(migrations: readonly ArangoMigration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/**
 * Brings the database up to the newest of `migrations` and returns the versions it applied; `attributeIndexes`
 * (dotted attribute paths) get a persistent index on `[kind, attrs.<path>]` every time, since they come from the
 * configuration rather than from a release. Throws `BackendError` for a database written by a newer schema;
 * ArangoDB errors pass through untranslated.
 */
export async function applyMigrations(
  db: Database,
  migrations: readonly ArangoMigration[] = arangoMigrations,
  attributeIndexes: readonly string[] = [],
): Promise<number[]> {
  const known = latestVersion(migrations);
  await ensureCollection(db, { name: Collections.meta, indexes: [] });
  const meta = db.collection(Collections.meta);
  const current = await readVersion(db);
  refuseNewer(current, known);
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    for (const spec of migration.collections) await ensureCollection(db, spec);
    // One record per migration (a second process that ran the same idempotent steps meanwhile adds none).
    const record = {
      _key: `migration-${migration.version}`,
      version: migration.version,
      name: migration.name,
      at: Date.now(),
    };
    await retryRaces(() =>
      db.query({
        query: 'INSERT @doc INTO @@meta OPTIONS { overwriteMode: "ignore" }',
        bindVars: { doc: record, '@meta': meta.name },
      }),
    );
    await retryRaces(() =>
      db.query({
        // Never lowers a version another process raised meanwhile.
        query:
          'UPSERT { _key: @key } INSERT { _key: @key, version: @version, appliedAt: @at } ' +
          'UPDATE { version: MAX([OLD.version, @version]), appliedAt: @at } IN @@meta',
        bindVars: { key: SCHEMA_DOCUMENT, version: migration.version, at: Date.now(), '@meta': meta.name },
      }),
    );
    applied.push(migration.version);
  }
  const nodes = db.collection(Collections.nodes);
  for (const path of attributeIndexes) {
    if (!/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/.test(path)) {
      throw new BackendError(`Cannot index the attribute path ${JSON.stringify(path)}: not a dotted path`);
    }
    await ensureIndex(
      db,
      nodes.name,
      persistent(`nodes_attr_${path.replaceAll('.', '_')}`, ['kind', `attrs.${path}`]),
    );
  }
  return applied;
}

/**
 * Checks, without changing anything, that the database's schema is the newest of `migrations`; throws
 * `BackendError` when it is behind (naming the command that migrates it) or newer.
 */
export async function checkSchema(
  db: Database,
  database: string,
  migrations: readonly ArangoMigration[] = arangoMigrations,
): Promise<void> {
  const known = latestVersion(migrations);
  const current = await readVersion(db);
  refuseNewer(current, known);
  if (current < known) {
    throw new BackendError(
      `The ArangoDB schema of ${database} is at version ${current}, this Consortium needs ${known}; ` +
        'run `consortium store migrate` first',
    );
  }
}

function refuseNewer(current: number, known: number): void {
  if (current > known) {
    throw new BackendError(
      `The ArangoDB schema is at version ${current}, newer than the newest this Consortium knows (${known}); ` +
        'upgrade Consortium to open it',
    );
  }
}

/** The schema version recorded in the database, 0 when none is (or there is no `meta` collection yet). */
export async function readVersion(db: Database): Promise<number> {
  try {
    const cursor = await db.query<number | null>({
      query: 'FOR m IN @@meta FILTER m._key == @key RETURN m.version',
      bindVars: { key: SCHEMA_DOCUMENT, '@meta': Collections.meta },
    });
    const [version] = await cursor.all();
    return typeof version === 'number' ? version : 0;
  } catch (error) {
    if (arangoErrorNum(error) === ArangoErrorNum.DATA_SOURCE_NOT_FOUND) return 0;
    throw error;
  }
}

/**
 * Runs a write on `meta` again when another process wrote the same document at the same moment (a write-write
 * conflict or, for two inserts, a duplicate key); the next try sees the other's write.
 */
export async function retryRaces<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await write();
    } catch (error) {
      const num = arangoErrorNum(error);
      const raced = num === ArangoErrorNum.CONFLICT || num === ArangoErrorNum.UNIQUE_CONSTRAINT_VIOLATED;
      if (!raced || attempt >= 8) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

async function ensureCollection(db: Database, spec: CollectionSpec): Promise<void> {
  const collection = db.collection(spec.name);
  if (!(await collection.exists())) {
    try {
      if (spec.edge === true) await db.createEdgeCollection(spec.name);
      else
        await db.createCollection(
          spec.name,
          spec.paddedKeys === true ? { keyOptions: { type: 'padded' } } : {},
        );
    } catch (error) {
      // Another process created it between our check and our create.
      if (arangoErrorNum(error) !== ArangoErrorNum.DUPLICATE_NAME) throw error;
    }
  }
  for (const index of spec.indexes) await ensureIndex(db, spec.name, index);
}

/** `ensureIndex`, again a few times when another process is creating the same index at the same moment. */
async function ensureIndex(
  db: Database,
  collection: string,
  index: EnsurePersistentIndexOptions,
): Promise<void> {
  const racing = new Set<number>([
    ArangoErrorNum.CONFLICT,
    ArangoErrorNum.DUPLICATE_NAME,
    ArangoErrorNum.UNIQUE_CONSTRAINT_VIOLATED,
    ArangoErrorNum.INDEX_CREATION_FAILED,
  ]);
  for (let attempt = 1; ; attempt += 1) {
    try {
      await db.collection(collection).ensureIndex(index);
      return;
    } catch (error) {
      const num = arangoErrorNum(error);
      if (num === undefined || !racing.has(num) || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}
