/** What the parts of one etcd coordinator share. */
import { CancelledError } from '@consortium/core';
import type { Logger } from '@consortium/core';
import { WaitAborted } from './etcd-errors.js';
import type { EtcdKv } from './etcd-kv.js';
import type { LocalTurns } from './local-turns.js';
import type { SessionKeeper } from './session.js';
import type { TxnBatcher } from './txn-batcher.js';

/** The shared state of one coordinator, handed to elections, locks, queues and subscriptions. */
export interface CoordinatorContext {
  readonly kv: EtcdKv;
  readonly sessions: SessionKeeper;
  readonly turns: LocalTurns;
  /** The one pipe of guarded writes: those made together go as one transaction. */
  readonly writes: TxnBatcher;
  readonly memberId: string;
  readonly logger: Logger;
  /** Aborts when the coordinator closes. */
  readonly closed: AbortSignal;
}

/** The error of waits cut short and calls made after `close()`. */
export function closedError(context: CoordinatorContext): CancelledError {
  return new CancelledError(`Coordinator ${context.memberId} closed`);
}

/** Throws `closedError` once the coordinator is closed. */
export function assertOpen(context: CoordinatorContext): void {
  if (context.closed.aborted) throw closedError(context);
}

/**
 * The error a public wait rejects with: `Coordinator <id> closed` once closed, `cancelled` when the caller's signal
 * aborted, else `error` itself (already translated).
 */
export function waitError(
  context: CoordinatorContext,
  error: unknown,
  signal: AbortSignal,
  cancelled: string,
): Error {
  if (context.closed.aborted) return closedError(context);
  if (signal.aborted) return new CancelledError(cancelled, { cause: signal.reason });
  if (error instanceof WaitAborted) return new CancelledError(cancelled);
  return error instanceof Error ? error : new Error(String(error));
}

/** Describes an error for a log line. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
