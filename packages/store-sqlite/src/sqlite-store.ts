/**
 * The embedded store: SQLite through better-sqlite3 in WAL mode, so that several processes on one host can share
 * one file. better-sqlite3 is synchronous; the methods still return promises to honour the port. Every
 * read-then-write runs in an immediate transaction, which takes the write lock up front (waiting up to the busy
 * timeout) instead of failing when another process committed in between.
 */
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import {
  BackendError,
  BackendUnavailableError,
  ConflictError,
  InputError,
  InternalError,
  NotFoundError,
  isConsortiumError,
  applyJobPatch,
  auditRow,
  checkPageLimit,
  staleRevision,
  decodeAuditCursor,
  decodeJobCursor,
  encodeAuditCursor,
  decodeNodeCursor,
  encodeJobCursor,
  encodeNodeCursor,
} from '@consortium/core';
import type {
  Attrs,
  AuditEntry,
  DeliveryPatch,
  DeliveryRecord,
  HookRecord,
  JobEvent,
  JobPatch,
  JobRecord,
  JsonObject,
  ListAuditOptions,
  ListDeliveriesOptions,
  ListJobsOptions,
  ListNodesOptions,
  NodeObservation,
  Page,
  Reservation,
  Role,
  JobEnding,
  Store,
  StoredNode,
  StoreRecord,
  StoreRecordType,
  StoreTransfer,
  TokenRecord,
} from '@consortium/core';
import { compileFilter, IPV4_IN_FUNCTION, ipv4In } from './filter-sql.js';
import { SqliteHooks } from './hooks.js';
import { applyMigrations, sqliteMigrations } from './migrations.js';
import { nodeValueWriter } from './node-values.js';
import type { NodeValueWriter } from './node-values.js';
import { countSqliteRecords, exportSqliteRecords, importSqliteRecords } from './transfer.js';

/** Where and how to open the SQLite store. */
export interface SqliteStoreOptions {
  /** The database file, created if missing; `:memory:` for a private in-memory database. */
  readonly path: string;
  /** How long a write waits for another connection's lock before failing with `BackendUnavailableError`. */
  readonly busyTimeoutMs?: number;
}

/** The default wait for another process's write lock. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

const STATEMENT_CACHE_SIZE = 256;

interface NodeRow {
  readonly kind: string;
  readonly name: string;
  readonly attrs: string;
  readonly revision: number;
  readonly created_at: number;
  readonly updated_at: number;
}

interface ObservationRow {
  readonly name: string;
  readonly provider: string;
  readonly attrs: string | null;
  readonly at: number;
}

interface JobRow {
  readonly record: string;
}

interface EventRow {
  readonly job_id: string;
  readonly seq: number;
  readonly at: number;
  readonly type: string;
  readonly data: string;
}

interface AuditRow {
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly kind: string;
  readonly name: string;
  readonly job_id: string | null;
  readonly before_attrs: string | null;
  readonly after_attrs: string | null;
}

interface TokenRow {
  readonly id: string;
  readonly hash: string;
  readonly role: string;
  readonly description: string | null;
  readonly created_at: number;
  readonly expires_at: number | null;
}

type Param = string | number | null;

type Statements = ReturnType<typeof prepareStatements>;

/** Opens (creating and migrating if needed) the SQLite store at `options.path`; throws `BackendError`. */
export function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  try {
    return Promise.resolve(new SqliteStore(options));
  } catch (error) {
    if (isConsortiumError(error)) return Promise.reject(error);
    const message = error instanceof Error ? error.message : String(error);
    return Promise.reject(
      new BackendError(`Could not open the SQLite store at ${options.path}: ${message}`, { cause: error }),
    );
  }
}

/** The `Store` port on SQLite; open it with `openSqliteStore`. */
export class SqliteStore implements Store, StoreTransfer {
  /** The database file this store was opened on. */
  readonly path: string;
  private readonly db: BetterSqlite3.Database;
  private readonly dynamic = new Map<string, BetterSqlite3.Statement<Param[]>>();
  private closed = false;

  private readonly stmt: Statements;
  private readonly values: NodeValueWriter;
  private readonly hooks: SqliteHooks;

  /** Opens and migrates the database synchronously; prefer `openSqliteStore`. Throws SQLite errors untranslated. */
  constructor(options: SqliteStoreOptions) {
    this.path = options.path;
    const db = new Database(options.path, { timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (options.path !== ':memory:' && options.path !== '' && mode !== 'wal') {
        throw new BackendError(
          `Could not switch ${options.path} to WAL mode (it is in ${String(mode)} mode)`,
        );
      }
      db.pragma('foreign_keys = ON');
      db.function(IPV4_IN_FUNCTION, { deterministic: true }, ipv4In);
      applyMigrations(db, sqliteMigrations);
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
    this.stmt = prepareStatements(db);
    this.values = nodeValueWriter(db);
    this.hooks = new SqliteHooks(db);
  }

  getNode(kind: string, name: string): Promise<StoredNode | undefined> {
    return this.run(() => {
      const row = this.stmt.getNode.get(kind, name);
      return row === undefined ? undefined : this.withObservations(row);
    });
  }

  listNodes(kind: string, options: ListNodesOptions): Promise<Page<StoredNode>> {
    return this.run(() => {
      const limit = checkPageLimit(options.limit);
      const query = listNodesQuery(kind, options, limit + 1);
      const rows = this.prepared<NodeRow>(query.sql).all(...query.params);
      const more = rows.length > limit;
      const pageRows = more ? rows.slice(0, limit) : rows;
      const observed = new Map<string, ObservationRow[]>();
      if (pageRows.length > 0) {
        const names = JSON.stringify(pageRows.map((row) => row.name));
        for (const obs of this.stmt.observationsOfNames.all(kind, names)) {
          const list = observed.get(obs.name);
          if (list === undefined) observed.set(obs.name, [obs]);
          else list.push(obs);
        }
      }
      const items = pageRows.map((row) => toStoredNode(row, observed.get(row.name) ?? []));
      const last = pageRows[pageRows.length - 1];
      return more && last !== undefined ? { items, next: encodeNodeCursor(last.name) } : { items };
    });
  }

  insertNode(kind: string, name: string, attrs: Attrs, at: number): Promise<StoredNode> {
    return this.run(() =>
      this.immediate(() => {
        const row = this.stmt.insertNode.get(kind, name, JSON.stringify(attrs), at, at);
        if (row === undefined) throw new ConflictError(`Node ${kind}/${name} already exists`);
        this.values.write(kind, name, attrs);
        return toStoredNode(row, []);
      }),
    );
  }

  updateNode(
    kind: string,
    name: string,
    attrs: Attrs,
    at: number,
    expectedRevision?: number,
  ): Promise<StoredNode> {
    return this.run(() =>
      this.immediate(() => {
        const json = JSON.stringify(attrs);
        const row =
          expectedRevision === undefined
            ? this.stmt.updateNode.get(json, at, kind, name)
            : this.stmt.updateNodeAt.get(json, at, kind, name, expectedRevision);
        if (row === undefined) {
          const current = this.stmt.nodeRevision.get(kind, name);
          if (current === undefined) throw new NotFoundError(`Node ${kind}/${name} not found`);
          throw staleRevision(kind, name, current.revision, expectedRevision ?? current.revision);
        }
        this.values.write(kind, name, attrs);
        return this.withObservations(row);
      }),
    );
  }

  deleteNode(kind: string, name: string, expectedRevision?: number): Promise<void> {
    return this.run(() => {
      this.immediate(() => {
        if (expectedRevision === undefined) {
          this.stmt.deleteNode.run(kind, name);
        } else if (this.stmt.deleteNodeAt.run(kind, name, expectedRevision).changes === 0) {
          const current = this.stmt.nodeRevision.get(kind, name);
          if (current !== undefined) throw staleRevision(kind, name, current.revision, expectedRevision);
          return;
        }
        this.values.write(kind, name, undefined);
      });
    });
  }

  putObservation(
    kind: string,
    name: string,
    provider: string,
    attrs: Attrs | null,
    at: number,
  ): Promise<void> {
    return this.run(() => {
      this.immediate(() => {
        if (this.stmt.nodeRevision.get(kind, name) === undefined) {
          throw new NotFoundError(`Node ${kind}/${name} not found`);
        }
        this.stmt.putObservation.run(kind, name, provider, attrs === null ? null : JSON.stringify(attrs), at);
      });
    });
  }

  putObservations(kind: string, observations: readonly NodeObservation[], at: number): Promise<void> {
    return this.run(() => {
      this.immediate(() => {
        for (const { name, provider, attrs } of observations) {
          // A node deleted since it was listed is skipped: the foreign key would refuse the whole batch.
          if (this.stmt.nodeRevision.get(kind, name) === undefined) continue;
          this.stmt.putObservation.run(
            kind,
            name,
            provider,
            attrs === null ? null : JSON.stringify(attrs),
            at,
          );
        }
      });
    });
  }

  createJob(job: JobRecord): Promise<void> {
    return this.run(() => {
      const { id, kind, name, state, createdAt, updatedAt } = job;
      const changes = this.stmt.insertJob.run(
        id,
        kind,
        name,
        state,
        createdAt,
        updatedAt,
        JSON.stringify(job),
      ).changes;
      if (changes === 0) throw new ConflictError(`Job ${id} already exists`);
    });
  }

  getJob(id: string): Promise<JobRecord | undefined> {
    return this.run(() => {
      const row = this.stmt.getJob.get(id);
      return row === undefined ? undefined : parseJob(row);
    });
  }

  updateJob(id: string, patch: JobPatch, at: number, fence?: string): Promise<JobRecord> {
    return this.run(() => this.immediate(() => this.writeJob(id, patch, at, fence)));
  }

  endJob(
    id: string,
    patch: JobPatch,
    at: number,
    ending: JobEnding,
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }> {
    return this.run(() =>
      this.immediate(() => {
        const job = this.writeJob(id, patch, at, fence);
        const event = this.writeEvent(id, ending.event.type, ending.event.data, at);
        if (ending.audit !== undefined) this.writeAudit(ending.audit);
        return { job, event };
      }),
    );
  }

  stepJob(
    id: string,
    patch: JobPatch,
    at: number,
    event: JobEnding['event'],
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }> {
    return this.endJob(id, patch, at, { event }, fence);
  }

  /** The body of `updateJob`, inside the caller's transaction. */
  private writeJob(id: string, patch: JobPatch, at: number, fence: string | undefined): JobRecord {
    const row = this.stmt.getJob.get(id);
    if (row === undefined) throw new NotFoundError(`Job ${id} not found`);
    const job = applyJobPatch(parseJob(row), patch, at, fence);
    this.stmt.updateJob.run(job.state, at, JSON.stringify(job), id);
    return job;
  }

  listJobs(options: ListJobsOptions): Promise<Page<JobRecord>> {
    return this.run(() => {
      const limit = checkPageLimit(options.limit);
      const where: string[] = [];
      const params: Param[] = [];
      if (options.states !== undefined) {
        where.push('state IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(options.states));
      }
      if (options.kind !== undefined) {
        where.push('kind = ?');
        params.push(options.kind);
      }
      if (options.name !== undefined) {
        where.push('name = ?');
        params.push(options.name);
      }
      if (options.cursor !== undefined) {
        const after = decodeJobCursor(options.cursor);
        where.push('(created_at < ? OR (created_at = ? AND id < ?))');
        params.push(after.createdAt, after.createdAt, after.id);
      }
      params.push(limit + 1);
      const rows = this.prepared<JobRow>(
        `SELECT record FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
          'ORDER BY created_at DESC, id DESC LIMIT ?',
      ).all(...params);
      const items = rows.slice(0, limit).map(parseJob);
      const last = items[items.length - 1];
      return rows.length > limit && last !== undefined ? { items, next: encodeJobCursor(last) } : { items };
    });
  }

  appendEvent(jobId: string, type: string, data: JsonObject, at: number): Promise<JobEvent> {
    return this.run(() => this.immediate(() => this.writeEvent(jobId, type, data, at)));
  }

  /** The body of `appendEvent`, inside the caller's transaction. */
  private writeEvent(jobId: string, type: string, data: JsonObject, at: number): JobEvent {
    if (this.stmt.jobExists.get(jobId) === undefined) throw new NotFoundError(`Job ${jobId} not found`);
    const row = this.stmt.appendEvent.get(jobId, at, type, JSON.stringify(data), jobId);
    if (row === undefined) throw new InternalError(`Appending an event to job ${jobId} returned no sequence`);
    return { jobId, seq: row.seq, at, type, data };
  }

  listEvents(jobId: string, afterSeq: number): Promise<readonly JobEvent[]> {
    return this.run(() =>
      this.stmt.listEvents.all(jobId, afterSeq).map((row) => ({
        jobId: row.job_id,
        seq: row.seq,
        at: row.at,
        type: row.type,
        data: JSON.parse(row.data) as JsonObject,
      })),
    );
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.run(() => {
      this.writeAudit(entry);
    });
  }

  /** The body of `appendAudit`, inside the caller's transaction if any. */
  private writeAudit(entry: AuditEntry): void {
    this.stmt.appendAudit.run(...auditRow(entry));
  }

  listAudit(options: ListAuditOptions): Promise<Page<AuditEntry>> {
    return this.run(() => {
      const limit = checkPageLimit(options.limit);
      const where: string[] = [];
      const params: Param[] = [];
      const equal = (column: string, value: string | undefined): void => {
        if (value === undefined) return;
        where.push(`${column} = ?`);
        params.push(value);
      };
      equal('kind', options.kind);
      equal('name', options.name);
      equal('actor', options.actor);
      equal('job_id', options.jobId);
      if (options.cursor !== undefined) {
        const after = decodeAuditCursor(options.cursor);
        // Row ids are integers; a key that is not one was never made by this adapter.
        if (!/^[1-9][0-9]{0,15}$/.test(after.key)) throw new InputError('Invalid cursor');
        where.push('(at < ? OR (at = ? AND id < ?))');
        params.push(after.at, after.at, Number(after.key));
      }
      params.push(limit + 1);
      const rows = this.prepared<AuditRow & { readonly id: number }>(
        'SELECT id, at, actor, action, kind, name, job_id, before_attrs, after_attrs FROM audit ' +
          `${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`,
      ).all(...params);
      const items = rows.slice(0, limit).map(toAuditEntry);
      const last = rows[limit - 1];
      return rows.length > limit && last !== undefined
        ? { items, next: encodeAuditCursor({ at: last.at, key: String(last.id) }) }
        : { items };
    });
  }

  putToken(token: TokenRecord): Promise<void> {
    return this.run(() => {
      try {
        this.stmt.putToken.run(
          token.id,
          token.hash,
          token.role,
          token.description ?? null,
          token.createdAt,
          token.expiresAt ?? null,
        );
      } catch (error) {
        if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new ConflictError('Another token has the same hash');
        }
        throw error;
      }
    });
  }

  findToken(hash: string): Promise<TokenRecord | undefined> {
    return this.run(() => {
      const row = this.stmt.findToken.get(hash);
      return row === undefined ? undefined : toToken(row);
    });
  }

  listTokens(): Promise<readonly TokenRecord[]> {
    return this.run(() => this.stmt.listTokens.all().map(toToken));
  }

  deleteToken(id: string): Promise<void> {
    return this.run(() => {
      this.stmt.deleteToken.run(id);
    });
  }

  createHook(hook: HookRecord): Promise<void> {
    return this.run(() => {
      this.hooks.createHook(hook);
    });
  }

  getHook(id: string): Promise<HookRecord | undefined> {
    return this.run(() => this.hooks.getHook(id));
  }

  listHooks(): Promise<readonly HookRecord[]> {
    return this.run(() => this.hooks.listHooks());
  }

  deleteHook(id: string): Promise<void> {
    return this.run(() => {
      this.hooks.deleteHook(id);
    });
  }

  recordHookAttempt(
    id: string,
    succeeded: boolean,
    maxFailures: number,
  ): Promise<{ readonly hook: HookRecord; readonly disabled: boolean }> {
    return this.run(() => this.hooks.recordHookAttempt(id, succeeded, maxFailures));
  }

  setHookEnabled(id: string, enabled: boolean): Promise<HookRecord> {
    return this.run(() => this.hooks.setHookEnabled(id, enabled));
  }

  createDelivery(delivery: DeliveryRecord): Promise<boolean> {
    return this.run(() => this.hooks.createDelivery(delivery));
  }

  getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    return this.run(() => this.hooks.getDelivery(id));
  }

  updateDelivery(id: string, patch: DeliveryPatch): Promise<DeliveryRecord> {
    return this.run(() => this.hooks.updateDelivery(id, patch));
  }

  listDeliveries(hookId: string, options: ListDeliveriesOptions): Promise<Page<DeliveryRecord>> {
    return this.run(() => this.hooks.listDeliveries(hookId, options));
  }

  reserve(namespace: string, key: string, owner: string): Promise<boolean> {
    return this.run(() => this.stmt.reserve.get(namespace, key, owner) !== undefined);
  }

  release(namespace: string, owner: string, key?: string): Promise<void> {
    return this.run(() => {
      if (key === undefined) this.stmt.releaseAll.run(namespace, owner);
      else this.stmt.releaseKey.run(namespace, owner, key);
    });
  }

  listReservations(namespace: string, owner?: string): Promise<readonly Reservation[]> {
    return this.run(() =>
      (owner === undefined
        ? this.stmt.listReservations.all(namespace)
        : this.stmt.listOwnerReservations.all(namespace, owner)
      ).map((row) => ({ key: row.key, owner: row.owner })),
    );
  }

  async *exportRecords(type: StoreRecordType): AsyncIterable<readonly StoreRecord[]> {
    for (const batch of exportSqliteRecords(this.db, type)) {
      // Let other work run between batches: a large store is read without holding the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      yield batch;
    }
  }

  importRecords(records: readonly StoreRecord[]): Promise<void> {
    return this.run(() => {
      importSqliteRecords(this.db, records);
    });
  }

  countRecords(): Promise<Readonly<Record<StoreRecordType, number>>> {
    return this.run(() => countSqliteRecords(this.db));
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.dynamic.clear();
      this.db.close();
    }
    return Promise.resolve();
  }

  /** Runs `fn` and settles with its result, translating SQLite errors into Consortium errors. */
  private run<T>(fn: () => T): Promise<T> {
    try {
      if (this.closed) throw new InternalError(`The SQLite store at ${this.path} is closed`);
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(translateError(error));
    }
  }

  private immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** A statement for generated SQL, from a small cache keyed by the SQL text (which never contains values). */
  private prepared<R>(sql: string): BetterSqlite3.Statement<Param[], R> {
    let statement = this.dynamic.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare<Param[]>(sql);
      if (this.dynamic.size >= STATEMENT_CACHE_SIZE) {
        const oldest = this.dynamic.keys().next();
        if (oldest.done !== true) this.dynamic.delete(oldest.value);
      }
    } else {
      // Re-insert to keep the map in least-recently-used order.
      this.dynamic.delete(sql);
    }
    this.dynamic.set(sql, statement);
    return statement as BetterSqlite3.Statement<Param[], R>;
  }

  private withObservations(row: NodeRow): StoredNode {
    return toStoredNode(row, this.stmt.observationsOf.all(row.kind, row.name));
  }
}

/** One owner's reservations in a namespace, in key order (the query plan test checks the index serves it). */
export const OWNER_RESERVATIONS_SQL =
  'SELECT key, owner FROM reservations WHERE namespace = ? AND owner = ? ORDER BY key';

/** The SQL of one page of `listNodes` (at most `rows` rows) and its parameters; exported for the query-plan test. */
export function listNodesQuery(
  kind: string,
  options: Omit<ListNodesOptions, 'limit'>,
  rows: number,
): { readonly sql: string; readonly params: Param[] } {
  const where = ['n.kind = ?'];
  const params: Param[] = [kind];
  if (options.cursor !== undefined) {
    where.push('n.name > ?');
    params.push(decodeNodeCursor(options.cursor));
  }
  if (options.filter !== undefined) {
    const filter = compileFilter(options.filter, 'n', kind);
    where.push(filter.sql);
    params.push(...filter.params);
  }
  params.push(rows);
  return {
    sql:
      `SELECT n.kind, n.name, n.attrs, n.revision, n.created_at, n.updated_at FROM nodes n ` +
      `WHERE ${where.join(' AND ')} ORDER BY n.name LIMIT ?`,
    params,
  };
}

function prepareStatements(db: BetterSqlite3.Database) {
  const nodeColumns = 'kind, name, attrs, revision, created_at, updated_at';
  return {
    getNode: db.prepare<[string, string], NodeRow>(
      `SELECT ${nodeColumns} FROM nodes WHERE kind = ? AND name = ?`,
    ),
    nodeRevision: db.prepare<[string, string], { revision: number }>(
      'SELECT revision FROM nodes WHERE kind = ? AND name = ?',
    ),
    observationsOf: db.prepare<[string, string], ObservationRow>(
      'SELECT name, provider, attrs, at FROM observations WHERE kind = ? AND name = ? ORDER BY provider',
    ),
    observationsOfNames: db.prepare<[string, string], ObservationRow>(
      'SELECT name, provider, attrs, at FROM observations ' +
        'WHERE kind = ? AND name IN (SELECT value FROM json_each(?)) ORDER BY name, provider',
    ),
    insertNode: db.prepare<[string, string, string, number, number], NodeRow>(
      'INSERT INTO nodes (kind, name, attrs, revision, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?) ' +
        `ON CONFLICT (kind, name) DO NOTHING RETURNING ${nodeColumns}`,
    ),
    updateNode: db.prepare<[string, number, string, string], NodeRow>(
      'UPDATE nodes SET attrs = ?, revision = revision + 1, updated_at = ? WHERE kind = ? AND name = ? ' +
        `RETURNING ${nodeColumns}`,
    ),
    updateNodeAt: db.prepare<[string, number, string, string, number], NodeRow>(
      'UPDATE nodes SET attrs = ?, revision = revision + 1, updated_at = ? ' +
        `WHERE kind = ? AND name = ? AND revision = ? RETURNING ${nodeColumns}`,
    ),
    deleteNode: db.prepare<[string, string]>('DELETE FROM nodes WHERE kind = ? AND name = ?'),
    deleteNodeAt: db.prepare<[string, string, number]>(
      'DELETE FROM nodes WHERE kind = ? AND name = ? AND revision = ?',
    ),
    putObservation: db.prepare<[string, string, string, string | null, number]>(
      'INSERT INTO observations (kind, name, provider, attrs, at) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (kind, name, provider) DO UPDATE SET attrs = excluded.attrs, at = excluded.at',
    ),
    insertJob: db.prepare<[string, string, string, string, number, number, string]>(
      'INSERT INTO jobs (id, kind, name, state, created_at, updated_at, record) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (id) DO NOTHING',
    ),
    getJob: db.prepare<[string], JobRow>('SELECT record FROM jobs WHERE id = ?'),
    jobExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM jobs WHERE id = ?'),
    updateJob: db.prepare<[string, number, string, string]>(
      'UPDATE jobs SET state = ?, updated_at = ?, record = ? WHERE id = ?',
    ),
    appendEvent: db.prepare<[string, number, string, string, string], { seq: number }>(
      'INSERT INTO job_events (job_id, seq, at, type, data) ' +
        'SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ? FROM job_events WHERE job_id = ? RETURNING seq',
    ),
    listEvents: db.prepare<[string, number], EventRow>(
      'SELECT job_id, seq, at, type, data FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq',
    ),
    appendAudit: db.prepare<
      [number, string, string, string, string, string | null, string | null, string | null]
    >(
      'INSERT INTO audit (at, actor, action, kind, name, job_id, before_attrs, after_attrs) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    putToken: db.prepare<[string, string, string, string | null, number, number | null]>(
      'INSERT INTO tokens (id, hash, role, description, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, role = excluded.role, ' +
        'description = excluded.description, created_at = excluded.created_at, expires_at = excluded.expires_at',
    ),
    findToken: db.prepare<[string], TokenRow>('SELECT * FROM tokens WHERE hash = ?'),
    listTokens: db.prepare<[], TokenRow>('SELECT * FROM tokens ORDER BY created_at, id'),
    deleteToken: db.prepare<[string]>('DELETE FROM tokens WHERE id = ?'),
    // One statement, so atomic: inserts, or "updates" the row only when the owner is the same; a row comes back
    // exactly when the key is now the owner's.
    reserve: db.prepare<[string, string, string], { owner: string }>(
      'INSERT INTO reservations (namespace, key, owner) VALUES (?, ?, ?) ' +
        'ON CONFLICT (namespace, key) DO UPDATE SET owner = excluded.owner WHERE owner = excluded.owner ' +
        'RETURNING owner',
    ),
    releaseAll: db.prepare<[string, string]>('DELETE FROM reservations WHERE namespace = ? AND owner = ?'),
    releaseKey: db.prepare<[string, string, string]>(
      'DELETE FROM reservations WHERE namespace = ? AND owner = ? AND key = ?',
    ),
    listReservations: db.prepare<[string], { key: string; owner: string }>(
      'SELECT key, owner FROM reservations WHERE namespace = ? ORDER BY key',
    ),
    listOwnerReservations: db.prepare<[string, string], { key: string; owner: string }>(
      OWNER_RESERVATIONS_SQL,
    ),
  };
}

function toStoredNode(row: NodeRow, observations: readonly ObservationRow[]): StoredNode {
  return {
    kind: row.kind,
    name: row.name,
    attrs: JSON.parse(row.attrs) as Attrs,
    revision: row.revision,
    observed: Object.fromEntries(
      observations.map((obs) => [
        obs.provider,
        { attrs: obs.attrs === null ? null : (JSON.parse(obs.attrs) as Attrs), at: obs.at },
      ]),
    ),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function parseJob(row: JobRow): JobRecord {
  return JSON.parse(row.record) as JobRecord;
}

function toAuditEntry(row: AuditRow): AuditEntry {
  const entry: AuditEntry = {
    at: row.at,
    actor: row.actor,
    action: row.action,
    kind: row.kind,
    name: row.name,
    before: row.before_attrs === null ? null : (JSON.parse(row.before_attrs) as Attrs),
    after: row.after_attrs === null ? null : (JSON.parse(row.after_attrs) as Attrs),
  };
  return row.job_id === null ? entry : { ...entry, jobId: row.job_id };
}

function toToken(row: TokenRow): TokenRecord {
  const token: TokenRecord = {
    id: row.id,
    hash: row.hash,
    role: row.role as Role,
    createdAt: row.created_at,
  };
  return {
    ...token,
    ...(row.description === null ? {} : { description: row.description }),
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
  };
}

/** Turns anything thrown below into a Consortium error; SQLite's lock timeouts become retryable. */
function translateError(error: unknown): Error {
  if (isConsortiumError(error)) return error;
  if (error instanceof Database.SqliteError) {
    if (error.code.startsWith('SQLITE_BUSY') || error.code.startsWith('SQLITE_LOCKED')) {
      return new BackendUnavailableError(`The SQLite database is busy: ${error.message}`, { cause: error });
    }
    return new BackendError(`SQLite failed: ${error.message} (${error.code})`, { cause: error });
  }
  return new InternalError(error instanceof Error ? error.message : String(error), { cause: error });
}
