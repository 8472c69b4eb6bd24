/** The in-process coordinator: a member of a `MemoryCluster`. */
import { randomUUID } from 'node:crypto';
import { DEFAULT_TASK_RETRY_BACKOFF, validateBackoff, validateClaimBatch } from '@consortium/core';
import type {
  BackoffPolicy,
  ClaimedTask,
  Coordinator,
  DeadTask,
  ErrorInfo,
  Held,
  JsonValue,
  Logger,
  Queue,
  QueueStats,
  QueueTask,
} from '@consortium/core';
import type { ClusterState, MemberSession } from './cluster-state.js';
import { clusterState } from './memory-cluster.js';
import type { MemoryCluster } from './memory-cluster.js';

/** Options of a `MemoryCoordinator`. */
export interface MemoryCoordinatorOptions {
  /** Unique among the open members of the cluster; default a random id. */
  readonly memberId?: string;
  /** Backoff of tasks this member fails; default `DEFAULT_TASK_RETRY_BACKOFF`. */
  readonly retryBackoff?: BackoffPolicy;
  /** Receives errors thrown by notification listeners; default writes them to the console. */
  readonly logger?: Pick<Logger, 'error'>;
}

const consoleLogger: Pick<Logger, 'error'> = {
  error: (message, meta) => {
    console.error(message, meta);
  },
};

/**
 * A member of a `MemoryCluster`, with the semantics of the etcd coordinator (DESIGN.md §5): a session that
 * `close()` (or `MemoryCluster.kill`) ends, releasing its leadership and locks and returning its claimed tasks.
 * The constructor throws `ConflictError` when an open member already has the id and `InputError` for a bad backoff.
 */
export class MemoryCoordinator implements Coordinator {
  /** This member's id. */
  readonly memberId: string;
  readonly #state: ClusterState;
  readonly #session: MemberSession;
  readonly #backoff: BackoffPolicy;
  readonly #queues = new Map<string, Queue>();

  constructor(cluster: MemoryCluster, options: MemoryCoordinatorOptions = {}) {
    this.#backoff = validateBackoff(options.retryBackoff ?? DEFAULT_TASK_RETRY_BACKOFF, 'retryBackoff');
    this.memberId = options.memberId ?? `memory-${randomUUID()}`;
    this.#state = clusterState(cluster);
    this.#session = this.#state.join(this.memberId, options.logger ?? consoleLogger);
  }

  /** Waits until this member leads `election`; rejects with `CancelledError` when `signal` aborts or on close. */
  campaign(election: string, signal: AbortSignal): Promise<Held> {
    return this.#call(() => this.#state.acquire('election', election, this.#session, signal));
  }

  /** Waits until this member holds lock `key`; rejects with `CancelledError` when `signal` aborts or on close. */
  lock(key: string, signal: AbortSignal): Promise<Held> {
    return this.#call(() => this.#state.acquire('lock', key, this.#session, signal));
  }

  /** The queue `name`, shared by all members of the cluster. */
  queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = this.#makeQueue(name);
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Delivers a copy of `message` to every subscription in the cluster whose prefix matches `topic`. */
  notify(topic: string, message: JsonValue): Promise<void> {
    return this.#call(() => {
      this.#state.notify(this.#session, topic, message);
      return Promise.resolve();
    });
  }

  /** Subscribes to topics under `prefix`; throws `CancelledError` once closed (`LeaseLostError` once killed). */
  subscribe(prefix: string, listener: (topic: string, message: JsonValue) => void): () => void {
    return this.#state.subscribe(this.#session, prefix, listener);
  }

  /** Ends this member's session; pending waits reject with `CancelledError`. Safe to call more than once. */
  close(): Promise<void> {
    this.#state.endSession(this.#session, 'closed');
    return Promise.resolve();
  }

  #makeQueue(name: string): Queue {
    const state = this.#state;
    const session = this.#session;
    const backoff = this.#backoff;
    const call = <T>(fn: () => T): Promise<T> => this.#call(() => Promise.resolve(fn()));
    return {
      enqueue: (task: QueueTask): Promise<boolean> => call(() => state.enqueue(name, session, task)),
      claim: (worker: string, signal: AbortSignal): Promise<ClaimedTask> =>
        this.#call(() => state.claim(name, session, worker, signal)),
      claimMany: (worker: string, max: number, signal: AbortSignal): Promise<readonly ClaimedTask[]> =>
        this.#call(async () => {
          validateClaimBatch(max);
          const first = await state.claim(name, session, worker, signal);
          return [first, ...state.claimReady(name, session, worker, max - 1)];
        }),
      ack: (task: ClaimedTask): Promise<boolean> => call(() => state.ack(name, session, task)),
      fail: (task: ClaimedTask, error: ErrorInfo): Promise<'retry' | 'dead' | 'lost'> =>
        call(() => state.fail(name, session, task, error, backoff)),
      stats: (): Promise<QueueStats> => call(() => state.stats(name, session)),
      deadLetters: (): Promise<readonly DeadTask[]> => call(() => state.deadLetters(name, session)),
    };
  }

  /** Turns synchronous throws into rejections, as a remote adapter's calls would fail. */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
}
