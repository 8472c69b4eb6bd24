import { describe, expect, it } from 'vitest';
import { BackendUnavailableError } from './errors.js';
import { runProviderTask } from './execute.js';
import type { Clock } from './execute.js';
import type { NodeProvider, ProviderTask } from './provider.js';

const task: ProviderTask = {
  id: 'j1/r1/p',
  jobId: 'j1',
  round: 1,
  attempt: 2,
  provider: 'p',
  kind: 'host',
  name: 'h1',
  node: {},
  updates: [{ id: 'u1', path: 'hwspec', op: 'set', value: 'small', origin: 'user' }],
};

/** A clock that moves 5 ms each time it is read. */
function ticking(): Clock {
  let now = 1000;
  return { now: () => (now += 5), sleep: () => Promise.resolve() };
}

function provider(apply: NodeProvider['apply']): NodeProvider {
  return { name: 'p', kind: 'host', claims: [], apply, explain: () => Promise.resolve({ later: ['mac'] }) };
}

describe('runProviderTask, the one executor of provider tasks', () => {
  it('answers the outcome of apply or explain, timed by the clock, with the fencing token passed on', async () => {
    let token = '';
    const p = provider((t, context) => {
      token = context.fencingToken;
      return Promise.resolve({ accepted: t.updates.map((u) => u.id) });
    });
    expect(await runProviderTask(p, task, 'apply', { clock: ticking(), fencingToken: '9' })).toEqual({
      taskId: 'j1/r1/p',
      attempt: 2,
      outcome: { accepted: ['u1'] },
      durationMs: 5,
    });
    expect(token).toBe('9');
    const explained = await runProviderTask(p, task, 'explain', { clock: ticking() });
    expect(explained).toEqual({ taskId: 'j1/r1/p', attempt: 2, outcome: { later: ['mac'] }, durationMs: 5 });
  });

  it('turns what a provider throws, or a provider that is missing, into the result error', async () => {
    const down = provider(() => Promise.reject(new BackendUnavailableError('backend down')));
    expect(await runProviderTask(down, task, 'apply', { clock: ticking() })).toEqual({
      taskId: 'j1/r1/p',
      attempt: 2,
      error: { code: 'BACKEND_UNAVAILABLE', message: 'backend down', retryable: true },
      durationMs: 5,
    });
    expect(await runProviderTask(undefined, task, 'apply', { clock: ticking() })).toEqual({
      taskId: 'j1/r1/p',
      attempt: 2,
      error: { code: 'INTERNAL', message: 'provider p for kind host is not loaded here', retryable: false },
      durationMs: 5,
    });
  });
});
