/**
 * The worker: claims provider tasks from the `tasks` queue and runs them against the backends, `concurrency` at a
 * time (one claim takes as many as there are free slots), then hands each result back through the `results` queue. On shutdown it stops claiming and lets the tasks
 * in flight finish, so nothing is lost on Ctrl-C; a second, hard stop aborts them (they are re-run elsewhere).
 * A task runs under a lock on its id, so that two attempts of one task never run at the same time.
 */
import type { ClaimedTask, Clock, Coordinator, Held, Queue, TaskResult } from '@consortium/core';
import {
  backoffDelay,
  CancelledError,
  MAX_CLAIM_BATCH,
  isConsortiumError,
  runProviderTask,
  toErrorInfo,
} from '@consortium/core';
import type winston from 'winston';
import type { Metrics } from './metrics.js';
import type { KindRuntime } from './plugins.js';
import type { ResultMessage, TaskMessage } from './protocol.js';
import { RESULT_QUEUE, TASK_QUEUE, decodeTaskMessage, encodeResultMessage } from './protocol.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';
import { traceJob } from './trace.js';

/**
 * The lock key of a provider task (`<job>/r<round>/<provider>`, the same on every attempt): a resumed job's new
 * attempt waits for the old one, still queued or running, instead of racing it in the backend.
 */
export function taskLockKey(taskId: string): string {
  return `task/${taskId}`;
}

/** Pauses between attempts at handing a result back after a retryable failure: 0.25 s doubling to 5 s. */
const HAND_BACK_BACKOFF = { initialMs: 250, factor: 2, maxMs: 5000 };

/** Dependencies of a worker. */
export interface WorkerDeps {
  readonly coordinator: Coordinator;
  /** Only the providers of each kind are used: a worker runs tasks, it never plans. */
  readonly kinds: ReadonlyMap<string, Pick<KindRuntime, 'providers'>>;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  readonly concurrency: number;
  /** Aborts the provider calls in flight (a second Ctrl-C). */
  readonly hardStop?: AbortSignal;
  readonly metrics?: Metrics;
}

/** The worker role: runs on every process that hosts it, leader or not. */
export class Worker implements Runnable {
  readonly name = 'worker';
  readonly needsLeader = false;
  /** The last attempt of each task id that runs or waits to run in this process; it settles when that one ends. */
  private readonly runningHere = new Map<string, Promise<void>>();

  /** Makes a worker over its dependencies. */
  constructor(private readonly deps: WorkerDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    const { coordinator, logger, clock, concurrency } = this.deps;
    const tasks = coordinator.queue(TASK_QUEUE);
    const running = new Set<Promise<void>>();
    let slotFreed: (() => void) | undefined;
    try {
      while (!signal.aborted) {
        if (running.size >= concurrency) {
          // Tasks in flight finish even on shutdown, so one of them always frees a slot.
          await new Promise<void>((resolve) => {
            slotFreed = resolve;
          });
          continue;
        }
        // One claim for every free slot: a single waiting claim per worker instead of one per slot, which woke
        // every slot's claim on each new task to race for it (a read and a lost transaction each).
        let claimed: readonly ClaimedTask[];
        try {
          claimed = await tasks.claimMany(
            coordinator.memberId,
            Math.min(concurrency - running.size, MAX_CLAIM_BATCH),
            signal,
          );
        } catch (error) {
          if (error instanceof CancelledError || stopped(signal)) return;
          logger.error('claiming a task failed', { error: (error as Error).message });
          await clock.sleep(500, signal);
          continue;
        }
        for (const task of claimed) {
          const done: Promise<void> = this.process(tasks, task).finally(() => {
            running.delete(done);
            const wake = slotFreed;
            slotFreed = undefined;
            wake?.();
          });
          running.add(done);
        }
      }
    } finally {
      await Promise.allSettled([...running]);
    }
  }

  /** Runs one claimed task and hands its result back; never throws. */
  private async process(tasks: Queue, claimed: ClaimedTask): Promise<void> {
    const { logger } = this.deps;
    let message: TaskMessage;
    try {
      message = decodeTaskMessage(claimed.payload);
    } catch (error) {
      logger.error('a malformed task was given back', {
        task: claimed.id,
        error: (error as Error).message,
      });
      await this.giveBack(tasks, claimed, error);
      return;
    }
    traceJob(message.task.jobId, 'worker.claimed');
    let result: TaskResult;
    try {
      result = await this.executeAlone(message);
    } catch (error) {
      if (error instanceof CancelledError || this.deps.hardStop?.aborted === true) return;
      logger.error('could not lock the task; it is given back to run again', {
        task: claimed.id,
        error: (error as Error).message,
      });
      await this.giveBack(tasks, claimed, error);
      return;
    }
    const reply: ResultMessage = { jobId: message.task.jobId, result };
    traceJob(message.task.jobId, 'worker.ran');
    try {
      await this.handBack(tasks, claimed, reply);
      traceJob(message.task.jobId, 'worker.acked');
    } catch (error) {
      if (error instanceof CancelledError || this.deps.hardStop?.aborted === true) return;
      logger.error('handing a result back failed', { task: claimed.id, error: (error as Error).message });
    }
  }

  /**
   * Enqueues the result of a claimed task, then acks the task. Both are retried while the coordinator reports
   * a retryable failure (etcd restarting, a connection dropped): the provider already ran, and giving up would
   * run it again or, worse, end this worker. A result refused for good gives the task back (to run again)
   * rather than sit on its claim. Throws `CancelledError` on close, the last error on a hard stop, and an ack
   * failure that is not retryable.
   */
  private async handBack(tasks: Queue, claimed: ClaimedTask, reply: ResultMessage): Promise<void> {
    const { coordinator, logger } = this.deps;
    const results = coordinator.queue(RESULT_QUEUE);
    try {
      await this.retrying('enqueueing a result', claimed.id, () =>
        results.enqueue({ id: claimed.id, payload: encodeResultMessage(reply) }),
      );
      traceJob(reply.jobId, 'worker.result-queued');
    } catch (error) {
      if (error instanceof CancelledError || this.deps.hardStop?.aborted === true) throw error;
      logger.error('the result was refused; the task is given back to run again', {
        task: claimed.id,
        error: (error as Error).message,
      });
      await this.giveBack(tasks, claimed, error);
      return;
    }
    if (!(await this.retrying('acking a task', claimed.id, () => tasks.ack(claimed)))) {
      logger.warn('late result: this worker lost its claim on the task; the master ignores stale attempts', {
        task: claimed.id,
      });
    }
  }

  /** Fails a claimed task back to the queue (it runs again after a backoff); never throws. */
  private async giveBack(tasks: Queue, claimed: ClaimedTask, error: unknown): Promise<void> {
    try {
      await tasks.fail(claimed, toErrorInfo(error));
    } catch (failed) {
      this.deps.logger.warn("giving the task back failed; it comes back once this worker's claim lapses", {
        task: claimed.id,
        error: (failed as Error).message,
      });
    }
  }

  /**
   * Runs a task after the attempts of the same task before it in this process, and while holding its lock
   * (`taskLockKey`), so that it also waits for one running elsewhere: providers are idempotent for attempts one
   * after the other, not side by side (two look-ups that both miss make two VMs). The local wait holds even when
   * etcd drops the lock (a restart) while an attempt still runs. Rejects with `CancelledError` on a hard stop or
   * close.
   */
  private async executeAlone(message: TaskMessage): Promise<TaskResult> {
    const { coordinator, logger } = this.deps;
    const { id } = message.task;
    const before = this.runningHere.get(id);
    let finished = (): void => undefined;
    const mine = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const last = (before ?? Promise.resolve()).then(() => mine);
    this.runningHere.set(id, last);
    try {
      await before;
      const held: Held = await coordinator.lock(
        taskLockKey(id),
        this.deps.hardStop ?? new AbortController().signal,
      );
      traceJob(message.task.jobId, 'worker.locked');
      try {
        return await this.execute(message);
      } finally {
        // Not awaited: the release goes to etcd in one transaction with the result handed back next.
        void held.release().catch((error: unknown) => {
          logger.warn('releasing the task lock failed; it goes with the lease', {
            task: id,
            error: (error as Error).message,
          });
        });
      }
    } finally {
      finished();
      if (this.runningHere.get(id) === last) this.runningHere.delete(id);
    }
  }

  /** Calls `fn` until it succeeds or fails with an error that is not retryable; a hard stop ends retrying. */
  private async retrying<T>(what: string, task: string, fn: () => Promise<T>): Promise<T> {
    const { clock, logger, hardStop } = this.deps;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        const retryable = isConsortiumError(error) && error.retryable && !(error instanceof CancelledError);
        if (!retryable || hardStop?.aborted === true) throw error;
        logger.warn(`${what} failed; retrying`, { task, attempt, error: error.message });
        await clock.sleep(backoffDelay(HAND_BACK_BACKOFF, attempt), hardStop);
      }
    }
  }

  /** Runs a task through the core's one executor, with this worker's logging and metrics around it. */
  private async execute(message: TaskMessage): Promise<TaskResult> {
    const { kinds, clock, logger } = this.deps;
    const { task } = message;
    const log = logger.child({
      job: task.jobId,
      task: task.id,
      provider: task.provider,
      attempt: task.attempt,
    });
    const result = await runProviderTask(kinds.get(task.kind)?.providers.get(task.provider), task, 'apply', {
      clock,
      logger: log,
      signal: this.deps.hardStop ?? new AbortController().signal,
      fencingToken: message.fencingToken,
    });
    if ('error' in result) {
      const { code, message: error, retryable } = result.error;
      log.warn('provider task failed', { code, error, retryable });
    }
    this.deps.metrics?.taskRan(task.provider, 'error' in result ? 'error' : 'ok', result.durationMs);
    return result;
  }
}
