/**
 * The store on ArangoDB through arangojs. One document per node (its attributes, revision and what each provider
 * observed), per job, event, audit entry, token and reservation; an edge per reference in `refs`.
 *
 * Concurrency: ArangoDB's RocksDB engine gives snapshot isolation and answers two concurrent writes of the same
 * document or unique index entry with a write-write conflict (error 1200) instead of waiting; the store retries the
 * whole operation on 1200 for up to `conflictRetryMs` and only then gives up with `ConflictError`. Writes that read
 * before they write (node writes with their edges, fenced job writes) run in a stream transaction and write with
 * `ignoreRevs: false` and the `_rev` they read, so that the check and the write are one atomic step whatever the
 * isolation details. Reservations and unique names are decided by unique indexes (error 1210), never by a read
 * before a write.
 */
import type { ConnectionOptions } from 'node:tls';
import { Database } from 'arangojs';
import { aql, join } from 'arangojs/aql';
import type { AqlQuery } from 'arangojs/aql';
import type { DocumentCollection, EdgeCollection } from 'arangojs/collections';
import type { Transaction, TransactionCollectionOptions } from 'arangojs/transactions';
import {
  BackendError,
  ConflictError,
  InputError,
  InternalError,
  NotFoundError,
  applyJobPatch,
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
import { isUniqueViolation, isWriteConflict, translateError } from './errors.js';
import { compileFilter } from './filter-aql.js';
import { ArangoHooks } from './hooks.js';
import { applyMigrations, arangoMigrations, checkSchema, Collections } from './migrations.js';
import type { ReferenceMap } from './references.js';
import { digest, edgeDocuments, nodeKey } from './references.js';
import { rebuildReferences } from './rebuild.js';
import { countArangoRecords, exportArangoRecords, importArangoRecords } from './transfer.js';

/** Where and how to open the ArangoDB store. */
export interface ArangoStoreOptions {
  /** The server (or coordinator) URL, `http://host:8529`; a user and password in it are used as credentials. */
  readonly url: string;
  /** The database; it must exist unless `createDatabase` is set. */
  readonly database: string;
  readonly username?: string;
  readonly password?: string;
  /** Create the database when it is missing (needs a user allowed to create databases). Default false. */
  readonly createDatabase?: boolean;
  /** The `x-ref` fields of each kind (`referencesOf(schemas)`); their edges serve the `ref` hop of search. */
  readonly references?: ReferenceMap;
  /** Attribute paths that filters use often; each gets a persistent index on `[kind, attrs.<path>]`. */
  readonly indexedAttributes?: readonly string[];
  /** How long one request may take before it fails as unavailable. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** How long a write keeps retrying write-write conflicts before `ConflictError`. Default 10 s. */
  readonly conflictRetryMs?: number;
  /**
   * Apply pending migrations when opening (default true); false refuses to open a database whose schema is
   * behind, for deployments where application processes must not run DDL (`migrateArango` applies them).
   */
  readonly runMigrations?: boolean;
  /**
   * TLS options of the client (CA, client certificate and key, servername) for an `https://` URL. arangojs hands
   * them to an undici `Agent`, so they need the `undici` package installed beside this one.
   */
  readonly tls?: ConnectionOptions;
}

/** The default time a request may take. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** The default time a write retries write-write conflicts. */
export const DEFAULT_CONFLICT_RETRY_MS = 10_000;

interface NodeDocument {
  readonly _key: string;
  readonly _id: string;
  readonly _rev: string;
  readonly kind: string;
  readonly name: string;
  readonly attrs: Attrs;
  readonly revision: number;
  readonly observed: StoredNode['observed'];
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface JobDocument {
  readonly _rev: string;
  readonly record: JobRecord;
}

interface AuditDocument {
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly kind: string;
  readonly name: string;
  readonly jobId?: string | null;
  readonly before: Attrs | null;
  readonly after: Attrs | null;
}

interface TokenDocument {
  readonly id: string;
  readonly hash: string;
  readonly role: string;
  readonly description?: string | null;
  readonly createdAt: number;
  readonly expiresAt?: number | null;
}

/**
 * Opens the ArangoDB store: connects, creates the database if asked to, applies migrations and, when the declared
 * references changed since the last open, rebuilds the reference edges. Throws `BackendUnavailableError` when the
 * server cannot be reached and `BackendError` when it refuses (credentials, missing database, newer schema).
 */
export async function openArangoStore(options: ArangoStoreOptions): Promise<ArangoStore> {
  const { endpoint, db } = await connect(options);
  try {
    if (options.runMigrations === false) await checkSchema(db, options.database);
    else await applyMigrations(db, arangoMigrations, options.indexedAttributes ?? []);
    await rebuildReferences(db, options.references ?? {});
    return new ArangoStore(db, endpoint, options);
  } catch (error) {
    db.close();
    throw translateError(error, endpoint, options.database);
  }
}

/**
 * Applies pending migrations and closes the connection, for `consortium store migrate`; returns the versions it
 * applied. Throws as `openArangoStore` does.
 */
export async function migrateArango(options: ArangoStoreOptions): Promise<{ applied: number[] }> {
  const { endpoint, db } = await connect(options);
  try {
    return { applied: await applyMigrations(db, arangoMigrations, options.indexedAttributes ?? []) };
  } catch (error) {
    throw translateError(error, endpoint, options.database);
  } finally {
    db.close();
  }
}

/** A `Database` for the options, the database created first when asked; throws translated errors. */
async function connect(options: ArangoStoreOptions): Promise<{ endpoint: string; db: Database }> {
  const { endpoint, auth } = splitCredentials(options);
  const common = {
    url: endpoint,
    ...(auth === undefined ? {} : { auth }),
    timeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...(options.tls === undefined ? {} : { agentOptions: { connect: options.tls } }),
  };
  if (options.tls !== undefined) await requireUndici();
  const db = new Database({ ...common, databaseName: options.database });
  if (options.createDatabase === true) {
    const system = new Database(common);
    try {
      if (!(await db.exists())) {
        try {
          await system.createDatabase(options.database);
        } catch (error) {
          // Another process created it first.
          if (!(await db.exists())) throw error;
        }
      }
    } catch (error) {
      db.close();
      throw translateError(error, endpoint, options.database);
    } finally {
      system.close();
    }
  }
  return { endpoint, db };
}

/** arangojs loads undici itself when given agent options, and fails late and vaguely when it is missing. */
async function requireUndici(): Promise<void> {
  const name = 'undici';
  try {
    await import(name);
  } catch (error) {
    throw new BackendError(
      'TLS client options for ArangoDB need the undici package (arangojs passes them to an undici Agent); ' +
        'install undici beside @consortium/store-arangodb',
      { cause: error },
    );
  }
}

/** The `Store` port on ArangoDB; open it with `openArangoStore`. */
export class ArangoStore implements Store, StoreTransfer {
  /** The server URL, without credentials. */
  readonly endpoint: string;
  /** The database name. */
  readonly database: string;
  private readonly references: ReferenceMap;
  private readonly conflictRetryMs: number;
  private readonly nodes: DocumentCollection & EdgeCollection;
  private readonly refs: DocumentCollection & EdgeCollection;
  private readonly jobs: DocumentCollection;
  private readonly events: DocumentCollection;
  private readonly audit: DocumentCollection;
  private readonly tokens: DocumentCollection;
  private readonly reservations: DocumentCollection;
  private readonly hooks: ArangoHooks;
  private closed = false;

  /** Wraps an open, migrated database; use `openArangoStore`. */
  constructor(
    private readonly db: Database,
    endpoint: string,
    options: ArangoStoreOptions,
  ) {
    this.endpoint = endpoint;
    this.database = options.database;
    this.references = options.references ?? {};
    this.conflictRetryMs = options.conflictRetryMs ?? DEFAULT_CONFLICT_RETRY_MS;
    this.nodes = db.collection(Collections.nodes);
    this.refs = db.collection(Collections.refs);
    this.jobs = db.collection(Collections.jobs);
    this.events = db.collection(Collections.events);
    this.audit = db.collection(Collections.audit);
    this.tokens = db.collection(Collections.tokens);
    this.reservations = db.collection(Collections.reservations);
    this.hooks = new ArangoHooks({
      db,
      all: (query, trx) => this.all(query, trx),
      inTransaction: (collections, fn) => this.inTransaction(collections, fn),
      write: (fn) => this.run(() => this.retrying(fn)),
      read: (fn) => this.run(fn),
    });
  }

  getNode(kind: string, name: string): Promise<StoredNode | undefined> {
    return this.run(async () => {
      const [doc] = await this.all<NodeDocument>(
        aql`FOR n IN ${this.nodes} FILTER n._key == ${nodeKey(kind, name)} RETURN n`,
      );
      return doc === undefined ? undefined : toStoredNode(doc);
    });
  }

  listNodes(kind: string, options: ListNodesOptions): Promise<Page<StoredNode>> {
    return this.run(async () => {
      const limit = checkPageLimit(options.limit);
      const where: AqlQuery[] = [aql`n.kind == ${kind}`];
      if (options.cursor !== undefined) where.push(aql`n.name > ${decodeNodeCursor(options.cursor)}`);
      if (options.filter !== undefined) {
        const context = { nodes: this.nodes, refs: this.refs, references: this.references };
        where.push(aql`(${compileFilter(options.filter, kind, context)})`);
      }
      const docs = await this.all<NodeDocument>(
        aql`FOR n IN ${this.nodes} FILTER ${join(where, ' AND ')} SORT n.name LIMIT ${limit + 1} RETURN n`,
      );
      const more = docs.length > limit;
      const items = (more ? docs.slice(0, limit) : docs).map(toStoredNode);
      const last = items[items.length - 1];
      return more && last !== undefined ? { items, next: encodeNodeCursor(last.name) } : { items };
    });
  }

  insertNode(kind: string, name: string, attrs: Attrs, at: number): Promise<StoredNode> {
    const key = nodeKey(kind, name);
    const doc = { _key: key, kind, name, attrs, revision: 1, observed: {}, createdAt: at, updatedAt: at };
    return this.run(() =>
      this.retrying(async () => {
        try {
          return await this.inTransaction({ write: [this.nodes, this.refs] }, async (trx) => {
            const [inserted] = await this.all<NodeDocument>(
              aql`INSERT ${doc} INTO ${this.nodes} RETURN NEW`,
              trx,
            );
            if (inserted === undefined)
              throw new InternalError(`Inserting node ${kind}/${name} returned nothing`);
            await this.replaceEdges(trx, kind, inserted._id, attrs);
            return toStoredNode(inserted);
          });
        } catch (error) {
          if (isUniqueViolation(error)) throw new ConflictError(`Node ${kind}/${name} already exists`);
          throw error;
        }
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
    const key = nodeKey(kind, name);
    return this.run(() =>
      this.retrying(() =>
        this.inTransaction({ write: [this.nodes, this.refs] }, async (trx) => {
          const current = await this.readNode(trx, key);
          if (current === undefined) throw new NotFoundError(`Node ${kind}/${name} not found`);
          if (expectedRevision !== undefined && current.revision !== expectedRevision) {
            throw staleRevision(kind, name, current.revision, expectedRevision);
          }
          const next = {
            _key: key,
            _rev: current._rev,
            kind,
            name,
            attrs,
            revision: current.revision + 1,
            observed: current.observed,
            createdAt: current.createdAt,
            updatedAt: at,
          };
          // With the _rev we read, a write that another transaction got in first is a conflict (1200), retried.
          const [replaced] = await this.all<NodeDocument>(
            aql`REPLACE ${next} IN ${this.nodes} OPTIONS { ignoreRevs: false } RETURN NEW`,
            trx,
          );
          if (replaced === undefined)
            throw new InternalError(`Updating node ${kind}/${name} returned nothing`);
          await this.replaceEdges(trx, kind, replaced._id, attrs);
          return toStoredNode(replaced);
        }),
      ),
    );
  }

  deleteNode(kind: string, name: string, expectedRevision?: number): Promise<void> {
    const key = nodeKey(kind, name);
    return this.run(() =>
      this.retrying(() =>
        this.inTransaction({ write: [this.nodes, this.refs] }, async (trx) => {
          const current = await this.readNode(trx, key);
          if (current === undefined) return;
          if (expectedRevision !== undefined && current.revision !== expectedRevision) {
            throw staleRevision(kind, name, current.revision, expectedRevision);
          }
          const target = { _key: key, _rev: current._rev };
          await this.all(aql`REMOVE ${target} IN ${this.nodes} OPTIONS { ignoreRevs: false }`, trx);
          await this.all(
            aql`FOR e IN ${this.refs} FILTER e._from == ${current._id} REMOVE e IN ${this.refs}`,
            trx,
          );
        }),
      ),
    );
  }

  putObservation(
    kind: string,
    name: string,
    provider: string,
    attrs: Attrs | null,
    at: number,
  ): Promise<void> {
    const key = nodeKey(kind, name);
    const observation = { attrs, at };
    return this.run(() =>
      this.retrying(async () => {
        // One query, so atomic; `mergeObjects: false` because MERGE already made the whole `observed` object and
        // a deep merge would mix a provider's new attributes with its old ones.
        const done = await this.all<boolean>(
          aql`FOR n IN ${this.nodes} FILTER n._key == ${key}
            UPDATE n WITH { observed: MERGE(n.observed, { [${provider}]: ${observation} }) } IN ${this.nodes}
            OPTIONS { mergeObjects: false } RETURN true`,
        );
        if (done.length === 0) throw new NotFoundError(`Node ${kind}/${name} not found`);
      }),
    );
  }

  createJob(job: JobRecord): Promise<void> {
    const doc = {
      _key: digest(job.id),
      id: job.id,
      kind: job.kind,
      name: job.name,
      state: job.state,
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      record: job,
    };
    return this.run(() =>
      this.retrying(async () => {
        try {
          await this.all(aql`INSERT ${doc} INTO ${this.jobs}`);
        } catch (error) {
          if (isUniqueViolation(error)) throw new ConflictError(`Job ${job.id} already exists`);
          throw error;
        }
      }),
    );
  }

  getJob(id: string): Promise<JobRecord | undefined> {
    return this.run(async () => {
      const [record] = await this.all<JobRecord>(
        aql`FOR j IN ${this.jobs} FILTER j._key == ${digest(id)} RETURN j.record`,
      );
      return record;
    });
  }

  updateJob(id: string, patch: JobPatch, at: number, fence?: string): Promise<JobRecord> {
    if (fence !== undefined && !/^\d+$/.test(fence)) {
      return Promise.reject(new InputError(`A fencing token must be a decimal integer, not "${fence}"`));
    }
    return this.run(() =>
      this.retrying(() =>
        this.inTransaction({ write: [this.jobs] }, (trx) => this.writeJob(trx, id, patch, at, fence)),
      ),
    );
  }

  endJob(
    id: string,
    patch: JobPatch,
    at: number,
    ending: JobEnding,
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }> {
    if (fence !== undefined && !/^\d+$/.test(fence)) {
      return Promise.reject(new InputError(`A fencing token must be a decimal integer, not "${fence}"`));
    }
    return this.run(() =>
      this.retrying(async () => {
        try {
          return await this.inTransaction({ write: [this.jobs, this.events, this.audit] }, async (trx) => {
            const job = await this.writeJob(trx, id, patch, at, fence);
            const { type, data } = ending.event;
            const [seq] = await this.all<number>(
              aql`LET last = FIRST(FOR e IN ${this.events} FILTER e.jobId == ${id} SORT e.seq DESC LIMIT 1 RETURN e.seq)
                INSERT { jobId: ${id}, seq: last == null ? 1 : last + 1, at: ${at}, type: ${type}, data: ${data} }
                  INTO ${this.events}
                RETURN NEW.seq`,
              trx,
            );
            if (seq === undefined) throw new NotFoundError(`Job ${id} not found`);
            if (ending.audit !== undefined) {
              await this.all(aql`INSERT ${auditDocument(ending.audit)} INTO ${this.audit}`, trx);
            }
            return { job, event: { jobId: id, seq, at, type, data } };
          });
        } catch (error) {
          if (isUniqueViolation(error)) throw new RetryConflict(error);
          throw error;
        }
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

  /** The body of `updateJob`, inside the caller's stream transaction. */
  private async writeJob(
    trx: Transaction,
    id: string,
    patch: JobPatch,
    at: number,
    fence: string | undefined,
  ): Promise<JobRecord> {
    const key = digest(id);
    const [doc] = await this.all<JobDocument>(
      aql`FOR j IN ${this.jobs} FILTER j._key == ${key} RETURN { _rev: j._rev, record: j.record }`,
      trx,
    );
    if (doc === undefined) throw new NotFoundError(`Job ${id} not found`);
    const job = applyJobPatch(doc.record, patch, at, fence);
    const next = {
      _key: key,
      _rev: doc._rev,
      id,
      kind: job.kind,
      name: job.name,
      state: job.state,
      createdAt: job.createdAt,
      updatedAt: at,
      record: job,
    };
    // The fence check and this write are one step: a newer master's write in between changes _rev (1200).
    await this.all(aql`REPLACE ${next} IN ${this.jobs} OPTIONS { ignoreRevs: false }`, trx);
    return job;
  }

  listJobs(options: ListJobsOptions): Promise<Page<JobRecord>> {
    return this.run(async () => {
      const limit = checkPageLimit(options.limit);
      const where: AqlQuery[] = [];
      if (options.states !== undefined) where.push(aql`j.state IN ${[...options.states]}`);
      if (options.kind !== undefined) where.push(aql`j.kind == ${options.kind}`);
      if (options.name !== undefined) where.push(aql`j.name == ${options.name}`);
      if (options.cursor !== undefined) {
        const after = decodeJobCursor(options.cursor);
        where.push(
          aql`(j.createdAt < ${after.createdAt} OR (j.createdAt == ${after.createdAt} AND j.id < ${after.id}))`,
        );
      }
      const filter = where.length > 0 ? aql`FILTER ${join(where, ' AND ')}` : aql``;
      const records = await this.all<JobRecord>(
        aql`FOR j IN ${this.jobs} ${filter} SORT j.createdAt DESC, j.id DESC LIMIT ${limit + 1} RETURN j.record`,
      );
      const items = records.slice(0, limit);
      const last = items[items.length - 1];
      return records.length > limit && last !== undefined
        ? { items, next: encodeJobCursor(last) }
        : { items };
    });
  }

  appendEvent(jobId: string, type: string, data: JsonObject, at: number): Promise<JobEvent> {
    return this.run(() =>
      this.retrying(async () => {
        try {
          // The next number is the last one plus one; two appends that computed the same number collide on the
          // unique (jobId, seq) index (1210, or 1200 while the other is uncommitted), and the loser tries again.
          const [seq] = await this.all<number>(
            aql`FOR j IN ${this.jobs} FILTER j._key == ${digest(jobId)}
              LET last = FIRST(FOR e IN ${this.events} FILTER e.jobId == ${jobId} SORT e.seq DESC LIMIT 1 RETURN e.seq)
              INSERT { jobId: ${jobId}, seq: last == null ? 1 : last + 1, at: ${at}, type: ${type}, data: ${data} }
                INTO ${this.events}
              RETURN NEW.seq`,
          );
          if (seq === undefined) throw new NotFoundError(`Job ${jobId} not found`);
          return { jobId, seq, at, type, data };
        } catch (error) {
          if (isUniqueViolation(error)) throw new RetryConflict(error);
          throw error;
        }
      }),
    );
  }

  listEvents(jobId: string, afterSeq: number): Promise<readonly JobEvent[]> {
    return this.run(() =>
      this.all<JobEvent>(
        aql`FOR e IN ${this.events} FILTER e.jobId == ${jobId} AND e.seq > ${afterSeq} SORT e.seq
          RETURN { jobId: e.jobId, seq: e.seq, at: e.at, type: e.type, data: e.data }`,
      ),
    );
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    const doc = auditDocument(entry);
    return this.run(async () => {
      await this.all(aql`INSERT ${doc} INTO ${this.audit}`);
    });
  }

  listAudit(options: ListAuditOptions): Promise<Page<AuditEntry>> {
    return this.run(async () => {
      const limit = checkPageLimit(options.limit);
      const where: AqlQuery[] = [];
      if (options.kind !== undefined) where.push(aql`a.kind == ${options.kind}`);
      if (options.name !== undefined) where.push(aql`a.name == ${options.name}`);
      if (options.actor !== undefined) where.push(aql`a.actor == ${options.actor}`);
      if (options.jobId !== undefined) where.push(aql`a.jobId == ${options.jobId}`);
      if (options.cursor !== undefined) {
        const after = decodeAuditCursor(options.cursor);
        where.push(aql`(a.at < ${after.at} OR (a.at == ${after.at} AND a._key < ${after.key}))`);
      }
      const filter = where.length > 0 ? aql`FILTER ${join(where, ' AND ')}` : aql``;
      // Padded keys grow with every insert, so they order two entries of the same millisecond.
      const docs = await this.all<AuditDocument & { readonly _key: string }>(
        aql`FOR a IN ${this.audit} ${filter} SORT a.at DESC, a._key DESC LIMIT ${limit + 1} RETURN a`,
      );
      const items = docs.slice(0, limit).map(toAuditEntry);
      const last = docs[limit - 1];
      return docs.length > limit && last !== undefined
        ? { items, next: encodeAuditCursor({ at: last.at, key: last._key }) }
        : { items };
    });
  }

  putToken(token: TokenRecord): Promise<void> {
    const doc = {
      _key: digest(token.id),
      id: token.id,
      hash: token.hash,
      role: token.role,
      description: token.description ?? null,
      createdAt: token.createdAt,
      expiresAt: token.expiresAt ?? null,
    };
    return this.run(() =>
      this.retrying(async () => {
        try {
          await this.all(aql`INSERT ${doc} INTO ${this.tokens} OPTIONS { overwriteMode: "replace" }`);
        } catch (error) {
          if (isUniqueViolation(error)) throw new ConflictError('Another token has the same hash');
          throw error;
        }
      }),
    );
  }

  findToken(hash: string): Promise<TokenRecord | undefined> {
    return this.run(async () => {
      const [doc] = await this.all<TokenDocument>(
        aql`FOR t IN ${this.tokens} FILTER t.hash == ${hash} LIMIT 1 RETURN t`,
      );
      return doc === undefined ? undefined : toToken(doc);
    });
  }

  listTokens(): Promise<readonly TokenRecord[]> {
    return this.run(async () =>
      (await this.all<TokenDocument>(aql`FOR t IN ${this.tokens} SORT t.createdAt, t.id RETURN t`)).map(
        toToken,
      ),
    );
  }

  deleteToken(id: string): Promise<void> {
    return this.run(() =>
      this.retrying(async () => {
        await this.all(
          aql`FOR t IN ${this.tokens} FILTER t._key == ${digest(id)} REMOVE t IN ${this.tokens}`,
        );
      }),
    );
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

  reserve(namespace: string, key: string, owner: string): Promise<boolean> {
    return this.run(() =>
      this.retrying(async () => {
        try {
          await this.all(
            aql`INSERT { namespace: ${namespace}, key: ${key}, owner: ${owner} } INTO ${this.reservations}`,
          );
          return true;
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
        }
        // The unique index refused the insert: the key is taken; by whom decides the answer.
        const [holder] = await this.all<string>(
          aql`FOR r IN ${this.reservations} FILTER r.namespace == ${namespace} AND r.key == ${key} RETURN r.owner`,
        );
        // Released between the insert and this read: try again.
        if (holder === undefined) throw new RetryConflict(undefined);
        return holder === owner;
      }),
    );
  }

  release(namespace: string, owner: string, key?: string): Promise<void> {
    const filter =
      key === undefined
        ? aql`r.namespace == ${namespace} AND r.owner == ${owner}`
        : aql`r.namespace == ${namespace} AND r.key == ${key} AND r.owner == ${owner}`;
    return this.run(() =>
      this.retrying(async () => {
        await this.all(aql`FOR r IN ${this.reservations} FILTER ${filter} REMOVE r IN ${this.reservations}`);
      }),
    );
  }

  listReservations(namespace: string, owner?: string): Promise<readonly Reservation[]> {
    return this.run(() =>
      this.all<Reservation>(
        owner === undefined
          ? aql`FOR r IN ${this.reservations} FILTER r.namespace == ${namespace} SORT r.key
          RETURN { key: r.key, owner: r.owner }`
          : aql`FOR r IN ${this.reservations} FILTER r.namespace == ${namespace} AND r.owner == ${owner}
          SORT r.key RETURN { key: r.key, owner: r.owner }`,
      ),
    );
  }

  async *exportRecords(type: StoreRecordType): AsyncIterable<readonly StoreRecord[]> {
    if (this.closed) throw new InternalError(`The ArangoDB store at ${this.endpoint} is closed`);
    try {
      yield* exportArangoRecords(this.db, type);
    } catch (error) {
      throw translateError(error, this.endpoint, this.database);
    }
  }

  importRecords(records: readonly StoreRecord[]): Promise<void> {
    return this.run(() => importArangoRecords(this.db, records, this.references));
  }

  countRecords(): Promise<Readonly<Record<StoreRecordType, number>>> {
    return this.run(() => countArangoRecords(this.db));
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }

  /** Runs `fn`, translating whatever arangojs throws into Consortium errors. */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new InternalError(`The ArangoDB store at ${this.endpoint} is closed`);
    try {
      return await fn();
    } catch (error) {
      throw translateError(error, this.endpoint, this.database);
    }
  }

  /**
   * Runs `fn` again after a write-write conflict (or a `RetryConflict`), with a growing, jittered pause, until
   * `conflictRetryMs` have passed; then throws `ConflictError`.
   */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await fn();
      } catch (error) {
        if (!isWriteConflict(error) && !(error instanceof RetryConflict)) throw error;
        const waited = Date.now() - started;
        if (waited >= this.conflictRetryMs) {
          throw new ConflictError(
            `Concurrent writes kept changing the same data in ArangoDB for ${waited} ms; try again`,
            { cause: error instanceof RetryConflict ? error.cause : error },
          );
        }
        const ceiling = Math.min(200, 5 * 2 ** Math.min(attempt, 6));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
      }
    }
  }

  /** Runs `fn` in a stream transaction over `collections`: committed when it returns, aborted when it throws. */
  private async inTransaction<T>(
    collections: TransactionCollectionOptions,
    fn: (trx: Transaction) => Promise<T>,
  ): Promise<T> {
    const trx = await this.db.beginTransaction(collections);
    let result: T;
    try {
      result = await fn(trx);
    } catch (error) {
      // The abort's own failure (the connection is gone) must not hide why we abort; the server drops an
      // abandoned stream transaction after its idle timeout, and nothing of it is ever committed.
      await trx.abort().catch(() => undefined);
      throw error;
    }
    await trx.commit();
    return result;
  }

  private async readNode(trx: Transaction, key: string): Promise<NodeDocument | undefined> {
    const [doc] = await this.all<NodeDocument>(
      aql`FOR n IN ${this.nodes} FILTER n._key == ${key} RETURN n`,
      trx,
    );
    return doc;
  }

  /** Replaces the outgoing `refs` edges of the node `from` (a document `_id`) with those its attributes hold now. */
  private async replaceEdges(trx: Transaction, kind: string, from: string, attrs: Attrs): Promise<void> {
    if (this.references[kind] === undefined) return;
    await this.all(aql`FOR e IN ${this.refs} FILTER e._from == ${from} REMOVE e IN ${this.refs}`, trx);
    const edges = edgeDocuments(Collections.nodes, kind, from, attrs, this.references);
    if (edges.length > 0) await this.all(aql`FOR e IN ${edges} INSERT e INTO ${this.refs}`, trx);
  }

  /** Runs a query (inside `trx` when given) and reads every result. */
  private async all<T>(query: AqlQuery, trx?: Transaction): Promise<T[]> {
    const typed = query as AqlQuery<T>;
    const cursor =
      trx === undefined ? await this.db.query<T>(typed) : await trx.step(() => this.db.query<T>(typed));
    return cursor.all();
  }
}

/** Thrown inside `retrying` to ask for another attempt; `cause` is the ArangoDB error, if one prompted it. */
class RetryConflict extends Error {
  constructor(override readonly cause: unknown) {
    super('retry after a conflict');
  }
}

/** The URL without credentials, for connecting and for messages, and the credentials from the options or the URL. */
export function splitCredentials(options: Pick<ArangoStoreOptions, 'url' | 'username' | 'password'>): {
  endpoint: string;
  auth?: { username: string; password?: string };
} {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new BackendError(`The ArangoDB URL is not a URL: ${JSON.stringify(stripCredentials(options.url))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BackendError(`The ArangoDB URL must be http:// or https://, not ${url.protocol}//`);
  }
  const username = options.username ?? (url.username === '' ? undefined : decodeURIComponent(url.username));
  const password = options.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password));
  url.username = '';
  url.password = '';
  const endpoint = url.toString().replace(/\/$/, '');
  if (username === undefined) return { endpoint };
  return { endpoint, auth: password === undefined ? { username } : { username, password } };
}

function stripCredentials(text: string): string {
  return text.replace(/\/\/[^@/]*@/, '//');
}

function toStoredNode(doc: NodeDocument): StoredNode {
  return {
    kind: doc.kind,
    name: doc.name,
    attrs: doc.attrs,
    revision: doc.revision,
    observed: doc.observed,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function toAuditEntry(doc: AuditDocument): AuditEntry {
  const entry: AuditEntry = {
    at: doc.at,
    actor: doc.actor,
    action: doc.action,
    kind: doc.kind,
    name: doc.name,
    before: doc.before,
    after: doc.after,
  };
  return doc.jobId === null || doc.jobId === undefined ? entry : { ...entry, jobId: doc.jobId };
}

function toToken(doc: TokenDocument): TokenRecord {
  const token: TokenRecord = { id: doc.id, hash: doc.hash, role: doc.role as Role, createdAt: doc.createdAt };
  return {
    ...token,
    ...(doc.description === null || doc.description === undefined ? {} : { description: doc.description }),
    ...(doc.expiresAt === null || doc.expiresAt === undefined ? {} : { expiresAt: doc.expiresAt }),
  };
}

/** An audit entry as its document in the `audit` collection. */
function auditDocument(entry: AuditEntry): Record<string, unknown> {
  return {
    at: entry.at,
    actor: entry.actor,
    action: entry.action,
    kind: entry.kind,
    name: entry.name,
    jobId: entry.jobId ?? null,
    before: entry.before,
    after: entry.after,
  };
}
