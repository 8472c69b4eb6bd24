/** What hooks hear of an ended job and of drift: which events, and ids that are the same every time. */
import { describe, expect, it } from 'vitest';
import type { JobRecord, StoredNode } from '@consortium/core';
import { driftEvent, eventBody, jobHookEvents } from './hooks.js';

const job = (overrides: Partial<JobRecord>): JobRecord => ({
  id: 'j-1',
  kind: 'host',
  name: 'web-01',
  action: 'create',
  state: 'succeeded',
  actor: 'dev',
  updates: [],
  before: null,
  createdAt: 1,
  updatedAt: 2,
  endedAt: 3,
  ...overrides,
});

describe('jobHookEvents', () => {
  it('names the job and what happened to the node', () => {
    const events = jobHookEvents(job({}), { present: true, datacenter: 'pek1' });
    expect(events.map((e) => [e.event, e.eventId])).toEqual([
      ['job.succeeded', 'j-1.job'],
      ['node.created', 'j-1.node'],
    ]);
    expect(eventBody(events[1]!)).toEqual({
      id: 'j-1.node',
      event: 'node.created',
      occurredAt: new Date(3).toISOString(),
      node: { kind: 'host', name: 'web-01', attrs: { present: true, datacenter: 'pek1' } },
      job: { id: 'j-1', action: 'create', state: 'succeeded', actor: 'dev' },
    });
    const deleted = jobHookEvents(job({ action: 'delete', before: { present: true } }), null);
    expect(deleted.map((e) => [e.event, e.attrs])).toEqual([
      ['job.succeeded', { present: true }],
      ['node.deleted', { present: true }],
    ]);
  });

  it('says nothing of the node for a failed job, a change that changed nothing, or a cancelled job', () => {
    const failed = job({ state: 'failed', failure: { code: 'BLOCKED', message: 'no' } });
    expect(jobHookEvents(failed, null).map((e) => e.event)).toEqual(['job.failed']);
    expect(jobHookEvents(failed, null)[0]?.detail['job']).toMatchObject({
      failure: { code: 'BLOCKED', message: 'no' },
    });
    const same = job({ action: 'patch', before: { a: 1, b: 2 } });
    expect(jobHookEvents(same, { b: 2, a: 1 }).map((e) => e.event)).toEqual(['job.succeeded']);
    expect(jobHookEvents(job({ state: 'cancelled' }), null)).toEqual([]);
  });
});

describe('driftEvent', () => {
  const node: StoredNode = {
    kind: 'host',
    name: 'web-01',
    attrs: { power: 'on' },
    revision: 4,
    observed: {},
    createdAt: 1,
    updatedAt: 2,
  };
  const drift = [{ path: 'power', provider: 'libvirt', expected: 'on', observed: 'off', at: 'x' }];

  it('has the same id for the same drift at the same revision, another for another', () => {
    const first = driftEvent(node, drift, 10);
    expect(first.eventId).toMatch(/^drift\.host\.web-01\.r4\.[0-9a-f]{16}$/);
    expect(driftEvent(node, [{ ...drift[0]!, at: 'later' }], 20).eventId).toBe(first.eventId);
    expect(driftEvent({ ...node, revision: 5 }, drift, 10).eventId).not.toBe(first.eventId);
    expect(driftEvent(node, [{ ...drift[0]!, observed: 'paused' }], 10).eventId).not.toBe(first.eventId);
    expect(first.detail).toEqual({
      drift: [{ path: 'power', provider: 'libvirt', expected: 'on', observed: 'off' }],
    });
  });
});
