/**
 * The HTTP API's JSON shapes (DESIGN.md §7), shared by the server that writes them, `consort` and the web console
 * that read them, so that a field is named once. Every time is an RFC 3339 string (UTC).
 */
import type { ErrorCode } from './errors.js';
import type { Plan } from './execute.js';
import type { Attrs, JsonValue, UpdateRequest } from './model.js';
import type { Condition, JobFailure, RoundRecord } from './planner/types.js';
import type { JobAction, JobState, Role } from './ports/store.js';

/** A page of a list: `next` is the cursor of the following page, absent on the last. */
export interface PageView<T> {
  readonly items: readonly T[];
  readonly next?: string;
}

/** A node as `GET /api/inventory/:kind/:name` shows it. */
export interface NodeView {
  readonly kind: string;
  readonly name: string;
  readonly revision: number;
  readonly attrs: Attrs;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A path whose provider saw a value other than the one it owns. */
export interface DriftView {
  readonly path: string;
  readonly provider: string;
  readonly expected: JsonValue | null;
  readonly observed: JsonValue | null;
  /** When the provider saw it. */
  readonly at: string;
}

/** A node with `?show=authority`: who owns each value, what providers last saw, and where that differs. */
export interface NodeAuthorityView extends NodeView {
  /** Every concrete path (`interfaces[eth0].ip`) with the provider that owns it. */
  readonly authority: Readonly<Record<string, string>>;
  readonly observed: Readonly<Record<string, { readonly at: string; readonly attrs: Attrs | null }>>;
  readonly drift: readonly DriftView[];
}

/** Who did something: a token's id with its description (null when it has none or no longer exists). */
export interface ActorView {
  /** The token id (or `dev`, or `system`). */
  readonly id: string;
  readonly description: string | null;
}

/** A planner round as the API shows it: its start and end as RFC 3339 timestamps. */
export type RoundView = Omit<RoundRecord, 'startedAt' | 'endedAt'> & {
  readonly startedAt: string;
  readonly endedAt: string;
};

/** A job as `GET /api/jobs/:id` shows it (the list shows `roundCount` instead of rounds and conditions). */
export interface JobView {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly action: JobAction;
  readonly state: JobState;
  readonly actor: ActorView;
  readonly createdAt: string;
  readonly startedAt: string | undefined;
  readonly endedAt: string | undefined;
  readonly updates: readonly UpdateRequest[];
  readonly roundCount?: number;
  readonly rounds?: readonly RoundView[];
  /** While the job runs: which provider holds which update, and why. */
  readonly conditions?: readonly Condition[];
  /** While the job runs: when it expires unless done (its TTL). */
  readonly expiresAt?: string;
  readonly failure?: JobFailure;
  readonly rollback?: { readonly state: string; readonly rounds?: readonly RoundView[] };
  readonly cancelRequested?: { readonly by: ActorView; readonly at: string | undefined };
  /** The batch the job belongs to. */
  readonly batch?: string;
  readonly links: { readonly self: string; readonly events: string; readonly node: string };
}

/** The answer to a change sent with `?explain=true`: what would happen, round by round, with nothing done. */
export interface ExplainView {
  readonly explain: true;
  readonly kind: string;
  readonly name: string;
  readonly action: JobAction;
  readonly updates: readonly UpdateRequest[];
  readonly plan: Plan;
}

/** One event of a job's stream (`GET /api/jobs/:id/events`), `at` as ISO 8601. */
export interface JobEventView {
  readonly jobId: string;
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly data: Readonly<Record<string, JsonValue>>;
}

/** An API token as it is shown: everything but its hash. */
export interface TokenView {
  readonly id: string;
  readonly role: Role;
  readonly description: string | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
}

/** The answer to `POST /api/tokens`: the secret, shown this once. */
export interface CreatedTokenView {
  readonly id: string;
  readonly role: Role;
  readonly token: string;
  readonly expiresAt: string | null;
}

/** `GET /api/whoami`. */
export interface CallerView {
  readonly id: string;
  readonly role: Role;
}

/** One kind in `GET /api/schema`. */
export interface KindSummaryView {
  readonly name: string;
  readonly description?: string;
  readonly attributes: readonly string[];
  readonly providers: readonly string[];
  readonly links: { readonly schema: string };
}

/** An error answer: RFC 9457 problem details with Consortium's stable code. */
export interface ProblemView {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  readonly [extra: string]: unknown;
}

/** A backend object of a node that exists (`GET /api/discovery`): which providers hold it, and where they differ. */
export interface KnownView {
  readonly name: string;
  /** The providers whose backends hold an object of this name, sorted. */
  readonly providers: readonly string[];
  readonly drift: readonly DriftView[];
}

/** A backend object no node stands for: what the node adopting it would hold, from every provider that has it. */
export interface UnmanagedView {
  readonly name: string;
  /** The providers whose backends hold an object of this name, sorted. */
  readonly providers: readonly string[];
  readonly attrs: Attrs;
}

/**
 * `GET /api/discovery?kind=`: known (a node exists), adoptable (no node, and Consortium never had one) and orphaned
 * (no node, but Consortium made, changed or adopted one of that name: it was deleted or never finished).
 */
export interface DiscoveryView {
  readonly kind: string;
  readonly known: readonly KnownView[];
  readonly adoptable: readonly UnmanagedView[];
  readonly orphaned: readonly UnmanagedView[];
}

/** `POST /api/discovery/adopt`: the nodes made, each with the providers its values came from. */
export interface AdoptionView {
  readonly kind: string;
  readonly adopted: readonly UnmanagedView[];
}
