/**
 * The transition planner: a pure state machine that turns proposed updates into a converged node (DESIGN.md §2).
 * `start` validates a request and makes the first state, `dispatch` says which provider tasks to run now, `step`
 * folds one task's result in. No I/O and no clock: time is an argument, task and update ids are deterministic, and
 * the state is plain JSON so that it can be persisted after every round and resumed anywhere.
 */
import { InputError, toErrorInfo } from './errors.js';
import { deepEqual } from './json.js';
import { applyUpdate, AttrsDraft, getAt, unheldUpdates } from './merge.js';
import type { JsonValue, ProposedUpdate } from './model.js';
import { CORE_PROVIDER, USER_ORIGIN } from './model.js';
import type { Path } from './paths.js';
import { parsePath } from './paths.js';
import type { Operation, ProviderTask } from './provider.js';
import type { KindSchema } from './schema.js';
import { checkCycle } from './planner/cycles.js';
import { checkListLimits, checkRequestUpdates } from './planner/intake.js';
import { mergeOutcomes } from './planner/outcomes.js';
import { collectProposals } from './planner/proposals.js';
import { roundRecordOf } from './planner/records.js';
import type {
  Dispatch,
  JobFailure,
  JobPhase,
  PendingUpdate,
  PlanInput,
  PlannerOptions,
  PlannerState,
  TaskResult,
  TaskState,
} from './planner/types.js';
import { backoffDelay } from './backoff.js';
import { DEFAULT_PLANNER_OPTIONS, isTerminal } from './planner/types.js';
import { describe, FirstFailure, proposedUpdate } from './planner/updates.js';
import { hopelessReason, nudgesFor, wakeDeferred } from './planner/wakeups.js';
import { syncsFor } from './planner/watches.js';

export * from './planner/types.js';

/** The transition planner for one kind: pure functions over `PlannerState`. */
export class TransitionPlanner {
  /** Builds a planner over a compiled kind schema. */
  constructor(
    readonly schema: KindSchema,
    readonly options: PlannerOptions = DEFAULT_PLANNER_OPTIONS,
  ) {}

  /**
   * Validates the user's updates and makes the first state. Updates of `present` are the core's and hold at once.
   * Throws `UnknownAttributeError`, `InputError` (bad op, overlapping updates) or `SchemaViolationError`.
   */
  start(input: PlanInput, now: number): PlannerState {
    if (input.updates.length === 0) throw new InputError('a change needs at least one update');
    const userUpdates: ProposedUpdate[] = input.updates.map((request, i) =>
      proposedUpdate(`u${i + 1}`, USER_ORIGIN, request),
    );
    const paths = userUpdates.map((u) => this.schema.resolvePath(u.path));
    checkListLimits(this.schema, userUpdates, paths);
    checkRequestUpdates(this.schema, userUpdates, paths);
    // Trial-apply everything to check the result against the kind's schema before any backend is touched.
    const trial = new AttrsDraft(input.current, this.schema);
    userUpdates.forEach((update, i) => {
      trial.apply(paths[i] as Path, update.op, update.value);
    });
    this.schema.assertValid(trial.result());

    let attrs = input.current;
    const pending: PendingUpdate[] = [];
    const changes: Record<string, { by: string; version: number }> = {};
    userUpdates.forEach((update, i) => {
      const path = paths[i] as Path;
      const provider = this.schema.authorityOf(path);
      if (provider === CORE_PROVIDER) {
        const before = getAt(attrs, path, this.schema);
        attrs = applyUpdate(attrs, path, update.op, update.value, this.schema);
        if (!deepEqual(before, getAt(attrs, path, this.schema)))
          changes[update.path] = { by: USER_ORIGIN, version: 0 };
      } else pending.push({ update, provider, status: 'ready' });
    });
    let state: PlannerState = {
      jobId: input.jobId,
      kind: input.kind,
      name: input.name,
      phase: 'running',
      attrs,
      userUpdates,
      pending,
      version: 0,
      changes,
      later: {},
      round: null,
      rounds: [],
      progressRounds: 0,
      idleStreak: 0,
      notBefore: now,
      startedAt: now,
      deadline: now + this.options.ttlMs,
      fingerprints: {},
    };
    const syncs = syncsFor(
      this.schema,
      state,
      Object.keys(changes).map((path) => ({ path, by: USER_ORIGIN })),
      0,
    );
    state = { ...state, pending: [...pending, ...syncs] };
    return state.pending.length === 0 ? this.finish(state, now) : state;
  }

  /**
   * Says which tasks to run now: due retries of the current round, or a new round when none is open and its time
   * has come. Expires the job once its deadline has passed.
   */
  dispatch(state: PlannerState, now: number): Dispatch {
    if (isTerminal(state)) return { state, tasks: [], wakeAt: null };
    if (now >= state.deadline) return { state: this.expire(state, now), tasks: [], wakeAt: null };
    if (state.round !== null) {
      const tasks: ProviderTask[] = [];
      const round = state.round;
      const updated = round.tasks.map((task) => {
        if (task.status !== 'waiting' || task.notBefore > now) return task;
        const started: TaskState = { ...task, status: 'running', attempt: task.attempt + 1, startedAt: now };
        tasks.push(this.taskFor(state, round.number, started));
        return started;
      });
      const waits = updated.filter((t) => t.status === 'waiting').map((t) => t.notBefore);
      const next = tasks.length > 0 ? { ...state, round: { ...round, tasks: updated } } : state;
      return { state: next, tasks, wakeAt: waits.length > 0 ? Math.min(state.deadline, ...waits) : null };
    }
    if (now < state.notBefore) return { state, tasks: [], wakeAt: Math.min(state.notBefore, state.deadline) };
    // After a wait without progress every deferred update is asked again: the world may have changed.
    const ready = state.pending.filter(
      (p) => p.status === 'ready' || (state.idleStreak > 0 && p.status === 'deferred'),
    );
    const providers = [...new Set(ready.map((p) => p.provider))].sort();
    const number = state.rounds.length + 1;
    const taskStates: TaskState[] = providers.map((provider) => ({
      id: `${state.jobId}/r${number}/${provider}`,
      provider,
      updateIds: ready.filter((p) => p.provider === provider).map((p) => p.update.id),
      attempt: 1,
      status: 'running',
      notBefore: now,
      startedAt: now,
    }));
    const inflight = new Set(ready.map((p) => p.update.id));
    const next: PlannerState = {
      ...state,
      pending: state.pending.map((p) =>
        inflight.has(p.update.id) ? { ...p, status: 'inflight' as const } : p,
      ),
      round: { number, startedAt: now, tasks: taskStates },
    };
    return { state: next, tasks: taskStates.map((t) => this.taskFor(next, number, t)), wakeAt: null };
  }

  /**
   * Folds one task result into the state. Results for unknown, finished or superseded attempts (a late answer
   * from a worker that lost its claim) are ignored. When the round's last task is in, the round is merged.
   */
  step(state: PlannerState, result: TaskResult, now: number): PlannerState {
    if (isTerminal(state) || state.round === null) return state;
    const round = state.round;
    const task = round.tasks.find((t) => t.id === result.taskId);
    if (task?.status !== 'running' || task.attempt !== result.attempt) return state;
    let updatedTask: TaskState;
    if ('error' in result) {
      const errors = [...(task.errors ?? []), result.error];
      if (result.error.retryable && task.attempt < this.options.maxTaskAttempts) {
        updatedTask = {
          ...task,
          status: 'waiting',
          errors,
          notBefore: now + backoffDelay(this.options.retryBackoff, task.attempt),
        };
      } else
        updatedTask = { ...task, status: 'done', error: result.error, errors, durationMs: result.durationMs };
    } else updatedTask = { ...task, status: 'done', outcome: result.outcome, durationMs: result.durationMs };
    const tasks = round.tasks.map((t) => (t === task ? updatedTask : t));
    const next: PlannerState = { ...state, round: { ...round, tasks } };
    return tasks.every((t) => t.status === 'done') ? this.fold(next, now) : next;
  }

  /**
   * Continues a persisted state in a new master after a crash or failover: tasks that were running may never
   * answer, so they are run again as a new attempt (same task id, so providers converge idempotently).
   */
  resume(state: PlannerState, now: number): PlannerState {
    if (isTerminal(state) || state.round === null) return state;
    const tasks = state.round.tasks.map((task) =>
      task.status === 'running' ? { ...task, status: 'waiting' as const, notBefore: now } : task,
    );
    return { ...state, round: { ...state.round, tasks } };
  }

  /** Ends the job as cancelled; results still in flight will be ignored. */
  cancel(state: PlannerState, reason: string, now: number): PlannerState {
    if (isTerminal(state)) return state;
    return this.end(state, 'cancelled', { code: 'CANCELLED', message: reason }, now);
  }

  private taskFor(state: PlannerState, round: number, task: TaskState): ProviderTask {
    const ids = new Set(task.updateIds);
    const later = Object.keys(state.later).length > 0 ? { later: state.later } : {};
    return {
      id: task.id,
      jobId: state.jobId,
      round,
      attempt: task.attempt,
      provider: task.provider,
      kind: state.kind,
      name: state.name,
      node: state.attrs,
      updates: state.pending.filter((p) => ids.has(p.update.id)).map((p) => p.update),
      ...later,
    };
  }

  private end(
    state: PlannerState,
    phase: JobPhase,
    failure: JobFailure | undefined,
    now: number,
  ): PlannerState {
    const base: PlannerState = { ...state, phase, endedAt: now, round: null, notBefore: now };
    return failure === undefined ? base : { ...base, failure };
  }

  private expire(state: PlannerState, now: number): PlannerState {
    const waiting = state.pending
      .map((p) => `${p.provider}: ${p.update.path}${p.reason === undefined ? '' : ` (${p.reason})`}`)
      .join('; ');
    const providers = [...new Set(state.pending.map((p) => p.provider))].sort();
    return this.end(
      state,
      'expired',
      {
        code: 'EXPIRED',
        message: `TTL of ${Math.round(this.options.ttlMs / 1000)}s expired; still waiting on ${waiting || 'nothing'}`,
        providers,
      },
      now,
    );
  }

  /** Pending empty: succeeded if every user update holds, else failed naming the ones that do not. */
  private finish(state: PlannerState, now: number): PlannerState {
    const broken = unheldUpdates(
      state.attrs,
      state.userUpdates.map((update) => ({ update, path: parsePath(update.path) })),
      this.schema,
    );
    if (broken.length === 0) return this.end(state, 'succeeded', undefined, now);
    const found = broken
      .map((u) => {
        const found = getAt(state.attrs, parsePath(u.path), this.schema);
        return `${describe(u)} (found ${found === undefined ? 'nothing' : JSON.stringify(found)})`;
      })
      .join('; ');
    return this.end(
      state,
      'failed',
      {
        code: 'NOT_CONVERGED',
        message: `every provider answered but the node does not hold: ${found}`,
        providers: [...new Set(broken.map((u) => this.schema.authorityOf(parsePath(u.path))))].sort(),
      },
      now,
    );
  }

  /**
   * Merges a finished round in phases: outcomes and values, proposals, watches, then what comes next (finish,
   * failure, cycle check, wake-ups and backoff).
   */
  private fold(state: PlannerState, now: number): PlannerState {
    const round = state.round;
    if (round === null) return state;
    const failures = new FirstFailure();
    const version = state.version + 1;
    const byId = new Map(state.pending.map((p) => [p.update.id, p]));
    const tasks = [...round.tasks].sort((a, b) => a.provider.localeCompare(b.provider));
    const merged = mergeOutcomes(this.schema, state, tasks, byId, failures);
    const { attrs, later, changed, settled } = merged;
    const { proposals, proposers } = collectProposals(
      this.schema,
      state,
      round.number,
      tasks,
      attrs,
      settled,
      failures,
    );
    const roundRecord = roundRecordOf(round, tasks, byId, changed, now);
    const rounds = [...state.rounds, roundRecord];

    if (failures.failure !== undefined) {
      return this.end({ ...state, rounds, attrs }, 'failed', failures.failure, now);
    }
    try {
      if (Object.keys(later).length === 0) this.schema.assertValid(attrs);
    } catch (error) {
      const info = toErrorInfo(error);
      return this.end(
        { ...state, rounds },
        'failed',
        { code: info.code, message: `the merged node is invalid: ${info.message}` },
        now,
      );
    }

    const remaining = state.pending
      .filter((p) => !settled.has(p.update.id))
      .map((p) => merged.deferred.get(p.update.id) ?? p);
    const changes = { ...state.changes };
    for (const change of changed) changes[change.path] = { by: change.by, version };
    let next: PlannerState = {
      ...state,
      attrs,
      later,
      version,
      changes,
      round: null,
      rounds,
      pending: [...remaining, ...proposals],
    };
    const syncs = syncsFor(this.schema, next, changed, round.number);
    const progress = merged.accepted > 0 || changed.length > 0 || proposals.length > 0 || syncs.length > 0;
    next = {
      ...next,
      pending: [...next.pending, ...syncs],
      rounds: [...state.rounds, { ...roundRecord, progress }],
    };
    if (next.pending.length === 0) return this.finish(next, now);

    const progressRounds = state.progressRounds + (progress ? 1 : 0);
    if (progressRounds > this.options.maxRounds) {
      return this.end(next, 'failed', this.notConverged(next), now);
    }
    if (proposers.size > 0) {
      const checked = checkCycle(this.schema, next, round.number);
      if ('failure' in checked) return this.end(next, 'failed', checked.failure, now);
      next = checked.state;
    }
    return this.wake(state, next, progress, progressRounds, round.number, now);
  }

  private notConverged(state: PlannerState): JobFailure {
    return {
      code: 'NOT_CONVERGED',
      message: `did not converge within ${this.options.maxRounds} rounds; still pending: ${state.pending.map((p) => `${p.provider}: ${describe(p.update)}`).join('; ')}`,
      providers: [...new Set(state.pending.map((p) => p.provider))].sort(),
    };
  }

  /** Wakes deferred updates and nudges idle owners; without anything ready, waits with backoff. */
  private wake(
    before: PlannerState,
    next: PlannerState,
    progress: boolean,
    progressRounds: number,
    round: number,
    now: number,
  ): PlannerState {
    const readied = wakeDeferred(next);
    const { nudges, nudged } = nudgesFor(this.schema, readied, next.nudged ?? [], round);
    if (nudges.length > 0) {
      readied.push(...nudges);
      next = { ...next, nudged };
    }
    const anyReady = readied.some((p) => p.status === 'ready');
    if (!anyReady) {
      // Waiting with backoff is for what the world may still change; fail now when nothing ever will.
      const hopeless = hopelessReason(this.schema, readied, next.userUpdates, next.nudged ?? []);
      if (hopeless !== undefined) {
        return this.end(
          { ...next, pending: readied, progressRounds },
          'failed',
          {
            code: 'BLOCKED',
            message: hopeless,
            providers: [...new Set(readied.map((p) => p.provider))].sort(),
          },
          now,
        );
      }
    }
    if ((progress || nudges.length > 0) && anyReady) {
      return { ...next, pending: readied, progressRounds, idleStreak: 0, notBefore: now };
    }
    // Nothing to do until the world changes: wait with backoff, then ask every provider again.
    const idleStreak = before.idleStreak + 1;
    return {
      ...next,
      pending: readied,
      progressRounds,
      idleStreak,
      notBefore: now + backoffDelay(this.options.idleBackoff, idleStreak),
    };
  }
}

/** The value of a path in a state's merged attributes (for tests and renderers). */
export function valueAt(
  planner: TransitionPlanner,
  state: PlannerState,
  path: string,
): JsonValue | undefined {
  return getAt(state.attrs, parsePath(path), planner.schema);
}

/** All operations of a finished round list, flattened in round and provider order. */
export function operationsOf(state: PlannerState): (Operation & { round: number; provider: string })[] {
  return state.rounds.flatMap((r) =>
    r.tasks.flatMap((t) =>
      (t.outcome?.operations ?? []).map((op) => ({ ...op, round: r.round, provider: t.provider })),
    ),
  );
}
