/**
 * The transition planner: a pure state machine that turns proposed updates into a converged node (DESIGN.md §2).
 * `start` validates a request and makes the first state, `dispatch` says which provider tasks to run now, `step`
 * folds one task's result in. No I/O and no clock: time is an argument, task and update ids are deterministic, and
 * the state is plain JSON so that it can be persisted after every round and resumed anywhere.
 */
import { createHash } from 'node:crypto';
import type { ErrorCode, ErrorInfo } from './errors.js';
import { InputError, SchemaViolationError, toErrorInfo } from './errors.js';
import { canonicalJson, deepEqual } from './json.js';
import { applyUpdate, AttrsDraft, getAt, updateHolds } from './merge.js';
import type { Attrs, JsonObject, JsonValue, ProposedUpdate, UpdateOp, UpdateRequest } from './model.js';
import { CORE_PROVIDER, isJsonObject, USER_ORIGIN } from './model.js';
import type { Path } from './paths.js';
import { formatPath, overlaps, parsePath, pathEquals, rootOf } from './paths.js';
import type { ApplyOutcome, ExplainOutcome, Operation, ProviderTask } from './provider.js';
import type { KindSchema } from './schema.js';

/** Where a job stands. `queued` belongs to the job layer; the planner starts at `running`. */
export type JobPhase = 'running' | 'succeeded' | 'failed' | 'expired' | 'cancelled';

/** Phases after which nothing more happens. */
export const TERMINAL_PHASES: readonly JobPhase[] = ['succeeded', 'failed', 'expired', 'cancelled'];

/** Exponential backoff: `initialMs * factor^(n-1)`, capped at `maxMs`. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly factor: number;
  readonly maxMs: number;
}

/** Limits of one plan. */
export interface PlannerOptions {
  /** Rounds that made progress before the job fails as not converging. */
  readonly maxRounds: number;
  /** Time from start after which an unfinished job expires. */
  readonly ttlMs: number;
  /** Wait between a round without progress and the next try. */
  readonly idleBackoff: BackoffPolicy;
  /** Wait before retrying a task whose provider failed with a retryable error. */
  readonly retryBackoff: BackoffPolicy;
  /** Attempts of one task before a retryable error fails the job. */
  readonly maxTaskAttempts: number;
}

/** Defaults: 50 rounds, one hour, idle backoff 0.5 s to 30 s, 5 task attempts with 0.2 s to 10 s between. */
export const DEFAULT_PLANNER_OPTIONS: PlannerOptions = {
  maxRounds: 50,
  ttlMs: 3_600_000,
  idleBackoff: { initialMs: 500, factor: 2, maxMs: 30_000 },
  retryBackoff: { initialMs: 200, factor: 2, maxMs: 10_000 },
  maxTaskAttempts: 5,
};

/** The delay before attempt `n` (1-based) under a backoff policy. */
export function backoffDelay(policy: BackoffPolicy, n: number): number {
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, n - 1));
}

/** An update still to be made true, with where it stands. */
export interface PendingUpdate {
  readonly update: ProposedUpdate;
  /** The provider with authority over the path (for `sync`, the watcher). */
  readonly provider: string;
  /** `ready` goes out in the next round; `deferred` waits for a change; `inflight` is in the current round. */
  readonly status: 'ready' | 'deferred' | 'inflight';
  readonly reason?: string;
  readonly waitFor?: readonly string[];
  /** The change version the provider had seen when it deferred. */
  readonly seenVersion?: number;
}

/** One provider task in the current round. */
export interface TaskState {
  readonly id: string;
  readonly provider: string;
  readonly updateIds: readonly string[];
  readonly attempt: number;
  readonly status: 'waiting' | 'running' | 'done';
  readonly notBefore: number;
  readonly startedAt?: number;
  readonly outcome?: ApplyOutcome | ExplainOutcome;
  readonly error?: ErrorInfo;
  readonly errors?: readonly ErrorInfo[];
  readonly durationMs?: number;
}

/** What one provider did in one round, as the job shows it. */
export interface RoundTask {
  readonly id: string;
  readonly provider: string;
  readonly updates: readonly ProposedUpdate[];
  readonly attempts: number;
  readonly outcome?: ApplyOutcome | ExplainOutcome;
  readonly error?: ErrorInfo;
  /** Errors of earlier attempts that were retried. */
  readonly retriedErrors?: readonly ErrorInfo[];
  readonly durationMs?: number;
}

/** The record of one round. */
export interface RoundRecord {
  readonly round: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly tasks: readonly RoundTask[];
  /** Paths whose values changed in this round, with who changed them. */
  readonly changes: readonly { readonly path: string; readonly by: string }[];
  readonly progress: boolean;
}

/** Why a job ended badly. */
export interface JobFailure {
  readonly code:
    ErrorCode | 'REJECTED' | 'NOT_CONVERGED' | 'PROPOSAL_CYCLE' | 'PROPOSAL_CONFLICT' | 'EXPIRED';
  readonly message: string;
  readonly providers?: readonly string[];
}

/** A condition that says which provider blocks the job and why. */
export interface Condition {
  readonly provider: string;
  readonly updateId: string;
  readonly path: string;
  readonly status: PendingUpdate['status'];
  readonly reason?: string;
}

/** The whole, serialisable state of one plan. */
export interface PlannerState {
  readonly jobId: string;
  readonly kind: string;
  readonly name: string;
  readonly phase: JobPhase;
  readonly attrs: Attrs;
  readonly userUpdates: readonly ProposedUpdate[];
  readonly pending: readonly PendingUpdate[];
  /** Number of folds so far; changes are tagged with the version they produced. */
  readonly version: number;
  /** The last change of every path: who made it and at which version. */
  readonly changes: Readonly<Record<string, { readonly by: string; readonly version: number }>>;
  /** In explain only: paths whose values will be known later, and which provider supplies each. */
  readonly later: Readonly<Record<string, string>>;
  readonly round: {
    readonly number: number;
    readonly startedAt: number;
    readonly tasks: readonly TaskState[];
  } | null;
  readonly rounds: readonly RoundRecord[];
  readonly progressRounds: number;
  readonly idleStreak: number;
  readonly notBefore: number;
  readonly startedAt: number;
  readonly deadline: number;
  /** Fingerprints of states reached through proposals, with the round that reached them (cycle detection). */
  readonly fingerprints: Readonly<Record<string, number>>;
  readonly failure?: JobFailure;
  readonly endedAt?: number;
  /** `owner|path` pairs already nudged: a provider waiting on a path another owns sends that owner one sync. */
  readonly nudged?: readonly string[];
}

/** What a request asks the planner to do. */
export interface PlanInput {
  readonly jobId: string;
  readonly kind: string;
  readonly name: string;
  /** The node's merged attributes now; `{}` for a node that does not exist yet. */
  readonly current: Attrs;
  readonly updates: readonly UpdateRequest[];
}

/** The result of one task, as the executor reports it. */
export type TaskResult =
  | {
      readonly taskId: string;
      readonly attempt: number;
      readonly outcome: ApplyOutcome | ExplainOutcome;
      readonly durationMs: number;
    }
  | {
      readonly taskId: string;
      readonly attempt: number;
      readonly error: ErrorInfo;
      readonly durationMs: number;
    };

/** What to run now, and when to call `dispatch` again if nothing else happens. */
export interface Dispatch {
  readonly state: PlannerState;
  readonly tasks: readonly ProviderTask[];
  /** When waiting tasks or the next round become due; null when only running tasks are awaited, or when done. */
  readonly wakeAt: number | null;
}

/** True when the state is terminal. */
export function isTerminal(state: PlannerState): boolean {
  return TERMINAL_PHASES.includes(state.phase);
}

/** The pending updates with who holds them and why: the job's conditions. */
export function conditionsOf(state: PlannerState): Condition[] {
  return state.pending.map((p) => ({
    provider: p.provider,
    updateId: p.update.id,
    path: p.update.path,
    status: p.status,
    ...(p.reason === undefined ? {} : { reason: p.reason }),
  }));
}

class Fold {
  failure: JobFailure | undefined;
  fail(failure: JobFailure): void {
    this.failure ??= failure;
  }
}

function describe(update: ProposedUpdate): string {
  const value = update.value === undefined ? '' : `=${JSON.stringify(update.value)}`;
  return update.op === 'set' ? `${update.path}${value}` : `${update.op} ${update.path}${value}`;
}

/** A proposed update from a request, built field by field (spreading caller objects is slow and copies extras). */
function proposedUpdate(id: string, origin: string, request: UpdateRequest): ProposedUpdate {
  const update: { -readonly [K in keyof ProposedUpdate]: ProposedUpdate[K] } = {
    id,
    path: request.path,
    op: request.op,
    origin,
  };
  if (request.value !== undefined) update.value = request.value;
  if (request.reason !== undefined) update.reason = request.reason;
  return update;
}

/**
 * True when two overlapping updates cannot interfere: one merges an object that does not name the field the
 * other, deeper, update is about (`merge interfaces[eth1] {name}` beside `set interfaces[eth1].mac`).
 */
function disjointMerge(a: ProposedUpdate, aPath: Path, b: ProposedUpdate, bPath: Path): boolean {
  const [shallow, shallowPath, deepPath] =
    aPath.length < bPath.length ? [a, aPath, bPath] : [b, bPath, aPath];
  if (
    shallow.op !== 'merge' ||
    !isJsonObject(shallow.value ?? null) ||
    deepPath.length === shallowPath.length
  )
    return false;
  const next = deepPath[shallowPath.length] as Path[number];
  return 'prop' in next && !Object.hasOwn(shallow.value as JsonObject, next.prop);
}

function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

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
    // Only updates of the same attribute can overlap; grouping keeps the pairwise check linear for wide requests.
    const byAttribute = new Map<string, number[]>();
    paths.forEach((path, i) => {
      const root = rootOf(path);
      byAttribute.set(root, [...(byAttribute.get(root) ?? []), i]);
    });
    userUpdates.forEach((update, i) => {
      if (update.op === 'sync')
        throw new InputError(`"sync" is not an operation a request can ask for (${update.path})`);
      const path = paths[i] as Path;
      const exclusive = update.op === 'set' || update.op === 'unset' || update.op === 'merge';
      for (const j of byAttribute.get(rootOf(path)) ?? []) {
        const other = userUpdates[j] as ProposedUpdate;
        if (
          j === i ||
          !overlaps(path, paths[j] as Path) ||
          disjointMerge(update, path, other, paths[j] as Path)
        )
          continue;
        const bothListItems = !exclusive && (other.op === 'add' || other.op === 'remove');
        if (!bothListItems) {
          throw new InputError(`updates "${describe(update)}" and "${describe(other)}" touch the same path`, {
            details: { paths: [update.path, other.path] },
          });
        }
        if (other.op !== update.op && deepEqual(other.value, update.value)) {
          throw new InputError(
            `cannot both add and remove ${JSON.stringify(update.value)} in ${update.path}`,
          );
        }
      }
      if (update.op === 'add' || update.op === 'remove') {
        const problems = update.value === undefined ? [] : this.schema.checkValue(path, [update.value]);
        if (problems.length > 0) {
          throw new SchemaViolationError(`${update.op} ${update.path}: ${problems.join('; ')}`, {
            details: { errors: problems },
          });
        }
      }
    });
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
    const syncs = this.syncsFor(
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
    const broken = state.userUpdates.filter(
      (u) => !updateHolds(state.attrs, parsePath(u.path), u.op, u.value, this.schema),
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

  private syncsFor(
    state: PlannerState,
    changed: readonly { path: string; by: string }[],
    round: number,
  ): PendingUpdate[] {
    const added: PendingUpdate[] = [];
    for (const change of changed) {
      const path = parsePath(change.path);
      for (const watch of this.schema.watchersOf(path)) {
        if (watch.provider === change.by) continue;
        if (watch.onRemovalOnly === true && getAt(state.attrs, watch.pattern, this.schema) !== undefined)
          continue;
        const already = [...state.pending, ...added].some(
          (p) =>
            p.provider === watch.provider &&
            p.update.op === 'sync' &&
            p.update.path === watch.path &&
            p.status !== 'inflight',
        );
        if (already) continue;
        added.push({
          provider: watch.provider,
          status: 'ready',
          update: {
            id: `s${round}.${added.length + 1}`,
            path: watch.path,
            op: 'sync',
            origin: change.by,
            reason: `${change.path} changed`,
          },
        });
      }
    }
    return added;
  }

  /** Merges a finished round: outcomes, values, proposals, watches; then decides what comes next. */
  private fold(state: PlannerState, now: number): PlannerState {
    const round = state.round;
    if (round === null) return state;
    const fold = new Fold();
    const version = state.version + 1;
    const byId = new Map(state.pending.map((p) => [p.update.id, p]));
    const tasks = [...round.tasks].sort((a, b) => a.provider.localeCompare(b.provider));
    const draft = new AttrsDraft(state.attrs, this.schema);
    const later: Record<string, string> = { ...state.later };
    const changed: { path: string; by: string }[] = [];
    const settled = new Set<string>();
    const deferred = new Map<string, PendingUpdate>();
    let accepted = 0;

    const record = (path: Path, by: string, op: UpdateOp, value: JsonValue | undefined): void => {
      const before = draft.get(path);
      draft.apply(path, op, value);
      if (!deepEqual(before, draft.get(path))) changed.push({ path: formatPath(path), by });
    };

    for (const task of tasks) {
      if (task.error !== undefined) {
        const attempts = task.attempt > 1 ? ` after ${task.attempt} attempts` : '';
        fold.fail({
          code: task.error.code,
          message: `${task.provider} failed${attempts}: ${task.error.message}`,
          providers: [task.provider],
        });
        continue;
      }
      const outcome: ExplainOutcome = task.outcome ?? {};
      const contract = (message: string): void => {
        fold.fail({
          code: 'PROVIDER_CONTRACT',
          message: `${task.provider} broke the provider contract: ${message}`,
          providers: [task.provider],
        });
      };
      const given = new Set(task.updateIds);
      const answered = [
        ...(outcome.accepted ?? []),
        ...(outcome.deferred ?? []).map((d) => d.id),
        ...(outcome.rejected ?? []).map((r) => r.id),
      ];
      const unknown = answered.filter((id) => !given.has(id));
      const twice = answered.filter((id, i) => answered.indexOf(id) !== i);
      const missing = task.updateIds.filter((id) => !answered.includes(id));
      if (unknown.length > 0) contract(`answered updates it was not given (${unknown.join(', ')})`);
      if (twice.length > 0) contract(`answered an update twice (${[...new Set(twice)].join(', ')})`);
      if (missing.length > 0) contract(`did not answer ${missing.join(', ')}`);
      for (const rejection of outcome.rejected ?? []) {
        const update = byId.get(rejection.id)?.update;
        fold.fail({
          code: 'REJECTED',
          message: `${task.provider} rejected ${update === undefined ? rejection.id : describe(update)}: ${rejection.reason}`,
          providers: [task.provider],
        });
      }
      if (fold.failure !== undefined) continue;

      for (const id of outcome.accepted ?? []) {
        const update = (byId.get(id) as PendingUpdate).update;
        const path = parsePath(update.path);
        try {
          record(path, task.provider, update.op, update.value);
        } catch (error) {
          fold.fail({ code: 'INVALID_INPUT', message: `${describe(update)}: ${(error as Error).message}` });
        }
        settled.add(id);
        accepted++;
      }
      for (const d of outcome.deferred ?? []) {
        const pending = byId.get(d.id) as PendingUpdate;
        deferred.set(d.id, {
          ...pending,
          status: 'deferred',
          reason: d.reason,
          seenVersion: state.version,
          ...(d.waitFor === undefined ? {} : { waitFor: d.waitFor }),
        });
      }
      const owned = (text: string): Path | undefined => {
        let path: Path;
        try {
          path = this.schema.resolvePath(text);
        } catch (error) {
          contract(`reported a value for ${text}: ${(error as Error).message}`);
          return undefined;
        }
        const owner = this.schema.authorityOf(path);
        if (owner !== task.provider) {
          contract(`reported a value for ${text}, which ${owner} has authority over`);
          return undefined;
        }
        return path;
      };
      for (const [text, value] of Object.entries(outcome.set ?? {})) {
        const path = owned(text);
        if (path === undefined) continue;
        const problems = this.schema.checkValue(path, value);
        if (problems.length > 0) {
          contract(`reported an invalid value for ${text}: ${problems.join('; ')}`);
          continue;
        }
        record(path, task.provider, 'set', value);
        delete later[formatPath(path)];
      }
      for (const text of outcome.unset ?? []) {
        const path = owned(text);
        if (path !== undefined) {
          record(path, task.provider, 'unset', undefined);
        }
      }
      for (const text of outcome.later ?? []) {
        const path = owned(text);
        if (path !== undefined && later[formatPath(path)] === undefined) {
          later[formatPath(path)] = task.provider;
          changed.push({ path: formatPath(path), by: task.provider });
        }
      }
    }

    const attrs = draft.result();
    // Proposals, in provider order, after all values of the round are merged.
    const proposals: PendingUpdate[] = [];
    const proposers = new Set<string>();
    for (const task of tasks) {
      for (const request of task.outcome?.propose ?? []) {
        const id = `p${round.number}.${proposals.length + 1}`;
        const update = proposedUpdate(id, task.provider, request);
        let path: Path;
        try {
          path = this.schema.resolvePath(request.path);
        } catch (error) {
          fold.fail({
            code: 'INVALID_INPUT',
            message: `proposal from ${task.provider}: ${(error as Error).message}`,
          });
          continue;
        }
        const owner = this.schema.authorityOf(path);
        if (owner === task.provider || owner === CORE_PROVIDER || request.op === 'sync') {
          fold.fail({
            code: 'PROVIDER_CONTRACT',
            message: `${task.provider} broke the provider contract: proposed ${describe(update)}, which ${owner === task.provider ? 'it owns (report it with set)' : 'no provider may propose'}`,
            providers: [task.provider],
          });
          continue;
        }
        const checked =
          request.op === 'set'
            ? this.schema.checkValue(path, request.value ?? null)
            : request.op === 'add' || request.op === 'remove'
              ? this.schema.checkValue(path, [request.value ?? null])
              : [];
        if (checked.length > 0) {
          fold.fail({
            code: 'SCHEMA_VIOLATION',
            message: `proposal from ${task.provider} violates the schema: ${checked.join('; ')}`,
            providers: [task.provider],
          });
          continue;
        }
        const contradicted = state.userUpdates.find((u) => {
          const userPath = parsePath(u.path);
          if (!overlaps(userPath, path)) return false;
          return !(pathEquals(userPath, path) && u.op === request.op && deepEqual(u.value, request.value));
        });
        if (contradicted !== undefined) {
          fold.fail({
            code: 'PROPOSAL_CONFLICT',
            message: `${task.provider} proposed ${describe(update)}, which contradicts the requested ${describe(contradicted)}`,
            providers: [task.provider],
          });
          continue;
        }
        if (updateHolds(attrs, path, request.op, request.value, this.schema)) continue;
        const duplicate = [...state.pending, ...proposals].some(
          (p) =>
            !settled.has(p.update.id) &&
            p.update.path === formatPath(path) &&
            p.update.op === request.op &&
            deepEqual(p.update.value, request.value),
        );
        if (duplicate) continue;
        proposals.push({ update: { ...update, path: formatPath(path) }, provider: owner, status: 'ready' });
        proposers.add(task.provider);
      }
    }

    const roundRecord: RoundRecord = {
      round: round.number,
      startedAt: round.startedAt,
      endedAt: now,
      tasks: tasks.map((t) => ({
        id: t.id,
        provider: t.provider,
        updates: t.updateIds.map((id) => (byId.get(id) as PendingUpdate).update),
        attempts: t.attempt,
        ...(t.outcome === undefined ? {} : { outcome: t.outcome }),
        ...(t.error === undefined ? {} : { error: t.error }),
        ...(t.errors !== undefined && t.errors.length > (t.error === undefined ? 0 : 1)
          ? { retriedErrors: t.error === undefined ? t.errors : t.errors.slice(0, -1) }
          : {}),
        ...(t.durationMs === undefined ? {} : { durationMs: t.durationMs }),
      })),
      changes: changed,
      progress: false,
    };
    const rounds = [...state.rounds, roundRecord];

    if (fold.failure !== undefined) {
      return this.end({ ...state, rounds, attrs }, 'failed', fold.failure, now);
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
      .map((p) => deferred.get(p.update.id) ?? p);
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
    const syncs = this.syncsFor(next, changed, round.number);
    next = { ...next, pending: [...next.pending, ...syncs] };
    const progress = accepted > 0 || changed.length > 0 || proposals.length > 0 || syncs.length > 0;
    next = { ...next, rounds: [...state.rounds, { ...roundRecord, progress }] };

    if (next.pending.length === 0) return this.finish(next, now);

    const progressRounds = state.progressRounds + (progress ? 1 : 0);
    if (progressRounds > this.options.maxRounds) {
      return this.end(
        next,
        'failed',
        {
          code: 'NOT_CONVERGED',
          message: `did not converge within ${this.options.maxRounds} rounds; still pending: ${next.pending.map((p) => `${p.provider}: ${describe(p.update)}`).join('; ')}`,
          providers: [...new Set(next.pending.map((p) => p.provider))].sort(),
        },
        now,
      );
    }
    if (proposers.size > 0) {
      const fingerprint = hash(
        canonicalJson(attrs) +
          next.pending
            .map((p) => `${p.provider}|${p.update.op}|${p.update.path}|${canonicalJson(p.update.value)}`)
            .sort()
            .join('\n'),
      );
      const seenAt = next.fingerprints[fingerprint];
      if (seenAt !== undefined) {
        const involved = new Set<string>();
        for (const r of next.rounds.filter((r) => r.round > seenAt)) {
          for (const t of r.tasks) {
            for (const proposal of t.outcome?.propose ?? []) {
              involved.add(t.provider);
              involved.add(this.schema.authorityOf(parsePath(proposal.path)));
            }
          }
        }
        const names = [...involved].sort();
        return this.end(
          next,
          'failed',
          {
            code: 'PROPOSAL_CYCLE',
            message: `proposal cycle between ${names.join(' and ')}: round ${round.number} returned to the state of round ${seenAt}`,
            providers: names,
          },
          now,
        );
      }
      next = { ...next, fingerprints: { ...next.fingerprints, [fingerprint]: round.number } };
    }

    // Deferred updates become ready when something they may wait for changed since they were deferred.
    const readied = next.pending.map((p) => {
      if (p.status !== 'deferred') return p;
      const waitFor = p.waitFor?.map((text) => parsePath(text, { allowWildcard: true }));
      const seen = p.seenVersion ?? 0;
      const woken = Object.entries(next.changes).some(
        ([path, change]) =>
          change.version > seen &&
          change.by !== p.provider &&
          (waitFor === undefined || waitFor.some((w) => overlaps(w, parsePath(path)))),
      );
      return woken ? { ...p, status: 'ready' as const } : p;
    });
    // Someone waits for a path whose owner has nothing to do: nudge the owner once with a sync of that path, so that
    // a state left behind by an earlier failed job (a system never registered) does not wait forever.
    const nudged = new Set(next.nudged ?? []);
    const nudges: PendingUpdate[] = [];
    for (const p of readied) {
      if (p.status !== 'deferred' || p.waitFor === undefined) continue;
      for (const text of p.waitFor) {
        let owner: string;
        try {
          owner = this.schema.authorityOf(parsePath(text, { allowWildcard: true }));
        } catch {
          continue;
        }
        const key = `${owner}|${text}`;
        if (owner === p.provider || owner === CORE_PROVIDER || nudged.has(key)) continue;
        if ([...readied, ...nudges].some((q) => q.provider === owner)) continue;
        nudged.add(key);
        nudges.push({
          provider: owner,
          status: 'ready',
          update: {
            id: `n${round.number}.${nudges.length + 1}`,
            path: text,
            op: 'sync',
            origin: p.provider,
            reason: `${p.provider} waits for ${text}${p.reason === undefined ? '' : ` (${p.reason})`}`,
          },
        });
      }
    }
    if (nudges.length > 0) {
      readied.push(...nudges);
      next = { ...next, nudged: [...nudged] };
    }
    const anyReady = readied.some((p) => p.status === 'ready');
    if ((progress || nudges.length > 0) && anyReady) {
      return { ...next, pending: readied, progressRounds, idleStreak: 0, notBefore: now };
    }
    // Nothing to do until the world changes: wait with backoff, then ask every provider again.
    const idleStreak = state.idleStreak + 1;
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
