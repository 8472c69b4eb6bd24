/**
 * The store port: the inventory cache, jobs with every round, job events, the audit log, API tokens and unique
 * reservations (IP addresses), split into the parts their users need. Adapters: SQLite (embedded default),
 * PostgreSQL and ArangoDB (the cluster stores). Every node write compares the
 * node's revision (optimistic concurrency); the revision is the node's ETag.
 */
import type { ErrorInfo } from '../errors.js';
import type { DeliveryPatch, DeliveryRecord, HookRecord } from '../hooks.js';
import type { Attrs, JsonObject, JsonValue, UpdateRequest } from '../model.js';
import type { JobFailure, PlannerState } from '../planner.js';

/** A node as the store keeps it: the merged attributes plus what each provider last observed. */
export interface StoredNode {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Attrs;
  /** Starts at 1 on insert and grows by one on every write. */
  readonly revision: number;
  /** Per provider: the values it last observed in its backend, and when (ms since epoch). */
  readonly observed: Readonly<Record<string, { readonly attrs: Attrs | null; readonly at: number }>>;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A comparison in a filter; `field` is `name` or an attribute path such as `datacenter` or `interfaces.ip`. */
export type Filter =
  | { readonly op: 'and' | 'or'; readonly args: readonly Filter[] }
  | { readonly op: 'not'; readonly arg: Filter }
  | {
      readonly op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
      readonly field: string;
      readonly value: JsonValue;
    }
  | { readonly op: 'in'; readonly field: string; readonly values: readonly JsonValue[] }
  /** A set list (or any array) holds the value. */
  | { readonly op: 'has'; readonly field: string; readonly value: JsonValue }
  /** Shell-style glob on a string: `*` any run, `?` one character. */
  | { readonly op: 'glob'; readonly field: string; readonly pattern: string }
  | { readonly op: 'exists'; readonly field: string }
  /** An IPv4 address string inside the network `cidr` (`10.1.0.0/16`). */
  | { readonly op: 'cidr'; readonly field: string; readonly cidr: string }
  /** One hop along a reference: the value at `field` names a node of `kind` that matches `filter`. */
  | { readonly op: 'ref'; readonly field: string; readonly kind: string; readonly filter: Filter };

/** A page of results and the cursor of the next page, if there is one. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly next?: string;
}

/** Options of `listNodes`: filter, page size, and the cursor returned by the previous page. */
export interface ListNodesOptions {
  readonly filter?: Filter;
  readonly limit: number;
  readonly cursor?: string;
}

/**
 * The states of a job; `queued` until the master takes it. `held`: one node's job of a batch, written with the
 * batch and not yet released to the master (the batch runner releases held jobs as its concurrency allows; the
 * master never sees a held job).
 */
export type JobState = 'held' | 'queued' | 'running' | 'succeeded' | 'failed' | 'expired' | 'cancelled';

/**
 * The batch a job belongs to, as every job of the batch carries it: a batch is its jobs (`<batch id>.n<index>`),
 * so it needs no record of its own and survives whatever its jobs survive.
 */
export interface BatchRef {
  /** The batch id; the job ids are `<id>.n<index>` for index 0 to `total - 1`. */
  readonly id: string;
  /** This job's place in the batch, from 0. */
  readonly index: number;
  /** How many jobs (nodes) the batch has. */
  readonly total: number;
  /** How many of its jobs may be queued or running at once. */
  readonly concurrency: number;
  /** No new job starts once this many have failed or expired. */
  readonly failureBudget: number;
  /** The selector as asked: a search query, or the list of names. */
  readonly selector: string;
}

/** What a job was asked to do. */
export type JobAction = 'create' | 'patch' | 'delete';

/** One user request and everything it caused. */
export interface JobRecord {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly action: JobAction;
  readonly state: JobState;
  /** Who asked (token id or `dev`). */
  readonly actor: string;
  readonly updates: readonly UpdateRequest[];
  /** The node's attributes when the job was accepted, for the audit log. */
  readonly before: Attrs | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** The planner's state, persisted after every step so that a new master can resume the job. */
  readonly plan?: PlannerState;
  readonly failure?: JobFailure;
  /** Set when someone asked to cancel; the master ends the job as `cancelled`. */
  readonly cancelRequested?: { readonly by: string; readonly at: number };
  /** The fencing token (a decimal integer) of the newest master that wrote the job; see `updateJob`. */
  readonly fence?: string;
  /** The node revision the change was made against (`If-Match`); the master applies it only at that revision. */
  readonly expectedRevision?: number;
  /** Times a master took the job up (started or resumed it) since its last step; one that keeps crashing its master is failed. */
  readonly resumes?: number;
  /** A failed create's rollback: the plan that removes what the create made (`unset present`). */
  readonly rollback?: PlannerState;
  /** The batch this job is one node of; absent for a job of one request. */
  readonly batch?: BatchRef;
}

/** Fields of a job the master updates as it runs. */
export type JobPatch = Partial<
  Pick<
    JobRecord,
    'state' | 'startedAt' | 'endedAt' | 'plan' | 'failure' | 'cancelRequested' | 'resumes' | 'rollback'
  >
>;

/** Options of `listJobs`: newest first. */
export interface ListJobsOptions {
  readonly states?: readonly JobState[];
  readonly kind?: string;
  readonly name?: string;
  readonly limit: number;
  readonly cursor?: string;
}

/** One event of a job, in order (`seq` from 1). */
export interface JobEvent {
  readonly jobId: string;
  readonly seq: number;
  readonly at: number;
  readonly type: string;
  readonly data: JsonObject;
}

/** One change, as the audit log keeps it. */
export interface AuditEntry {
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly kind: string;
  readonly name: string;
  readonly jobId?: string;
  readonly before: Attrs | null;
  readonly after: Attrs | null;
}

/** Roles, from least to most allowed. */
export type Role = 'reader' | 'operator' | 'admin';

/** An API token as stored: only its hash. */
export interface TokenRecord {
  readonly id: string;
  readonly hash: string;
  readonly role: Role;
  readonly description?: string;
  readonly createdAt: number;
  readonly expiresAt?: number;
}

/** A value reserved for one owner in a namespace (an IP address in a subnet). */
export interface Reservation {
  readonly key: string;
  readonly owner: string;
}

/** Reads of nodes: what plugins may see of the inventory. */
export interface NodeReader {
  getNode(kind: string, name: string): Promise<StoredNode | undefined>;
  /** Nodes of a kind in name order, filtered. */
  listNodes(kind: string, options: ListNodesOptions): Promise<Page<StoredNode>>;
}

/**
 * The inventory: node reads and writes. Writes throw `ConflictError` when inserting a node that exists and
 * `PreconditionFailedError` when an expected revision does not match.
 */
export interface NodeStore extends NodeReader {
  /** Inserts a node with revision 1; throws `ConflictError` if it exists. */
  insertNode(kind: string, name: string, attrs: Attrs, at: number): Promise<StoredNode>;
  /**
   * Replaces a node's attributes and bumps its revision. With `expectedRevision`, throws
   * `PreconditionFailedError` when the node's revision differs.
   */
  updateNode(
    kind: string,
    name: string,
    attrs: Attrs,
    at: number,
    expectedRevision?: number,
  ): Promise<StoredNode>;
  /** Deletes a node; with `expectedRevision`, only at that revision. Deleting an absent node is a no-op. */
  deleteNode(kind: string, name: string, expectedRevision?: number): Promise<void>;
  /** Records what one provider observed for a node (null: absent in its backend); does not bump the revision. */
  putObservation(
    kind: string,
    name: string,
    provider: string,
    attrs: Attrs | null,
    at: number,
  ): Promise<void>;
}

/** What ends a job together with its last write: the `ended` event and the audit entry. */
export interface JobEnding {
  readonly event: { readonly type: string; readonly data: JsonObject };
  readonly audit?: AuditEntry;
}

/** Jobs with every round, and their event streams. Throws `NotFoundError` for a job that is required. */
export interface JobStore {
  createJob(job: JobRecord): Promise<void>;
  getJob(id: string): Promise<JobRecord | undefined>;
  /**
   * Updates some fields of a job and returns it; throws `NotFoundError`. With `fence` (a master's fencing token),
   * the write is refused with `LeaseLostError` when a newer master has written the job with a greater token, and
   * otherwise records the token: a master that lost its leadership can no longer change the job.
   */
  updateJob(id: string, patch: JobPatch, at: number, fence?: string): Promise<JobRecord>;
  /**
   * Ends a job in one transaction: `patch` written as `updateJob` writes it (fenced the same way), its last event
   * and its audit entry. A crash leaves all of them or none, so an ended job always has its `ended` event.
   */
  endJob(
    id: string,
    patch: JobPatch,
    at: number,
    ending: JobEnding,
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }>;
  /**
   * One step of a job in one transaction: `patch` written as `updateJob` writes it (fenced the same way) and the
   * event that tells it appended, so that a step costs one write and its event never goes without it.
   */
  stepJob(
    id: string,
    patch: JobPatch,
    at: number,
    event: JobEnding['event'],
    fence?: string,
  ): Promise<{ readonly job: JobRecord; readonly event: JobEvent }>;
  listJobs(options: ListJobsOptions): Promise<Page<JobRecord>>;

  /** Appends an event to a job's stream and returns it with its sequence number. */
  appendEvent(jobId: string, type: string, data: JsonObject, at: number): Promise<JobEvent>;
  /** Events of a job with `seq` greater than `afterSeq`, in order. */
  listEvents(jobId: string, afterSeq: number): Promise<readonly JobEvent[]>;
}

/** Options of `listAudit`: newest first; every filter is an exact match and they all apply together. */
export interface ListAuditOptions {
  readonly kind?: string;
  readonly name?: string;
  /** Who made the change (a token id or `dev`). */
  readonly actor?: string;
  /** The job that made the change. */
  readonly jobId?: string;
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly cursor?: string;
}

/** The audit log: one entry per change. */
export interface AuditStore {
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Audit entries, newest first (entries of one millisecond in the order written, newest first), a page at a time. */
  listAudit(options: ListAuditOptions): Promise<Page<AuditEntry>>;
}

/** API tokens, kept only as hashes. */
export interface TokenStore {
  putToken(token: TokenRecord): Promise<void>;
  findToken(hash: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<readonly TokenRecord[]>;
  deleteToken(id: string): Promise<void>;
}

/** Unique reservations (IP addresses in a subnet), conflict-free across processes. */
export interface ReservationStore {
  /** Reserves `key` in `namespace` for `owner`: true if now (or already) the owner's, false if someone else's. */
  reserve(namespace: string, key: string, owner: string): Promise<boolean>;
  /** Releases every reservation of `owner` in `namespace` (or only `key`); releasing nothing is a no-op. */
  release(namespace: string, owner: string, key?: string): Promise<void>;
  /** The reservations of `namespace` by key, or only those of `owner` (an index lookup, whatever the namespace holds). */
  listReservations(namespace: string, owner?: string): Promise<readonly Reservation[]>;
}

/** Options of `listDeliveries`: one hook's deliveries, newest first, a page at a time. */
export interface ListDeliveriesOptions {
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly cursor?: string;
}

/**
 * Hooks and their deliveries. Errors, worded as the store contract pins them: `Hook <id> already exists`
 * (ConflictError), `Hook <id> not found` and `Delivery <id> not found` (NotFoundError).
 */
export interface HookStore {
  /** Inserts a hook; throws `ConflictError` when one has its id. */
  createHook(hook: HookRecord): Promise<void>;
  getHook(id: string): Promise<HookRecord | undefined>;
  /** Every hook, oldest first. */
  listHooks(): Promise<readonly HookRecord[]>;
  /** Deletes a hook and its deliveries; throws `NotFoundError`. */
  deleteHook(id: string): Promise<void>;
  /**
   * Counts one attempt of one of the hook's deliveries in one transaction (see `hookAfterAttempt`): of many
   * concurrent failures, exactly one reports `disabled`. Throws `NotFoundError`.
   */
  recordHookAttempt(
    id: string,
    succeeded: boolean,
    maxFailures: number,
  ): Promise<{ readonly hook: HookRecord; readonly disabled: boolean }>;
  /** Enables (resetting its failures) or disables a hook; throws `NotFoundError`. */
  setHookEnabled(id: string, enabled: boolean): Promise<HookRecord>;
  /** Inserts a delivery unless one has its id; true when inserted. Throws `NotFoundError` when its hook is gone. */
  createDelivery(delivery: DeliveryRecord): Promise<boolean>;
  getDelivery(id: string): Promise<DeliveryRecord | undefined>;
  /** Updates some fields of a delivery and returns it; throws `NotFoundError`. */
  updateDelivery(id: string, patch: DeliveryPatch): Promise<DeliveryRecord>;
  /** A hook's deliveries, newest first (by `createdAt`, then id); throws `InputError` for a bad limit or cursor. */
  listDeliveries(hookId: string, options: ListDeliveriesOptions): Promise<Page<DeliveryRecord>>;
}

/** The types of record a store holds, in the order `store copy` moves them (a job before its events). */
export const STORE_RECORD_TYPES = ['node', 'job', 'event', 'audit', 'token', 'reservation'] as const;

/** One of `STORE_RECORD_TYPES`. */
export type StoreRecordType = (typeof STORE_RECORD_TYPES)[number];

/** One record as it is moved between stores: everything kept, revisions, ids and timestamps included. */
export type StoreRecord =
  | { readonly type: 'node'; readonly node: StoredNode }
  | { readonly type: 'job'; readonly job: JobRecord }
  | { readonly type: 'event'; readonly event: JobEvent }
  | { readonly type: 'audit'; readonly entry: AuditEntry }
  | { readonly type: 'token'; readonly token: TokenRecord }
  | { readonly type: 'reservation'; readonly namespace: string; readonly reservation: Reservation };

/** Bulk export and import, for moving to another store (`consortium store copy`). */
export interface StoreTransfer {
  /** Every record of one type, in a stable order, a batch at a time. */
  exportRecords(type: StoreRecordType): AsyncIterable<readonly StoreRecord[]>;
  /** Writes records exactly as they are, in one transaction; throws `ConflictError` when one exists already. */
  importRecords(records: readonly StoreRecord[]): Promise<void>;
  /** How many records of each type the store holds. */
  countRecords(): Promise<Readonly<Record<StoreRecordType, number>>>;
}

/** What a plugin gets of the store: node reads and reservations, never jobs or tokens. */
export interface PluginStore extends NodeReader, ReservationStore {}

/**
 * The whole store, as a process opens it: every part above and `close`. Each user takes only the part it needs.
 * Methods throw `NotFoundError` for a missing node or job where one is required.
 */
export interface Store extends NodeStore, JobStore, AuditStore, TokenStore, ReservationStore, HookStore {
  close(): Promise<void>;
}

/** Describes an error for a job or an event. */
export type { ErrorInfo };
