/**
 * The contract every coordinator adapter must honour (DESIGN.md §5), run against two members of one fresh cluster.
 * Beyond the port's doc comments the suite pins down:
 * - fencing tokens are decimal integer strings (etcd create revisions) and grow with every new holder;
 * - `Held.lost` aborts on `release()` too, and with a `LeaseLostError` when the member closes or dies;
 * - waits cut short by their signal reject with `CancelledError` and these messages:
 *   `Campaign for election "<election>" cancelled`, `Waiting for lock "<key>" cancelled`,
 *   `Claim on queue "<queue>" cancelled`; waits cut short by `close()` with `Coordinator <memberId> closed`;
 * - a task is claimed in (priority, enqueue order) order by a lone claimer, and its claims are counted in
 *   `attempt`, including a claim lost with its member; an acked id is forgotten and may be enqueued again;
 * - `claimMany` takes the claimable tasks in the same order, each claimed as by `claim` (lost with its member);
 * - `close()` is safe to call more than once.
 */
import { CancelledError, InputError, LeaseLostError, MAX_CLAIM_BATCH } from '@consortium/core';
import type { ClaimedTask, Coordinator, ErrorInfo, Held, JsonValue, Queue } from '@consortium/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from './helpers.js';

/** Options the contract passes to the cluster factory. */
export interface CoordinatorClusterOptions {
  /** Backoff of failed tasks: `initialMs × factor^(attempt − 1)`, at most `maxMs`; small, so retries are quick. */
  readonly retryBackoff: { readonly initialMs: number; readonly factor: number; readonly maxMs: number };
}

/** Two members of one fresh, empty cluster. */
export interface CoordinatorCluster {
  readonly members: readonly [Coordinator, Coordinator];
  /** Closes whatever is still open and drops the cluster's state. */
  cleanup(): Promise<void>;
  /** Ends member `i`'s session abruptly, as if its process died; the tests that need it are skipped without it. */
  kill?(i: 0 | 1): Promise<void>;
}

/** Makes a fresh cluster for one test. */
export type MakeCoordinatorCluster = (options: CoordinatorClusterOptions) => Promise<CoordinatorCluster>;

/** How long any single wait in the suite may take before the test fails; generous for loaded machines. */
const waitTimeoutMs = 10_000;
/** How long a wait that must not finish is watched; it can only produce false passes, never false failures. */
const pendingCheckMs = 100;
/** Slack for timer and clock rounding when checking that a delay was respected. */
const timerSlackMs = 10;
const retryBackoff = { initialMs: 100, factor: 2, maxMs: 1000 };

/** A promise watched from outside: never unhandled, its state readable at any time. */
interface Watched<T> {
  readonly promise: Promise<T>;
  state(): 'pending' | 'fulfilled' | 'rejected';
}

function watch<T>(promise: Promise<T>): Watched<T> {
  let state: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'fulfilled'),
    () => (state = 'rejected'),
  );
  return { promise, state: () => state };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves like `promise`, or rejects when it takes longer than the suite's wait timeout. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`Timed out after ${waitTimeoutMs} ms waiting for ${what}`));
    }, waitTimeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that `watched` does not settle for a while. */
async function expectPending(watched: Watched<unknown>): Promise<void> {
  await sleep(pendingCheckMs);
  expect(watched.state()).toBe('pending');
}

/** Asserts that `promise` rejects with an instance of `errorClass` carrying exactly `message`. */
async function expectRejection(
  promise: Promise<unknown>,
  errorClass: abstract new (...args: never[]) => Error,
  message: string,
): Promise<void> {
  const error = await within(
    promise.then(
      () => undefined,
      (reason: unknown) => reason,
    ),
    `a ${errorClass.name}`,
  );
  expect(error).toBeInstanceOf(errorClass);
  expect((error as Error).message).toBe(message);
}

function isGreater(token: string, than: string): boolean {
  return BigInt(token) > BigInt(than);
}

/**
 * Registers the coordinator contract suite for one adapter. `makeCluster` makes a fresh cluster with two members
 * for every test and takes the retry backoff the suite relies on.
 */
export function describeCoordinatorContract(name: string, makeCluster: MakeCoordinatorCluster): void {
  describe(`Coordinator contract: ${name}`, () => {
    let cluster: CoordinatorCluster;
    let a: Coordinator;
    let b: Coordinator;
    /** Aborted after each test, so that no wait outlives it. */
    let scope: AbortController;

    beforeEach(async () => {
      cluster = await makeCluster({ retryBackoff });
      [a, b] = cluster.members;
      scope = new AbortController();
    });

    afterEach(async () => {
      scope.abort();
      await cluster.cleanup();
    });

    /** Ends member `i` by closing it or killing it; skips the test when the adapter cannot kill. */
    async function end(i: 0 | 1, how: 'close' | 'kill', skip: (note: string) => never): Promise<void> {
      if (how === 'close') {
        await cluster.members[i].close();
        return;
      }
      if (cluster.kill === undefined) skip(`${name} cannot kill a member`);
      await cluster.kill(i);
    }

    async function expectLost(held: Held): Promise<void> {
      await eventually(() => held.lost.aborted, 'lost to abort');
      expect(held.lost.reason).toBeInstanceOf(LeaseLostError);
    }

    const ends = [
      ['close', 'closes'],
      ['kill', 'is killed'],
    ] as const;

    it('gives members distinct ids and lets close() be called twice', async () => {
      expect(a.memberId).not.toBe(b.memberId);
      await a.close();
      await a.close();
    });

    it("close() rejects the member's pending waits with CancelledError and keeps others' holds", async () => {
      const lock = await within(a.lock('k', scope.signal), 'a to lock');
      const leadership = await within(a.campaign('e', scope.signal), 'a to lead');
      const waits: Promise<unknown>[] = [
        b.lock('k', scope.signal),
        b.campaign('e', scope.signal),
        b.queue('q').claim('w', scope.signal),
      ];
      for (const wait of waits) await expectPending(watch(wait));
      await b.close();
      for (const wait of waits)
        await expectRejection(wait, CancelledError, `Coordinator ${b.memberId} closed`);
      expect(lock.lost.aborted).toBe(false);
      expect(leadership.lost.aborted).toBe(false);
      await lock.release();
      await within(a.lock('k', scope.signal), 'a to lock again');
    });

    describe('election', () => {
      it('has one leader at a time and hands over on release with a greater token', async () => {
        const first = await within(a.campaign('e', scope.signal), 'a to lead');
        const second = watch(b.campaign('e', scope.signal));
        await expectPending(second);
        expect(first.lost.aborted).toBe(false);

        await first.release();
        expect(first.lost.aborted).toBe(true);
        const next = await within(second.promise, 'b to lead');
        expect(isGreater(next.token, first.token)).toBe(true);
        expect(next.lost.aborted).toBe(false);

        const third = watch(a.campaign('e', scope.signal));
        await expectPending(third);
        await next.release();
        const last = await within(third.promise, 'a to lead again');
        expect(isGreater(last.token, next.token)).toBe(true);
      });

      it('ignores a second release, which must not unseat the next leader', async () => {
        const first = await within(a.campaign('e', scope.signal), 'a to lead');
        await first.release();
        const next = await within(b.campaign('e', scope.signal), 'b to lead');
        await first.release();
        expect(next.lost.aborted).toBe(false);
        await expectPending(watch(a.campaign('e', scope.signal)));
      });

      for (const [how, verb] of ends) {
        it(`hands over and aborts lost when the leader's member ${verb}`, async ({ skip }) => {
          const first = await within(a.campaign('e', scope.signal), 'a to lead');
          const second = watch(b.campaign('e', scope.signal));
          await expectPending(second);
          await end(0, how, skip);
          await expectLost(first);
          const next = await within(second.promise, 'b to lead');
          expect(isGreater(next.token, first.token)).toBe(true);
          expect(next.lost.aborted).toBe(false);
        });
      }

      it('keeps separate elections apart', async () => {
        await within(a.campaign('e1', scope.signal), 'a to lead e1');
        const other = await within(b.campaign('e2', scope.signal), 'b to lead e2');
        expect(other.lost.aborted).toBe(false);
      });

      it('rejects an aborted campaign with CancelledError and withdraws the candidacy', async () => {
        const first = await within(a.campaign('e', scope.signal), 'a to lead');
        const controller = new AbortController();
        const second = b.campaign('e', controller.signal);
        await expectPending(watch(second));
        controller.abort();
        await expectRejection(second, CancelledError, 'Campaign for election "e" cancelled');

        await first.release();
        const again = await within(a.campaign('e', scope.signal), 'a to lead again');
        expect(isGreater(again.token, first.token)).toBe(true);
      });

      it('rejects a campaign with an already aborted signal without standing', async () => {
        await expectRejection(
          a.campaign('e', AbortSignal.abort()),
          CancelledError,
          'Campaign for election "e" cancelled',
        );
        await within(b.campaign('e', scope.signal), 'b to lead');
      });
    });

    describe('locks', () => {
      it('excludes other members until released, then passes on with a greater token', async () => {
        const first = await within(a.lock('node/n1', scope.signal), 'a to lock');
        const second = watch(b.lock('node/n1', scope.signal));
        await expectPending(second);
        await first.release();
        expect(first.lost.aborted).toBe(true);
        const next = await within(second.promise, 'b to lock');
        expect(isGreater(next.token, first.token)).toBe(true);
        expect(next.lost.aborted).toBe(false);
      });

      it('serves waiters in arrival order: a holder that releases and re-locks queues behind', async () => {
        const first = await within(a.lock('k', scope.signal), 'a to lock');
        const second = watch(b.lock('k', scope.signal));
        await expectPending(second);
        await first.release();
        const third = watch(a.lock('k', scope.signal));
        const next = await within(second.promise, 'b to lock');
        await expectPending(third);
        await next.release();
        const last = await within(third.promise, 'a to lock again');
        expect(isGreater(last.token, next.token)).toBe(true);
      });

      it('does not block on other keys, nor on an election of the same name', async () => {
        await within(a.lock('k1', scope.signal), 'a to lock k1');
        await within(b.lock('k2', scope.signal), 'b to lock k2');
        await within(b.campaign('k1', scope.signal), 'b to lead k1');
      });

      it('rejects an aborted lock() with CancelledError and leaves no waiter behind', async () => {
        const first = await within(a.lock('k', scope.signal), 'a to lock');
        const controller = new AbortController();
        const second = b.lock('k', controller.signal);
        await expectPending(watch(second));
        controller.abort();
        await expectRejection(second, CancelledError, 'Waiting for lock "k" cancelled');

        await first.release();
        await within(a.lock('k', scope.signal), 'a to lock again');
        await expectRejection(
          b.lock('k', AbortSignal.abort()),
          CancelledError,
          'Waiting for lock "k" cancelled',
        );
      });

      for (const [how, verb] of ends) {
        it(`aborts lost and passes the lock on when the holder's member ${verb}`, async ({ skip }) => {
          const first = await within(a.lock('k', scope.signal), 'a to lock');
          const second = watch(b.lock('k', scope.signal));
          await expectPending(second);
          await end(0, how, skip);
          await expectLost(first);
          const next = await within(second.promise, 'b to lock');
          expect(isGreater(next.token, first.token)).toBe(true);
        });
      }
    });

    describe('queue', () => {
      const failure: ErrorInfo = { code: 'BACKEND_UNAVAILABLE', message: 'bmc timed out', retryable: true };

      function claim(queue: Queue, worker = 'w'): Promise<ClaimedTask> {
        return within(queue.claim(worker, scope.signal), 'a claim');
      }

      it('enqueues an id once: while queued, claimed or dead; again after an ack', async () => {
        const qa = a.queue('q');
        const qb = b.queue('q');
        expect(await qa.enqueue({ id: 't1', payload: { n: 1 } })).toBe(true);
        expect(await qb.enqueue({ id: 't1', payload: { n: 2 } })).toBe(false);
        const task = await claim(qb);
        expect(task).toEqual({ id: 't1', payload: { n: 1 }, attempt: 1, claim: task.claim });
        expect(await qa.enqueue({ id: 't1', payload: { n: 3 } })).toBe(false);
        expect(await qb.ack(task)).toBe(true);
        expect(await qa.enqueue({ id: 't1', payload: { n: 4 } })).toBe(true);
        expect((await claim(qa)).payload).toEqual({ n: 4 });
      });

      it('makes claim() wait until a task arrives', async () => {
        const pending = b.queue('q').claim('w', scope.signal);
        await expectPending(watch(pending));
        const payload: JsonValue = { node: 'n1', steps: [1, 'two', null, { ok: true }] };
        await a.queue('q').enqueue({ id: 't1', payload });
        const task = await within(pending, 'the claim');
        expect(task).toEqual({ id: 't1', payload, attempt: 1, claim: task.claim });
        expect(typeof task.claim).toBe('string');
      });

      it('claims by priority, then in enqueue order', async () => {
        const q = a.queue('q');
        await q.enqueue({ id: 'default-1', payload: null });
        await q.enqueue({ id: 'urgent-1', payload: null, priority: 10 });
        await q.enqueue({ id: 'low', payload: null, priority: 200 });
        await q.enqueue({ id: 'urgent-2', payload: null, priority: 10 });
        await q.enqueue({ id: 'default-2', payload: null, priority: 100 });
        const order: string[] = [];
        for (let i = 0; i < 5; i++) order.push((await claim(b.queue('q'))).id);
        expect(order).toEqual(['urgent-1', 'urgent-2', 'default-1', 'default-2', 'low']);
      });

      it('keeps a task with notBefore back until then, without blocking ready tasks', async () => {
        const q = a.queue('q');
        const notBefore = Date.now() + 500;
        await q.enqueue({ id: 'later', payload: null, notBefore });
        await q.enqueue({ id: 'now', payload: null });
        expect(await q.stats()).toEqual({ ready: 1, delayed: 1, claimed: 0, dead: 0 });
        expect((await claim(b.queue('q'))).id).toBe('now');
        const later = await claim(b.queue('q'));
        expect(later.id).toBe('later');
        expect(Date.now()).toBeGreaterThanOrEqual(notBefore - timerSlackMs);
      });

      it('removes a task on ack and refuses a second ack or fail', async () => {
        const q = a.queue('q');
        await q.enqueue({ id: 't1', payload: null });
        const task = await claim(q);
        expect(await q.stats()).toEqual({ ready: 0, delayed: 0, claimed: 1, dead: 0 });
        expect(await b.queue('q').ack(task)).toBe(true);
        expect(await q.stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
        expect(await q.ack(task)).toBe(false);
        expect(await q.fail(task, failure)).toBe('lost');
        expect(await q.deadLetters()).toEqual([]);
      });

      it('discards acks and fails that carry a stale or unknown claim', async () => {
        const q = a.queue('q');
        await q.enqueue({ id: 't1', payload: null });
        const task = await claim(q);
        expect(await q.ack({ ...task, claim: `${task.claim}0` })).toBe(false);
        expect(await q.fail({ ...task, claim: `${task.claim}0` }, failure)).toBe('lost');
        expect(await q.ack({ ...task, id: 'unknown' })).toBe(false);
        expect(await q.stats()).toEqual({ ready: 0, delayed: 0, claimed: 1, dead: 0 });
        expect(await q.ack(task)).toBe(true);
      });

      it('retries a failed task with exponential backoff, then dead-letters it', async () => {
        const qa = a.queue('q');
        const qb = b.queue('q');
        const payload = { node: 'n1' };
        await qa.enqueue({ id: 'flaky', payload, maxAttempts: 3 });

        const first = await claim(qa);
        expect(first.attempt).toBe(1);
        let failedAt = Date.now();
        expect(await qa.fail(first, failure)).toBe('retry');
        expect(await qa.stats()).toEqual({ ready: 0, delayed: 1, claimed: 0, dead: 0 });
        expect(await qa.ack(first)).toBe(false);

        const second = await claim(qb);
        expect(Date.now() - failedAt).toBeGreaterThanOrEqual(retryBackoff.initialMs - timerSlackMs);
        expect(second).toEqual({ id: 'flaky', payload, attempt: 2, claim: second.claim });
        expect(second.claim).not.toBe(first.claim);
        expect(await qa.fail(first, failure)).toBe('lost');
        failedAt = Date.now();
        expect(await qb.fail(second, failure)).toBe('retry');

        const third = await claim(qa);
        const secondDelay = retryBackoff.initialMs * retryBackoff.factor;
        expect(Date.now() - failedAt).toBeGreaterThanOrEqual(secondDelay - timerSlackMs);
        expect(third.attempt).toBe(3);
        const lastError: ErrorInfo = { code: 'INTERNAL', message: 'gave up', retryable: false };
        expect(await qa.fail(third, lastError)).toBe('dead');

        expect(await qb.stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 1 });
        expect(await qb.deadLetters()).toEqual([{ id: 'flaky', payload, attempts: 3, error: lastError }]);
        expect(await qb.enqueue({ id: 'flaky', payload: null })).toBe(false);
        expect(await qa.ack(third)).toBe(false);
      });

      for (const [how, verb] of ends) {
        it(`returns a task claimed by a member that ${verb} and discards the old claim`, async ({ skip }) => {
          const qa = a.queue('q');
          const qb = b.queue('q');
          await qa.enqueue({ id: 't1', payload: 'p' });
          const orphan = await claim(qa);
          await end(0, how, skip);
          const task = await claim(qb);
          expect(task).toEqual({ id: 't1', payload: 'p', attempt: 2, claim: task.claim });
          expect(task.claim).not.toBe(orphan.claim);
          expect(await qb.ack(orphan)).toBe(false);
          expect(await qb.fail(orphan, failure)).toBe('lost');
          expect(await qb.ack(task)).toBe(true);
        });
      }

      for (const [how, verb] of ends) {
        it(`returns every task of a batch claimed by a member that ${verb}`, async ({ skip }) => {
          const qa = a.queue('q');
          await qa.enqueue({ id: 't1', payload: 1 });
          await qa.enqueue({ id: 't2', payload: 2 });
          const orphans = await within(qa.claimMany('w', 4, scope.signal), 'a batch claim');
          expect(orphans.map((task) => task.id)).toEqual(['t1', 't2']);
          await end(0, how, skip);
          const qb = b.queue('q');
          const again = [await claim(qb), await claim(qb)];
          expect(again.map((task) => [task.id, task.attempt])).toEqual([
            ['t1', 2],
            ['t2', 2],
          ]);
          for (const orphan of orphans) expect(await qb.ack(orphan)).toBe(false);
          for (const task of again) expect(await qb.ack(task)).toBe(true);
        });
      }

      it('claims a batch in dispatch order, each task acked or failed on its own', async () => {
        const qa = a.queue('q');
        const qb = b.queue('q');
        await qa.enqueue({ id: 'default-1', payload: 'd1' });
        await qa.enqueue({ id: 'urgent', payload: 'u', priority: 10 });
        await qa.enqueue({ id: 'default-2', payload: 'd2' });
        await qa.enqueue({ id: 'later', payload: null, notBefore: Date.now() + 60_000 });
        const first = await within(qb.claimMany('w', 2, scope.signal), 'a batch claim');
        expect(first.map(({ id, payload, attempt }) => ({ id, payload, attempt }))).toEqual([
          { id: 'urgent', payload: 'u', attempt: 1 },
          { id: 'default-1', payload: 'd1', attempt: 1 },
        ]);
        const rest = await within(qb.claimMany('w', 8, scope.signal), 'a batch claim');
        expect(rest.map((task) => task.id)).toEqual(['default-2']);
        expect(await qa.stats()).toEqual({ ready: 0, delayed: 1, claimed: 3, dead: 0 });
        const [urgent, default1] = first as [ClaimedTask, ClaimedTask];
        expect(await qa.ack(urgent)).toBe(true);
        expect(await qa.ack(urgent)).toBe(false);
        expect(await qa.fail(default1, failure)).toBe('retry');
        expect(await qb.ack(rest[0] as ClaimedTask)).toBe(true);
        // default-1 waits out its retry delay (100 ms) in delayed/, or, on a busy machine, is already due and ready.
        const { ready, delayed, claimed, dead } = await qa.stats();
        expect({ waiting: ready + delayed, claimed, dead }).toEqual({ waiting: 2, claimed: 0, dead: 0 });
        expect(delayed).toBeGreaterThanOrEqual(1);
      });

      it('makes claimMany() wait for a first task and refuses a batch size out of range', async () => {
        const pending = watch(b.queue('q').claimMany('w', 3, scope.signal));
        await expectPending(pending);
        await a.queue('q').enqueue({ id: 't1', payload: null });
        const batch = await within(pending.promise, 'the batch claim');
        expect(batch.map((task) => task.id)).toEqual(['t1']);
        for (const max of [0, 1.5, MAX_CLAIM_BATCH + 1]) {
          await expectRejection(
            a.queue('q').claimMany('w', max, scope.signal),
            InputError,
            `claimMany takes 1 to ${MAX_CLAIM_BATCH} tasks, got ${max}`,
          );
        }
        const controller = new AbortController();
        const aborted = b.queue('q').claimMany('w', 2, controller.signal);
        await expectPending(watch(aborted));
        controller.abort();
        await expectRejection(aborted, CancelledError, 'Claim on queue "q" cancelled');
        await a.queue('q').enqueue({ id: 't2', payload: null });
        expect(await a.queue('q').stats()).toEqual({ ready: 1, delayed: 0, claimed: 1, dead: 0 });
      });

      it('counts ready, delayed, claimed and dead tasks', async () => {
        const q = a.queue('q');
        await q.enqueue({ id: 'dead', payload: null, maxAttempts: 1 });
        expect(await q.fail(await claim(q), failure)).toBe('dead');
        await q.enqueue({ id: 'claimed', payload: null });
        expect((await claim(q)).id).toBe('claimed');
        await q.enqueue({ id: 'ready', payload: null });
        await q.enqueue({ id: 'delayed', payload: null, notBefore: Date.now() + 60_000 });
        expect(await b.queue('q').stats()).toEqual({ ready: 1, delayed: 1, claimed: 1, dead: 1 });
        expect(await b.queue('other').stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
        expect(await q.deadLetters()).toEqual([{ id: 'dead', payload: null, attempts: 1, error: failure }]);
      });

      it('rejects an aborted claim with CancelledError and leaves the next task to others', async () => {
        const controller = new AbortController();
        const pending = b.queue('q').claim('w', controller.signal);
        await expectPending(watch(pending));
        controller.abort();
        await expectRejection(pending, CancelledError, 'Claim on queue "q" cancelled');
        await a.queue('q').enqueue({ id: 't1', payload: null });
        expect(await a.queue('q').stats()).toEqual({ ready: 1, delayed: 0, claimed: 0, dead: 0 });
        expect((await claim(a.queue('q'))).id).toBe('t1');
        await expectRejection(
          b.queue('q').claim('w', AbortSignal.abort()),
          CancelledError,
          'Claim on queue "q" cancelled',
        );
      });

      it('keeps queues apart', async () => {
        await a.queue('q1').enqueue({ id: 't1', payload: null });
        const pending = watch(b.queue('q2').claim('w', scope.signal));
        await expectPending(pending);
        expect((await claim(b.queue('q1'))).id).toBe('t1');
      });

      it('never hands one task to two of many concurrent claimers', { timeout: 60_000 }, async () => {
        const total = 200;
        const stop = new AbortController();
        const claimed: string[] = [];
        const acked: string[] = [];
        const loop = async (queue: Queue, worker: string): Promise<void> => {
          for (;;) {
            let task: ClaimedTask;
            try {
              task = await queue.claim(worker, stop.signal);
            } catch (error) {
              if (stop.signal.aborted && error instanceof CancelledError) return;
              throw error;
            }
            claimed.push(task.id);
            expect(task.attempt).toBe(1);
            expect(await queue.ack(task)).toBe(true);
            acked.push(task.id);
            if (acked.length === total) stop.abort();
          }
        };
        // Batches too: their claims race the single ones, and their acks run side by side.
        const batchLoop = async (queue: Queue, worker: string): Promise<void> => {
          for (;;) {
            let tasks: readonly ClaimedTask[];
            try {
              tasks = await queue.claimMany(worker, 4, stop.signal);
            } catch (error) {
              if (stop.signal.aborted && error instanceof CancelledError) return;
              throw error;
            }
            expect(tasks.length).toBeGreaterThan(0);
            claimed.push(...tasks.map((task) => task.id));
            for (const task of tasks) expect(task.attempt).toBe(1);
            expect(await Promise.all(tasks.map((task) => queue.ack(task)))).toEqual(tasks.map(() => true));
            acked.push(...tasks.map((task) => task.id));
            if (acked.length === total) stop.abort();
          }
        };
        const loops = watch(
          Promise.all([
            loop(a.queue('q'), 'a1'),
            loop(a.queue('q'), 'a2'),
            loop(b.queue('q'), 'b1'),
            loop(b.queue('q'), 'b2'),
            batchLoop(a.queue('q'), 'a3'),
            batchLoop(b.queue('q'), 'b3'),
          ]),
        );
        const ids = Array.from({ length: total }, (_, i) => `t${String(i).padStart(3, '0')}`);
        try {
          for (let i = 0; i < total; i += 20) {
            const batch = ids.slice(i, i + 20);
            const results = await Promise.all(
              batch.map((id, j) => (j % 2 === 0 ? a : b).queue('q').enqueue({ id, payload: { id } })),
            );
            expect(results).toEqual(batch.map(() => true));
          }
          await within(loops.promise, 'every task to be acked');
        } finally {
          stop.abort();
        }
        expect([...claimed].sort()).toEqual(ids);
        expect([...acked].sort()).toEqual(ids);
        expect(await a.queue('q').stats()).toEqual({ ready: 0, delayed: 0, claimed: 0, dead: 0 });
      });
    });

    describe('notifications', () => {
      type Received = [string, JsonValue][];

      function collect(coordinator: Coordinator, prefix: string): { got: Received; unsubscribe: () => void } {
        const got: Received = [];
        const unsubscribe = coordinator.subscribe(prefix, (topic, message) => {
          got.push([topic, message]);
        });
        return { got, unsubscribe };
      }

      const has = (got: Received, topic: string): boolean => got.some(([t]) => t === topic);

      /** Notifies a probe topic until every receiver saw it, so that subscriptions are known to be live. */
      async function connected(from: Coordinator, topic: string, receivers: Received[]): Promise<void> {
        await eventually(
          async () => {
            await from.notify(topic, null);
            return receivers.every((got) => has(got, topic));
          },
          `subscriptions to receive ${topic}`,
          { everyMs: 50 },
        );
      }

      it('delivers to matching prefixes on every member, messages intact', async () => {
        const onA = collect(a, 'jobs/');
        const onB = collect(b, 'jobs/');
        const narrow = collect(b, 'jobs/j2');
        await connected(a, 'jobs/probe', [onA.got, onB.got]);
        await connected(a, 'jobs/j2-probe', [narrow.got]);

        await b.notify('other/j1', { wrong: true });
        await b.notify('jobs-x', { wrong: true });
        const message = { id: 'j1', state: 'running', steps: [1, 'two', null, { ok: true }] };
        await b.notify('jobs/j1', message);
        await eventually(() => has(onA.got, 'jobs/j1') && has(onB.got, 'jobs/j1'), 'both members to receive');

        for (const { got } of [onA, onB]) {
          expect(got).toContainEqual(['jobs/j1', message]);
          expect(got.every(([topic]) => topic.startsWith('jobs/'))).toBe(true);
        }
        await a.notify('jobs/j2', 2);
        await eventually(() => has(narrow.got, 'jobs/j2'), 'the narrow subscription to receive');
        expect(narrow.got).toContainEqual(['jobs/j2', 2]);
        expect(narrow.got.every(([topic]) => topic.startsWith('jobs/j2'))).toBe(true);
      });

      it('stops delivery to an unsubscribed listener only', async () => {
        const kept = collect(b, 'jobs/');
        const dropped = collect(b, 'jobs/');
        await connected(a, 'jobs/probe', [kept.got, dropped.got]);
        dropped.unsubscribe();
        dropped.unsubscribe();
        await a.notify('jobs/j1', 1);
        await eventually(() => has(kept.got, 'jobs/j1'), 'the kept listener to receive');
        expect(has(dropped.got, 'jobs/j1')).toBe(false);
      });
    });
  });
}
