import { describe, expect, it } from 'vitest';
import {
  encodeDue,
  encodePriority,
  isWaiterKey,
  leaseHex,
  QueueKeys,
  queueRoot,
  SequenceClock,
  sequenceAt,
} from './keys.js';

describe('encodePriority', () => {
  it('orders encodings as the numbers, negatives and fractions included', () => {
    const numbers = [-1e300, -200, -1.5, -0.001, 0, 0.001, 1, 10, 99.5, 100, 101, 200, 1e300];
    const encoded = numbers.map(encodePriority);
    expect([...encoded].sort()).toEqual(encoded);
    expect(new Set(encoded).size).toBe(numbers.length);
    expect(encoded.every((e) => /^[0-9a-f]{16}$/.test(e))).toBe(true);
  });

  it('orders random pairs like the numbers', () => {
    for (let i = 0; i < 1000; i++) {
      const a = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 10);
      const b = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 10);
      const byKey = encodePriority(a) < encodePriority(b);
      expect(byKey, `${a} vs ${b}`).toBe(a < b);
    }
  });

  it('encodes -0 as 0', () => {
    expect(encodePriority(-0)).toBe(encodePriority(0));
  });
});

describe('SequenceClock', () => {
  it('increases strictly, even when the clock stands still or goes back', () => {
    const clock = new SequenceClock();
    const sequences = [clock.next(1000), clock.next(1000), clock.next(999), clock.next(1001), clock.next(5)];
    expect([...sequences].sort()).toEqual(sequences);
    expect(new Set(sequences).size).toBe(sequences.length);
  });

  it('places a promoted task by its due time among tasks enqueued around it', () => {
    const clock = new SequenceClock();
    const before = clock.next(1999);
    const promoted = sequenceAt(2000);
    const after = clock.next(2001);
    expect([after, promoted, before].sort()).toEqual([before, promoted, after]);
  });
});

describe('QueueKeys', () => {
  const keys = new QueueKeys('provider/tasks');

  it('escapes the queue name so that no queue lies under another', () => {
    expect(queueRoot('provider/tasks')).toBe('q/provider%2Ftasks/');
    expect(keys.task('t1')).toBe('q/provider%2Ftasks/tasks/t1');
  });

  it('parses the ids back out of ready and delayed keys, slashes included', () => {
    const ready = keys.readyKey(100, sequenceAt(1234), 'node/n1');
    expect(keys.idOfReady(ready)).toBe('node/n1');
    const delayed = keys.delayedKey(1_700_000_000_123.4, 'a/b');
    expect(delayed).toBe(`${keys.delayed}${encodeDue(1_700_000_000_124)}/a/b`);
    expect(keys.parseDelayed(delayed)).toEqual({ due: 1_700_000_000_124, id: 'a/b' });
    expect(keys.parseDelayed(`${keys.delayed}garbage`)).toBeUndefined();
  });

  it('bounds the delayed keys due by a time', () => {
    const due = keys.delayedKey(1000, 'x');
    const later = keys.delayedKey(1001, 'x');
    expect(due < keys.delayedDueEnd(1000)).toBe(true);
    expect(later < keys.delayedDueEnd(1000)).toBe(false);
  });
});

describe('waiter keys', () => {
  it('are the lease in 16 hex digits, directly under the root', () => {
    const hex = leaseHex('7587871253484388362');
    expect(leaseHex('255')).toBe('00000000000000ff');
    expect(hex).toBe('694d88b3e955c00a');
    expect(isWaiterKey('locks/node/', `locks/node/${hex}`)).toBe(true);
    expect(isWaiterKey('locks/node/', `locks/node/n1/${hex}`)).toBe(false);
    expect(isWaiterKey('locks/node/', 'locks/node/n1')).toBe(false);
  });
});
