/**
 * Elections and locks over etcd, after etcd's Go `concurrency` package (`election.go`, `mutex.go`) as ported by
 * microsoft/etcd3 `src/election.ts`: every waiter puts `<root><leaseHex>` on its session lease; the one with the
 * lowest create revision holds; the others each watch only the key just before theirs (no herd) and re-check when
 * it goes. The fencing token is the holder's create revision, so it grows with every new holder, and a leader
 * guards its writes with `Create(<root><leaseHex>) == token`. etcd3's `lock()` does not wait, hence this.
 *
 * A holder steps down (aborts `lost` with `LeaseLostError`) when its session is lost (missed keepalives for TTL/2,
 * expiry, revocation), when its key is deleted, and when the watch on its key fails (DESIGN.md §5); in the last
 * case it deletes its key so that the next waiter does not wait for the lease to expire. When the history its
 * watch resumes from was compacted, it reads its key instead: a key still there with its create revision was never
 * deleted (a deleted key cannot come back with it), so it goes on holding and watches from the read on. That watch
 * opens 200 ms into the hold, from the revision the hold began at: a lock released sooner never opens one. Standing
 * in line and withdrawing go through the coordinator's write pipe (`TxnBatcher`), so a lock taken or released
 * beside other writes (a result handed back, a job queued) shares their transaction.
 */
import { backoffDelay, CancelledError, LeaseLostError } from '@consortium/core';
import type { Held } from '@consortium/core';
import { describeError } from './context.js';
import type { CoordinatorContext } from './context.js';
import { isRetryable, WaitAborted } from './etcd-errors.js';
import type { KeyValue, RangeResult } from './etcd-kv.js';
import { isWaiterKey } from './keys.js';
import { KeyWatch } from './key-watch.js';
import type { Session } from './session.js';
import { abortable, etcdRetry, isAborted, sleep } from './waits.js';

/** One election or lock. */
export interface ContentionSpec {
  /** The key prefix its waiters stand under, ending in `/`. */
  readonly root: string;
  /** `election "e"` or `lock "k"`, for messages. */
  readonly describe: string;
  /** The reason `lost` aborts with on `release()`. */
  readonly releasedMessage: string;
}

/** A waiter's key at the head of the line. */
interface Standing {
  readonly session: Session;
  readonly key: string;
  readonly createRevision: bigint;
  /** The revision at which the key was seen at the head. */
  readonly revision: bigint;
}

/** How long a hold lasts before a watch on its key looks out for the key's deletion. */
const watchGraceMs = 200;

/** Attempts at a guarded delete before the session is given up to make sure the key goes. */
const withdrawAttempts = 3;

/**
 * Waits until this member holds `spec`; rejects with `WaitAborted` when `signal` aborts or the coordinator closes
 * (the candidacy is withdrawn first), or with a non-retryable etcd error.
 */
export async function contend(
  context: CoordinatorContext,
  spec: ContentionSpec,
  signal: AbortSignal,
): Promise<Held> {
  const waitSignal = AbortSignal.any([signal, context.closed]);
  const passOn = await context.turns.take(spec.root, waitSignal);
  // A session whose key may stand after a failed attempt (an answer lost in transit); removed if the caller gives up.
  let mayStand: Session | undefined;
  try {
    for (let failures = 0; ;) {
      if (waitSignal.aborted) throw new WaitAborted();
      const session = await context.sessions.acquire(waitSignal);
      try {
        const standing = await stand(context, spec, session, waitSignal);
        if (standing !== undefined) return hold(context, spec, standing, passOn);
        failures = 0;
      } catch (error) {
        if (error instanceof WaitAborted) throw error;
        if (error instanceof LeaseLostError) {
          context.sessions.end(session, error.message);
          continue;
        }
        if (!isRetryable(error)) throw error;
        mayStand = session;
        failures += 1;
        context.logger.debug(`Waiting for ${spec.describe} failed; retrying`, {
          error: describeError(error),
        });
        await sleep(backoffDelay(etcdRetry, failures), waitSignal);
      }
    }
  } catch (error) {
    if (mayStand !== undefined) await withdrawAny(context, spec.root + mayStand.leaseHex, mayStand);
    passOn();
    throw error;
  }
}

/**
 * Stands in line on `session` and waits to reach the head. Resolves undefined when the session was lost meanwhile
 * (the caller stands again on a new one). On abort the candidacy is withdrawn before `WaitAborted` is thrown; on an
 * etcd error it stays, and standing again on the same session finds and keeps its place.
 */
async function stand(
  context: CoordinatorContext,
  spec: ContentionSpec,
  session: Session,
  signal: AbortSignal,
): Promise<Standing | undefined> {
  const { kv } = context;
  const key = spec.root + session.leaseHex;
  // The line is read in the same transaction: an uncontended lock costs one round trip to take, not two, and that
  // transaction is shared with the process's other writes of the moment.
  const readLine = kv.read(spec.root, { prefix: true, keysOnly: true });
  const stood = await context.writes.run({
    what: `Standing in ${spec.describe}`,
    keys: [key],
    compares: [kv.absent(key)],
    success: [kv.put(key, context.memberId, session.leaseId), readLine],
    checks: [kv.read(key)],
    held: (ranges) => ranges[0]?.kvs.length === 0,
  });
  let createRevision: bigint;
  let firstRead: RangeResult | undefined;
  if (stood.applied) {
    createRevision = stood.revision;
    const line = stood.ranges[0];
    firstRead = line === undefined ? undefined : { ...line, revision: stood.revision };
  } else {
    // Already standing (an earlier answer was lost in transit): keep that place.
    const existing = (await kv.range(key)).kvs[0];
    if (existing === undefined) return undefined;
    createRevision = BigInt(existing.createRevision);
  }

  try {
    for (;;) {
      if (signal.aborted) throw new WaitAborted();
      if (!session.alive) return undefined;
      const line = firstRead ?? (await kv.range(spec.root, { prefix: true, keysOnly: true }));
      firstRead = undefined;
      let mine = false;
      let predecessor: KeyValue | undefined;
      let predecessorRevision = 0n;
      for (const waiter of line.kvs) {
        if (!isWaiterKey(spec.root, waiter.key)) continue;
        const revision = BigInt(waiter.createRevision);
        if (waiter.key === key) mine = revision === createRevision;
        else if (revision < createRevision && revision > predecessorRevision) {
          predecessor = waiter;
          predecessorRevision = revision;
        }
      }
      if (!mine) {
        context.sessions.end(session, `its key in ${spec.describe} vanished`);
        return undefined;
      }
      if (predecessor === undefined) {
        // A caller that gave up while the last read was in flight must not be handed the lead.
        if (isAborted(signal)) throw new WaitAborted();
        return { session, key, createRevision, revision: line.revision };
      }
      const outcome = await waitForDeletion(context, predecessor.key, line.revision + 1n, signal, session);
      if (outcome === 'session-lost') return undefined;
    }
  } catch (error) {
    if (error instanceof WaitAborted) await withdraw(context, key, createRevision, session);
    throw error;
  }
}

/** Waits until `key` is deleted at or after `fromRevision`, or its history is compacted (the caller re-checks). */
function waitForDeletion(
  context: CoordinatorContext,
  key: string,
  fromRevision: bigint,
  signal: AbortSignal,
  session: Session,
): Promise<'gone' | 'session-lost'> {
  let watch: KeyWatch | undefined;
  let onLost: (() => void) | undefined;
  const outcome = new Promise<'gone' | 'session-lost'>((resolve) => {
    onLost = () => {
      resolve('session-lost');
    };
    session.lost.addEventListener('abort', onLost, { once: true });
    watch = new KeyWatch(context.kv, {
      key,
      startRevision: fromRevision,
      only: 'delete',
      onEvents: () => {
        resolve('gone');
      },
      onCompacted: () => {
        resolve('gone');
        return Promise.resolve(undefined);
      },
      logger: context.logger,
    });
    if (!session.alive) resolve('session-lost');
  });
  return abortable(outcome, [signal]).finally(() => {
    if (onLost !== undefined) session.lost.removeEventListener('abort', onLost);
    watch?.close();
  });
}

/** Deletes `key` if it still has `createRevision`; gives up the session when that keeps failing. Never throws. */
async function withdraw(
  context: CoordinatorContext,
  key: string,
  createRevision: bigint,
  session: Session,
): Promise<void> {
  const { kv } = context;
  for (let attempt = 1; attempt <= withdrawAttempts; attempt++) {
    if (!session.alive || context.closed.aborted) return;
    try {
      await context.writes.submit({
        what: `Withdrawing ${key}`,
        keys: [key],
        compares: [kv.createIs(key, createRevision)],
        success: [kv.delete(key)],
        checks: [kv.read(key)],
        held: (ranges) => ranges[0]?.kvs[0]?.createRevision === String(createRevision),
      });
      return;
    } catch (error) {
      if (error instanceof LeaseLostError || !isRetryable(error)) break;
      if (attempt < withdrawAttempts) await sleep(backoffDelay(etcdRetry, attempt)).catch(() => undefined);
    }
  }
  // The key must not outlive its holder's interest; ending the session makes etcd delete it with the lease.
  context.sessions.end(session, `could not delete ${key}`);
}

/** Deletes `key` if it is on `session`'s lease, whatever its create revision (only this caller uses it now). */
async function withdrawAny(context: CoordinatorContext, key: string, session: Session): Promise<void> {
  const { kv } = context;
  if (!session.alive || context.closed.aborted) return;
  try {
    await kv.txn(`Withdrawing ${key}`, [kv.leaseIs(key, session.leaseId)], [kv.delete(key)]);
  } catch {
    context.sessions.end(session, `could not delete ${key}`);
  }
}

/** Builds the `Held` of a waiter that reached the head, and watches that it stays there. */
function hold(
  context: CoordinatorContext,
  spec: ContentionSpec,
  standing: Standing,
  passOn: () => void,
): Held {
  const { session, key, createRevision } = standing;
  const lost = new AbortController();
  let releasing: Promise<void> | undefined;

  // The watch opens only once the hold has lasted `watchGraceMs`: most locks are held for a few calls and would
  // pay a stream opened and cancelled for nothing. It starts from the revision the hold began at, so a deletion in
  // the meantime is still delivered (or, once compacted, found by reading the key): it is noticed later, not missed.
  // The session's keepalives watch for a lost lease from the start. Its callbacks only run once its stream
  // delivers, after everything below is set up.
  let watch: KeyWatch | undefined;
  const openWatch = (): KeyWatch =>
    new KeyWatch(context.kv, {
      key,
      startRevision: standing.revision + 1n,
      only: 'delete',
      onEvents: () => {
        stepDown(new LeaseLostError(`Lost ${spec.describe}: its key was deleted`), false);
      },
      onInterrupted: (error) => {
        stepDown(
          new LeaseLostError(`Lost ${spec.describe}: the watch on its key failed (${error.message})`),
          true,
        );
      },
      onCompacted: async () => {
        // Throws while etcd is unavailable: the watch retries, and the session's keepalives decide meanwhile.
        const current = await context.kv.range(key);
        if (current.kvs[0]?.createRevision !== String(createRevision)) {
          stepDown(new LeaseLostError(`Lost ${spec.describe}: its key was deleted`), false);
          return undefined;
        }
        return current.revision + 1n;
      },
      logger: context.logger,
    });
  const grace = setTimeout(() => {
    watch = openWatch();
  }, watchGraceMs);
  const detach = (): void => {
    clearTimeout(grace);
    watch?.close();
    session.lost.removeEventListener('abort', onSessionLost);
    context.closed.removeEventListener('abort', onClosed);
  };
  const stepDown = (reason: LeaseLostError, deleteKey: boolean): void => {
    if (lost.signal.aborted) return;
    lost.abort(reason);
    detach();
    context.logger.warn(`Lost ${spec.describe}`, { member: context.memberId, reason: reason.message });
    if (deleteKey) void withdraw(context, key, createRevision, session).finally(passOn);
    else passOn();
  };
  const onSessionLost = (): void => {
    stepDown(new LeaseLostError(`Lost ${spec.describe}: ${describeError(session.lost.reason)}`), false);
  };
  const onClosed = (): void => {
    stepDown(new LeaseLostError(`Session of member ${context.memberId} closed`), false);
  };

  session.lost.addEventListener('abort', onSessionLost, { once: true });
  context.closed.addEventListener('abort', onClosed, { once: true });
  if (!session.alive) onSessionLost();
  else if (context.closed.aborted) onClosed();

  return {
    token: String(createRevision),
    lost: lost.signal,
    release: () => {
      releasing ??= (async () => {
        if (lost.signal.aborted) return;
        lost.abort(new CancelledError(spec.releasedMessage));
        detach();
        await withdraw(context, key, createRevision, session);
        passOn();
      })();
      return releasing;
    },
  };
}
