import { InternalError } from '@consortium/core';
import { describe, expect, it } from 'vitest';
import type { ResultMessage, TaskMessage } from './protocol.js';
import {
  decodeJobId,
  decodeJobNotice,
  decodeResultMessage,
  decodeTaskMessage,
  encodeJobNotice,
  encodeResultMessage,
  encodeTaskMessage,
  toJson,
} from './protocol.js';

const task: TaskMessage = {
  task: {
    id: 'j1/r1/ipam',
    jobId: 'j1',
    round: 1,
    attempt: 2,
    provider: 'ipam',
    kind: 'host',
    name: 'web-01',
    node: { present: true, interfaces: [{ name: 'eth0', subnet: 'pek1' }] },
    updates: [{ id: 'u1', path: 'interfaces[eth0].ip', op: 'set', value: '10.0.0.2', origin: 'user' }],
  },
  fencingToken: '7',
};

function expectMalformed(fn: () => unknown, message: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(InternalError);
  if (typeof message === 'string') expect((thrown as Error).message).toBe(message);
  else expect((thrown as Error).message).toMatch(message);
}

describe('protocol codecs', () => {
  it('round-trips a task and both kinds of result through JSON text', () => {
    const wire = JSON.parse(JSON.stringify(encodeTaskMessage(task)));
    expect(decodeTaskMessage(wire)).toEqual(task);
    const ok: ResultMessage = {
      jobId: 'j1',
      result: {
        taskId: 'j1/r1/ipam',
        attempt: 1,
        durationMs: 3,
        outcome: {
          accepted: ['u1'],
          deferred: [{ id: 'u2', reason: 'later', waitFor: ['power'] }],
          set: { 'interfaces[eth0].ip': '10.0.0.2' },
          operations: [{ action: 'reserve', target: '10.0.0.2' }],
        },
      },
    };
    expect(decodeResultMessage(JSON.parse(JSON.stringify(encodeResultMessage(ok))))).toEqual(ok);
    const failed: ResultMessage = {
      jobId: 'j1',
      result: {
        taskId: 'j1/r1/ipam',
        attempt: 1,
        durationMs: 3,
        error: { code: 'BACKEND_UNAVAILABLE', message: 'down', retryable: true, details: { host: 'x' } },
      },
    };
    expect(decodeResultMessage(encodeResultMessage(failed))).toEqual(failed);
  });

  it('refuses malformed payloads, naming where they are wrong', () => {
    expectMalformed(() => decodeTaskMessage('j1'), 'malformed message: task message must be an object');
    expectMalformed(
      () =>
        decodeTaskMessage({ ...task, task: { ...task.task, updates: [{ id: 'u1', path: 'x', op: 'zap' }] } }),
      'malformed message: task message.task.updates[0].op must be one of set, unset, add, remove, merge, sync',
    );
    expectMalformed(
      () =>
        decodeResultMessage({
          jobId: 'j1',
          result: {
            taskId: 't',
            attempt: 1,
            durationMs: 1,
            error: { code: 'OOPS', message: 'x', retryable: false },
          },
        }),
      /^malformed message: result message\.result\.error\.code must be one of INVALID_INPUT, /,
    );
    expectMalformed(() => decodeJobId(''), 'malformed message: job queue entry must be a job id');
    expectMalformed(() => decodeJobId(3), 'malformed message: job queue entry must be a string');
  });

  it('encodes only what JSON can carry', () => {
    expectMalformed(() => toJson({ a: [1, Number.NaN] }), '$.a[1] is not a finite number');
    expectMalformed(() => toJson({ f: () => 1 }), '$.f is a function, which JSON cannot carry');
    expect(toJson({ a: undefined, b: 1 })).toEqual({ b: 1 });
  });

  it('reads job notices and ignores unknown ones', () => {
    expect(decodeJobNotice(encodeJobNotice({ kind: 'cancel' }))).toEqual({ kind: 'cancel' });
    expect(decodeJobNotice(encodeJobNotice({ kind: 'event', seq: 3, type: 'task' }))).toEqual({
      kind: 'event',
      seq: 3,
      type: 'task',
    });
    expect(decodeJobNotice({ hello: 1 })).toBeUndefined();
  });
});
