/**
 * The cluster store on PostgreSQL, through node-postgres (`pg`): a connection pool with a statement timeout,
 * attributes as JSONB with a GIN index, every write a single statement or a short transaction that checks the node
 * revision or the job's fencing token itself. Any number of processes on any number of hosts can share one database.
 *
 * A lost connection or a PostgreSQL restart surfaces as `BackendUnavailableError` (retryable); the pool drops the
 * broken connections and opens new ones on the next call, so the store recovers by itself once the server is back.
 */
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { CustomTypesConfig, PoolClient, PoolConfig, QueryResultRow } from 'pg';
import {
  BackendError,
  BackendUnavailableError,
  ConflictError,
  InputError,
  InternalError,
  NotFoundError,
  TimeoutError,
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
  JobEnding,
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
  Store,
  StoredNode,
  StoreRecord,
  StoreRecordType,
  StoreTransfer,
  TokenRecord,
} from '@consortium/core';
import { compileFilter } from './filter-sql.js';
import { PostgresHooks } from './hooks.js';
import {
  applyPostgresMigrations,
  currentPostgresVersion,
  latestPostgresVersion,
  newerSchema,
} from './migrations.js';

/** Where and how to open the PostgreSQL store. */
export interface PostgresStoreOptions {
  /** A libpq-style URL, `postgres://user:password@host:port/database?sslmode=...`. */
  readonly url: string;
  /** Connections in the pool; default 10. */
  readonly poolSize?: number;
  /** The server cancels any statement running longer (`statement_timeout`); default 30 s. */
  readonly statementTimeoutMs?: number;
  /** How long to wait for a new connection before giving up; default 10 s. */
  readonly connectTimeoutMs?: number;
  /** TLS options (CA, client certificate, `servername`...); overrides the URL's `sslmode`. */
  readonly ssl?: ConnectionOptions;
  /**
   * Apply pending schema migrations on open (default true). When false and the schema is behind, opening fails and
   * tells the operator to run `consortium store migrate`.
   */
  readonly runMigrations?: boolean;
  /** Called with errors of idle connections (the server went away); they are otherwise only dropped. */
  readonly onIdleError?: (error: Error) => void;
}

/** The default `statement_timeout` of the store's connections. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

/** The default pool size. */
export const DEFAULT_POOL_SIZE = 10;

/** The store, as `openPostgresStore` returns it: the port plus the schema version and the server it talks to. */
export interface PostgresStoreHandle extends Store, StoreTransfer {
  /** `host:port/database`, for messages: never the password. */
  readonly target: string;
  /** The schema version of the database. */
  schemaVersion(): Promise<number>;
}

interface NodeRow {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Attrs;
  readonly revision: number;
  readonly created_at: number;
  readonly updated_at: number;
  readonly observed: Record<string, { attrs: Attrs | null; at: number }> | null;
}

interface AuditRow {
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly kind: string;
  readonly name: string;
  readonly job_id: string | null;
  readonly before_attrs: Attrs | null;
  readonly after_attrs: Attrs | null;
}

interface TokenRow {
  readonly id: string;
  readonly hash: string;
  readonly role: string;
  readonly description: string | null;
  readonly created_at: number;
  readonly expires_at: number | null;
}

/** pg's own parsers, typed loosely enough to wrap. */
const defaultParser = pg.types.getTypeParser.bind(pg.types) as (
  id: number,
  format?: 'text' | 'binary',
) => unknown;

/** int8 columns hold milliseconds since the epoch, which fit a double; every other type parses as pg does. */
const types = {
  getTypeParser: ((id: number, format?: 'text' | 'binary') =>
    id === 20 && format !== 'binary'
      ? (value: string) => Number(value)
      : defaultParser(id, format)) as CustomTypesConfig['getTypeParser'],
};

const NODE_COLUMNS = 'n.kind, n.name, n.attrs, n.revision, n.created_at, n.updated_at';

/** The observations of the node in row `n`, as one JSON object keyed by provider. */
const OBSERVED =
  `(SELECT jsonb_object_agg(o.provider, jsonb_build_object('attrs', o.attrs, 'at', o.at)) ` +
  `FROM observations o WHERE o.kind = n.kind AND o.name = n.name) AS observed`;

/** `getNode`. */
const GET_NODE_SQL = `SELECT ${NODE_COLUMNS}, ${OBSERVED} FROM nodes n WHERE n.kind = $1 AND n.name = $2`;

/** The columns of a token row, named: a prepared statement's columns must not change when a migration adds one. */
const TOKEN_COLUMNS = 'id, hash, role, description, created_at, expires_at';

/** One owner's reservations in a namespace, in key order (the index test checks the owner index serves it). */
export const OWNER_RESERVATIONS_SQL =
  'SELECT key, owner FROM reservations WHERE namespace = $1 AND owner = $2 ORDER BY key';

/**
 * The statement `listNodes` runs (one row more than `limit`, to tell whether there is a next page); exported so
 * that tests can EXPLAIN exactly it. Throws `InputError` for a bad cursor or filter.
 */
export function listNodesQuery(kind: string, options: ListNodesOptions): { sql: string; params: unknown[] } {
  const limit = checkPageLimit(options.limit);
  const params: unknown[] = [kind];
  const where = ['n.kind = $1'];
  if (options.cursor !== undefined) {
    params.push(decodeNodeCursor(options.cursor));
    where.push(`n.name > $${params.length}`);
  }
  if (options.filter !== undefined) {
    const filter = compileFilter(options.filter, 'n', params.length + 1, kind);
    where.push(filter.sql);
    params.push(...filter.params);
  }
  params.push(limit + 1);
  return {
    sql:
      `SELECT ${NODE_COLUMNS}, ${OBSERVED} FROM nodes n WHERE ${where.join(' AND ')} ` +
      `ORDER BY n.name LIMIT $${params.length}`,
    params,
  };
}

/** `host:port/database` of a URL, for messages. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname === '' ? 'localhost' : parsed.hostname;
    return `${host}:${parsed.port === '' ? '5432' : parsed.port}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return 'an unparsable URL';
  }
}

/** URL parameters that configure TLS, which node-postgres would let override an explicit `ssl`. */
const URL_TLS_PARAMETERS = [
  'ssl',
  'sslmode',
  'sslcert',
  'sslkey',
  'sslrootcert',
  'sslpassword',
  'uselibpqcompat',
];

/**
 * The pool's configuration. With `ssl` given, the URL's TLS parameters are removed: node-postgres merges what it
 * parses from the URL over the explicit options, so `sslmode=verify-full` would otherwise replace the CA and client
 * certificate with an empty TLS configuration.
 */
export function postgresPoolConfig(options: PostgresStoreOptions): PoolConfig {
  const statementTimeout = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  let url = options.url;
  if (options.ssl !== undefined) {
    try {
      const parsed = new URL(options.url);
      for (const name of URL_TLS_PARAMETERS) parsed.searchParams.delete(name);
      url = parsed.toString();
    } catch {
      // Not a URL (a bare libpq keyword string): leave it to the driver, which reports it.
    }
  }
  return {
    connectionString: url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    statement_timeout: statementTimeout,
    // A lock wait counts against statement_timeout too; an idle transaction (a client that vanished) is ended.
    idle_in_transaction_session_timeout: Math.max(statementTimeout * 2, 10_000),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    keepAlive: true,
    application_name: 'consortium',
    types,
    ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
  };
}

/**
 * Opens the PostgreSQL store: connects, applies pending migrations (unless `runMigrations` is false, then checks
 * the schema is current) and returns the store. Throws `BackendUnavailableError` naming `host:port/database` when
 * the server cannot be reached, refuses the credentials or the TLS handshake fails; `BackendError` when the schema
 * is behind (with `runMigrations: false`) or newer than this Consortium.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStoreHandle> {
  const store = new PostgresStore(options);
  try {
    await store.withClient(async (client) => {
      if (options.runMigrations === false) {
        const version = await currentPostgresVersion(client);
        const known = latestPostgresVersion();
        if (version > known) throw newerSchema(version, known);
        if (version < known) {
          throw new BackendError(
            `The PostgreSQL store at ${store.target} is at schema version ${version}, this Consortium needs ` +
              `${known}: run \`consortium store migrate\``,
            { details: { version, known } },
          );
        }
      } else {
        await applyPostgresMigrations(client);
      }
    });
    return store;
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * Applies pending migrations to the database at `options.url` and returns their versions (none when the schema is
 * current), for `consortium store migrate`. Throws as `openPostgresStore` does.
 */
export async function migratePostgres(options: PostgresStoreOptions): Promise<{ applied: number[] }> {
  const store = new PostgresStore({ ...options, poolSize: 1 });
  try {
    return { applied: await store.withClient((client) => applyPostgresMigrations(client)) };
  } finally {
    await store.close();
  }
}

/** The `Store` port on PostgreSQL; open it with `openPostgresStore`. */
export class PostgresStore implements PostgresStoreHandle {
  readonly target: string;
  private readonly pool: pg.Pool;
  private readonly password: string;
  private readonly statementTimeoutMs: number;
  private closing: Promise<void> | undefined;
  private readonly hooks: PostgresHooks;

  /** Creates the pool without connecting; prefer `openPostgresStore`, which also migrates. */
  constructor(options: PostgresStoreOptions) {
    this.target = describePostgresUrl(options.url);
    this.password = passwordOf(options.url);
    this.statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
    this.pool = new pg.Pool(postgresPoolConfig(options));
    this.hooks = new PostgresHooks({
      query: (sql, params) => this.query(sql, params),
      transaction: (fn) => this.transaction(fn),
    });
    // An idle connection whose server went away emits 'error' on the pool; unhandled, it would end the process.
    // The pool has already dropped the connection, so there is nothing to do but report it.
    this.pool.on('error', (error) => {
      options.onIdleError?.(error);
    });
    // Belt and braces: the server can end a connection (restart, pg_terminate_backend) at any moment, also between
    // the pool handing a connection out and the caller's first statement. A listener for the connection's whole
    // life keeps that 'error' event from ever being uncaught; the failure itself reaches the caller through the
    // statement that follows, and the pool drops the connection.
    this.pool.on('connect', (client) => {
      client.on('error', () => undefined);
    });
  }

  schemaVersion(): Promise<number> {
    return this.withClient((client) => currentPostgresVersion(client));
  }

  async getNode(kind: string, name: string): Promise<StoredNode | undefined> {
    const rows = await this.prepared<NodeRow>(GET_NODE_SQL, [kind, name]);
    return rows[0] === undefined ? undefined : toStoredNode(rows[0]);
  }

  async listNodes(kind: string, options: ListNodesOptions): Promise<Page<StoredNode>> {
    const limit = checkPageLimit(options.limit);
    const { sql, params } = listNodesQuery(kind, options);
    const rows = await this.query<NodeRow>(sql, params);
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(toStoredNode);
    const last = items[items.length - 1];
    return more && last !== undefined ? { items, next: encodeNodeCursor(last.name) } : { items };
  }

  async insertNode(kind: string, name: string, attrs: Attrs, at: number): Promise<StoredNode> {
    const rows = await this.prepared<NodeRow>(
      'INSERT INTO nodes AS n (kind, name, attrs, revision, created_at, updated_at) ' +
        `VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (kind, name) DO NOTHING RETURNING ${NODE_COLUMNS}, NULL::jsonb AS observed`,
      [kind, name, JSON.stringify(attrs), at],
    );
    if (rows[0] === undefined) throw new ConflictError(`Node ${kind}/${name} already exists`);
    return toStoredNode(rows[0]);
  }

  async updateNode(
    kind: string,
    name: string,
    attrs: Attrs,
    at: number,
    expectedRevision?: number,
  ): Promise<StoredNode> {
    const params: unknown[] = [JSON.stringify(attrs), at, kind, name];
    if (expectedRevision !== undefined) params.push(expectedRevision);
    // One statement: the revision test and the write happen under the row lock the UPDATE takes.
    const rows = await this.prepared<NodeRow>(
      `UPDATE nodes n SET attrs = $1, revision = n.revision + 1, updated_at = $2 WHERE n.kind = $3 AND n.name = $4 ` +
        `${expectedRevision === undefined ? '' : 'AND n.revision = $5 '}RETURNING ${NODE_COLUMNS}, ${OBSERVED}`,
      params,
    );
    if (rows[0] !== undefined) return toStoredNode(rows[0]);
    const current = await this.revisionOf(kind, name);
    if (current === undefined) throw new NotFoundError(`Node ${kind}/${name} not found`);
    throw staleRevision(kind, name, current, expectedRevision ?? current);
  }

  async deleteNode(kind: string, name: string, expectedRevision?: number): Promise<void> {
    if (expectedRevision === undefined) {
      await this.query('DELETE FROM nodes WHERE kind = $1 AND name = $2', [kind, name]);
      return;
    }
    const deleted = await this.query(
      'DELETE FROM nodes WHERE kind = $1 AND name = $2 AND revision = $3 RETURNING 1',
      [kind, name, expectedRevision],
    );
    if (deleted.length > 0) return;
    const current = await this.revisionOf(kind, name);
    if (current !== undefined) throw staleRevision(kind, name, current, expectedRevision);
  }

  async putObservation(
    kind: string,
    name: string,
    provider: string,
    attrs: Attrs | null,
    at: number,
  ): Promise<void> {
    try {
      await this.query(
        'INSERT INTO observations (kind, name, provider, attrs, at) VALUES ($1, $2, $3, $4, $5) ' +
          'ON CONFLICT (kind, name, provider) DO UPDATE SET attrs = excluded.attrs, at = excluded.at',
        [kind, name, provider, attrs === null ? null : JSON.stringify(attrs), at],
      );
    } catch (error) {
      // The foreign key refuses an observation of a missing node, atomically.
      if (sqlState(error) === '23503') throw new NotFoundError(`Node ${kind}/${name} not found`);
      throw error;
    }
  }

  async putObservations(kind: string, observations: readonly NodeObservation[], at: number): Promise<void> {
    // One row per (name, provider), the later winning: one INSERT may not update a row twice.
    const rows = new Map<string, NodeObservation>();
    for (const o of observations) rows.set(JSON.stringify([o.name, o.provider]), o);
    if (rows.size === 0) return;
    // FOR KEY SHARE waits for a delete of a listed node and then leaves it out, where the foreign key would refuse
    // the whole statement; a JSON null in attrs becomes SQL NULL (absent in the backend), as putObservation stores it.
    await this.query(
      'INSERT INTO observations (kind, name, provider, attrs, at) ' +
        'SELECT n.kind, n.name, o.provider, o.attrs, $3 ' +
        'FROM jsonb_to_recordset($2::jsonb) AS o(name text, provider text, attrs jsonb) ' +
        'JOIN nodes n ON n.kind = $1 AND n.name = o.name FOR KEY SHARE OF n ' +
        'ON CONFLICT (kind, name, provider) DO UPDATE SET attrs = excluded.attrs, at = excluded.at',
      [kind, JSON.stringify([...rows.values()]), at],
    );
  }

  async createJob(job: JobRecord): Promise<void> {
    const rows = await this.prepared(
      'INSERT INTO jobs (id, kind, name, state, created_at, updated_at, record) VALUES ($1, $2, $3, $4, $5, $6, $7) ' +
        'ON CONFLICT (id) DO NOTHING RETURNING 1',
      [job.id, job.kind, job.name, job.state, job.createdAt, job.updatedAt, JSON.stringify(job)],
    );
    if (rows.length === 0) throw new ConflictError(`Job ${job.id} already exists`);
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const rows = await this.prepared<{ record: JobRecord }>('SELECT record FROM jobs WHERE id = $1', [id]);
    return rows[0]?.record;
  }

  async updateJob(id: string, patch: JobPatch, at: number, fence?: string): Promise<JobRecord> {
    checkFence(fence);
    const rows = await this.prepared<{ record: JobRecord }>(
      UPDATE_JOB_SQL,
      jobWriteParams(id, patch, at, fence),
    );
    return rows[0]?.record ?? this.refusedJobWrite(id, patch, at, fence);
  }

  async endJob(
    id: string,
    patch: JobPatch,
    at: number,
    ending: JobEnding,
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }> {
    checkFence(fence);
    const { event, audit } = ending;
    const params = [...jobWriteParams(id, patch, at, fence), event.type, JSON.stringify(event.data)];
    if (audit !== undefined) params.push(...auditRow(audit));
    const rows = await this.prepared<{ record: JobRecord; seq: number }>(
      audit === undefined ? STEP_JOB_SQL : END_JOB_SQL,
      params,
    );
    const row = rows[0];
    if (row === undefined) return this.refusedJobWrite(id, patch, at, fence);
    return { job: row.record, event: { jobId: id, seq: row.seq, at, type: event.type, data: event.data } };
  }

  async stepJob(
    id: string,
    patch: JobPatch,
    at: number,
    event: JobEnding['event'],
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }> {
    return this.endJob(id, patch, at, { event }, fence);
  }

  async listJobs(options: ListJobsOptions): Promise<Page<JobRecord>> {
    const limit = checkPageLimit(options.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (options.states !== undefined) where.push(`state = ANY(${param([...options.states])}::text[])`);
    if (options.kind !== undefined) where.push(`kind = ${param(options.kind)}`);
    if (options.name !== undefined) where.push(`name = ${param(options.name)}`);
    if (options.cursor !== undefined) {
      const after = decodeJobCursor(options.cursor);
      where.push(`(created_at, id) < (${param(after.createdAt)}::bigint, ${param(after.id)})`);
    }
    const sql =
      `SELECT record FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY created_at DESC, id DESC LIMIT ${param(limit + 1)}`;
    // One node's jobs (what every change reads) come from the node index whatever the values: a prepared
    // statement's plan. Other listings are planned for their values (a state may hold most jobs, or none).
    const oneNode = options.kind !== undefined && options.name !== undefined;
    const rows = oneNode
      ? await this.prepared<{ record: JobRecord }>(sql, params)
      : await this.query<{ record: JobRecord }>(sql, params);
    const items = rows.slice(0, limit).map((row) => row.record);
    const last = items[items.length - 1];
    return rows.length > limit && last !== undefined ? { items, next: encodeJobCursor(last) } : { items };
  }

  async appendEvent(jobId: string, type: string, data: JsonObject, at: number): Promise<JobEvent> {
    // The job's counter hands out the number under the job's row lock, so concurrent appends (from any process)
    // get distinct, gapless numbers; the counter and the event commit together or not at all.
    const rows = await this.prepared<{ seq: number }>(APPEND_EVENT_SQL, [
      jobId,
      at,
      type,
      JSON.stringify(data),
    ]);
    const seq = rows[0]?.seq;
    if (seq === undefined) throw new NotFoundError(`Job ${jobId} not found`);
    return { jobId, seq, at, type, data };
  }

  async listEvents(jobId: string, afterSeq: number): Promise<readonly JobEvent[]> {
    const rows = await this.prepared<{ seq: number; at: number; type: string; data: JsonObject }>(
      'SELECT seq, at, type, data FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq',
      [jobId, afterSeq],
    );
    return rows.map((row) => ({ jobId, seq: row.seq, at: row.at, type: row.type, data: row.data }));
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await this.prepared(INSERT_AUDIT_SQL, auditRow(entry));
  }

  async listAudit(options: ListAuditOptions): Promise<Page<AuditEntry>> {
    const limit = checkPageLimit(options.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (options.kind !== undefined) where.push(`kind = ${param(options.kind)}`);
    if (options.name !== undefined) where.push(`name = ${param(options.name)}`);
    if (options.actor !== undefined) where.push(`actor = ${param(options.actor)}`);
    if (options.jobId !== undefined) where.push(`job_id = ${param(options.jobId)}`);
    if (options.cursor !== undefined) {
      const after = decodeAuditCursor(options.cursor);
      // Row ids are bigserial integers; a key that is not one was never made by this adapter.
      if (!/^[1-9][0-9]{0,17}$/.test(after.key)) throw new InputError('Invalid cursor');
      const at = param(after.at);
      where.push(`(at < ${at} OR (at = ${at} AND id < ${param(after.key)}::bigint))`);
    }
    const rows = await this.query<AuditRow & { readonly id: number }>(
      'SELECT id, at, actor, action, kind, name, job_id, before_attrs, after_attrs FROM audit ' +
        `${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ${param(limit + 1)}`,
      params,
    );
    const items = rows.slice(0, limit).map(toAuditEntry);
    const last = rows[limit - 1];
    return rows.length > limit && last !== undefined
      ? { items, next: encodeAuditCursor({ at: last.at, key: String(last.id) }) }
      : { items };
  }

  async putToken(token: TokenRecord): Promise<void> {
    try {
      await this.query(
        'INSERT INTO tokens (id, hash, role, description, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ' +
          'ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, role = excluded.role, ' +
          'description = excluded.description, created_at = excluded.created_at, expires_at = excluded.expires_at',
        [
          token.id,
          token.hash,
          token.role,
          token.description ?? null,
          token.createdAt,
          token.expiresAt ?? null,
        ],
      );
    } catch (error) {
      if (sqlState(error) === '23505') throw new ConflictError('Another token has the same hash');
      throw error;
    }
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const rows = await this.prepared<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE hash = $1`, [hash]);
    return rows[0] === undefined ? undefined : toToken(rows[0]);
  }

  async listTokens(): Promise<readonly TokenRecord[]> {
    return (
      await this.prepared<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id`, [])
    ).map(toToken);
  }

  async deleteToken(id: string): Promise<void> {
    await this.query('DELETE FROM tokens WHERE id = $1', [id]);
  }

  createHook(hook: HookRecord): Promise<void> {
    return this.hooks.createHook(hook);
  }

  getHook(id: string): Promise<HookRecord | undefined> {
    return this.hooks.getHook(id);
  }

  listHooks(): Promise<readonly HookRecord[]> {
    return this.hooks.listHooks();
  }

  deleteHook(id: string): Promise<void> {
    return this.hooks.deleteHook(id);
  }

  recordHookAttempt(
    id: string,
    succeeded: boolean,
    maxFailures: number,
  ): Promise<{ readonly hook: HookRecord; readonly disabled: boolean }> {
    return this.hooks.recordHookAttempt(id, succeeded, maxFailures);
  }

  setHookEnabled(id: string, enabled: boolean): Promise<HookRecord> {
    return this.hooks.setHookEnabled(id, enabled);
  }

  createDelivery(delivery: DeliveryRecord): Promise<boolean> {
    return this.hooks.createDelivery(delivery);
  }

  getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    return this.hooks.getDelivery(id);
  }

  updateDelivery(id: string, patch: DeliveryPatch): Promise<DeliveryRecord> {
    return this.hooks.updateDelivery(id, patch);
  }

  listDeliveries(hookId: string, options: ListDeliveriesOptions): Promise<Page<DeliveryRecord>> {
    return this.hooks.listDeliveries(hookId, options);
  }

  async reserve(namespace: string, key: string, owner: string): Promise<boolean> {
    // One statement against the primary key: inserts, or "updates" the row only when the owner is the same; a row
    // comes back exactly when the key is now the owner's. PostgreSQL makes INSERT ... ON CONFLICT atomic across
    // sessions, so two processes racing for a key never both win.
    const rows = await this.query(
      'INSERT INTO reservations AS r (namespace, key, owner) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (namespace, key) DO UPDATE SET owner = excluded.owner WHERE r.owner = excluded.owner ' +
        'RETURNING owner',
      [namespace, key, owner],
    );
    return rows.length > 0;
  }

  async release(namespace: string, owner: string, key?: string): Promise<void> {
    if (key === undefined) {
      await this.query('DELETE FROM reservations WHERE namespace = $1 AND owner = $2', [namespace, owner]);
    } else {
      await this.query('DELETE FROM reservations WHERE namespace = $1 AND owner = $2 AND key = $3', [
        namespace,
        owner,
        key,
      ]);
    }
  }

  async listReservations(namespace: string, owner?: string): Promise<readonly Reservation[]> {
    if (owner !== undefined) {
      return this.query<Reservation>(OWNER_RESERVATIONS_SQL, [namespace, owner]);
    }
    return this.query<Reservation>('SELECT key, owner FROM reservations WHERE namespace = $1 ORDER BY key', [
      namespace,
    ]);
  }

  async *exportRecords(type: StoreRecordType): AsyncIterable<readonly StoreRecord[]> {
    const { select, keys } = EXPORTS[type];
    let after: unknown[] | undefined;
    for (;;) {
      const where =
        after === undefined
          ? ''
          : `WHERE (${keys.join(', ')}) > (${keys.map((_, i) => `$${i + 1}`).join(', ')})`;
      const rows = await this.query(
        `${select} ${where} ORDER BY ${keys.join(', ')} LIMIT ${EXPORT_BATCH}`,
        after ?? [],
      );
      if (rows.length === 0) return;
      yield rows.map((row) => toRecord(type, row));
      const last = rows[rows.length - 1] as QueryResultRow;
      after = keys.map((key) => last[key.replace(/^\w+\./, '')] as unknown);
      if (rows.length < EXPORT_BATCH) return;
    }
  }

  async importRecords(records: readonly StoreRecord[]): Promise<void> {
    await this.transaction(async (client) => {
      for (const record of records) await importRecord(client, record);
    });
  }

  async countRecords(): Promise<Readonly<Record<StoreRecordType, number>>> {
    const rows = await this.query<Record<StoreRecordType, number>>(
      'SELECT (SELECT count(*) FROM nodes) AS node, (SELECT count(*) FROM jobs) AS job, ' +
        '(SELECT count(*) FROM job_events) AS event, (SELECT count(*) FROM audit) AS audit, ' +
        '(SELECT count(*) FROM tokens) AS token, (SELECT count(*) FROM reservations) AS reservation',
    );
    const counts = rows[0];
    if (counts === undefined) throw new InternalError('Counting the records returned no row');
    return counts;
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end().catch(() => undefined);
    return this.closing;
  }

  /** Runs `fn` on one pooled connection, translating errors; the connection is dropped when it broke. */
  async withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.checkOpen();
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.translate(error);
    }
    let broken: Error | undefined;
    // The pool listens for errors of idle connections only; one that breaks while checked out (the server ended
    // it between two statements of a transaction) would otherwise be an uncaught 'error' event. The statement
    // that follows fails with the connection's error, so recording it is enough.
    const onError = (error: Error): void => {
      broken = error;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (error) {
      const translated = this.translate(error);
      if (translated instanceof BackendUnavailableError || translated instanceof TimeoutError)
        broken = translated;
      throw translated;
    } finally {
      client.removeListener('error', onError);
      // A connection that failed or timed out may be mid-transaction or dead: destroy it rather than reuse it.
      client.release(broken);
    }
  }

  /** Runs `fn` in a transaction (BEGIN ... COMMIT; ROLLBACK on any error). */
  private transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  /** One statement on any pooled connection; returns its rows. */
  private async query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<R[]> {
    this.checkOpen();
    try {
      return (await this.pool.query<R>(sql, [...params])).rows;
    } catch (error) {
      throw this.translate(error);
    }
  }

  /**
   * One statement of fixed text as a prepared statement of each pooled connection: parsed and planned once per
   * connection instead of on every call, and sent without its text after the first. Only for the statements every
   * job runs, whose text never changes and whose plan does not depend on the values (a key lookup, a row write);
   * filters and pages stay one-off statements, planned for their values.
   */
  private async prepared<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params: readonly unknown[],
  ): Promise<R[]> {
    this.checkOpen();
    try {
      return (await this.pool.query<R>({ name: statementName(sql), text: sql, values: [...params] })).rows;
    } catch (error) {
      throw this.translate(error);
    }
  }

  private async revisionOf(kind: string, name: string): Promise<number | undefined> {
    const rows = await this.prepared<{ revision: number }>(
      'SELECT revision FROM nodes WHERE kind = $1 AND name = $2',
      [kind, name],
    );
    return rows[0]?.revision;
  }

  /**
   * Why a job write changed no row: the job is missing (`NotFoundError`) or a newer master wrote it
   * (`LeaseLostError`, as `applyJobPatch` words it). Fences only grow, so a write refused for its fence stays refused.
   */
  private async refusedJobWrite(id: string, patch: JobPatch, at: number, fence?: string): Promise<never> {
    const current = await this.getJob(id);
    if (current === undefined) throw new NotFoundError(`Job ${id} not found`);
    applyJobPatch(current, patch, at, fence);
    throw new InternalError(`The write of job ${id} changed no row, yet its fence admits it`);
  }

  private checkOpen(): void {
    if (this.closing !== undefined)
      throw new InternalError(`The PostgreSQL store at ${this.target} is closed`);
  }

  /** Turns anything thrown by the driver into a Consortium error; connection trouble becomes retryable. */
  private translate(error: unknown): Error {
    if (isConsortiumError(error)) return error;
    const message = redact(error instanceof Error ? error.message : String(error), this.password);
    const state = sqlState(error);
    if (state === '57014') {
      return new TimeoutError(
        `A statement on the PostgreSQL store at ${this.target} ran longer than the statement timeout ` +
          `(${this.statementTimeoutMs} ms) and was cancelled`,
        { cause: error },
      );
    }
    if (isUnavailable(error, state)) {
      return new BackendUnavailableError(
        `The PostgreSQL store at ${this.target} is unavailable: ${message}`,
        {
          cause: error,
        },
      );
    }
    if (state !== undefined) {
      return new BackendError(`PostgreSQL failed at ${this.target}: ${message} (${state})`, { cause: error });
    }
    return new InternalError(message, { cause: error });
  }
}

/** Records per batch of `exportRecords`. */
export const EXPORT_BATCH = 500;

/** What `exportRecords` reads for each type, and the keys it orders and resumes by. */
const EXPORTS: Readonly<Record<StoreRecordType, { select: string; keys: readonly string[] }>> = {
  node: { select: `SELECT ${NODE_COLUMNS}, ${OBSERVED} FROM nodes n`, keys: ['n.kind', 'n.name'] },
  job: { select: 'SELECT id, record FROM jobs', keys: ['id'] },
  event: { select: 'SELECT job_id, seq, at, type, data FROM job_events', keys: ['job_id', 'seq'] },
  audit: {
    select: 'SELECT id, at, actor, action, kind, name, job_id, before_attrs, after_attrs FROM audit',
    keys: ['id'],
  },
  token: { select: `SELECT ${TOKEN_COLUMNS} FROM tokens`, keys: ['id'] },
  reservation: { select: 'SELECT namespace, key, owner FROM reservations', keys: ['namespace', 'key'] },
};

function toRecord(type: StoreRecordType, row: QueryResultRow): StoreRecord {
  switch (type) {
    case 'node':
      return { type, node: toStoredNode(row as NodeRow) };
    case 'job':
      return { type, job: row['record'] as JobRecord };
    case 'event': {
      const event: JobEvent = {
        jobId: row['job_id'] as string,
        seq: row['seq'] as number,
        at: row['at'] as number,
        type: row['type'] as string,
        data: row['data'] as JsonObject,
      };
      return { type, event };
    }
    case 'audit':
      return { type, entry: toAuditEntry(row as AuditRow) };
    case 'token':
      return { type, token: toToken(row as TokenRow) };
    case 'reservation':
      return {
        type,
        namespace: row['namespace'] as string,
        reservation: { key: row['key'] as string, owner: row['owner'] as string },
      };
  }
}

/** Inserts one record exactly as it is; throws `ConflictError` when it exists already. */
async function insertOnce(client: PoolClient, sql: string, params: unknown[], what: string): Promise<void> {
  const result = await client.query(`${sql} ON CONFLICT DO NOTHING`, params);
  if (result.rowCount === 0) throw new ConflictError(`${what} already exists in the target store`);
}

async function importRecord(client: PoolClient, record: StoreRecord): Promise<void> {
  const json = (value: unknown): string | null => (value === null ? null : JSON.stringify(value));
  switch (record.type) {
    case 'node': {
      const { node } = record;
      await insertOnce(
        client,
        'INSERT INTO nodes (kind, name, attrs, revision, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [node.kind, node.name, json(node.attrs), node.revision, node.createdAt, node.updatedAt],
        `Node ${node.kind}/${node.name}`,
      );
      for (const [provider, obs] of Object.entries(node.observed)) {
        await insertOnce(
          client,
          'INSERT INTO observations (kind, name, provider, attrs, at) VALUES ($1, $2, $3, $4, $5)',
          [node.kind, node.name, provider, json(obs.attrs), obs.at],
          `The observation of ${node.kind}/${node.name} by ${provider}`,
        );
      }
      return;
    }
    case 'job': {
      const { job } = record;
      await insertOnce(
        client,
        'INSERT INTO jobs (id, kind, name, state, created_at, updated_at, record) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [job.id, job.kind, job.name, job.state, job.createdAt, job.updatedAt, json(job)],
        `Job ${job.id}`,
      );
      return;
    }
    case 'event': {
      const { event } = record;
      await insertOnce(
        client,
        'INSERT INTO job_events (job_id, seq, at, type, data) VALUES ($1, $2, $3, $4, $5)',
        [event.jobId, event.seq, event.at, event.type, json(event.data)],
        `Event ${event.seq} of job ${event.jobId}`,
      );
      // The job's counter numbers the next event: it must be past every copied one.
      await client.query('UPDATE jobs SET events = GREATEST(events, $2) WHERE id = $1', [
        event.jobId,
        event.seq,
      ]);
      return;
    }
    case 'audit': {
      const { entry } = record;
      await client.query(
        'INSERT INTO audit (at, actor, action, kind, name, job_id, before_attrs, after_attrs) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        auditRow(entry),
      );
      return;
    }
    case 'token': {
      const { token } = record;
      await insertOnce(
        client,
        'INSERT INTO tokens (id, hash, role, description, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [
          token.id,
          token.hash,
          token.role,
          token.description ?? null,
          token.createdAt,
          token.expiresAt ?? null,
        ],
        `Token ${token.id}`,
      );
      return;
    }
    case 'reservation':
      await insertOnce(
        client,
        'INSERT INTO reservations (namespace, key, owner) VALUES ($1, $2, $3)',
        [record.namespace, record.reservation.key, record.reservation.owner],
        `The reservation of ${record.reservation.key} in ${record.namespace}`,
      );
      return;
  }
}

/** Connection-level failures: network, server shutting down or starting, credentials, TLS, overload. */
function isUnavailable(error: unknown, state: string | undefined): boolean {
  if (state !== undefined) {
    return (
      state.startsWith('08') || // connection exception
      state.startsWith('28') || // invalid authorization (wrong password, no pg_hba entry)
      state.startsWith('57P') || // admin or crash shutdown, cannot connect now
      state.startsWith('53') || // insufficient resources (too many connections)
      state === '3D000' || // the database does not exist
      state === '40001' || // serialization failure
      state === '40P01' || // deadlock
      state === '55P03' // lock not available
    );
  }
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    /^(E[A-Z]+|ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_)/.test(code)
  ) {
    return true;
  }
  return /Connection terminated|connection error|timeout exceeded when trying to connect|does not support SSL|Client was closed|ECONNRESET|socket/i.test(
    error.message,
  );
}

/** The SQLSTATE of a driver error, or of the driver error a translated one wraps. */
function sqlState(error: unknown): string | undefined {
  if (error instanceof pg.DatabaseError && typeof error.code === 'string') return error.code;
  if (isConsortiumError(error) && error.cause !== undefined) return sqlState(error.cause);
  return undefined;
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** `message` without the password, should a driver ever echo it. */
function redact(message: string, password: string): string {
  return password === '' ? message : message.split(password).join('***');
}

function toStoredNode(row: NodeRow): StoredNode {
  const observed = row.observed ?? {};
  return {
    kind: row.kind,
    name: row.name,
    attrs: row.attrs,
    revision: row.revision,
    observed: Object.fromEntries(
      Object.keys(observed)
        .sort()
        .map((provider) => {
          const entry = observed[provider] as { attrs: Attrs | null; at: number };
          return [provider, { attrs: entry.attrs, at: entry.at }];
        }),
    ),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toAuditEntry(row: AuditRow): AuditEntry {
  const entry: AuditEntry = {
    at: row.at,
    actor: row.actor,
    action: row.action,
    kind: row.kind,
    name: row.name,
    before: row.before_attrs,
    after: row.after_attrs,
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

function checkFence(fence: string | undefined): void {
  if (fence !== undefined && !/^\d+$/.test(fence)) {
    throw new InputError(`A fencing token must be a decimal integer, not "${fence}"`);
  }
}

/**
 * Whether the fencing token `$5` (NULL: an unfenced write) admits a write of the job row: no master has fenced it
 * yet, or the newest one had a token no greater (compared as integers, so "10" is newer than "9"). Inside the
 * UPDATE's WHERE, PostgreSQL checks it against the row as it stands under the row lock, re-reading a row that a
 * concurrent write changed, so a newer master's write cannot slip in between the check and the write.
 */
const FENCE_ADMITS = `($5::numeric IS NULL OR (record->>'fence') IS NULL OR (record->>'fence')::numeric <= $5::numeric)`;

/**
 * The SET of a job write: the patch merged over the record (top-level keys, as `applyJobPatch` spreads them), the
 * state column kept in step with the record's.
 */
const JOB_SET = 'state = COALESCE($2::text, state), updated_at = $3::bigint, record = record || $4::jsonb';

/** `updateJob` in one statement: one round trip, no transaction. */
const UPDATE_JOB_SQL = `UPDATE jobs SET ${JOB_SET} WHERE id = $1 AND ${FENCE_ADMITS} RETURNING record`;

/**
 * `stepJob` in one statement: the job write, and the event numbered by the job's counter in the same row update
 * (the row lock hands out distinct, gapless numbers); the event is written only when the job write was.
 */
const STEP_JOB_SQL =
  `WITH j AS (UPDATE jobs SET ${JOB_SET}, events = events + 1 WHERE id = $1 AND ${FENCE_ADMITS} ` +
  'RETURNING record, events), ' +
  'e AS (INSERT INTO job_events (job_id, seq, at, type, data) ' +
  'SELECT $1, j.events, $3::bigint, $6::text, $7::jsonb FROM j RETURNING seq) ' +
  'SELECT j.record, e.seq FROM j, e';

/** `endJob` with an audit entry in one statement: `STEP_JOB_SQL` and the entry, written only with the job. */
const END_JOB_SQL =
  `WITH j AS (UPDATE jobs SET ${JOB_SET}, events = events + 1 WHERE id = $1 AND ${FENCE_ADMITS} ` +
  'RETURNING record, events), ' +
  'e AS (INSERT INTO job_events (job_id, seq, at, type, data) ' +
  'SELECT $1, j.events, $3::bigint, $6::text, $7::jsonb FROM j RETURNING seq), ' +
  'a AS (INSERT INTO audit (at, actor, action, kind, name, job_id, before_attrs, after_attrs) ' +
  'SELECT $8::bigint, $9::text, $10::text, $11::text, $12::text, $13::text, $14::jsonb, $15::jsonb FROM j) ' +
  'SELECT j.record, e.seq FROM j, e';

/**
 * Parameters $1-$5 of a job write. The merged object is `applyJobPatch`'s: the patch's defined keys (JSON leaves out
 * undefined ones), the fence of a fenced write, the time.
 */
function jobWriteParams(id: string, patch: JobPatch, at: number, fence: string | undefined): unknown[] {
  const merge = { ...patch, ...(fence === undefined ? {} : { fence }), updatedAt: at };
  return [id, patch.state ?? null, at, JSON.stringify(merge), fence ?? null];
}

/** `appendEvent`: the job's counter bumped and the event written under its number, in one statement. */
const APPEND_EVENT_SQL =
  'WITH s AS (UPDATE jobs SET events = events + 1 WHERE id = $1 RETURNING events) ' +
  'INSERT INTO job_events (job_id, seq, at, type, data) SELECT $1, events, $2, $3, $4 FROM s RETURNING seq';

/** `appendAudit`. */
const INSERT_AUDIT_SQL =
  'INSERT INTO audit (at, actor, action, kind, name, job_id, before_attrs, after_attrs) ' +
  'VALUES ($1, $2, $3, $4, $5, $6, $7, $8)';

/** The names of the prepared statements, by their text. */
const statementNames = new Map<string, string>();

/** The name of the prepared statement of `sql`: one per distinct text, the same on every connection. */
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `consortium_${statementNames.size + 1}`;
    statementNames.set(sql, name);
  }
  return name;
}
