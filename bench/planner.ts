/**
 * Planner benchmark: rounds per second for a 6-provider, 40-attribute host, the DESIGN.md §2 example per round,
 * and merge throughput, each against a loopback TCP round trip measured in the same run (the floor of one etcd
 * round trip); then how a whole plan grows with the size of a set list (1k, 10k, 50k items: the time per item
 * should stay flat). Run with `make bench` or `pnpm bench planner`.
 */
import type { Attrs, JsonValue, NodeProvider, ProviderTask, UpdateRequest } from '@consortium/core';
import {
  applyUpdate,
  buildKindSchemas,
  mergePatchToUpdates,
  parsePath,
  runPlan,
  SchemaViolationError,
  TransitionPlanner,
} from '@consortium/core';
import { CREATE_WEB_01, provisioningWorld } from '@consortium/testkit';
import type { Measurement } from './lib.js';
import { loopbackRoundTrip, measure, report } from './lib.js';

const PROVIDERS = 6;
const ATTRIBUTES = 40;

/** A host kind with 40 attributes spread over 6 providers, and a request that sets every one of them. */
function wideHost() {
  const providers: NodeProvider[] = [];
  const updates: UpdateRequest[] = [];
  for (let p = 0; p < PROVIDERS; p++) {
    const claims = [];
    for (let a = p; a < ATTRIBUTES; a += PROVIDERS) {
      claims.push({ path: `attr_${a}`, schema: { type: 'string', maxLength: 64 } });
      updates.push({ path: `attr_${a}`, op: 'set', value: `value-${a}` });
    }
    const accept = (task: ProviderTask) => Promise.resolve({ accepted: task.updates.map((u) => u.id) });
    providers.push({ name: `p${p}`, kind: 'host', claims, apply: accept, explain: accept });
  }
  const schema = buildKindSchemas([{ name: 'host' }], providers).get('host')!;
  return { planner: new TransitionPlanner(schema), updates };
}

/** Runs one plan synchronously: every provider accepts at once, as the fixture's providers decide. */
function drive(
  planner: TransitionPlanner,
  updates: readonly UpdateRequest[],
  answer: (task: ProviderTask) => object,
  current: Attrs = {},
): number {
  let state = planner.start({ jobId: 'bench', kind: 'host', name: 'web-01', current, updates }, 0);
  let now = 0;
  while (state.phase === 'running') {
    const d = planner.dispatch(state, now);
    state = d.state;
    for (const task of d.tasks) {
      state = planner.step(
        state,
        { taskId: task.id, attempt: task.attempt, outcome: answer(task), durationMs: 0 },
        now,
      );
    }
    if (d.tasks.length === 0) now = d.wakeAt ?? now + 1;
  }
  if (state.phase !== 'succeeded')
    throw new Error(`benchmark plan ended ${state.phase}: ${state.failure?.message}`);
  return state.rounds.length;
}

export async function plannerBench(): Promise<void> {
  const baseline = await loopbackRoundTrip();

  const wide = wideHost();
  const acceptAll = (task: ProviderTask) => ({ accepted: task.updates.map((u) => u.id) });
  const wideRound = await measure(`full round: ${PROVIDERS} providers, ${ATTRIBUTES} attributes`, () =>
    drive(wide.planner, wide.updates, acceptAll),
  );

  // The §2 example with the fixture's own decisions, replayed without the fake backends' bookkeeping.
  const world = provisioningWorld();
  const clock = { now: () => 0, sleep: () => Promise.resolve() };
  const live = await runPlan(
    world.planner,
    world.planner.start(
      { jobId: 'bench', kind: 'host', name: 'web-01', current: {}, updates: CREATE_WEB_01 },
      0,
    ),
    world.providers,
    { clock },
  );
  const recorded = new Map<string, object>();
  for (const round of live.rounds)
    for (const task of round.tasks) recorded.set(`${round.round}/${task.provider}`, task.outcome ?? {});
  const exampleRounds = drive(world.planner, CREATE_WEB_01, (task) =>
    recorded.get(`${task.round}/${task.provider}`)!,
  );
  const example = await measure(`DESIGN §2 example, whole job (${exampleRounds} rounds)`, () =>
    drive(world.planner, CREATE_WEB_01, (task) => recorded.get(`${task.round}/${task.provider}`)!),
  );
  const perRound: Measurement = {
    name: 'DESIGN §2 example, per round',
    iterations: example.iterations * exampleRounds,
    opsPerSecond: example.opsPerSecond * exampleRounds,
    meanMicros: example.meanMicros / exampleRounds,
  };

  const schema = world.schema;
  let attrs: Attrs = {
    present: true,
    hwspec: 'small',
    datacenter: 'pek1',
    puppet_roles: ['nginx', 'base'],
    interfaces: [{ name: 'eth0', ip: '10.1.2.34', mac: '52:54:00:00:00:01' }],
  };
  const ops: [string, 'set' | 'add', JsonValue][] = [
    ['hwspec', 'set', 'large'],
    ['interfaces[eth0].mac', 'set', '52:54:00:00:00:02'],
    ['interfaces[eth1].ip', 'set', '10.1.3.4'],
    ['puppet_roles', 'add', 'nginx'],
    ['puppet_roles', 'add', 'haproxy'],
  ];
  const parsed = ops.map(([path, op, value]) => [parsePath(path), op, value] as const);
  let i = 0;
  const merge = await measure('merge: one update (mixed set / map item / set add)', () => {
    const [path, op, value] = parsed[i++ % parsed.length]!;
    attrs = applyUpdate(attrs, path, op, value, schema);
  });

  report('planner', [baseline, wideRound, example, perRound, merge]);
  const ratio = (m: Measurement) => (m.meanMicros / baseline.meanMicros).toFixed(3);
  console.log(
    `\n  ratio to one loopback round trip (lower is better; < 1 means cheaper than the network floor):`,
  );
  console.log(`    full 6-provider/40-attribute round: ${ratio(wideRound)}`);
  console.log(
    `    one round of the DESIGN §2 example: ${ratio(perRound)}  (target: < 0.1 ms → ${perRound.meanMicros < 100 ? 'met' : 'NOT met'})`,
  );
  console.log(`    one merge:                          ${ratio(merge)}`);
  setListBench();
}

/** A host whose set list may hold 100,000 roles (one provider owns it, another watches it). */
function rolesHost(maxItems: number | undefined) {
  const accept = (task: ProviderTask) => Promise.resolve({ accepted: task.updates.map((u) => u.id) });
  const roles = { type: 'array', 'x-list-type': 'set', items: { type: 'string' } };
  const providers: NodeProvider[] = [
    {
      name: 'inventory',
      kind: 'host',
      claims: [{ path: 'puppet_roles', schema: maxItems === undefined ? roles : { ...roles, maxItems } }],
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
  return new TransitionPlanner(buildKindSchemas([{ name: 'host' }], providers).get('host')!);
}

/** The median of `runs` timings of `fn`, in milliseconds. */
function medianMs(runs: number, fn: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

/**
 * Issue 9: a merge patch adding N roles to a set list, translated, planned and run to success; and the same
 * 50,000-role patch against the default limit of 1,000 items, which must be refused before planning.
 */
export function setListBench(): void {
  const planner = rolesHost(100_000);
  const current: Attrs = { present: true, puppet_roles: ['base'] };
  const acceptAll = (task: ProviderTask) => ({ accepted: task.updates.map((u) => u.id) });
  const roles = (n: number) => ['base', ...Array.from({ length: n }, (_, i) => `role-${i}`)];
  const plan = (n: number) => () => {
    const updates = mergePatchToUpdates(planner.schema, current, { puppet_roles: roles(n) });
    drive(planner, updates, acceptAll, current);
  };
  plan(1_000)(); // warm-up
  const sizes = [1_000, 10_000, 50_000];
  const rows = sizes.map((n) => ({ n, ms: medianMs(n <= 1_000 ? 15 : n <= 10_000 ? 5 : 3, plan(n)) }));
  const base = rows[0]!;
  console.log('\nplanner: a merge patch adding N items to a set list (patch → start → rounds → succeeded)');
  for (const { n, ms } of rows) {
    const perItem = (ms * 1000) / n;
    const ratio = ms / base.ms;
    console.log(
      `  N=${String(n).padStart(6)}  ${ms.toFixed(1).padStart(8)} ms  ${perItem.toFixed(2).padStart(6)} µs/item  ` +
        `×${ratio.toFixed(1)} the time of N=${base.n} for ×${n / base.n} the items (linear: ×${n / base.n}, quadratic: ×${(n / base.n) ** 2})`,
    );
  }
  const limited = rolesHost(undefined);
  const refused = medianMs(3, () => {
    try {
      const updates = mergePatchToUpdates(limited.schema, current, { puppet_roles: roles(50_000) });
      limited.start({ jobId: 'bench', kind: 'host', name: 'web-01', current, updates }, 0);
    } catch (error) {
      if (error instanceof SchemaViolationError) return;
      throw error;
    }
    throw new Error('50,000 roles were not refused under the default limit');
  });
  console.log(`  N=50,000 under the default limit (1,000 items): refused in ${refused.toFixed(1)} ms`);
}
