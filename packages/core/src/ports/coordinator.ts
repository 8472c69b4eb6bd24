/**
 * The coordinator port: leader election, node locks, task queues and notifications between processes. Adapters:
 * in-process memory (one process, `consortium dev`) and etcd (cluster mode). See DESIGN.md §5 for the algorithms.
 */
import { InputError } from '../errors.js';
import type { ErrorInfo } from '../errors.js';
import type { JsonValue } from '../model.js';

/** Something held under a lease: leadership or a lock. `lost` aborts when it can no longer be trusted. */
export interface Held {
  /** Fencing token: grows with every new holder; writes guarded by it are rejected from a stale holder. */
  readonly token: string;
  /** Aborts when the lease is lost (missed keepalives, deletion, disconnect). */
  readonly lost: AbortSignal;
  /** Gives it up; safe to call more than once. */
  release(): Promise<void>;
}

/** Most tasks one `claimMany` takes: its claims fit in one etcd transaction (128 operations, 3 per task). */
export const MAX_CLAIM_BATCH = 32;

/** Throws `InputError` unless `max` is a batch size `claimMany` takes (an integer from 1 to `MAX_CLAIM_BATCH`). */
export function validateClaimBatch(max: number): void {
  if (!Number.isInteger(max) || max < 1 || max > MAX_CLAIM_BATCH) {
    throw new InputError(`claimMany takes 1 to ${MAX_CLAIM_BATCH} tasks, got ${max}`);
  }
}

/** A task as it sits in a queue. */
export interface QueueTask {
  /** Unique in the queue: enqueueing an id that is already queued, claimed or dead does nothing. */
  readonly id: string;
  readonly payload: JsonValue;
  /** Lower runs first; default 100. */
  readonly priority?: number;
  /** Not claimable before this time (ms since epoch). */
  readonly notBefore?: number;
  /** Claims before the task goes to the dead-letter list; default 5. */
  readonly maxAttempts?: number;
}

/** A claimed task: held by one worker until acked or failed, or until the worker's lease is lost. */
export interface ClaimedTask {
  readonly id: string;
  readonly payload: JsonValue;
  /** 1 on the first claim. */
  readonly attempt: number;
  /** Identifies this claim; acks and fails with an older claim are discarded. */
  readonly claim: string;
}

/** Counts of a queue, for metrics. */
export interface QueueStats {
  readonly ready: number;
  readonly delayed: number;
  readonly claimed: number;
  readonly dead: number;
}

/** A dead task with its last error. */
export interface DeadTask {
  readonly id: string;
  readonly payload: JsonValue;
  readonly attempts: number;
  readonly error?: ErrorInfo;
}

/** One named at-least-once queue. */
export interface Queue {
  /** Adds a task; returns false when a task with that id is already known. */
  enqueue(task: QueueTask): Promise<boolean>;
  /** Waits for a claimable task and claims it for `worker`; rejects with `CancelledError` when `signal` aborts. */
  claim(worker: string, signal: AbortSignal): Promise<ClaimedTask>;
  /**
   * Waits for a claimable task, then claims it and up to `max − 1` more that are claimable at once, in dispatch
   * order, each exactly as `claim` would (its own claim id, acked or failed on its own). Never returns an empty list;
   * throws `InputError` unless `max` is an integer from 1 to `MAX_CLAIM_BATCH`, `CancelledError` when `signal` aborts.
   */
  claimMany(worker: string, max: number, signal: AbortSignal): Promise<readonly ClaimedTask[]>;
  /** Completes a claimed task; false when the claim was no longer valid (the late ack is discarded). */
  ack(task: ClaimedTask): Promise<boolean>;
  /**
   * Gives a claimed task back after a failure: delayed with exponential backoff while attempts remain, else dead.
   * Returns what happened; `lost` when the claim was no longer valid.
   */
  fail(task: ClaimedTask, error: ErrorInfo): Promise<'retry' | 'dead' | 'lost'>;
  stats(): Promise<QueueStats>;
  deadLetters(): Promise<readonly DeadTask[]>;
}

/** How processes find each other and agree. */
export interface Coordinator {
  /** This member's id (unique per process). */
  readonly memberId: string;
  /** Waits until this member leads `election` (or `signal` aborts, with `CancelledError`). */
  campaign(election: string, signal: AbortSignal): Promise<Held>;
  /** Waits until this member holds the lock `key` (or `signal` aborts, with `CancelledError`). */
  lock(key: string, signal: AbortSignal): Promise<Held>;
  queue(name: string): Queue;
  /** Publishes a notification on a topic; subscribers get it at least once while connected. */
  notify(topic: string, message: JsonValue): Promise<void>;
  /** Subscribes to topics under a prefix; returns the unsubscribe function. */
  subscribe(prefix: string, listener: (topic: string, message: JsonValue) => void): () => void;
  close(): Promise<void>;
}
