import { describe, expect, it } from 'vitest';
import {
  BackendError,
  BackendUnavailableError,
  InputError,
  SchemaViolationError,
  UnknownAttributeError,
} from './errors.js';
import type { Clock } from './execute.js';
import { explainPlan, runPlan } from './execute.js';
import { jsonPatchToUpdates, mergePatchToUpdates } from './patch.js';
import type { Attrs, UpdateRequest } from './model.js';
import type { PlannerOptions, PlannerState } from './planner.js';
import {
  conditionsOf,
  DEFAULT_PLANNER_OPTIONS,
  operationsOf,
  TransitionPlanner,
  valueAt,
} from './planner.js';
import type { NodeProvider } from './provider.js';
import { CREATE_WEB_01, handlerProvider, HOST_KIND, provisioningWorld } from '@consortium/testkit';
import type { AttributeClaim } from './schema.js';
import { buildKindSchemas } from './schema.js';

/** A clock whose sleeps advance virtual time at once, and which records every sleep. */
function virtualClock(start = 1_000): Clock & { sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: (ms) => {
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
  };
}

async function run(
  planner: TransitionPlanner,
  providers: ReadonlyMap<string, NodeProvider>,
  updates: readonly UpdateRequest[],
  current: Attrs = {},
  clock = virtualClock(),
): Promise<PlannerState> {
  const state = planner.start(
    { jobId: 'job-1', kind: 'host', name: 'web-01', current, updates },
    clock.now(),
  );
  return runPlan(planner, state, providers, { clock });
}

/** Asserts that `fn` throws exactly this class of error with exactly this message. */
function expectError(fn: () => unknown, type: new (...args: never[]) => Error, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(type);
  expect((thrown as Error).message).toBe(message);
}

/** The providers of each round, in order: the shape of a job at a glance. */
const roundShape = (state: PlannerState): string[][] =>
  state.rounds.map((r) => r.tasks.map((t) => t.provider));

/** A one-kind world of handler providers, for the termination rules. */
function world(providers: ReturnType<typeof handlerProvider>[], options: Partial<PlannerOptions> = {}) {
  const schema = buildKindSchemas([HOST_KIND], providers).get('host')!;
  return {
    planner: new TransitionPlanner(schema, { ...DEFAULT_PLANNER_OPTIONS, ...options }),
    providers: new Map<string, NodeProvider>(providers.map((p) => [p.name, p])),
  };
}

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const claim = (path: string, schema: AttributeClaim['schema'] = str): AttributeClaim => ({ path, schema });

describe('the DESIGN.md §2 provisioning example', () => {
  it('converges in three rounds: cmdb, ipam and libvirt; then cobbler; then libvirt powers on', async () => {
    const w = provisioningWorld();
    const state = await run(w.planner, w.providers, CREATE_WEB_01);

    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['cmdb', 'ipam', 'libvirt'], ['cobbler'], ['libvirt']]);
    const [r1, r2, r3] = state.rounds;
    expect(r1!.tasks.map((t) => t.id)).toEqual(['job-1/r1/cmdb', 'job-1/r1/ipam', 'job-1/r1/libvirt']);
    expect(r1!.tasks[2]!.outcome).toEqual({
      accepted: ['u2'],
      deferred: [{ id: 'u7', reason: 'netboot not ready', waitFor: ['netboot'] }],
      set: { hypervisor: 'hv-3', 'interfaces[eth0].mac': '52:54:00:00:00:01' },
      operations: [{ action: 'define', target: 'hv-3/web-01', durationMs: 1 }],
    });
    expect(r2!.tasks[0]!.updates).toEqual([
      { id: 's1.1', path: 'interfaces', op: 'sync', origin: 'ipam', reason: 'interfaces[eth0].ip changed' },
    ]);
    expect(r2!.tasks[0]!.outcome?.set).toEqual({ netboot: true });
    expect(r3!.tasks[0]!.updates.map((u) => u.id)).toEqual(['u7']);
    expect(state.attrs).toEqual({
      present: true,
      hwspec: 'small',
      datacenter: 'pek1',
      subcluster: 'web',
      subnet: 'pek1-web',
      puppet_roles: ['nginx'],
      power: 'on',
      hypervisor: 'hv-3',
      netboot: true,
      interfaces: [{ name: 'eth0', ip: '10.1.2.34', mac: '52:54:00:00:00:01' }],
    });
    expect(w.backends.cobbler.get('web-01')).toEqual({
      mac: '52:54:00:00:00:01',
      ip: '10.1.2.34',
      netboot: true,
    });
    expect(w.backends.libvirt.get('web-01')).toEqual({
      hwspec: 'small',
      mac: '52:54:00:00:00:01',
      running: true,
    });
    expect(operationsOf(state).map((o) => `${o.round}:${o.provider}:${o.action}`)).toEqual([
      '1:cmdb:upsert-record',
      '1:cmdb:upsert-record',
      '1:cmdb:upsert-record',
      '1:ipam:allocate-ip',
      '1:libvirt:define',
      '2:cobbler:save_system',
      '3:libvirt:start',
    ]);
    expect(state.pending).toEqual([]);
  });

  it('deletes in one round in which every provider removes what it owns', async () => {
    const w = provisioningWorld();
    const created = await run(w.planner, w.providers, CREATE_WEB_01);
    const deleted = await run(w.planner, w.providers, [{ path: 'present', op: 'unset' }], created.attrs);

    expect(deleted.phase).toBe('succeeded');
    expect(roundShape(deleted)).toEqual([['cmdb', 'cobbler', 'inventory', 'ipam', 'libvirt']]);
    expect(
      deleted.rounds[0]!.tasks.every((t) => t.updates.every((u) => u.op === 'sync' && u.path === 'present')),
    ).toBe(true);
    expect([
      w.backends.cmdb.size,
      w.backends.libvirt.size,
      w.backends.cobbler.size,
      w.backends.ipam.allocated.size,
    ]).toEqual([0, 0, 0, 0]);
  });

  it('is deterministic: the same request gives the same rounds, ids and node', async () => {
    const a = provisioningWorld();
    const b = provisioningWorld();
    const first = await run(a.planner, a.providers, CREATE_WEB_01);
    const second = await run(b.planner, b.providers, CREATE_WEB_01);
    expect(second).toEqual(first);
  });

  it('re-running the same create converges without duplicating anything (idempotent providers)', async () => {
    const w = provisioningWorld();
    const first = await run(w.planner, w.providers, CREATE_WEB_01);
    const again = await run(w.planner, w.providers, CREATE_WEB_01, first.attrs);
    expect(again.phase).toBe('succeeded');
    expect(again.attrs).toEqual(first.attrs);
    expect(w.backends.ipam.allocated.size).toBe(1);
    expect(w.backends.libvirt.size).toBe(1);
  });

  it('explains the plan round by round without touching a backend, naming values known later', async () => {
    const w = provisioningWorld();
    const plan = await explainPlan(
      w.planner,
      { jobId: 'explain-1', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 },
      w.providers,
    );

    expect(plan.outcome).toBe('succeeded');
    expect(plan.rounds.map((r) => r.tasks.map((t) => t.provider))).toEqual([
      ['cmdb', 'ipam', 'libvirt'],
      ['cobbler'],
      ['libvirt'],
    ]);
    expect(plan.later).toEqual([
      { path: 'interfaces[eth0].ip', provider: 'ipam' },
      { path: 'hypervisor', provider: 'libvirt' },
      { path: 'interfaces[eth0].mac', provider: 'libvirt' },
    ]);
    expect(plan.rounds[1]!.tasks[0]!.outcome?.operations?.[0]?.action).toBe('save_system');
    expect([
      w.backends.cmdb.size,
      w.backends.libvirt.size,
      w.backends.cobbler.size,
      w.backends.ipam.allocated.size,
    ]).toEqual([0, 0, 0, 0]);
  });
});

describe('start', () => {
  const w = provisioningWorld();
  const start = (updates: UpdateRequest[], current: Attrs = { present: true }) =>
    w.planner.start({ jobId: 'j', kind: 'host', name: 'web-01', current, updates }, 0);

  it('refuses an unknown attribute with the closest known one', () => {
    expectError(
      () => start([{ path: 'hwsepc', op: 'set', value: 'small' }]),
      UnknownAttributeError,
      'unknown attribute "hwsepc" for kind host (did you mean "hwspec"?)',
    );
  });

  it('refuses two updates of one path', () => {
    expectError(
      () =>
        start([
          { path: 'interfaces', op: 'set', value: [] },
          { path: 'interfaces[eth0].mac', op: 'set', value: '52:54:00:00:00:02' },
        ]),
      InputError,
      'updates "interfaces=[]" and "interfaces[eth0].mac="52:54:00:00:00:02"" touch the same path',
    );
  });

  it('refuses a value that violates the schema before any provider runs', () => {
    expectError(
      () => start([{ path: 'hwspec', op: 'set', value: 'huge' }]),
      SchemaViolationError,
      'host attributes violate the schema: /hwspec: must be equal to one of the allowed values (["small","medium","large"])',
    );
    expectError(
      () => start([{ path: 'puppet_roles', op: 'add', value: 7 }]),
      SchemaViolationError,
      'add puppet_roles: /puppet_roles/0: must be string',
    );
  });

  it('refuses sync, which only the planner makes', () => {
    expectError(
      () => start([{ path: 'hostname', op: 'sync' }]),
      InputError,
      '"sync" is not an operation a request can ask for (hostname)',
    );
  });

  it('succeeds at once when only the core is involved and nobody watches', () => {
    const solo = world([handlerProvider('a', [claim('x')], (_t, u, o) => o.accepted.push(u.id))]);
    const state = solo.planner.start(
      {
        jobId: 'j',
        kind: 'host',
        name: 'n',
        current: {},
        updates: [{ path: 'present', op: 'set', value: true }],
      },
      5,
    );
    expect(state.phase).toBe('succeeded');
    expect(state.rounds).toEqual([]);
  });
});

describe('termination rules', () => {
  it('fails with the provider reason on a rejection', async () => {
    const w = world([
      handlerProvider('a', [claim('x')], (_t, u, o) => o.rejected.push({ id: u.id, reason: 'x is frozen' })),
    ]);
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'REJECTED',
      message: 'a rejected x="v": x is frozen',
      providers: ['a'],
    });
    expect(state.rounds).toHaveLength(1);
  });

  it('fails when a proposal violates the schema', async () => {
    const w = world([
      handlerProvider('a', [claim('x')], (_t, u, o) => {
        o.accepted.push(u.id);
        o.propose.push({ path: 'y', op: 'set', value: 'not a number' });
      }),
      handlerProvider('b', [claim('y', int)], (_t, u, o) => o.accepted.push(u.id)),
    ]);
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'SCHEMA_VIOLATION',
      message: 'proposal from a violates the schema: /y: must be integer',
      providers: ['a'],
    });
  });

  it('fails when a proposal contradicts the user', async () => {
    const w = world([
      handlerProvider('a', [claim('x')], (_t, u, o) => {
        o.accepted.push(u.id);
        o.propose.push({ path: 'y', op: 'set', value: 2 });
      }),
      handlerProvider('b', [claim('y', int)], (_t, u, o) => o.accepted.push(u.id)),
    ]);
    const state = await run(w.planner, w.providers, [
      { path: 'x', op: 'set', value: 'v' },
      { path: 'y', op: 'set', value: 1 },
    ]);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'PROPOSAL_CONFLICT',
      message: 'a proposed y=2, which contradicts the requested y=1',
      providers: ['a'],
    });
  });

  it('routes an agreeing proposal to its owner and converges', async () => {
    const w = world([
      handlerProvider('a', [claim('x')], (_t, u, o) => {
        o.accepted.push(u.id);
        if (u.origin === 'user') o.propose.push({ path: 'y', op: 'set', value: 5 });
      }),
      handlerProvider('b', [claim('y', int)], (_t, u, o) => o.accepted.push(u.id)),
    ]);
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['a'], ['b']]);
    expect(state.rounds[1]!.tasks[0]!.updates).toEqual([
      { id: 'p1.1', path: 'y', op: 'set', value: 5, origin: 'a' },
    ]);
    expect(state.attrs).toEqual({ x: 'v', y: 5 });
  });

  it('retries a transient provider error with backoff, then succeeds', async () => {
    let calls = 0;
    const flaky = handlerProvider('a', [claim('x')], (_t, u, o) => o.accepted.push(u.id));
    const inner = flaky.apply.bind(flaky);
    flaky.apply = (task, ctx) => {
      calls++;
      return calls < 3 ? Promise.reject(new BackendUnavailableError('backend busy')) : inner(task, ctx);
    };
    const w = world([flaky]);
    const clock = virtualClock();
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }], {}, clock);
    expect(state.phase).toBe('succeeded');
    expect(clock.sleeps).toEqual([200, 400]);
    expect(state.rounds[0]!.tasks[0]!.attempts).toBe(3);
    expect(state.rounds[0]!.tasks[0]!.retriedErrors).toEqual([
      { code: 'BACKEND_UNAVAILABLE', message: 'backend busy', retryable: true },
      { code: 'BACKEND_UNAVAILABLE', message: 'backend busy', retryable: true },
    ]);
  });

  it('fails when a transient error outlasts the attempts', async () => {
    const down = handlerProvider('a', [claim('x')], () => undefined);
    down.apply = () => Promise.reject(new BackendUnavailableError('connection refused'));
    const w = world([down], { maxTaskAttempts: 3 });
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'BACKEND_UNAVAILABLE',
      message: 'a failed after 3 attempts: connection refused',
      providers: ['a'],
    });
  });

  it('fails at once on a permanent provider error', async () => {
    const broken = handlerProvider('a', [claim('x')], () => undefined);
    broken.apply = () => Promise.reject(new BackendError('no such profile'));
    const w = world([broken]);
    const clock = virtualClock();
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }], {}, clock);
    expect(state.failure).toEqual({
      code: 'BACKEND_ERROR',
      message: 'a failed: no such profile',
      providers: ['a'],
    });
    expect(clock.sleeps).toEqual([]);
  });

  it('waits with growing backoff while nothing progresses, then expires at the TTL naming the blocker', async () => {
    const stuck = handlerProvider('a', [claim('x')], (_t, u, o) =>
      o.deferred.push({ id: u.id, reason: 'VM still booting' }),
    );
    const w = world([stuck], { ttlMs: 10_000 });
    const clock = virtualClock(0);
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }], {}, clock);
    expect(state.phase).toBe('expired');
    expect(clock.sleeps).toEqual([500, 1000, 2000, 4000, 2500]);
    expect(state.rounds.map((r) => r.startedAt)).toEqual([0, 500, 1500, 3500, 7500]);
    expect(state.rounds).toHaveLength(5);
    expect(state.failure).toEqual({
      code: 'EXPIRED',
      message: 'TTL of 10s expired; still waiting on a: x (VM still booting)',
      providers: ['a'],
    });
    expect(state.endedAt).toBe(10_000);
  });

  it('fails after maxRounds rounds of progress without converging', async () => {
    let n = 0;
    const a = handlerProvider('a', [claim('go', { type: 'boolean' }), claim('x', int)], (_t, u, o) => {
      o.accepted.push(u.id);
      o.propose.push({ path: 'y', op: 'set', value: n++ });
    });
    const b = handlerProvider('b', [claim('y', int)], (_t, u, o) => {
      o.accepted.push(u.id);
      o.propose.push({ path: 'x', op: 'set', value: n++ });
    });
    const w = world([a, b], { maxRounds: 6 });
    const state = await run(w.planner, w.providers, [{ path: 'go', op: 'set', value: true }]);
    expect(state.phase).toBe('failed');
    expect(state.failure?.code).toBe('NOT_CONVERGED');
    expect(state.failure?.message).toMatch(/^did not converge within 6 rounds; still pending: /);
    expect(state.rounds).toHaveLength(7);
  });

  it('names both providers of a proposal cycle', async () => {
    // a owns go and a; on anything it proposes b := a (0 when absent). b owns b; on b := v it proposes a := 1 - v.
    const a = handlerProvider('a', [claim('go', { type: 'boolean' }), claim('a', int)], (task, u, o) => {
      o.accepted.push(u.id);
      const value = u.path === 'a' ? (u.value as number) : ((task.node['a'] as number | undefined) ?? 0);
      o.propose.push({ path: 'b', op: 'set', value });
    });
    const b = handlerProvider('b', [claim('b', int)], (_t, u, o) => {
      o.accepted.push(u.id);
      o.propose.push({ path: 'a', op: 'set', value: 1 - (u.value as number) });
    });
    const w = world([a, b]);
    const state = await run(w.planner, w.providers, [{ path: 'go', op: 'set', value: true }]);
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'PROPOSAL_CYCLE',
      message: 'proposal cycle between a and b: round 7 returned to the state of round 3',
      providers: ['a', 'b'],
    });
    expect(roundShape(state)).toEqual([['a'], ['b'], ['a'], ['b'], ['a'], ['b'], ['a']]);
  });

  it('fails when a provider breaks the contract', async () => {
    const w = world([
      handlerProvider('a', [claim('x')], (_t, u, o) => {
        o.accepted.push(u.id);
        o.set['y'] = 'mine now';
      }),
      handlerProvider('b', [claim('y')], (_t, u, o) => o.accepted.push(u.id)),
    ]);
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(state.failure).toEqual({
      code: 'PROVIDER_CONTRACT',
      message: 'a broke the provider contract: reported a value for y, which b has authority over',
      providers: ['a'],
    });
    const silent = world([handlerProvider('a', [claim('x')], () => undefined)]);
    const unanswered = await run(silent.planner, silent.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(unanswered.failure?.message).toBe('a broke the provider contract: did not answer u1');
  });

  it('fails when every provider answered but a desired value does not hold', async () => {
    const w = world([
      handlerProvider('a', [claim('x')], (_t, u, o) => {
        o.accepted.push(u.id);
        o.set['x'] = 'something else';
      }),
    ]);
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    // The accepted value is merged first, then the provider's own report of x overrides it.
    expect(state.failure).toEqual({
      code: 'NOT_CONVERGED',
      message: 'every provider answered but the node does not hold: x="v" (found "something else")',
      providers: ['a'],
    });
  });
});

describe('watches and deferrals', () => {
  it('sends a watcher one sync per change it has not seen, and none when the value did not change', async () => {
    const watcher = handlerProvider('w', [claim('seen')], (_t, u, o) => o.accepted.push(u.id), ['x']);
    const w = world([
      handlerProvider('a', [claim('x'), claim('z')], (_t, u, o) => o.accepted.push(u.id)),
      watcher,
    ]);
    const changed = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }]);
    expect(roundShape(changed)).toEqual([['a'], ['w']]);
    expect(watcher.calls[0]!.updates).toEqual([
      { id: 's1.1', path: 'x', op: 'sync', origin: 'a', reason: 'x changed' },
    ]);
    const unchanged = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }], { x: 'v' });
    expect(roundShape(unchanged)).toEqual([['a']]);
    const other = await run(w.planner, w.providers, [{ path: 'z', op: 'set', value: 'v' }]);
    expect(roundShape(other)).toEqual([['a']]);
  });

  it('retries a deferral without waitFor as soon as another provider changes something', async () => {
    const a = handlerProvider('a', [claim('x')], (task, u, o) => {
      if (task.node['y'] === undefined) o.deferred.push({ id: u.id, reason: 'needs y' });
      else o.accepted.push(u.id);
    });
    const b = handlerProvider('b', [claim('y')], (_t, u, o) => o.accepted.push(u.id));
    const w = world([a, b]);
    const clock = virtualClock();
    const state = await run(
      w.planner,
      w.providers,
      [
        { path: 'x', op: 'set', value: '1' },
        { path: 'y', op: 'set', value: '2' },
      ],
      {},
      clock,
    );
    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['a', 'b'], ['a']]);
    expect(clock.sleeps).toEqual([]);
    expect(state.rounds[0]!.tasks[0]!.outcome?.deferred).toEqual([{ id: 'u1', reason: 'needs y' }]);
  });

  it('asks again after backoff when a deferral clears outside Consortium (a VM finishing its boot)', async () => {
    let booted = 0;
    // An empty waitFor: nothing in the node can unblock a, only the outside world, so it is asked again.
    const a = handlerProvider('a', [claim('x')], (_t, u, o) => {
      if (++booted < 3) o.deferred.push({ id: u.id, reason: 'booting', waitFor: [] });
      else o.accepted.push(u.id);
    });
    const w = world([a, handlerProvider('b', [claim('never')], (_t, u, o) => o.accepted.push(u.id))]);
    const clock = virtualClock();
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: '1' }], {}, clock);
    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['a'], ['a'], ['a']]);
    expect(clock.sleeps).toEqual([500, 1000]);
    expect(state.rounds.map((r) => r.progress)).toEqual([false, false, true]);
  });

  it('reports conditions: which provider holds which update and why', () => {
    const w = provisioningWorld();
    let state = w.planner.start(
      { jobId: 'j', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 },
      0,
    );
    const first = w.planner.dispatch(state, 0);
    state = first.state;
    for (const task of first.tasks) {
      const outcome =
        task.provider === 'libvirt'
          ? { accepted: ['u2'], deferred: [{ id: 'u7', reason: 'netboot not ready', waitFor: ['netboot'] }] }
          : { accepted: task.updates.map((u) => u.id) };
      state = w.planner.step(state, { taskId: task.id, attempt: 1, outcome, durationMs: 1 }, 1);
    }
    // Nothing is pending for cobbler, so the owner of netboot is nudged on libvirt's behalf.
    expect(conditionsOf(state)).toEqual([
      { provider: 'libvirt', updateId: 'u7', path: 'power', status: 'deferred', reason: 'netboot not ready' },
      { provider: 'cobbler', updateId: 'n1.1', path: 'netboot', status: 'ready' },
    ]);
    expect(valueAt(w.planner, state, 'hwspec')).toBe('small');
  });
});

describe('the state machine', () => {
  it('ignores a late result of a superseded attempt and results after the end', () => {
    const w = provisioningWorld();
    let state = w.planner.start(
      {
        jobId: 'j',
        kind: 'host',
        name: 'web-01',
        current: { present: true },
        updates: [{ path: 'hwspec', op: 'set', value: 'large' }],
      },
      0,
    );
    const d = w.planner.dispatch(state, 0);
    state = d.state;
    const task = d.tasks[0]!;
    state = w.planner.step(
      state,
      {
        taskId: task.id,
        attempt: 1,
        error: { code: 'TIMEOUT', message: 't', retryable: true },
        durationMs: 1,
      },
      1,
    );
    const retry = w.planner.dispatch(state, 1_000);
    expect(retry.tasks.map((t) => [t.id, t.attempt])).toEqual([[task.id, 2]]);
    state = retry.state;
    const late = w.planner.step(
      state,
      { taskId: task.id, attempt: 1, outcome: { accepted: [task.updates[0]!.id] }, durationMs: 1 },
      1_001,
    );
    expect(late).toBe(state);
    state = w.planner.step(
      state,
      { taskId: task.id, attempt: 2, outcome: { accepted: [task.updates[0]!.id] }, durationMs: 1 },
      1_002,
    );
    expect(state.phase).toBe('succeeded');
    expect(w.planner.step(state, { taskId: task.id, attempt: 2, outcome: {}, durationMs: 1 }, 1_003)).toBe(
      state,
    );
  });

  it('cancels, and then runs nothing more', () => {
    const w = provisioningWorld();
    const started = w.planner.dispatch(
      w.planner.start({ jobId: 'j', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 }, 0),
      0,
    ).state;
    const cancelled = w.planner.cancel(started, 'cancelled by alice', 5);
    expect(cancelled.phase).toBe('cancelled');
    expect(cancelled.failure).toEqual({ code: 'CANCELLED', message: 'cancelled by alice' });
    expect(w.planner.dispatch(cancelled, 10).tasks).toEqual([]);
  });

  it('round-trips through JSON between any two steps', async () => {
    const w = provisioningWorld();
    let state = w.planner.start(
      { jobId: 'j', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 },
      0,
    );
    let now = 0;
    while (state.phase === 'running') {
      const d = w.planner.dispatch(JSON.parse(JSON.stringify(state)) as PlannerState, now);
      state = d.state;
      for (const task of d.tasks) {
        const outcome = await w.providers.get(task.provider)!.apply(task, {
          logger: console,
          signal: new AbortController().signal,
          fencingToken: '1',
          now: () => now,
        });
        state = w.planner.step(
          JSON.parse(JSON.stringify(state)) as PlannerState,
          { taskId: task.id, attempt: task.attempt, outcome, durationMs: 0 },
          now,
        );
      }
      now = d.wakeAt ?? now;
    }
    expect(state.phase).toBe('succeeded');
    expect(state.rounds).toHaveLength(3);
  });
});

describe('updates from a patch that adds a list item', () => {
  it('accepts a merge of the new item beside the sub-owned fields of that item, and converges', async () => {
    const w = provisioningWorld();
    const created = await run(w.planner, w.providers, CREATE_WEB_01);
    const updates = jsonPatchToUpdates(w.schema, created.attrs, [
      { op: 'add', path: '/interfaces/-', value: { name: 'eth1', ip: '10.1.9.9' } },
    ]);
    expect(updates).toEqual([
      { path: 'interfaces[eth1]', op: 'merge', value: { name: 'eth1' } },
      { path: 'interfaces[eth1].ip', op: 'set', value: '10.1.9.9' },
    ]);
    const patched = await run(w.planner, w.providers, updates, created.attrs);
    expect(patched.phase).toBe('succeeded');
    expect(valueAt(w.planner, patched, 'interfaces[eth1]')).toEqual({ name: 'eth1', ip: '10.1.9.9' });
  });
});

describe('resume', () => {
  it('runs the tasks that were in flight again as a new attempt with the same task id', () => {
    const w = provisioningWorld();
    const first = w.planner.dispatch(
      w.planner.start({ jobId: 'j', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 }, 0),
      0,
    );
    const persisted = JSON.parse(JSON.stringify(first.state)) as PlannerState;
    const resumed = w.planner.resume(persisted, 50);
    const again = w.planner.dispatch(resumed, 50);
    expect(again.tasks.map((t) => [t.id, t.attempt])).toEqual(first.tasks.map((t) => [t.id, 2]));
    // A late answer from the lost attempt is ignored; the new attempt's answer counts.
    const task = again.tasks[0]!;
    const late = w.planner.step(again.state, { taskId: task.id, attempt: 1, outcome: {}, durationMs: 1 }, 51);
    expect(late).toBe(again.state);
  });
});

describe('nudges', () => {
  it('sends the owner of a path someone waits for one sync when it has nothing to do, and the wait clears', async () => {
    // b registers (sets ready) only when asked; a waits for ready. Nothing in the request touches b.
    const a = handlerProvider('a', [claim('x')], (task, u, o) => {
      if (task.node['ready'] === true) o.accepted.push(u.id);
      else o.deferred.push({ id: u.id, reason: 'waiting for b', waitFor: ['ready'] });
    });
    const b = handlerProvider('b', [claim('ready', { type: 'boolean' })], (_t, u, o) => {
      o.accepted.push(u.id);
      o.set['ready'] = true;
    });
    const w = world([a, b], { ttlMs: 60_000 });
    const clock = virtualClock();
    const state = await run(w.planner, w.providers, [{ path: 'x', op: 'set', value: 'v' }], {}, clock);
    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['a'], ['b'], ['a']]);
    expect(b.calls[0]!.updates).toEqual([
      { id: 'n1.1', path: 'ready', op: 'sync', origin: 'a', reason: 'a waits for ready (waiting for b)' },
    ]);
    expect(clock.sleeps).toEqual([]);
  });

  it('nudges an owner only once per path, then fails at once: nothing will ever supply the path', async () => {
    const a = handlerProvider('a', [claim('x')], (_t, u, o) => {
      o.deferred.push({ id: u.id, reason: 'waiting for b', waitFor: ['ready'] });
    });
    const b = handlerProvider('b', [claim('ready', { type: 'boolean' })], (_t, u, o) =>
      o.accepted.push(u.id),
    );
    const w = world([a, b], { ttlMs: 5_000 });
    const state = await run(
      w.planner,
      w.providers,
      [{ path: 'x', op: 'set', value: 'v' }],
      {},
      virtualClock(0),
    );
    expect(state.phase).toBe('failed');
    expect(state.failure).toEqual({
      code: 'BLOCKED',
      message:
        'no provider can make progress: x="v" cannot be done: a waits for ready (waiting for b), which b does not supply (it had nothing to do for it when asked)',
      providers: ['a'],
    });
    expect(roundShape(state)).toEqual([['a'], ['b']]);
    expect(b.calls).toHaveLength(1);
  });
});

describe('a change no provider can ever complete', () => {
  const eth0 = (task: { node: Attrs }): Record<string, unknown> | undefined =>
    (task.node['interfaces'] as Record<string, unknown>[] | undefined)?.find((i) => i['name'] === 'eth0');
  /** Whether eth0 has a field now, or will have it (explain: a value another provider supplies later). */
  const has = (task: Parameters<typeof eth0>[0] & { later?: Record<string, string> }, field: string) =>
    eth0(task)?.[field] !== undefined || task.later?.[`interfaces[eth0].${field}`] !== undefined;
  const inventory = () =>
    handlerProvider(
      'inventory',
      [
        {
          path: 'interfaces',
          schema: {
            type: 'array',
            'x-list-type': 'map',
            'x-list-map-keys': ['name'],
            items: { type: 'object', properties: { name: str }, required: ['name'] },
          },
        },
      ],
      (_t, u, o) => o.accepted.push(u.id),
    );
  /** Defines the VM from hwspec (reporting its MAC); powers on only once netboot is registered. */
  const vm = () =>
    handlerProvider('vm', [claim('hwspec'), claim('power'), claim('interfaces[*].mac')], (task, u, o) => {
      const hwspec = task.node['hwspec'] ?? task.updates.find((x) => x.path === 'hwspec')?.value;
      if (u.path === 'hwspec') {
        o.accepted.push(u.id);
        o.set['interfaces[eth0].mac'] = '52:54:00:00:00:04';
      } else if (hwspec === undefined) {
        o.deferred.push({ id: u.id, reason: 'waiting for hwspec to define the VM', waitFor: ['hwspec'] });
      } else if (task.node['netboot'] !== true) {
        o.deferred.push({ id: u.id, reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] });
      } else o.accepted.push(u.id);
    });
  /** Allocates eth0's address from the subnet; without one it cannot, and says so when asked. */
  const ipam = () =>
    handlerProvider('ipam', [claim('subnet'), claim('interfaces[*].ip')], (task, u, o) => {
      const subnet = task.node['subnet'] ?? (u.path === 'subnet' ? u.value : undefined);
      if (subnet === undefined) {
        o.deferred.push({ id: u.id, reason: 'needs a subnet to allocate from', waitFor: ['subnet'] });
        return;
      }
      o.accepted.push(u.id);
      if (!has(task, 'ip')) o.set['interfaces[eth0].ip'] = '10.0.0.4';
    });
  /**
   * Registers the system once eth0 has a MAC and an IP. A watched change without them leaves nothing to do; a
   * nudge (someone waits for netboot) is deferred until they come, or, with `answersNudges` false, just accepted.
   */
  const pxe = (answersNudges = true) =>
    handlerProvider(
      'pxe',
      [claim('netboot', { type: 'boolean' })],
      (task, u, o) => {
        const missing = ['mac', 'ip'].filter((f) => !has(task, f)).map((f) => `interfaces[eth0].${f}`);
        if (missing.length === 0) {
          o.accepted.push(u.id);
          o.set['netboot'] = true;
        } else if (answersNudges && u.id.startsWith('n')) {
          o.deferred.push({ id: u.id, reason: 'waiting for a MAC and an IP', waitFor: missing });
        } else o.accepted.push(u.id);
      },
      ['interfaces'],
    );
  const provisioning = (answersNudges = true) => world([inventory(), vm(), ipam(), pxe(answersNudges)]);

  const HWSPEC: UpdateRequest = { path: 'hwspec', op: 'set', value: 'small' };
  const POWER_ON: UpdateRequest = { path: 'power', op: 'set', value: 'on' };
  const SUBNET: UpdateRequest = { path: 'subnet', op: 'set', value: 'lab' };
  const hopeless = (why: string) => `no provider can make progress: ${why}`;

  it.each<[string, ReturnType<typeof world>, UpdateRequest[], string, string[][]]>([
    [
      'no subnet: the chain power → netboot → eth0 ip ends at ipam, which needs the subnet',
      provisioning(),
      [HWSPEC, POWER_ON],
      hopeless(
        'interfaces[eth0].ip is never supplied: ipam needs subnet, which no update of this change supplies (needs a subnet to allocate from); ' +
          'held up by it: vm waits for netboot from pxe (waiting for PXE registration (netboot)); ' +
          'pxe waits for interfaces[eth0].ip from ipam (waiting for a MAC and an IP)',
      ),
      [['vm'], ['pxe'], ['pxe'], ['ipam']],
    ],
    [
      'no subnet, and a PXE provider that only accepts its nudge: the wait ends at netboot',
      provisioning(false),
      [HWSPEC, POWER_ON],
      hopeless(
        'power="on" cannot be done: vm waits for netboot (waiting for PXE registration (netboot)), which pxe does not supply (it had nothing to do for it when asked)',
      ),
      [['vm'], ['pxe'], ['pxe']],
    ],
    [
      'power on without hwspec: an input of the waiting provider itself that nobody gives',
      provisioning(),
      [POWER_ON],
      hopeless(
        'power="on" cannot be done: vm needs hwspec, which no update of this change supplies (waiting for hwspec to define the VM)',
      ),
      [['vm']],
    ],
    [
      'two providers waiting for each other',
      world([
        handlerProvider('a', [claim('x')], (_t, u, o) =>
          o.deferred.push({ id: u.id, reason: 'needs y', waitFor: ['y'] }),
        ),
        handlerProvider('b', [claim('y')], (_t, u, o) =>
          o.deferred.push({ id: u.id, reason: 'needs x', waitFor: ['x'] }),
        ),
      ]),
      [
        { path: 'x', op: 'set', value: '1' },
        { path: 'y', op: 'set', value: '2' },
      ],
      hopeless(
        'providers wait for each other: a waits for y from b (needs y); b waits for x from a (needs x)',
      ),
      [['a', 'b']],
    ],
  ])('%s: fails at once, saying what is missing', async (_, w, updates, message, shape) => {
    const clock = virtualClock();
    const state = await run(w.planner, w.providers, updates, {}, clock);
    expect(state.phase).toBe('failed');
    expect(state.failure?.code).toBe('BLOCKED');
    expect(state.failure?.message).toBe(message);
    expect(roundShape(state)).toEqual(shape);
    expect(clock.sleeps).toEqual([]);
    // Explain stops as blocked with the same reason.
    const plan = await explainPlan(
      w.planner,
      { jobId: 'explain', kind: 'host', name: 'web-04', current: {}, updates },
      w.providers,
    );
    expect(plan.outcome).toBe('blocked');
    expect(plan.reason).toBe(message);
    expect(plan.failure?.code).toBe('BLOCKED');
  });

  it('refuses a field nobody claims inside interface items (422), naming it, before planning', () => {
    const { planner } = provisioning();
    const start = (current: Attrs, patch: Attrs) => () =>
      planner.start(
        {
          jobId: 'j',
          kind: 'host',
          name: 'web-04',
          current,
          updates: mergePatchToUpdates(planner.schema, current, patch),
        },
        0,
      );
    const speed = { interfaces: [{ name: 'eth0', ip: '10.0.0.4', speed: 10 }] };
    expectError(
      start({}, speed),
      SchemaViolationError,
      'host attributes violate the schema: /interfaces/0: must NOT have unevaluated properties (speed)',
    );
    expectError(
      start({ present: true, interfaces: [{ name: 'eth0', ip: '10.0.0.4' }] }, speed),
      UnknownAttributeError,
      'unknown path "interfaces[eth0].speed" for kind host',
    );
  });

  it('converges with the subnet given', async () => {
    const w = provisioning();
    const state = await run(w.planner, w.providers, [HWSPEC, POWER_ON, SUBNET]);
    expect(state.phase).toBe('succeeded');
    expect(roundShape(state)).toEqual([['ipam', 'vm'], ['pxe'], ['vm']]);
  });

  it.each<[string, Parameters<typeof handlerProvider>[2], string[][], number[]]>([
    [
      'a deferral that names nothing to wait for (only the outside world can clear it)',
      (_t, u, o) => o.deferred.push({ id: u.id, reason: 'booting', waitFor: [] }),
      [['a'], ['a'], ['a']],
      [500, 1000, 1500],
    ],
    [
      'a deferral without waitFor (any change may clear it)',
      (_t, u, o) => o.deferred.push({ id: u.id, reason: 'booting' }),
      [['a'], ['a'], ['a']],
      [500, 1000, 1500],
    ],
    [
      'a wait for its own input that the request does give (the provider is asked again)',
      (_t, u, o) => o.deferred.push({ id: u.id, reason: 'later', waitFor: ['z'] }),
      [['a'], ['a'], ['a']],
      [500, 1000, 1500],
    ],
  ])('still waits with backoff until the TTL for %s', async (_, handle, shape, sleeps) => {
    const w = world([handlerProvider('a', [claim('x'), claim('z')], handle)], { ttlMs: 3_000 });
    const clock = virtualClock(0);
    const state = await run(
      w.planner,
      w.providers,
      [
        { path: 'x', op: 'set', value: '1' },
        { path: 'z', op: 'set', value: '2' },
      ],
      {},
      clock,
    );
    expect(state.phase).toBe('expired');
    expect(roundShape(state)).toEqual(shape);
    expect(clock.sleeps).toEqual(sleeps);
  });
});
