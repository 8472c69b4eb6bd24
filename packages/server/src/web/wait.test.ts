import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import { systemClock } from '@consortium/core';
import type { JobRecord, Store } from '@consortium/core';
import { encodeJobNotice, jobTopic } from '../protocol.js';
import { listenForJob, waitForJob } from './shared.js';

const T0 = 1_700_000_000_000;

/** A create of host `name` that is running. */
function runningCreate(id: string, name: string): JobRecord {
  return {
    id,
    kind: 'host',
    name,
    action: 'create',
    state: 'running',
    actor: 'dev',
    updates: [],
    before: null,
    createdAt: T0,
    updatedAt: T0,
  };
}

/** A job store of one job whose reads are counted. */
function countingStore(job: { current: JobRecord }): { store: Store; reads: () => number } {
  let reads = 0;
  const store = {
    getJob: (id: string) => {
      reads += 1;
      return Promise.resolve(id === job.current.id ? job.current : undefined);
    },
  } as unknown as Store;
  return { store, reads: () => reads };
}

/** Lets queued microtasks (notices, reads) run; no timer fires under fake timers. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

afterEach(() => {
  vi.useRealTimers();
});

describe('waitForJob', () => {
  it('reads the job again on the notice of its end, not on the notices of its steps', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const coordinator = new MemoryCoordinator(new MemoryCluster());
    const job = { current: runningCreate('j-1', 'web-01') };
    const { store, reads } = countingStore(job);
    const waiting = waitForJob({ store, coordinator, clock: systemClock }, 'j-1', 30_000);
    await settle();
    expect(reads()).toBe(1);
    const topic = jobTopic('j-1');
    for (const [seq, type] of [
      [1, 'state'],
      [2, 'dispatched'],
      [3, 'task'],
    ] as const) {
      await coordinator.notify(topic, encodeJobNotice({ kind: 'event', seq, type }));
    }
    await coordinator.notify(topic, encodeJobNotice({ kind: 'cancel' }));
    await settle();
    expect(reads()).toBe(1);
    job.current = { ...job.current, state: 'succeeded', endedAt: T0 + 1 };
    await coordinator.notify(topic, encodeJobNotice({ kind: 'event', seq: 4, type: 'ended' }));
    expect((await waiting).state).toBe('succeeded');
    expect(reads()).toBe(2);
    await coordinator.close();
  });

  it('still reads the job once a second without notices, and answers it as it stands at the deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const coordinator = new MemoryCoordinator(new MemoryCluster());
    const job = { current: runningCreate('j-2', 'web-02') };
    const { store, reads } = countingStore(job);
    let now = T0;
    const clock = { ...systemClock, now: () => now };
    const waiting = waitForJob({ store, coordinator, clock }, 'j-2', 2_500);
    await settle();
    now += 1_000;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reads()).toBe(2);
    now += 1_000;
    await vi.advanceTimersByTimeAsync(1_000);
    now += 500;
    await vi.advanceTimersByTimeAsync(500);
    expect((await waiting).state).toBe('running');
    expect(reads()).toBe(4);
    await coordinator.close();
  });

  it("leaves an event stream's listener every notice of the job, steps included", async () => {
    const coordinator = new MemoryCoordinator(new MemoryCluster());
    const heard: number[] = [];
    const stop = listenForJob(coordinator, 'j-3', () => heard.push(heard.length + 1));
    const topic = jobTopic('j-3');
    await coordinator.notify(topic, encodeJobNotice({ kind: 'event', seq: 1, type: 'state' }));
    await coordinator.notify(topic, encodeJobNotice({ kind: 'event', seq: 2, type: 'task' }));
    await coordinator.notify(topic, encodeJobNotice({ kind: 'event', seq: 3, type: 'ended' }));
    await settle();
    expect(heard).toEqual([1, 2, 3]);
    stop();
    await coordinator.close();
  });
});
