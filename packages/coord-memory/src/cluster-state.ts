/**
 * The shared state of one in-memory cluster and the algorithms over it, mirroring the etcd layout of DESIGN.md §5:
 * every member has a session (its "lease"); candidacies, lock waiters and task claims are attached to it and vanish
 * when it ends. Fencing tokens and claim ids are revisions of one cluster-wide counter, like etcd's create_revision.
 * Internal to this package: `MemoryCluster` and `MemoryCoordinator` are the public face.
 */
import {
  backoffDelay,
  CancelledError,
  ConflictError,
  InputError,
  LeaseLostError,
  NotFoundError,
  toErrorInfo,
} from '@consortium/core';
import type {
  BackoffPolicy,
  ClaimedTask,
  DeadTask,
  ErrorInfo,
  Held,
  JsonValue,
  Logger,
  QueueStats,
  QueueTask,
} from '@consortium/core';
import { Heap } from './heap.js';

/** Default priority of a task; lower runs first. */
const defaultPriority = 100;
/** Default number of claims before a task is dead. */
const defaultMaxAttempts = 5;
/** setTimeout fires at once for delays above 2^31 − 1 ms, so longer waits are taken in steps. */
const maxTimerDelayMs = 2 ** 31 - 1;

/** Why a session ended: closed by its member, or expired (killed) as if its lease had run out. */
type SessionEnd = 'closed' | 'expired';

/** A member's session: everything attached to its lease. */
export class MemberSession {
  /** Undefined while the session is open. */
  ended: SessionEnd | undefined;
  readonly contenders = new Set<Contender>();
  readonly claimWaiters = new Set<ClaimWaiter>();
  readonly claims = new Set<TaskRecord>();
  readonly subscriptions = new Set<Subscription>();

  constructor(
    readonly id: string,
    readonly logger: Pick<Logger, 'error'>,
  ) {}

  /** The error for waits cut short and calls made after the session ended. */
  endedError(): Error {
    return this.ended === 'expired'
      ? new LeaseLostError(`Session of member ${this.id} expired`)
      : new CancelledError(`Coordinator ${this.id} closed`);
  }

  /** Throws `endedError()` when the session has ended. */
  assertOpen(): void {
    if (this.ended !== undefined) throw this.endedError();
  }
}

/** A candidacy in an election or a waiter on a lock; the one with the lowest revision holds. */
interface Contender {
  readonly contention: Contention;
  readonly revision: number;
  readonly member: MemberSession;
  readonly lost: AbortController;
  granted: boolean;
  /** Resolves the waiting call; set until granted or rejected. */
  settle: ((outcome: { held: Held } | { error: Error }) => void) | undefined;
}

/** One election or one lock: its contenders in revision order. */
interface Contention {
  readonly kind: 'election' | 'lock';
  readonly name: string;
  readonly registry: Map<string, Contention>;
  readonly contenders: Contender[];
}

/** A claim waiting for a task. */
interface ClaimWaiter {
  readonly queue: QueueState;
  readonly member: MemberSession;
  readonly worker: string;
  readonly settle: (outcome: { task: ClaimedTask } | { error: Error }) => void;
}

/** Where a task is. */
type TaskState = 'ready' | 'delayed' | 'claimed' | 'dead';

/** A task record, as `q/<queue>/tasks/<id>` holds it. */
interface TaskRecord {
  readonly id: string;
  readonly payload: JsonValue;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly queue: QueueState;
  attempts: number;
  state: TaskState;
  /** When it became (or becomes) claimable; orders ready tasks of equal priority and is the delayed due time. */
  readyAt: number;
  /** Tie-breaker, increasing with every move into ready or delayed. */
  seq: number;
  claim: { readonly id: string; readonly worker: string; readonly member: MemberSession } | undefined;
  error: ErrorInfo | undefined;
}

/** A subscription to a topic prefix. */
interface Subscription {
  readonly member: MemberSession;
  readonly prefix: string;
  readonly listener: (topic: string, message: JsonValue) => void;
  active: boolean;
}

/** One named queue. */
class QueueState {
  readonly tasks = new Map<string, TaskRecord>();
  readonly ready = new Heap<TaskRecord>(
    (a, b) => a.priority - b.priority || a.readyAt - b.readyAt || a.seq - b.seq,
  );
  readonly delayed = new Heap<TaskRecord>((a, b) => a.readyAt - b.readyAt || a.seq - b.seq);
  readonly dead = new Map<string, TaskRecord>();
  readonly waiters: ClaimWaiter[] = [];
  claimed = 0;
  timer: NodeJS.Timeout | undefined;
  timerDue = 0;

  constructor(readonly name: string) {}
}

/** The shared state of one cluster. */
export class ClusterState {
  #revision: number;
  #seq = 0;
  readonly #members = new Map<string, MemberSession>();
  readonly #elections = new Map<string, Contention>();
  readonly #locks = new Map<string, Contention>();
  readonly #queues = new Map<string, QueueState>();
  readonly #subscriptions = new Set<Subscription>();

  constructor(firstRevision = 0) {
    this.#revision = firstRevision;
  }

  /** Ids of the members whose sessions are open. */
  memberIds(): string[] {
    return [...this.#members.values()].filter((m) => m.ended === undefined).map((m) => m.id);
  }

  /** Opens a session; throws `ConflictError` when an open member already has the id. */
  join(memberId: string, logger: Pick<Logger, 'error'>): MemberSession {
    if (memberId === '') throw new InputError('memberId must not be empty');
    const existing = this.#members.get(memberId);
    if (existing !== undefined && existing.ended === undefined) {
      throw new ConflictError(`Member ${memberId} has already joined this cluster`);
    }
    const member = new MemberSession(memberId, logger);
    this.#members.set(memberId, member);
    return member;
  }

  /** Ends a member's session as if its lease expired; throws `NotFoundError` when no open member has the id. */
  kill(memberId: string): void {
    const member = this.#members.get(memberId);
    if (member === undefined || member.ended !== undefined) {
      throw new NotFoundError(`No open member ${memberId} in this cluster`);
    }
    this.endSession(member, 'expired');
  }

  /**
   * Ends a session like etcd revoking a lease: pending waits are rejected, held leadership and locks are lost (their
   * successors take over), claimed tasks go back to ready (or dead when out of attempts) and subscriptions stop.
   */
  endSession(member: MemberSession, how: SessionEnd): void {
    if (member.ended !== undefined) return;
    member.ended = how;
    const waitError = member.endedError();
    const lostReason = new LeaseLostError(`Session of member ${member.id} ${how}`);

    // Detach everything before aborting `lost`: abort listeners run synchronously and may call back in.
    const contenders = [...member.contenders];
    member.contenders.clear();
    for (const contender of contenders) this.#removeContender(contender);
    for (const contender of contenders) {
      if (contender.granted) contender.lost.abort(lostReason);
      else contender.settle?.({ error: waitError });
    }
    for (const contender of contenders) this.#grantHead(contender.contention);

    const queues = new Set<QueueState>();
    for (const waiter of member.claimWaiters) {
      queues.add(waiter.queue);
      this.#removeWaiter(waiter);
      waiter.settle({ error: waitError });
    }
    member.claimWaiters.clear();

    const now = Date.now();
    for (const record of [...member.claims]) {
      queues.add(record.queue);
      const worker = record.claim?.worker ?? '';
      this.#releaseClaim(record);
      if (record.attempts >= record.maxAttempts) {
        const error = new LeaseLostError(`Worker ${worker} of member ${member.id} lost its lease`);
        this.#bury(record, toErrorInfo(error));
      } else {
        this.#makeReady(record, now);
      }
    }
    for (const queue of queues) this.#dispatch(queue);

    for (const subscription of member.subscriptions) {
      subscription.active = false;
      this.#subscriptions.delete(subscription);
    }
    member.subscriptions.clear();
  }

  // ---- elections and locks ----

  /** Waits to hold `name` (lowest revision wins); rejects with `CancelledError` when `signal` aborts. */
  acquire(
    kind: 'election' | 'lock',
    name: string,
    member: MemberSession,
    signal: AbortSignal,
  ): Promise<Held> {
    member.assertOpen();
    const cancelled = (): CancelledError =>
      new CancelledError(
        kind === 'election'
          ? `Campaign for election "${name}" cancelled`
          : `Waiting for lock "${name}" cancelled`,
        { cause: signal.reason },
      );
    if (signal.aborted) return Promise.reject(cancelled());

    const registry = kind === 'election' ? this.#elections : this.#locks;
    let contention = registry.get(name);
    if (contention === undefined) {
      contention = { kind, name, registry, contenders: [] };
      registry.set(name, contention);
    }
    const own = contention;
    return new Promise<Held>((resolve, reject) => {
      const onAbort = (): void => {
        if (contender.granted) return;
        this.#removeContender(contender);
        member.contenders.delete(contender);
        contender.settle = undefined;
        reject(cancelled());
      };
      const contender: Contender = {
        contention: own,
        revision: this.#nextRevision(),
        member,
        lost: new AbortController(),
        granted: false,
        settle: (outcome) => {
          signal.removeEventListener('abort', onAbort);
          contender.settle = undefined;
          if ('held' in outcome) resolve(outcome.held);
          else reject(outcome.error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      own.contenders.push(contender);
      member.contenders.add(contender);
      this.#grantHead(own);
    });
  }

  #grantHead(contention: Contention): void {
    const head = contention.contenders[0];
    if (head === undefined) {
      if (contention.registry.get(contention.name) === contention)
        contention.registry.delete(contention.name);
      return;
    }
    if (head.granted) return;
    head.granted = true;
    const release = (): Promise<void> => {
      if (head.member.contenders.delete(head)) {
        this.#removeContender(head);
        head.lost.abort(
          new CancelledError(
            contention.kind === 'election'
              ? `Leadership of election "${contention.name}" released`
              : `Lock "${contention.name}" released`,
          ),
        );
        this.#grantHead(contention);
      }
      return Promise.resolve();
    };
    head.settle?.({ held: { token: String(head.revision), lost: head.lost.signal, release } });
  }

  #removeContender(contender: Contender): void {
    const { contenders } = contender.contention;
    const index = contenders.indexOf(contender);
    if (index >= 0) contenders.splice(index, 1);
    if (contenders.length === 0) this.#grantHead(contender.contention);
  }

  // ---- queues ----

  #queue(name: string): QueueState {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new QueueState(name);
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Adds a task unless its id is known; throws `InputError` for an invalid task. */
  enqueue(queueName: string, member: MemberSession, task: QueueTask): boolean {
    member.assertOpen();
    validateTask(task);
    const queue = this.#queue(queueName);
    if (queue.tasks.has(task.id)) return false;
    const now = Date.now();
    const record: TaskRecord = {
      id: task.id,
      payload: structuredClone(task.payload),
      priority: task.priority ?? defaultPriority,
      maxAttempts: task.maxAttempts ?? defaultMaxAttempts,
      queue,
      attempts: 0,
      state: 'ready',
      readyAt: now,
      seq: 0,
      claim: undefined,
      error: undefined,
    };
    queue.tasks.set(record.id, record);
    if (task.notBefore !== undefined && task.notBefore > now) this.#delay(record, task.notBefore);
    else this.#makeReady(record, now);
    this.#dispatch(queue);
    return true;
  }

  /** Claims the next claimable task, waiting for one; rejects with `CancelledError` when `signal` aborts. */
  claim(queueName: string, member: MemberSession, worker: string, signal: AbortSignal): Promise<ClaimedTask> {
    member.assertOpen();
    const cancelled = (): CancelledError =>
      new CancelledError(`Claim on queue "${queueName}" cancelled`, { cause: signal.reason });
    if (signal.aborted) return Promise.reject(cancelled());
    const queue = this.#queue(queueName);
    this.#dispatch(queue);
    const record = queue.ready.pop();
    if (record !== undefined) return Promise.resolve(this.#grantClaim(record, member, worker));

    return new Promise<ClaimedTask>((resolve, reject) => {
      const onAbort = (): void => {
        this.#removeWaiter(waiter);
        member.claimWaiters.delete(waiter);
        this.#armTimer(queue);
        reject(cancelled());
      };
      const waiter: ClaimWaiter = {
        queue,
        member,
        worker,
        settle: (outcome) => {
          signal.removeEventListener('abort', onAbort);
          if ('task' in outcome) resolve(outcome.task);
          else reject(outcome.error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queue.waiters.push(waiter);
      member.claimWaiters.add(waiter);
      this.#armTimer(queue);
    });
  }

  /** Claims up to `max` tasks that are claimable now, in dispatch order, without waiting; possibly none. */
  claimReady(queueName: string, member: MemberSession, worker: string, max: number): ClaimedTask[] {
    member.assertOpen();
    const queue = this.#queue(queueName);
    this.#dispatch(queue);
    const claimed: ClaimedTask[] = [];
    for (let record = queue.ready.pop(); record !== undefined; record = queue.ready.pop()) {
      claimed.push(this.#grantClaim(record, member, worker));
      if (claimed.length >= max) break;
    }
    return claimed;
  }

  /** Completes a claimed task; false when `task.claim` is no longer the task's claim. */
  ack(queueName: string, member: MemberSession, task: ClaimedTask): boolean {
    member.assertOpen();
    const record = this.#claimed(queueName, task);
    if (record === undefined) return false;
    this.#releaseClaim(record);
    record.queue.tasks.delete(record.id);
    return true;
  }

  /** Gives a claimed task back after a failure: delayed with backoff while attempts remain, else dead. */
  fail(
    queueName: string,
    member: MemberSession,
    task: ClaimedTask,
    error: ErrorInfo,
    backoff: BackoffPolicy,
  ): 'retry' | 'dead' | 'lost' {
    member.assertOpen();
    const record = this.#claimed(queueName, task);
    if (record === undefined) return 'lost';
    this.#releaseClaim(record);
    if (record.attempts >= record.maxAttempts) {
      this.#bury(record, structuredClone(error));
      return 'dead';
    }
    this.#delay(record, Date.now() + backoffDelay(backoff, record.attempts));
    this.#dispatch(record.queue);
    return 'retry';
  }

  /** Counts of a queue. */
  stats(queueName: string, member: MemberSession): QueueStats {
    member.assertOpen();
    const queue = this.#queue(queueName);
    this.#dispatch(queue);
    return {
      ready: queue.ready.size,
      delayed: queue.delayed.size,
      claimed: queue.claimed,
      dead: queue.dead.size,
    };
  }

  /** The dead tasks of a queue, oldest death first. */
  deadLetters(queueName: string, member: MemberSession): DeadTask[] {
    member.assertOpen();
    return [...this.#queue(queueName).dead.values()].map((record) => {
      const dead = { id: record.id, payload: structuredClone(record.payload), attempts: record.attempts };
      return record.error === undefined ? dead : { ...dead, error: structuredClone(record.error) };
    });
  }

  #claimed(queueName: string, task: ClaimedTask): TaskRecord | undefined {
    const record = this.#queues.get(queueName)?.tasks.get(task.id);
    return record?.state === 'claimed' && record.claim?.id === task.claim ? record : undefined;
  }

  #grantClaim(record: TaskRecord, member: MemberSession, worker: string): ClaimedTask {
    record.attempts += 1;
    record.state = 'claimed';
    record.claim = { id: String(this.#nextRevision()), worker, member };
    record.queue.claimed += 1;
    member.claims.add(record);
    return {
      id: record.id,
      payload: structuredClone(record.payload),
      attempt: record.attempts,
      claim: record.claim.id,
    };
  }

  #releaseClaim(record: TaskRecord): void {
    record.claim?.member.claims.delete(record);
    record.claim = undefined;
    record.queue.claimed -= 1;
  }

  #makeReady(record: TaskRecord, readyAt: number): void {
    record.state = 'ready';
    record.readyAt = readyAt;
    record.seq = ++this.#seq;
    record.queue.ready.push(record);
  }

  #delay(record: TaskRecord, notBefore: number): void {
    record.state = 'delayed';
    record.readyAt = notBefore;
    record.seq = ++this.#seq;
    record.queue.delayed.push(record);
  }

  #bury(record: TaskRecord, error: ErrorInfo): void {
    record.state = 'dead';
    record.error = error;
    record.queue.dead.set(record.id, record);
  }

  /** Moves due delayed tasks to ready; they keep their due time as their place in line. */
  #promoteDue(queue: QueueState, now: number): void {
    for (
      let next = queue.delayed.peek();
      next !== undefined && next.readyAt <= now;
      next = queue.delayed.peek()
    ) {
      queue.delayed.pop();
      next.state = 'ready';
      queue.ready.push(next);
    }
  }

  /** Hands ready tasks to waiting claims in arrival order, then re-arms the wake-up timer. */
  #dispatch(queue: QueueState): void {
    this.#promoteDue(queue, Date.now());
    while (queue.ready.size > 0) {
      const waiter = queue.waiters.shift();
      if (waiter === undefined) break;
      waiter.member.claimWaiters.delete(waiter);
      const record = queue.ready.pop() as TaskRecord;
      waiter.settle({ task: this.#grantClaim(record, waiter.member, waiter.worker) });
    }
    this.#armTimer(queue);
  }

  /** A timer runs only while claims wait and tasks are delayed; it is unref'd so it never keeps the process up. */
  #armTimer(queue: QueueState): void {
    const next = queue.delayed.peek();
    if (queue.waiters.length === 0 || next === undefined) {
      clearTimeout(queue.timer);
      queue.timer = undefined;
      return;
    }
    if (queue.timer !== undefined && queue.timerDue === next.readyAt) return;
    clearTimeout(queue.timer);
    queue.timerDue = next.readyAt;
    const delay = Math.min(maxTimerDelayMs, Math.max(0, next.readyAt - Date.now()));
    queue.timer = setTimeout(() => {
      queue.timer = undefined;
      this.#dispatch(queue);
    }, delay);
    queue.timer.unref();
  }

  #removeWaiter(waiter: ClaimWaiter): void {
    const { waiters } = waiter.queue;
    const index = waiters.indexOf(waiter);
    if (index >= 0) waiters.splice(index, 1);
  }

  // ---- notifications ----

  /** Delivers a copy of `message` to every subscription whose prefix `topic` starts with, asynchronously. */
  notify(member: MemberSession, topic: string, message: JsonValue): void {
    member.assertOpen();
    for (const subscription of this.#subscriptions) {
      if (!topic.startsWith(subscription.prefix)) continue;
      const copy = structuredClone(message);
      queueMicrotask(() => {
        if (!subscription.active) return;
        try {
          subscription.listener(topic, copy);
        } catch (error) {
          subscription.member.logger.error('Notification listener failed', {
            topic,
            prefix: subscription.prefix,
            error: toErrorInfo(error),
          });
        }
      });
    }
  }

  /** Subscribes to a topic prefix; returns the unsubscribe function. */
  subscribe(
    member: MemberSession,
    prefix: string,
    listener: (topic: string, message: JsonValue) => void,
  ): () => void {
    member.assertOpen();
    const subscription: Subscription = { member, prefix, listener, active: true };
    this.#subscriptions.add(subscription);
    member.subscriptions.add(subscription);
    return () => {
      subscription.active = false;
      this.#subscriptions.delete(subscription);
      member.subscriptions.delete(subscription);
    };
  }

  #nextRevision(): number {
    this.#revision += 1;
    return this.#revision;
  }
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
