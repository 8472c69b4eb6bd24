/**
 * An at-least-once task queue over etcd (DESIGN.md §5). Under `q/<queue>/`:
 *
 *     tasks/<id>                     the record: payload, priority, attempts, maxAttempts, state, index key, error
 *     ready/<prio>/<seq>/<id>        a copy of the record; key order is dispatch order (priority, then enqueue order)
 *     delayed/<notBeforeMs>/<id>     empty; key order is due order
 *     claims/<id>                    {worker, member, attempt, nonce} on the claimer's session lease
 *     dlq/<id>                       empty; the record keeps the last error
 *
 * Enqueue, claim, ack, fail, promotion and reaping are each guarded by compares that make them apply at most once
 * (never over 128 ops per transaction). Enqueues and acks go through the coordinator's write pipe (`TxnBatcher`):
 * those made together, with the process's other writes, are combined into one transaction, and `claimMany` claims
 * several tasks in one: the compares stay per task, so a combination changes the number of consensus rounds, not
 * what applies. A ready key's value is a copy of its task's record, written with the record, so a claim reads only
 * `ready/`: in key order with a limit, as a serializable read (a hint: the transaction compares each record against
 * its copy's revision), or, once a claim of this member found the queue empty, from the ready keys its watch keeps.
 * It takes the first keys; after a conflicting transaction the member picks at random among the first few for a
 * while, to get off a hot head, and its own concurrent claims never pick the same key. The claim id is the claim
 * key's create revision (shared by the tasks of one batch, distinct per task key); ack and fail compare it, so a
 * late ack from a worker whose lease expired (its claim key went with the lease) is discarded.
 *
 * Reaping: every member that waits to claim watches the queue; a deleted claim whose task is still `claimed` means
 * the claimer's lease expired, and the task goes back to `ready/` (or to `dlq/` when out of attempts). A full
 * reconcile (scan of `tasks/` against `claims/`) runs on a member's first idle claim pass, after watch history was
 * compacted and every `reconcileIntervalMs` while claims wait, so orphans are found even when no watch saw them go.
 * Delayed tasks are promoted by whichever claim pass finds them due; a claim pass skips the scan while the last scan
 * and the watch say none is due (at most for a second); a waiting claim sleeps until the earliest one.
 */
import { randomInt, randomUUID } from 'node:crypto';
import {
  backoffDelay,
  InputError,
  LeaseLostError,
  PayloadTooLargeError,
  validateClaimBatch,
} from '@consortium/core';
import type {
  BackoffPolicy,
  ClaimedTask,
  DeadTask,
  ErrorInfo,
  JsonValue,
  Queue,
  QueueStats,
  QueueTask,
} from '@consortium/core';
import { assertOpen, closedError, describeError, waitError } from './context.js';
import type { CoordinatorContext } from './context.js';
import { isRetryable, WaitAborted } from './etcd-errors.js';
import type { KeyValue, RangeResult } from './etcd-kv.js';
import { KeyWatch } from './key-watch.js';
import type { WatchEvent } from './key-watch.js';
import { QueueKeys, sequenceAt } from './keys.js';
import type { SequenceClock } from './keys.js';
import type { Session } from './session.js';
import { etcdRetry, isAborted, sleep } from './waits.js';

/** Default priority of a task; lower runs first. */
const defaultPriority = 100;
/** Default number of claims before a task is dead. */
const defaultMaxAttempts = 5;
/** Largest task record; etcd refuses values over 1.5 MiB and big data belongs in the store. */
const maxRecordBytes = 512 * 1024;
/** Ready keys read beyond those a claim pass wants; a contended claim picks among them. */
const readyWindow = 8;
/** How long a claim conflict makes this member pick at random near the head rather than take the head. */
const contentionMemoryMs = 1000;
/** Longest a claim pass goes without scanning for due delayed tasks while the queue is busy. */
const maxPromoteGapMs = 1000;
/** Transactions a batch claim tries, each with the tasks still claimable after the last one's conflict. */
const batchRounds = 3;
/** Keys read per page when scanning. */
const pageSize = 256;
/** Reads per read-only transaction, well under etcd's 128 operations. */
const readBatch = 100;
/** Ready keys a member's watch keeps at most; past that its claims read them from etcd again. */
const maxTrackedReady = 1000;
/** Suspected orphans remembered before falling back to a full reconcile. */
const maxSuspects = 1000;
/** Attempts to learn whether an ambiguous claim applied, or to undo a claim nobody will take. */
const repairAttempts = 5;

/** Where a task is. */
type TaskState = 'ready' | 'delayed' | 'claimed' | 'dead';

/** A task record as stored at `tasks/<id>`; short field names keep values small. */
interface TaskRecord {
  /** Payload. */
  readonly p: JsonValue;
  /** Priority. */
  readonly r: number;
  /** Max attempts. */
  readonly m: number;
  /** Attempts so far (claims). */
  readonly a: number;
  /** State. */
  readonly s: TaskState;
  /** The `ready/` or `delayed/` key that indexes the task while it is ready or delayed. */
  readonly k?: string;
  /** The last claimant, `worker@member`. */
  readonly w?: string;
  /** The last error, once dead. */
  readonly e?: ErrorInfo;
}

/** A record with the revision it was read at. */
interface StoredRecord {
  readonly record: TaskRecord;
  readonly modRevision: string;
}

/** The value of `claims/<id>`. */
interface ClaimValue {
  readonly w: string;
  readonly m: string;
  readonly a: number;
  readonly n: string;
}

/** What one claim pass achieved. */
type ClaimPass =
  | { readonly kind: 'claimed'; readonly claims: readonly Claimed[] }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'retry' }
  | { readonly kind: 'idle'; readonly revision: bigint; readonly nextDue: number | undefined };

/** A task this member claimed, with what puts it back where it was (when its caller stopped waiting). */
interface Claimed {
  readonly task: ClaimedTask;
  readonly readyKey: string;
  readonly before: TaskRecord;
}

/** A ready task a claim pass tries to take, with its record as read. */
interface Candidate {
  readonly readyKey: string;
  readonly id: string;
  readonly stored: StoredRecord;
}

/** The claimed task of a claim transaction that applied at `revision` (the claim key's create revision). */
function claimOf(
  claim: {
    readonly readyKey: string;
    readonly id: string;
    readonly stored: StoredRecord;
    readonly attempt: number;
  },
  revision: string,
): Claimed {
  const before = claim.stored.record;
  return {
    task: { id: claim.id, payload: before.p, attempt: claim.attempt, claim: revision },
    readyKey: claim.readyKey,
    before,
  };
}

/** `n` entries of `items` at random (all of them when there are no more), in their order. */
function sample<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  const chosen = new Set<number>();
  while (chosen.size < n) chosen.add(randomInt(items.length));
  return [...chosen].sort((x, y) => x - y).map((i) => items[i] as T);
}

/** Options of an `EtcdQueue`. */
export interface EtcdQueueOptions {
  readonly backoff: BackoffPolicy;
  readonly reconcileIntervalMs: number;
  readonly clock: SequenceClock;
}

/** One named queue of an etcd coordinator. */
export class EtcdQueue implements Queue {
  readonly #context: CoordinatorContext;
  readonly #name: string;
  readonly #keys: QueueKeys;
  readonly #options: EtcdQueueOptions;
  #waker: QueueWaker | undefined;
  #lastFullReconcile = 0;
  /** Ready keys that a claim pass of this member is taking now; its other passes leave them alone. */
  readonly #inFlight = new Set<string>();
  /** Ready keys once seen without a record that points to them; a second sighting checks whether they are stray. */
  readonly #strayCandidates = new Set<string>();
  /** Ready keys whose copy of the record did not lead to a claim: their records are read on the next sighting. */
  readonly #distrusted = new Set<string>();
  /** Until when claims pick at random near the head, after another member won a race for it. */
  #contendedUntil = 0;
  /** No delayed task is due before this time (ms since the epoch), as far as the last scan and the watch know. */
  #nextDueHint = 0;

  constructor(context: CoordinatorContext, name: string, options: EtcdQueueOptions) {
    this.#context = context;
    this.#name = name;
    this.#keys = new QueueKeys(name);
    this.#options = options;
  }

  /** Adds a task unless its id is known; throws `InputError` for an invalid task. */
  async enqueue(task: QueueTask): Promise<boolean> {
    return this.#call(async () => {
      validateTask(task);
      const { kv } = this.#context;
      const now = Date.now();
      const priority = task.priority ?? defaultPriority;
      const { notBefore } = task;
      const delayed = notBefore !== undefined && notBefore > now;
      const index = delayed
        ? this.#keys.delayedKey(notBefore, task.id)
        : this.#keys.readyKey(priority, this.#options.clock.next(now), task.id);
      const record: TaskRecord = {
        p: task.payload,
        r: priority,
        m: task.maxAttempts ?? defaultMaxAttempts,
        a: 0,
        s: delayed ? 'delayed' : 'ready',
        k: index,
      };
      const taskKey = this.#keys.task(task.id);
      const encoded = encodeRecord(record, task.id);
      return this.#context.writes.submit({
        what: `Enqueueing task ${task.id} on queue "${this.#name}"`,
        keys: [taskKey, index],
        compares: [kv.absent(taskKey)],
        success: [kv.put(taskKey, encoded), kv.put(index, delayed ? '' : encoded)],
        checks: [kv.read(taskKey, { keysOnly: true })],
        held: ([read]) => read?.kvs.length === 0,
      });
    });
  }

  /** Waits for a claimable task and claims it; rejects with `CancelledError` when `signal` aborts or on close. */
  async claim(worker: string, signal: AbortSignal): Promise<ClaimedTask> {
    const [task] = await this.#claimUpTo(worker, 1, signal);
    return task as ClaimedTask;
  }

  /** Waits for a claimable task, then claims up to `max` in one transaction; `InputError` for a bad `max`. */
  async claimMany(worker: string, max: number, signal: AbortSignal): Promise<readonly ClaimedTask[]> {
    validateClaimBatch(max);
    return this.#claimUpTo(worker, max, signal);
  }

  async #claimUpTo(worker: string, max: number, signal: AbortSignal): Promise<ClaimedTask[]> {
    const cancelled = `Claim on queue "${this.#name}" cancelled`;
    if (signal.aborted) throw waitError(this.#context, new WaitAborted(), signal, cancelled);
    assertOpen(this.#context);
    const waitSignal = AbortSignal.any([signal, this.#context.closed]);
    try {
      for (let failures = 0; ;) {
        if (waitSignal.aborted) throw new WaitAborted();
        const session = await this.#context.sessions.acquire(waitSignal);
        let pass: ClaimPass;
        try {
          pass = await this.#claimPass(session, worker, max);
          failures = 0;
        } catch (error) {
          if (error instanceof WaitAborted || !isRetryable(error)) throw error;
          failures += 1;
          this.#context.logger.debug(`Claim pass on queue "${this.#name}" failed; retrying`, {
            error: describeError(error),
          });
          await sleep(backoffDelay(etcdRetry, failures), waitSignal);
          continue;
        }
        switch (pass.kind) {
          case 'claimed':
            if (isAborted(waitSignal)) {
              await Promise.all(pass.claims.map((claim) => this.#unclaim(claim)));
              throw new WaitAborted();
            }
            return pass.claims.map((claim) => claim.task);
          case 'conflict':
            // Others claim from the same head: pick at random near it for a while instead of racing for it.
            this.#contendedUntil = Date.now() + contentionMemoryMs;
            break;
          case 'retry':
            break;
          case 'idle':
            await this.#wakerFrom(pass.revision).wait(
              pass.revision,
              Math.min(pass.nextDue ?? Infinity, this.#lastFullReconcile + this.#options.reconcileIntervalMs),
              waitSignal,
            );
            break;
        }
      }
    } catch (error) {
      throw waitError(this.#context, error, signal, cancelled);
    }
  }

  /** Completes a claimed task; false when `task.claim` is no longer its claim. */
  async ack(task: ClaimedTask): Promise<boolean> {
    return this.#call(async () => {
      if (!isRevision(task.claim)) return false;
      const { kv } = this.#context;
      const claimKey = this.#keys.claim(task.id);
      const taskKey = this.#keys.task(task.id);
      return this.#context.writes.submit({
        what: `Acking task ${task.id} on queue "${this.#name}"`,
        keys: [claimKey, taskKey],
        compares: [kv.createIs(claimKey, task.claim)],
        success: [kv.delete(claimKey), kv.delete(taskKey)],
        checks: [kv.read(claimKey, { keysOnly: true })],
        held: ([read]) => read?.kvs[0]?.createRevision === task.claim,
      });
    });
  }

  /** Gives a claimed task back: delayed with exponential backoff while attempts remain, else dead. */
  async fail(task: ClaimedTask, error: ErrorInfo): Promise<'retry' | 'dead' | 'lost'> {
    return this.#call(async () => {
      if (!isRevision(task.claim)) return 'lost';
      const { kv } = this.#context;
      const claimKey = this.#keys.claim(task.id);
      const taskKey = this.#keys.task(task.id);
      const read = await kv.txn(`Reading task ${task.id}`, [], [kv.read(taskKey), kv.read(claimKey)]);
      const stored = storedRecord(read.ranges[0]?.kvs[0]);
      const claim = read.ranges[1]?.kvs[0];
      if (stored === undefined || claim?.createRevision !== task.claim) return 'lost';
      const { record, modRevision } = stored;
      const guards = [kv.createIs(claimKey, task.claim), kv.modIs(taskKey, modRevision)];
      if (record.a >= record.m) {
        const dead: TaskRecord = { p: record.p, r: record.r, m: record.m, a: record.a, s: 'dead', e: error };
        const buried = await kv.txn(`Burying task ${task.id} on queue "${this.#name}"`, guards, [
          kv.delete(claimKey),
          kv.put(taskKey, encodeRecord(withClaimant(dead, record), task.id)),
          kv.put(this.#keys.dead(task.id), ''),
        ]);
        return buried.succeeded ? 'dead' : 'lost';
      }
      const due = Date.now() + backoffDelay(this.#options.backoff, record.a);
      const index = this.#keys.delayedKey(due, task.id);
      const delayed: TaskRecord = {
        p: record.p,
        r: record.r,
        m: record.m,
        a: record.a,
        s: 'delayed',
        k: index,
      };
      const retried = await kv.txn(`Delaying task ${task.id} on queue "${this.#name}"`, guards, [
        kv.delete(claimKey),
        kv.put(taskKey, encodeRecord(withClaimant(delayed, record), task.id)),
        kv.put(index, ''),
      ]);
      return retried.succeeded ? 'retry' : 'lost';
    });
  }

  /** Counts of the queue at one revision, after promoting due tasks. */
  async stats(): Promise<QueueStats> {
    return this.#call(async () => {
      await this.#promoteDue(Date.now());
      const { kv } = this.#context;
      const count = (prefix: string): ReturnType<typeof kv.read> =>
        kv.read(prefix, { prefix: true, countOnly: true });
      const result = await kv.txn(
        `Counting queue "${this.#name}"`,
        [],
        [count(this.#keys.ready), count(this.#keys.delayed), count(this.#keys.claims), count(this.#keys.dlq)],
      );
      const [ready, delayed, claimed, dead] = result.ranges.map((range) => range.count);
      return { ready: ready ?? 0, delayed: delayed ?? 0, claimed: claimed ?? 0, dead: dead ?? 0 };
    });
  }

  /** The dead tasks, oldest death first. */
  async deadLetters(): Promise<readonly DeadTask[]> {
    return this.#call(async () => {
      const first = await this.#context.kv.range(this.#keys.dlq, { prefix: true, keysOnly: true });
      const dead = [...first.kvs].sort((x, y) => compareRevisions(x.createRevision, y.createRevision));
      const ids = dead.map((kv) => kv.key.slice(this.#keys.dlq.length));
      const records = await this.#readRecords(ids, first.revision);
      return ids.flatMap((id): DeadTask[] => {
        const record = records.get(id)?.record;
        if (record === undefined) return [];
        const task: DeadTask = { id, payload: record.p, attempts: record.a };
        return [record.e === undefined ? task : { ...task, error: record.e }];
      });
    });
  }

  /** Stops the queue's watch. */
  close(): void {
    this.#waker?.close();
    this.#waker = undefined;
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    assertOpen(this.#context);
    try {
      return await fn();
    } catch (error) {
      if (this.#context.closed.aborted) throw closedError(this.#context);
      throw error;
    }
  }

  #wakerFrom(revision: bigint): QueueWaker {
    if (this.#waker === undefined) {
      this.#waker = new QueueWaker(this.#context, this.#keys, revision + 1n, (due) => {
        this.#nextDueHint = Math.min(this.#nextDueHint, due);
      });
      // Scans before the watch began may have missed delayed tasks it will not report: scan again first.
      this.#nextDueHint = 0;
    }
    return this.#waker;
  }

  /**
   * Promotes due delayed tasks, reaps suspected orphans, then claims up to `max` tasks from the head (or at random
   * near it while contended) in one transaction. The reads are serializable hints; the transaction's compares (the
   * ready key still there, the record unchanged) decide, so a stale read costs a retry, never a double claim.
   */
  async #claimPass(session: Session, worker: string, max: number): Promise<ClaimPass> {
    const { kv } = this.#context;
    await this.#promoteIfDue(Date.now());
    if (this.#waker !== undefined && this.#waker.suspects.size > 0 && (await this.#reapSuspects()) > 0) {
      return { kind: 'retry' };
    }
    const window = max + readyWindow + this.#inFlight.size;
    // The ready keys as the watch saw them, once it keeps them; else read, with values (a ready key carries a copy of
    // its task's record, see `#claimPicks`).
    const tracked = this.#waker?.readyKeys(window);
    const ready =
      tracked ?? (await kv.range(this.#keys.ready, { prefix: true, limit: window, serializable: true }));
    // From the first pass on, the watch wakes waiting claims and keeps the delayed-task hint; from the first pass
    // that finds no ready key, it keeps the ready keys too.
    const waker = this.#wakerFrom(ready.revision);
    if (tracked === undefined && ready.kvs.length === 0) waker.trackReadyFrom(ready.revision);
    // Keys that a claim of this member is taking right now are not candidates for its other claims.
    const free = ready.kvs.filter((entry) => !this.#inFlight.has(entry.key));
    if (free.length === 0) {
      if (ready.kvs.length > 0) {
        // Everything in sight is being claimed here; look again when those claims are through.
        await sleep(1);
        return { kind: 'retry' };
      }
      if (await this.#reconcileIfDue()) return { kind: 'retry' };
      const next = await kv.range(this.#keys.delayed, { prefix: true, keysOnly: true, limit: 1 });
      const first = next.kvs[0];
      const nextDue = first === undefined ? undefined : this.#keys.parseDelayed(first.key)?.due;
      if (nextDue !== undefined) this.#nextDueHint = Math.min(this.#nextDueHint, nextDue);
      return { kind: 'idle', revision: ready.revision, nextDue };
    }
    const picks = Date.now() < this.#contendedUntil ? sample(free, max) : free.slice(0, max);
    for (const pick of picks) this.#inFlight.add(pick.key);
    try {
      return await this.#claimPicks(session, worker, picks);
    } finally {
      for (const pick of picks) this.#inFlight.delete(pick.key);
    }
  }

  /**
   * Claims the valid ones among the picked ready keys in one transaction. A ready key's value is a copy of its task's
   * record, written in the transaction that wrote the record (enqueue, promotion, requeue), so the copy's mod
   * revision is the record's for as long as the key stands; the claim transaction compares the record against it.
   * Only keys without a copy (written by an older version), and keys whose copy-based claim failed, have their
   * records read, so that a stray key is still found out and dropped.
   */
  async #claimPicks(session: Session, worker: string, picks: readonly KeyValue[]): Promise<ClaimPass> {
    const entries = picks.map((pick) => ({ pick, id: this.#keys.idOfReady(pick.key) }));
    const copies = new Map<string, StoredRecord>();
    for (const { pick, id } of entries) {
      const copy = id === undefined || this.#distrusted.delete(pick.key) ? undefined : storedRecord(pick);
      if (copy?.record.s === 'ready' && copy.record.k === pick.key) copies.set(pick.key, copy);
    }
    const ids = entries.flatMap(({ pick, id }) => (id === undefined || copies.has(pick.key) ? [] : [id]));
    const records =
      ids.length === 0 ? new Map<string, StoredRecord>() : await this.#readRecords(ids, undefined, true);
    let candidates: Candidate[] = [];
    for (const { pick, id } of entries) {
      const stored = copies.get(pick.key) ?? (id === undefined ? undefined : records.get(id));
      if (
        id === undefined ||
        stored === undefined ||
        stored.record.s !== 'ready' ||
        stored.record.k !== pick.key
      ) {
        // Usually a read a little behind a claim elsewhere. Seen twice, the key may be stray: a guarded delete
        // against the present decides (it deletes nothing when a record points to the key after all).
        if (this.#strayCandidates.delete(pick.key)) await this.#dropStray(pick, id, stored);
        else {
          if (this.#strayCandidates.size >= maxSuspects) this.#strayCandidates.clear();
          this.#strayCandidates.add(pick.key);
        }
        continue;
      }
      candidates.push({ readyKey: pick.key, id, stored });
    }
    if (candidates.length === 0) return { kind: 'conflict' };
    const nonce = randomUUID();
    let outcome: ClaimPass = { kind: 'conflict' };
    for (let round = 0; round < batchRounds && candidates.length > 0; round++) {
      const attempt = await this.#claimTxn(session, worker, candidates, nonce);
      if (attempt.kind !== 'partial') {
        outcome = attempt;
        break;
      }
      candidates = attempt.valid;
    }
    // A copy that did not lead to a claim may be stale (usually the task was claimed elsewhere and the key is gone):
    // if the key is seen again, its record is read.
    const taken = new Set(outcome.kind === 'claimed' ? outcome.claims.map((claim) => claim.readyKey) : []);
    for (const key of copies.keys()) {
      if (taken.has(key)) continue;
      if (this.#distrusted.size >= maxSuspects) this.#distrusted.clear();
      this.#distrusted.add(key);
    }
    return outcome;
  }

  /**
   * One claim transaction over `candidates`. When a compare fails, the failure branch reads back every ready key
   * and record, so that the candidates still valid are retried at once without another read.
   */
  async #claimTxn(
    session: Session,
    worker: string,
    candidates: readonly Candidate[],
    nonce: string,
  ): Promise<ClaimPass | { readonly kind: 'partial'; readonly valid: Candidate[] }> {
    const { kv } = this.#context;
    const claims = candidates.map(({ readyKey, id, stored }) => {
      const before = stored.record;
      const attempt = before.a + 1;
      const claimed: TaskRecord = {
        p: before.p,
        r: before.r,
        m: before.m,
        a: attempt,
        s: 'claimed',
        w: `${worker}@${this.#context.memberId}`,
      };
      const claimValue: ClaimValue = { w: worker, m: this.#context.memberId, a: attempt, n: nonce };
      return { readyKey, id, stored, attempt, claimed, claimValue };
    });
    let result;
    try {
      result = await kv.txn(
        claims.length === 1
          ? `Claiming task ${claims[0]?.id ?? ''} on queue "${this.#name}"`
          : `Claiming ${claims.length} tasks on queue "${this.#name}"`,
        claims.flatMap(({ readyKey, id, stored }) => [
          kv.exists(readyKey),
          kv.modIs(this.#keys.task(id), stored.modRevision),
        ]),
        claims.flatMap(({ readyKey, id, claimed, claimValue }) => [
          kv.delete(readyKey),
          kv.put(this.#keys.task(id), encodeRecord(claimed, id)),
          kv.put(this.#keys.claim(id), JSON.stringify(claimValue), session.leaseId),
        ]),
        claims.length === 1
          ? []
          : claims.flatMap(({ readyKey, id }) => [
              kv.read(readyKey, { keysOnly: true }),
              kv.read(this.#keys.task(id), { keysOnly: true }),
            ]),
      );
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.#context.sessions.end(session, error.message);
        return { kind: 'retry' };
      }
      if (!isRetryable(error)) throw error;
      // The transaction may have applied with its answer lost: the nonce tells which claims are ours.
      const verified = await this.#verifyClaims(
        claims.map(({ id }) => id),
        nonce,
        session,
      );
      if (verified === undefined) throw error;
      const ours = claims.flatMap((claim) => {
        const revision = verified.get(claim.id);
        return revision === undefined ? [] : [{ ...claim, revision }];
      });
      if (ours.length === 0) throw error;
      return { kind: 'claimed', claims: ours.map((claim) => claimOf(claim, claim.revision)) };
    }
    if (result.succeeded) {
      const revision = String(result.revision);
      this.#waker?.forgetReady(claims.map((claim) => claim.readyKey));
      return { kind: 'claimed', claims: claims.map((claim) => claimOf(claim, revision)) };
    }
    if (claims.length === 1) return { kind: 'conflict' };
    const valid = candidates.filter(({ stored }, i) => {
      const index = result.ranges[2 * i]?.kvs[0];
      const record = result.ranges[2 * i + 1]?.kvs[0];
      return index !== undefined && record?.modRevision === stored.modRevision;
    });
    return valid.length === 0 ? { kind: 'conflict' } : { kind: 'partial', valid };
  }

  /**
   * The create revisions of the claims among `ids` that hold our nonce; undefined when we cannot tell (then the
   * session is ended, so that whatever did apply comes back with the lease).
   */
  async #verifyClaims(
    ids: readonly string[],
    nonce: string,
    session: Session,
  ): Promise<Map<string, string> | undefined> {
    const { kv } = this.#context;
    for (let attempt = 1; attempt <= repairAttempts && session.alive; attempt++) {
      try {
        const read = await kv.txn(
          `Verifying claims on queue "${this.#name}"`,
          [],
          ids.map((id) => kv.read(this.#keys.claim(id))),
        );
        const ours = new Map<string, string>();
        ids.forEach((id, i) => {
          const claim = read.ranges[i]?.kvs[0];
          if (claim === undefined) return;
          const value = parseJson(claim.value) as Partial<ClaimValue> | undefined;
          if (value?.n === nonce) ours.set(id, claim.createRevision);
        });
        return ours;
      } catch {
        await sleep(backoffDelay(etcdRetry, attempt)).catch(() => undefined);
      }
    }
    // Unknown: if it applied, the claims stay until our lease ends; ending it now hands the tasks on.
    if (session.alive)
      this.#context.sessions.end(session, `could not verify claims on queue "${this.#name}"`);
    return undefined;
  }

  /** Gives back a task claimed for a caller that stopped waiting, in its old place and with its old attempts. */
  async #unclaim(claimed: Claimed): Promise<void> {
    const { kv } = this.#context;
    const { id, claim } = claimed.task;
    const claimKey = this.#keys.claim(id);
    for (let attempt = 1; attempt <= repairAttempts; attempt++) {
      try {
        await kv.txn(
          `Returning task ${id} on queue "${this.#name}"`,
          [kv.createIs(claimKey, claim), kv.modIs(this.#keys.task(id), claim)],
          [
            kv.delete(claimKey),
            kv.put(this.#keys.task(id), encodeRecord(claimed.before, id)),
            kv.put(claimed.readyKey, encodeRecord(claimed.before, id)),
          ],
        );
        return;
      } catch (error) {
        if (!isRetryable(error)) break;
        await sleep(backoffDelay(etcdRetry, attempt)).catch(() => undefined);
      }
    }
    this.#context.logger.warn(
      `Could not return task ${id} to queue "${this.#name}"; it comes back with the lease`,
      {
        claim,
      },
    );
  }

  /** Deletes an index key that no record points to, guarded so that a record written meanwhile wins. */
  async #dropStray(index: KeyValue, id: string | undefined, stored: StoredRecord | undefined): Promise<void> {
    const { kv } = this.#context;
    const guards = [kv.modIs(index.key, index.modRevision)];
    if (id !== undefined) {
      const taskKey = this.#keys.task(id);
      guards.push(stored === undefined ? kv.absent(taskKey) : kv.modIs(taskKey, stored.modRevision));
    }
    await kv.txn(`Dropping stray index key ${index.key}`, guards, [kv.delete(index.key)]);
  }

  /**
   * Promotes due delayed tasks when one may be due: a claim pass skips the scan while the watch (which lowers
   * `#nextDueHint` for every delayed task it sees) and the last scan agree that none is, at most for
   * `maxPromoteGapMs`, so that a hint lost to a race costs a little delay, never a stuck task.
   */
  async #promoteIfDue(now: number): Promise<void> {
    if (this.#waker === undefined || this.#waker.gapped || now >= this.#nextDueHint)
      await this.#promoteDue(now);
  }

  /** Moves delayed tasks due by `now` to `ready/`, keeping their due time as their place in line. */
  async #promoteDue(now: number): Promise<number> {
    const { kv } = this.#context;
    const dueEnd = this.#keys.delayedDueEnd(now);
    const scan = await kv.txn(
      `Scanning delayed tasks of queue "${this.#name}"`,
      [],
      [
        kv.read(this.#keys.delayed, { end: dueEnd, keysOnly: true, limit: 32, serializable: true }),
        kv.read(dueEnd, {
          end: prefixUpperBound(this.#keys.delayed),
          keysOnly: true,
          limit: 1,
          serializable: true,
        }),
      ],
    );
    const due = scan.ranges[0] ?? { kvs: [], more: false };
    const upcoming = scan.ranges[1]?.kvs[0];
    const nextDue = upcoming === undefined ? Infinity : (this.#keys.parseDelayed(upcoming.key)?.due ?? 0);
    this.#nextDueHint = Math.min(due.more ? now : nextDue, now + maxPromoteGapMs);
    if (due.kvs.length === 0) return 0;
    const entries = due.kvs.flatMap((index) => {
      const parsed = this.#keys.parseDelayed(index.key);
      return parsed === undefined ? [] : [{ index, ...parsed }];
    });
    const records = await this.#readRecords(entries.map((entry) => entry.id));
    let promoted = 0;
    for (const { index, id, due: dueAt } of entries) {
      const stored = records.get(id);
      if (stored === undefined || stored.record.s !== 'delayed' || stored.record.k !== index.key) {
        await this.#dropStray(index, id, stored);
        continue;
      }
      const { record } = stored;
      const readyKey = this.#keys.readyKey(record.r, sequenceAt(dueAt), id);
      const taskKey = this.#keys.task(id);
      const encoded = encodeRecord({ ...record, s: 'ready', k: readyKey }, id);
      const result = await kv.txn(
        `Promoting task ${id} on queue "${this.#name}"`,
        [kv.exists(index.key), kv.modIs(taskKey, stored.modRevision)],
        [kv.delete(index.key), kv.put(readyKey, encoded), kv.put(taskKey, encoded)],
      );
      if (result.succeeded) promoted += 1;
    }
    return promoted;
  }

  /** Reaps the tasks whose claims were seen deleted; returns how many went back. */
  async #reapSuspects(): Promise<number> {
    const waker = this.#waker;
    if (waker === undefined) return 0;
    if (waker.suspects.size > maxSuspects) {
      waker.suspects.clear();
      waker.needsReconcile = true;
      return 0;
    }
    const ids = [...waker.suspects].slice(0, readBatch / 2);
    for (const id of ids) waker.suspects.delete(id);
    const { kv } = this.#context;
    const read = await kv.txn(
      `Checking claims on queue "${this.#name}"`,
      [],
      ids.flatMap((id) => [kv.read(this.#keys.task(id)), kv.read(this.#keys.claim(id))]),
    );
    const orphans = new Map<string, StoredRecord>();
    ids.forEach((id, i) => {
      const stored = storedRecord(read.ranges[2 * i]?.kvs[0]);
      const claim = read.ranges[2 * i + 1]?.kvs[0];
      if (stored?.record.s === 'claimed' && claim === undefined) orphans.set(id, stored);
    });
    return this.#requeueOrphans(orphans);
  }

  /** Runs a full reconcile when one is needed or due; returns whether any task went back. */
  async #reconcileIfDue(): Promise<boolean> {
    const now = Date.now();
    const needed = this.#waker?.needsReconcile ?? true;
    if (!needed && now - this.#lastFullReconcile < this.#options.reconcileIntervalMs) return false;
    if (this.#waker !== undefined) this.#waker.needsReconcile = false;
    this.#lastFullReconcile = now;
    return (await this.#reconcile()) > 0;
  }

  /** Finds every claimed task without a claim at one revision and sends it back; returns how many. */
  async #reconcile(): Promise<number> {
    const { kv } = this.#context;
    const claimed = new Map<string, StoredRecord>();
    let revision: bigint | undefined;
    for (let from = this.#keys.tasks; ;) {
      const page = await kv.range(from, {
        end: prefixUpperBound(this.#keys.tasks),
        limit: pageSize,
        ...(revision === undefined ? {} : { revision }),
      });
      revision ??= page.revision;
      for (const kv of page.kvs) {
        const stored = storedRecord(kv);
        if (stored?.record.s === 'claimed') claimed.set(kv.key.slice(this.#keys.tasks.length), stored);
      }
      const last = page.kvs[page.kvs.length - 1];
      if (!page.more || last === undefined) break;
      from = `${last.key}\0`;
    }
    if (claimed.size === 0) return 0;
    for (let from = this.#keys.claims; ;) {
      const page = await kv.range(from, {
        end: prefixUpperBound(this.#keys.claims),
        limit: pageSize,
        keysOnly: true,
        revision,
      });
      for (const kv of page.kvs) claimed.delete(kv.key.slice(this.#keys.claims.length));
      const last = page.kvs[page.kvs.length - 1];
      if (!page.more || last === undefined) break;
      from = `${last.key}\0`;
    }
    if (claimed.size > 0) {
      this.#context.logger.info(`Reconcile found ${claimed.size} orphaned task(s) on queue "${this.#name}"`, {
        member: this.#context.memberId,
      });
    }
    return this.#requeueOrphans(claimed);
  }

  /** Sends tasks whose claimer's lease is gone back to `ready/`, or to `dlq/` when out of attempts. */
  async #requeueOrphans(orphans: ReadonlyMap<string, StoredRecord>): Promise<number> {
    const { kv } = this.#context;
    let requeued = 0;
    for (const [id, { record, modRevision }] of orphans) {
      const taskKey = this.#keys.task(id);
      const guards = [kv.modIs(taskKey, modRevision), kv.absent(this.#keys.claim(id))];
      let result;
      if (record.a >= record.m) {
        const error: ErrorInfo = {
          code: 'LEASE_LOST',
          message: `Worker ${record.w ?? 'unknown'} lost its lease`,
          retryable: true,
        };
        const dead: TaskRecord = { p: record.p, r: record.r, m: record.m, a: record.a, s: 'dead', e: error };
        result = await kv.txn(`Burying orphaned task ${id} on queue "${this.#name}"`, guards, [
          kv.put(taskKey, encodeRecord(withClaimant(dead, record), id)),
          kv.put(this.#keys.dead(id), ''),
        ]);
      } else {
        const readyKey = this.#keys.readyKey(record.r, this.#options.clock.next(Date.now()), id);
        const ready: TaskRecord = {
          p: record.p,
          r: record.r,
          m: record.m,
          a: record.a,
          s: 'ready',
          k: readyKey,
        };
        const encoded = encodeRecord(withClaimant(ready, record), id);
        result = await kv.txn(`Requeueing orphaned task ${id} on queue "${this.#name}"`, guards, [
          kv.put(taskKey, encoded),
          kv.put(readyKey, encoded),
        ]);
      }
      if (result.succeeded) requeued += 1;
    }
    return requeued;
  }

  /** Reads task records by id, in read-only transactions of at most `readBatch` reads. */
  async #readRecords(
    ids: readonly string[],
    revision?: bigint,
    serializable = false,
  ): Promise<Map<string, StoredRecord>> {
    const { kv } = this.#context;
    const records = new Map<string, StoredRecord>();
    for (let i = 0; i < ids.length; i += readBatch) {
      const batch = ids.slice(i, i + readBatch);
      const options = { ...(revision === undefined ? {} : { revision }), serializable };
      const result = await kv.txn(
        `Reading tasks of queue "${this.#name}"`,
        [],
        batch.map((id) => kv.read(this.#keys.task(id), options)),
      );
      batch.forEach((id, j) => {
        const stored = storedRecord(result.ranges[j]?.kvs[0]);
        if (stored !== undefined) records.set(id, stored);
      });
    }
    return records;
  }
}

/**
 * Wakes a member's waiting claims on a queue: a watch on `q/<queue>/` that reports new ready and delayed keys and
 * collects the ids of deleted claims (suspected orphans).
 */
class QueueWaker {
  /** Ids whose claims were deleted since the last reap. */
  readonly suspects = new Set<string>();
  /** Set when the watch may have missed deleted claims (compaction). */
  needsReconcile = false;
  readonly #watch: KeyWatch;
  readonly #keys: QueueKeys;
  readonly #listeners = new Set<() => void>();
  /** Told the due time of every delayed task the watch sees. */
  readonly #onDelayed: (due: number) => void;
  /** Every relevant change from this revision on has been seen. */
  #coveredFrom: bigint;
  /** The revision of the newest relevant change seen. */
  #latest = 0n;
  #gap = false;
  /**
   * The ready keys, kept from the watch's puts and deletes after `#readyAfter`, a revision at which a read found
   * none; undefined while not kept (before such a read, after a gap, past `maxTrackedReady` keys).
   */
  #ready: Map<string, KeyValue> | undefined;
  #readyAfter = 0n;

  constructor(
    context: CoordinatorContext,
    keys: QueueKeys,
    fromRevision: bigint,
    onDelayed: (due: number) => void,
  ) {
    this.#keys = keys;
    this.#onDelayed = onDelayed;
    this.#coveredFrom = fromRevision;
    this.#watch = new KeyWatch(context.kv, {
      key: keys.root,
      prefix: true,
      startRevision: fromRevision,
      onEvents: (events) => {
        this.#onEvents(events);
      },
      onConnected: (next) => {
        if (!this.#gap) return;
        this.#gap = false;
        this.#coveredFrom = next;
        this.#wakeAll();
      },
      onCompacted: () => {
        this.#gap = true;
        this.#ready = undefined;
        this.needsReconcile = true;
        this.#wakeAll();
        return Promise.resolve(undefined);
      },
      logger: context.logger,
    });
  }

  /**
   * Resolves once a change after `revision` that may make a task claimable was seen, or at `dueAt` (ms since the
   * epoch: a delayed task's due time or the next reconcile); rejects with `WaitAborted` when `signal` aborts.
   * Resolves at once when it cannot vouch for changes after `revision`.
   */
  async wait(revision: bigint, dueAt: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new WaitAborted();
    if (this.#gap) {
      await sleep(100, signal);
      return;
    }
    if (revision + 1n < this.#coveredFrom || this.#latest > revision) return;
    await new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
        signal.removeEventListener('abort', onAbort);
      };
      const listener = (): void => {
        if (this.#latest <= revision && !this.#gap) return;
        finish();
        resolve();
      };
      const onAbort = (): void => {
        finish();
        reject(new WaitAborted());
      };
      const timer = setTimeout(
        () => {
          finish();
          resolve();
        },
        Math.min(2 ** 31 - 1, Math.max(0, dueAt - Date.now())),
      );
      timer.unref();
      this.#listeners.add(listener);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.#watch.close();
  }

  /** A read found no ready key at `revision`: from then on the watch keeps the ready keys, unless it has a gap. */
  trackReadyFrom(revision: bigint): void {
    if (this.#ready !== undefined || this.#gap || revision + 1n < this.#coveredFrom) return;
    this.#ready = new Map();
    this.#readyAfter = revision;
  }

  /**
   * The first `limit` ready keys in dispatch order as the watch has seen them, with the revision they are known at
   * (a hint like a serializable read: claims check them); undefined when they are not kept.
   */
  readyKeys(limit: number): RangeResult | undefined {
    if (this.#ready === undefined || this.#gap) return undefined;
    const keys = [...this.#ready.keys()].sort();
    const kvs = keys.slice(0, limit).flatMap((key) => {
      const entry = this.#ready?.get(key);
      return entry === undefined ? [] : [entry];
    });
    const revision = this.#latest > this.#readyAfter ? this.#latest : this.#readyAfter;
    return { revision, kvs, more: keys.length > limit, count: keys.length };
  }

  /** Forgets ready keys this member just claimed, before the watch reports their deletion. */
  forgetReady(keys: readonly string[]): void {
    for (const key of keys) this.#ready?.delete(key);
  }

  /** True while the watch may have missed changes (its history was compacted and it has not caught up). */
  get gapped(): boolean {
    return this.#gap;
  }

  #onEvents(events: readonly WatchEvent[]): void {
    let relevant = false;
    // An ack, fail or burial deletes the claim and writes the task in one revision; a lease that expires deletes
    // the claim alone. Only the latter makes an orphan, so only it is worth checking.
    const settled = new Set<string>();
    for (const event of events) {
      const { key } = event.kv;
      if (key.startsWith(this.#keys.tasks))
        settled.add(`${event.revision}/${key.slice(this.#keys.tasks.length)}`);
    }
    for (const event of events) {
      const { key } = event.kv;
      if (
        this.#ready !== undefined &&
        event.revision > this.#readyAfter &&
        key.startsWith(this.#keys.ready)
      ) {
        if (event.type === 'put') this.#ready.set(key, event.kv);
        else this.#ready.delete(key);
        // A backlog this big is read a window at a time instead of kept in memory.
        if (this.#ready.size > maxTrackedReady) this.#ready = undefined;
      }
      if (event.type === 'put' && (key.startsWith(this.#keys.ready) || key.startsWith(this.#keys.delayed))) {
        const delayed = this.#keys.parseDelayed(key);
        if (delayed !== undefined) this.#onDelayed(delayed.due);
        relevant = true;
      } else if (event.type === 'delete' && key.startsWith(this.#keys.claims)) {
        const id = key.slice(this.#keys.claims.length);
        if (settled.has(`${event.revision}/${id}`)) continue;
        this.suspects.add(id);
        relevant = true;
      } else {
        continue;
      }
      if (event.revision > this.#latest) this.#latest = event.revision;
    }
    if (relevant) this.#wakeAll();
  }

  #wakeAll(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** The first key after every key starting with `prefix` (which ends in `/`). */
function prefixUpperBound(prefix: string): string {
  return `${prefix.slice(0, -1)}0`;
}

function compareRevisions(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** True for a claim id that can be an etcd revision. */
function isRevision(claim: string): boolean {
  return /^[1-9]\d{0,18}$/.test(claim) && BigInt(claim) < 2n ** 63n;
}

function parseJson(value: Buffer): unknown {
  try {
    return JSON.parse(value.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function storedRecord(kv: KeyValue | undefined): StoredRecord | undefined {
  if (kv === undefined) return undefined;
  const record = parseJson(kv.value);
  if (typeof record !== 'object' || record === null) return undefined;
  const { s, a, m } = record as Partial<TaskRecord>;
  if (typeof s !== 'string' || typeof a !== 'number' || typeof m !== 'number') return undefined;
  return { record: record as TaskRecord, modRevision: kv.modRevision };
}

/** Keeps the last claimant on a record that moves on, for the error of a task that dies orphaned. */
function withClaimant(next: TaskRecord, previous: TaskRecord): TaskRecord {
  return previous.w === undefined ? next : { ...next, w: previous.w };
}

function encodeRecord(record: TaskRecord, id: string): string {
  const encoded = JSON.stringify(record);
  if (Buffer.byteLength(encoded) > maxRecordBytes) {
    throw new PayloadTooLargeError(
      `Task ${id}: the task record is larger than ${maxRecordBytes} bytes; keep big data in the store`,
    );
  }
  return encoded;
}

/** Throws `InputError` unless `task` is well-formed. */
function validateTask(task: QueueTask): void {
  if (typeof task.id !== 'string' || task.id === '')
    throw new InputError('Task id must be a non-empty string');
  if (task.priority !== undefined && !Number.isFinite(task.priority)) {
    throw new InputError(`Task ${task.id}: priority must be a finite number`);
  }
  if (task.notBefore !== undefined && !Number.isFinite(task.notBefore)) {
    throw new InputError(`Task ${task.id}: notBefore must be a finite number`);
  }
  if (task.maxAttempts !== undefined && (!Number.isInteger(task.maxAttempts) || task.maxAttempts < 1)) {
    throw new InputError(`Task ${task.id}: maxAttempts must be a positive integer`);
  }
}
