/**
 * How planning grows with the size of a list: work is counted (value comparisons, list items scanned or copied)
 * through the core's work meter, not timed, so these tests fail on quadratic code however fast the machine is.
 */
import { describe, expect, it } from 'vitest';
import { SchemaViolationError } from '../errors.js';
import type { Attrs } from '../model.js';
import { mergePatchToUpdates } from '../patch.js';
import { TransitionPlanner } from '../planner.js';
import type { NodeProvider, ProviderTask } from '../provider.js';
import { buildKindSchemas, kindSchemaOf } from '../schema.js';
import { measureWork } from '../work-meter.js';

const accept = (task: ProviderTask) => Promise.resolve({ accepted: task.updates.map((u) => u.id) });
/** Inventory owns a set list that may hold 100,000 roles; cobbler watches it. */
const providers: NodeProvider[] = [
  {
    name: 'inventory',
    kind: 'host',
    claims: [
      {
        path: 'puppet_roles',
        schema: { type: 'array', 'x-list-type': 'set', items: { type: 'string' }, maxItems: 100_000 },
      },
    ],
    apply: accept,
    explain: accept,
  },
  {
    name: 'cobbler',
    kind: 'host',
    claims: [{ path: 'profile', schema: { type: 'string' } }],
    watches: ['puppet_roles'],
    apply: accept,
    explain: accept,
  },
];
const planner = new TransitionPlanner(kindSchemaOf(buildKindSchemas([{ name: 'host' }], providers), 'host'));

const roles = (n: number, prefix = 'role'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Translates a merge patch and runs its plan to the end with every provider accepting; returns the final phase. */
function plan(current: Attrs, patch: Attrs): string {
  const updates = mergePatchToUpdates(planner.schema, current, patch);
  let state = planner.start({ jobId: 'j', kind: 'host', name: 'web-01', current, updates }, 0);
  let now = 0;
  while (state.phase === 'running') {
    const dispatch = planner.dispatch(state, now);
    state = dispatch.state;
    for (const task of dispatch.tasks) {
      const outcome = { accepted: task.updates.map((u) => u.id) };
      state = planner.step(state, { taskId: task.id, attempt: task.attempt, outcome, durationMs: 0 }, now);
    }
    if (dispatch.tasks.length === 0) now = dispatch.wakeAt ?? now + 1;
  }
  return state.phase;
}

describe('planning a set list of N items', () => {
  it.each<[string, (n: number) => [Attrs, Attrs]]>([
    [
      'adding N roles',
      (n) => [{ present: true, puppet_roles: ['base'] }, { puppet_roles: ['base', ...roles(n)] }],
    ],
    [
      'removing N roles',
      (n) => [{ present: true, puppet_roles: ['base', ...roles(n)] }, { puppet_roles: ['base'] }],
    ],
    [
      'replacing N roles by N others',
      (n) => [{ present: true, puppet_roles: roles(n, 'old') }, { puppet_roles: roles(n, 'new') }],
    ],
  ])('%s grows linearly: 8 times the items is at most 10 times the work', (_, make) => {
    const work = (n: number): number => {
      const [current, patch] = make(n);
      const { result, steps } = measureWork(() => plan(current, patch));
      expect(result).toBe('succeeded');
      return steps;
    };
    const small = work(1_000);
    const large = work(8_000);
    // Quadratic code (a scan of the list per item) does 64 times the work here.
    expect(large / small).toBeLessThan(10);
    expect(large).toBeLessThan(8_000 * 40);
  });
});

describe('a request over the list limit', () => {
  const limited = new TransitionPlanner(
    kindSchemaOf(
      buildKindSchemas(
        [{ name: 'host' }],
        [
          {
            name: 'inventory',
            kind: 'host',
            claims: [
              {
                path: 'puppet_roles',
                schema: { type: 'array', 'x-list-type': 'set', items: { type: 'string' } },
              },
            ],
          },
        ],
      ),
      'host',
    ),
  );
  const start = (current: Attrs, patch: Attrs) => () =>
    limited.start(
      {
        jobId: 'j',
        kind: 'host',
        name: 'web-01',
        current,
        updates: mergePatchToUpdates(limited.schema, current, patch),
      },
      0,
    );

  it.each([
    ['50,000 new roles', { present: true, puppet_roles: ['base'] }, 50_000],
    ['one role past 1,000 held', { present: true, puppet_roles: roles(1_000) }, 1],
  ])(
    'is refused before planning with a SchemaViolationError naming the list and the limit (%s)',
    (_, current, n) => {
      const patch = { puppet_roles: [...current.puppet_roles, ...roles(n, 'new')] };
      const { result: thrown, steps } = measureWork(() => {
        try {
          start(current, patch)();
        } catch (error) {
          return error;
        }
        return undefined;
      });
      expect(thrown).toBeInstanceOf(SchemaViolationError);
      expect((thrown as SchemaViolationError).message).toBe(
        'host attributes violate the schema: /puppet_roles: must NOT have more than 1000 items',
      );
      expect(steps).toBeLessThan(20 * (n + current.puppet_roles.length));
    },
  );

  it('accepts exactly the limit', () => {
    expect(start({ present: true }, { puppet_roles: roles(1_000) })().phase).toBe('running');
    expect(
      start({ present: true, puppet_roles: ['base'] }, { puppet_roles: ['base', ...roles(999)] })().phase,
    ).toBe('running');
  });
});
