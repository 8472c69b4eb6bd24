/**
 * The master: while this process leads, it takes queued jobs, locks their node, drives the planner, hands
 * provider tasks to workers through the `tasks` queue, folds their results from the `results` queue, and persists
 * the job, the node and an event after every step, so that a new leader can resume any job where it stood.
 */
import type {
  Attrs,
  Clock,
  Coordinator,
  Held,
  JobEvent,
  JobRecord,
  JobState,
  JsonObject,
  JsonValue,
  PlannerState,
  Store,
  StoredNode,
  TaskResult,
} from '@consortium/core';
import {
  CancelledError,
  ConsortiumError,
  LeaseLostError,
  PRESENT_ATTR,
  backoffDelay,
  deepEqual,
  isTerminal,
  toErrorInfo,
} from '@consortium/core';
import type winston from 'winston';
import { admit, asCreated, exists, failedCreateOf, planChange } from './intake.js';
import type { HookPublisher } from './hooks.js';
import type { Metrics } from './metrics.js';
import type { KindRuntime, Kinds } from './plugins.js';
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
import { traceJob } from './trace.js';

/** Wait before driving a job again after a passing fault: 0.25 s doubling to 10 s. */
const RESUME_BACKOFF = { initialMs: 250, factor: 2, maxMs: 10_000 };

/** Most jobs or results the master takes from its queues in one claim. */
const QUEUE_BATCH = 16;

const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'expired', 'cancelled'];

/** Dependencies of the master. */
export interface MasterDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  readonly metrics?: Metrics;
  /** Tells hooks how each job ended. */
  readonly hooks?: HookPublisher;
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
    return this.running.size;
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
      logger.info('master ready', { resumed: this.running.size });
      await this.republishRecentEnds();
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
        this.runners.delete(rollbackPlanId(jobId));
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
        // A burst of submissions is taken in batches: one claim and one combined ack for up to a batch of jobs.
        const claimed = await queue.claimMany(this.deps.coordinator.memberId, QUEUE_BATCH, signal);
        for (const entry of claimed) {
          try {
            const jobId = decodeJobId(entry.payload);
            traceJob(jobId, 'master.claimed');
            this.schedule(jobId, signal);
          } catch (error) {
            this.deps.logger.error('dropped a malformed job queue entry', {
              error: (error as Error).message,
            });
          }
        }
        await Promise.all(claimed.map((entry) => queue.ack(entry)));
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
        const claimed = await queue.claimMany(this.deps.coordinator.memberId, QUEUE_BATCH, signal);
        for (const entry of claimed) this.take(entry.payload);
        await Promise.all(claimed.map((entry) => queue.ack(entry)));
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
    } else {
      traceJob(message.jobId, 'master.result');
      runner.deliver(message.result);
    }
  }

  /**
   * Publishes the hook events of the jobs that ended in the last `REPUBLISH_WINDOW_MS` again: a master that stopped
   * between storing a job's end and publishing it would otherwise have lost them. Deliveries are keyed by hook and
   * event, so the events already published are not sent again.
   */
  private async republishRecentEnds(): Promise<void> {
    const { hooks, store, clock } = this.deps;
    if (hooks === undefined) return;
    const since = clock.now() - REPUBLISH_WINDOW_MS;
    const page = await store.listJobs({
      states: ['succeeded', 'failed', 'expired'],
      limit: REPUBLISH_MAX_JOBS,
    });
    let jobs = 0;
    let deliveries = 0;
    for (const job of page.items) {
      if ((job.endedAt ?? 0) < since) continue;
      const deleted = job.state === 'succeeded' && job.action === 'delete';
      jobs += 1;
      deliveries += (await hooks.publishJob(job, deleted ? null : (job.plan?.attrs ?? null))).length;
    }
    this.deps.logger.info('hook events of recent jobs published again', { jobs, deliveries });
  }

  /** An actor as a message names it: its token's description and id (`ci pipeline (3f9a1c0b7d2e)`), else its id. */
  private async actorName(id: string): Promise<string> {
    const token = (await this.deps.store.listTokens()).find((t) => t.id === id);
    return token?.description === undefined ? id : `${token.description} (${id})`;
  }

  private async event(job: JobRecord, type: string, data: JsonObject): Promise<void> {
    const event = await this.deps.store.appendEvent(job.id, type, data, this.deps.clock.now());
    this.announce(event);
  }

  /**
   * Tells the watchers of a job (waiting requests, event streams) that it has a new event, without waiting for
   * etcd: the event is already stored, the job's next step need not wait a round trip for the signal, and a notice
   * that fails is only late (watchers also poll), so it is logged rather than failing the job.
   */
  private announce(event: JobEvent): void {
    this.deps.coordinator
      .notify(jobTopic(event.jobId), encodeJobNotice({ kind: 'event', seq: event.seq, type: event.type }))
      .catch((error: unknown) => {
        this.deps.logger.warn('announcing a job event failed; its watchers see it when they next poll', {
          job: event.jobId,
          seq: event.seq,
          error: (error as Error).message,
        });
      });
  }

  /** Ends a job that never got a plan (its kind is gone, it was cancelled while queued, it no longer validates). */
  private async endEarly(job: JobRecord, state: JobState, code: string, message: string): Promise<void> {
    const now = this.deps.clock.now();
    const ended = await this.deps.store.endJob(
      job.id,
      { state, endedAt: now, failure: { code: code as 'CANCELLED', message } },
      now,
      { event: { type: 'ended', data: { state, failure: { code, message } } } },
    );
    this.announce(ended.event);
    this.deps.metrics?.jobEnded(job.kind, state);
    await this.deps.hooks?.publishJob(ended.job, null);
  }

  private async drive(jobId: string, runner: JobRunner, signal: AbortSignal): Promise<void> {
    const { store, coordinator, kinds, logger } = this.deps;
    const queued = await store.getJob(jobId);
    if (queued === undefined || TERMINAL_JOB_STATES.includes(queued.state)) return;
    const runtime = kinds.get(queued.kind);
    if (runtime === undefined) {
      await this.endEarly(queued, 'failed', 'NOT_FOUND', `kind ${queued.kind} is not loaded by this master`);
      return;
    }
    if (queued.cancelRequested !== undefined) runner.cancelRequested = true;
    let lock: Held;
    try {
      lock = await coordinator.lock(
        nodeLockKey(queued.kind, queued.name),
        AbortSignal.any([signal, runner.lockWait.signal]),
      );
    } catch (error) {
      if (runner.cancelRequested && !signal.aborted) {
        const by = queued.cancelRequested?.by;
        const who = by === undefined ? 'request' : await this.actorName(by);
        await this.endEarly(queued, 'cancelled', 'CANCELLED', `cancelled by ${who} while queued`);
        return;
      }
      if (error instanceof CancelledError) return;
      throw error;
    }
    traceJob(jobId, 'master.locked');
    const log = logger.child({ job: jobId, kind: queued.kind, node: queued.name });
    try {
      await this.driveLocked(jobId, runtime, runner, lock, signal, log);
    } finally {
      await lock.release();
      traceJob(jobId, 'master.released');
    }
  }

  /** Drives a job while holding its node's lock: its plan, then, for a failed create, the rollback. */
  private async driveLocked(
    jobId: string,
    runtime: KindRuntime,
    runner: JobRunner,
    lock: Held,
    signal: AbortSignal,
    log: winston.Logger,
  ): Promise<void> {
    const { store, clock } = this.deps;
    const found = await store.getJob(jobId);
    if (found === undefined || TERMINAL_JOB_STATES.includes(found.state)) return;
    const node = await store.getNode(found.kind, found.name);
    const run: JobRun = {
      job: found,
      runtime,
      runner,
      lock,
      signal: AbortSignal.any([signal, lock.lost]),
      log,
      node: { attrs: node?.attrs, revision: node?.revision },
    };
    let state: PlannerState | undefined;
    if (!(await this.takeUp(run))) return;
    traceJob(jobId, 'master.takenup');
    if (found.plan === undefined) state = await this.begin(run, node);
    else {
      state = runtime.planner.resume(found.rollback ?? found.plan, clock.now());
      log.info(found.rollback === undefined ? 'resuming job' : 'resuming rollback', {
        round: state.rounds.length,
      });
    }
    if (state === undefined) return;

    if (run.job.rollback === undefined) {
      state = await this.loop(run, state, 'plan');
      if (!isTerminal(state)) {
        this.handedOver(run, state);
        return;
      }
      if (!needsRollback(run.job, state)) {
        await this.finish(run, state);
        return;
      }
      state = await this.startRollback(run, state);
    }
    // The rollback's tasks carry its own plan id (distinct task ids); their results come to the same runner.
    this.runners.set(rollbackPlanId(jobId), runner);
    const rollback = await this.loop(run, state, 'rollback');
    if (!isTerminal(rollback)) {
      this.handedOver(run, rollback);
      return;
    }
    await this.finishRollback(run, rollback);
  }

  /**
   * Counts that a master takes the job up (starts or resumes it); a job taken up `MAX_RESUMES` times without a
   * step in between (its process died each time, say while planning) is failed with the reason instead of wedging
   * every start-up. The count is written before any planning. False when the job was failed.
   */
  private async takeUp(run: JobRun): Promise<boolean> {
    const { store, clock } = this.deps;
    const resumes = (run.job.resumes ?? 0) + 1;
    const now = clock.now();
    if (resumes > MAX_RESUMES) {
      const message = `the job was started or resumed ${MAX_RESUMES} times and its master stopped each time before the next step; it was failed so that the others can run`;
      run.log.error('job failed: it keeps stopping its master', { resumes: MAX_RESUMES });
      const ended = await store.endJob(
        run.job.id,
        { state: 'failed', endedAt: now, failure: { code: 'INTERNAL', message } },
        now,
        { event: { type: 'ended', data: { state: 'failed', failure: { code: 'INTERNAL', message } } } },
        this.fence,
      );
      run.job = ended.job;
      this.announce(ended.event);
      this.deps.metrics?.jobEnded(run.job.kind, 'failed');
      await this.deps.hooks?.publishJob(ended.job, null);
      return false;
    }
    run.job = await store.updateJob(run.job.id, { resumes }, now, this.fence);
    return true;
  }

  /** Admits and plans a job that never ran; undefined when it ended at once (it no longer applies). */
  private async begin(run: JobRun, node: StoredNode | undefined): Promise<PlannerState | undefined> {
    const { store, clock } = this.deps;
    const { job } = run;
    let state: PlannerState;
    try {
      const leftover =
        job.action === 'create' && exists(node)
          ? await failedCreateOf(store, job.kind, job.name, job.id)
          : undefined;
      admit(job, node, { leftover });
      state = planChange(run.runtime, { ...job, jobId: job.id }, asCreated(node, leftover), clock.now());
    } catch (error) {
      const info = toErrorInfo(error);
      await this.endEarly(
        job,
        'failed',
        info.code,
        `the request no longer applies to the node: ${info.message}`,
      );
      return undefined;
    }
    const now = clock.now();
    const started = await store.stepJob(
      job.id,
      { state: 'running', startedAt: now, plan: state },
      now,
      { type: 'state', data: { state: 'running' } },
      this.fence,
    );
    run.job = started.job;
    this.announce(started.event);
    traceJob(job.id, 'master.running');
    run.log.info('job started');
    return state;
  }

  /**
   * Runs one plan of a job (`plan`, or a failed create's `rollback`) until it ends or the job is handed over,
   * persisting the state after every step: the fenced job write first, so that a master that lost its leadership
   * is stopped before it touches the node, then the node when its attributes changed.
   */
  private async loop(run: JobRun, initial: PlannerState, slot: 'plan' | 'rollback'): Promise<PlannerState> {
    const { store, coordinator, clock } = this.deps;
    const { planner } = run.runtime;
    const { runner } = run;
    let state = initial;
    const persist = async (type: string, data: JsonObject): Promise<void> => {
      const now = clock.now();
      const patch = {
        ...(slot === 'plan' ? { plan: state } : { rollback: state }),
        ...resetResumes(run.job),
      };
      const attrs = nodeAttrs(slot, state.attrs);
      if (state.phase === 'cancelled' || nodeHas(run, attrs)) {
        // No node write in between: the job's step and its event go in one transaction.
        const step = await store.stepJob(run.job.id, patch, now, { type, data }, this.fence);
        run.job = step.job;
        this.announce(step.event);
        return;
      }
      run.job = await store.updateJob(run.job.id, patch, now, this.fence);
      await this.writeNode(run, attrs, now);
      await this.event(run.job, type, data);
    };
    const turn = turnTaker();
    while (!isTerminal(state) && !run.signal.aborted) {
      // A long run of steps without a real wait gives timers, results and HTTP requests their turn.
      await turn();
      if (runner.cancelRequested && slot === 'plan') {
        const latest = await store.getJob(run.job.id);
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
            payload: encodeTaskMessage({ task, fencingToken: run.lock.token }),
          });
        }
        traceJob(run.job.id, 'master.dispatched');
        await persist('dispatched', {
          ...(slot === 'rollback' ? { rollback: true } : {}),
          round: dispatch.tasks[0]?.round ?? 0,
          tasks: dispatch.tasks.map((t) => ({
            provider: t.provider,
            attempt: t.attempt,
            updates: t.updates.map((u) => u.id),
          })),
        });
        traceJob(run.job.id, 'master.dispatch-persisted');
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
          ...(slot === 'rollback' ? { rollback: true } : {}),
          taskId: result.taskId,
          provider: task?.provider ?? '',
          attempt: result.attempt,
          durationMs: result.durationMs,
          ...('error' in result
            ? { error: errorInfoJson(result.error) }
            : { outcome: outcomeJson(result.outcome) }),
          roundClosed: state.round === null,
        });
        traceJob(run.job.id, 'master.step-persisted');
      }
      if (results.length > 0) continue;
      const wakeAt = dispatch.wakeAt;
      await runner.sleep(wakeAt === null ? null : wakeAt - clock.now(), run.signal);
    }
    return state;
  }

  /** Leadership or the lock was lost, or we are shutting down: the state is persisted; the next leader resumes. */
  private handedOver(run: JobRun, state: PlannerState): void {
    run.log.info('job handed over', { round: state.rounds.length });
  }

  /**
   * A failed or expired create is undone like a delete: `unset present` over the node as the create left it, so
   * that every provider removes what it made (an address, a VM, a record). The create's plan and failure are kept.
   */
  private async startRollback(run: JobRun, failed: PlannerState): Promise<PlannerState> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const rollback = run.runtime.planner.start(
      {
        jobId: rollbackPlanId(run.job.id),
        kind: run.job.kind,
        name: run.job.name,
        current: failed.attrs,
        updates: [{ path: PRESENT_ATTR, op: 'unset' }],
      },
      now,
    );
    const step = await store.stepJob(
      run.job.id,
      { plan: failed, rollback, ...(failed.failure === undefined ? {} : { failure: failed.failure }) },
      now,
      {
        type: 'rollback',
        data: {
          state: failed.phase,
          ...(failed.failure === undefined ? {} : { failure: { ...failed.failure } }),
        },
      },
      this.fence,
    );
    run.job = step.job;
    this.announce(step.event);
    run.log.info('create failed; rolling it back', { failure: failed.failure?.message });
    return rollback;
  }

  /**
   * Ends a rolled-back create: the node goes when the rollback removed everything; otherwise it stays as the
   * create left it, and a re-run of the create (or a delete) completes the job.
   */
  private async finishRollback(run: JobRun, rollback: PlannerState): Promise<void> {
    const { store, clock } = this.deps;
    const created = run.job.plan as PlannerState;
    const now = clock.now();
    await store.updateJob(run.job.id, {}, now, this.fence);
    const removed = rollback.phase === 'succeeded';
    if (removed) await store.deleteNode(run.job.kind, run.job.name);
    // Rolled back, the create failed for its own reason; if the rollback failed too, the message says what is left.
    const failure = removed
      ? (created.failure ?? { code: 'INTERNAL' as const, message: 'the create failed' })
      : {
          ...created.failure,
          code: created.failure?.code ?? 'INTERNAL',
          message: `${created.failure?.message ?? 'the create failed'}; the rollback failed too (${
            rollback.failure?.message ?? rollback.phase
          }), so the node stays; create it again or delete it`,
        };
    await this.end(run, created.phase, { ...created, failure }, removed ? null : (run.node.attrs ?? null));
    run.log.info('create rolled back', { removed, failure: failure.message });
  }

  private async writeNode(run: JobRun, attrs: Attrs, now: number): Promise<void> {
    const { store } = this.deps;
    const { job, node } = run;
    // Never a write without a change: the revision is the ETag clients hold.
    if (nodeHas(run, attrs)) return;
    const written =
      node.revision === undefined
        ? await store.insertNode(job.kind, job.name, attrs, now)
        : await store.updateNode(job.kind, job.name, attrs, now, node.revision);
    run.node = { attrs: written.attrs, revision: written.revision };
  }

  private async finish(run: JobRun, state: PlannerState): Promise<void> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const deleted = state.phase === 'succeeded' && state.attrs[PRESENT_ATTR] === undefined;
    // Check the fence before the node changes; the job is marked ended only after, so a crash in between resumes.
    // Without a node change there is nothing to guard: the end itself is a fenced write.
    const changesNode = deleted || (state.phase !== 'cancelled' && !nodeHas(run, state.attrs));
    if (changesNode) await store.updateJob(run.job.id, {}, now, this.fence);
    if (deleted) await store.deleteNode(run.job.kind, run.job.name, run.node.revision);
    else if (state.phase !== 'cancelled') await this.writeNode(run, state.attrs, now);
    traceJob(run.job.id, 'master.node-written');
    await this.end(run, state.phase, state, deleted ? null : state.attrs);
    traceJob(run.job.id, 'master.ended');
    run.log.info('job ended', {
      state: state.phase,
      rounds: state.rounds.length,
      failure: state.failure?.message,
    });
  }

  /** Marks the job ended, audits it and announces it. */
  private async end(run: JobRun, phase: JobState, state: PlannerState, after: Attrs | null): Promise<void> {
    const { store, clock } = this.deps;
    const { job } = run;
    const now = clock.now();
    // One transaction: a master killed here leaves the job running (and resumed) or ended with its event and audit.
    const ended = await store.endJob(
      job.id,
      {
        state: phase,
        endedAt: now,
        ...(job.rollback === undefined ? { plan: state } : {}),
        ...(state.failure === undefined ? {} : { failure: state.failure }),
      },
      now,
      {
        event: {
          type: 'ended',
          data: {
            state: phase,
            rounds: state.rounds.length,
            ...(state.failure === undefined ? {} : { failure: { ...state.failure } }),
          },
        },
        audit: {
          at: now,
          actor: job.actor,
          action: `${job.action}:${phase}`,
          kind: job.kind,
          name: job.name,
          jobId: job.id,
          before: job.before,
          after,
        },
      },
      this.fence,
    );
    this.deps.metrics?.jobEnded(job.kind, phase, state.rounds.length);
    this.announce(ended.event);
    // After the job's end is stored: a crash before this line loses the hook events of this one job (see README).
    await this.deps.hooks?.publishJob(ended.job, after);
  }
}

/** Everything one job's driving needs, and the node as this job last read or wrote it. */
interface JobRun {
  job: JobRecord;
  readonly runtime: KindRuntime;
  readonly runner: JobRunner;
  readonly lock: Held;
  /** Aborts on shutdown or when the node's lock is lost. */
  readonly signal: AbortSignal;
  readonly log: winston.Logger;
  node: { readonly attrs: Attrs | undefined; readonly revision: number | undefined };
}

/** How far back a new master publishes ended jobs' hook events again. */
const REPUBLISH_WINDOW_MS = 10 * 60_000;

/** Most ended jobs a new master looks at to publish again. */
const REPUBLISH_MAX_JOBS = 200;

/** True when the node already has `attrs` as this job last read or wrote it. */
function nodeHas(run: JobRun, attrs: Attrs): boolean {
  const { node } = run;
  return node.attrs !== undefined && (node.attrs === attrs || deepEqual(node.attrs, attrs));
}

/** Times a job is taken up (started or resumed) without a step in between before it is failed. */
const MAX_RESUMES = 3;

/** The plan id of a job's rollback: its tasks and their results carry it. */
function rollbackPlanId(jobId: string): string {
  return `${jobId}.rollback`;
}

/** A create that failed or expired is rolled back. */
function needsRollback(job: JobRecord, state: PlannerState): boolean {
  return job.action === 'create' && (state.phase === 'failed' || state.phase === 'expired');
}

/** The patch that clears the resume count after a step (a step is progress; only crashes in a row count). */
function resetResumes(job: JobRecord): { resumes?: number } {
  return job.resumes === undefined || job.resumes === 0 ? {} : { resumes: 0 };
}

/** The attributes a step writes: during a rollback the node keeps `present` until the rollback has succeeded. */
function nodeAttrs(slot: 'plan' | 'rollback', attrs: Attrs): Attrs {
  return slot === 'plan' || attrs[PRESENT_ATTR] !== undefined ? attrs : { ...attrs, [PRESENT_ATTR]: true };
}

/** Longest run of work between two turns of the event loop. */
const TURN_MS = 10;

/**
 * A function to await between steps: it yields to the event loop (one `setImmediate`) once `TURN_MS` have passed
 * since it last did, and costs nothing otherwise.
 */
function turnTaker(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < TURN_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}
