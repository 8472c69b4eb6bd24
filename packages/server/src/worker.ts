/**
 * The worker: claims provider tasks from the `tasks` queue and runs them against the backends, `concurrency` at a
 * time, then hands each result back through the `results` queue. On shutdown it stops claiming and lets the tasks
 * in flight finish, so nothing is lost on Ctrl-C; a second, hard stop aborts them (they are re-run elsewhere).
 */
import type { ClaimedTask, Clock, Coordinator, JsonValue, TaskResult } from '@consortium/core';
import { CancelledError, toErrorInfo } from '@consortium/core';
import type winston from 'winston';
import type { ResultMessage, TaskMessage } from './master.js';
import { RESULT_QUEUE, TASK_QUEUE } from './master.js';
import type { Metrics } from './metrics.js';
import type { Kinds } from './plugins.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';

/** Dependencies of a worker. */
export interface WorkerDeps {
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
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

  /** Makes a worker over its dependencies. */
  constructor(private readonly deps: WorkerDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(Array.from({ length: this.deps.concurrency }, (_, i) => this.loop(i, signal)));
  }

  private async loop(slot: number, signal: AbortSignal): Promise<void> {
    const { coordinator, logger, clock } = this.deps;
    const tasks = coordinator.queue(TASK_QUEUE);
    const workerId = `${coordinator.memberId}/${slot}`;
    while (!signal.aborted) {
      let claimed: ClaimedTask;
      try {
        claimed = await tasks.claim(workerId, signal);
      } catch (error) {
        if (error instanceof CancelledError || stopped(signal)) return;
        logger.error('claiming a task failed', { error: (error as Error).message });
        await clock.sleep(500, signal);
        continue;
      }
      const message = claimed.payload as unknown as TaskMessage;
      const result = await this.execute(message);
      const reply: ResultMessage = { jobId: message.task.jobId, result };
      await coordinator
        .queue(RESULT_QUEUE)
        .enqueue({ id: claimed.id, payload: reply as unknown as JsonValue });
      if (!(await tasks.ack(claimed))) {
        logger.warn(
          'late result: this worker lost its claim on the task; the master ignores stale attempts',
          {
            task: claimed.id,
          },
        );
      }
    }
  }

  private async execute(message: TaskMessage): Promise<TaskResult> {
    const { kinds, clock, logger } = this.deps;
    const { task } = message;
    const started = clock.now();
    const base = { taskId: task.id, attempt: task.attempt };
    const provider = kinds.get(task.kind)?.providers.get(task.provider);
    const log = logger.child({
      job: task.jobId,
      task: task.id,
      provider: task.provider,
      attempt: task.attempt,
    });
    try {
      if (provider === undefined)
        throw new Error(`provider ${task.provider} for kind ${task.kind} is not loaded here`);
      const outcome = await provider.apply(task, {
        logger: log,
        signal: this.deps.hardStop ?? new AbortController().signal,
        fencingToken: message.fencingToken,
        now: () => clock.now(),
      });
      const durationMs = clock.now() - started;
      this.deps.metrics?.taskRan(task.provider, 'ok', durationMs);
      return { ...base, outcome, durationMs };
    } catch (error) {
      const durationMs = clock.now() - started;
      const info = toErrorInfo(error);
      log.warn('provider task failed', { code: info.code, error: info.message, retryable: info.retryable });
      this.deps.metrics?.taskRan(task.provider, 'error', durationMs);
      return { ...base, error: info, durationMs };
    }
  }
}
