import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_TASK_RETRY_BACKOFF, validateBackoff } from './backoff.js';
import { InputError } from './errors.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('backoffDelay', () => {
  const policy = { initialMs: 100, factor: 2, maxMs: 500 };

  it('grows by the factor per attempt and stops at maxMs', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n))).toEqual([100, 200, 400, 500, 500]);
    expect(backoffDelay({ initialMs: 50, factor: 1, maxMs: 50 }, 7)).toBe(50);
    expect(backoffDelay(DEFAULT_TASK_RETRY_BACKOFF, 1)).toBe(1000);
  });

  it('treats attempt 0 and below as the first', () => {
    expect(backoffDelay(policy, 0)).toBe(100);
    expect(backoffDelay(policy, -3)).toBe(100);
  });

  it('spreads by ±jitter around the capped delay, using the random source given', () => {
    const jittered = { ...policy, jitter: 0.25 };
    expect(backoffDelay(jittered, 2, () => 0)).toBe(150);
    expect(backoffDelay(jittered, 2, () => 0.5)).toBe(200);
    expect(backoffDelay(jittered, 9, () => 0.999_999)).toBeCloseTo(625, 3);
  });

  it('never calls the random source without jitter', () => {
    expect(
      backoffDelay(policy, 3, () => {
        throw new Error('called');
      }),
    ).toBe(400);
  });
});

describe('validateBackoff', () => {
  it('returns a valid policy as it is', () => {
    const policy = { initialMs: 0, factor: 1, maxMs: 0, jitter: 0.5 };
    expect(validateBackoff(policy)).toBe(policy);
  });

  it.each([
    [{ initialMs: -1, factor: 2, maxMs: 10 }, 'retryBackoff.initialMs must be a finite number >= 0, got -1'],
    [{ initialMs: 1, factor: 0.5, maxMs: 10 }, 'retryBackoff.factor must be a finite number >= 1, got 0.5'],
    [
      { initialMs: 20, factor: 2, maxMs: 10 },
      'retryBackoff.maxMs must be a finite number >= initialMs, got 10',
    ],
    [
      { initialMs: 1, factor: 2, maxMs: 10, jitter: 1 },
      'retryBackoff.jitter must be a number in [0, 1), got 1',
    ],
    [
      { initialMs: Number.NaN, factor: 2, maxMs: 10 },
      'retryBackoff.initialMs must be a finite number >= 0, got NaN',
    ],
  ])('refuses %j with InputError', (policy, message) => {
    const error = thrown(() => validateBackoff(policy, 'retryBackoff'));
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(message);
  });
});
