/** The provider contract: what a plugin implements for one kind and one backend, and what the planner gives it. */
import type { Attrs, JsonValue, NodeRef, ProposedUpdate, UpdateRequest } from './model.js';
import type { ProviderDeclaration } from './schema.js';

/** One backend action a provider performed (or, in explain, would perform). */
export interface Operation {
  readonly action: string;
  readonly target: string;
  readonly detail?: string;
  readonly durationMs?: number;
}

/** A provider's answer to one task; every update id of the task must appear in exactly one of the three lists. */
export interface ApplyOutcome {
  /** Ids the provider has made true in its backend. */
  readonly accepted?: readonly string[];
  /**
   * Ids it cannot do yet. `waitFor` names the paths whose change may unblock it (any change by others if absent;
   * empty: only the outside world, so it is asked again after backoff). The planner trusts it: when every pending
   * update waits only for paths nothing in the job will supply, the job fails at once (`BLOCKED`) saying which.
   */
  readonly deferred?: readonly {
    readonly id: string;
    readonly reason: string;
    readonly waitFor?: readonly string[];
  }[];
  /** Ids it refuses; the job fails with the reason. */
  readonly rejected?: readonly { readonly id: string; readonly reason: string }[];
  /** Values it now reports for paths it has authority over (a generated MAC, an allocated IP). */
  readonly set?: Readonly<Record<string, JsonValue>>;
  /** Paths it has authority over whose values are now gone (on delete). */
  readonly unset?: readonly string[];
  /** New updates for paths owned by other providers. */
  readonly propose?: readonly (UpdateRequest & { readonly reason?: string })[];
  /** What it did in the backend. */
  readonly operations?: readonly Operation[];
}

/** An explain answer: an `ApplyOutcome` predicted without side effects, plus the paths it will only fill in later. */
export interface ExplainOutcome extends ApplyOutcome {
  /** Paths it owns whose values are only known once the change is applied (a MAC, an IP). */
  readonly later?: readonly string[];
}

/** One provider's share of one round: its pending updates and the node as it stands. */
export interface ProviderTask {
  /** Deterministic: `<jobId>/r<round>/<provider>`; the same on every attempt, so effects can be idempotent by id. */
  readonly id: string;
  readonly jobId: string;
  readonly round: number;
  readonly attempt: number;
  readonly provider: string;
  readonly kind: string;
  readonly name: string;
  /** The merged attributes when the round started. */
  readonly node: Attrs;
  readonly updates: readonly ProposedUpdate[];
  /** In explain only: paths whose values will be known later, and which provider supplies each. */
  readonly later?: Readonly<Record<string, string>>;
}

/** The minimal structured logger handed to providers. */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/** What a provider gets with each call: a logger, a signal that aborts on cancel or lease loss, the fencing token. */
export interface ProviderContext {
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** Changes with every leadership or claim; backends that support it can guard writes with it. */
  readonly fencingToken: string;
  /** The current time in milliseconds. */
  now(): number;
}

/** What a provider observed in its backend for one node: values of the paths it provides, or null if absent. */
export type Observation = Attrs | null;

/** One object a provider found in its backend: the node it maps to (by name) and the values it observes there. */
export interface DiscoveredObject {
  readonly name: string;
  /** The values of the paths the provider provides, exactly as `observe` would report them for that node. */
  readonly attrs: Attrs;
}

/**
 * A plugin's adapter between one kind and one backend. `apply` must be idempotent: after a crash the same task runs
 * again and must converge. Throw a retryable `ConsortiumError` (such as `BackendUnavailableError`) for transient
 * faults and a non-retryable one for permanent faults.
 */
export interface NodeProvider extends ProviderDeclaration {
  apply(task: ProviderTask, context: ProviderContext): Promise<ApplyOutcome>;
  /** The same decision as `apply`, without side effects. */
  explain(task: ProviderTask, context: ProviderContext): Promise<ExplainOutcome>;
  /** Reads the backend's view of one node, for the inventory cache and drift detection. */
  observe?(ref: NodeRef, context: ProviderContext): Promise<Observation>;
  /**
   * Lists every object of `kind` in the backend, read only, for adopting what already runs; a provider without it
   * takes no part in discovery.
   */
  discover?(kind: string, context: ProviderContext): Promise<readonly DiscoveredObject[]>;
}

/** A logger that drops everything; for tests and benchmarks. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
