/**
 * The batch runner: while this process leads, it releases batches' held jobs to the master, never more of a batch
 * queued or running than its concurrency, stops releasing when the failure budget is spent or the batch is
 * cancelled (the held jobs end `cancelled`, with the reason), and otherwise leaves the jobs to the master as any
 * other job. It keeps nothing it cannot rebuild: each pass reads the held jobs from the store (level-based), so a
 * new leader carries on every batch where the old one left it. Its writes carry the leadership's fencing token.
 */
import type { Clock, Coordinator, JobRecord, JobState, Store } from '@consortium/core';
import type winston from 'winston';
import { BATCH_TOPIC, batchJobId, batchOfJobId, budgetSpentMessage } from './batches.js';
import {
  JOB_QUEUE,
  JOB_TOPIC_PREFIX,
  decodeJobNotice,
  encodeJobNotice,
  jobOfTopic,
  jobTopic,
} from './protocol.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';

/** Dependencies of the batch runner. */
export interface BatchRunnerDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly clock: Clock;
  readonly logger: winston.Logger;
  /** How often it looks without being woken (a job's end or a new batch wakes it at once); default 2 s. */
  readonly intervalMs?: number;
}

const TERMINAL: readonly JobState[] = ['succeeded', 'failed', 'expired', 'cancelled'];

/** The leader-only runnable that drives batches. */
export class BatchRunner implements Runnable {
  readonly name = 'batches';
  readonly needsLeader = true;
  /** Jobs known to have ended (an ended job never changes): spares reading them again on every pass. */
  private readonly ended = new Map<string, JobState>();
  private fence = '0';
  private wakeUp: (() => void) | undefined;
  private woken = false;

  /** Whether something woke the runner during the last pass (a read after awaits, not narrowed away). */
  private wasWoken(): boolean {
    return this.woken;
  }

  /** Makes the runner over its dependencies. */
  constructor(private readonly deps: BatchRunnerDeps) {}

  async run(signal: AbortSignal, leadership?: { readonly token: string }): Promise<void> {
    const { coordinator, logger } = this.deps;
    this.fence = leadership?.token ?? '0';
    this.ended.clear();
    const wake = (): void => {
      this.woken = true;
      const resolve = this.wakeUp;
      this.wakeUp = undefined;
      resolve?.();
    };
    const unsubscribeJobs = coordinator.subscribe(JOB_TOPIC_PREFIX, (topic, message) => {
      const notice = decodeJobNotice(message);
      if (
        notice?.kind === 'event' &&
        notice.type === 'ended' &&
        batchOfJobId(jobOfTopic(topic)) !== undefined
      )
        wake();
    });
    const unsubscribeBatches = coordinator.subscribe(BATCH_TOPIC, wake);
    const onAbort = (): void => {
      wake();
    };
    signal.addEventListener('abort', onAbort);
    try {
      while (!stopped(signal)) {
        this.woken = false;
        try {
          await this.pass(signal);
        } catch (error) {
          if (stopped(signal)) break;
          logger.warn('batch pass failed; trying again', { error: (error as Error).message });
        }
        if (this.wasWoken() || stopped(signal)) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.deps.intervalMs ?? 2000);
          this.wakeUp = done;
          function done(): void {
            clearTimeout(timer);
            resolve();
          }
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      unsubscribeJobs();
      unsubscribeBatches();
    }
  }

  /** One look at every batch that still holds jobs. */
  private async pass(signal: AbortSignal): Promise<void> {
    const held = new Map<string, JobRecord[]>();
    let cursor: string | undefined;
    do {
      const page = await this.deps.store.listJobs({
        states: ['held'],
        limit: 500,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const job of page.items) {
        if (job.batch === undefined) continue;
        const list = held.get(job.batch.id) ?? [];
        list.push(job);
        held.set(job.batch.id, list);
      }
      cursor = page.next;
    } while (cursor !== undefined);
    for (const jobs of held.values()) {
      if (stopped(signal)) return;
      await this.drive(jobs);
    }
  }

  /** Releases what the batch's concurrency allows, or ends its held jobs when it is cancelled or out of budget. */
  private async drive(held: JobRecord[]): Promise<void> {
    const ref = held[0]?.batch;
    if (ref === undefined) return;
    held.sort((a, b) => (a.batch?.index ?? 0) - (b.batch?.index ?? 0));
    const heldIds = new Set(held.map((job) => job.id));
    let active = 0;
    let failures = 0;
    let cancelledBy: string | undefined;
    for (let index = 0; index < ref.total; index++) {
      const id = batchJobId(ref.id, index);
      if (heldIds.has(id)) continue;
      let state = this.ended.get(id);
      if (state === undefined) {
        const job = await this.deps.store.getJob(id);
        if (job === undefined) continue;
        state = job.state;
        if (TERMINAL.includes(state)) this.ended.set(id, state);
        if (job.cancelRequested !== undefined) cancelledBy ??= job.cancelRequested.by;
      }
      if (state === 'queued' || state === 'running') active += 1;
      if (state === 'failed' || state === 'expired') failures += 1;
    }
    const cancel = held.find((job) => job.cancelRequested !== undefined)?.cancelRequested?.by ?? cancelledBy;
    if (cancel !== undefined) {
      for (const job of held) await this.endHeld(job, `cancelled by ${cancel} before it started`);
      this.deps.logger.info('batch cancelled', { batch: ref.id, notStarted: held.length });
      return;
    }
    if (failures >= ref.failureBudget) {
      for (const job of held) await this.endHeld(job, budgetSpentMessage(ref.failureBudget));
      this.deps.logger.warn('batch stopped: failure budget spent', {
        batch: ref.id,
        failures,
        notStarted: held.length,
      });
      return;
    }
    for (const job of held.slice(0, Math.max(0, ref.concurrency - active))) await this.release(job);
  }

  /** Hands a held job to the master: queued in the store first (the master resumes queued jobs), then the queue. */
  private async release(job: JobRecord): Promise<void> {
    const { store, coordinator, clock } = this.deps;
    const now = clock.now();
    await store.updateJob(job.id, { state: 'queued' }, now, this.fence);
    const event = await store.appendEvent(
      job.id,
      'state',
      { state: 'queued', batch: job.batch?.id ?? '' },
      now,
    );
    await coordinator.notify(
      jobTopic(job.id),
      encodeJobNotice({ kind: 'event', seq: event.seq, type: 'state' }),
    );
    await coordinator.queue(JOB_QUEUE).enqueue({ id: job.id, payload: job.id });
  }

  /** Ends a held job that will not run, with its `ended` event. */
  private async endHeld(job: JobRecord, message: string): Promise<void> {
    const { store, coordinator, clock } = this.deps;
    const now = clock.now();
    const failure = { code: 'CANCELLED' as const, message };
    const { event } = await store.endJob(
      job.id,
      { state: 'cancelled', endedAt: now, failure },
      now,
      { event: { type: 'ended', data: { state: 'cancelled', failure: { ...failure } } } },
      this.fence,
    );
    this.ended.set(job.id, 'cancelled');
    await coordinator.notify(
      jobTopic(job.id),
      encodeJobNotice({ kind: 'event', seq: event.seq, type: 'ended' }),
    );
  }
}
