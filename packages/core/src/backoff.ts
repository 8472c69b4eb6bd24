/**
 * The one exponential backoff of the project: the planner's task retries and idle waits, the queues' failed tasks,
 * the coordinators' reconnect and repair loops, the master's job resumes and the worker's result hand-back all
 * compute their pauses here. Pure: the jitter's randomness is a parameter.
 */
import { InputError } from './errors.js';

/** Exponential backoff: `initialMs × factor^(n − 1)`, capped at `maxMs`, optionally spread by ±`jitter`. */
export interface BackoffPolicy {
  /** Delay before the second attempt (after the first failure). */
  readonly initialMs: number;
  /** Growth per further attempt; 1 keeps the delay constant. */
  readonly factor: number;
  /** Upper bound of the delay before jitter. */
  readonly maxMs: number;
  /**
   * Fraction in [0, 1) by which each delay is spread at random (0.25: ±25 %), so that many retriers that failed
   * together do not retry together. Default 0: the delay is exact (what persisted plans and tests need).
   */
  readonly jitter?: number;
}

/** The backoff of queue tasks that fail when none is configured: 1 s, doubling, at most 5 minutes. */
export const DEFAULT_TASK_RETRY_BACKOFF: BackoffPolicy = { initialMs: 1000, factor: 2, maxMs: 300_000 };

/**
 * The delay before attempt `n + 1` after `n` failures (`n` is 1-based: 1 gives `initialMs`). `random` returns a
 * number in [0, 1) and is only called when the policy has jitter.
 */
export function backoffDelay(policy: BackoffPolicy, n: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, n - 1));
  const jitter = policy.jitter ?? 0;
  return jitter === 0 ? base : base * (1 - jitter + 2 * jitter * random());
}

/** Checks a backoff policy; throws `InputError` naming the field as `<name>.<field>` when one is out of range. */
export function validateBackoff(policy: BackoffPolicy, name = 'backoff'): BackoffPolicy {
  const { initialMs, factor, maxMs, jitter } = policy;
  if (!Number.isFinite(initialMs) || initialMs < 0) {
    throw new InputError(`${name}.initialMs must be a finite number >= 0, got ${initialMs}`);
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new InputError(`${name}.factor must be a finite number >= 1, got ${factor}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new InputError(`${name}.maxMs must be a finite number >= initialMs, got ${maxMs}`);
  }
  if (jitter !== undefined && !(Number.isFinite(jitter) && jitter >= 0 && jitter < 1)) {
    throw new InputError(`${name}.jitter must be a number in [0, 1), got ${jitter}`);
  }
  return policy;
}
