/**
 * The master: while this process leads, it takes queued jobs, locks their node, drives the planner, hands
 * provider tasks to workers through the `tasks` queue, folds their results from the `results` queue, and persists
 * the job, the node and an event after every step, so that a new leader can resume any job where it stood.
 */
import type {
  Clock,
  Coordinator,
  JobRecord,
  JobState,
  JsonObject,
  JsonValue,
  PlannerState,
  Store,
  TaskResult,
} from '@consortium/core';
import {
  CancelledError,
  ConsortiumError,
  LeaseLostError,
  PRESENT_ATTR,
  backoffDelay,
  isTerminal,
  toErrorInfo,
} from '@consortium/core';
import type winston from 'winston';
import type { Metrics } from './metrics.js';
import type { Kinds } from './plugins.js';
import {
  JOB_QUEUE,
  JOB_TOPIC_PREFIX,
  RESULT_QUEUE,
  TASK_QUEUE,
  decodeJobId,
  decodeJobNotice,
  decodeResultMessage,
  encodeJobNotice,
  encodeTaskMessage,
  errorInfoJson,
  jobOfTopic,
  jobTopic,
  nodeLockKey,
  outcomeJson,
} from './protocol.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';

/** Wait before driving a job again after a passing fault: 0.25 s doubling to 10 s. */
const RESUME_BACKOFF = { initialMs: 250, factor: 2, maxMs: 10_000 };

const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'expired', 'cancelled'];

/** Dependencies of the master. */
export interface MasterDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  readonly metrics?: Metrics;
}

/** One job being driven: its mailbox of results and a way to wake its loop. */
class JobRunner {
  private readonly results: TaskResult[] = [];
  private wakeUp: (() => void) | undefined;
  cancelRequested = false;
  readonly lockWait = new AbortController();

  deliver(result: TaskResult): void {
    this.results.push(result);
    this.wake();
  }

  requestCancel(): void {
    this.cancelRequested = true;
    this.lockWait.abort();
    this.wake();
  }

  wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  take(): TaskResult[] {
    return this.results.splice(0);
  }

  /** Waits for a result, a cancel, `ms` (null: no timeout) or the signal. */
  async sleep(ms: number | null, signal: AbortSignal): Promise<void> {
    if (this.results.length > 0 || this.cancelRequested || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = ms === null ? undefined : setTimeout(done, Math.max(0, ms));
      const onAbort = (): void => {
        done();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.wakeUp = done;
      function done(): void {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve();
      }
    });
  }
}

/** The master role: leader-only. */
export class Master implements Runnable {
  readonly name = 'master';
  readonly needsLeader = true;
  private readonly runners = new Map<string, JobRunner>();
  private readonly running = new Set<Promise<void>>();
  /** The fencing token of the current leadership; every job write carries it. */
  private fence = '0';

  /** Makes the master over its dependencies. */
  constructor(private readonly deps: MasterDeps) {}

  /** Number of jobs this master is driving now. */
  get activeJobs(): number {
    return this.runners.size;
  }

  async run(signal: AbortSignal, leadership?: { readonly token: string }): Promise<void> {
    const { coordinator, store, logger } = this.deps;
    this.fence = leadership?.token ?? '0';
    const unsubscribe = coordinator.subscribe(JOB_TOPIC_PREFIX, (topic, message) => {
      if (decodeJobNotice(message)?.kind === 'cancel') this.runners.get(jobOfTopic(topic))?.requestCancel();
    });
    try {
      // Level-based: whatever the store says is unfinished is ours to finish, whatever the queue lost.
      for (const state of ['running', 'queued'] as const) {
        let cursor: string | undefined;
        do {
          const page = await store.listJobs({
            states: [state],
            limit: 200,
            ...(cursor === undefined ? {} : { cursor }),
          });
          for (const job of [...page.items].reverse()) this.schedule(job.id, signal);
          cursor = page.next;
        } while (cursor !== undefined);
      }
      logger.info('master ready', { resumed: this.runners.size });
      await Promise.all([this.consumeJobs(signal), this.consumeResults(signal)]);
    } finally {
      unsubscribe();
      for (const runner of this.runners.values()) runner.wake();
      await Promise.allSettled([...this.running]);
    }
  }

  private schedule(jobId: string, signal: AbortSignal, attempt = 1): void {
    if (this.runners.has(jobId) || signal.aborted) return;
    const runner = new JobRunner();
    this.runners.set(jobId, runner);
    let again = false;
    const done = this.drive(jobId, runner, signal)
      .catch((error: unknown) => {
        if (error instanceof LeaseLostError) {
          this.deps.logger.warn('fenced out: a newer master owns the job; this one stops driving it', {
            job: jobId,
            error: error.message,
          });
          return;
        }
        // A passing fault (etcd or the store briefly unavailable): the job is persisted, so drive it again.
        again = error instanceof ConsortiumError && error.retryable;
        this.deps.logger[again ? 'warn' : 'error'](
          again
            ? 'job runner hit a passing fault; resuming the job'
            : 'job runner crashed; the job stays resumable',
          {
            job: jobId,
            attempt,
            error: again ? (error as Error).message : ((error as Error).stack ?? String(error)),
          },
        );
      })
      .finally(async () => {
        this.runners.delete(jobId);
        this.running.delete(done);
        if (again && !stopped(signal)) {
          await this.deps.clock.sleep(backoffDelay(RESUME_BACKOFF, attempt), signal);
          this.schedule(jobId, signal, attempt + 1);
        }
      });
    this.running.add(done);
  }

  private async consumeJobs(signal: AbortSignal): Promise<void> {
    const queue = this.deps.coordinator.queue(JOB_QUEUE);
    while (!signal.aborted) {
      try {
        const claimed = await queue.claim(this.deps.coordinator.memberId, signal);
        try {
          this.schedule(decodeJobId(claimed.payload), signal);
        } catch (error) {
          this.deps.logger.error('dropped a malformed job queue entry', { error: (error as Error).message });
        }
        await queue.ack(claimed);
      } catch (error) {
        if (error instanceof CancelledError || stopped(signal)) return;
        this.deps.logger.error('claiming jobs failed', { error: (error as Error).message });
        await this.deps.clock.sleep(500, signal);
      }
    }
  }

  private async consumeResults(signal: AbortSignal): Promise<void> {
    const queue = this.deps.coordinator.queue(RESULT_QUEUE);
    while (!signal.aborted) {
      try {
        const claimed = await queue.claim(this.deps.coordinator.memberId, signal);
        this.take(claimed.payload);
        await queue.ack(claimed);
      } catch (error) {
        if (error instanceof CancelledError || stopped(signal)) return;
        this.deps.logger.error('claiming results failed', { error: (error as Error).message });
        await this.deps.clock.sleep(500, signal);
      }
    }
  }

  /** Hands a result to the runner of its job; a malformed one or one for a job not running here is dropped. */
  private take(payload: JsonValue): void {
    let message;
    try {
      message = decodeResultMessage(payload);
    } catch (error) {
      this.deps.logger.error('dropped a malformed result', { error: (error as Error).message });
      return;
    }
    const runner = this.runners.get(message.jobId);
    if (runner === undefined) {
      this.deps.logger.debug('result for a job not running here; dropped', { job: message.jobId });
    } else runner.deliver(message.result);
  }

  private async event(job: JobRecord, type: string, data: JsonObject): Promise<void> {
    const event = await this.deps.store.appendEvent(job.id, type, data, this.deps.clock.now());
    await this.deps.coordinator.notify(
      jobTopic(job.id),
      encodeJobNotice({ kind: 'event', seq: event.seq, type }),
    );
  }

  /** Ends a job that never got a plan (its kind is gone, it was cancelled while queued, it no longer validates). */
  private async endEarly(job: JobRecord, state: JobState, code: string, message: string): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.store.updateJob(
      job.id,
      { state, endedAt: now, failure: { code: code as 'CANCELLED', message } },
      now,
    );
    await this.event(job, 'ended', { state, failure: { code, message } });
    this.deps.metrics?.jobEnded(job.kind, state);
  }

  private async drive(jobId: string, runner: JobRunner, signal: AbortSignal): Promise<void> {
    const { store, coordinator, kinds, clock, logger } = this.deps;
    const queued = await store.getJob(jobId);
    if (queued === undefined || TERMINAL_JOB_STATES.includes(queued.state)) return;
    const runtime = kinds.get(queued.kind);
    if (runtime === undefined) {
      await this.endEarly(queued, 'failed', 'NOT_FOUND', `kind ${queued.kind} is not loaded by this master`);
      return;
    }
    if (queued.cancelRequested !== undefined) runner.cancelRequested = true;
    let lock;
    try {
      lock = await coordinator.lock(
        nodeLockKey(queued.kind, queued.name),
        AbortSignal.any([signal, runner.lockWait.signal]),
      );
    } catch (error) {
      if (runner.cancelRequested && !signal.aborted) {
        await this.endEarly(
          queued,
          'cancelled',
          'CANCELLED',
          `cancelled by ${queued.cancelRequested?.by ?? 'request'} while queued`,
        );
        return;
      }
      if (error instanceof CancelledError) return;
      throw error;
    }
    const jobSignal = AbortSignal.any([signal, lock.lost]);
    const log = logger.child({ job: jobId, kind: queued.kind, node: queued.name });
    try {
      let job = (await store.getJob(jobId)) as JobRecord;
      if (TERMINAL_JOB_STATES.includes(job.state)) return;
      const { planner } = runtime;
      let state: PlannerState;
      let storedAttrs: JsonValue | undefined;
      if (job.plan !== undefined) {
        state = planner.resume(job.plan, clock.now());
        // Unknown: the crash may have come between the job write and the node write, so the node is rewritten.
        storedAttrs = undefined;
        log.info('resuming job', { round: job.plan.rounds.length });
      } else {
        const node = await store.getNode(job.kind, job.name);
        try {
          state = planner.start(
            { jobId, kind: job.kind, name: job.name, current: node?.attrs ?? {}, updates: job.updates },
            clock.now(),
          );
        } catch (error) {
          const info = toErrorInfo(error);
          await this.endEarly(
            job,
            'failed',
            info.code,
            `the request no longer applies to the node: ${info.message}`,
          );
          return;
        }
        storedAttrs = node?.attrs;
        const now = clock.now();
        job = await store.updateJob(
          jobId,
          { state: 'running', startedAt: now, plan: state },
          now,
          this.fence,
        );
        await this.event(job, 'state', { state: 'running' });
        log.info('job started');
      }

      // The fenced job write goes first: a master that lost its leadership is stopped before it touches the node.
      const persist = async (type: string, data: JsonObject): Promise<void> => {
        const now = clock.now();
        job = await store.updateJob(jobId, { plan: state }, now, this.fence);
        if (state.attrs !== storedAttrs && state.phase !== 'cancelled') {
          await this.writeNode(job, state.attrs, now);
          storedAttrs = state.attrs;
        }
        await this.event(job, type, data);
      };

      while (!isTerminal(state) && !jobSignal.aborted) {
        if (runner.cancelRequested) {
          const latest = await store.getJob(jobId);
          state = planner.cancel(
            state,
            `cancelled by ${latest?.cancelRequested?.by ?? 'request'}`,
            clock.now(),
          );
          break;
        }
        const dispatch = planner.dispatch(state, clock.now());
        state = dispatch.state;
        if (dispatch.tasks.length > 0) {
          const tasks = coordinator.queue(TASK_QUEUE);
          for (const task of dispatch.tasks) {
            if (task.attempt > 1) this.deps.metrics?.taskRetried(task.provider);
            await tasks.enqueue({
              id: `${task.id}#${task.attempt}`,
              payload: encodeTaskMessage({ task, fencingToken: lock.token }),
            });
          }
          await persist('dispatched', {
            round: dispatch.tasks[0]?.round ?? 0,
            tasks: dispatch.tasks.map((t) => ({
              provider: t.provider,
              attempt: t.attempt,
              updates: t.updates.map((u) => u.id),
            })),
          });
          continue;
        }
        if (isTerminal(state)) break;
        const results = runner.take();
        for (const result of results) {
          const before = state;
          state = planner.step(state, result, clock.now());
          if (state === before) continue;
          const task = before.round?.tasks.find((t) => t.id === result.taskId);
          await persist('task', {
            taskId: result.taskId,
            provider: task?.provider ?? '',
            attempt: result.attempt,
            durationMs: result.durationMs,
            ...('error' in result
              ? { error: errorInfoJson(result.error) }
              : { outcome: outcomeJson(result.outcome) }),
            roundClosed: state.round === null,
          });
        }
        if (results.length > 0) continue;
        const wakeAt = dispatch.wakeAt;
        await runner.sleep(wakeAt === null ? null : wakeAt - clock.now(), jobSignal);
      }
      if (!isTerminal(state)) {
        // Leadership or the lock was lost, or we are shutting down: the state is persisted; whoever leads next resumes.
        log.info('job handed over', { round: state.rounds.length });
        return;
      }
      await this.finish(job, state, storedAttrs);
      log.info('job ended', {
        state: state.phase,
        rounds: state.rounds.length,
        failure: state.failure?.message,
      });
    } finally {
      await lock.release();
    }
  }

  private async writeNode(job: JobRecord, attrs: PlannerState['attrs'], now: number): Promise<void> {
    const { store } = this.deps;
    const existing = await store.getNode(job.kind, job.name);
    if (existing === undefined) await store.insertNode(job.kind, job.name, attrs, now);
    else await store.updateNode(job.kind, job.name, attrs, now);
  }

  private async finish(
    job: JobRecord,
    state: PlannerState,
    storedAttrs: JsonValue | undefined,
  ): Promise<void> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const deleted = state.phase === 'succeeded' && state.attrs[PRESENT_ATTR] === undefined;
    // Check the fence before the node changes; the job is marked ended only after, so a crash in between resumes.
    await store.updateJob(job.id, {}, now, this.fence);
    if (deleted) await store.deleteNode(job.kind, job.name);
    else if (state.attrs !== storedAttrs && state.phase !== 'cancelled')
      await this.writeNode(job, state.attrs, now);
    const ended = await store.updateJob(
      job.id,
      {
        state: state.phase,
        endedAt: now,
        plan: state,
        ...(state.failure === undefined ? {} : { failure: state.failure }),
      },
      now,
      this.fence,
    );
    await store.appendAudit({
      at: now,
      actor: job.actor,
      action: `${job.action}:${state.phase}`,
      kind: job.kind,
      name: job.name,
      jobId: job.id,
      before: job.before,
      after: deleted ? null : state.attrs,
    });
    this.deps.metrics?.jobEnded(job.kind, state.phase, state.rounds.length);
    await this.event(ended, 'ended', {
      state: state.phase,
      rounds: state.rounds.length,
      ...(state.failure === undefined ? {} : { failure: { ...state.failure } }),
    });
  }
}
