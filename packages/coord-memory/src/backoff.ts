/** Exponential backoff of failed queue tasks. */
import { InputError } from '@consortium/core';

/** How long a failed task waits before it is claimable again: `initialMs × factor^(attempt − 1)`, capped. */
export interface RetryBackoff {
  /** Delay after the first failed attempt. */
  readonly initialMs: number;
  /** Growth per further attempt; 1 keeps the delay constant. */
  readonly factor: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
}

/** The backoff used when none is given: 1 s, doubling, at most 5 minutes. */
export const defaultRetryBackoff: RetryBackoff = { initialMs: 1000, factor: 2, maxMs: 300_000 };

/** Checks a backoff; throws `InputError` when a field is out of range. */
export function validateRetryBackoff(backoff: RetryBackoff): RetryBackoff {
  const { initialMs, factor, maxMs } = backoff;
  if (!Number.isFinite(initialMs) || initialMs < 0) {
    throw new InputError(`retryBackoff.initialMs must be a finite number >= 0, got ${initialMs}`);
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new InputError(`retryBackoff.factor must be a finite number >= 1, got ${factor}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new InputError(`retryBackoff.maxMs must be a finite number >= initialMs, got ${maxMs}`);
  }
  return backoff;
}

/** The delay before a task that failed on `attempt` (1-based) is claimable again. */
export function retryDelay(backoff: RetryBackoff, attempt: number): number {
  const exponent = Math.max(0, attempt - 1);
  return Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** exponent);
}
