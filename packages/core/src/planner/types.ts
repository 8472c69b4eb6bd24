/** The planner's data: its serialisable state, options, task results and what it reports. */
import type { BackoffPolicy } from '../backoff.js';
import type { ErrorCode, ErrorInfo } from '../errors.js';
import type { Attrs, ProposedUpdate, UpdateRequest } from '../model.js';
import type { ApplyOutcome, ExplainOutcome, ProviderTask } from '../provider.js';

/** Where a job stands. `queued` belongs to the job layer; the planner starts at `running`. */
export type JobPhase = 'running' | 'succeeded' | 'failed' | 'expired' | 'cancelled';

/** Phases after which nothing more happens. */
export const TERMINAL_PHASES: readonly JobPhase[] = ['succeeded', 'failed', 'expired', 'cancelled'];

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
    | ErrorCode
    | 'REJECTED'
    | 'NOT_CONVERGED'
    | 'PROPOSAL_CYCLE'
    | 'PROPOSAL_CONFLICT'
    | 'EXPIRED'
    /** No provider can ever make progress: what every pending update waits for is never supplied. */
    | 'BLOCKED';
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
