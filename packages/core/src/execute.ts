/**
 * The executor of provider tasks (`runProviderTask`, which the worker runs every production task through) and the
 * drivers of the planner that run tasks in this process with it: `runPlan` applies a change (plugin tests), and
 * `explainPlan` runs the same loop over providers' side-effect-free `explain` (the API's `?explain=true`).
 */
import { toErrorInfo } from './errors.js';
import type {
  JobFailure,
  PlanInput,
  PlannerState,
  RoundRecord,
  TaskResult,
  TransitionPlanner,
  Condition,
} from './planner.js';
import { conditionsOf, isTerminal } from './planner.js';
import type { Logger, NodeProvider, ProviderTask } from './provider.js';
import { silentLogger } from './provider.js';

/** Time as the executor sees it; tests pass a virtual clock. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Options of `runPlan`. */
export interface RunOptions {
  readonly clock: Clock;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
  readonly fencingToken?: string;
  /** Called after every change of state: a started round, a folded result. */
  readonly onState?: (state: PlannerState) => void;
}

/** What one provider task runs with: the clock that times it, and what the provider's context carries. */
export type TaskRunOptions = Omit<RunOptions, 'onState'>;

/**
 * Runs one provider task (`apply`, or `explain` without side effects) and describes how it went; never throws:
 * whatever the provider throws becomes the result's error. The one executor of provider tasks: the worker runs
 * every production task through it, and `runPlan` and `explainPlan` run in-process plans with it.
 */
export async function runProviderTask(
  provider: NodeProvider | undefined,
  task: ProviderTask,
  mode: 'apply' | 'explain',
  options: TaskRunOptions,
): Promise<TaskResult> {
  const started = options.clock.now();
  const base = { taskId: task.id, attempt: task.attempt };
  try {
    if (provider === undefined)
      throw new Error(`provider ${task.provider} for kind ${task.kind} is not loaded here`);
    const context = {
      logger: options.logger ?? silentLogger,
      signal: options.signal ?? new AbortController().signal,
      fencingToken: options.fencingToken ?? '0',
      now: () => options.clock.now(),
    };
    const outcome =
      mode === 'apply' ? await provider.apply(task, context) : await provider.explain(task, context);
    return { ...base, outcome, durationMs: options.clock.now() - started };
  } catch (error) {
    return { ...base, error: toErrorInfo(error), durationMs: options.clock.now() - started };
  }
}

/** Runs a plan to a terminal state, running each round's tasks in parallel; stops early only if `signal` aborts. */
export async function runPlan(
  planner: TransitionPlanner,
  initial: PlannerState,
  providers: ReadonlyMap<string, NodeProvider>,
  options: RunOptions,
): Promise<PlannerState> {
  let state = initial;
  const publish = (): void => options.onState?.(state);
  while (!isTerminal(state) && options.signal?.aborted !== true) {
    const dispatch = planner.dispatch(state, options.clock.now());
    state = dispatch.state;
    if (dispatch.tasks.length > 0) {
      publish();
      await Promise.all(
        dispatch.tasks.map(async (task) => {
          const result = await runProviderTask(providers.get(task.provider), task, 'apply', options);
          state = planner.step(state, result, options.clock.now());
          publish();
        }),
      );
    } else if (dispatch.wakeAt !== null) {
      await options.clock.sleep(Math.max(0, dispatch.wakeAt - options.clock.now()), options.signal);
    } else publish();
  }
  return state;
}

/** The plan of a change, as explain shows it. */
export interface Plan {
  /** `succeeded`: the change would converge; `failed`: it would fail; `blocked`: it would wait on a provider. */
  readonly outcome: 'succeeded' | 'failed' | 'blocked';
  readonly rounds: readonly RoundRecord[];
  /** Values that will only be known when applied, and which provider supplies each. */
  readonly later: readonly { readonly path: string; readonly provider: string }[];
  /** What is still pending when the plan stops (why it is blocked). */
  readonly blockedOn: readonly Condition[];
  /**
   * When blocked, why, in one line: what is never supplied when no provider can ever make progress (the job would
   * fail with code `BLOCKED`, as `failure` says), else what the change would wait for.
   */
  readonly reason?: string;
  readonly failure?: JobFailure;
}

/**
 * Plans a change without side effects: the planning loop over `explain`. Time is virtual, retries happen at once,
 * and the plan stops as `blocked` at the first round that would have to wait for the outside world.
 */
export async function explainPlan(
  planner: TransitionPlanner,
  input: PlanInput,
  providers: ReadonlyMap<string, NodeProvider>,
  options: { readonly logger?: Logger; readonly now?: number } = {},
): Promise<Plan> {
  let now = options.now ?? 0;
  const clock: Clock = { now: () => now, sleep: () => Promise.resolve() };
  let state = planner.start(input, now);
  let blocked = false;
  while (!isTerminal(state)) {
    const dispatch = planner.dispatch(state, now);
    state = dispatch.state;
    if (dispatch.tasks.length > 0) {
      const results = await Promise.all(
        dispatch.tasks.map((task) =>
          runProviderTask(providers.get(task.provider), task, 'explain', { ...options, clock }),
        ),
      );
      for (const result of results) state = planner.step(state, result, now);
      if (state.idleStreak > 0 && !isTerminal(state)) {
        blocked = true;
        break;
      }
    } else if (dispatch.wakeAt !== null) now = dispatch.wakeAt;
  }
  // A change that nothing can ever complete is blocked too, for the reason the job would fail with.
  const hopeless = state.failure?.code === 'BLOCKED';
  const outcome = blocked || hopeless ? 'blocked' : state.phase === 'succeeded' ? 'succeeded' : 'failed';
  const blockedOn = outcome === 'blocked' ? conditionsOf(state) : [];
  const waiting = blockedOn
    .map((c) => `${c.provider}: ${c.path}${c.reason === undefined ? '' : ` (${c.reason})`}`)
    .join('; ');
  const reason = hopeless ? state.failure?.message : blocked ? `would wait for ${waiting}` : undefined;
  return {
    outcome,
    rounds: state.rounds,
    later: Object.entries(state.later).map(([path, provider]) => ({ path, provider })),
    blockedOn,
    ...(reason === undefined ? {} : { reason }),
    ...(state.failure === undefined ? {} : { failure: state.failure }),
  };
}

/** A clock over real time. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};
