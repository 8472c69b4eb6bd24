/** The etcd coordinator: cluster mode's elections, locks, queues and notifications (DESIGN.md §5). */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { InputError, LeaseLostError } from '@consortium/core';
import type { BackoffPolicy, Coordinator, Held, JsonValue, Logger, Queue } from '@consortium/core';
import { assertOpen, closedError, waitError } from './context.js';
import type { CoordinatorContext } from './context.js';
import { contend } from './contention.js';
import { WaitAborted } from './etcd-errors.js';
import { EtcdKv } from './etcd-kv.js';
import { EtcdQueue } from './etcd-queue.js';
import { electionRoot, lockRoot, SequenceClock } from './keys.js';
import { LocalTurns } from './local-turns.js';
import { Notifications } from './notifications.js';
import { SessionKeeper } from './session.js';

/** Options of an `EtcdCoordinator`. */
export interface EtcdCoordinatorOptions {
  /** etcd client URLs, e.g. `http://10.0.0.1:2379`. */
  readonly endpoints: string | readonly string[];
  /** The cluster's name, used in the default prefix; default `default`. */
  readonly cluster?: string;
  /** Key prefix of everything this coordinator writes; default `/consortium/<cluster>/`. */
  readonly prefix?: string;
  /** Unique per process; default `<hostname>-<pid>-<random>`. */
  readonly memberId?: string;
  /** TTL of the session lease; a member that stops keeping it alive loses its holds within it. Default 10. */
  readonly leaseTtlSeconds?: number;
  /** Backoff of tasks this member fails; default 1 s doubling to 5 minutes. */
  readonly retryBackoff?: BackoffPolicy;
  /** Receives what goes wrong in the background; default warnings and errors to the console. */
  readonly logger?: Logger;
  /** Deadline of each etcd request; default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /** How often waiting claims reconcile a queue's claims in full; default 30 s. */
  readonly reconcileIntervalMs?: number;
  /** TTL of the lease notification keys are put on; default 10. */
  readonly notifyTtlSeconds?: number;
}

/** The backoff used when none is given: 1 s, doubling, at most 5 minutes. */
export const defaultEtcdRetryBackoff: BackoffPolicy = { initialMs: 1000, factor: 2, maxMs: 300_000 };

const consoleLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message, meta) => {
    console.warn(message, meta ?? '');
  },
  error: (message, meta) => {
    console.error(message, meta ?? '');
  },
};

/**
 * A coordinator over etcd, with one session lease per process kept alive on a stream. Elections and locks wait in
 * line by create revision under `master/elect/<election>/` and `locks/<key>/`; queues live under `q/<queue>/`;
 * notifications under `notify/`. The constructor throws `InputError` for bad options; calls after `close()` throw
 * `CancelledError`; etcd failures surface as `BackendUnavailableError` (retryable) or `BackendError`.
 */
export class EtcdCoordinator implements Coordinator {
  /** This member's id. */
  readonly memberId: string;
  /** The key prefix, ending in `/`. */
  readonly prefix: string;
  readonly #kv: EtcdKv;
  readonly #closed = new AbortController();
  readonly #context: CoordinatorContext;
  readonly #sessions: SessionKeeper;
  readonly #notifications: Notifications;
  readonly #queues = new Map<string, EtcdQueue>();
  readonly #backoff: BackoffPolicy;
  readonly #reconcileIntervalMs: number;
  readonly #requestTimeoutMs: number;
  readonly #clock = new SequenceClock();
  #closing: Promise<void> | undefined;

  constructor(options: EtcdCoordinatorOptions) {
    const endpoints = typeof options.endpoints === 'string' ? [options.endpoints] : [...options.endpoints];
    if (endpoints.length === 0) throw new InputError('EtcdCoordinator needs at least one endpoint');
    // Every held lock, claim and wait listens for the close until it ends (one per job a master drives): many
    // listeners are normal here, not a leak.
    setMaxListeners(0, this.#closed.signal);
    const ttl = options.leaseTtlSeconds ?? 10;
    if (!Number.isInteger(ttl) || ttl < 2)
      throw new InputError(`leaseTtlSeconds must be an integer >= 2, got ${ttl}`);
    const notifyTtl = options.notifyTtlSeconds ?? 10;
    if (!Number.isInteger(notifyTtl) || notifyTtl < 2) {
      throw new InputError(`notifyTtlSeconds must be an integer >= 2, got ${notifyTtl}`);
    }
    this.#requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs ?? 5000);
    this.#reconcileIntervalMs = positive('reconcileIntervalMs', options.reconcileIntervalMs ?? 30_000);
    this.#backoff = validateBackoff(options.retryBackoff ?? defaultEtcdRetryBackoff);
    const cluster = options.cluster ?? 'default';
    const prefix = options.prefix ?? `/consortium/${cluster}/`;
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.memberId = options.memberId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    if (this.memberId === '') throw new InputError('memberId must not be empty');
    const logger = options.logger ?? consoleLogger;
    this.#kv = new EtcdKv({ endpoints, prefix: this.prefix, requestTimeoutMs: this.#requestTimeoutMs });
    this.#sessions = new SessionKeeper(this.#kv, {
      memberId: this.memberId,
      ttlSeconds: ttl,
      logger,
      closed: this.#closed.signal,
    });
    this.#context = {
      kv: this.#kv,
      sessions: this.#sessions,
      turns: new LocalTurns(),
      memberId: this.memberId,
      logger,
      closed: this.#closed.signal,
    };
    this.#notifications = new Notifications(this.#context, notifyTtl);
  }

  /** The current session lease id (decimal), for diagnostics and tests; undefined while there is none. */
  get leaseId(): string | undefined {
    return this.#sessions.current?.leaseId;
  }

  /**
   * How long ago the newest acknowledged keepalive (or the grant) of the session lease was sent, in ms; undefined
   * while there is no session. The lease is given up when this passes half its TTL: watch it as a metric.
   */
  get keepaliveLagMs(): number | undefined {
    const session = this.#sessions.current;
    return session === undefined ? undefined : Math.round(performance.now() - session.lastAckedSendAt);
  }

  /** Waits until this member leads `election`; rejects with `CancelledError` when `signal` aborts or on close. */
  async campaign(election: string, signal: AbortSignal): Promise<Held> {
    const cancelled = `Campaign for election "${election}" cancelled`;
    return this.#contend(election, signal, cancelled, {
      root: electionRoot(election),
      describe: `election "${election}"`,
      releasedMessage: `Leadership of election "${election}" released`,
    });
  }

  /** Waits until this member holds lock `key`; rejects with `CancelledError` when `signal` aborts or on close. */
  async lock(key: string, signal: AbortSignal): Promise<Held> {
    const cancelled = `Waiting for lock "${key}" cancelled`;
    return this.#contend(key, signal, cancelled, {
      root: lockRoot(key),
      describe: `lock "${key}"`,
      releasedMessage: `Lock "${key}" released`,
    });
  }

  /** The queue `name`, shared by every member with the same prefix. */
  queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new EtcdQueue(this.#context, name, {
        backoff: this.#backoff,
        reconcileIntervalMs: this.#reconcileIntervalMs,
        clock: this.#clock,
      });
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Publishes `message` on `topic` to every subscriber connected; throws `CancelledError` once closed. */
  notify(topic: string, message: JsonValue): Promise<void> {
    return this.#notifications.notify(topic, message);
  }

  /** Subscribes to topics under `prefix`; throws `CancelledError` once closed. */
  subscribe(prefix: string, listener: (topic: string, message: JsonValue) => void): () => void {
    return this.#notifications.subscribe(prefix, listener);
  }

  /**
   * Ends this member: pending waits reject with `CancelledError`, held leadership and locks abort `lost` with
   * `LeaseLostError`, and the session lease is revoked so that others take over at once. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed.abort(closedError(this.#context));
      this.#notifications.close();
      for (const queue of this.#queues.values()) queue.close();
      await this.#sessions.close(
        new LeaseLostError(`Session of member ${this.memberId} closed`),
        Math.min(this.#requestTimeoutMs, 2000),
      );
      this.#kv.close();
    })();
    return this.#closing;
  }

  async #contend(
    name: string,
    signal: AbortSignal,
    cancelled: string,
    spec: Parameters<typeof contend>[1],
  ): Promise<Held> {
    if (signal.aborted) throw waitError(this.#context, new WaitAborted(), signal, cancelled);
    assertOpen(this.#context);
    if (typeof name !== 'string' || name === '')
      throw new InputError('Election and lock names must be non-empty');
    try {
      return await contend(this.#context, spec, signal);
    } catch (error) {
      throw waitError(this.#context, error, signal, cancelled);
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new InputError(`${name} must be a positive number, got ${value}`);
  return value;
}

function validateBackoff(backoff: BackoffPolicy): BackoffPolicy {
  const { initialMs, factor, maxMs } = backoff;
  if (!Number.isFinite(initialMs) || initialMs < 0) {
    throw new InputError(`retryBackoff.initialMs must be a finite number >= 0, got ${initialMs}`);
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new InputError(`retryBackoff.factor must be a finite number >= 1, got ${factor}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new InputError(`retryBackoff.maxMs must be a finite number >= initialMs, got ${maxMs}`);
  }
  return backoff;
}
